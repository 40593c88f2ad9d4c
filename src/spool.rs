//! A temporary file of the documents of one file that passed validation, written while
//! the file is read and replayed once its verdict is known (with `reject-file`, nothing
//! may be submitted before the last row was checked). Keeps memory flat whatever the
//! file's size.

use crate::codec::{read_bytes_owned, read_u64, write_bytes, write_u64};
use crate::config::PayloadFormat;
use crate::ledger::Operation;
use crate::mapping::MappedDocument;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

/// One spooled document: its key, line, content hash, what is asked of the ERP, and the
/// payload as it will be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledDoc {
    pub key: String,
    /// The line of the file it comes from; 0 for a delete (the file no longer has it).
    pub line: u64,
    /// Its content; for a delete, the content the ERP has.
    pub content_hash: String,
    pub operation: Operation,
    /// The ERP's id, for an update or a delete.
    pub erp_id: Option<String>,
    /// How many times the ERP deleted this key before (an operation after a delete is a
    /// new request, never a replay of the first).
    pub deletions: u64,
    /// For an update: how many updates of this key the ERP accepted before (a change
    /// made again after it was undone is a new request, never a replay).
    pub updates: u64,
    /// The payload (empty for a delete: the target makes what it sends).
    pub body: Vec<u8>,
    /// An earlier attempt of this content has no known outcome: the ERP may have it
    /// already (set when the ledger claims it; not spooled).
    pub resend: bool,
    /// Its place among the file's documents, valid or not, imported before or not (0
    /// for a delete): the same in every run of the same file, so that batches, fixed
    /// stretches of it, are the same in every run.
    pub ordinal: u64,
}

impl SpooledDoc {
    /// A delete of `key`, whose content in the ERP is `erp_hash`, by its id.
    pub fn delete(
        key: String,
        erp_hash: String,
        erp_id: Option<String>,
        deletions: u64,
    ) -> SpooledDoc {
        SpooledDoc {
            key,
            line: 0,
            content_hash: erp_hash,
            operation: Operation::Delete,
            erp_id,
            deletions,
            updates: 0,
            body: Vec::new(),
            resend: false,
            ordinal: 0,
        }
    }
}

/// One document as the spool writes it (borrowed: nothing is copied per document).
struct Entry<'a> {
    key: &'a str,
    line: u64,
    hash: &'a str,
    operation: Operation,
    erp_id: Option<&'a str>,
    deletions: u64,
    updates: u64,
    body: &'a [u8],
    ordinal: u64,
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

    /// Renders a document's payload in the target format and appends it, to be sent
    /// as `operation` (with the ERP's id for an update; `deletions`: how many times the
    /// key was deleted before; `ordinal`: its place among the file's documents).
    pub fn push(
        &mut self,
        doc: &MappedDocument,
        operation: Operation,
        erp_id: Option<&str>,
        deletions: u64,
        updates: u64,
        ordinal: u64,
    ) -> io::Result<()> {
        let mut body = Vec::with_capacity(512);
        match self.format {
            PayloadFormat::Json => doc.payload.write_json(&mut body, true)?,
            PayloadFormat::Xml => doc.payload.write_xml(&mut body, &self.root)?,
        }
        if !body.ends_with(b"\n") {
            body.push(b'\n');
        }
        self.write(&Entry {
            key: &doc.key,
            line: doc.line,
            hash: &doc.content_hash,
            operation,
            erp_id,
            deletions,
            updates,
            body: &body,
            ordinal,
        })
    }

    /// Appends a document made elsewhere (a delete).
    pub fn push_spooled(&mut self, d: &SpooledDoc) -> io::Result<()> {
        self.write(&Entry {
            key: &d.key,
            line: d.line,
            hash: &d.content_hash,
            operation: d.operation,
            erp_id: d.erp_id.as_deref(),
            deletions: d.deletions,
            updates: d.updates,
            body: &d.body,
            ordinal: d.ordinal,
        })
    }

    fn write(&mut self, e: &Entry<'_>) -> io::Result<()> {
        let f = &mut self.file;
        write_bytes(f, e.key.as_bytes())?;
        write_u64(f, e.line)?;
        write_bytes(f, e.hash.as_bytes())?;
        write_bytes(f, e.operation.as_str().as_bytes())?;
        write_bytes(f, e.erp_id.unwrap_or("").as_bytes())?;
        write_u64(f, e.deletions)?;
        write_u64(f, e.updates)?;
        write_bytes(f, e.body)?;
        write_u64(f, e.ordinal)?;
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
            let op = text(read_bytes_owned(&mut self.file)?);
            let operation = Operation::parse(&op)
                .ok_or_else(|| io::Error::other("the spool file is damaged"))?;
            let erp_id = Some(text(read_bytes_owned(&mut self.file)?)).filter(|s| !s.is_empty());
            let deletions = read_u64(&mut self.file)?.ok_or(io::ErrorKind::UnexpectedEof)?;
            let updates = read_u64(&mut self.file)?.ok_or(io::ErrorKind::UnexpectedEof)?;
            let body = read_bytes_owned(&mut self.file)?;
            let ordinal = read_u64(&mut self.file)?.ok_or(io::ErrorKind::UnexpectedEof)?;
            Ok(SpooledDoc {
                key,
                line,
                content_hash,
                operation,
                erp_id,
                deletions,
                updates,
                body,
                resend: false,
                ordinal,
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
        s.push(&doc("A"), Operation::Create, None, 0, 0, 0).unwrap();
        s.clear().unwrap();
        s.push(&doc("B"), Operation::Create, None, 0, 0, 1).unwrap();
        s.push(&doc("C"), Operation::Update, Some("42"), 1, 0, 2)
            .unwrap();
        let docs: Vec<SpooledDoc> = s.replay().unwrap().map(Result::unwrap).collect();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].key, "B");
        assert_eq!(docs[1].line, 42);
        assert_eq!(
            (
                docs[1].operation,
                docs[1].erp_id.as_deref(),
                docs[1].deletions
            ),
            (Operation::Update, Some("42"), 1)
        );
        assert_eq!(
            (docs[0].operation, docs[0].erp_id.as_deref()),
            (Operation::Create, None)
        );
        assert_eq!(
            String::from_utf8(docs[1].body.clone()).unwrap(),
            "{\n  \"number\": \"C\"\n}\n"
        );
    }
}
