//! A file whose rows of one key are not together: its rows are sorted by key through
//! temporary files, then its documents back into the order of their first rows, so
//! memory stays flat whatever the file's size.

use super::problems::temp_failure;
use super::CsvSource;
use crate::codec::{put_len, put_u64, take_len, take_u64};
use crate::source::extsort::{Sorted, Sorter};
use crate::source::{put_key, take_key, RawDocument, RawRow, SourceError};
use std::io::Read;

impl<R: Read> CsvSource<R> {
    /// Ungrouped mode: sorts the rows by key (stably, so a document's rows keep their
    /// order), builds each document, and sorts the documents back into the order of
    /// their first rows. Both sorts keep at most the budget's
    /// [`sort_bytes`](crate::source::Budget::sort_bytes) in memory and spill the rest to
    /// temporary files, so memory stays flat whatever the file's size.
    fn sort_documents(&mut self) -> Result<Sorted, SourceError> {
        let io = |e: std::io::Error| temp_failure(&e);
        let mut rows = Sorter::new(self.budget.sort_bytes);
        let mut docs = Sorter::new(self.budget.sort_bytes);
        let (mut kbuf, mut rbuf) = (Vec::new(), Vec::new());
        while self.read_row()? {
            let line = self.row_line();
            let key = self.key_of_row();
            if key.is_empty() {
                let doc = self.start_document(key, line);
                rbuf.clear();
                doc.encode(&mut rbuf);
                docs.push(&line.to_be_bytes(), &rbuf).map_err(io)?;
                continue;
            }
            // rows sort by their key (any order of keys will do: the documents are
            // sorted again, by line), documents by their line (big-endian, so that the
            // bytes compare as the numbers do)
            kbuf.clear();
            put_key(&mut kbuf, &key);
            rbuf.clear();
            put_u64(&mut rbuf, line);
            put_len(&mut rbuf, self.fields());
            self.slot_row(&self.header_idx, line).encode(&mut rbuf);
            if self.wants_lines {
                self.slot_row(&self.line_idx, line).encode(&mut rbuf);
            }
            rows.push(&kbuf, &rbuf).map_err(io)?;
        }
        let mut sorted = rows.finish().map_err(io)?;
        let mut current: Option<(Vec<u8>, RawDocument)> = None;
        let flush = |doc: RawDocument, docs: &mut Sorter, buf: &mut Vec<u8>| {
            buf.clear();
            doc.encode(buf);
            docs.push(&doc.line.to_be_bytes(), buf)
        };
        let mut out = Vec::new();
        while sorted.next_into(&mut kbuf, &mut rbuf).map_err(io)? {
            let bad = || temp_failure(&std::io::Error::other("a sorted row is damaged"));
            let mut r: &[u8] = &rbuf;
            let line = take_u64(&mut r).ok_or_else(bad)?;
            let fields = take_len(&mut r).ok_or_else(bad)?;
            let header = RawRow::decode(&mut r).ok_or_else(bad)?;
            let line_row = if self.wants_lines {
                Some(RawRow::decode(&mut r).ok_or_else(bad)?)
            } else {
                None
            };
            match current.as_mut() {
                Some((k, doc)) if *k == kbuf => {
                    self.add_row(doc, line, line_row, fields, |col| {
                        let slot = self.header_idx.iter().position(|&c| c == col);
                        slot.and_then(|s| header.get(s)).unwrap_or("")
                    });
                }
                _ => {
                    if let Some((_, doc)) = current.take() {
                        flush(doc, &mut docs, &mut out).map_err(io)?;
                    }
                    let key = take_key(&mut &kbuf[..]).ok_or_else(bad)?;
                    let doc = self.new_document(key, line, header, line_row, fields);
                    current = Some((kbuf.clone(), doc));
                }
            }
        }
        if let Some((_, doc)) = current.take() {
            flush(doc, &mut docs, &mut out).map_err(io)?;
        }
        drop(sorted);
        docs.finish().map_err(io)
    }

    /// Ungrouped mode: the next document of the sort.
    pub(super) fn next_sorted(&mut self) -> Option<Result<RawDocument, SourceError>> {
        if self.sorted.is_none() {
            if self.finished {
                return None;
            }
            self.finished = true;
            match self.sort_documents() {
                Ok(s) => self.sorted = Some(s),
                Err(e) => return Some(Err(e)),
            }
        }
        let sorted = self.sorted.as_mut()?;
        let (mut k, mut r) = (Vec::new(), Vec::new());
        match sorted.next_into(&mut k, &mut r) {
            Ok(true) => match RawDocument::decode(&r) {
                Some(d) => Some(Ok(d)),
                None => {
                    self.sorted = None;
                    Some(Err(temp_failure(&std::io::Error::other(
                        "a sorted document is damaged",
                    ))))
                }
            },
            Ok(false) => {
                self.sorted = None;
                None
            }
            Err(e) => {
                self.sorted = None;
                Some(Err(temp_failure(&e)))
            }
        }
    }
}
