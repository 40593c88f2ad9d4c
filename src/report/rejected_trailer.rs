//! The trailer row of a rejected rows file (`[source.trailer]`): the original trailer,
//! its count and sum rewritten to state what the rejected file holds, so that the file
//! passes the trailer check when it comes back.
//!
//! The count is of the data rows as the rows layer counts them (the column-name row and
//! the trailer are not counted); the sum adds the summed column of those rows. A value
//! keeps its place and its look: within a fixed-width column, right-aligned or padded
//! as the original was (zeros, spaces), never changing the line's length; in a CSV
//! field, quoted as the original was; a sum in the mapping's decimal separator, with as
//! many decimals as the original (more only where the sum needs them to be exact), and
//! grouped where the original was. A value wider than its column cannot be written:
//! no file then ([`io::ErrorKind::InvalidData`], said in a warning).

use crate::source::rows::cell_amount;
use crate::source::{RowRules, TrailerRule};
use rust_decimal::Decimal;
use std::io;

pub(super) fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// What the rejected file holds, as the trailer check counts it.
pub(super) struct Totals<'a> {
    pub rule: &'a TrailerRule,
    rows: &'a RowRules,
    count: u64,
    sum: Decimal,
}

impl<'a> Totals<'a> {
    pub fn new(rule: &'a TrailerRule, rows: &'a RowRules) -> Totals<'a> {
        Totals {
            rule,
            rows,
            count: 0,
            sum: Decimal::ZERO,
        }
    }

    /// One data row written, with its value of the summed column where it has one
    /// (`number`: a workbook's number cell, read whatever the mapping's separators, as
    /// the check reads it).
    pub fn add(&mut self, of: Option<&str>, number: bool, line: u64) -> io::Result<()> {
        self.count += 1;
        let Some(v) = of.map(crate::source::trim).filter(|v| !v.is_empty()) else {
            return Ok(());
        };
        let n = cell_amount(v, number, self.rows)
            .ok_or_else(|| invalid(format!("line {line}: {v:?} is not a number to add up")))?;
        self.sum = self
            .sum
            .checked_add(n)
            .ok_or_else(|| invalid("the sum of the rejected rows is too large".into()))?;
        Ok(())
    }

    /// The count, for a workbook's number cell.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sum as a workbook's number cell holds it: the double that reads back (as the
    /// sheet reader gives a number, [`number_text`], whatever the mapping's separators)
    /// as exactly the sum; a sum no double holds so (more than 15 significant digits) is
    /// refused.
    ///
    /// [`number_text`]: crate::source::sheet::cell::number_text
    pub fn sum_number(&self) -> io::Result<f64> {
        let f: f64 = self
            .sum
            .to_string()
            .parse()
            .map_err(|_| self.not_a_double())?;
        let text = crate::source::sheet::cell::number_text(f);
        match cell_amount(&text, true, self.rows) {
            Some(back) if f.is_finite() && back == self.sum => Ok(f),
            _ => Err(self.not_a_double()),
        }
    }

    fn not_a_double(&self) -> io::Error {
        let name = self.rule.sum.as_ref().map_or("", |s| s.0.as_str());
        invalid(format!(
            "the trailer's {name} restated for the failed rows ({}) is not exactly a number a cell holds (15 significant digits); the report lists the failed rows",
            self.sum
        ))
    }

    /// The count as the trailer writes it, in the place of `original`.
    pub fn count_text(&self, original: &str, width: Option<usize>) -> io::Result<String> {
        let name = self.rule.count.as_deref().unwrap_or_default();
        repad(original, &self.count.to_string(), width).ok_or_else(|| too_wide(name, width))
    }

    /// The sum as the trailer writes it, in the place of `original`.
    pub fn sum_text(&self, original: &str, width: Option<usize>) -> io::Result<String> {
        let name = self.rule.sum.as_ref().map_or("", |s| s.0.as_str());
        let value = format_amount(
            self.sum,
            crate::source::trim(original),
            self.rows.decimal,
            self.rows.thousands,
        );
        repad(original, &value, width).ok_or_else(|| too_wide(name, width))
    }
}

fn too_wide(name: &str, width: Option<usize>) -> io::Error {
    invalid(format!(
        "the trailer's {name} restated for the failed rows does not fit its column (width {}); the report lists the failed rows",
        width.unwrap_or_default()
    ))
}

/// `value` in the place of `original`: zero-padded to the original's length where the
/// original was, and within `width` (fixed width) aligned as the original was (left
/// when it had spaces after it only, right otherwise). `None`: wider than `width`.
pub(super) fn repad(original: &str, value: &str, width: Option<usize>) -> Option<String> {
    let core = original.trim();
    let lead = original.len() - original.trim_start().len();
    let trail = original.len() - original.trim_end().len();
    let mut v = value.to_string();
    let unsigned = core.strip_prefix('-').unwrap_or(core);
    let zero_padded = unsigned.len() > 1
        && unsigned.starts_with('0')
        && unsigned[1..].starts_with(|c: char| c.is_ascii_digit());
    if zero_padded {
        let (sign, digits) = match v.strip_prefix('-') {
            Some(d) => ("-", d.to_string()),
            None => ("", v.clone()),
        };
        let want = core.chars().count();
        let have = v.chars().count();
        if have < want {
            v = format!("{sign}{}{digits}", "0".repeat(want - have));
        }
    }
    let n = v.chars().count();
    let room = width.unwrap_or_else(|| original.chars().count());
    if n > room {
        // a CSV field has no width: it grows
        return width.is_none().then_some(v);
    }
    if lead == 0 && trail == 0 && width.is_none() {
        return Some(v);
    }
    let pad = " ".repeat(room - n);
    Some(if lead == 0 && trail > 0 {
        format!("{v}{pad}")
    } else {
        format!("{pad}{v}")
    })
}

/// A sum written as `original` writes amounts: its decimal separator, its number of
/// decimals (more where the sum needs them), its grouping, a trailing minus.
pub(super) fn format_amount(
    sum: Decimal,
    original: &str,
    decimal: char,
    thousands: Option<char>,
) -> String {
    let decimals = original
        .split_once(decimal)
        .map_or(0, |(_, f)| f.chars().filter(char::is_ascii_digit).count());
    let scale = (decimals as u32).max(sum.normalize().scale());
    let abs = sum.abs();
    let text = format!("{abs:.prec$}", prec = scale as usize);
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i.to_string(), Some(f.to_string())),
        None => (text, None),
    };
    let int = match thousands {
        Some(t) if original.contains(t) => group(&int, t),
        _ => int,
    };
    let mut out = int;
    if let Some(f) = frac {
        out.push(decimal);
        out.push_str(&f);
    }
    if sum.is_sign_negative() && !sum.is_zero() {
        if original.trim_end().ends_with('-') {
            out.push('-');
        } else {
            out.insert(0, '-');
        }
    }
    out
}

fn group(digits: &str, sep: char) -> String {
    let mut out = String::new();
    let n = digits.len();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (n - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

/// The byte ranges of a CSV record's fields (without its line end): a delimiter inside
/// quotes splits nothing.
pub(super) fn field_spans(body: &[u8], delimiter: u8, quote: u8) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let (mut start, mut quoted, mut at_start) = (0, false, true);
    for (i, &b) in body.iter().enumerate() {
        if quoted {
            if b == quote {
                quoted = false;
            }
            continue;
        }
        if b == quote && at_start {
            quoted = true;
            at_start = false;
        } else if b == delimiter {
            spans.push((start, i));
            start = i + 1;
            at_start = true;
        } else {
            at_start = false;
        }
    }
    spans.push((start, body.len()));
    spans
}

/// A CSV field with its value replaced: quoted (and padded) as the original was.
pub(super) fn csv_field(
    original: &str,
    quote: char,
    value: impl Fn(&str) -> io::Result<String>,
) -> io::Result<String> {
    let t = original.trim();
    if t.len() >= 2 && t.starts_with(quote) && t.ends_with(quote) {
        let lead = &original[..original.len() - original.trim_start().len()];
        let trail = &original[original.trim_end().len()..];
        let inner = &t[quote.len_utf8()..t.len() - quote.len_utf8()];
        Ok(format!("{lead}{quote}{}{quote}{trail}", value(inner)?))
    } else {
        value(original)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::rows::parse_amount;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn values_keep_their_padding_and_alignment() {
        assert_eq!(repad("     12", "3", Some(7)).unwrap(), "      3");
        assert_eq!(repad("12     ", "3", Some(7)).unwrap(), "3      ");
        assert_eq!(repad("0000012", "3", Some(7)).unwrap(), "0000003");
        assert_eq!(repad("  00012", "3", Some(7)).unwrap(), "  00003");
        assert_eq!(repad("1234567", "3", Some(7)).unwrap(), "      3");
        assert_eq!(repad("9", "10", Some(1)), None);
        assert_eq!(repad("12", "3", None).unwrap(), "3");
        assert_eq!(repad("9", "10", None).unwrap(), "10");
        assert_eq!(repad(" 12", "3", None).unwrap(), "  3");
        assert_eq!(repad("0.50", "1.25", None).unwrap(), "1.25");
        assert_eq!(repad("-0012.50", "-3.00", None).unwrap(), "-0003.00");
    }

    #[test]
    fn sums_are_written_as_the_original_writes_amounts() {
        assert_eq!(format_amount(d("3"), "125,50", ',', None), "3,00");
        assert_eq!(format_amount(d("3.25"), "125,5", ',', None), "3,25");
        assert_eq!(
            format_amount(d("1234.5"), "1.250,00", ',', Some('.')),
            "1.234,50"
        );
        assert_eq!(
            format_amount(d("1234.5"), "1250,00", ',', Some('.')),
            "1234,50"
        );
        assert_eq!(format_amount(d("-2.5"), "10.00-", '.', None), "2.50-");
        assert_eq!(format_amount(d("-2.5"), "10.00", '.', None), "-2.50");
        assert_eq!(format_amount(d("7"), "10", '.', None), "7");
        for (sum, original) in [("1234.5", "1.250,00"), ("-2.5", "10,00-"), ("0", "0,00")] {
            let text = format_amount(d(sum), original, ',', Some('.'));
            assert_eq!(parse_amount(&text, ',', Some('.')), Some(d(sum)), "{text}");
        }
    }

    #[test]
    fn a_sum_in_a_number_cell_is_the_double_that_reads_back_as_it() {
        let rule = TrailerRule {
            count: None,
            sum: Some(("Amount".into(), "Price".into())),
        };
        let rows = RowRules::default();
        let sum_of = |values: &[&str]| {
            let mut t = Totals::new(&rule, &rows);
            for v in values {
                t.add(Some(v), true, 1).unwrap();
            }
            t.sum_number()
        };
        assert_eq!(sum_of(&["1234.5", "0.3", "7"]).unwrap(), 1241.8);
        // number cells are read whatever the separators of the mapping (for text)
        let german = RowRules {
            decimal: ',',
            thousands: Some('.'),
            ..RowRules::default()
        };
        let mut t = Totals::new(&rule, &german);
        t.add(Some("1234.5"), true, 1).unwrap();
        t.add(Some("0.1"), true, 2).unwrap();
        t.add(Some("1.000,25"), false, 3).unwrap();
        assert_eq!(t.sum_number().unwrap(), 2234.85);
        assert_eq!(sum_of(&["0.1", "0.2"]).unwrap(), 0.3);
        assert_eq!(sum_of(&["-2.5", "1"]).unwrap(), -1.5);
        assert_eq!(sum_of(&[]).unwrap(), 0.0);
        // 18 significant digits: no cell holds that sum, so no file
        let e = sum_of(&["100000000000000", "0.001"]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("Amount"), "{e}");
    }

    #[test]
    fn csv_fields_are_split_outside_quotes_and_keep_their_quotes() {
        let body = b"T;\"a;b\";\"12\"; 3";
        let spans = field_spans(body, b';', b'"');
        let fields: Vec<&[u8]> = spans.iter().map(|&(s, e)| &body[s..e]).collect();
        assert_eq!(fields, [&b"T"[..], b"\"a;b\"", b"\"12\"", b" 3"]);
        let seven = |_: &str| Ok("7".to_string());
        assert_eq!(csv_field("\"12\"", '"', seven).unwrap(), "\"7\"");
        assert_eq!(csv_field("12", '"', seven).unwrap(), "7");
    }
}
