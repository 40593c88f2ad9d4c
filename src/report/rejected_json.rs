//! The rejected records of a JSON lines file (one record per line, no `record`
//! pointer): each failed record's text as read, with a member `"erpdrop_error": "..."`
//! added before its closing brace (replacing one that is there already), one record a
//! line.
//!
//! The text is scanned value by value (strings and nesting only, one value in memory);
//! a failed record is told by the line it starts on, as the source read it. A file
//! where a failed record shares its line with another gets no rejected file.

use super::rejected::{open_text, Encoded, RejectedInput, Rows, ERROR_COLUMN};
use std::io::{self, BufRead, Write};

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads one top-level value whose first byte is the next one, into `out`; counts its
/// line breaks into `line`.
fn read_value<R: BufRead>(r: &mut R, out: &mut Vec<u8>, line: &mut u64) -> io::Result<()> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut scalar = false;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        let mut used = 0;
        let mut done = false;
        for &b in buf {
            if scalar && !in_string && (b.is_ascii_whitespace() || b == b',') {
                done = true;
                break;
            }
            used += 1;
            if b == b'\n' {
                *line += 1;
            }
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                    if depth == 0 && !scalar {
                        done = true;
                        break;
                    }
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        done = true;
                        break;
                    }
                }
                _ if depth == 0 => scalar = true,
                _ => {}
            }
        }
        out.extend_from_slice(&buf[..used]);
        r.consume(used);
        if done {
            return Ok(());
        }
    }
}

/// The end of the value that starts at `i` of `s` (an object's member value).
fn value_end(s: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    while i < s.len() {
        let b = s[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
                if depth == 0 {
                    return i + 1;
                }
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth == 0 => return i,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                b',' if depth == 0 => return i,
                b if depth == 0 && b.is_ascii_whitespace() => return i,
                _ => {}
            }
        }
        i += 1;
    }
    i
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// The record's text without a member named `erpdrop_error` at its top level.
fn without_error_member(rec: &str) -> String {
    let s = rec.as_bytes();
    let name = format!("\"{ERROR_COLUMN}\"");
    // (key start, value end) of each member
    let mut members: Vec<(usize, usize, bool)> = Vec::new();
    let mut i = skip_ws(s, 1);
    while i < s.len() && s[i] == b'"' {
        let key_end = value_end(s, i);
        let is_error = &s[i..key_end] == name.as_bytes();
        let colon = skip_ws(s, key_end);
        if colon >= s.len() || s[colon] != b':' {
            break;
        }
        let start = skip_ws(s, colon + 1);
        let end = value_end(s, start);
        members.push((i, end, is_error));
        let next = skip_ws(s, end);
        if next < s.len() && s[next] == b',' {
            i = skip_ws(s, next + 1);
        } else {
            break;
        }
    }
    let Some(at) = members.iter().position(|m| m.2) else {
        return rec.to_string();
    };
    let (from, to) = if at + 1 < members.len() {
        (members[at].0, members[at + 1].0)
    } else if at > 0 {
        (members[at - 1].1, members[at].1)
    } else {
        (members[at].0, members[at].1)
    };
    format!("{}{}", &rec[..from], &rec[to..])
}

/// The record with its `erpdrop_error` member, before its closing brace.
fn with_error(rec: &str, message: &str) -> io::Result<String> {
    if !rec.starts_with('{') || !rec.ends_with('}') {
        return Err(invalid("a failed record is not a JSON object".into()));
    }
    let rec = without_error_member(rec);
    let close = rec.len() - 1;
    let before = rec[..close].trim_end();
    let sep = if before.ends_with('{') { "" } else { ", " };
    let value = serde_json::to_string(message).map_err(io::Error::other)?;
    Ok(format!("{before}{sep}\"{ERROR_COLUMN}\": {value}}}"))
}

pub(super) fn copy_json(
    input: &RejectedInput<'_>,
    rows: &Rows,
    w: &mut dyn Write,
) -> io::Result<()> {
    let mut text = open_text(input, input.mapping.source.encoding)?;
    let mut out = Encoded::for_text(w, &text)?;
    let r = &mut text.reader;
    let mut line = 1u64;
    let mut line_end: Option<&str> = None;
    let mut last = 0u8;
    // the line the previous value ended on, and whether it was a failed one
    let mut previous: Option<(u64, bool)> = None;
    let mut value = Vec::new();
    loop {
        let buf = r.fill_buf()?;
        let Some(&b) = buf.first() else { break };
        if b.is_ascii_whitespace() {
            if b == b'\n' {
                line += 1;
                line_end.get_or_insert(if last == b'\r' { "\r\n" } else { "\n" });
            }
            last = b;
            r.consume(1);
            continue;
        }
        let start = line;
        value.clear();
        read_value(r, &mut value, &mut line)?;
        let failed = rows.get(&start);
        if let Some((end_line, was_failed)) = previous {
            if end_line == start && (was_failed || failed.is_some()) {
                return Err(invalid(format!(
                    "two records on line {start}: a failed one could not be told from the other"
                )));
            }
        }
        previous = Some((line, failed.is_some()));
        last = *value.last().unwrap_or(&0);
        if let Some((_, message)) = failed {
            let rec = String::from_utf8_lossy(&value);
            out.write_str(&with_error(&rec, message)?)?;
            out.write_str(line_end.unwrap_or("\n"))?;
        }
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_member_goes_before_the_closing_brace_and_replaces_an_old_one() {
        assert_eq!(
            with_error(r#"{"a": 1}"#, "bad \"x\"").unwrap(),
            r#"{"a": 1, "erpdrop_error": "bad \"x\""}"#
        );
        assert_eq!(with_error("{ }", "m").unwrap(), r#"{"erpdrop_error": "m"}"#);
        assert_eq!(
            with_error(r#"{"a":1,"erpdrop_error":"old","b":[1,{"c":"}"}]}"#, "m").unwrap(),
            r#"{"a":1,"b":[1,{"c":"}"}], "erpdrop_error": "m"}"#
        );
        assert_eq!(
            with_error(r#"{"a":1, "erpdrop_error": "old"}"#, "m").unwrap(),
            r#"{"a":1, "erpdrop_error": "m"}"#
        );
        assert_eq!(
            with_error(r#"{"erpdrop_error": "old"}"#, "m").unwrap(),
            r#"{"erpdrop_error": "m"}"#
        );
        assert!(with_error("[1]", "m").is_err());
    }

    #[test]
    fn values_are_read_whole_whatever_their_strings_hold() {
        let mut r = io::Cursor::new(&b"{\"a\": \"}\\\"{\", \"b\": [\n1]} {\"c\": 2}"[..]);
        let (mut v, mut line) = (Vec::new(), 1);
        read_value(&mut r, &mut v, &mut line).unwrap();
        assert_eq!(v, b"{\"a\": \"}\\\"{\", \"b\": [\n1]}");
        assert_eq!(line, 2);
    }
}
