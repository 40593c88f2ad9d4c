//! Document keys, for every format: the key of a row or record from its parts, the keys
//! a file has had (to find one that comes back), and the problems of a document without
//! a key or with one that an earlier document has.

mod log;

pub use log::{key_hash, KeyLog};

use crate::problem::{Code, Problem, Stage};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::io;

/// A document key from its parts as read (a part that is not there is empty): each part
/// trimmed; no key at all (an empty `Vec`) when every part is empty.
pub fn document_key<S: AsRef<str>>(parts: impl IntoIterator<Item = S>) -> Vec<String> {
    let parts: Vec<String> = parts
        .into_iter()
        .map(|p| super::trim(p.as_ref()).to_string())
        .collect();
    if parts.iter().all(String::is_empty) {
        Vec::new()
    } else {
        parts
    }
}

/// The keys of one file seen so far.
pub enum SeenKeys {
    /// A first pass: every key goes into the log, which finds a key that comes back soon
    /// at once and one that comes back later when the file ends.
    Log(KeyLog),
    /// A second pass, knowing the keys that repeat (their hashes, sorted): only those are
    /// followed, with the line of the first document of each.
    Known {
        repeats: Vec<u64>,
        first: HashMap<u64, u64>,
    },
}

impl Default for SeenKeys {
    /// An empty first pass that allocates nothing (what [`std::mem::take`] leaves).
    fn default() -> SeenKeys {
        SeenKeys::Log(KeyLog::default())
    }
}

impl SeenKeys {
    /// A first pass whose log keeps `window` keys in memory.
    pub fn new(window: usize) -> SeenKeys {
        SeenKeys::Log(KeyLog::new(window))
    }

    /// A second pass over a file whose repeated keys (hashes) are known.
    pub fn known(mut repeats: Vec<u64>) -> SeenKeys {
        repeats.sort_unstable();
        SeenKeys::Known {
            repeats,
            first: HashMap::new(),
        }
    }

    /// Notes the key of the document on `line`: the line of an earlier document with the
    /// same key, when one is known now.
    pub fn see(&mut self, key: &[String], line: u64) -> Option<u64> {
        let h = key_hash(key);
        match self {
            SeenKeys::Log(log) => log.insert(h, line),
            SeenKeys::Known { repeats, first } => {
                repeats.binary_search(&h).ok()?;
                match first.entry(h) {
                    Entry::Vacant(v) => {
                        v.insert(line);
                        None
                    }
                    Entry::Occupied(o) => Some(*o.get()),
                }
            }
        }
    }

    /// After the last document: on a first pass, the keys (hashes) that repeat when some
    /// repeat was found only now, too late to report it on its document (`None` when
    /// every repeat was found at once, and on a second pass). `Err`: a temporary file of
    /// the log could not be read back.
    pub fn finish(self) -> io::Result<Option<Vec<u64>>> {
        match self {
            SeenKeys::Log(log) => {
                let (repeats, late) = log.repeated()?;
                Ok(late.then_some(repeats))
            }
            SeenKeys::Known { .. } => Ok(None),
        }
    }
}

/// The problem of a document without a key (every part of it empty), on `line`;
/// `message` says it in the words of the format, `columns` names the key's columns or
/// paths.
pub fn missing_key(message: &str, line: u64, columns: &[String]) -> Problem {
    Problem::new(Stage::Map, Code::Required, message)
        .with_line(line)
        .with_column(columns.join(", "))
        .with_value(String::new())
}

/// The problem of a document that repeats another of the same file (`document`, as users
/// see its key): its key again, or its first row again with another value in `column`
/// (`value`).
pub fn duplicate(message: &str, document: &str, line: u64, column: String, value: &str) -> Problem {
    Problem::new(Stage::Validate, Code::Duplicate, message)
        .with_document(document.to_string())
        .with_line(line)
        .with_column(column)
        .with_value(value.to_string())
}

/// The first header value of a later row of `doc` (at `line`) that differs from its
/// first row's, as a [`duplicate`] problem: `slots` gives, for each header slot, the
/// value the later row holds there and the name of its column, asked for only when
/// they differ. Blank values never differ.
pub fn header_differs<'v>(
    doc: &crate::source::RawDocument,
    line: u64,
    slots: impl IntoIterator<Item = (&'v str, usize)>,
    column_name: impl Fn(usize) -> String,
) -> Option<Problem> {
    for (slot, (new, col)) in slots.into_iter().enumerate() {
        let new = crate::source::trim(new);
        let first = crate::source::trim(doc.header.get(slot).unwrap_or(""));
        if !new.is_empty() && !first.is_empty() && new != first {
            let column = column_name(col);
            let msg = format!(
                "Document {} appears again with {} {} but its first row (line {}) has {}",
                doc.key_display(),
                column,
                crate::problem::quote(new),
                doc.line,
                crate::problem::quote(first)
            );
            return Some(duplicate(&msg, &doc.key_display(), line, column, new));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_its_trimmed_parts_or_none() {
        assert_eq!(document_key([" A ", "1"]), vec!["A", "1"]);
        assert_eq!(document_key(["", "1"]), vec!["", "1"]);
        assert!(document_key(["", " \t"]).is_empty());
        assert!(document_key(Vec::<String>::new()).is_empty());
    }

    #[test]
    fn a_second_pass_follows_only_the_known_repeats() {
        let (a, b) = (vec!["A".to_string()], vec!["B".to_string()]);
        let mut seen = SeenKeys::known(vec![key_hash(&a)]);
        assert_eq!(seen.see(&a, 2), None);
        assert_eq!(seen.see(&b, 3), None);
        assert_eq!(seen.see(&b, 4), None);
        assert_eq!(seen.see(&a, 5), Some(2));
        assert_eq!(seen.finish().unwrap(), None);
        let mut seen = SeenKeys::new(16);
        assert_eq!(seen.see(&a, 2), None);
        assert_eq!(seen.see(&a, 3), Some(2));
        assert_eq!(seen.finish().unwrap(), None, "found at once");
    }
}
