//! A record that ends becomes a document, with the problems of its key; the end of the
//! file says whether the file fit the mapping at all.

use super::matcher::State;
use super::syntax::lossy;
use crate::keylog::key_hash;
use crate::problem::{Code, Problem, Stage};
use crate::source::RawDocument;
use std::collections::hash_map::Entry;

impl State {
    fn record_name(&self) -> &str {
        self.record.names.last().map_or("record", String::as_str)
    }

    pub(super) fn finish_record(&mut self) -> RawDocument {
        let rec = self.rec.take().expect("a record");
        self.last_lines = rec.lines.len();
        let parts: Vec<String> = (0..self.key.vals.len())
            .map(|i| {
                self.key
                    .get(i)
                    .map_or_else(String::new, |s| s.trim().to_string())
            })
            .collect();
        let key = if parts.iter().all(String::is_empty) {
            Vec::new()
        } else {
            parts
        };
        let mut doc = RawDocument {
            key: Vec::new(),
            line: rec.line,
            header: self.header.row(rec.line),
            lines: rec.lines,
            problems: Vec::new(),
            rows: 1,
        };
        let cols = self.key_names.join(", ");
        let rname = self.record_name().to_string();
        if key.is_empty() {
            let msg = format!(
                "This <{}> has no {}, the document key",
                rname,
                self.key_names.join(" or ")
            );
            doc.problems.push(
                Problem::new(Stage::Map, Code::Required, &msg)
                    .with_line(rec.line)
                    .with_column(cols.clone())
                    .with_value(String::new()),
            );
        } else {
            let h = key_hash(&key);
            let first = match self.repeats.as_mut() {
                // second pass: only the keys known to repeat are followed
                Some((known, lines)) => match known.binary_search(&h) {
                    Ok(_) => match lines.entry(h) {
                        Entry::Vacant(v) => {
                            v.insert(rec.line);
                            None
                        }
                        Entry::Occupied(o) => Some(*o.get()),
                    },
                    Err(_) => None,
                },
                None => self.keys.insert(h, rec.line),
            };
            match first {
                None => {}
                Some(first) => {
                    let shown = key.join("/");
                    let msg = format!(
                        "Document {} appears twice in the file: this <{}> has the same key as the one on line {}",
                        shown,
                        rname,
                        first
                    );
                    doc.problems.push(
                        Problem::new(Stage::Validate, Code::Duplicate, &msg)
                            .with_document(shown.clone())
                            .with_line(rec.line)
                            .with_column(cols.clone())
                            .with_value(shown),
                    );
                }
            }
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
