//! Fixed-width exports (bank statements, mainframe and 1C extracts): one record per line,
//! each column at a fixed position, counted in characters after decoding (a Windows-1251
//! "Ж" or a UTF-8 "ü" is one character).
//!
//! The reader only gives out lines and the values at their positions; record types,
//! skipped rows, the trailer and the grouping into documents are the
//! [`rows`](crate::source::rows) layer's, as for CSV.

#[cfg(test)]
mod tests;

use super::decode::{DecodeReader, Tap, TapReader};
use super::rows::RowReader;
use super::{FixedColumn, RecordTypes, RowKind, SourceError, SourceOptions};
use crate::problem::{Code, Problem};
use crate::source::csv::io_problem;
use crate::source::decode::hex_bytes;
use encoding_rs::UTF_8;
use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read};
use std::rc::Rc;

/// The longest line read (1 MiB): a longer one is no fixed-width record, and reading it
/// whole would hold all of it.
pub const MAX_LINE_BYTES: u64 = 1 << 20;

/// A column a field can read: its name, the record type whose table defines it (`None`:
/// `[source.columns]`, every type) and its position.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    of_type: Option<String>,
    at: FixedColumn,
}

/// A fixed-width file read line by line.
pub struct FixedReader<R: Read> {
    input: BufReader<DecodeReader<TapReader<R>>>,
    /// The current line, without its line end.
    text: String,
    /// Where each character of `text` starts (and its end), when it is not ASCII.
    chars: Vec<usize>,
    ascii: bool,
    /// Physical lines read so far; the current row's line.
    lines: u64,
    columns: Vec<Column>,
    record_types: Option<RecordTypes>,
    /// Title lines still to skip before the first record (`skip_lines`).
    skip_lines: usize,
    tap: Rc<RefCell<Tap>>,
}

impl<R: Read> FixedReader<R> {
    /// Opens a file in the mapping's encoding (a byte-order mark wins).
    pub fn open(input: R, tap: Rc<RefCell<Tap>>, opts: &SourceOptions) -> FixedReader<R> {
        let encoding = opts.encoding.unwrap_or(UTF_8);
        let decoder = DecodeReader::new(TapReader::new(input, tap.clone()), encoding)
            .with_code_page(opts.code_page);
        let mut columns: Vec<Column> = opts
            .fixed
            .columns
            .iter()
            .map(|(n, &at)| Column {
                name: n.clone(),
                of_type: None,
                at,
            })
            .collect();
        for (t, cols) in &opts.fixed.types {
            columns.extend(cols.iter().map(|(n, &at)| Column {
                name: n.clone(),
                of_type: Some(t.clone()),
                at,
            }));
        }
        FixedReader {
            input: BufReader::with_capacity(256 * 1024, decoder),
            text: String::new(),
            chars: Vec::new(),
            ascii: true,
            lines: 0,
            columns,
            record_types: opts.rows.record_type.clone(),
            skip_lines: opts.csv.skip_lines,
            tap,
        }
    }

    /// Skips the title lines above the records (`skip_lines`), unread as CSV's are: only
    /// counted, so that line numbers stay the file's. A file with fewer lines ends there.
    fn skip_titles(&mut self) -> Result<(), SourceError> {
        while self.skip_lines > 0 {
            self.skip_lines -= 1;
            let line = self.lines + 1;
            let n = self
                .input
                .skip_until(b'\n')
                .map_err(|e| io_problem(&e, line))?;
            if n == 0 {
                self.skip_lines = 0;
                break;
            }
            self.lines = line;
        }
        Ok(())
    }

    /// The name of a column that holds the 1-based `character` (the shared table's
    /// first, then the record types'), for a problem with a byte there.
    fn column_at(&self, character: u64) -> Option<String> {
        let at = usize::try_from(character).ok()?.checked_sub(1)?;
        self.columns
            .iter()
            .find(|c| c.at.start <= at && at < c.at.start + c.at.width)
            .map(|c| match &c.of_type {
                Some(t) => format!("{} ({t})", c.name),
                None => c.name.clone(),
            })
    }

    /// How many characters the current line has.
    fn len_chars(&self) -> usize {
        if self.ascii {
            self.text.len()
        } else {
            self.chars.len() - 1
        }
    }

    /// The byte offset of character `i` (at most the line's length).
    fn byte_at(&self, i: usize) -> usize {
        if self.ascii {
            i.min(self.text.len())
        } else {
            self.chars[i.min(self.chars.len() - 1)]
        }
    }
}

impl<R: Read> RowReader for FixedReader<R> {
    fn next_row(&mut self) -> Result<bool, SourceError> {
        self.skip_titles()?;
        let mut buf = std::mem::take(&mut self.text).into_bytes();
        loop {
            buf.clear();
            let line = self.lines + 1;
            let n = (&mut self.input)
                .take(MAX_LINE_BYTES + 1)
                .read_until(b'\n', &mut buf)
                .map_err(|e| io_problem(&e, line))?;
            if n == 0 {
                return Ok(false);
            }
            self.lines = line;
            if buf.last() == Some(&b'\n') {
                buf.pop();
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
            } else if buf.len() as u64 > MAX_LINE_BYTES {
                return Err(SourceError::Fatal(Problem::file(
                    Code::Malformed,
                    Some(line),
                    format!(
                        "The line is longer than {} MiB: it is not a fixed-width record (is the file in another format, or are its line ends lost?)",
                        MAX_LINE_BYTES >> 20
                    ),
                )));
            }
            if let Some(at) = memchr::memchr(0, &buf) {
                let character = String::from_utf8_lossy(&buf[..at]).chars().count() as u64 + 1;
                let msg = "The byte 0x00 (NUL) is not text: the file is damaged, in another encoding (UTF-16 without a byte-order mark? set source.encoding in the mapping) or not a text file";
                return Err(SourceError::Fatal(
                    Problem::file(Code::Encoding, Some(line), msg)
                        .with_character(Some(character))
                        .with_column_opt(self.column_at(character))
                        .with_value(hex_bytes(&[0])),
                ));
            }
            let text = match String::from_utf8(buf) {
                Ok(t) => t,
                Err(e) => {
                    let err = e.utf8_error();
                    let bytes = e.as_bytes();
                    let at = err.valid_up_to();
                    let bad = &bytes[at..(at + err.error_len().unwrap_or(1)).min(bytes.len())];
                    let character =
                        String::from_utf8_lossy(&bytes[..at]).chars().count() as u64 + 1;
                    let msg = format!(
                        "The bytes {} are not valid UTF-8: the file is in another encoding (set source.encoding in the mapping, e.g. \"windows-1251\") or is not a text file",
                        hex_bytes(bad)
                    );
                    return Err(SourceError::Fatal(
                        Problem::file(Code::Encoding, Some(line), msg)
                            .with_character(Some(character))
                            .with_column_opt(self.column_at(character))
                            .with_value(hex_bytes(bad)),
                    ));
                }
            };
            if text.bytes().all(|b| b.is_ascii_whitespace()) {
                buf = text.into_bytes();
                continue;
            }
            self.ascii = text.is_ascii();
            self.chars.clear();
            if !self.ascii {
                self.chars.extend(text.char_indices().map(|(i, _)| i));
                self.chars.push(text.len());
            }
            self.text = text;
            return Ok(true);
        }
    }

    fn line(&self) -> u64 {
        self.lines
    }

    fn resolve(&self, name: &str, kind: Option<RowKind>) -> Result<usize, String> {
        let code = kind.and_then(|k| self.record_types.as_ref()?.code(k));
        let own = code.and_then(|c| {
            self.columns
                .iter()
                .position(|col| col.name == name && col.of_type.as_deref() == Some(c))
        });
        let shared = || {
            self.columns
                .iter()
                .position(|col| col.name == name && col.of_type.is_none())
        };
        own.or_else(shared).ok_or_else(|| match code {
            Some(c) => format!("no column {name:?} in [source.columns] or [source.columns.{c}]"),
            None => format!("no column {name:?} in [source.columns]"),
        })
    }

    fn value(&self, col: usize) -> Result<&str, Problem> {
        let c = &self.columns[col];
        let (start, end) = (c.at.start, c.at.start + c.at.width);
        let len = self.len_chars();
        let (from, to) = (self.byte_at(start), self.byte_at(end));
        if end > len {
            let msg = format!(
                "The line ends at character {len}, but column {} takes characters {} to {end} (start = {}, width = {}): the line is cut short, or the layout in [source.columns] is not this file's",
                c.name,
                start + 1,
                start + 1,
                c.at.width
            );
            return Err(Problem::file(Code::Malformed, Some(self.lines), msg)
                .with_column(c.name.clone())
                .with_value(self.text[from..to].to_string()));
        }
        Ok(&self.text[from..to])
    }

    fn column_name(&self, col: usize) -> String {
        self.columns
            .get(col)
            .map_or_else(|| (col + 1).to_string(), |c| c.name.clone())
    }

    fn bytes_read(&self) -> u64 {
        self.tap.borrow().bytes
    }
}
