//! A temporary file of the documents of one file that passed validation, written while
//! the file is read and replayed once its verdict is known (with `reject-file`, nothing
//! may be submitted before the last row was checked). Keeps memory flat whatever the
//! file's size.

use crate::codec::{read_bytes_owned, read_u64, write_bytes, write_u64};
use crate::config::PayloadFormat;
use crate::mapping::MappedDocument;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

/// One spooled document: its key, line, content hash and the payload as it will be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledDoc {
    pub key: String,
    pub line: u64,
    pub content_hash: String,
    pub body: Vec<u8>,
}

/// The spool being written: one temporary file, deleted when dropped.
pub struct Spool {
    file: BufWriter<File>,
    format: PayloadFormat,
    root: String,
    count: u64,
}

impl Spool {
    /// A new spool in `dir` (the system temporary folder when `None`), deleted on drop.
    pub fn new(
        dir: Option<&Path>,
        format: PayloadFormat,
        document_type: &str,
    ) -> io::Result<Spool> {
        let f = match dir {
            Some(d) => tempfile::tempfile_in(d)?,
            None => tempfile::tempfile()?,
        };
        Ok(Spool {
            file: BufWriter::with_capacity(256 * 1024, f),
            format,
            root: document_type.to_string(),
            count: 0,
        })
    }

    /// How many documents are spooled.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether no document is spooled.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Forgets everything spooled (a file read again in ungrouped mode).
    pub fn clear(&mut self) -> io::Result<()> {
        self.file.flush()?;
        let f = self.file.get_mut();
        f.set_len(0)?;
        f.seek(SeekFrom::Start(0))?;
        self.count = 0;
        Ok(())
    }

    /// Renders a document's payload in the target format and appends it.
    pub fn push(&mut self, doc: &MappedDocument) -> io::Result<()> {
        let mut body = Vec::with_capacity(512);
        match self.format {
            PayloadFormat::Json => doc.payload.write_json(&mut body, true)?,
            PayloadFormat::Xml => doc.payload.write_xml(&mut body, &self.root)?,
        }
        if !body.ends_with(b"\n") {
            body.push(b'\n');
        }
        write_bytes(&mut self.file, doc.key.as_bytes())?;
        write_u64(&mut self.file, doc.line)?;
        write_bytes(&mut self.file, doc.content_hash.as_bytes())?;
        write_bytes(&mut self.file, &body)?;
        self.count += 1;
        Ok(())
    }

    /// Replays the spooled documents in order.
    pub fn replay(mut self) -> io::Result<SpoolReader> {
        self.file.flush()?;
        let mut f = self.file.into_inner().map_err(|e| e.into_error())?;
        f.seek(SeekFrom::Start(0))?;
        Ok(SpoolReader {
            file: BufReader::with_capacity(256 * 1024, f),
            left: self.count,
        })
    }
}

/// The spooled documents, read back in the order they were pushed.
pub struct SpoolReader {
    file: BufReader<File>,
    left: u64,
}

impl Iterator for SpoolReader {
    type Item = io::Result<SpooledDoc>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let mut read = || -> io::Result<SpooledDoc> {
            let key = text(read_bytes_owned(&mut self.file)?);
            let line = read_u64(&mut self.file)?.ok_or(io::ErrorKind::UnexpectedEof)?;
            let content_hash = text(read_bytes_owned(&mut self.file)?);
            let body = read_bytes_owned(&mut self.file)?;
            Ok(SpooledDoc {
                key,
                line,
                content_hash,
                body,
            })
        };
        Some(read())
    }
}

/// A chunk as text: the spool holds what erpdrop wrote, UTF-8, so this takes the bytes
/// without a copy.
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::payload::Node;

    fn doc(key: &str) -> MappedDocument {
        MappedDocument {
            key: key.into(),
            line: 42,
            payload: Node::Obj(vec![("number".into(), Node::Str(key.into()))]),
            content_hash: "abc".into(),
            problems: vec![],
            rows: 1,
        }
    }

    #[test]
    fn replays_in_order_and_clears() {
        let mut s = Spool::new(None, PayloadFormat::Json, "sales_invoice").unwrap();
        s.push(&doc("A")).unwrap();
        s.clear().unwrap();
        s.push(&doc("B")).unwrap();
        s.push(&doc("C")).unwrap();
        let docs: Vec<SpooledDoc> = s.replay().unwrap().map(Result::unwrap).collect();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].key, "B");
        assert_eq!(docs[1].line, 42);
        assert_eq!(
            String::from_utf8(docs[1].body.clone()).unwrap(),
            "{\n  \"number\": \"C\"\n}\n"
        );
    }
}
