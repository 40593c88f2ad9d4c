//! One cell of a workbook as erpdrop reads it: the text a field sees, whatever the
//! cell's display format, and whether it is a number or a date.

use calamine::{CellErrorType, DataRef, ExcelDateTime};

/// A cell's value, as text for the field pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cell<'a> {
    #[default]
    Empty,
    /// Text or a boolean: read with the mapping's separators where a field wants a
    /// number.
    Text(&'a str),
    /// A number cell: the decimal it holds, [`number_text`] (`1234.5`), whatever the
    /// mapping's `decimal_separator` and `thousands_separator`, which are for text.
    Number(&'a str),
    /// A date or date and time cell, ISO 8601 (`2026-11-20`, `2026-11-20T13:45:00`).
    Date(&'a str),
    /// An error cell: `#N/A`, `#REF!`, ...
    Error(&'a str),
}

impl<'a> Cell<'a> {
    /// Whether the cell holds nothing but blanks.
    pub fn is_blank(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(s) => s.trim().is_empty(),
            Cell::Number(_) | Cell::Date(_) | Cell::Error(_) => false,
        }
    }

    /// The text a field reads (an error cell's is its code).
    pub fn text(&self) -> &'a str {
        match *self {
            Cell::Empty => "",
            Cell::Text(s) | Cell::Number(s) | Cell::Date(s) | Cell::Error(s) => s,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Kind {
    #[default]
    Empty,
    Text,
    Number,
    Date,
    Error,
}

/// One row of a sheet: its number (1-based, as the sheet shows it) and its cells from
/// column A on, in one text buffer (absent cells empty; the row ends at its last cell).
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub number: u32,
    text: String,
    cells: Vec<(u32, u32, Kind)>,
}

impl Row {
    pub fn new(number: u32) -> Row {
        Row {
            number,
            text: String::new(),
            cells: Vec::new(),
        }
    }

    /// How many cells the row has, up to its last.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The cell in column `i` (0-based), empty past the last.
    pub fn cell(&self, i: usize) -> Cell<'_> {
        match self.cells.get(i) {
            None => Cell::Empty,
            Some(&(s, e, kind)) => {
                let t = &self.text[s as usize..e as usize];
                match kind {
                    Kind::Empty => Cell::Empty,
                    Kind::Text => Cell::Text(t),
                    Kind::Number => Cell::Number(t),
                    Kind::Date => Cell::Date(t),
                    Kind::Error => Cell::Error(t),
                }
            }
        }
    }

    /// Whether every cell is blank.
    pub fn is_blank(&self) -> bool {
        (0..self.cells.len()).all(|i| self.cell(i).is_blank())
    }

    fn slot(&mut self, col: usize) -> &mut (u32, u32, Kind) {
        if self.cells.len() <= col {
            self.cells.resize(col + 1, (0, 0, Kind::Empty));
        }
        &mut self.cells[col]
    }

    fn set(&mut self, col: usize, kind: Kind, value: &str) {
        let start = self.text.len() as u32;
        self.text.push_str(value);
        let end = self.text.len() as u32;
        *self.slot(col) = (start, end, kind);
    }

    fn set_number(&mut self, col: usize, f: f64) {
        let start = self.text.len() as u32;
        write_number(&mut self.text, f);
        let end = self.text.len() as u32;
        *self.slot(col) = (start, end, Kind::Number);
    }

    /// Puts calamine's value (xlsx) in column `col`; nothing for an empty cell.
    pub fn put(&mut self, col: usize, d: &DataRef<'_>) {
        match d {
            DataRef::Empty => {}
            DataRef::String(s) | DataRef::DurationIso(s) => self.set(col, Kind::Text, s),
            DataRef::SharedString(s) => self.set(col, Kind::Text, s),
            DataRef::Int(i) => self.set(col, Kind::Number, &i.to_string()),
            DataRef::Float(f) => self.set_number(col, *f),
            DataRef::Bool(b) => self.set(col, Kind::Text, if *b { "true" } else { "false" }),
            DataRef::DateTime(dt) => self.put_date(col, dt),
            DataRef::DateTimeIso(s) => self.set(col, Kind::Date, s),
            DataRef::Error(e) => self.set(col, Kind::Error, &e.to_string()),
        }
    }

    /// Puts calamine's owned value (xls and ods sheets) in column `col`.
    pub fn put_owned(&mut self, col: usize, d: &calamine::Data) {
        use calamine::Data;
        match d {
            Data::Empty => {}
            Data::String(s) | Data::DurationIso(s) => self.set(col, Kind::Text, s),
            Data::Int(i) => self.set(col, Kind::Number, &i.to_string()),
            Data::Float(f) => self.set_number(col, *f),
            Data::Bool(b) => self.set(col, Kind::Text, if *b { "true" } else { "false" }),
            Data::DateTime(dt) => self.put_date(col, dt),
            Data::DateTimeIso(s) => self.set(col, Kind::Date, s),
            Data::Error(e) => self.set(col, Kind::Error, &error_text(e)),
        }
    }

    fn put_date(&mut self, col: usize, dt: &ExcelDateTime) {
        match date_cell(dt) {
            DateCell::Date(s) => self.set(col, Kind::Date, &s),
            DateCell::Text(s) => self.set(col, Kind::Text, &s),
            DateCell::Days(f) => self.set_number(col, f),
        }
    }
}

fn error_text(e: &CellErrorType) -> String {
    e.to_string()
}

/// What a date-formatted cell is.
#[derive(Debug, PartialEq)]
enum DateCell {
    Date(String),
    Text(String),
    /// A duration: the number of days it holds, a number cell.
    Days(f64),
}

/// A cell whose number format is a date's: its day, with the time where it has one. A
/// time of day alone (a serial under 1) is its text, `13:45:00`; a duration is the
/// number of days it holds.
fn date_cell(dt: &ExcelDateTime) -> DateCell {
    if dt.is_duration() {
        return DateCell::Days(dt.as_f64());
    }
    let (y, mo, d, h, mi, s, ms) = dt.to_ymd_hms_milli();
    let time = match ms {
        0 => format!("{h:02}:{mi:02}:{s:02}"),
        _ => format!("{h:02}:{mi:02}:{s:02}.{ms:03}"),
    };
    if dt.as_f64() < 1.0 && dt.as_f64() >= 0.0 {
        return DateCell::Text(time);
    }
    if (h, mi, s, ms) == (0, 0, 0, 0) {
        DateCell::Date(format!("{y:04}-{mo:02}-{d:02}"))
    } else {
        DateCell::Date(format!("{y:04}-{mo:02}-{d:02}T{time}"))
    }
}

/// The decimal a number cell holds, to the 15 significant digits a spreadsheet keeps:
/// `0.1` for the double nearest 0.1, `1234.5`, `12` (not `12.0`), `0.000001`, never an
/// exponent.
pub fn number_text(f: f64) -> String {
    let mut s = String::new();
    write_number(&mut s, f);
    s
}

/// [`number_text`] appended to `out`.
pub fn write_number(out: &mut String, f: f64) {
    use std::fmt::Write;
    if !f.is_finite() {
        let _ = write!(out, "{f}");
        return;
    }
    if f == 0.0 {
        out.push('0');
        return;
    }
    // The shortest text that reads back as `f` (Display: never an exponent). When it
    // has at most 15 significant digits it is also `f` rounded to 15 digits: two
    // decimals of 15 digits lie further apart than two doubles, so no other one is as
    // near.
    let start = out.len();
    let _ = write!(out, "{f}");
    let digits = out[start..]
        .bytes()
        .filter(u8::is_ascii_digit)
        .skip_while(|&b| b == b'0')
        .count();
    let trailing = if out[start..].contains('.') {
        0
    } else {
        out[start..]
            .bytes()
            .rev()
            .take_while(|&b| b == b'0')
            .count()
    };
    if digits - trailing <= 15 {
        return;
    }
    out.truncate(start);
    let s = format!("{f:.14e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    // the value is 0.DIGITS times ten to the power of `point`
    let point = exp + 1;
    if negative {
        out.push('-');
    }
    if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(digits);
    } else if point as usize >= digits.len() {
        out.push_str(digits);
        out.extend(std::iter::repeat_n('0', point as usize - digits.len()));
    } else {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    }
}

/// The column's letters: 0 is `A`, 25 `Z`, 26 `AA`.
pub fn column_letters(mut col: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (col % 26) as u8);
        if col < 26 {
            break;
        }
        col = col / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::ExcelDateTimeType;

    #[test]
    fn a_number_is_the_decimal_the_cell_holds_to_15_digits() {
        for (f, text) in [
            (0.1, "0.1"),
            (1234.5, "1234.5"),
            (12.0, "12"),
            (-12.0, "-12"),
            (0.1 + 0.2, "0.3"),
            (1e-6, "0.000001"),
            (123456789012345.0, "123456789012345"),
            (1e20, "100000000000000000000"),
            (-0.0, "0"),
            (2.675, "2.675"),
            (1.0 / 3.0, "0.333333333333333"),
            (99999.99, "99999.99"),
            (123456789012345680.0, "123456789012346000"),
            (-1234.5678901234567, "-1234.56789012346"),
            (0.1 * 3.0, "0.3"),
            (1e300, format!("1{}", "0".repeat(300)).leak()),
        ] {
            assert_eq!(number_text(f), text, "{f:?}");
        }
    }

    #[test]
    fn columns_are_lettered_as_in_a_spreadsheet() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(2), "C");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
        assert_eq!(column_letters(16383), "XFD");
    }

    #[test]
    fn a_date_cell_is_its_day_with_the_time_where_it_has_one() {
        let cell = |v| date_cell(&ExcelDateTime::new(v, ExcelDateTimeType::DateTime, false));
        assert_eq!(cell(46346.0), DateCell::Date("2026-11-20".into()));
        assert_eq!(cell(46346.5), DateCell::Date("2026-11-20T12:00:00".into()));
        assert_eq!(cell(0.75), DateCell::Text("18:00:00".into()));
        let d1904 = date_cell(&ExcelDateTime::new(
            46346.0 - 1462.0,
            ExcelDateTimeType::DateTime,
            true,
        ));
        assert_eq!(d1904, DateCell::Date("2026-11-20".into()));
    }
}
