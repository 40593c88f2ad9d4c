//! The rejected records of a JSON file.
//!
//! JSON lines (no `record` pointer): each failed record's text as read, with a member
//! `"erpdrop_error": "..."` added before its closing brace (replacing one that is there
//! already), one record a line. A failed record is told by the line it starts on, as the
//! source read it; a file where a failed record shares its line with another gets no
//! rejected file.
//!
//! An array under a pointer (`copy_json_array`): the file's value as it is, the array
//! holding only the failed records, told by their order in it (and checked against the
//! line each starts on), so that a minified file works too.
//!
//! The text is scanned value by value (strings and nesting only); what is not kept
//! streams through, and one record at most is in memory.

use super::rejected::{open_text, Encoded, RejectedInput, Rows, ERROR_COLUMN};
use std::io::{self, BufRead, Write};

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads one top-level value whose first byte is the next one, into `out`; counts its
/// line breaks into `line`.
fn read_value<R: BufRead>(r: &mut R, out: &mut Vec<u8>, line: &mut u64) -> io::Result<()> {
    scan_value(r, line, &mut |b| {
        out.extend_from_slice(b);
        Ok(())
    })
}

/// Scans one value whose first byte is the next one, handing its bytes to `sink` a
/// buffer at a time (nothing is held); counts its line breaks into `line`. A scalar
/// ends before a blank, `,`, `}` or `]`.
fn scan_value<R: BufRead>(
    r: &mut R,
    line: &mut u64,
    sink: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
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
            if scalar && !in_string && (b.is_ascii_whitespace() || matches!(b, b',' | b'}' | b']'))
            {
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
        sink(&buf[..used])?;
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
            out.write_str(&with_error(&rec, &message)?)?;
            out.write_str(line_end.unwrap_or("\n"))?;
        }
    }
    out.finish()
}

/// Text handed on in pieces that may split a character: whole characters are written,
/// the bytes of a cut one wait for the rest.
struct Pieces<'a, 'w> {
    out: &'a mut Encoded<'w>,
    pending: Vec<u8>,
}

impl Pieces<'_, '_> {
    fn write(&mut self, mut b: &[u8]) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.pending.extend_from_slice(b);
            let pending = std::mem::take(&mut self.pending);
            return self.write(&pending);
        }
        while !b.is_empty() {
            match std::str::from_utf8(b) {
                Ok(t) => return self.out.write_str(t),
                Err(e) => {
                    let (good, rest) = b.split_at(e.valid_up_to());
                    self.out
                        .write_str(std::str::from_utf8(good).expect("valid up to here"))?;
                    match e.error_len() {
                        // the decoder gives UTF-8; this is a character cut by the buffer
                        None => {
                            self.pending.extend_from_slice(rest);
                            return Ok(());
                        }
                        Some(n) => {
                            self.out.write_str("\u{FFFD}")?;
                            b = &rest[n..];
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn str(&mut self, s: &str) -> io::Result<()> {
        self.write(s.as_bytes())
    }
}

fn peek<R: BufRead>(r: &mut R) -> io::Result<Option<u8>> {
    Ok(r.fill_buf()?.first().copied())
}

/// The blanks at the reader, taken and returned; counts line breaks.
fn take_ws<R: BufRead>(r: &mut R, line: &mut u64) -> io::Result<String> {
    let mut ws = String::new();
    while let Some(b) = peek(r)? {
        if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            break;
        }
        if b == b'\n' {
            *line += 1;
        }
        ws.push(b as char);
        r.consume(1);
    }
    Ok(ws)
}

/// Takes `b`, which must be next, and writes it.
fn expect<R: BufRead>(r: &mut R, out: &mut Pieces<'_, '_>, b: u8) -> io::Result<()> {
    match peek(r)? {
        Some(c) if c == b => {
            r.consume(1);
            out.write(&[b])
        }
        _ => Err(invalid(format!(
            "the file does not read as it did: `{}` expected",
            b as char
        ))),
    }
}

/// The records under a `record` pointer: the file's value as it is, with the records'
/// array holding only the failed records (by their order in the array, skipped ones
/// counted; each checked against the line it starts on), each with its
/// `erpdrop_error` member. The text streams: one failed record is held at a time.
pub(super) fn copy_json_array(
    input: &RejectedInput<'_>,
    pointer: &str,
    rows: &Rows,
    w: &mut dyn Write,
) -> io::Result<()> {
    let mut text = open_text(input, input.mapping.source.encoding)?;
    // the file's encoding, byte-order mark and code page (CP437), as JSON lines
    let mut encoded = Encoded::for_text(w, &text)?;
    let mut out = Pieces {
        out: &mut encoded,
        pending: Vec::new(),
    };
    let r = &mut text.reader;
    let mut line = 1u64;
    let segments: Vec<String> = match pointer {
        "" => Vec::new(),
        p => p[1..]
            .split('/')
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect(),
    };
    let lost = || invalid("the record pointer does not lead to the records as it did".into());
    // down the pointer, copying what stands beside it
    for seg in &segments {
        out.str(&take_ws(r, &mut line)?)?;
        match peek(r)? {
            Some(b'{') => {
                expect(r, &mut out, b'{')?;
                loop {
                    out.str(&take_ws(r, &mut line)?)?;
                    if peek(r)? != Some(b'"') {
                        return Err(lost());
                    }
                    let mut key = Vec::new();
                    read_value(r, &mut key, &mut line)?;
                    out.write(&key)?;
                    let name: String = serde_json::from_slice(&key).map_err(|_| lost())?;
                    out.str(&take_ws(r, &mut line)?)?;
                    expect(r, &mut out, b':')?;
                    if name == *seg {
                        break;
                    }
                    out.str(&take_ws(r, &mut line)?)?;
                    scan_value(r, &mut line, &mut |b| out.write(b))?;
                    out.str(&take_ws(r, &mut line)?)?;
                    expect(r, &mut out, b',')?;
                }
            }
            Some(b'[') => {
                let index: usize = seg.parse().map_err(|_| lost())?;
                expect(r, &mut out, b'[')?;
                for _ in 0..index {
                    out.str(&take_ws(r, &mut line)?)?;
                    scan_value(r, &mut line, &mut |b| out.write(b))?;
                    out.str(&take_ws(r, &mut line)?)?;
                    expect(r, &mut out, b',')?;
                }
            }
            _ => return Err(lost()),
        }
    }
    out.str(&take_ws(r, &mut line)?)?;
    expect(r, &mut out, b'[')?;
    // the records: the blanks before each (after `[` or its `,`) go with it
    let (mut ordinal, mut written) = (0u64, 0usize);
    let mut record = Vec::new();
    let tail = loop {
        let lead = take_ws(r, &mut line)?;
        if peek(r)? == Some(b']') {
            break lead;
        }
        let start = line;
        match rows.get(&ordinal) {
            Some((at, message)) => {
                if at != start {
                    return Err(invalid(format!(
                        "record {} starts on line {start}, not on line {at} where it was read",
                        ordinal + 1
                    )));
                }
                record.clear();
                read_value(r, &mut record, &mut line)?;
                if written > 0 {
                    out.str(",")?;
                }
                out.str(&lead)?;
                out.str(&with_error(&String::from_utf8_lossy(&record), &message)?)?;
                written += 1;
            }
            None => scan_value(r, &mut line, &mut |_| Ok(()))?,
        }
        ordinal += 1;
        let after = take_ws(r, &mut line)?;
        match peek(r)? {
            Some(b',') => r.consume(1),
            Some(b']') => break after,
            _ => return Err(lost()),
        }
    };
    if written != rows.len() {
        return Err(invalid(format!(
            "{} failed records were read, {written} found in the array",
            rows.len()
        )));
    }
    out.str(&tail)?;
    expect(r, &mut out, b']')?;
    // the rest of the file as it is
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        out.write(buf)?;
        r.consume(n);
    }
    if !out.pending.is_empty() {
        out.out.write_str("\u{FFFD}")?;
    }
    encoded.finish()
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

    #[test]
    fn a_scalar_member_ends_at_its_closing_brace() {
        let mut r = io::Cursor::new(&b"12.50}, 3"[..]);
        let (mut v, mut line) = (Vec::new(), 1);
        read_value(&mut r, &mut v, &mut line).unwrap();
        assert_eq!(v, b"12.50");
        assert_eq!(peek(&mut r).unwrap(), Some(b'}'));
    }

    #[test]
    fn a_character_cut_between_two_pieces_is_written_whole() {
        let mut v = Vec::new();
        let mut e = Encoded::new(&mut v, encoding_rs::WINDOWS_1252, false).unwrap();
        let mut p = Pieces {
            out: &mut e,
            pending: Vec::new(),
        };
        let cafe = "café".as_bytes();
        p.write(&cafe[..4]).unwrap();
        p.write(&cafe[4..]).unwrap();
        assert!(p.pending.is_empty());
        e.finish().unwrap();
        assert_eq!(v, b"caf\xe9");
    }
}
