//! Workbooks (xlsx, xls, ods): one sheet's rows, with a header row, grouped into
//! documents by key as CSV rows are.
//!
//! A row's `line` is its number in the sheet, a column is named by its letter and its
//! header (`C (Amount)`). Cells become the text a field reads (`cell`): a number is the
//! decimal it holds to 15 significant digits, marked as a number (a number field and
//! the trailer's sum read it whatever the mapping's separators, which are for text
//! cells), a date cell is ISO 8601 and marked as a date (a date field takes it
//! whatever its format), a formula its cached value, an error cell (`#N/A`) a problem
//! of its document. The rows are read on a thread of their own (`workbook`).
//!
//! Grouping follows the CSV reader: the first row of a key starts a document, the next
//! rows of the same key are its lines; a key that comes back after others sends the
//! file to a second pass that sorts the rows by key through temporary files, so memory
//! stays flat.

pub mod cell;
mod workbook;

pub(crate) use workbook::choose_sheet;

use super::csv::{resolve_column, resolve_columns, Grouping, SlotColumns};
use super::extsort::{Sorted, Sorter};
use super::keys::{document_key, header_differs, missing_key, SeenKeys};
use super::rows::RowReader;
use super::{put_key, take_key, RawDocument, RawRow, SourceError, SourceOptions};
use super::{Budget, DocumentSource, RowKind, Slots};
use crate::problem::{quote, Code, Problem, Stage};
use cell::{column_letters, Cell, Row};
use std::collections::VecDeque;
use std::fs::File;
use std::sync::mpsc::Receiver;
use workbook::Batch;

/// One sheet of a workbook read as a stream of documents.
pub struct SheetSource {
    rows: Receiver<Batch>,
    batch: std::vec::IntoIter<Row>,
    ended: bool,
    columns: Vec<String>,
    idx: SlotColumns,
    wants_lines: bool,
    grouping: Grouping,
    pending: Option<RawDocument>,
    queue: VecDeque<RawDocument>,
    keys: Option<SeenKeys>,
    sorted: Option<Sorted>,
    budget: Budget,
    finished: bool,
    /// Rows up to this number are titles above the data (`skip_lines`).
    skip_before: u64,
    /// Read through the [`rows`](crate::source::rows) layer: the current row.
    current: Option<Row>,
    /// `[[skip]]` rules with their columns (without the rows layer, which skips rows
    /// itself), and how many rows they left out.
    skip: Vec<(usize, crate::source::SkipRule)>,
    skipped: u64,
}

impl SheetSource {
    /// Opens the workbook, reads the header row and resolves every slot to a column. A
    /// problem here concerns the whole file.
    pub fn open(
        file: File,
        opts: &SourceOptions,
        slots: &Slots,
        grouping: Grouping,
    ) -> Result<SheetSource, Problem> {
        let rows = workbook::start(file, opts.format, opts.sheet.sheet.clone());
        let mut src = SheetSource {
            rows,
            batch: Vec::new().into_iter(),
            ended: false,
            columns: Vec::new(),
            idx: SlotColumns {
                header: Vec::new(),
                lines: Vec::new(),
                key: Vec::new(),
            },
            wants_lines: slots.wants_lines || !slots.lines.is_empty(),
            grouping,
            pending: None,
            queue: VecDeque::new(),
            keys: (grouping == Grouping::Grouped).then(|| SeenKeys::new(opts.budget.key_window)),
            sorted: None,
            budget: opts.budget,
            finished: false,
            skip_before: opts.csv.skip_lines as u64,
            current: None,
            skip: Vec::new(),
            skipped: 0,
        };
        let skip = opts.csv.skip_lines as u64;
        // the rows above the header (titles) and, without a header row, above the data
        let mut header_row = skip;
        if opts.csv.header {
            loop {
                match src.next_row()? {
                    None => {
                        return Err(Problem::file(
                            Code::Empty,
                            None,
                            "The sheet is empty: there is no header row",
                        ))
                    }
                    Some(r) if u64::from(r.number) <= skip || r.is_blank() => continue,
                    Some(r) => {
                        header_row = u64::from(r.number) - 1;
                        src.columns = (0..r.len())
                            .map(|i| r.cell(i).text().trim().to_string())
                            .collect();
                        break;
                    }
                }
            }
        }
        src.idx = resolve_columns(&src.columns, slots, opts.csv.header, header_row)?;
        Ok(src)
    }

    /// The next row that has a cell, `None` at the end of the sheet.
    fn next_row(&mut self) -> Result<Option<Row>, Problem> {
        loop {
            if let Some(r) = self.batch.next() {
                return Ok(Some(r));
            }
            if self.ended {
                return Ok(None);
            }
            match self.rows.recv() {
                Ok(Batch::Rows(rows)) => self.batch = rows.into_iter(),
                Ok(Batch::End) => {
                    self.ended = true;
                    return Ok(None);
                }
                Ok(Batch::Fatal(p)) => {
                    self.ended = true;
                    return Err(p);
                }
                Err(_) => {
                    self.ended = true;
                    return Err(Problem::file(
                        Code::Io,
                        None,
                        "The workbook could not be read to its end (its reader stopped)",
                    ));
                }
            }
        }
    }

    /// Leaves out the rows that a `[[skip]]` rule matches (a file read without the rows
    /// layer, so that rows of one key apart are still sorted); a column that the sheet
    /// lacks is a problem of the whole file.
    pub fn with_skip(mut self, rules: &[crate::source::SkipRule]) -> Result<Self, Problem> {
        for r in rules {
            let col = self.column_index(&r.column).ok_or_else(|| {
                Problem::file(
                    Code::MissingColumn,
                    None,
                    format!(
                        "[[skip]] reads a column the sheet does not have: {}",
                        quote(&r.column)
                    ),
                )
            })?;
            self.skip.push((col, r.clone()));
        }
        Ok(self)
    }

    /// The next data row: not blank, below the titles and the header, not left out by
    /// `[[skip]]`.
    fn next_data_row(&mut self) -> Result<Option<Row>, Problem> {
        while let Some(r) = self.next_row()? {
            if u64::from(r.number) <= self.skip_before || r.is_blank() {
                continue;
            }
            if self
                .skip
                .iter()
                .any(|(c, rule)| rule.skips(super::trim(r.cell(*c).text())))
            {
                self.skipped += 1;
                continue;
            }
            return Ok(Some(r));
        }
        Ok(None)
    }

    /// A column as users see it: `C (Amount)`, or `C` without a header.
    fn column_label(&self, idx: usize) -> String {
        let letters = column_letters(idx);
        match self.columns.get(idx).filter(|n| !n.is_empty()) {
            Some(name) => format!("{letters} ({name})"),
            None => letters,
        }
    }

    fn key_of(&self, row: &Row) -> Vec<String> {
        document_key(self.idx.key.iter().map(|&i| row.cell(i).text()))
    }

    /// The row's values for the slots of `idx`, date cells marked; an error cell is a
    /// problem of the row.
    fn slot_row(&self, row: &Row, idx: &[usize], problems: &mut Vec<Problem>) -> RawRow {
        let line = u64::from(row.number);
        let mut out = RawRow::with_capacity(line, idx.len(), 64);
        for &i in idx {
            self.push_cell(row, i, &mut out, problems);
        }
        out
    }

    /// Adds cell `i` of `row` to `out`: a date cell or a number cell marked, an error
    /// cell empty with its problem (said once for the row, however many fields read it).
    fn push_cell(&self, row: &Row, i: usize, out: &mut RawRow, problems: &mut Vec<Problem>) {
        let c = row.cell(i);
        // an error cell has no value: its problem is said once, here
        out.push((!matches!(c, Cell::Error(_))).then(|| c.text()));
        match c {
            Cell::Date(_) => out.mark_date(),
            Cell::Number(_) => out.mark_number(),
            Cell::Error(_) => {
                let p = self.error_cell(row, i);
                // the same cell read by a header and a line field: said once
                if !problems
                    .iter()
                    .any(|q| q.line == p.line && q.column == p.column)
                {
                    problems.push(p);
                }
            }
            _ => {}
        }
    }

    /// The problem of an error cell (`#N/A`).
    fn error_cell(&self, row: &Row, i: usize) -> Problem {
        let e = row.cell(i).text().to_string();
        let at = format!("{}{}", column_letters(i), row.number);
        let msg = format!(
            "Cell {at} holds the error {e}, not a value: a formula that failed in the workbook"
        );
        Problem::new(Stage::Read, Code::Type, &msg)
            .with_line(u64::from(row.number))
            .with_column(self.column_label(i))
            .with_value(e)
    }

    /// A document from its first row.
    fn start_document(&self, key: Vec<String>, row: &Row) -> RawDocument {
        let line = u64::from(row.number);
        let mut problems = Vec::new();
        let header = self.slot_row(row, &self.idx.header, &mut problems);
        let lines = match self.wants_lines {
            true => vec![self.slot_row(row, &self.idx.lines, &mut problems)],
            false => Vec::new(),
        };
        if key.is_empty() {
            let cols: Vec<String> = self.idx.key.iter().map(|&i| self.column_label(i)).collect();
            let msg = if cols.len() == 1 {
                format!("The row has no document key: column {} is empty", cols[0])
            } else {
                format!(
                    "The row has no document key: columns {} are empty",
                    cols.join(", ")
                )
            };
            problems.push(missing_key(&msg, line, &cols));
        }
        RawDocument {
            key,
            line,
            header,
            lines,
            problems,
            rows: 1,
        }
    }

    /// Adds a later row of a document (`next`, built as a document of its own): its
    /// line, its problems, and a problem for a header value that differs from the
    /// first row's.
    fn add_row(&self, doc: &mut RawDocument, next: RawDocument) {
        doc.rows += next.rows;
        let slots = (self.idx.header.iter().enumerate())
            .map(|(slot, &col)| (next.header.get(slot).unwrap_or(""), col));
        if let Some(p) = header_differs(doc, next.line, slots, |col| self.column_label(col)) {
            doc.problems.push(p);
        }
        doc.lines.extend(next.lines);
        doc.problems.extend(next.problems);
    }

    fn next_grouped(&mut self) -> Option<Result<RawDocument, SourceError>> {
        loop {
            if let Some(d) = self.queue.pop_front() {
                return Some(Ok(d));
            }
            if self.finished {
                return None;
            }
            let row = match self.next_data_row() {
                Err(p) => {
                    self.finished = true;
                    return Some(Err(SourceError::Fatal(p)));
                }
                Ok(None) => {
                    self.finished = true;
                    if let Some(d) = self.pending.take() {
                        self.queue.push_back(d);
                    }
                    if let Some(keys) = self.keys.take() {
                        match keys.finish() {
                            Ok(None) => {}
                            Ok(Some(_)) => return Some(Err(SourceError::Ungrouped)),
                            Err(e) => return Some(Err(temp_failure(&e))),
                        }
                    }
                    continue;
                }
                Ok(Some(r)) => r,
            };
            let key = self.key_of(&row);
            let doc = self.start_document(key, &row);
            if let Some(mut p) = self.pending.take() {
                if !doc.key.is_empty() && p.key == doc.key {
                    self.add_row(&mut p, doc);
                    self.pending = Some(p);
                    continue;
                }
                self.pending = Some(p);
            }
            if doc.key.is_empty() {
                if let Some(p) = self.pending.take() {
                    self.queue.push_back(p);
                }
                self.queue.push_back(doc);
                continue;
            }
            if let Some(keys) = self.keys.as_mut() {
                if keys.see(&doc.key, doc.line).is_some() {
                    return Some(Err(SourceError::Ungrouped));
                }
            }
            if let Some(p) = self.pending.replace(doc) {
                return Some(Ok(p));
            }
        }
    }

    /// Ungrouped mode: the rows sorted by key (stably), each key's rows made one
    /// document, the documents sorted back into the order of their first rows; both
    /// sorts spill to temporary files past the budget.
    fn sort_documents(&mut self) -> Result<Sorted, SourceError> {
        let io = |e: std::io::Error| temp_failure(&e);
        let mut rows = Sorter::new(self.budget.sort_bytes);
        let mut docs = Sorter::new(self.budget.sort_bytes);
        let (mut kbuf, mut rbuf) = (Vec::new(), Vec::new());
        while let Some(row) = self.next_data_row()? {
            let key = self.key_of(&row);
            let doc = self.start_document(key, &row);
            rbuf.clear();
            doc.encode(&mut rbuf);
            if doc.key.is_empty() {
                docs.push(&doc.line.to_be_bytes(), &rbuf).map_err(io)?;
                continue;
            }
            kbuf.clear();
            put_key(&mut kbuf, &doc.key);
            rows.push(&kbuf, &rbuf).map_err(io)?;
        }
        let mut sorted = rows.finish().map_err(io)?;
        let bad = || temp_failure(&std::io::Error::other("a sorted row is damaged"));
        let mut current: Option<(Vec<u8>, RawDocument)> = None;
        let mut out = Vec::new();
        let mut flush = |doc: RawDocument, docs: &mut Sorter| {
            out.clear();
            doc.encode(&mut out);
            docs.push(&doc.line.to_be_bytes(), &out)
        };
        while sorted.next_into(&mut kbuf, &mut rbuf).map_err(io)? {
            let next = RawDocument::decode(&rbuf).ok_or_else(bad)?;
            match current.as_mut() {
                Some((k, doc)) if *k == kbuf => self.add_row(doc, next),
                _ => {
                    if let Some((_, doc)) = current.take() {
                        flush(doc, &mut docs).map_err(io)?;
                    }
                    take_key(&mut &kbuf[..]).ok_or_else(bad)?;
                    current = Some((kbuf.clone(), next));
                }
            }
        }
        if let Some((_, doc)) = current.take() {
            flush(doc, &mut docs).map_err(io)?;
        }
        drop(sorted);
        docs.finish().map_err(io)
    }

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
        let next = sorted.next_into(&mut k, &mut r);
        match next {
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

impl DocumentSource for SheetSource {
    fn next_document(&mut self) -> Option<Result<RawDocument, SourceError>> {
        match self.grouping {
            Grouping::Grouped => self.next_grouped(),
            Grouping::Ungrouped => self.next_sorted(),
        }
    }

    fn bytes_read(&self) -> u64 {
        // a workbook is read by random access (a zip archive): no byte count to show
        0
    }

    fn column_label(&self, column: &str) -> Option<String> {
        let i = self.column_index(column)?;
        Some(self.column_label(i))
    }

    fn skipped(&self) -> u64 {
        self.skipped
    }
}

/// A sheet read row by row for the [`rows`](crate::source::rows) layer: `[[skip]]` and
/// `[source.trailer]` (a totals row) work on workbooks as on CSV and fixed width.
impl RowReader for SheetSource {
    fn next_row(&mut self) -> Result<bool, SourceError> {
        self.current = self.next_data_row().map_err(SourceError::Fatal)?;
        Ok(self.current.is_some())
    }

    fn line(&self) -> u64 {
        self.current.as_ref().map_or(0, |r| u64::from(r.number))
    }

    /// A header row names the columns of every kind of row; without one, columns are
    /// numbers (`from = 3`).
    fn resolve(&self, name: &str, _kind: Option<RowKind>) -> Result<usize, String> {
        self.column_index(name).ok_or_else(|| {
            if self.columns.is_empty() {
                format!("{name:?} is not a column number (header = false: 1, 2, 3...)")
            } else {
                format!("the header row has no column {name:?}")
            }
        })
    }

    /// An error cell has no value: a problem that names the cell.
    fn value(&self, col: usize) -> Result<&str, Problem> {
        let Some(row) = self.current.as_ref() else {
            return Ok("");
        };
        match row.cell(col) {
            Cell::Error(_) => Err(self.error_cell(row, col)),
            c => Ok(c.text()),
        }
    }

    fn column_name(&self, col: usize) -> String {
        self.column_label(col)
    }

    fn is_number(&self, col: usize) -> bool {
        self.current
            .as_ref()
            .is_some_and(|r| matches!(r.cell(col), Cell::Number(_)))
    }

    fn bytes_read(&self) -> u64 {
        0
    }

    fn push_value(&self, col: usize, out: &mut RawRow, problems: &mut Vec<Problem>) {
        match self.current.as_ref() {
            Some(row) => self.push_cell(row, col, out, problems),
            None => out.push(None),
        }
    }

    fn label(&self, column: &str) -> Option<String> {
        let i = self.column_index(column)?;
        Some(self.column_label(i))
    }
}

impl SheetSource {
    /// The column a field's `from` names (as the header resolved it).
    fn column_index(&self, name: &str) -> Option<usize> {
        // as the header resolved it: no column names read means positions (`from = 3`)
        resolve_column(&self.columns, name, !self.columns.is_empty())
    }
}

fn temp_failure(e: &std::io::Error) -> SourceError {
    SourceError::Environment(format!(
        "cannot use a temporary file while reading the workbook (is the temporary folder full?): {e}"
    ))
}
