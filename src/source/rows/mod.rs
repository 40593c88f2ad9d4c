//! The layer over the rows of a row-shaped file: record types (a header row starts a
//! document, line rows belong to the header above them, a trailer row closes the file),
//! skipped rows (`[[skip]]`), the trailer's control totals (`[source.trailer]`) and rows
//! grouped into documents by key.
//!
//! A reader (fixed width, CSV; spreadsheets and JSON lines can feed it the same way)
//! only gives out rows through [`RowReader`]: it resolves a column name to a handle for
//! each kind of row, and gives the current row's value of a handle. Everything that
//! makes rows into documents is here, once for every format.
//!
//! The trailer's count and sum are known only at the end of the file: a file that
//! disagrees with its trailer ends with a fatal `incomplete` problem after its last
//! document, and the check refuses the whole file, so nothing of it is submitted (a check
//! spools every document before the submission starts).

#[cfg(test)]
mod tests;

use super::keys::{document_key, duplicate, header_differs, missing_key, SeenKeys};
use super::{Budget, RawDocument, RawRow, RowKind, RowRules, Slots, SourceError};
use crate::problem::{quote, Code, Problem};
use rust_decimal::Decimal;
use std::collections::VecDeque;

/// A file read row by row.
pub trait RowReader {
    /// Reads the next row that is not blank; `Ok(false)` at the end of the file.
    fn next_row(&mut self) -> Result<bool, SourceError>;
    /// The physical line of the current row.
    fn line(&self) -> u64;
    /// A handle for the column `name` of rows of `kind` (`None`: a column every kind
    /// has, such as the record type's); the message says why there is none.
    fn resolve(&self, name: &str, kind: Option<RowKind>) -> Result<usize, String>;
    /// The current row's value of a resolved column; a row too short for the column is
    /// a `malformed` problem that names the line and the column.
    fn value(&self, col: usize) -> Result<&str, Problem>;
    /// The column as users see it.
    fn column_name(&self, col: usize) -> String;
    /// Bytes of the file consumed so far.
    fn bytes_read(&self) -> u64;
    /// Whether the current row's value of a resolved column is a number cell's (a
    /// workbook's): the decimal it holds (`1234.5`), which the trailer's sum reads
    /// whatever the mapping's separators (they are for text).
    fn is_number(&self, _col: usize) -> bool {
        false
    }
    /// Adds the current row's value of a resolved column to `row`; a reader whose cells
    /// carry more than their text (a workbook's date cells and error cells) says so
    /// here.
    fn push_value(&self, col: usize, row: &mut RawRow, problems: &mut Vec<Problem>) {
        match self.value(col) {
            Ok(v) => row.push(Some(v)),
            Err(p) => {
                row.push(Some(""));
                if !problems.contains(&p) {
                    problems.push(p);
                }
            }
        }
    }
    /// How a column that a field's `from` names is shown in a problem, where the reader
    /// shows it otherwise (see [`DocumentSource::column_label`](super::DocumentSource::column_label)).
    fn label(&self, _column: &str) -> Option<String> {
        None
    }
    /// Whether columns are numbers that every record type shares (CSV without a
    /// column-name row): a position is then a different column in each kind of row.
    fn by_position(&self) -> bool {
        false
    }
}

/// Where each thing the mapping reads stands in the rows of one kind.
#[derive(Debug, Default, Clone)]
struct Layout {
    header: Vec<usize>,
    lines: Vec<usize>,
    key: Vec<usize>,
    /// Per `[[skip]]` rule: its column in rows of this kind, where they have it.
    skip: Vec<Option<usize>>,
    /// The column the trailer sums, where rows of this kind have it.
    of: Option<usize>,
}

/// The trailer's columns.
#[derive(Debug, Default, Clone, Copy)]
struct TrailerColumns {
    count: Option<usize>,
    sum: Option<usize>,
}

/// One row, taken out of the reader.
struct Row {
    line: u64,
    kind: RowKind,
    key: Vec<String>,
    header: Option<RawRow>,
    line_row: Option<RawRow>,
    skip: bool,
    /// The value of the summed column, with its column and whether it is a number
    /// cell's.
    of: Option<(String, usize, bool)>,
    /// The trailer's values (of the last row, for a file without record types), each
    /// with whether it is a number cell's.
    count: Option<Result<(String, bool), Problem>>,
    sum: Option<Result<(String, bool), Problem>>,
    problems: Vec<Problem>,
}

/// What the trailer row said.
struct Trailer {
    line: u64,
    count: Option<Result<(String, bool), Problem>>,
    sum: Option<Result<(String, bool), Problem>>,
}

/// A row-shaped file read as a stream of documents.
pub struct RowDocuments<R: RowReader> {
    rdr: R,
    rules: RowRules,
    type_col: Option<usize>,
    data: Layout,
    header: Layout,
    line: Layout,
    trailer_cols: TrailerColumns,
    wants_lines: bool,
    pending: Option<RawDocument>,
    queue: VecDeque<Result<RawDocument, SourceError>>,
    keys: SeenKeys,
    /// Record types: a header row was seen (a line row needs one above it).
    seen_header: bool,
    /// Record types: the current header row was skipped, and its lines with it.
    skipping: bool,
    /// Without record types, with a trailer: the last row read, taken one row late,
    /// since the file's last row is its trailer.
    held: Option<Row>,
    trailer: Option<Trailer>,
    data_rows: u64,
    sum: Decimal,
    skipped: u64,
    finished: bool,
}

impl<R: RowReader> RowDocuments<R> {
    /// Resolves every column the mapping and the rules read, for each kind of row. A
    /// column that the file lacks is a problem of the whole file.
    pub fn open(
        rdr: R,
        slots: &Slots,
        rules: &RowRules,
        budget: Budget,
    ) -> Result<RowDocuments<R>, Problem> {
        let mut missing: Vec<String> = Vec::new();
        let mut need = |name: &str, kind: Option<RowKind>, what: &str| -> usize {
            match rdr.resolve(name, kind) {
                Ok(c) => c,
                Err(m) => {
                    let m = format!("{what}: {m}");
                    if !missing.contains(&m) {
                        missing.push(m);
                    }
                    usize::MAX
                }
            }
        };
        let list = |need: &mut dyn FnMut(&str, Option<RowKind>, &str) -> usize,
                    names: &[String],
                    kind: RowKind| {
            names
                .iter()
                .map(|n| need(n, Some(kind), "a field reads it"))
                .collect::<Vec<_>>()
        };
        let wants_lines = slots.wants_lines || !slots.lines.is_empty();
        let (mut data, mut header, mut line) =
            (Layout::default(), Layout::default(), Layout::default());
        let mut type_col = None;
        let trailer_kind;
        if let Some(rt) = &rules.record_type {
            type_col = Some(need(&rt.column, None, "the record type"));
            header.header = list(&mut need, &slots.header, RowKind::Header);
            header.key = slots
                .key
                .iter()
                .map(|n| need(n, Some(RowKind::Header), "the document key"))
                .collect();
            if rt.line.is_some() {
                line.lines = list(&mut need, &slots.lines, RowKind::Line);
            }
            trailer_kind = RowKind::Trailer;
        } else {
            data.header = list(&mut need, &slots.header, RowKind::Data);
            data.lines = list(&mut need, &slots.lines, RowKind::Data);
            data.key = slots
                .key
                .iter()
                .map(|n| need(n, Some(RowKind::Data), "the document key"))
                .collect();
            trailer_kind = RowKind::Data;
        }
        let kinds: &[RowKind] = if rules.record_type.is_some() {
            &[RowKind::Header, RowKind::Line]
        } else {
            &[RowKind::Data]
        };
        let optional = |name: &str, kind: RowKind| rdr.resolve(name, Some(kind)).ok();
        let layouts = [&mut data, &mut header, &mut line];
        let pick = |k: RowKind| match k {
            RowKind::Header => 1,
            RowKind::Line => 2,
            _ => 0,
        };
        for rule in &rules.skip {
            let mut found = false;
            for &k in kinds {
                let c = optional(&rule.column, k);
                found |= c.is_some();
                layouts[pick(k)].skip.push(c);
            }
            if !found {
                need(&rule.column, Some(kinds[0]), "[[skip]] reads it");
            }
        }
        let mut trailer_cols = TrailerColumns::default();
        if let Some(t) = &rules.trailer {
            if let Some(c) = &t.count {
                trailer_cols.count = Some(need(c, Some(trailer_kind), "[source.trailer] count"));
            }
            if let Some((c, of)) = &t.sum {
                trailer_cols.sum = Some(need(c, Some(trailer_kind), "[source.trailer] sum"));
                let mut found = false;
                // columns by position, with line rows: the position of the amount the
                // trailer sums is the line rows' (a header row's field there is another
                // column, the invoice's own total or a status)
                let lines_only = rdr.by_position()
                    && rules.record_type.as_ref().is_some_and(|r| r.line.is_some());
                for &k in kinds {
                    if lines_only && k == RowKind::Header {
                        continue;
                    }
                    let c = optional(of, k);
                    found |= c.is_some();
                    layouts[pick(k)].of = c;
                }
                if !found {
                    need(of, Some(kinds[0]), "[source.trailer] sum.of");
                }
            }
        }
        if !missing.is_empty() {
            let msg = format!("The file has no such column: {}", missing.join("; "));
            return Err(Problem::file(Code::MissingColumn, None, msg));
        }
        Ok(RowDocuments {
            rdr,
            rules: rules.clone(),
            type_col,
            data,
            header,
            line,
            trailer_cols,
            wants_lines,
            pending: None,
            queue: VecDeque::new(),
            keys: SeenKeys::new(budget.key_window),
            seen_header: false,
            skipping: false,
            held: None,
            trailer: None,
            data_rows: 0,
            sum: Decimal::ZERO,
            skipped: 0,
            finished: false,
        })
    }

    fn layout(&self, kind: RowKind) -> &Layout {
        match kind {
            RowKind::Header => &self.header,
            RowKind::Line => &self.line,
            _ => &self.data,
        }
    }

    /// The values of `cols` in the current row; a column the row is too short for is
    /// empty, with its problem.
    fn values(&self, cols: &[usize], problems: &mut Vec<Problem>) -> RawRow {
        let mut row = RawRow::with_capacity(self.rdr.line(), cols.len(), 64);
        for &c in cols {
            self.rdr.push_value(c, &mut row, problems);
        }
        row
    }

    /// The kind of the current row, by its record type; an unknown one is `malformed`.
    fn kind(&self) -> Result<RowKind, Problem> {
        let (Some(rt), Some(col)) = (&self.rules.record_type, self.type_col) else {
            return Ok(RowKind::Data);
        };
        let code = crate::source::trim(self.rdr.value(col)?);
        rt.kind_of(code).ok_or_else(|| {
            let known: Vec<String> = [RowKind::Header, RowKind::Line, RowKind::Trailer]
                .iter()
                .filter_map(|&k| rt.code(k).map(quote))
                .collect();
            Problem::file(
                Code::Malformed,
                Some(self.rdr.line()),
                format!(
                    "Unknown record type {}: the mapping knows {} (source.record_type)",
                    quote(code),
                    known.join(", ")
                ),
            )
            .with_column(self.rdr.column_name(col))
            .with_value(code.to_string())
        })
    }

    /// Takes the current row out of the reader.
    fn take_row(&self, kind: RowKind) -> Row {
        let layout = self.layout(kind);
        let mut problems = Vec::new();
        let line = self.rdr.line();
        let (mut key, mut header, mut line_row) = (Vec::new(), None, None);
        if matches!(kind, RowKind::Data | RowKind::Header) {
            let k = self.values(&layout.key, &mut problems);
            key = document_key((0..k.len()).map(|i| k.get(i).unwrap_or("")));
            header = Some(self.values(&layout.header, &mut problems));
        }
        if matches!(kind, RowKind::Data | RowKind::Line) && self.wants_lines {
            line_row = Some(self.values(&layout.lines, &mut problems));
        }
        let mut skip = false;
        for (rule, col) in self.rules.skip.iter().zip(&layout.skip) {
            if let Some(v) = col.and_then(|c| self.rdr.value(c).ok()) {
                skip |= rule.skips(crate::source::trim(v));
            }
        }
        let of = layout.of.map(|c| {
            let v = self.rdr.value(c).unwrap_or("").to_string();
            (v, c, self.rdr.is_number(c))
        });
        let trailer_value = |c: Option<usize>| {
            c.map(|c| {
                self.rdr
                    .value(c)
                    .map(|v| (crate::source::trim(v).to_string(), self.rdr.is_number(c)))
            })
        };
        let (count, sum) =
            if kind == RowKind::Trailer || (kind == RowKind::Data && self.holds_back()) {
                (
                    trailer_value(self.trailer_cols.count),
                    trailer_value(self.trailer_cols.sum),
                )
            } else {
                (None, None)
            };
        Row {
            line,
            kind,
            key,
            header,
            line_row,
            skip,
            of,
            count,
            sum,
            problems,
        }
    }

    /// Without record types, the trailer is the file's last row: each row is taken one
    /// row late.
    fn holds_back(&self) -> bool {
        self.rules.trailer.is_some() && self.rules.record_type.is_none()
    }

    /// A data row, header row or line row: counted, summed, skipped or put into its
    /// document.
    fn put(&mut self, row: Row) -> Result<(), Problem> {
        if row.kind == RowKind::Trailer {
            self.trailer = Some(Trailer {
                line: row.line,
                count: row.count,
                sum: row.sum,
            });
            return Ok(());
        }
        self.data_rows += 1;
        if let Some((v, col, number)) = &row.of {
            self.add_to_sum(v, *number, *col, row.line)?;
        }
        match row.kind {
            RowKind::Header => {
                self.seen_header = true;
                self.skipping = row.skip;
                if row.skip {
                    self.skipped += 1;
                    self.flush();
                    return Ok(());
                }
                self.start(row);
            }
            RowKind::Line => {
                if !self.seen_header {
                    let code = self
                        .rules
                        .record_type
                        .as_ref()
                        .map_or("", |r| r.header.as_str());
                    return Err(Problem::file(
                        Code::Malformed,
                        Some(row.line),
                        format!("A line row comes before any header row (record type {}): the lines belong to no document", quote(code)),
                    ));
                }
                if self.skipping || row.skip {
                    self.skipped += 1;
                    return Ok(());
                }
                if let Some(doc) = self.pending.as_mut() {
                    doc.rows += 1;
                    let key = doc.key_display();
                    for p in row.problems {
                        doc.problems.push(with_key(p, &key));
                    }
                    doc.lines.extend(row.line_row);
                }
            }
            _ => {
                if row.skip {
                    self.skipped += 1;
                    return Ok(());
                }
                match self.pending.as_mut() {
                    Some(doc) if !row.key.is_empty() && doc.key == row.key => {
                        doc.rows += 1;
                        let key = doc.key_display();
                        if let Some(p) = differs(
                            doc,
                            row.header.as_ref(),
                            row.line,
                            &self.data.header,
                            &self.rdr,
                        ) {
                            doc.problems.push(p);
                        }
                        for p in row.problems {
                            doc.problems.push(with_key(p, &key));
                        }
                        doc.lines.extend(row.line_row);
                    }
                    _ => self.start(row),
                }
            }
        }
        Ok(())
    }

    /// A new document from its first row; the one before it is done.
    fn start(&mut self, row: Row) {
        self.flush();
        let mut doc = RawDocument {
            line: row.line,
            header: row.header.unwrap_or_default(),
            rows: 1,
            ..RawDocument::default()
        };
        doc.lines.extend(row.line_row);
        let key = row.key.join("/");
        for p in row.problems {
            doc.problems.push(with_key(p, &key));
        }
        if row.key.is_empty() {
            let layout = self.layout(row.kind);
            let cols: Vec<String> = layout
                .key
                .iter()
                .map(|&c| self.rdr.column_name(c))
                .collect();
            let msg = format!(
                "The row has no document key: {} empty",
                if cols.len() == 1 {
                    format!("column {} is", cols[0])
                } else {
                    format!("columns {} are", cols.join(", "))
                }
            );
            doc.problems.push(missing_key(&msg, row.line, &cols));
        } else if let Some(first) = self.keys.see(&row.key, row.line) {
            let msg = format!(
                "Document {key} appears again: its first row is line {first}, and the rows of one document must be together (under one header row)"
            );
            let column = layout_key_name(self.layout(row.kind), &self.rdr);
            doc.problems
                .push(duplicate(&msg, &key, row.line, column, &key));
        }
        doc.key = row.key;
        self.pending = Some(doc);
    }

    fn flush(&mut self) {
        if let Some(d) = self.pending.take() {
            self.queue.push_back(Ok(d));
        }
    }

    fn add_to_sum(
        &mut self,
        value: &str,
        number: bool,
        col: usize,
        line: u64,
    ) -> Result<(), Problem> {
        let v = crate::source::trim(value);
        if v.is_empty() {
            return Ok(());
        }
        let amount = cell_amount(v, number, &self.rules).ok_or_else(|| {
            Problem::file(
                Code::Malformed,
                Some(line),
                format!(
                    "{} is not a number, so the trailer's total of this column cannot be checked",
                    quote(v)
                ),
            )
            .with_column(self.rdr.column_name(col))
            .with_value(v.to_string())
        })?;
        self.sum = self.sum.checked_add(amount).ok_or_else(|| {
            Problem::file(
                Code::Malformed,
                Some(line),
                "The total of this column is too large to add up exactly",
            )
            .with_column(self.rdr.column_name(col))
        })?;
        Ok(())
    }

    /// The end of the file: the trailer says what the file holds, or the file is
    /// incomplete.
    fn check_trailer(&mut self) -> Result<(), Problem> {
        let Some(rule) = self.rules.trailer.clone() else {
            return Ok(());
        };
        if self.holds_back() {
            if let Some(last) = self.held.take() {
                self.trailer = Some(Trailer {
                    line: last.line,
                    count: last.count,
                    sum: last.sum,
                });
            }
        }
        let Some(t) = self.trailer.take() else {
            let what = match self
                .rules
                .record_type
                .as_ref()
                .and_then(|r| r.trailer.clone())
            {
                Some(code) => format!("The file has no trailer row (record type {})", quote(&code)),
                None => "The file has no rows, so no trailer row".to_string(),
            };
            return Err(Problem::file(
                Code::Incomplete,
                None,
                format!("{what}: it is cut off, or the export did not finish; nothing of it is imported"),
            ));
        };
        let stated = |v: Option<Result<(String, bool), Problem>>| -> Result<Option<(String, bool)>, Problem> {
            v.transpose().map_err(|p| {
                incomplete_from(p, "The trailer row is too short for its control total")
            })
        };
        let count = stated(t.count)?;
        let sum = stated(t.sum)?;
        let mut wrong = Vec::new();
        let (mut column, mut value) = (None, None);
        // columns by position are numbers: "column 3", not a bare "3", in the sentence
        let by_position = self.rdr.by_position();
        let said = |c: &str| {
            if by_position {
                format!("column {c}")
            } else {
                c.to_string()
            }
        };
        if let (Some((text, _)), Some(name)) = (&count, &rule.count) {
            let col = self
                .trailer_cols
                .count
                .map(|c| self.rdr.column_name(c))
                .unwrap_or(name.clone());
            let col_said = said(&col);
            match text.parse::<u64>() {
                Ok(n) if n == self.data_rows => {}
                Ok(n) => {
                    wrong.push(format!(
                        "the trailer says {n} rows ({col_said}) but the file holds {}",
                        self.data_rows
                    ));
                    column.get_or_insert(col);
                    value.get_or_insert(text.clone());
                }
                Err(_) => {
                    wrong.push(format!(
                        "the row on line {} is not a trailer: its {col_said} is {}, not a number of rows",
                        t.line,
                        quote(text)
                    ));
                    column.get_or_insert(col);
                    value.get_or_insert(text.clone());
                }
            }
        }
        if let (Some((text, number)), Some((name, of))) = (&sum, &rule.sum) {
            let col = self
                .trailer_cols
                .sum
                .map(|c| self.rdr.column_name(c))
                .unwrap_or(name.clone());
            let (col_said, of_said) = (said(&col), said(of));
            match cell_amount(text, *number, &self.rules) {
                Some(n) if n == self.sum => {}
                Some(n) => {
                    wrong.push(format!(
                        "the trailer says {of_said} adds up to {n} ({col_said}) but the file's rows add up to {}",
                        self.sum
                    ));
                    column.get_or_insert(col);
                    value.get_or_insert(text.clone());
                }
                None => {
                    wrong.push(format!(
                        "the row on line {} is not a trailer: its {col_said} is {}, not a number",
                        t.line,
                        quote(text)
                    ));
                    column.get_or_insert(col);
                    value.get_or_insert(text.clone());
                }
            }
        }
        if wrong.is_empty() {
            return Ok(());
        }
        let mut msg = wrong.join("; ");
        if let Some(first) = msg.get(..1) {
            msg = first.to_uppercase() + &msg[1..];
        }
        msg.push_str(": the file is incomplete (cut off, or rows lost on the way); nothing of it is imported");
        Err(Problem::file(Code::Incomplete, Some(t.line), msg)
            .with_column_opt(column)
            .with_value_opt(value))
    }

    /// The end of the file.
    fn finish(&mut self) {
        self.finished = true;
        self.flush();
        match std::mem::take(&mut self.keys).finish() {
            Ok(None) => {}
            Ok(Some(_)) => self.queue.push_back(Err(SourceError::Fatal(Problem::file(
                Code::Duplicate,
                None,
                "A document key appears again far from its first rows: the rows of one document must be together (under one header row)",
            )))),
            Err(e) => self.queue.push_back(Err(SourceError::Environment(format!(
                "cannot use a temporary file while reading the file (is the temporary folder full?): {e}"
            )))),
        }
        if let Err(p) = self.check_trailer() {
            self.queue.push_back(Err(SourceError::Fatal(p)));
        }
    }

    fn step(&mut self) -> Result<(), SourceError> {
        if self.trailer.is_some() {
            let code = self
                .rules
                .record_type
                .as_ref()
                .and_then(|r| r.trailer.clone())
                .unwrap_or_default();
            let line = self.trailer.as_ref().map_or(0, |t| t.line);
            return Err(SourceError::Fatal(Problem::file(
                Code::Malformed,
                Some(self.rdr.line()),
                format!("A row comes after the trailer row (record type {}, line {line}): the trailer must be the file's last row", quote(&code)),
            )));
        }
        let kind = self.kind()?;
        let row = self.take_row(kind);
        if self.holds_back() {
            if let Some(prev) = self.held.replace(row) {
                self.put(prev)?;
            }
            return Ok(());
        }
        self.put(row)?;
        Ok(())
    }
}

impl<R: RowReader> super::DocumentSource for RowDocuments<R> {
    fn next_document(&mut self) -> Option<Result<RawDocument, SourceError>> {
        loop {
            if let Some(d) = self.queue.pop_front() {
                if d.is_err() {
                    self.queue.clear();
                    self.finished = true;
                }
                return Some(d);
            }
            if self.finished {
                return None;
            }
            match self.rdr.next_row() {
                Err(e) => {
                    self.finished = true;
                    return Some(Err(e));
                }
                Ok(false) => self.finish(),
                Ok(true) => {
                    if let Err(e) = self.step() {
                        self.finished = true;
                        self.queue.clear();
                        return Some(Err(e));
                    }
                }
            }
        }
    }

    fn bytes_read(&self) -> u64 {
        self.rdr.bytes_read()
    }

    fn skipped(&self) -> u64 {
        self.skipped
    }

    fn column_label(&self, column: &str) -> Option<String> {
        self.rdr.label(column)
    }
}

/// A row problem of a document, with its key.
fn with_key(p: Problem, key: &str) -> Problem {
    if key.is_empty() {
        p
    } else {
        p.with_document(key.to_string())
    }
}

/// The key's columns as users see them.
fn layout_key_name<R: RowReader>(layout: &Layout, rdr: &R) -> String {
    layout
        .key
        .iter()
        .map(|&c| rdr.column_name(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A header value of a later row of a document that differs from its first row's.
fn differs<R: RowReader>(
    doc: &RawDocument,
    header: Option<&RawRow>,
    line: u64,
    cols: &[usize],
    rdr: &R,
) -> Option<Problem> {
    let header = header?;
    let slots = (cols.iter().enumerate()).map(|(slot, &col)| (header.get(slot).unwrap_or(""), col));
    header_differs(doc, line, slots, |col| rdr.column_name(col))
}

/// A trailer value that could not be read makes the file incomplete.
fn incomplete_from(p: Problem, what: &str) -> Problem {
    let mut q = Problem::file(Code::Incomplete, p.line, format!("{what}: {}", p.text));
    q.column = p.column;
    q.value = p.value;
    q
}

/// An amount of the file as the trailer check reads it: a workbook's number cell
/// (`number`) is the decimal it holds, `1234.5`, whatever the mapping's separators;
/// text is read with them ([`parse_amount`]).
pub fn cell_amount(text: &str, number: bool, rules: &RowRules) -> Option<Decimal> {
    match number {
        true => parse_amount(text, '.', None),
        false => parse_amount(text, rules.decimal, rules.thousands),
    }
}

/// An amount as an exact decimal: `decimal` is its decimal separator, `thousands`
/// (and blanks) are left out, and a trailing minus (`125.00-`, as bank formats write
/// it) is a sign.
pub fn parse_amount(text: &str, decimal: char, thousands: Option<char>) -> Option<Decimal> {
    let t = text.trim();
    let (t, negative) = match t.strip_suffix('-') {
        Some(rest) if !rest.starts_with('-') => (rest.trim_end(), true),
        _ => (t, false),
    };
    let mut s = String::with_capacity(t.len() + 1);
    if negative {
        s.push('-');
    }
    for c in t.chars() {
        if Some(c) == thousands || c == ' ' {
            continue;
        }
        s.push(if c == decimal { '.' } else { c });
    }
    if s.is_empty() || s.contains('e') || s.contains('E') {
        return None;
    }
    Decimal::from_str_exact(&s).ok()
}
