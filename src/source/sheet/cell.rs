//! One cell of a workbook as erpdrop reads it: the text a field sees, whatever the
//! cell's display format, and whether it is a date.

use calamine::{CellErrorType, DataRef, ExcelDateTime};

/// A cell's value, as text for the field pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Cell {
    #[default]
    Empty,
    /// Text, a number (the decimal it holds, see [`number_text`]) or a boolean.
    Text(String),
    /// A date or date and time cell, ISO 8601 (`2026-11-20`, `2026-11-20T13:45:00`).
    Date(String),
    /// An error cell: `#N/A`, `#REF!`, ...
    Error(String),
}

impl Cell {
    /// Whether the cell holds nothing but blanks.
    pub fn is_blank(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(s) => s.trim().is_empty(),
            Cell::Date(_) | Cell::Error(_) => false,
        }
    }

    /// The text a field reads (an error cell's is its code).
    pub fn text(&self) -> &str {
        match self {
            Cell::Empty => "",
            Cell::Text(s) | Cell::Date(s) | Cell::Error(s) => s,
        }
    }

    /// The cell from calamine's value.
    pub fn from_data(d: DataRef<'_>) -> Cell {
        match d {
            DataRef::Empty => Cell::Empty,
            DataRef::String(s) => Cell::Text(s),
            DataRef::SharedString(s) => Cell::Text(s.to_string()),
            DataRef::Int(i) => Cell::Text(i.to_string()),
            DataRef::Float(f) => Cell::Text(number_text(f)),
            DataRef::Bool(b) => Cell::Text(b.to_string()),
            DataRef::DateTime(dt) => date_cell(&dt),
            DataRef::DateTimeIso(s) => Cell::Date(s),
            DataRef::DurationIso(s) => Cell::Text(s),
            DataRef::Error(e) => Cell::Error(error_text(&e)),
        }
    }

    /// The cell from calamine's owned value (xls and ods sheets).
    pub fn from_owned(d: &calamine::Data) -> Cell {
        use calamine::Data;
        match d {
            Data::Empty => Cell::Empty,
            Data::String(s) => Cell::Text(s.clone()),
            Data::Int(i) => Cell::Text(i.to_string()),
            Data::Float(f) => Cell::Text(number_text(*f)),
            Data::Bool(b) => Cell::Text(b.to_string()),
            Data::DateTime(dt) => date_cell(dt),
            Data::DateTimeIso(s) => Cell::Date(s.clone()),
            Data::DurationIso(s) => Cell::Text(s.clone()),
            Data::Error(e) => Cell::Error(error_text(e)),
        }
    }
}

fn error_text(e: &CellErrorType) -> String {
    e.to_string()
}

/// A cell whose number format is a date's: its day, with the time where it has one. A
/// time of day alone (a serial under 1) is its text, `13:45:00`; a duration is the
/// number of days it holds.
fn date_cell(dt: &ExcelDateTime) -> Cell {
    if dt.is_duration() {
        return Cell::Text(number_text(dt.as_f64()));
    }
    let (y, mo, d, h, mi, s, ms) = dt.to_ymd_hms_milli();
    let time = match ms {
        0 => format!("{h:02}:{mi:02}:{s:02}"),
        _ => format!("{h:02}:{mi:02}:{s:02}.{ms:03}"),
    };
    if dt.as_f64() < 1.0 && dt.as_f64() >= 0.0 {
        return Cell::Text(time);
    }
    if (h, mi, s, ms) == (0, 0, 0, 0) {
        Cell::Date(format!("{y:04}-{mo:02}-{d:02}"))
    } else {
        Cell::Date(format!("{y:04}-{mo:02}-{d:02}T{time}"))
    }
}

/// The decimal a number cell holds, to the 15 significant digits a spreadsheet keeps:
/// `0.1` for the double nearest 0.1, `1234.5`, `12` (not `12.0`), `0.000001`, never an
/// exponent.
pub fn number_text(f: f64) -> String {
    if !f.is_finite() {
        return f.to_string();
    }
    if f == 0.0 {
        return "0".into();
    }
    let s = format!("{:.14e}", f);
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    // the value is 0.DIGITS times ten to the power of `point`
    let point = exp + 1;
    let mut out = String::with_capacity(digits.len() + 4);
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
    out
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
        assert_eq!(cell(46346.0), Cell::Date("2026-11-20".into()));
        assert_eq!(cell(46346.5), Cell::Date("2026-11-20T12:00:00".into()));
        assert_eq!(cell(0.75), Cell::Text("18:00:00".into()));
        let d1904 = date_cell(&ExcelDateTime::new(
            46346.0 - 1462.0,
            ExcelDateTimeType::DateTime,
            true,
        ));
        assert_eq!(d1904, Cell::Date("2026-11-20".into()));
    }
}
