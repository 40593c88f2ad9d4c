//! CSV exports: one row per document line, rows that share the key form one document.
//!
//! The file is streamed. Input grouped by key (the usual case: an export writes an
//! invoice's lines together) holds one document at a time; when a key comes back after
//! other keys, [`SourceError::Ungrouped`] tells the caller to read the file again in
//! ungrouped mode, which collects documents by key.
//!
//! The parts: `end_of_input` (the reader under the CSV parser, which marks where the
//! text ends and finds NUL bytes), `header` (the header row, and which column each
//! slot reads), `grouping` (rows become documents, streamed while the file is grouped
//! by key), `ungrouped` (the external sort for a file that is not) and `problems`
//! (what is wrong with a row or the file, in words).

mod end_of_input;
mod grouping;
mod header;
mod problems;
mod rows;
#[cfg(test)]
mod tests;
mod ungrouped;

pub use end_of_input::MAX_HEADER_BYTES;
pub(crate) use header::{resolve as resolve_columns, resolve_column, SlotColumns};
pub(crate) use problems::io_problem;

use super::decode::{DecodeReader, Tap, TapReader};
use super::extsort::Sorted;
use super::keys::SeenKeys;
use super::{count_newlines, Budget, Slots, SourceOptions};
use super::{RawDocument, SourceError};
use crate::problem::{Code, Problem};
use encoding_rs::UTF_8;
use end_of_input::{unclosed_quote, unclosed_quote_problem, EndWithNewline};
use problems::{csv_problem, nul_problem, utf8_problem};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::rc::Rc;

/// Whether a file is read as grouped (streaming) or ungrouped (collect by key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    Grouped,
    Ungrouped,
}

/// The reader under the CSV parser: the file's bytes counted and hashed, decoded, buffered
/// and ended by position.
type Inner<R> = EndWithNewline<BufReader<DecodeReader<TapReader<R>>>>;

/// A CSV export read as a stream of documents.
pub struct CsvSource<R: Read> {
    rdr: csv::Reader<Inner<R>>,
    line_offset: u64,
    columns: Vec<String>,
    header_idx: Vec<usize>,
    line_idx: Vec<usize>,
    key_idx: Vec<usize>,
    wants_lines: bool,
    /// The buffer rows are read into.
    record: csv::ByteRecord,
    /// The current row, checked as UTF-8 field by field (its fields are `&str` at no
    /// further cost); its buffer goes back to reading when the next row is read.
    row: Option<csv::StringRecord>,
    spare: Option<csv::ByteRecord>,
    pending: Option<RawDocument>,
    queue: VecDeque<RawDocument>,
    /// Grouped mode: the keys seen, to find one that comes back (taken at the end).
    keys: Option<SeenKeys>,
    grouping: Grouping,
    /// Ungrouped mode: the documents, sorted back into the order of their first rows.
    sorted: Option<Sorted>,
    /// The memory of the key log and of the sorts.
    budget: Budget,
    finished: bool,
    tap: Rc<RefCell<Tap>>,
    /// `[[skip]]` rules with their columns (when the file is not read through the
    /// [`rows`](crate::source::rows) layer, which skips rows itself).
    skip: Vec<(usize, crate::source::SkipRule)>,
    skipped: u64,
}

impl<R: Read> CsvSource<R> {
    /// Opens the file, reads the header row and resolves every slot to a column.
    /// A problem here concerns the whole file.
    pub fn open(
        input: R,
        tap: Rc<RefCell<Tap>>,
        opts: &SourceOptions,
        slots: &Slots,
        grouping: Grouping,
    ) -> Result<CsvSource<R>, Problem> {
        let encoding = opts.encoding.unwrap_or(UTF_8);
        let budget = opts.budget;
        let code_page = opts.code_page;
        let opts = &opts.csv;
        let decoder = DecodeReader::new(TapReader::new(input, tap.clone()), encoding)
            .with_code_page(code_page);
        let mut buffered = BufReader::with_capacity(256 * 1024, decoder);
        let skipped = skip_lines(&mut buffered, opts.skip_lines)?;
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(opts.delimiter)
            .quote(opts.quote)
            .has_headers(false)
            .flexible(true)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(EndWithNewline::new(buffered));
        let columns = if opts.header {
            header::read(&mut rdr, skipped, encoding)?
        } else {
            Vec::new()
        };
        let idx = header::resolve(&columns, slots, opts.header, skipped)?;
        Ok(CsvSource {
            rdr,
            line_offset: skipped,
            columns,
            header_idx: idx.header,
            line_idx: idx.lines,
            key_idx: idx.key,
            wants_lines: slots.wants_lines || !slots.lines.is_empty(),
            record: csv::ByteRecord::new(),
            row: None,
            spare: None,
            pending: None,
            queue: VecDeque::new(),
            keys: (grouping == Grouping::Grouped).then(|| SeenKeys::new(budget.key_window)),
            grouping,
            sorted: None,
            budget,
            finished: false,
            tap,
            skip: Vec::new(),
            skipped: 0,
        })
    }

    /// Leaves out the rows that a `[[skip]]` rule matches; a column that the file lacks
    /// is a problem of the whole file.
    pub fn with_skip(mut self, rules: &[crate::source::SkipRule]) -> Result<Self, Problem> {
        use crate::source::rows::RowReader;
        for r in rules {
            let col = self.resolve(&r.column, None).map_err(|m| {
                Problem::file(
                    Code::MissingColumn,
                    None,
                    format!("[[skip]] reads a column the file does not have: {m}"),
                )
                .with_value(r.column.clone())
            })?;
            self.skip.push((col, r.clone()));
        }
        Ok(self)
    }

    /// Whether a `[[skip]]` rule leaves the current row out.
    fn skips_row(&self) -> bool {
        self.skip
            .iter()
            .any(|(c, r)| r.skips(crate::source::trim(self.field(*c).unwrap_or(""))))
    }

    fn column_name(&self, idx: usize) -> String {
        self.columns
            .get(idx)
            .cloned()
            .unwrap_or_else(|| (idx + 1).to_string())
    }

    /// Reads the next non-blank row into `self.row`; `Ok(false)` at the end.
    fn read_row(&mut self) -> Result<bool, Problem> {
        if let Some(old) = self.row.take() {
            self.spare = Some(old.into_byte_record());
        }
        loop {
            let got = self
                .rdr
                .read_byte_record(&mut self.record)
                .map_err(|e| csv_problem(e, self.line_offset))?;
            if !got {
                return Ok(false);
            }
            if is_blank(&self.record) {
                continue;
            }
            if unclosed_quote(&self.rdr) {
                return Err(unclosed_quote_problem(self.row_line()));
            }
            if self.rdr.get_ref().nul_before(self.rdr.position().byte()) {
                let line = self.row_line();
                if let Some(p) = nul_problem(&self.record, line, |i| self.column_name(i)) {
                    return Err(p);
                }
            }
            let spare = self.spare.take().unwrap_or_default();
            let bytes = std::mem::replace(&mut self.record, spare);
            match csv::StringRecord::from_byte_record(bytes) {
                Ok(row) => {
                    self.row = Some(row);
                    if !self.skip.is_empty() && self.skips_row() {
                        self.skipped += 1;
                        self.spare = self.row.take().map(csv::StringRecord::into_byte_record);
                        continue;
                    }
                    return Ok(true);
                }
                Err(e) => {
                    self.spare = Some(std::mem::replace(&mut self.record, e.into_byte_record()));
                }
            }
            // Find the field, and the physical line inside a quoted multi-line value.
            let line = self.row_line();
            let mut extra_lines = 0;
            for (i, field) in self.record.iter().enumerate() {
                if let Err(err) = std::str::from_utf8(field) {
                    let within = err.valid_up_to();
                    extra_lines += count_newlines(&field[..within]);
                    return Err(utf8_problem(
                        line + extra_lines,
                        &self.column_name(i),
                        field,
                        err,
                        encoding_rs::UTF_8,
                    ));
                }
                extra_lines += count_newlines(field);
            }
            return Err(Problem::file(
                Code::Encoding,
                Some(line),
                "The row is not valid UTF-8",
            ));
        }
    }

    /// The bytes of the current row (while it is read: of the read buffer).
    fn current(&self) -> &csv::ByteRecord {
        match &self.row {
            Some(r) => r.as_byte_record(),
            None => &self.record,
        }
    }

    fn row_line(&self) -> u64 {
        record_line(&self.rdr, self.current(), self.line_offset)
    }

    fn field(&self, idx: usize) -> Option<&str> {
        let row = self.row.as_ref()?;
        let f = row.get(idx)?;
        if idx + 1 == row.len() {
            // the `\r` of a CRLF line end
            return Some(f.strip_suffix('\r').unwrap_or(f));
        }
        Some(f)
    }

    /// How many fields the current row has.
    fn fields(&self) -> usize {
        self.current().len()
    }
}

/// Skips the first `n` physical lines (report titles above the header); how many there
/// were.
fn skip_lines<R: BufRead>(input: &mut R, n: usize) -> Result<u64, Problem> {
    let mut skipped = 0u64;
    let mut scratch = Vec::new();
    for _ in 0..n {
        scratch.clear();
        let got = input
            .read_until(b'\n', &mut scratch)
            .map_err(|e| io_problem(&e, skipped + 1))?;
        if got == 0 {
            break;
        }
        skipped += 1;
    }
    Ok(skipped)
}

impl<R: Read> super::DocumentSource for CsvSource<R> {
    fn next_document(&mut self) -> Option<Result<RawDocument, SourceError>> {
        match self.grouping {
            Grouping::Grouped => self.next_grouped(),
            Grouping::Ungrouped => self.next_sorted(),
        }
    }

    fn bytes_read(&self) -> u64 {
        self.tap.borrow().bytes
    }

    fn skipped(&self) -> u64 {
        self.skipped
    }
}

/// The physical line where the record just read starts: the reader stands at the start
/// of the line after the record's `\n`; newlines inside quoted values move it down. A
/// record with an unclosed quote has no `\n` of its own: its last one is inside.
fn record_line<R: Read>(rdr: &csv::Reader<Inner<R>>, record: &csv::ByteRecord, offset: u64) -> u64 {
    let inside = count_newlines(record.as_slice());
    let terminator = u64::from(!unclosed_quote(rdr));
    rdr.position()
        .line()
        .saturating_sub(terminator + inside)
        .max(1)
        + offset
}

fn is_blank(record: &csv::ByteRecord) -> bool {
    record
        .iter()
        .all(|f| f.iter().all(|b| b.is_ascii_whitespace()))
}
