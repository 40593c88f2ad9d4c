//! The rejected rows of an xls workbook: an Excel 97-2003 workbook (BIFF8) of one sheet,
//! named as the sheet that was read, with the rows that `rejected_sheet` picks (title
//! rows, header, failed rows, `erpdrop_error`, the totals row of a trailer restated),
//! each cell of the kind it was read: text
//! (LABELSST, from the shared string table), a number (NUMBER: the exact double), a
//! boolean or an error (BOOLERR), a date, time or duration (NUMBER with a date, time or
//! duration format, its serial in the 1900 date system).
//!
//! The `Workbook` stream holds the records that Python's xlwt writes, whose files Excel
//! opens: the globals (BOF, the interface and protection records, WINDOW1, DATEMODE,
//! five fonts, the formats, 16 style XFs and the cell XFs, STYLE, BOUNDSHEET with the
//! sheet's stream offset, COUNTRY, SST split into CONTINUE records past 8,224 bytes with
//! its EXTSST, EOF), then the sheet (BOF, its calculation, print and protection records,
//! DIMENSIONS, a ROW record and the cells of each row, WINDOW2, EOF). The stream goes
//! into an OLE compound file (the `cfb` crate, version 3), padded as xlwt pads it to
//! 4,096 bytes so that it is kept in the file's regular sectors.
//!
//! An xls sheet holds at most 65,536 rows and 256 columns, a cell at most 32,767
//! characters: past that no file is written (an `InvalidData` error: the caller warns).

use super::rejected::{RejectedInput, Rows};
use super::rejected_sheet::{copy_range, open_book, Copy, SheetOut};
use calamine::{DataRef, Reader, Xls};
use indexmap::IndexMap;
use std::io::{self, Cursor, Write};

/// The most data a BIFF8 record holds; the rest goes to CONTINUE records.
const MAX_RECORD: usize = 8224;
const MAX_ROWS: u32 = 65_536;
const MAX_COLS: u16 = 256;
/// The longest text of a cell, in UTF-16 units.
const MAX_TEXT: usize = 32_767;

const BOF: u16 = 0x0809;
const EOF: u16 = 0x000A;
const CONTINUE: u16 = 0x003C;
const SST: u16 = 0x00FC;
const EXTSST: u16 = 0x00FF;
const BOUNDSHEET: u16 = 0x0085;
const ROW: u16 = 0x0208;
const NUMBER: u16 = 0x0203;
const LABELSST: u16 = 0x00FD;
const BOOLERR: u16 = 0x0205;
const DIMENSIONS: u16 = 0x0200;
const WINDOW2: u16 = 0x023E;

/// The cell XFs (after the 16 style XFs) and their number formats.
const XF_GENERAL: u16 = 16;
const XF_DATE: u16 = 17;
const XF_DATETIME: u16 = 18;
const XF_TIME: u16 = 19;
const XF_DURATION: u16 = 20;
/// The user-defined formats (164 on) of the date cells, in the order of their XFs.
const FORMATS: [&str; 4] = ["yyyy-mm-dd", "yyyy-mm-dd hh:mm:ss", "hh:mm:ss", "[h]:mm:ss"];

/// Days from 1899-12-30 (the 1900 system's day 0, as Excel counts) to 1904-01-01.
const DAYS_1904: f64 = 1462.0;

fn invalid(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

pub(super) fn copy_xls(
    input: &RejectedInput<'_>,
    rows: &Rows,
    w: &mut dyn Write,
) -> io::Result<()> {
    let source = &input.mapping.source;
    let (mut book, name) = open_book::<Xls<_>>(input)?;
    let is_1904 = book.has_1904_epoch();
    let range = book
        .worksheet_range(&name)
        .map_err(|e| invalid(format!("the sheet cannot be read again: {e}")))?;
    drop(book);
    let width = range.end().map_or(0, |(_, c)| c.saturating_add(1));

    let mut out = XlsOut::new(is_1904);
    let mut state = Copy::new(
        source,
        width,
        super::rejected::positions_read(input.mapping),
    );
    copy_range(&range, &mut state, &mut out, rows)?;
    let stream = out.workbook(&name)?;
    w.write_all(&compound(&stream)?)
}

/// The compound file of a `Workbook` stream.
fn compound(stream: &[u8]) -> io::Result<Vec<u8>> {
    let mut doc =
        cfb::CompoundFile::create_with_version(cfb::Version::V3, Cursor::new(Vec::new()))?;
    {
        let mut s = doc.create_stream("/Workbook")?;
        s.write_all(stream)?;
        // as xlwt: a stream under 4,096 bytes would go to the mini stream
        if stream.len() < 4096 {
            s.write_all(&vec![0u8; 4096 - stream.len()])?;
        }
        s.flush()?;
    }
    doc.flush()?;
    Ok(doc.into_inner().into_inner())
}

/// Appends a record, its data past 8,224 bytes in CONTINUE records.
fn record(b: &mut Vec<u8>, id: u16, data: &[u8]) {
    let mut chunks = data.chunks(MAX_RECORD);
    let first = chunks.next().unwrap_or(&[]);
    b.extend_from_slice(&id.to_le_bytes());
    b.extend_from_slice(&(first.len() as u16).to_le_bytes());
    b.extend_from_slice(first);
    for c in chunks {
        b.extend_from_slice(&CONTINUE.to_le_bytes());
        b.extend_from_slice(&(c.len() as u16).to_le_bytes());
        b.extend_from_slice(c);
    }
}

fn u16s(values: &[u16]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn utf16(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

/// An unicode string with an 8-bit length (a font's or a sheet's name), as UTF-16.
fn short_string(s: &str) -> io::Result<Vec<u8>> {
    let units = utf16(s);
    let len = u8::try_from(units.len())
        .map_err(|_| invalid(format!("the name {s:?} is too long for an xls sheet")))?;
    let mut b = vec![len, 1];
    b.extend(units.iter().flat_map(|u| u.to_le_bytes()));
    Ok(b)
}

/// An unicode string with a 16-bit length, as UTF-16.
fn long_string(s: &str) -> Vec<u8> {
    let units = utf16(s);
    let mut b = (units.len() as u16).to_le_bytes().to_vec();
    b.push(1);
    b.extend(units.iter().flat_map(|u| u.to_le_bytes()));
    b
}

/// The rejected sheet being written: its cell records, and the strings they refer to.
struct XlsOut {
    is_1904: bool,
    cells: Vec<u8>,
    strings: IndexMap<String, u32>,
    /// How many text cells there are (the SST's total).
    labels: u32,
    next: u32,
    /// The first and last row and column with a cell.
    rows: Option<(u32, u32)>,
    cols: Option<(u16, u16)>,
}

impl XlsOut {
    fn new(is_1904: bool) -> XlsOut {
        XlsOut {
            is_1904,
            cells: Vec::new(),
            strings: IndexMap::new(),
            labels: 0,
            next: 0,
            rows: None,
            cols: None,
        }
    }

    fn string(&mut self, s: &str) -> io::Result<u32> {
        if s.encode_utf16().count() > MAX_TEXT {
            return Err(invalid(
                "a text longer than 32,767 characters cannot be written to an xls cell",
            ));
        }
        self.labels += 1;
        let n = self.strings.len() as u32;
        Ok(*self.strings.entry(s.to_string()).or_insert(n))
    }

    fn number(&mut self, at: u32, col: u16, xf: u16, v: f64) -> io::Result<()> {
        if !v.is_finite() {
            return Err(invalid(format!("a number {v} cannot be written")));
        }
        let mut d = u16s(&[at as u16, col, xf]);
        d.extend_from_slice(&v.to_le_bytes());
        record(&mut self.cells, NUMBER, &d);
        Ok(())
    }

    /// A date, time or duration cell: its serial in the 1900 date system.
    fn date(&mut self, at: u32, col: u16, dt: &calamine::ExcelDateTime) -> io::Result<()> {
        let serial = dt.as_f64();
        let (value, xf) = if dt.is_duration() {
            (serial, XF_DURATION)
        } else if (0.0..1.0).contains(&serial) {
            // a time of day is no day, in either date system
            (serial, XF_TIME)
        } else {
            let value = if self.is_1904 {
                serial + DAYS_1904
            } else {
                serial
            };
            let xf = if serial.fract() == 0.0 {
                XF_DATE
            } else {
                XF_DATETIME
            };
            (value, xf)
        };
        self.number(at, col, xf, value)
    }

    fn cell(&mut self, at: u32, col: u16, value: &DataRef<'_>) -> io::Result<()> {
        let row = at as u16;
        match value {
            DataRef::Empty => {}
            DataRef::String(s) => self.label(row, col, s)?,
            DataRef::SharedString(s) => self.label(row, col, s)?,
            DataRef::Float(f) => self.number(at, col, XF_GENERAL, *f)?,
            DataRef::Int(i) => {
                // a number cell that holds it exactly, else its digits
                if i.unsigned_abs() <= 1 << 53 {
                    self.number(at, col, XF_GENERAL, *i as f64)?
                } else {
                    self.label(row, col, &i.to_string())?
                }
            }
            DataRef::Bool(b) => {
                let mut d = u16s(&[row, col, XF_GENERAL]);
                d.extend_from_slice(&[u8::from(*b), 0]);
                record(&mut self.cells, BOOLERR, &d);
            }
            DataRef::Error(e) => {
                let code = match e.to_string().as_str() {
                    "#NULL!" => 0x00,
                    "#DIV/0!" => 0x07,
                    "#VALUE!" => 0x0F,
                    "#REF!" => 0x17,
                    "#NAME?" => 0x1D,
                    "#NUM!" => 0x24,
                    "#N/A" => 0x2A,
                    other => {
                        return Err(invalid(format!(
                            "an error cell {other} cannot be written back"
                        )))
                    }
                };
                let mut d = u16s(&[row, col, XF_GENERAL]);
                d.extend_from_slice(&[code, 1]);
                record(&mut self.cells, BOOLERR, &d);
            }
            DataRef::DateTime(dt) => self.date(at, col, dt)?,
            // calamine reads an xls date as its serial, never as ISO text
            DataRef::DateTimeIso(_) | DataRef::DurationIso(_) => {
                return Err(invalid(format!(
                    "a cell {value:?} cannot be written to an xls sheet as it was read"
                )))
            }
        }
        Ok(())
    }

    fn label(&mut self, row: u16, col: u16, s: &str) -> io::Result<()> {
        let i = self.string(s)?;
        let mut d = u16s(&[row, col, XF_GENERAL]);
        d.extend_from_slice(&i.to_le_bytes());
        record(&mut self.cells, LABELSST, &d);
        Ok(())
    }

    /// The whole `Workbook` stream: the globals, then the sheet.
    fn workbook(&self, sheet: &str) -> io::Result<Vec<u8>> {
        let mut b = Vec::new();
        globals_head(&mut b);
        // the sheet's offset is patched once the globals are written
        let bound_at = b.len() + 4;
        let mut bs = vec![0, 0, 0, 0, 0, 0];
        bs.extend(short_string(sheet)?);
        record(&mut b, BOUNDSHEET, &bs);
        record(&mut b, 0x008C, &u16s(&[1, 1])); // COUNTRY: USA
        let strings: Vec<&str> = self.strings.keys().map(String::as_str).collect();
        sst(&mut b, self.labels, &strings);
        record(&mut b, EOF, &[]);
        let at = u32::try_from(b.len()).map_err(invalid)?;
        b[bound_at..bound_at + 4].copy_from_slice(&at.to_le_bytes());
        self.sheet(&mut b);
        Ok(b)
    }

    fn sheet(&self, b: &mut Vec<u8>) {
        record(b, BOF, &bof(0x0010));
        record(b, 0x000D, &u16s(&[1])); // CALCMODE: automatic
        record(b, 0x000C, &u16s(&[100])); // CALCCOUNT
        record(b, 0x000F, &u16s(&[1])); // REFMODE: A1
        record(b, 0x0011, &u16s(&[0])); // ITERATION: off
        record(b, 0x0010, &0.001f64.to_le_bytes()); // DELTA
        record(b, 0x005F, &u16s(&[0])); // SAVERECALC
        record(b, 0x0080, &u16s(&[0, 0, 1, 0])); // GUTS
        record(b, 0x0225, &u16s(&[0, 0x00FF])); // DEFAULTROWHEIGHT
        record(b, 0x0081, &u16s(&[0x0C01])); // WSBOOL
        let (r0, r1) = self.rows.map_or((0, 0), |(a, z)| (a, z + 1));
        let (c0, c1) = self.cols.map_or((0, 0), |(a, z)| (a, z + 1));
        let mut dim = Vec::new();
        dim.extend_from_slice(&r0.to_le_bytes());
        dim.extend_from_slice(&r1.to_le_bytes());
        dim.extend(u16s(&[c0, c1, 0]));
        record(b, DIMENSIONS, &dim);
        record(b, 0x002A, &u16s(&[0])); // PRINTHEADERS
        record(b, 0x002B, &u16s(&[0])); // PRINTGRIDLINES
        record(b, 0x0082, &u16s(&[1])); // GRIDSET
        record(b, 0x001B, &u16s(&[0])); // HORIZONTALPAGEBREAKS
        record(b, 0x001A, &u16s(&[0])); // VERTICALPAGEBREAKS
        record(b, 0x0014, &[]); // HEADER: none
        record(b, 0x0015, &[]); // FOOTER: none
        record(b, 0x0083, &u16s(&[0])); // HCENTER
        record(b, 0x0084, &u16s(&[0])); // VCENTER
        record(b, 0x0026, &0.3f64.to_le_bytes()); // LEFTMARGIN (inches)
        record(b, 0x0027, &0.3f64.to_le_bytes()); // RIGHTMARGIN
        record(b, 0x0028, &0.61f64.to_le_bytes()); // TOPMARGIN
        record(b, 0x0029, &0.37f64.to_le_bytes()); // BOTTOMMARGIN
        let mut setup = u16s(&[9, 100, 1, 1, 1, 0x0083, 300, 300]);
        setup.extend_from_slice(&0.1f64.to_le_bytes());
        setup.extend_from_slice(&0.1f64.to_le_bytes());
        setup.extend(u16s(&[1]));
        record(b, 0x00A1, &setup); // SETUP: A4, portrait
        record(b, 0x0012, &u16s(&[0])); // PROTECT
        record(b, 0x00DD, &u16s(&[0])); // SCENPROTECT
        record(b, 0x0019, &u16s(&[0])); // WINDOWPROTECT
        record(b, 0x0063, &u16s(&[0])); // OBJPROTECT
        record(b, 0x0013, &u16s(&[0])); // PASSWORD
        b.extend_from_slice(&self.cells);
        // WINDOW2: grid, headers, zeros, default grid colour, outline symbols, selected
        let mut w2 = u16s(&[0x02B6, 0, 0, 0x0040, 0, 0, 0, 0]);
        w2.extend_from_slice(&[0, 0]);
        record(b, WINDOW2, &w2);
        record(b, EOF, &[]);
    }
}

impl SheetOut for XlsOut {
    fn row(&mut self, at: u32, cells: &[(u16, DataRef<'_>)]) -> io::Result<()> {
        if at < self.next {
            return Err(invalid("the rows of the rejected sheet are out of order"));
        }
        if at >= MAX_ROWS {
            return Err(invalid(
                "the rejected rows go past row 65,536, the last of an xls sheet",
            ));
        }
        let mut sorted: Vec<&(u16, DataRef<'_>)> = cells
            .iter()
            .filter(|(_, v)| !matches!(v, DataRef::Empty))
            .collect();
        sorted.sort_by_key(|(c, _)| *c);
        sorted.dedup_by_key(|(c, _)| *c);
        self.next = at + 1;
        let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
            return Ok(());
        };
        if last.0 >= MAX_COLS {
            return Err(invalid(
                "the rejected rows go past column IV, the last of an xls sheet",
            ));
        }
        let (first, last) = (first.0, last.0);
        // ROW: its columns, the default height, the default cell XF
        let mut row = u16s(&[at as u16, first, last + 1, 0x00FF, 0, 0]);
        row.extend_from_slice(&0x000F_0100u32.to_le_bytes());
        record(&mut self.cells, ROW, &row);
        for (col, value) in sorted {
            self.cell(at, *col, value)?;
        }
        self.rows = Some(self.rows.map_or((at, at), |(a, _)| (a, at)));
        self.cols = Some(
            self.cols
                .map_or((first, last), |(a, z)| (a.min(first), z.max(last))),
        );
        Ok(())
    }
}

fn bof(kind: u16) -> Vec<u8> {
    // BIFF8, the kind, build and year as xlwt writes them, no history, lowest version 6
    let mut d = u16s(&[0x0600, kind, 0x0DBB, 0x07CC]);
    d.extend_from_slice(&0u32.to_le_bytes());
    d.extend_from_slice(&6u32.to_le_bytes());
    d
}

/// The globals up to the BOUNDSHEET record.
fn globals_head(b: &mut Vec<u8>) {
    record(b, BOF, &bof(0x0005));
    record(b, 0x00E1, &u16s(&[1200])); // INTERFACEHDR: UTF-16
    record(b, 0x00C1, &u16s(&[0])); // MMS
    record(b, 0x00E2, &[]); // INTERFACEEND
                            // WRITEACCESS: the user name, as a string padded with spaces to 112 bytes
    let mut wa = u16s(&[7]);
    wa.push(0);
    wa.extend_from_slice(b"erpdrop");
    wa.resize(112, b' ');
    record(b, 0x005C, &wa);
    record(b, 0x0042, &u16s(&[1200])); // CODEPAGE: UTF-16
    record(b, 0x0161, &u16s(&[0])); // DSF: no BIFF5 stream
    record(b, 0x013D, &u16s(&[1])); // TABID: one sheet
    record(b, 0x009C, &u16s(&[0x0E])); // FNGROUPCOUNT
    record(b, 0x0019, &u16s(&[0])); // WINDOWPROTECT
    record(b, 0x0012, &u16s(&[0])); // PROTECT
    record(b, 0x0063, &u16s(&[0])); // OBJPROTECT
    record(b, 0x0013, &u16s(&[0])); // PASSWORD
    record(b, 0x01AF, &u16s(&[0])); // PROT4REV
    record(b, 0x01BC, &u16s(&[0])); // PROT4REVPASS
    record(b, 0x0040, &u16s(&[0])); // BACKUP
    record(b, 0x008D, &u16s(&[0])); // HIDEOBJ: show all
                                    // WINDOW1: position and size (twips), scroll bars and tabs shown, the first sheet
                                    // active, one selected, the tab bar's width
    record(
        b,
        0x003D,
        &u16s(&[0x01E0, 0x005A, 0x3FCF, 0x2A4E, 0x0038, 0, 0, 1, 0x0258]),
    );
    record(b, 0x0022, &u16s(&[0])); // DATEMODE: 1900
    record(b, 0x000E, &u16s(&[1])); // PRECISION: as stored
    record(b, 0x01B7, &u16s(&[0])); // REFRESHALL
    record(b, 0x00DA, &u16s(&[0])); // BOOKBOOL
                                    // FONT 0, 1, 2, 3 and 5 (readers skip index 4): Arial 10, automatic colour, normal
    let mut font = u16s(&[200, 0, 0x7FFF, 400, 0]);
    font.extend_from_slice(&[0, 0, 1, 0]);
    font.extend_from_slice(&[5, 0]);
    font.extend_from_slice(b"Arial");
    for _ in 0..5 {
        record(b, 0x0031, &font);
    }
    for (i, f) in FORMATS.iter().enumerate() {
        let mut d = u16s(&[164 + i as u16]);
        d.extend(long_string(f));
        record(b, 0x041E, &d);
    }
    // XF: 16 style XFs (font 0, General), then the cell XFs, children of style XF 0
    let xf = |format: u16, style: bool| {
        let (prot, used) = if style {
            (0xFFF5, 0xF4)
        } else {
            (0x0001, 0xF8)
        };
        let mut d = u16s(&[0, format, prot]);
        d.extend_from_slice(&[0x20, 0, 0, used]);
        d.extend_from_slice(&[0; 8]);
        d.extend(u16s(&[0x20C0]));
        d
    };
    for _ in 0..16 {
        record(b, 0x00E0, &xf(0, true));
    }
    record(b, 0x00E0, &xf(0, false));
    for i in 0..FORMATS.len() as u16 {
        record(b, 0x00E0, &xf(164 + i, false));
    }
    record(b, 0x0293, &[0x00, 0x80, 0x00, 0xFF]); // STYLE: Normal, built in, on XF 0
    record(b, 0x0160, &u16s(&[1])); // USESELFS
}

/// SST, the strings in UTF-16, in CONTINUE records past 8,224 bytes: a string's length,
/// flags and first character are never split, a continued string starts its record
/// with its flags again, and a surrogate pair stays in one record. Then EXTSST: where
/// every `dsst`-th string starts.
fn sst(b: &mut Vec<u8>, total: u32, strings: &[&str]) {
    let dsst = strings.len().div_ceil(128).max(8);
    let mut buckets: Vec<(u32, u16)> = Vec::new();
    // the records' data; the first one's counts
    let mut pieces: Vec<Vec<u8>> = Vec::new();
    let mut piece = Vec::with_capacity(MAX_RECORD);
    piece.extend_from_slice(&total.to_le_bytes());
    piece.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    let start = b.len();
    // where piece `pieces.len()` starts in the stream
    let mut piece_at = start;
    let close = |pieces: &mut Vec<Vec<u8>>, piece: &mut Vec<u8>, piece_at: &mut usize| {
        *piece_at += 4 + piece.len();
        pieces.push(std::mem::replace(piece, Vec::with_capacity(MAX_RECORD)));
    };
    for (n, s) in strings.iter().enumerate() {
        let units = utf16(s);
        // the length, the flags and the first character (both halves of a pair)
        let first = match units.first() {
            Some(u) if (0xD800..0xDC00).contains(u) => 2,
            Some(_) => 1,
            None => 0,
        };
        if MAX_RECORD - piece.len() < 3 + 2 * first {
            close(&mut pieces, &mut piece, &mut piece_at);
        }
        if n % dsst == 0 {
            buckets.push((
                (piece_at + 4 + piece.len()) as u32,
                (4 + piece.len()) as u16,
            ));
        }
        piece.extend_from_slice(&(units.len() as u16).to_le_bytes());
        piece.push(1);
        let mut rest = &units[..];
        loop {
            let room = (MAX_RECORD - piece.len()) / 2;
            let mut take = rest.len().min(room);
            if take < rest.len() && take > 0 && (0xD800..0xDC00).contains(&rest[take - 1]) {
                take -= 1;
            }
            piece.extend(rest[..take].iter().flat_map(|u| u.to_le_bytes()));
            rest = &rest[take..];
            if rest.is_empty() {
                break;
            }
            close(&mut pieces, &mut piece, &mut piece_at);
            piece.push(1);
        }
    }
    pieces.push(piece);
    for (i, p) in pieces.iter().enumerate() {
        let id = if i == 0 { SST } else { CONTINUE };
        b.extend_from_slice(&id.to_le_bytes());
        b.extend_from_slice(&(p.len() as u16).to_le_bytes());
        b.extend_from_slice(p);
    }
    let mut ext = u16s(&[dsst as u16]);
    for (at, offset) in buckets {
        ext.extend_from_slice(&at.to_le_bytes());
        ext.extend(u16s(&[offset, 0]));
    }
    record(b, EXTSST, &ext);
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::Data;
    use calamine::{ExcelDateTime, ExcelDateTimeType};

    fn book(is_1904: bool, rows: &[(u32, Vec<(u16, DataRef<'_>)>)]) -> Vec<u8> {
        let mut out = XlsOut::new(is_1904);
        for (at, cells) in rows {
            out.row(*at, cells).unwrap();
        }
        compound(&out.workbook("Лист 1").unwrap()).unwrap()
    }

    /// The records of a stream: (offset, id, data), up to the first EOF after `from`.
    fn records(stream: &[u8], from: usize) -> Vec<(usize, u16, Vec<u8>)> {
        let mut out = Vec::new();
        let mut i = from;
        while i + 4 <= stream.len() {
            let id = u16::from_le_bytes([stream[i], stream[i + 1]]);
            let len = u16::from_le_bytes([stream[i + 2], stream[i + 3]]) as usize;
            out.push((i, id, stream[i + 4..i + 4 + len].to_vec()));
            i += 4 + len;
            if id == EOF {
                break;
            }
        }
        out
    }

    fn read(bytes: Vec<u8>) -> (Vec<String>, calamine::Range<Data>) {
        let mut xls = Xls::new(Cursor::new(bytes)).unwrap();
        let names = xls.sheet_names();
        let range = xls.worksheet_range(&names[0]).unwrap();
        (names, range)
    }

    fn date(v: f64, t: ExcelDateTimeType, is_1904: bool) -> DataRef<'static> {
        DataRef::DateTime(ExcelDateTime::new(v, t, is_1904))
    }

    #[test]
    fn cells_read_back_through_calamine_as_written() {
        use ExcelDateTimeType::{DateTime, TimeDelta};
        let long = "ж".repeat(5000);
        let bytes = book(
            false,
            &[
                (0, vec![(0, DataRef::SharedString("Счёт-фактура"))]),
                (
                    2,
                    vec![
                        (3, DataRef::Bool(false)),
                        (0, DataRef::SharedString("  two\tand\n\"more\" 😀")),
                        (1, DataRef::Float(0.1)),
                        (4, DataRef::Error(calamine::CellErrorType::NA)),
                    ],
                ),
                (
                    3,
                    vec![
                        (0, date(46346.0, DateTime, false)),
                        (1, date(46346.5729166667, DateTime, false)),
                        (2, date(0.25, DateTime, false)),
                        (3, date(1.5, TimeDelta, false)),
                        (4, DataRef::Float(-1234.5e-9)),
                    ],
                ),
                (
                    4,
                    vec![
                        (0, DataRef::SharedString(&long)),
                        (1, DataRef::Int(1 << 60)),
                        (2, DataRef::Int(12)),
                        (3, DataRef::SharedString(&long)),
                        (4, DataRef::Bool(true)),
                    ],
                ),
            ],
        );
        let (names, range) = read(bytes);
        assert_eq!(names, ["Лист 1"]);
        assert_eq!(range.start(), Some((0, 0)));
        let get = |r, c| range.get_value((r, c)).cloned().unwrap_or(Data::Empty);
        assert_eq!(get(0, 0), Data::String("Счёт-фактура".into()));
        assert_eq!(get(1, 0), Data::Empty);
        assert_eq!(get(2, 0), Data::String("  two\tand\n\"more\" 😀".into()));
        assert_eq!(get(2, 1), Data::Float(0.1));
        assert_eq!(get(2, 2), Data::Empty);
        assert_eq!(get(2, 3), Data::Bool(false));
        assert_eq!(get(2, 4), Data::Error(calamine::CellErrorType::NA));
        let dt = |v, t| Data::DateTime(ExcelDateTime::new(v, t, false));
        assert_eq!(get(3, 0), dt(46346.0, DateTime));
        assert_eq!(get(3, 1), dt(46346.5729166667, DateTime));
        assert_eq!(get(3, 2), dt(0.25, DateTime));
        assert_eq!(get(3, 3), dt(1.5, TimeDelta));
        assert_eq!(get(3, 4), Data::Float(-1234.5e-9));
        assert_eq!(get(4, 0), Data::String(long.clone()));
        assert_eq!(get(4, 1), Data::String((1i64 << 60).to_string()));
        assert_eq!(get(4, 2), Data::Float(12.0));
        assert_eq!(get(4, 3), Data::String(long));
        assert_eq!(get(4, 4), Data::Bool(true));
    }

    #[test]
    fn a_1904_workbooks_dates_keep_their_day() {
        let dt = ExcelDateTime::new(44884.0, ExcelDateTimeType::DateTime, true);
        let time = ExcelDateTime::new(0.5, ExcelDateTimeType::DateTime, true);
        let bytes = book(
            true,
            &[(
                0,
                vec![(0, DataRef::DateTime(dt)), (1, DataRef::DateTime(time))],
            )],
        );
        let (_, range) = read(bytes);
        let Some(Data::DateTime(back)) = range.get_value((0, 0)) else {
            panic!("{range:?}")
        };
        assert_eq!(back.to_ymd_hms_milli(), dt.to_ymd_hms_milli());
        let Some(Data::DateTime(back)) = range.get_value((0, 1)) else {
            panic!("{range:?}")
        };
        assert_eq!(back.as_f64(), 0.5);
    }

    #[test]
    fn the_shared_strings_continue_past_8224_bytes_without_splitting_a_string_wrongly() {
        // strings of every length around a record's end, some with a pair of surrogates
        let strings: Vec<String> = (0..400)
            .map(|i| {
                let s = format!("{i}:{}", "é".repeat(i % 37));
                if i % 3 == 0 {
                    format!("😀{s}😀")
                } else {
                    s
                }
            })
            .collect();
        let mut out = XlsOut::new(false);
        for (i, s) in strings.iter().enumerate() {
            out.row(
                i as u32,
                &[(0, DataRef::SharedString(s)), (1, DataRef::SharedString(s))],
            )
            .unwrap();
        }
        let stream = out.workbook("S").unwrap();
        let recs = records(&stream, 0);
        let at = recs.iter().position(|r| r.1 == SST).unwrap();
        let sst = &recs[at].2;
        assert_eq!(
            u32::from_le_bytes(sst[..4].try_into().unwrap()),
            800,
            "cells"
        );
        assert_eq!(
            u32::from_le_bytes(sst[4..8].try_into().unwrap()),
            400,
            "strings"
        );
        let continues = recs[at + 1..]
            .iter()
            .take_while(|r| r.1 == CONTINUE)
            .count();
        assert!(continues >= 1, "{continues}");
        for r in &recs[at..=at + continues] {
            assert!(r.2.len() <= MAX_RECORD);
            if r.1 == CONTINUE {
                assert!(
                    r.2[0] == 1,
                    "a continued string restates its flags (16-bit)"
                );
            }
        }
        // EXTSST: every 8th string, at its stream offset and its offset in its record
        let ext = &recs[at + continues + 1];
        assert_eq!(ext.1, EXTSST);
        assert_eq!(u16::from_le_bytes([ext.2[0], ext.2[1]]), 8);
        assert_eq!(ext.2.len(), 2 + 8 * 50);
        for (k, b) in ext.2[2..].chunks(8).enumerate() {
            let pos = u32::from_le_bytes(b[..4].try_into().unwrap()) as usize;
            let off = u16::from_le_bytes([b[4], b[5]]) as usize;
            let rec = recs.iter().rev().find(|r| r.0 <= pos).unwrap();
            assert_eq!(pos - rec.0, off, "bucket {k}");
            let s = &strings[k * 8];
            let cch = u16::from_le_bytes([stream[pos], stream[pos + 1]]) as usize;
            assert_eq!(cch, s.encode_utf16().count(), "bucket {k}");
            assert_eq!(stream[pos + 2], 1);
        }
        let (_, range) = read(compound(&stream).unwrap());
        for (i, s) in strings.iter().enumerate() {
            assert_eq!(
                range.get_value((i as u32, 1)),
                Some(&Data::String(s.clone()))
            );
        }
    }

    #[test]
    fn a_surrogate_pair_at_a_records_end_goes_whole_to_the_continue() {
        // the SST's counts (8) and the string's header (3) leave room for 4,106 units:
        // the 4,106th is the first half of a pair
        let s = format!("{}😀b", "a".repeat(4105));
        let mut out = XlsOut::new(false);
        out.row(0, &[(0, DataRef::SharedString(&s))]).unwrap();
        let stream = out.workbook("S").unwrap();
        let recs = records(&stream, 0);
        let at = recs.iter().position(|r| r.1 == SST).unwrap();
        assert_eq!(recs[at].2.len(), 8 + 3 + 2 * 4105);
        assert_eq!(recs[at + 1].1, CONTINUE);
        assert_eq!(recs[at + 1].2[..5], [1, 0x3D, 0xD8, 0x00, 0xDE]);
        let (_, range) = read(compound(&stream).unwrap());
        assert_eq!(range.get_value((0, 0)), Some(&Data::String(s)));
    }

    #[test]
    fn the_globals_are_xlwts_and_the_sheet_offset_is_patched() {
        let stream = {
            let mut out = XlsOut::new(false);
            out.row(0, &[(2, DataRef::Float(1.0))]).unwrap();
            out.workbook("S").unwrap()
        };
        let recs = records(&stream, 0);
        let ids: Vec<u16> = recs.iter().map(|r| r.1).collect();
        let mut want = vec![
            BOF, 0x00E1, 0x00C1, 0x00E2, 0x005C, 0x0042, 0x0161, 0x013D, 0x009C, 0x0019, 0x0012,
            0x0063, 0x0013, 0x01AF, 0x01BC, 0x0040, 0x008D, 0x003D, 0x0022, 0x000E, 0x01B7, 0x00DA,
        ];
        want.extend([0x0031; 5]);
        want.extend([0x041E; 4]);
        want.extend([0x00E0; 21]);
        want.extend([0x0293, 0x0160, BOUNDSHEET, 0x008C, SST, EXTSST, EOF]);
        assert_eq!(ids, want);
        assert_eq!(
            recs[0].2,
            [0, 6, 5, 0, 0xBB, 0x0D, 0xCC, 0x07, 0, 0, 0, 0, 6, 0, 0, 0]
        );
        let date_xf = &recs.iter().filter(|r| r.1 == 0x00E0).nth(17).unwrap().2;
        assert_eq!(u16::from_le_bytes([date_xf[2], date_xf[3]]), 164);
        let bound = &recs.iter().find(|r| r.1 == BOUNDSHEET).unwrap().2;
        let at = u32::from_le_bytes(bound[..4].try_into().unwrap()) as usize;
        assert_eq!(
            at,
            recs.last().unwrap().0 + 4,
            "right after the globals' EOF"
        );
        let sheet = records(&stream, at);
        assert_eq!(sheet[0].1, BOF);
        assert_eq!(sheet[0].2[2..4], [0x10, 0]);
        let dim = &sheet.iter().find(|r| r.1 == DIMENSIONS).unwrap().2;
        assert_eq!(dim[..], [0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 3, 0, 0, 0]);
        let n = &sheet.iter().find(|r| r.1 == NUMBER).unwrap().2;
        assert_eq!(n[..6], [0, 0, 2, 0, 16, 0]);
        assert_eq!(n[6..], 1.0f64.to_le_bytes());
        let tail: Vec<u16> = sheet.iter().rev().take(2).map(|r| r.1).collect();
        assert_eq!(tail, [EOF, WINDOW2]);
    }

    #[test]
    fn what_an_xls_sheet_cannot_hold_is_refused() {
        let mut out = XlsOut::new(false);
        assert!(out.row(65_536, &[(0, DataRef::Bool(true))]).is_err());
        assert!(out.row(0, &[(256, DataRef::Bool(true))]).is_err());
        assert!(out.row(1, &[(0, DataRef::Float(f64::NAN))]).is_err());
        let long = "a".repeat(MAX_TEXT + 1);
        assert!(out.row(2, &[(0, DataRef::SharedString(&long))]).is_err());
        assert!(out
            .row(3, &[(0, DataRef::DateTimeIso("2026-11-20".into()))])
            .is_err());
        assert!(out.row(1, &[]).is_err(), "rows go down only");
    }
}
