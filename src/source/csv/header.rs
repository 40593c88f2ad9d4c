//! The header row, and which column each of the mapping's slots reads.

use super::end_of_input::{
    header_too_long_problem, is_header_too_long, unclosed_quote, unclosed_quote_problem,
    MAX_HEADER_BYTES,
};
use super::problems::{csv_problem, nul_problem, utf8_problem};
use super::{is_blank, record_line, Inner};
use crate::problem::MAX_MESSAGE_CHARS;
use crate::problem::{group_digits, quote, Code, Problem, Stage};
use crate::source::Slots;
use encoding_rs::Encoding;
use std::io::Read;

/// Reads the header row, the first row that is not blank: its column names, trimmed.
/// A header longer than [`MAX_HEADER_BYTES`] is refused before it is read whole.
pub(super) fn read<R: Read>(
    rdr: &mut csv::Reader<Inner<R>>,
    skipped: u64,
    encoding: &'static Encoding,
) -> Result<Vec<String>, Problem> {
    // its own buffer: as long as the header, not needed for the rows
    let mut record = csv::ByteRecord::new();
    let mut columns: Vec<String> = Vec::new();
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
        let line = record_line(rdr, &record, skipped);
        if unclosed_quote(rdr) {
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
                        encoding,
                    ))
                }
            }
        }
        break;
    }
    rdr.get_mut().cap = None;
    Ok(columns)
}

/// The column each slot reads, per slot space; `usize::MAX` for none.
pub(crate) struct SlotColumns {
    pub(crate) header: Vec<usize>,
    pub(crate) lines: Vec<usize>,
    pub(crate) key: Vec<usize>,
}

/// Resolves every slot to a column of `columns` (by name, or by number without a
/// header row). A column the file lacks, or one the header names twice, is a problem
/// of the whole file. Workbooks resolve their columns the same way.
pub(crate) fn resolve(
    columns: &[String],
    slots: &Slots,
    header: bool,
    skipped: u64,
) -> Result<SlotColumns, Problem> {
    let mut missing = Vec::new();
    let mut twice = None;
    let mut resolve = |names: &[String]| -> Vec<usize> {
        names
            .iter()
            .map(|n| match resolve_column(columns, n, header) {
                Some(i) => {
                    if twice.is_none() && header {
                        twice = second_match(columns, n, i).map(|j| (n.clone(), i, j));
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
    let resolved = SlotColumns {
        header: resolve(&slots.header),
        lines: resolve(&slots.lines),
        key: resolve(&slots.key),
    };
    if !missing.is_empty() {
        let list = missing
            .iter()
            .map(|m| format!("{m:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let msg = if header {
            let hints: Vec<String> = missing
                .iter()
                .filter_map(|m| {
                    nearest_column(columns, m).map(|c| match missing.len() {
                        1 => quote(c),
                        _ => format!("{} for {}", quote(c), quote(m)),
                    })
                })
                .collect();
            let hint = if hints.is_empty() {
                String::new()
            } else {
                format!(" (did you mean {}?)", hints.join(", "))
            };
            format!(
                "The header row has no column {list}{hint}; its columns are {}",
                list_columns(columns)
            )
        } else {
            format!("Column {list} is not a column number (the mapping says header = false, so `from` must be 1, 2, 3...)")
        };
        let line = if header { Some(1 + skipped) } else { None };
        return Err(Problem::file(Code::MissingColumn, line, msg)
            .with_value(missing.join(", "))
            .placed_in_text());
    }
    if let Some((name, i, j)) = twice {
        return Err(ambiguous_column(columns, &name, i, j, 1 + skipped));
    }
    Ok(resolved)
}

/// The column `name` reads: by name (exactly, else ignoring case and blanks), or by
/// number (`from = 3`); without a header row, by number only.
pub(crate) fn resolve_column(columns: &[String], name: &str, header: bool) -> Option<usize> {
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
/// The column most like `name` (a typing error: `Amout` for `Amount`), if one is close:
/// at most two edits apart, ignoring case and blanks, and closer than any other.
fn nearest_column<'c>(columns: &'c [String], name: &str) -> Option<&'c str> {
    let norm = |s: &str| -> Vec<char> {
        s.chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect()
    };
    let want = norm(name);
    let limit = if want.len() <= 4 { 1 } else { 2 };
    let mut best: Option<(usize, &str)> = None;
    let mut tie = false;
    for c in columns.iter().take(10_000) {
        let d = edit_distance(&want, &norm(c), limit);
        if d > limit {
            continue;
        }
        match best {
            Some((b, _)) if d > b => {}
            Some((b, _)) if d == b => tie = true,
            _ => {
                best = Some((d, c));
                tie = false;
            }
        }
    }
    best.filter(|_| !tie).map(|(_, c)| c)
}

/// Levenshtein distance of `a` and `b`, or `limit + 1` once it is sure to exceed
/// `limit`.
fn edit_distance(a: &[char], b: &[char], limit: usize) -> usize {
    if a.len().abs_diff(b.len()) > limit {
        return limit + 1;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        let mut row_min = cur[0];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            row_min = row_min.min(cur[j + 1]);
        }
        if row_min > limit {
            return limit + 1;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

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

#[cfg(test)]
mod nearest_tests {
    use super::*;

    #[test]
    fn a_typing_error_finds_its_column_and_nothing_else_does() {
        let cols: Vec<String> = ["InvoiceNo", "Amount", "Amount2", "Terms", "Qty"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(nearest_column(&cols, "Amout"), Some("Amount"));
        assert_eq!(nearest_column(&cols, "invoice no"), Some("InvoiceNo"));
        assert_eq!(nearest_column(&cols, "Trems"), Some("Terms"));
        // two equally close: no guess
        assert_eq!(nearest_column(&cols, "Amount3"), None);
        assert_eq!(nearest_column(&cols, "Customer"), None);
        assert_eq!(nearest_column(&cols, "Qt"), Some("Qty"));
        assert_eq!(nearest_column(&cols, "Q"), None);
    }
}
