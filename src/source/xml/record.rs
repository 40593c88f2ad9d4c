//! A record that ends becomes a document, with the problems of its key; the end of the
//! file says whether the file fit the mapping at all.

use super::matcher::State;
use super::syntax::lossy;
use crate::problem::{Code, Problem};
use crate::source::keys::{document_key, duplicate, missing_key};
use crate::source::RawDocument;

impl State {
    fn record_name(&self) -> &str {
        self.record.names.last().map_or("record", String::as_str)
    }

    pub(super) fn finish_record(&mut self) -> RawDocument {
        let rec = self.rec.take().expect("a record");
        self.last_lines = rec.lines.len();
        let key =
            document_key((0..self.key.vals.len()).map(|i| self.key.get(i).unwrap_or_default()));
        let mut doc = RawDocument {
            key: Vec::new(),
            line: rec.line,
            header: self.header.row(rec.line),
            lines: rec.lines,
            problems: Vec::new(),
            rows: 1,
        };
        if key.is_empty() {
            let msg = format!(
                "This <{}> has no {}, the document key",
                self.record_name(),
                self.key_names.join(" or ")
            );
            doc.problems
                .push(missing_key(&msg, rec.line, &self.key_names));
        } else if let Some(first) = self.keys.see(&key, rec.line) {
            let shown = key.join("/");
            let msg = format!(
                "Document {shown} appears twice in the file: this <{}> has the same key as the one on line {first}",
                self.record_name()
            );
            let cols = self.key_names.join(", ");
            doc.problems
                .push(duplicate(&msg, &shown, rec.line, cols, &shown));
        }
        doc.key = key;
        doc
    }

    pub(super) fn eof(&self, line: u64) -> Result<(), Problem> {
        if let Some(top) = self.levels.last() {
            let name = lossy(self.level_name(self.levels.len() - 1));
            return Err(self.malformed(
                top.line,
                None,
                &format!(
                    "<{name}> is never closed: the file ends (line {line}) before </{name}> (it may be cut short)"
                ),
                Some(format!("<{name}>")),
            ));
        }
        if !self.root_seen {
            return Err(Problem::file(
                Code::Empty,
                None,
                "The file is empty: it has no XML element",
            ));
        }
        let n = self.record.steps.len();
        // A file whose record parent is there but empty is an empty export; one without
        // it (or, for an absolute path, with another root) probably does not fit the
        // mapping.
        let need = if self.record.anywhere {
            n - 1
        } else {
            (n - 1).max(1)
        };
        if self.records == 0 && self.best < need {
            let msg = if self.best == 0 {
                format!(
                    "No element matches the record path {}: the root element is <{}>",
                    self.record.text, self.root_name
                )
            } else {
                format!(
                    "No element matches the record path {}: the file has {}{} but no <{}> inside it",
                    self.record.text,
                    if self.record.anywhere { "" } else { "/" },
                    self.record.names[..self.best].join("/"),
                    self.record.names[self.best]
                )
            };
            return Err(Problem::file(Code::MissingColumn, None, msg)
                .with_column(self.record.text.clone())
                .with_value(self.root_name.clone()));
        }
        Ok(())
    }
}
