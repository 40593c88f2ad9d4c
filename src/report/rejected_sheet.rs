//! The rejected rows of an xlsx workbook: a workbook of one sheet, named as the sheet
//! that was read, with the title rows above the header (`skip_lines`), the header row,
//! then the failed documents' rows as read, each cell with its value and its kind
//! (text, number, boolean, date, error), plus a last column `erpdrop_error`.
//!
//! The sheet is streamed a second time (calamine's cell reader) and written as it comes
//! (rust_xlsxwriter in constant memory: rows go to a temporary file), so memory stays
//! a row, whatever the size of the sheet. Formulas are written as the value they held,
//! which is what the mapping read; number formats other than a date's are not kept.
//!
//! Which rows go, and where (`Copy`), is the same for every workbook: an ods sheet's
//! rows go through it to `rejected_ods`. With a trailer (`[source.trailer]`), the sheet's
//! last row (its totals row) ends the rejected sheet, its cells as read but the count
//! and the sum, restated for the rows written (`rejected_trailer`): a number cell stays
//! a number cell, a text cell text written as the original wrote it.

use super::rejected::{RejectedInput, Rows, ERROR_COLUMN, HEADERLESS_PREFIX};
use super::rejected_trailer::Totals;
use crate::source::sheet::cell::{Cell, Row};
use crate::source::sheet::choose_sheet;
use calamine::{Data, DataRef, Reader, Xlsx};
use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook, Worksheet, XlsxError};
use std::io::{self, BufReader, Write};

/// The longest text a cell holds (Excel's limit, which rust_xlsxwriter enforces).
const MAX_TEXT: usize = 32_767;

fn invalid(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// A write error: the disk's own (the rows' temporary file) stays one, so that the
/// file's outcome says so; anything else means these cells cannot be written as read,
/// and no rejected file is better than a wrong one.
fn xlsx(e: XlsxError) -> io::Error {
    match e {
        XlsxError::IoError(e) => e,
        e => invalid(format!("the rejected workbook cannot be written: {e}")),
    }
}

/// The date formats of the rejected workbook: a date cell reads back as a date cell.
struct Formats {
    date: Format,
    datetime: Format,
    time: Format,
    duration: Format,
}

/// The workbook of a failed file opened again, and the sheet the mapping reads.
pub(super) fn open_book<B>(input: &RejectedInput<'_>) -> io::Result<(B, String)>
where
    B: Reader<BufReader<std::fs::File>>,
    B::Error: std::fmt::Display,
{
    let file = crate::fsutil::open_regular(input.source, input.id)?;
    let book = B::new(BufReader::with_capacity(256 * 1024, file))
        .map_err(|e| invalid(format!("the workbook cannot be read again: {e}")))?;
    let name = choose_sheet(
        &book.sheet_names(),
        input.mapping.source.sheet.sheet.as_deref(),
    )
    .map_err(|p| invalid(p.message()))?;
    Ok((book, name))
}

pub(super) fn copy_xlsx(
    input: &RejectedInput<'_>,
    rows: &Rows,
    w: &mut dyn Write,
) -> io::Result<()> {
    let source = &input.mapping.source;
    let (mut book, name) = open_book::<Xlsx<_>>(input)?;
    let mut cells = book
        .worksheet_cells_reader(&name)
        .map_err(|e| invalid(format!("the sheet cannot be read again: {e}")))?;
    let width = cells.dimensions().end.1.saturating_add(1);

    let mut book_out = Workbook::new();
    let sheet = book_out
        .add_worksheet_with_constant_memory()
        .map_err(xlsx)?;
    sheet.set_name(&name).map_err(xlsx)?;
    let formats = Formats {
        date: Format::new().set_num_format("yyyy-mm-dd"),
        datetime: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
        time: Format::new().set_num_format("hh:mm:ss"),
        duration: Format::new().set_num_format("[h]:mm:ss"),
    };
    let mut out = XlsxOut { sheet, formats };

    // rows of the sheet as read: (its number, 1-based) and its cells
    let mut row: Vec<(u16, DataRef<'_>)> = Vec::new();
    let mut number = 0u32;
    let mut state = Copy::new(
        source,
        width,
        super::rejected::positions_read(input.mapping),
    );
    loop {
        let cell = cells
            .next_cell()
            .map_err(|e| invalid(format!("the sheet cannot be read again: {e}")))?;
        let done = cell.is_none();
        let at = cell.as_ref().map(|c| c.get_position().0 + 1);
        if done || at != Some(number) {
            if !row.is_empty() {
                state.row(&mut out, rows, number, &row)?;
                row.clear();
            }
            if let Some(at) = at {
                number = at;
            }
        }
        let Some(cell) = cell else { break };
        let col = u16::try_from(cell.get_position().1).map_err(invalid)?;
        let value = cell.get_value().clone();
        if value != DataRef::Empty {
            row.push((col, value));
        }
    }
    state.finish(&mut out)?;
    drop(cells);
    drop(out);
    let bytes = book_out.save_to_buffer().map_err(xlsx)?;
    w.write_all(&bytes)
}

pub(super) struct Copy<'a> {
    skip: u64,
    header_done: bool,
    /// The column of `erpdrop_error`: the header's own (a rejected file that failed
    /// again), or the first past every cell of the sheet.
    error_col: Option<u16>,
    width: u32,
    /// Without a header row: how many columns the mapping reads.
    reads: usize,
    headerless: bool,
    /// The next row (0-based) of the rejected sheet for a failed row.
    next_out: u32,
    /// With a trailer: what the rows written add up to.
    totals: Option<Totals<'a>>,
    /// The column names of the header row, as the sheet reader takes them (empty
    /// without a header row: columns by number).
    columns: Vec<String>,
    /// With a trailer: the last data row not copied, the trailer once the sheet ends.
    last: Option<Vec<(u16, Data)>>,
}

/// A cell of a sheet read whole (ods, xls) as the cell reader of an xlsx sheet gives it.
pub(super) fn data_ref(d: &calamine::Data) -> DataRef<'_> {
    use calamine::Data;
    match d {
        Data::Empty => DataRef::Empty,
        Data::String(s) => DataRef::SharedString(s),
        Data::Float(f) => DataRef::Float(*f),
        Data::Int(i) => DataRef::Int(*i),
        Data::Bool(b) => DataRef::Bool(*b),
        Data::DateTime(dt) => DataRef::DateTime(*dt),
        Data::DateTimeIso(s) => DataRef::DateTimeIso(s.clone()),
        Data::DurationIso(s) => DataRef::DurationIso(s.clone()),
        Data::Error(e) => DataRef::Error(e.clone()),
    }
}

/// Copies a sheet read whole (ods, xls) through `state` into `out`, then the totals row
/// where the mapping has a trailer: its rows as the sheet reader took them (an empty row
/// is no row).
pub(super) fn copy_range(
    range: &calamine::Range<Data>,
    state: &mut Copy<'_>,
    out: &mut dyn SheetOut,
    rows: &Rows,
) -> io::Result<()> {
    if let Some((top, left)) = range.start() {
        let mut cells: Vec<(u16, DataRef<'_>)> = Vec::new();
        for (i, row) in range.rows().enumerate() {
            cells.clear();
            for (c, d) in row.iter().enumerate() {
                if !matches!(d, Data::Empty) {
                    let col = u16::try_from(left as usize + c).map_err(invalid)?;
                    cells.push((col, data_ref(d)));
                }
            }
            if !cells.is_empty() {
                state.row(out, rows, top + i as u32 + 1, &cells)?;
            }
        }
    }
    state.finish(out)
}

/// Where the rows of a rejected sheet go: a row (0-based) and its cells, by column.
pub(super) trait SheetOut {
    fn row(&mut self, at: u32, cells: &[(u16, DataRef<'_>)]) -> io::Result<()>;
}

fn blank(cells: &[(u16, DataRef<'_>)]) -> bool {
    cells.iter().all(|(_, v)| match v {
        DataRef::String(s) => s.trim().is_empty(),
        DataRef::SharedString(s) => s.trim().is_empty(),
        DataRef::Empty => true,
        _ => false,
    })
}

fn text_of<'b>(v: &'b DataRef<'_>) -> Option<&'b str> {
    match v {
        DataRef::String(s) => Some(s),
        DataRef::SharedString(s) => Some(s),
        _ => None,
    }
}

/// A row's cells without column `except` (`erpdrop_error`), then `text` in it.
fn with_error<'a>(
    cells: &[(u16, DataRef<'a>)],
    except: Option<u16>,
    text: Option<&'a str>,
) -> Vec<(u16, DataRef<'a>)> {
    let mut out: Vec<(u16, DataRef<'a>)> = cells
        .iter()
        .filter(|(c, _)| Some(*c) != except)
        .cloned()
        .collect();
    if let (Some(col), Some(text)) = (except, text) {
        out.push((col, DataRef::SharedString(text)));
    }
    out
}

/// A row's cells as the sheet reader reads them (`cell::Row`): the text a column holds.
fn as_read(cells: &[(u16, DataRef<'_>)]) -> Row {
    let mut row = Row::new(0);
    for (c, v) in cells {
        row.put(usize::from(*c), v);
    }
    row
}

/// A trailer's count or sum cell restated: a number cell the number, a text cell the
/// text in the original's place (`text`, given the original).
fn restated(
    original: &DataRef<'_>,
    name: &str,
    text: impl Fn(&str) -> io::Result<String>,
    number: impl Fn() -> io::Result<f64>,
) -> io::Result<DataRef<'static>> {
    Ok(match original {
        DataRef::Float(_) | DataRef::Int(_) => DataRef::Float(number()?),
        DataRef::String(s) => DataRef::String(text(s)?),
        DataRef::SharedString(s) => DataRef::String(text(s)?),
        other => {
            return Err(invalid(format!(
                "the trailer's {name} cell ({other:?}) is neither a number nor text"
            )))
        }
    })
}

impl<'a> Copy<'a> {
    /// The copy of a sheet of the mapping's `source` whose last column is `width - 1`.
    /// Without a header row, `reads` is how many columns the mapping reads by number:
    /// `erpdrop_error` goes past them too, so that a fixed file's value is not the
    /// message where a row leaves the last columns empty.
    pub(super) fn new(
        source: &'a crate::source::SourceOptions,
        width: u32,
        reads: usize,
    ) -> Copy<'a> {
        let skip = source.csv.skip_lines as u64;
        let reads = if source.csv.header { 0 } else { reads };
        Copy {
            skip,
            header_done: !source.csv.header,
            error_col: None,
            width: width.max(u32::try_from(reads).unwrap_or(u32::MAX)),
            reads,
            headerless: !source.csv.header,
            next_out: skip as u32,
            totals: source
                .rows
                .trailer
                .as_ref()
                .map(|t| Totals::new(t, &source.rows)),
            columns: Vec::new(),
            last: None,
        }
    }

    /// A column the trailer rule names, as the sheet reader resolves it.
    fn column(&self, name: &str) -> io::Result<u16> {
        crate::source::csv::resolve_column(&self.columns, name, !self.columns.is_empty())
            .and_then(|c| u16::try_from(c).ok())
            .ok_or_else(|| invalid(format!("the sheet has no column {name:?} for its trailer")))
    }

    /// The end of the sheet: with a trailer, its last row, the count and sum restated
    /// for the rows written, and no `erpdrop_error`.
    pub(super) fn finish(&mut self, out: &mut dyn SheetOut) -> io::Result<()> {
        let Some(totals) = &self.totals else {
            return Ok(());
        };
        let last = self
            .last
            .take()
            .ok_or_else(|| invalid("the trailer row is not the sheet's last row"))?;
        let mut cells: Vec<(u16, DataRef<'_>)> =
            last.iter().map(|(c, d)| (*c, data_ref(d))).collect();
        let mut edit = |name: &str,
                        text: &dyn Fn(&str) -> io::Result<String>,
                        number: &dyn Fn() -> io::Result<f64>|
         -> io::Result<u16> {
            let col = self.column(name)?;
            let cell = cells
                .iter_mut()
                .find(|(c, _)| *c == col)
                .ok_or_else(|| invalid(format!("the trailer row has no {name} cell")))?;
            cell.1 = restated(&cell.1, name, text, number)?;
            Ok(col)
        };
        let mut count_col = None;
        if let Some(name) = &totals.rule.count {
            let n = totals.count() as f64;
            count_col = Some(edit(name, &|o| totals.count_text(o, None), &|| Ok(n))?);
        }
        if let Some((name, _)) = &totals.rule.sum {
            let col = edit(name, &|o| totals.sum_text(o, None), &|| totals.sum_number())?;
            if count_col == Some(col) {
                return Err(invalid("the trailer's count and sum are one column"));
            }
        }
        let at = self.next_out;
        self.next_out += 1;
        out.row(at, &with_error(&cells, self.error_col, None))
    }

    /// Takes row `number` (1-based) of the sheet as read: written when it is a title
    /// row, the header or a failed row.
    pub(super) fn row(
        &mut self,
        out: &mut dyn SheetOut,
        rows: &Rows,
        number: u32,
        cells: &[(u16, DataRef<'_>)],
    ) -> io::Result<()> {
        let at = number - 1;
        if u64::from(number) <= self.skip {
            // a title row above the header: the mapping skips it when the file comes back
            return out.row(at, cells);
        }
        if !self.header_done {
            if blank(cells) {
                return out.row(at, cells);
            }
            self.header_done = true;
            let last = cells.last().and_then(|(c, v)| Some((*c, text_of(v)?)));
            let col = match last {
                Some((c, t)) if t.trim() == ERROR_COLUMN => c,
                _ => {
                    let past = cells.last().map_or(0, |(c, _)| u32::from(*c) + 1);
                    u16::try_from(past.max(self.width)).map_err(invalid)?
                }
            };
            self.error_col = Some(col);
            self.next_out = number;
            let names = as_read(cells);
            self.columns = (0..names.len())
                .map(|i| names.cell(i).text().trim().to_string())
                .collect();
            return out.row(at, &with_error(cells, Some(col), Some(ERROR_COLUMN)));
        }
        let Some((_, message)) = rows.get(&u64::from(number)) else {
            if self.totals.is_some() && !blank(cells) {
                // the totals row is the sheet's last row that is not blank
                self.last = Some(cells.iter().map(|(c, v)| (*c, v.clone().into())).collect());
            }
            return Ok(());
        };
        self.last = None;
        if let Some(rule) = self.totals.as_ref().map(|t| t.rule) {
            // counted, and its value of the summed column added, as the check reads it
            let row = as_read(cells);
            let (of, is_number) = match &rule.sum {
                Some((_, of)) => match row.cell(usize::from(self.column(of)?)) {
                    // an error cell adds nothing, as when the sheet was checked
                    Cell::Error(_) => (None, false),
                    c => (Some(c.text()), matches!(c, Cell::Number(_))),
                },
                None => (None, false),
            };
            if let Some(t) = self.totals.as_mut() {
                t.add(of, is_number, u64::from(number))?;
            }
        }
        let col = match self.error_col {
            Some(c) => c,
            None => {
                // no header row: the column past every cell of the sheet and every
                // column the mapping reads, or the row's last cell where it holds the
                // message of a rejected file that failed again (a sheet saved by a
                // spreadsheet may declare more columns than it fills)
                let again = cells.last().and_then(|(c, v)| Some((*c, text_of(v)?)));
                let c = match again {
                    Some((c, t))
                        if usize::from(c) >= self.reads
                            && t.starts_with(HEADERLESS_PREFIX.as_str()) =>
                    {
                        c
                    }
                    _ => u16::try_from(self.width).map_err(invalid)?,
                };
                self.error_col = Some(c);
                c
            }
        };
        let at = self.next_out;
        self.next_out += 1;
        let message = if !self.headerless {
            message.to_string()
        } else {
            format!("{}{message}", *HEADERLESS_PREFIX)
        };
        let message: String = message.chars().take(MAX_TEXT).collect();
        out.row(at, &with_error(cells, Some(col), Some(&message)))
    }
}

/// The rejected workbook of an xlsx file.
struct XlsxOut<'s> {
    sheet: &'s mut Worksheet,
    formats: Formats,
}

impl SheetOut for XlsxOut<'_> {
    fn row(&mut self, at: u32, cells: &[(u16, DataRef<'_>)]) -> io::Result<()> {
        write_cells(self.sheet, &self.formats, at, cells)
    }
}

/// Writes a row's cells at row `at`.
fn write_cells(
    sheet: &mut Worksheet,
    f: &Formats,
    at: u32,
    cells: &[(u16, DataRef<'_>)],
) -> io::Result<()> {
    for (col, value) in cells {
        let col = *col;
        match value {
            DataRef::Empty => {}
            DataRef::String(s) => {
                sheet.write_string(at, col, s).map_err(xlsx)?;
            }
            DataRef::SharedString(s) => {
                sheet.write_string(at, col, *s).map_err(xlsx)?;
            }
            // DurationIso is text to the reader; it stays text
            DataRef::DurationIso(s) => {
                sheet.write_string(at, col, s).map_err(xlsx)?;
            }
            DataRef::Float(n) => {
                sheet.write_number(at, col, *n).map_err(xlsx)?;
            }
            DataRef::Int(i) => {
                // the reader gives an integer cell as its digits: a number cell that
                // holds it exactly, else its text
                if i.unsigned_abs() <= 1 << 53 {
                    sheet.write_number(at, col, *i as f64).map_err(xlsx)?;
                } else {
                    sheet.write_string(at, col, i.to_string()).map_err(xlsx)?;
                }
            }
            DataRef::Bool(b) => {
                sheet.write_boolean(at, col, *b).map_err(xlsx)?;
            }
            DataRef::DateTime(dt) if dt.is_duration() => {
                sheet
                    .write_number_with_format(at, col, dt.as_f64(), &f.duration)
                    .map_err(xlsx)?;
            }
            DataRef::DateTime(dt) => {
                // by its calendar day and time, not its serial number: a workbook of the
                // 1904 date system counts from another day
                let (y, mo, d, h, mi, s, ms) = dt.to_ymd_hms_milli();
                let serial = dt.as_f64();
                let (value, format) = if (0.0..1.0).contains(&serial) {
                    let t = ExcelDateTime::from_hms_milli(h.into(), mi, s, ms).map_err(xlsx)?;
                    (t, &f.time)
                } else {
                    let day = ExcelDateTime::from_ymd(y, mo, d).map_err(xlsx)?;
                    if (h, mi, s, ms) == (0, 0, 0, 0) {
                        (day, &f.date)
                    } else {
                        let t = day.and_hms_milli(h.into(), mi, s, ms).map_err(xlsx)?;
                        (t, &f.datetime)
                    }
                };
                sheet
                    .write_datetime_with_format(at, col, &value, format)
                    .map_err(xlsx)?;
            }
            DataRef::DateTimeIso(s) => {
                let value = ExcelDateTime::parse_from_str(s).map_err(xlsx)?;
                let format = if s.contains(['T', ' ']) {
                    &f.datetime
                } else {
                    &f.date
                };
                sheet
                    .write_datetime_with_format(at, col, &value, format)
                    .map_err(xlsx)?;
            }
            DataRef::Error(e) => {
                // an error cell stays one (a formula of the error, with it as its value):
                // as text it would read back as a value the document could take
                let code = e.to_string();
                if !matches!(
                    code.as_str(),
                    "#DIV/0!" | "#N/A" | "#NAME?" | "#NULL!" | "#NUM!" | "#REF!" | "#VALUE!"
                ) {
                    return Err(invalid(format!(
                        "an error cell {code} cannot be written back"
                    )));
                }
                sheet
                    .write_formula(at, col, Formula::new(format!("={code}")).set_result(&code))
                    .map_err(xlsx)?;
            }
        }
    }
    Ok(())
}
