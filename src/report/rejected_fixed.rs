//! The rejected lines of a fixed-width file: its title lines (`skip_lines`), then the
//! failed documents' lines as they are (encoding, byte-order mark, line ends), each
//! followed by two spaces and `erpdrop_error: ...` after the end of its layout.
//!
//! A fixed-width reader reads columns by position, so text after the last column of a
//! line's layout (its record type's columns and the shared ones) changes nothing it
//! reads. A failed line shorter than its layout cannot take the message without
//! padding, which would turn a line cut short into values: no file is written then.

use super::rejected::{open_text, Encoded, RejectedInput, Rows, ERROR_COLUMN};
use super::rejected_trailer::{invalid, Totals};
use crate::source::{FixedColumn, SourceOptions};
use std::io::{self, BufRead, Write};

/// What stands before a message: two spaces and the marker, found again (and replaced)
/// when a rejected file fails once more.
fn marker() -> String {
    format!("  {ERROR_COLUMN}: ")
}

fn end_of(cols: impl IntoIterator<Item = FixedColumn>) -> usize {
    cols.into_iter()
        .map(|c| c.start + c.width)
        .max()
        .unwrap_or(0)
}

/// The record type of `line`, trimmed, where the mapping has record types.
fn record_code(opts: &SourceOptions, line: &str) -> Option<String> {
    let types = opts.rows.record_type.as_ref()?;
    let at = opts.fixed.columns.get(&types.column)?;
    let code: String = line.chars().skip(at.start).take(at.width).collect();
    Some(crate::source::trim(&code).to_string())
}

/// A column of lines of record type `code`, as the fixed-width reader resolves it: the
/// type's own, else a shared one.
fn column(opts: &SourceOptions, code: Option<&str>, name: &str) -> Option<FixedColumn> {
    code.and_then(|c| opts.fixed.types.get(c)?.get(name).copied())
        .or_else(|| opts.fixed.columns.get(name).copied())
}

/// The value of a column in a line, `None` where the line is too short for it.
fn value_of(line: &str, at: FixedColumn) -> Option<String> {
    (line.chars().count() >= at.start + at.width)
        .then(|| line.chars().skip(at.start).take(at.width).collect())
}

/// The trailer line with the rejected rows' count and sum, each within its column.
fn trailer_line(opts: &SourceOptions, line: &str, totals: &Totals<'_>) -> io::Result<String> {
    let code = record_code(opts, line);
    let wanted = opts
        .rows
        .record_type
        .as_ref()
        .and_then(|t| t.trailer.as_deref());
    if wanted.is_some() && code.as_deref() != wanted {
        return Err(invalid("the file's last line is not its trailer".into()));
    }
    let mut chars: Vec<char> = line.chars().collect();
    let mut put = |name: &str, text: &dyn Fn(&str, Option<usize>) -> io::Result<String>| {
        let at = column(opts, code.as_deref(), name)
            .ok_or_else(|| invalid(format!("no column {name:?} for the trailer")))?;
        let original = value_of(line, at).ok_or_else(|| {
            invalid("the trailer line is too short for its control totals".into())
        })?;
        let new: Vec<char> = text(&original, Some(at.width))?.chars().collect();
        chars.splice(at.start..at.start + at.width, new);
        Ok::<(), io::Error>(())
    };
    if let Some(name) = &totals.rule.count {
        put(name, &|o, w| totals.count_text(o, w))?;
    }
    if let Some((name, _)) = &totals.rule.sum {
        put(name, &|o, w| totals.sum_text(o, w))?;
    }
    Ok(chars.into_iter().collect())
}

/// Where the layout of `line` ends, in characters: the shared columns' and those of its
/// record type.
fn layout_end(opts: &SourceOptions, line: &str) -> io::Result<usize> {
    let shared = end_of(opts.fixed.columns.values().copied());
    let Some(types) = &opts.rows.record_type else {
        return Ok(shared);
    };
    let unknown = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "a failed line's record type could not be told",
        )
    };
    let at = opts.fixed.columns.get(&types.column).ok_or_else(unknown)?;
    let code: String = line.chars().skip(at.start).take(at.width).collect();
    let code = crate::source::trim(&code);
    let own = opts
        .fixed
        .types
        .get(code)
        .map_or(0, |cols| end_of(cols.values().copied()));
    Ok(shared.max(own))
}

pub(super) fn copy_fixed(
    input: &RejectedInput<'_>,
    rows: &Rows,
    w: &mut dyn Write,
) -> io::Result<()> {
    let opts = &input.mapping.source;
    let mut text = open_text(input, opts.encoding)?;
    let mut out = Encoded::for_text(w, &text)?;
    let r = &mut text.reader;
    let mut line = 0u64;
    let mut raw = Vec::new();
    // the title lines above the records stay: the mapping skips them when the file comes
    // back, and they are no record (nor the trailer)
    for _ in 0..opts.csv.skip_lines {
        raw.clear();
        if r.read_until(b'\n', &mut raw)? == 0 {
            break;
        }
        line += 1;
        out.write_str(&String::from_utf8_lossy(&raw))?;
    }
    let mut default_end: Option<&'static str> = None;
    let mut totals = opts
        .rows
        .trailer
        .as_ref()
        .map(|t| Totals::new(t, &opts.rows));
    // the last line not copied, and its line end: at the end, the trailer
    let mut last: Option<(String, &'static str)> = None;
    loop {
        raw.clear();
        if r.read_until(b'\n', &mut raw)? == 0 {
            break;
        }
        line += 1;
        let s = String::from_utf8_lossy(&raw);
        let (body, end) = if let Some(b) = s.strip_suffix("\r\n") {
            (b, "\r\n")
        } else if let Some(b) = s.strip_suffix('\n') {
            (b, "\n")
        } else {
            (&s[..], "")
        };
        if default_end.is_none() && !end.is_empty() {
            default_end = Some(if end == "\r\n" { "\r\n" } else { "\n" });
        }
        let Some((_, message)) = rows.get(&line) else {
            if !body.bytes().all(|b| b.is_ascii_whitespace()) {
                let end = match end {
                    "\r\n" => "\r\n",
                    "\n" => "\n",
                    _ => "",
                };
                last = Some((body.to_string(), end));
            }
            continue;
        };
        last = None;
        if let Some(t) = totals.as_mut() {
            let of = t.rule.sum.as_ref().and_then(|(_, of)| {
                let code = record_code(opts, body);
                value_of(body, column(opts, code.as_deref(), of)?)
            });
            t.add(of.as_deref(), false, line)?;
        }
        let layout = layout_end(opts, body)?;
        let chars = body.chars().count();
        if chars < layout {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "line {line} ends at character {chars}, before the end of its columns ({layout}): a message after it would be read as data"
                ),
            ));
        }
        // a rejected file that failed again: its message is replaced, not added twice
        let cut = body
            .char_indices()
            .nth(layout)
            .map_or(body.len(), |(i, _)| i);
        let kept = match body[cut..].find(&marker()) {
            Some(i) => &body[..cut + i],
            None => body,
        };
        out.write_str(kept)?;
        out.write_str(&marker())?;
        out.write_str(&message)?;
        out.write_str(if end.is_empty() {
            default_end.unwrap_or("\n")
        } else {
            end
        })?;
    }
    if let Some(t) = &totals {
        let (body, end) =
            last.ok_or_else(|| invalid("the trailer is not the file's last line".into()))?;
        out.write_str(&trailer_line(opts, &body, t)?)?;
        out.write_str(end)?;
    }
    out.finish()
}
