//! CSV exports: one row per document line, rows that share the key form one document.
//!
//! The file is streamed. Input grouped by key (the usual case: an export writes an
//! invoice's lines together) holds one document at a time; when a key comes back after
//! other keys, [`SourceError::Ungrouped`] tells the caller to read the file again in
//! ungrouped mode, which collects documents by key.

use super::decode::{encoding_error, hex_bytes, DecodeReader, Tap, TapReader};
use super::{RawDocument, RawRow, Slots, SourceError};
use crate::extsort::{Sorted, Sorter};
use crate::keylog::{key_hash, KeyLog};
use crate::problem::MAX_MESSAGE_CHARS;
use crate::problem::{group_digits, quote, Code, Problem, Stage};
use encoding_rs::Encoding;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::rc::Rc;

/// Memory for each of the two sorts of ungrouped mode before they spill to disk
/// (`ERPDROP_SORT_MEMORY`, in bytes, overrides it, for tests).
const SORT_BUDGET: usize = 8 << 20;

fn sort_budget() -> usize {
    std::env::var("ERPDROP_SORT_MEMORY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SORT_BUDGET)
}

/// How to read a CSV file.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    pub delimiter: u8,
    pub quote: u8,
    pub header: bool,
    pub skip_lines: usize,
    pub encoding: &'static Encoding,
}

/// Whether a file is read as grouped (streaming) or ungrouped (collect by key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    Grouped,
    Ungrouped,
}

type Inner<R> = EndWithNewline<BufReader<DecodeReader<TapReader<R>>>>;

/// Makes sure the text ends with `\n`, so that every record is terminated the same way
/// and its physical line can be computed from the reader's position; then appends one
/// more `\n`. After a well-formed file that is a blank line, which the CSV reader skips;
/// when a quote is still open at the end (a truncated or malformed file) it becomes the
/// tail of the last value, and the record that holds it ends past
/// [`tail_start`](EndWithNewline::tail_start). The end is known by position, never by
/// content: no bytes of a file can pass for it.
pub struct EndWithNewline<R> {
    inner: R,
    last: u8,
    /// Bytes of the text given out (the `\n` added after it included).
    given: u64,
    /// How much of the tail (`\n` where needed, then the extra `\n`) was given out.
    tail: Option<([u8; 2], usize, usize)>,
    /// Where the extra `\n` starts, once the text has ended.
    tail_start: Option<u64>,
    /// How many bytes of text it may give out (while the header is read).
    cap: Option<u64>,
    /// Where the first NUL byte of the text is: the record that holds it is an
    /// `encoding` error (one memchr per buffer, not one per row).
    nul: Option<u64>,
}

/// The longest header row read (1 MiB): a longer one is no export's header, and reading
/// it whole would hold all of it (50 MB of header took 440 MB of memory).
pub const MAX_HEADER_BYTES: u64 = 1 << 20;

/// The header row did not end within [`MAX_HEADER_BYTES`].
#[derive(Debug)]
struct HeaderTooLong;

impl std::fmt::Display for HeaderTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the header row is longer than {MAX_HEADER_BYTES} bytes")
    }
}

impl std::error::Error for HeaderTooLong {}

fn is_header_too_long(e: &csv::Error) -> bool {
    matches!(e.kind(), csv::ErrorKind::Io(io) if io.get_ref().is_some_and(|x| x.is::<HeaderTooLong>()))
}

fn header_too_long_problem(line: u64) -> Problem {
    Problem::file(Code::Malformed, Some(line), format!(
                "The header row is longer than {} MiB: it is not the header of an export (or a quote in it is never closed)",
                MAX_HEADER_BYTES >> 20
            ))
}

impl<R> EndWithNewline<R> {
    fn new(inner: R) -> Self {
        EndWithNewline {
            inner,
            last: 0,
            given: 0,
            tail: None,
            tail_start: None,
            cap: None,
            nul: None,
        }
    }

    /// Whether a record that ends at byte `end` of the reader's input swallowed the tail:
    /// a quote opened in it is never closed.
    fn past_the_text(&self, end: u64) -> bool {
        self.tail_start.is_some_and(|t| end > t)
    }

    /// Whether the bytes before `end` hold a NUL.
    fn nul_before(&self, end: u64) -> bool {
        self.nul.is_some_and(|at| at < end)
    }
}

impl<R: Read> Read for EndWithNewline<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.tail.is_none() {
            let mut buf = &mut *buf;
            if let Some(cap) = self.cap {
                let left = cap.saturating_sub(self.given);
                if left == 0 && !buf.is_empty() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        HeaderTooLong,
                    ));
                }
                let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                buf = &mut buf[..n];
            }
            let n = self.inner.read(buf)?;
            if n > 0 {
                if self.nul.is_none() && buf[..n].contains(&0) {
                    self.nul = buf[..n]
                        .iter()
                        .position(|&b| b == 0)
                        .map(|i| self.given + i as u64);
                }
                self.given += n as u64;
                self.last = buf[n - 1];
                return Ok(n);
            }
            if buf.is_empty() {
                return Ok(0);
            }
            // an empty file stays empty
            let mut tail = ([b'\n'; 2], 0, 0);
            if self.given > 0 {
                tail.2 = if self.last == b'\n' { 1 } else { 2 };
                self.tail_start = Some(self.given + tail.2 as u64 - 1);
            }
            self.tail = Some(tail);
        }
        let Some((tail, pos, len)) = self.tail.as_mut() else {
            return Ok(0);
        };
        let n = (*len - *pos).min(buf.len());
        buf[..n].copy_from_slice(&tail[*pos..*pos + n]);
        *pos += n;
        Ok(n)
    }
}

/// Whether the record just read holds the end of the input: a quote opened on its lines
/// is never closed.
fn unclosed_quote<R: Read>(rdr: &csv::Reader<Inner<R>>) -> bool {
    rdr.get_ref().past_the_text(rdr.position().byte())
}

/// The problem of a quote that is not closed before the end of the file.
fn unclosed_quote_problem(line: u64) -> Problem {
    Problem::file(Code::Malformed, Some(line), "A quoted value that starts in this row is not closed before the end of the file: the file is cut off, or a quote character inside a value is not doubled")
}

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
    keys: Option<KeyLog>,
    grouping: Grouping,
    /// Ungrouped mode: the documents, sorted back into the order of their first rows.
    sorted: Option<Sorted>,
    finished: bool,
    tap: Rc<RefCell<Tap>>,
}

impl<R: Read> CsvSource<R> {
    /// Opens the file, reads the header row and resolves every slot to a column.
    /// A problem here concerns the whole file.
    pub fn open(
        input: R,
        tap: Rc<RefCell<Tap>>,
        opts: &CsvOptions,
        slots: &Slots,
        grouping: Grouping,
    ) -> Result<CsvSource<R>, Problem> {
        let decoder = DecodeReader::new(TapReader::new(input, tap.clone()), opts.encoding);
        let mut buffered = BufReader::with_capacity(256 * 1024, decoder);
        let mut skipped = 0u64;
        let mut scratch = Vec::new();
        for _ in 0..opts.skip_lines {
            scratch.clear();
            let n = buffered
                .read_until(b'\n', &mut scratch)
                .map_err(|e| io_problem(&e, skipped + 1))?;
            if n == 0 {
                break;
            }
            skipped += 1;
        }
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(opts.delimiter)
            .quote(opts.quote)
            .has_headers(false)
            .flexible(true)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(EndWithNewline::new(buffered));
        let mut record = csv::ByteRecord::new();
        let mut columns: Vec<String> = Vec::new();
        if opts.header {
            rdr.get_mut().cap = Some(MAX_HEADER_BYTES);
            loop {
                let got = rdr.read_byte_record(&mut record).map_err(|e| {
                    if is_header_too_long(&e) {
                        header_too_long_problem(skipped + 1)
                    } else {
                        csv_problem(e, skipped)
                    }
                })?;
                if !got {
                    return Err(Problem::file(
                        Code::Empty,
                        None,
                        "The file is empty: there is no header row",
                    ));
                }
                if is_blank(&record) {
                    continue;
                }
                let line = record_line(&rdr, &record, skipped);
                if unclosed_quote(&rdr) {
                    return Err(unclosed_quote_problem(line));
                }
                if rdr.get_ref().nul_before(rdr.position().byte()) {
                    let column = |i: usize| format!("header column {}", i + 1);
                    if let Some(p) = nul_problem(&record, line, column) {
                        return Err(p);
                    }
                }
                for (i, field) in record.iter().enumerate() {
                    match std::str::from_utf8(field) {
                        Ok(s) => columns.push(s.trim().trim_start_matches('\u{feff}').to_string()),
                        Err(e) => {
                            return Err(utf8_problem(
                                line,
                                &format!("header column {}", i + 1),
                                field,
                                e,
                                opts.encoding,
                            ))
                        }
                    }
                }
                break;
            }
            rdr.get_mut().cap = None;
            // the header's buffer, as long as the header, is not needed for the rows
            record = csv::ByteRecord::new();
        }
        let mut missing = Vec::new();
        let mut twice = None;
        let mut resolve = |names: &[String]| -> Vec<usize> {
            names
                .iter()
                .map(|n| match resolve_column(&columns, n, opts.header) {
                    Some(i) => {
                        if twice.is_none() && opts.header {
                            twice = second_match(&columns, n, i).map(|j| (n.clone(), i, j));
                        }
                        i
                    }
                    None => {
                        if !missing.contains(n) {
                            missing.push(n.clone());
                        }
                        usize::MAX
                    }
                })
                .collect()
        };
        let header_idx = resolve(&slots.header);
        let line_idx = resolve(&slots.lines);
        let key_idx = resolve(&slots.key);
        if !missing.is_empty() {
            let list = missing
                .iter()
                .map(|m| format!("{m:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            let msg = if opts.header {
                format!(
                    "The header row has no column {list}; its columns are {}",
                    list_columns(&columns)
                )
            } else {
                format!("Column {list} is not a column number (the mapping says header = false, so `from` must be 1, 2, 3...)")
            };
            let line = if opts.header { Some(1 + skipped) } else { None };
            return Err(Problem::file(Code::MissingColumn, line, msg)
                .with_value(missing.join(", "))
                .placed_in_text());
        }
        if let Some((name, i, j)) = twice {
            return Err(ambiguous_column(&columns, &name, i, j, 1 + skipped));
        }
        Ok(CsvSource {
            rdr,
            line_offset: skipped,
            columns,
            header_idx,
            line_idx,
            key_idx,
            wants_lines: slots.wants_lines || !slots.lines.is_empty(),
            record,
            row: None,
            spare: None,
            pending: None,
            queue: VecDeque::new(),
            keys: (grouping == Grouping::Grouped).then(KeyLog::new),
            grouping,
            sorted: None,
            finished: false,
            tap,
        })
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
                    extra_lines += field[..within].iter().filter(|&&b| b == b'\n').count() as u64;
                    return Err(utf8_problem(
                        line + extra_lines,
                        &self.column_name(i),
                        field,
                        err,
                        encoding_rs::UTF_8,
                    ));
                }
                extra_lines += field.iter().filter(|&&b| b == b'\n').count() as u64;
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

    /// Whether the current row's key is `key` (no allocation: the usual case of the
    /// next line of the same document).
    fn row_has_key(&self, key: &[String]) -> bool {
        !key.is_empty()
            && key.len() == self.key_idx.len()
            && self
                .key_idx
                .iter()
                .zip(key)
                .all(|(&i, k)| super::trim(self.field(i).unwrap_or("")) == k)
    }

    fn key_of_row(&self) -> Vec<String> {
        let parts: Vec<String> = self
            .key_idx
            .iter()
            .map(|&i| super::trim(self.field(i).unwrap_or("")).to_string())
            .collect();
        if parts.iter().all(|p| p.is_empty()) {
            Vec::new()
        } else {
            parts
        }
    }

    fn slot_row(&self, idx: &[usize], line: u64) -> RawRow {
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
    fn start_document(&self, key: Vec<String>, line: u64) -> RawDocument {
        let header = self.slot_row(&self.header_idx, line);
        let line_row = self
            .wants_lines
            .then(|| self.slot_row(&self.line_idx, line));
        self.new_document(key, line, header, line_row, self.fields())
    }

    /// Builds a new document from a row's values (`fields`: how many the row had).
    fn new_document(
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
            doc.problems.push(
                Problem::new(Stage::Map, Code::Required, &msg)
                    .with_line(line)
                    .with_column(cols.join(", "))
                    .with_value(String::new()),
            );
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
    fn add_row<'v>(
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
        for (slot, &col) in self.header_idx.iter().enumerate() {
            let new = super::trim(header_value(col));
            let first = super::trim(doc.header.get(slot).unwrap_or(""));
            if !new.is_empty() && !first.is_empty() && new != first {
                let column = self.column_name(col);
                let msg = format!(
                    "Document {} appears again with {} {} but its first row (line {}) has {}",
                    doc.key_display(),
                    column,
                    quote(new),
                    doc.line,
                    quote(first)
                );
                doc.problems.push(
                    Problem::new(Stage::Validate, Code::Duplicate, &msg)
                        .with_document(doc.key_display())
                        .with_line(line)
                        .with_column(column.clone())
                        .with_value(new.to_string()),
                );
                break;
            }
        }
    }

    fn next_grouped(&mut self) -> Option<Result<RawDocument, SourceError>> {
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
                        match keys.repeated() {
                            Ok((_, false)) => {}
                            Ok((_, true)) => return Some(Err(SourceError::Ungrouped)),
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
                if keys.insert(key_hash(&key), line).is_some() {
                    return Some(Err(SourceError::Ungrouped));
                }
            }
            let doc = self.start_document(key, line);
            if let Some(p) = self.pending.replace(doc) {
                return Some(Ok(p));
            }
        }
    }

    /// Ungrouped mode: sorts the rows by key (stably, so a document's rows keep their
    /// order), builds each document, and sorts the documents back into the order of
    /// their first rows. Both sorts keep at most [`SORT_BUDGET`] bytes in memory and
    /// spill the rest to temporary files, so memory stays flat whatever the file's size.
    fn sort_documents(&mut self) -> Result<Sorted, SourceError> {
        let io = |e: std::io::Error| temp_failure(&e);
        let mut rows = Sorter::new(sort_budget());
        let mut docs = Sorter::new(sort_budget());
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
            kbuf.clear();
            for k in &key {
                kbuf.extend_from_slice(&(k.len() as u32).to_be_bytes());
                kbuf.extend_from_slice(k.as_bytes());
            }
            rbuf.clear();
            rbuf.extend_from_slice(&line.to_le_bytes());
            rbuf.extend_from_slice(&(self.fields() as u64).to_le_bytes());
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
            let fields = take_u64(&mut r).ok_or_else(bad)? as usize;
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
                    let key = decode_key(&kbuf).ok_or_else(bad)?;
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
    fn next_sorted(&mut self) -> Option<Result<RawDocument, SourceError>> {
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

/// A temporary file for sorting or key bookkeeping could not be written or read: a
/// failure outside the file, never a problem of its data.
fn temp_failure(e: &std::io::Error) -> SourceError {
    SourceError::Environment(format!(
        "cannot use a temporary file while reading the file (is the temporary folder full?): {e}"
    ))
}

fn take_u64(r: &mut &[u8]) -> Option<u64> {
    let (b, rest) = r.split_first_chunk::<8>()?;
    *r = rest;
    Some(u64::from_le_bytes(*b))
}

/// The key parts of a sort key (each a big-endian length and its bytes).
fn decode_key(mut b: &[u8]) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    while !b.is_empty() {
        let (len, rest) = b.split_first_chunk::<4>()?;
        let len = u32::from_be_bytes(*len) as usize;
        let part = rest.get(..len)?;
        parts.push(String::from_utf8(part.to_vec()).ok()?);
        b = &rest[len..];
    }
    Some(parts)
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
}

/// The physical line where the record just read starts: the reader stands at the start
/// of the line after the record's `\n`; newlines inside quoted values move it down. A
/// record with an unclosed quote has no `\n` of its own: its last one is inside.
fn record_line<R: Read>(rdr: &csv::Reader<Inner<R>>, record: &csv::ByteRecord, offset: u64) -> u64 {
    let inside = record.as_slice().iter().filter(|&&b| b == b'\n').count() as u64;
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

fn resolve_column(columns: &[String], name: &str, header: bool) -> Option<usize> {
    if !header {
        return name
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|&n| n >= 1)
            .map(|n| n - 1);
    }
    columns
        .iter()
        .position(|c| c == name)
        .or_else(|| {
            columns
                .iter()
                .position(|c| c.trim().eq_ignore_ascii_case(name.trim()))
        })
        .or_else(|| {
            // `from = 3` also works with a header row.
            name.trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n >= 1 && n <= columns.len())
                .map(|n| n - 1)
        })
}

/// The header's columns for a message, quoted: as many as fit in a message, then how
/// many more there are (a header line can be 50 MB long).
fn list_columns(columns: &[String]) -> String {
    let mut out = String::new();
    for (i, c) in columns.iter().enumerate() {
        if out.len() > MAX_MESSAGE_CHARS / 2 {
            out.push_str(&format!(
                " and {} more",
                group_digits((columns.len() - i) as u64)
            ));
            break;
        }
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&quote(c));
    }
    out
}

/// Another column than `found` (the first) that `name` matches the same way: by its exact
/// name, or without regard to case and blanks. A column number is never ambiguous.
fn second_match(columns: &[String], name: &str, found: usize) -> Option<usize> {
    let exact = columns[found] == name;
    let same = |c: &String| {
        if exact {
            c == name
        } else {
            c.trim().eq_ignore_ascii_case(name.trim())
        }
    };
    if !exact && !same(&columns[found]) {
        return None;
    }
    (found + 1..columns.len()).find(|&j| same(&columns[j]))
}

/// The header names the column that the mapping reads as `name` twice (columns `i` and
/// `j`, 0-based): whichever erpdrop took, it might be the wrong one.
fn ambiguous_column(columns: &[String], name: &str, i: usize, j: usize, line: u64) -> Problem {
    let (a, b) = (&columns[i], &columns[j]);
    let names = if a == b {
        quote(a)
    } else {
        format!("{} and {}", quote(a), quote(b))
    };
    let msg = format!(
        "The header row names two columns {names} (columns {} and {}) and the mapping reads {}: rename one in the export, or read it by number (from = {} or from = {})",
        i + 1,
        j + 1,
        quote(name),
        i + 1,
        j + 1
    );
    Problem::new(Stage::Read, Code::Duplicate, &msg)
        .with_line(line)
        .with_column(a.clone())
        .with_value(name.to_string())
}

/// "The byte 0x98 is" / "The bytes 0xD0 0xFF are", for messages.
fn the_bytes(bytes: &[u8]) -> String {
    if bytes.len() == 1 {
        format!("The byte {} is", hex_bytes(bytes))
    } else {
        format!("The bytes {} are", hex_bytes(bytes))
    }
}

/// NUL is no character of any text: a CSV value that holds one is damaged, or the file
/// is in another encoding (UTF-16 read as UTF-8 is half NUL bytes). `line`: where the
/// record starts; the problem names the physical line of the byte.
fn nul_problem(
    record: &csv::ByteRecord,
    line: u64,
    column: impl Fn(usize) -> String,
) -> Option<Problem> {
    let mut line = line;
    for (i, field) in record.iter().enumerate() {
        match field.iter().position(|&b| b == 0) {
            Some(at) => {
                line += count_newlines(&field[..at]);
                let column = column(i);
                let msg = "The byte 0x00 (NUL) is not text: the file is damaged, in another encoding (UTF-16 without a byte-order mark? set source.encoding in the mapping) or not a text file";
                return Some(
                    Problem::new(Stage::Read, Code::Encoding, msg)
                        .with_line(line)
                        .with_column(column.clone())
                        .with_value(hex_bytes(&[0])),
                );
            }
            None => line += count_newlines(field),
        }
    }
    None
}

fn count_newlines(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

fn utf8_problem(
    line: u64,
    column: &str,
    field: &[u8],
    err: std::str::Utf8Error,
    encoding: &'static Encoding,
) -> Problem {
    let at = err.valid_up_to();
    let bad_len = err.error_len().unwrap_or(field.len() - at).max(1);
    let bad = &field[at..(at + bad_len).min(field.len())];
    let msg = format!(
        "{} not valid {}: the file is in another encoding (set source.encoding in the mapping, e.g. \"windows-1251\") or is not a text file",
        the_bytes(bad),
        encoding.name()
    );
    Problem::new(Stage::Read, Code::Encoding, &msg)
        .with_line(line)
        .with_column(column.to_string())
        .with_value(hex_bytes(bad))
}

fn io_problem(e: &std::io::Error, line: u64) -> Problem {
    if let Some(enc) = encoding_error(e) {
        let msg = format!(
            "{} not valid {}: the file is in another encoding (check source.encoding in the mapping)",
            the_bytes(&enc.bytes),
            enc.encoding
        );
        return Problem::file(Code::Encoding, Some(enc.line), &msg)
            .with_value(hex_bytes(&enc.bytes));
    }
    Problem::file(
        Code::Io,
        Some(line),
        format!("The file could not be read: {e}"),
    )
}

fn csv_problem(e: csv::Error, line_offset: u64) -> Problem {
    let line = e.position().map(|p| p.line() + line_offset).unwrap_or(0);
    match e.into_kind() {
        // The decoder counts lines from the start of the file, skipped lines included.
        csv::ErrorKind::Io(io) => io_problem(&io, line),
        other => Problem::file(
            Code::Malformed,
            (line > 0).then_some(line),
            format!("The file is not valid CSV: {other:?}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::DocumentSource;
    use super::*;

    fn slots(header: &[&str], lines: &[&str], key: &[&str]) -> Slots {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        Slots {
            header: v(header),
            lines: v(lines),
            key: v(key),
            wants_lines: !lines.is_empty(),
        }
    }

    fn opts(delim: u8) -> CsvOptions {
        CsvOptions {
            delimiter: delim,
            quote: b'"',
            header: true,
            skip_lines: 0,
            encoding: encoding_rs::UTF_8,
        }
    }

    fn read_all(text: &[u8], s: &Slots, g: Grouping) -> Result<Vec<RawDocument>, SourceError> {
        let tap = Rc::new(RefCell::new(Tap::default()));
        let mut src = CsvSource::open(text, tap, &opts(b';'), s, g).map_err(SourceError::Fatal)?;
        let mut out = Vec::new();
        while let Some(d) = src.next_document() {
            out.push(d?);
        }
        Ok(out)
    }

    #[test]
    fn quoted_newline_moves_later_lines_down() {
        let text = b"No;Desc;Amt\r\n1;\"two\r\nlines\";5\r\n2;x;6\r\n";
        let s = slots(&["No"], &["Desc", "Amt"], &["No"]);
        let docs = read_all(text, &s, Grouping::Grouped).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].line, 2);
        assert_eq!(docs[0].lines[0].get(0), Some("two\r\nlines"));
        assert_eq!(docs[1].line, 4);
    }

    #[test]
    fn rows_sharing_a_key_are_one_document() {
        let text = b"No;Item\n1;a\n1;b\n2;c\n";
        let s = slots(&["No"], &["Item"], &["No"]);
        let docs = read_all(text, &s, Grouping::Grouped).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].lines.len(), 2);
        assert_eq!(docs[0].rows, 2);
    }

    #[test]
    fn a_key_that_comes_back_asks_for_ungrouped_mode() {
        let text = b"No;Item\n1;a\n2;b\n1;c\n";
        let s = slots(&["No"], &["Item"], &["No"]);
        assert!(matches!(
            read_all(text, &s, Grouping::Grouped),
            Err(SourceError::Ungrouped)
        ));
        let docs = read_all(text, &s, Grouping::Ungrouped).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].lines.len(), 2);
        assert_eq!(docs[0].lines[1].line, 4);
    }

    #[test]
    fn blank_and_delimiter_only_lines_are_skipped() {
        let text = b"No;Item\n1;a\n\n;\n  \n";
        let s = slots(&["No"], &["Item"], &["No"]);
        let docs = read_all(text, &s, Grouping::Grouped).unwrap();
        assert_eq!(docs.len(), 1);
    }

    #[test]
    fn differing_header_value_is_a_duplicate() {
        let text = b"No;Cust;Item\n1;C1;a\n1;C2;b\n1;;c\n";
        let s = slots(&["Cust"], &["Item"], &["No"]);
        let docs = read_all(text, &s, Grouping::Grouped).unwrap();
        assert_eq!(docs[0].problems.len(), 1);
        let p = &docs[0].problems[0];
        assert_eq!(p.code, Code::Duplicate);
        assert_eq!(p.line, Some(3));
        assert_eq!(p.value.as_deref(), Some("C2"));
    }

    #[test]
    fn invalid_utf8_names_line_and_column() {
        let text = b"No;Name\n1;ok\n2;\xCE\xCE\xCE\n";
        let s = slots(&["Name"], &[], &["No"]);
        let err = read_all(text, &s, Grouping::Grouped).unwrap_err();
        let SourceError::Fatal(p) = err else { panic!() };
        assert_eq!(p.code, Code::Encoding);
        assert_eq!(p.line, Some(3));
        assert_eq!(p.column.as_deref(), Some("Name"));
    }

    #[test]
    fn a_quote_open_at_the_end_is_malformed_on_its_starting_line() {
        let s = slots(&["Name"], &[], &["No"]);
        for text in [
            &b"No;Name\n1;ok\n\n2;\"cut\noff"[..],
            b"No;Name\n1;ok\n\n2;\"cut\noff\n",
            b"No;Name\r\n1;ok\r\n\r\n2;\"cut\r\n",
        ] {
            let err = read_all(text, &s, Grouping::Grouped).unwrap_err();
            let SourceError::Fatal(p) = err else { panic!() };
            assert_eq!((p.code, p.line), (Code::Malformed, Some(4)), "{text:?}");
        }
        // a closed quote at the very end is fine, with or without the last newline
        for text in [&b"No;Name\n1;\"a\nb\""[..], b"No;Name\n1;\"a\nb\"\n\n"] {
            let docs = read_all(text, &s, Grouping::Grouped).unwrap();
            assert_eq!(docs.len(), 1);
            assert_eq!(docs[0].header.get(0), Some("a\nb"));
        }
    }

    /// Each record of `text` as the reader under [`CsvSource`] sees it: its fields and
    /// whether it holds the end of the input (a quote left open).
    fn records(text: &[u8]) -> Vec<(Vec<Vec<u8>>, bool)> {
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(b';')
            .has_headers(false)
            .flexible(true)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(EndWithNewline::new(BufReader::new(DecodeReader::new(
                TapReader::new(text, Rc::new(RefCell::new(Tap::default()))),
                encoding_rs::UTF_8,
            ))));
        let mut out = Vec::new();
        let mut r = csv::ByteRecord::new();
        while rdr.read_byte_record(&mut r).unwrap() {
            out.push((r.iter().map(<[u8]>::to_vec).collect(), unclosed_quote(&rdr)));
        }
        out
    }

    #[test]
    fn the_end_of_the_input_is_known_by_position_not_by_content() {
        // the record erpdrop once appended to find the end, as a row of the file
        let old = "\0erpdrop:end-of-file\0";
        for text in [
            format!("a;b\n{old}\nc;d\n"),
            format!("a;b\n\"{old}\"\nc;d"),
            format!("a;b\n\"x{old}\n\"\n\n"),
            format!("a;b\n{old}"),
        ] {
            let recs = records(text.as_bytes());
            assert!(recs.iter().all(|(_, open)| !open), "{text:?}: {recs:?}");
            assert!(recs.len() >= 2, "{text:?}: {recs:?}");
            assert_eq!(recs[0].0, vec![b"a".to_vec(), b"b".to_vec()]);
        }
        assert_eq!(records(format!("a;b\n{old}\nc;d\n").as_bytes()).len(), 3);
        // a quote left open holds the end, with or without the last newline
        for text in ["a;b\nc;\"d\n", "a;b\nc;\"d", "a;b\r\nc;\"d\r\ne\r\n"] {
            let recs = records(text.as_bytes());
            assert_eq!(recs.len(), 2, "{text:?}");
            assert!(!recs[0].1 && recs[1].1, "{text:?}: {recs:?}");
        }
        assert!(records(b"").is_empty());
        assert!(records(b"\n\n").is_empty());
    }

    #[test]
    fn a_nul_far_into_the_file_names_its_row_in_either_mode() {
        let mut text = b"No;Item\n".to_vec();
        for i in 0..40_000 {
            text.extend_from_slice(format!("{};item {i}\n", i / 3).as_bytes());
        }
        text.extend_from_slice(b"9;a\xC3\xA9\0b\n1;x\n");
        let s = slots(&["No"], &["Item"], &["No"]);
        for g in [Grouping::Grouped, Grouping::Ungrouped] {
            let Err(SourceError::Fatal(p)) = read_all(&text, &s, g) else {
                panic!("{g:?}: no error")
            };
            assert_eq!(
                (p.code, p.line, p.column.as_deref(), p.value.as_deref()),
                (Code::Encoding, Some(40_002), Some("Item"), Some("0x00")),
                "{g:?}"
            );
        }
    }

    #[test]
    fn missing_column_is_named() {
        let text = b"No;Name\n1;x\n";
        let s = slots(&["Total"], &[], &["No"]);
        let err = read_all(text, &s, Grouping::Grouped).unwrap_err();
        let SourceError::Fatal(p) = err else { panic!() };
        assert_eq!(p.code, Code::MissingColumn);
        assert!(p.message().contains("\"Total\""), "{}", p.message());
    }
}
