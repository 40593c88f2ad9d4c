//! Reading exports: CSV and XML files become [`RawDocument`]s, each row or element
//! carrying its physical line number.
//!
//! A mapping asks for a fixed list of source columns (CSV) or paths (XML), its *slots*;
//! a source fills them per row, so that the mapping never looks a column up by name
//! while it works.

pub mod csv;
pub mod decode;
pub mod xml;

use crate::problem::Problem;

/// The columns or paths a mapping reads, in three spaces: `header` slots come from a
/// document's first row (CSV) or its record element (XML), `lines` slots from each row or
/// line element, `key` from the first row or the record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slots {
    pub header: Vec<String>,
    pub lines: Vec<String>,
    pub key: Vec<String>,
    /// The mapping has line fields (even if none reads a column: `value = ...` only),
    /// so every row or line element is a line.
    pub wants_lines: bool,
}

impl Slots {
    /// The index of `name` in `list`, adding it when new.
    pub fn intern(list: &mut Vec<String>, name: &str) -> usize {
        match list.iter().position(|s| s == name) {
            Some(i) => i,
            None => {
                list.push(name.to_string());
                list.len() - 1
            }
        }
    }
}

const ABSENT: u32 = u32::MAX;

/// The values of one row (or element) for a list of slots, in one buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawRow {
    /// Physical line where the row (element) starts.
    pub line: u64,
    text: String,
    bounds: Vec<(u32, u32)>,
    /// XML: the line of each slot's element, where it differs from `line`.
    slot_lines: Vec<u64>,
}

impl RawRow {
    pub fn new(line: u64) -> RawRow {
        RawRow {
            line,
            ..RawRow::default()
        }
    }

    /// Appends the next slot's value (`None`: the source has no such element).
    pub fn push(&mut self, value: Option<&str>) {
        match value {
            Some(v) => {
                let start = self.text.len() as u32;
                self.text.push_str(v);
                self.bounds.push((start, self.text.len() as u32));
            }
            None => self.bounds.push((ABSENT, ABSENT)),
        }
    }

    /// Appends a value with the line it was found on (XML).
    pub fn push_at(&mut self, value: Option<&str>, line: u64) {
        if self.slot_lines.len() < self.bounds.len() {
            self.slot_lines.resize(self.bounds.len(), self.line);
        }
        self.push(value);
        self.slot_lines.push(line);
    }

    pub fn get(&self, slot: usize) -> Option<&str> {
        let (s, e) = *self.bounds.get(slot)?;
        if s == ABSENT {
            None
        } else {
            Some(&self.text[s as usize..e as usize])
        }
    }

    /// The line on which a slot's value stands.
    pub fn line_of(&self, slot: usize) -> u64 {
        self.slot_lines.get(slot).copied().unwrap_or(self.line)
    }

    pub fn len(&self) -> usize {
        self.bounds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bounds.is_empty()
    }
}

/// The rows of one document as read, before mapping.
#[derive(Debug, Clone, Default)]
pub struct RawDocument {
    /// The key parts (one per `document.key` entry); empty when the row had none.
    pub key: Vec<String>,
    /// Line of the first row / the record element.
    pub line: u64,
    pub header: RawRow,
    pub lines: Vec<RawRow>,
    /// Problems the source found in this document's rows (they make it invalid).
    pub problems: Vec<Problem>,
    /// How many source rows this document took (CSV: rows; XML: 1).
    pub rows: u64,
}

impl RawDocument {
    /// The key as users see it: parts joined by `/`.
    pub fn key_display(&self) -> String {
        self.key.join("/")
    }
}

/// Why a source stopped.
#[derive(Debug)]
pub enum SourceError {
    /// The whole file is unusable (unreadable, wrong encoding, malformed, no header).
    Fatal(Problem),
    /// A key appeared again after other keys: the file must be read in ungrouped mode.
    Ungrouped,
}

/// A stream of documents read from one file.
pub trait DocumentSource {
    /// The next document, `None` at the end.
    fn next_document(&mut self) -> Option<Result<RawDocument, SourceError>>;
    /// Bytes of the file consumed so far (for progress bars).
    fn bytes_read(&self) -> u64;
}
