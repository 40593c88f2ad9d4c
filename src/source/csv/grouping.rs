//! Rows become documents: the first row of a key starts one, the next rows of the same
//! key are its lines. Streamed while the file is grouped by key; a key that comes back
//! after others sends the file to [`ungrouped`](super::ungrouped) mode.

use super::problems::temp_failure;
use super::CsvSource;
use crate::problem::{Code, Problem, Stage};
use crate::source::keys::{document_key, header_differs, missing_key};
use crate::source::{RawDocument, RawRow, SourceError};
use std::io::Read;

impl<R: Read> CsvSource<R> {
    /// Whether the current row's key is `key` (no allocation: the usual case of the
    /// next line of the same document).
    fn row_has_key(&self, key: &[String]) -> bool {
        !key.is_empty()
            && key.len() == self.key_idx.len()
            && self
                .key_idx
                .iter()
                .zip(key)
                .all(|(&i, k)| crate::source::trim(self.field(i).unwrap_or("")) == k)
    }

    pub(super) fn key_of_row(&self) -> Vec<String> {
        document_key(self.key_idx.iter().map(|&i| self.field(i).unwrap_or("")))
    }

    pub(super) fn slot_row(&self, idx: &[usize], line: u64) -> RawRow {
        let mut row = RawRow::with_capacity(line, idx.len(), self.current().as_slice().len());
        for &i in idx {
            row.push(Some(self.field(i).unwrap_or("")));
        }
        row
    }

    /// A problem with the current row's shape, if any.
    fn shape_problem(&self, line: u64, key: &[String], fields: usize) -> Option<Problem> {
        if self.columns.is_empty() || fields == self.columns.len() {
            return None;
        }
        let msg = format!(
            "This row has {} fields but the header has {}: a delimiter inside an unquoted value, or a missing one",
            fields,
            self.columns.len()
        );
        Some(
            Problem::new(Stage::Read, Code::Malformed, &msg)
                .with_document_opt((!key.is_empty()).then(|| key.join("/")))
                .with_line(line)
                .with_value(fields.to_string()),
        )
    }

    /// Builds a new document from the current row.
    pub(super) fn start_document(&self, key: Vec<String>, line: u64) -> RawDocument {
        let header = self.slot_row(&self.header_idx, line);
        let line_row = self
            .wants_lines
            .then(|| self.slot_row(&self.line_idx, line));
        self.new_document(key, line, header, line_row, self.fields())
    }

    /// Builds a new document from a row's values (`fields`: how many the row had).
    pub(super) fn new_document(
        &self,
        key: Vec<String>,
        line: u64,
        header: RawRow,
        line_row: Option<RawRow>,
        fields: usize,
    ) -> RawDocument {
        let mut doc = RawDocument {
            line,
            header,
            rows: 1,
            ..RawDocument::default()
        };
        if let Some(l) = line_row {
            doc.lines.push(l);
        }
        if let Some(p) = self.shape_problem(line, &key, fields) {
            doc.problems.push(p);
        }
        if key.is_empty() {
            let cols: Vec<String> = self.key_idx.iter().map(|&i| self.column_name(i)).collect();
            let msg = if cols.len() == 1 {
                format!("The row has no document key: column {} is empty", cols[0])
            } else {
                format!(
                    "The row has no document key: columns {} are empty",
                    cols.join(", ")
                )
            };
            doc.problems.push(missing_key(&msg, line, &cols));
        }
        doc.key = key;
        doc
    }

    /// Adds the current row to an existing document as a line; reports header values
    /// that differ from the document's first row.
    fn extend_document(&self, doc: &mut RawDocument, line: u64) {
        let line_row = self
            .wants_lines
            .then(|| self.slot_row(&self.line_idx, line));
        self.add_row(doc, line, line_row, self.fields(), |col| {
            self.field(col).unwrap_or("")
        });
    }

    /// Adds a row to a document: its line values, its shape problem, and a problem for
    /// a header value (`header_value` of a column) that differs from the first row's.
    pub(super) fn add_row<'v>(
        &self,
        doc: &mut RawDocument,
        line: u64,
        line_row: Option<RawRow>,
        fields: usize,
        header_value: impl Fn(usize) -> &'v str,
    ) {
        doc.rows += 1;
        if let Some(l) = line_row {
            doc.lines.push(l);
        }
        if let Some(p) = self.shape_problem(line, &doc.key, fields) {
            doc.problems.push(p);
        }
        let slots = self.header_idx.iter().map(|&col| (header_value(col), col));
        if let Some(p) = header_differs(doc, line, slots, |col| self.column_name(col)) {
            doc.problems.push(p);
        }
    }

    pub(super) fn next_grouped(&mut self) -> Option<Result<RawDocument, SourceError>> {
        loop {
            if let Some(d) = self.queue.pop_front() {
                return Some(Ok(d));
            }
            if self.finished {
                return None;
            }
            match self.read_row() {
                Err(p) => {
                    self.finished = true;
                    return Some(Err(SourceError::Fatal(p)));
                }
                Ok(false) => {
                    self.finished = true;
                    if let Some(d) = self.pending.take() {
                        self.queue.push_back(d);
                    }
                    // A key that came back after the window of recent keys shows now.
                    if let Some(keys) = self.keys.take() {
                        match keys.finish() {
                            Ok(None) => {}
                            Ok(Some(_)) => return Some(Err(SourceError::Ungrouped)),
                            Err(e) => return Some(Err(temp_failure(&e))),
                        }
                    }
                    continue;
                }
                Ok(true) => {}
            }
            let line = self.row_line();
            if let Some(mut p) = self.pending.take() {
                if self.row_has_key(&p.key) {
                    self.extend_document(&mut p, line);
                    self.pending = Some(p);
                    continue;
                }
                self.pending = Some(p);
            }
            let key = self.key_of_row();
            if key.is_empty() {
                let doc = self.start_document(key, line);
                if let Some(p) = self.pending.take() {
                    self.queue.push_back(p);
                }
                self.queue.push_back(doc);
                continue;
            }
            if let Some(keys) = self.keys.as_mut() {
                if keys.see(&key, line).is_some() {
                    return Some(Err(SourceError::Ungrouped));
                }
            }
            let doc = self.start_document(key, line);
            if let Some(p) = self.pending.replace(doc) {
                return Some(Ok(p));
            }
        }
    }
}
