//! Reading exports: CSV and XML files become [`RawDocument`]s, each row or element
//! carrying its physical line number.
//!
//! A mapping asks for a fixed list of source columns (CSV) or paths (XML), its *slots*;
//! a source fills them per row, so that the mapping never looks a column up by name
//! while it works.

pub mod csv;
pub mod decode;
mod extsort;
pub mod fixed;
pub mod json;
pub mod keys;
mod options;
pub mod rows;
pub mod sheet;
pub mod xml;

pub use options::{
    Budget, CsvOptions, FixedColumn, FixedOptions, JsonOptions, RecordTypes, RowKind, RowRules,
    SheetOptions, SkipRule, SourceFormat, SourceOptions, TrailerRule, XmlOptions,
};

use crate::codec::{put_bytes, put_len, put_u32, put_u64, take_len, take_str, take_u32, take_u64};
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

/// `str::trim`, without its per-character scan for the usual value that starts and
/// ends with a visible ASCII character.
#[inline]
pub fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    let plain = |c: u8| c.is_ascii() && !matches!(c, b'\t'..=b'\r' | b' ');
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) if plain(f) && plain(l) => s,
        _ => s.trim(),
    }
}

/// How many line feeds `b` holds (memchr: SIMD, off the per-byte path).
#[inline]
pub fn count_newlines(b: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', b).count() as u64
}

/// The values of one row (or element) for a list of slots, in one buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawRow {
    /// Physical line where the row (element) starts.
    pub line: u64,
    text: String,
    bounds: Vec<(u32, u32)>,
    /// XML: the line of each slot's element, where it differs from `line`.
    slot_lines: Vec<u64>,
    /// Workbooks: the slots whose value is a date cell's, written ISO 8601
    /// (`2026-11-20`, `2026-11-20T13:45:00`), which a date field takes whatever its
    /// format. Text never gets here: only the reader marks a slot.
    dates: Vec<u32>,
    /// Workbooks and JSON: the slots whose value is a number cell's or a JSON number's,
    /// the decimal it holds (`1234.5`), which a number field reads whatever the
    /// mapping's separators (they are for text). Only the reader marks a slot.
    numbers: Vec<u32>,
}

impl RawRow {
    /// An empty row that starts on `line`.
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

    /// An empty row with room for `slots` values of `bytes` bytes in all.
    pub fn with_capacity(line: u64, slots: usize, bytes: usize) -> RawRow {
        RawRow {
            line,
            text: String::with_capacity(bytes),
            bounds: Vec::with_capacity(slots),
            slot_lines: Vec::new(),
            dates: Vec::new(),
            numbers: Vec::new(),
        }
    }

    /// A row from the text of its values and, per slot, the range of its value in `text`
    /// and the line it was found on (`None`: absent; its line is the row's) (XML).
    pub fn from_parts(
        line: u64,
        text: &str,
        slots: impl ExactSizeIterator<Item = Option<(u32, u32, u64)>>,
    ) -> RawRow {
        let mut bounds = Vec::with_capacity(slots.len());
        let mut slot_lines = Vec::with_capacity(slots.len());
        for s in slots {
            match s {
                Some((start, end, l)) => {
                    debug_assert!(start <= end && end as usize <= text.len());
                    bounds.push((start, end));
                    slot_lines.push(l);
                }
                None => {
                    bounds.push((ABSENT, ABSENT));
                    slot_lines.push(line);
                }
            }
        }
        RawRow {
            line,
            text: text.to_string(),
            bounds,
            slot_lines,
            dates: Vec::new(),
            numbers: Vec::new(),
        }
    }

    /// Appends the row to `out` for a temporary file ([`codec`](crate::codec)).
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u64(out, self.line);
        put_bytes(out, self.text.as_bytes());
        put_len(out, self.bounds.len());
        for &(s, e) in &self.bounds {
            put_u32(out, s);
            put_u32(out, e);
        }
        put_len(out, self.slot_lines.len());
        for &l in &self.slot_lines {
            put_u64(out, l);
        }
        for marks in [&self.dates, &self.numbers] {
            put_len(out, marks.len());
            for &d in marks {
                put_u32(out, d);
            }
        }
    }

    /// Takes a row written by [`encode`](RawRow::encode) from the front of `buf`.
    pub fn decode(buf: &mut &[u8]) -> Option<RawRow> {
        let line = take_u64(buf)?;
        let text = take_str(buf)?.to_string();
        let n = take_len(buf)?;
        let mut bounds = Vec::with_capacity(n.min(buf.len() / 8));
        for _ in 0..n {
            let s = take_u32(buf)?;
            let e = take_u32(buf)?;
            if s != ABSENT && (s > e || e as usize > text.len()) {
                return None;
            }
            bounds.push((s, e));
        }
        let n = take_len(buf)?;
        let mut slot_lines = Vec::with_capacity(n.min(buf.len() / 8));
        for _ in 0..n {
            slot_lines.push(take_u64(buf)?);
        }
        let mut marks = || -> Option<Vec<u32>> {
            let n = take_len(buf)?;
            let mut out = Vec::with_capacity(n.min(buf.len() / 4));
            for _ in 0..n {
                out.push(take_u32(buf)?);
            }
            Some(out)
        };
        let dates = marks()?;
        let numbers = marks()?;
        Some(RawRow {
            line,
            text,
            bounds,
            slot_lines,
            dates,
            numbers,
        })
    }

    /// Marks the last slot pushed as a date cell's value (workbooks).
    pub fn mark_date(&mut self) {
        if let Some(last) = self.bounds.len().checked_sub(1) {
            self.dates.push(last as u32);
        }
    }

    /// Whether `slot` holds a date cell's value, ISO 8601 (workbooks).
    pub fn is_date(&self, slot: usize) -> bool {
        !self.dates.is_empty() && self.dates.contains(&(slot as u32))
    }

    /// Marks the last slot pushed as a number cell's value (workbooks).
    pub fn mark_number(&mut self) {
        if let Some(last) = self.bounds.len().checked_sub(1) {
            self.mark_number_of(last);
        }
    }

    /// Marks `slot` as a number's value (JSON, whose rows are built [`from_parts`]).
    ///
    /// [`from_parts`]: RawRow::from_parts
    pub fn mark_number_of(&mut self, slot: usize) {
        if slot < self.bounds.len() && !self.is_number(slot) {
            self.numbers.push(slot as u32);
        }
    }

    /// Whether `slot` holds a number cell's value or a JSON number, the decimal it
    /// holds with a `.` and no thousands separator (workbooks, JSON).
    pub fn is_number(&self, slot: usize) -> bool {
        !self.numbers.is_empty() && self.numbers.contains(&(slot as u32))
    }

    /// The value of `slot`; `None` when the source has none (an XML element not there).
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

    /// How many slots the row has values for.
    pub fn len(&self) -> usize {
        self.bounds.len()
    }

    /// Whether the row has no slots.
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

    /// Appends the document to `out` for a temporary file ([`codec`](crate::codec)).
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_key(out, &self.key);
        put_u64(out, self.line);
        put_u64(out, self.rows);
        self.header.encode(out);
        put_len(out, self.lines.len());
        for l in &self.lines {
            l.encode(out);
        }
        put_len(out, self.problems.len());
        for p in &self.problems {
            put_bytes(out, &serde_json::to_vec(p).expect("a problem serialises"));
        }
    }

    /// Reads a document written by [`encode`](RawDocument::encode).
    pub fn decode(mut buf: &[u8]) -> Option<RawDocument> {
        let b = &mut buf;
        let key = take_key(b)?;
        let line = take_u64(b)?;
        let rows = take_u64(b)?;
        let header = RawRow::decode(b)?;
        let n = take_len(b)?;
        let mut lines = Vec::with_capacity(n.min(b.len()));
        for _ in 0..n {
            lines.push(RawRow::decode(b)?);
        }
        let n = take_len(b)?;
        let mut problems = Vec::with_capacity(n.min(b.len()));
        for _ in 0..n {
            problems.push(serde_json::from_slice(crate::codec::take_bytes(b)?).ok()?);
        }
        Some(RawDocument {
            key,
            line,
            header,
            lines,
            problems,
            rows,
        })
    }
}

/// Appends a document key (its parts) for a temporary file.
pub fn put_key(out: &mut Vec<u8>, key: &[String]) {
    put_len(out, key.len());
    for k in key {
        put_bytes(out, k.as_bytes());
    }
}

/// Takes a key written by [`put_key`] from the front of `buf`.
pub fn take_key(buf: &mut &[u8]) -> Option<Vec<String>> {
    let n = take_len(buf)?;
    let mut key = Vec::with_capacity(n.min(buf.len() / 8));
    for _ in 0..n {
        key.push(take_str(buf)?.to_string());
    }
    Some(key)
}

/// Why a source stopped.
#[derive(Debug)]
pub enum SourceError {
    /// The whole file is unusable (unreadable, wrong encoding, malformed, no header).
    Fatal(Problem),
    /// A key appeared again after other keys: the file must be read in ungrouped mode.
    Ungrouped,
    /// Reading could not go on for a reason outside the file (a temporary file could not
    /// be written or read back): the file is not at fault and waits for the next run.
    Environment(String),
    /// XML: keys (by [`key_hash`](keys::key_hash)) that occur more than once,
    /// found only at the end of the file: it must be read again knowing them, so that
    /// each repeat is reported on its record.
    Repeated(Vec<u64>),
}

impl From<Problem> for SourceError {
    fn from(p: Problem) -> SourceError {
        SourceError::Fatal(p)
    }
}

/// A stream of documents read from one file.
pub trait DocumentSource {
    /// The next document, `None` at the end.
    fn next_document(&mut self) -> Option<Result<RawDocument, SourceError>>;
    /// Bytes of the file consumed so far (for progress bars).
    fn bytes_read(&self) -> u64;
    /// Rows left out by `[[skip]]` so far (they make no document).
    fn skipped(&self) -> u64 {
        0
    }
    /// How the column that a field's `from` names is shown in a problem, where the
    /// format shows it otherwise than by that name (a workbook: `C (Amount)`).
    fn column_label(&self, _column: &str) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::Code;

    #[test]
    fn a_document_comes_back_from_a_temporary_file_as_it_went() {
        let mut header = RawRow::new(3);
        header.push(Some("INV-1"));
        header.push(None);
        header.push(Some("Grüße"));
        header.push(Some("2026-11-20"));
        header.mark_date();
        header.push(Some("1234.5"));
        header.mark_number();
        let line = RawRow::from_parts(
            4,
            "ab",
            [Some((0, 1, 4)), None, Some((1, 2, 5))].into_iter(),
        );
        let doc = RawDocument {
            key: vec!["INV-1".into(), "".into()],
            line: 3,
            header,
            lines: vec![line.clone(), line],
            problems: vec![Problem::file(Code::Malformed, Some(4), "bad")],
            rows: 2,
        };
        let mut buf = Vec::new();
        doc.encode(&mut buf);
        let back = RawDocument::decode(&buf).expect("a document");
        assert_eq!(format!("{back:?}"), format!("{doc:?}"));
        // cut short anywhere: damaged, never a panic
        for n in 0..buf.len() {
            assert!(RawDocument::decode(&buf[..n]).is_none(), "{n}");
        }
    }
}
