//! Typed values and the parsers that make them from source text: exact decimals with
//! any separators, dates in a precompiled chrono format, booleans.

use super::payload::Node;
use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::str::FromStr;

/// A field's value after its type step.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Str(String),
    Int(i64),
    Dec(Decimal),
    Date(NaiveDate),
    /// A date and time, with its offset where the source had one.
    DateTime(NaiveDateTime, Option<chrono::FixedOffset>),
    Bool(bool),
}

impl Value {
    /// The year of a date or a date and time.
    pub fn year(&self) -> Option<i32> {
        use chrono::Datelike as _;
        match self {
            Value::Date(d) => Some(d.year()),
            Value::DateTime(d, _) => Some(d.year()),
            _ => None,
        }
    }

    /// The value as text: what `pattern`, `max_length`, `lookup` and `allowed` see.
    pub fn to_text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Dec(d) => d.to_string(),
            Value::Date(d) => d.format("%Y-%m-%d").to_string(),
            Value::DateTime(dt, off) => match off {
                Some(o) => match dt.and_local_timezone(*o).single() {
                    Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                    None => dt.format("%Y-%m-%dT%H:%M:%S").to_string(),
                },
                None => dt.format("%Y-%m-%dT%H:%M:%S%.f").to_string(),
            },
            Value::Bool(b) => b.to_string(),
        }
    }

    /// The value as text, borrowed where it is a string already.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Value::Str(s) => Cow::Borrowed(s),
            other => Cow::Owned(other.to_text()),
        }
    }

    /// Whether there is no value (an empty field without a default).
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The payload node; decimals are strings unless `json_number`.
    pub fn to_node(&self, json_number: bool) -> Node {
        match self {
            Value::Null => Node::Null,
            Value::Int(i) => Node::Num(i.to_string()),
            Value::Dec(d) if json_number => Node::Num(d.to_string()),
            // a lookup's ERP id (`"42"`) written as the number an API expects
            Value::Str(s) if json_number && is_json_number(s) => Node::Num(s.clone()),
            Value::Str(s) => Node::Str(s.clone()),
            Value::Bool(b) => Node::Bool(*b),
            other => Node::Str(other.to_text()),
        }
    }

    /// The payload node, taking the value (no copy of a string).
    pub fn into_node(self, json_number: bool) -> Node {
        match self {
            Value::Str(s) if !(json_number && is_json_number(&s)) => Node::Str(s),
            other => other.to_node(json_number),
        }
    }

    /// The value as a decimal, for sums and numeric comparisons.
    pub fn as_decimal(&self) -> Option<Decimal> {
        match self {
            Value::Dec(d) => Some(*d),
            Value::Int(i) => Some(Decimal::from(*i)),
            _ => None,
        }
    }

    /// Orders two values of the same kind (`None` when they cannot be compared).
    pub fn compare(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Date(a), Value::Date(b)) => Some(a.cmp(b)),
            (Value::DateTime(a, _), Value::DateTime(b, _)) => Some(a.cmp(b)),
            (Value::Date(a), Value::DateTime(b, _)) => Some(a.and_hms_opt(0, 0, 0)?.cmp(b)),
            (Value::DateTime(a, _), Value::Date(b)) => Some(a.cmp(&b.and_hms_opt(0, 0, 0)?)),
            _ => Some(self.as_decimal()?.cmp(&other.as_decimal()?)),
        }
    }
}

/// Whether a text is a number as JSON writes it (`-12`, `0.5`, `1e3`).
pub fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'-') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_len = i - int_start;
    if int_len == 0 || (int_len > 1 && b[int_start] == b'0') {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let f = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == f {
            return false;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let e = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == e {
            return false;
        }
    }
    i == b.len()
}

/// Parses a number written with `decimal` as decimal separator and optional
/// `thousands` grouping, exactly. Accepts a leading `+`/`-`, a trailing `-` (SAP) and
/// accounting parentheses `(12.50)`. Exponents (`1E+05`) are refused.
pub fn parse_decimal(text: &str, decimal: char, thousands: Option<char>) -> Option<Decimal> {
    let mut s = text.trim();
    let mut negative = false;
    if s.starts_with('(') && s.ends_with(')') && s.len() > 2 {
        negative = true;
        s = s[1..s.len() - 1].trim();
    }
    if let Some(rest) = s.strip_suffix('-') {
        negative = !negative;
        s = rest.trim_end();
    }
    if let Some(rest) = s.strip_prefix('-') {
        negative = !negative;
        s = rest.trim_start();
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest.trim_start();
    }
    let mut buf = [0u8; 48];
    let mut n = 0;
    if negative {
        buf[0] = b'-';
        n = 1;
    }
    let mut seen_sep = false;
    let mut digits = 0;
    // Thousands groups must look like groups, so that a decimal comma read with
    // thousands_separator = "," ("1,5") is an error, not 15: the last group has three
    // digits, the ones between two or three (Indian 1,23,456), the first one to three.
    let mut group = 0;
    let mut grouped = false;
    let space_group = matches!(thousands, Some(' ' | '\u{a0}' | '\u{202f}'));
    for ch in s.chars() {
        if ch.is_ascii_digit() {
            if n >= buf.len() {
                return None;
            }
            buf[n] = ch as u8;
            n += 1;
            digits += 1;
            group += 1;
        } else if ch == decimal && !seen_sep {
            if grouped && group != 3 {
                return None;
            }
            seen_sep = true;
            if n >= buf.len() {
                return None;
            }
            buf[n] = b'.';
            n += 1;
        } else if !seen_sep
            && digits > 0
            && (Some(ch) == thousands || (space_group && matches!(ch, ' ' | '\u{a0}' | '\u{202f}')))
        {
            let ok = if grouped {
                (2..=3).contains(&group)
            } else {
                (1..=3).contains(&group)
            };
            if !ok {
                return None;
            }
            grouped = true;
            group = 0;
        } else {
            return None;
        }
    }
    if digits == 0 || (grouped && !seen_sep && group != 3) {
        return None;
    }
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    Decimal::from_str_exact(text).ok()
}

/// Parses a whole number (a decimal with no fraction other than zeros).
pub fn parse_integer(text: &str, decimal: char, thousands: Option<char>) -> Option<i64> {
    let d = parse_decimal(text, decimal, thousands)?;
    if !d.fract().is_zero() {
        return None;
    }
    i64::try_from(d.trunc()).ok()
}

/// Yes/no in the forms exports use.
pub fn parse_boolean(text: &str) -> Option<bool> {
    match text.trim().to_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" | "on" | "x" | "да" | "ja" | "oui" | "si" => Some(true),
        "false" | "f" | "no" | "n" | "0" | "off" | "нет" | "nein" | "non" => Some(false),
        _ => None,
    }
}

/// A chrono format, compiled once, with its human form for messages (`DD.MM.YYYY`).
#[derive(Debug, Clone)]
pub struct DateFormat {
    items: Vec<Item<'static>>,
    pub text: String,
    pub human: String,
    /// For an all-numeric date format (`%d.%m.%Y`, `%Y-%m-%d`, `%m/%d/%Y`...): where
    /// day, month and year stand when every part has its full width, read without
    /// chrono. Anything else (a one-digit day, spaces, a bad date) goes to chrono.
    fixed: Option<FixedDate>,
}

/// Byte layout of a date whose parts have fixed widths.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FixedDate {
    len: usize,
    day: usize,
    month: usize,
    year: usize,
    /// Literal bytes and their positions.
    literals: Vec<(usize, u8)>,
}

impl FixedDate {
    /// The layout of `fmt` when it is made of `%d`, `%m`, `%Y` (each once) and ASCII
    /// punctuation.
    fn of(fmt: &str) -> Option<FixedDate> {
        let b = fmt.as_bytes();
        let (mut i, mut pos) = (0, 0);
        let (mut day, mut month, mut year) = (None, None, None);
        let mut literals = Vec::new();
        while i < b.len() {
            if b[i] == b'%' {
                let slot = match b.get(i + 1)? {
                    b'd' => &mut day,
                    b'm' => &mut month,
                    b'Y' => &mut year,
                    _ => return None,
                };
                if slot.is_some() {
                    return None;
                }
                *slot = Some(pos);
                pos += if b[i + 1] == b'Y' { 4 } else { 2 };
                i += 2;
            } else if b[i].is_ascii_punctuation() {
                literals.push((pos, b[i]));
                pos += 1;
                i += 1;
            } else {
                return None;
            }
        }
        Some(FixedDate {
            len: pos,
            day: day?,
            month: month?,
            year: year?,
            literals,
        })
    }

    fn parse(&self, s: &str) -> Option<NaiveDate> {
        let b = s.as_bytes();
        if b.len() != self.len || self.literals.iter().any(|&(p, c)| b[p] != c) {
            return None;
        }
        let num = |at: usize, n: usize| -> Option<u32> {
            b[at..at + n].iter().try_fold(0u32, |acc, &d| {
                d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
            })
        };
        NaiveDate::from_ymd_opt(
            num(self.year, 4)? as i32,
            num(self.month, 2)?,
            num(self.day, 2)?,
        )
    }
}

impl DateFormat {
    /// Compiles a format; `datetime` says whether it must read a time too.
    pub fn compile(fmt: &str, datetime: bool) -> Result<DateFormat, String> {
        let items = StrftimeItems::new(fmt).parse_to_owned().map_err(|_| {
            format!(
                "{fmt:?} is not a valid date format (chrono strftime syntax, e.g. \"%d.%m.%Y\")"
            )
        })?;
        let f = DateFormat {
            items,
            text: fmt.to_string(),
            human: human_format(fmt),
            fixed: if datetime { None } else { FixedDate::of(fmt) },
        };
        // The format must be able to read back what it writes, and hold a whole date.
        let sample = NaiveDate::from_ymd_opt(2026, 11, 25)
            .and_then(|d| d.and_hms_opt(13, 45, 56))
            .and_then(|d| {
                d.and_local_timezone(chrono::FixedOffset::east_opt(3600)?)
                    .single()
            })
            .expect("a valid sample date");
        let mut written = String::new();
        use std::fmt::Write as _;
        if write!(written, "{}", sample.format_with_items(f.items.iter())).is_err() {
            return Err(format!("{fmt:?} cannot be used as a date format"));
        }
        let ok = if datetime {
            f.parse_datetime(&written).is_some()
        } else {
            f.parse_date(&written).is_some()
        };
        if !ok {
            return Err(format!(
                "{fmt:?} cannot read a full {}: it needs day, month and year (e.g. \"%d.%m.%Y\"){}",
                if datetime { "date and time" } else { "date" },
                if datetime {
                    " and hours and minutes"
                } else {
                    ""
                }
            ));
        }
        Ok(f)
    }

    /// `s` as a date in this format.
    pub fn parse_date(&self, s: &str) -> Option<NaiveDate> {
        if let Some(d) = self.fixed.as_ref().and_then(|f| f.parse(s)) {
            return Some(d);
        }
        self.parse_date_chrono(s)
    }

    fn parse_date_chrono(&self, s: &str) -> Option<NaiveDate> {
        let mut p = Parsed::new();
        chrono::format::parse(&mut p, s, self.items.iter()).ok()?;
        self.four_digit_year(&p)?;
        p.to_naive_date().ok()
    }

    /// `None` when the format has a four-digit year (`%Y`) and the text gave fewer
    /// digits: chrono's `%Y` reads `26` as the year 26 and `0` as the year 0, so that
    /// `31.12.26` would be 0026-12-31, never what an export meant.
    fn four_digit_year(&self, p: &Parsed) -> Option<()> {
        let four = self.text.contains("%Y");
        match p.year {
            Some(y) if four && !(1000..=9999).contains(&y) => None,
            _ => Some(()),
        }
    }

    /// `s` as a date and time in this format, with its offset from UTC when it has one.
    pub fn parse_datetime(&self, s: &str) -> Option<(NaiveDateTime, Option<chrono::FixedOffset>)> {
        let mut p = Parsed::new();
        chrono::format::parse(&mut p, s, self.items.iter()).ok()?;
        self.four_digit_year(&p)?;
        let date = p.to_naive_date().ok()?;
        let time = p.to_naive_time().ok()?;
        let off = p.offset.and_then(chrono::FixedOffset::east_opt);
        Some((date.and_time(time), off))
    }
}

/// `%d.%m.%Y` -> `DD.MM.YYYY`, for messages a finance user reads.
pub fn human_format(fmt: &str) -> String {
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(&n) = chars.peek() {
            spec.push(n);
            chars.next();
            if n.is_ascii_alphabetic() || n == '%' {
                break;
            }
        }
        out.push_str(match spec.trim_start_matches(['-', '_', '0']) {
            "d" => "DD",
            "e" => "D",
            "m" => "MM",
            "Y" => "YYYY",
            "y" => "YY",
            "H" => "hh",
            "I" => "hh",
            "M" => "mm",
            "S" => "ss",
            "p" => "AM/PM",
            "b" | "h" => "Mon",
            "B" => "Month",
            "j" => "DDD",
            ".f" | ".3f" | ".6f" | "f" => ".fff",
            "z" | ":z" => "+hh:mm",
            "F" => "YYYY-MM-DD",
            "T" => "hh:mm:ss",
            "%" => "%",
            _ => "?",
        });
    }
    out
}

/// Parses a decimal given in the mapping (`min = "0.01"`, `tolerance = 0.01`).
pub fn decimal_from_config(text: &str) -> Option<Decimal> {
    Decimal::from_str(text.trim()).ok()
}

/// A workbook's date cell as its reader writes it: `2026-11-20` or
/// `2026-11-20T13:45:00` (seconds with a fraction where the cell has one).
pub fn parse_iso_cell(text: &str) -> Option<NaiveDateTime> {
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0);
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn decimals_with_separators() {
        assert_eq!(parse_decimal("1234.5", '.', None), Some(d("1234.5")));
        assert_eq!(
            parse_decimal("1 234,50", ',', Some(' ')),
            Some(d("1234.50"))
        );
        assert_eq!(
            parse_decimal("1\u{a0}234,50", ',', Some(' ')),
            Some(d("1234.50"))
        );
        assert_eq!(
            parse_decimal("1.234.567,89", ',', Some('.')),
            Some(d("1234567.89"))
        );
        assert_eq!(parse_decimal("1,234.5", '.', Some(',')), Some(d("1234.5")));
        assert_eq!(parse_decimal("-0,5", ',', None), Some(d("-0.5")));
        assert_eq!(parse_decimal("(12.50)", '.', None), Some(d("-12.50")));
        assert_eq!(parse_decimal("12.50-", '.', None), Some(d("-12.50")));
        assert_eq!(parse_decimal("+3", '.', None), Some(d("3")));
    }

    #[test]
    fn decimals_that_are_not_numbers() {
        for bad in [
            "", "-", "1,5", "1.2.3", "1E+05", "abc", "12.5.", ",", "1 234",
        ] {
            assert_eq!(parse_decimal(bad, '.', None), None, "{bad}");
        }
        // thousands separators only before the decimal separator
        assert_eq!(parse_decimal("1,234.5,6", '.', Some(',')), None);
        // groups must look like thousands: a decimal comma is not one
        for bad in [
            "1,5",
            "12,34",
            "1,2345",
            "1234,567",
            "1,,234",
            "1,234,56.7",
            "1,",
        ] {
            assert_eq!(parse_decimal(bad, '.', Some(',')), None, "{bad}");
        }
        assert_eq!(parse_decimal("1 5", ',', Some(' ')), None);
        assert_eq!(
            parse_decimal("1,23,456.5", '.', Some(',')),
            Some(d("123456.5"))
        );
        assert_eq!(parse_decimal("-1,234", '.', Some(',')), Some(d("-1234")));
    }

    #[test]
    fn decimals_are_exact() {
        let a = parse_decimal("0.1", '.', None).unwrap();
        let b = parse_decimal("0.2", '.', None).unwrap();
        assert_eq!((a + b).to_string(), "0.3");
    }

    #[test]
    fn integers() {
        assert_eq!(parse_integer("1 000", '.', Some(' ')), Some(1000));
        assert_eq!(parse_integer("7,00", ',', None), Some(7));
        assert_eq!(parse_integer("7.5", '.', None), None);
    }

    #[test]
    fn json_numbers() {
        for ok in ["0", "42", "-3", "1.50", "1e3", "2E-2"] {
            assert!(is_json_number(ok), "{ok}");
        }
        for bad in ["", "-", "01", "1.", ".5", "1e", "0x1", "12a", " 1"] {
            assert!(!is_json_number(bad), "{bad}");
        }
        assert_eq!(
            Value::Str("42".into()).to_node(true),
            Node::Num("42".into())
        );
        assert_eq!(
            Value::Str("C-1".into()).to_node(true),
            Node::Str("C-1".into())
        );
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_boolean("Yes"), Some(true));
        assert_eq!(parse_boolean("0"), Some(false));
        assert_eq!(parse_boolean("maybe"), None);
    }

    #[test]
    fn dates_in_a_compiled_format() {
        let f = DateFormat::compile("%d.%m.%Y", false).unwrap();
        assert_eq!(
            f.parse_date("05.01.2026"),
            NaiveDate::from_ymd_opt(2026, 1, 5)
        );
        assert_eq!(f.parse_date("31.02.2026"), None);
        assert_eq!(f.parse_date("2026-01-05"), None);
        assert_eq!(f.human, "DD.MM.YYYY");
    }

    #[test]
    fn the_fixed_width_reader_agrees_with_chrono() {
        for fmt in ["%d.%m.%Y", "%Y-%m-%d", "%m/%d/%Y", "%Y%m%d", "%d-%m-%Y"] {
            let f = DateFormat::compile(fmt, false).unwrap();
            assert!(f.fixed.is_some(), "{fmt}");
            for s in [
                "05.01.2026",
                "31.12.1999",
                "29.02.2024",
                "29.02.2026",
                "5.01.2026",
                "05.1.2026",
                " 05.01.2026",
                "05.01.26",
                "2026-01-05",
                "2026-1-5",
                "20260105",
                "01/05/2026",
                "00.01.2026",
                "32.01.2026",
                "05.13.2026",
                "aa.bb.cccc",
                "05-01-2026",
                "05.01.20266",
                "",
            ] {
                assert_eq!(f.parse_date(s), f.parse_date_chrono(s), "{fmt} {s:?}");
            }
        }
        for fmt in ["%e.%m.%Y", "%d %b %Y", "%d.%m.%y", "%d.%m.%Y %H"] {
            assert!(FixedDate::of(fmt).is_none(), "{fmt}");
        }
    }

    #[test]
    fn formats_chrono_rejects_or_that_miss_a_part() {
        assert!(DateFormat::compile("%d.%m.%Q", false).is_err());
        assert!(DateFormat::compile("%H:%M", false).is_err());
        assert!(DateFormat::compile("%d.%m.%Y", true).is_err());
        assert!(DateFormat::compile("%d.%m.%Y %H:%M", true).is_ok());
    }

    #[test]
    fn datetime_with_offset_keeps_it() {
        let f = DateFormat::compile("%Y-%m-%dT%H:%M:%S%z", true).unwrap();
        let (dt, off) = f.parse_datetime("2026-11-25T10:00:00+0300").unwrap();
        let v = Value::DateTime(dt, off);
        assert_eq!(v.to_text(), "2026-11-25T10:00:00+03:00");
    }
}
