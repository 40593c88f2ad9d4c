//! The rejected records of an XML file: its declaration, then the failed records under
//! the same ancestors (their start tags as written, attributes and namespace
//! declarations included), each after a comment `<!-- erpdrop_error: ... -->`.
//!
//! Two readers over the file's text, side by side, so that memory stays flat: the first
//! finds where each failed record and its ancestors' start tags stand, and hands each
//! piece at once to the second, which copies those bytes in order between the comments
//! and closing tags (a plan of every piece first held 1.5 GB for a 300 MB file whose
//! 2.7 million records were all held back by `on_invalid = "reject-file"`).

use super::rejected::{open_text, Encoded, RejectedInput, Rows};
use quick_xml::events::Event;
use std::io::{self, BufRead, Write};

/// A step of the record's path: a local name, or `*`.
fn steps(record: &str) -> (bool, Vec<Option<Vec<u8>>>) {
    let descendant = record.starts_with("//");
    let steps = record
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let local = s.rsplit(':').next().unwrap_or(s);
            (local != "*").then(|| local.as_bytes().to_vec())
        })
        .collect();
    (descendant, steps)
}

fn local(name: &[u8]) -> &[u8] {
    match name.iter().rposition(|&b| b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

/// Whether the open elements `stack` (local names, root first) end at a record.
fn is_record(stack: &[Vec<u8>], descendant: bool, steps: &[Option<Vec<u8>>]) -> bool {
    if steps.is_empty() || (!descendant && stack.len() != steps.len()) || stack.len() < steps.len()
    {
        return false;
    }
    let tail = &stack[stack.len() - steps.len()..];
    tail.iter()
        .zip(steps)
        .all(|(name, step)| step.as_ref().is_none_or(|s| s == name))
}

/// `--` cannot stand in a comment, nor can one end with `-`.
fn comment_text(message: &str) -> String {
    let mut t = message.replace("--", "- -");
    while t.contains("--") {
        t = t.replace("--", "- -");
    }
    if t.ends_with('-') {
        t.push(' ');
    }
    t
}

/// One piece of the rejected file: bytes of the file's text (a range), or text of ours.
enum Piece {
    /// A range of the text; with the line a record must start on (checked as copied).
    Copy {
        start: u64,
        end: u64,
        line: Option<u64>,
    },
    Text(String),
}

/// The first reader: what the rejected file is made of, piece by piece, in the order of
/// the text.
fn plan(
    input: &RejectedInput<'_>,
    rows: &Rows,
    emit: &mut dyn FnMut(Piece) -> io::Result<()>,
) -> io::Result<()> {
    let record = input.mapping.source.xml.record.as_deref().unwrap_or("");
    let (descendant, steps) = steps(record);
    let text = open_text(input, input.mapping.source.encoding)?;
    let mut reader = quick_xml::Reader::from_reader(text.reader);
    reader.config_mut().check_end_names = false;
    let bad = |e: quick_xml::Error| io::Error::new(io::ErrorKind::InvalidData, e.to_string());
    // open elements: local name, qualified name, range of the start tag
    let mut stack: Vec<(Vec<u8>, String, u64, u64)> = Vec::new();
    // the ancestors written so far, by where their start tag is
    let mut written: Vec<(u64, String)> = Vec::new();
    let mut ordinal = 0u64;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let start = reader.buffer_position();
        let ev = reader.read_event_into(&mut buf).map_err(bad)?;
        let end = reader.buffer_position();
        match ev {
            Event::Eof => break,
            Event::Decl(_) => {
                emit(Piece::Copy {
                    start: 0,
                    end,
                    line: None,
                })?;
                emit(Piece::Text("\n".into()))?;
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                // text before a tag is an event of its own: the tag starts here
                let begin = start;
                let name = e.name().as_ref().to_vec();
                let qname = String::from_utf8_lossy(&name).into_owned();
                let mut names: Vec<Vec<u8>> = stack.iter().map(|s| s.0.clone()).collect();
                names.push(local(&name).to_vec());
                if !is_record(&names, descendant, &steps) {
                    if !empty {
                        stack.push((local(&name).to_vec(), qname, begin, end));
                    }
                    continue;
                }
                let record_end = if empty {
                    end
                } else {
                    let mut skip = Vec::new();
                    reader
                        .read_to_end_into(quick_xml::name::QName(&name), &mut skip)
                        .map_err(bad)?;
                    reader.buffer_position()
                };
                let here = ordinal;
                ordinal += 1;
                let Some((line, message)) = rows.get(&here) else {
                    continue;
                };
                // the ancestors of this record, opened as in the file
                let keep = written
                    .iter()
                    .zip(&stack)
                    .take_while(|(w, s)| w.0 == s.2)
                    .count();
                while written.len() > keep {
                    let (_, q) = written.pop().expect("an ancestor");
                    emit(Piece::Text(format!("</{q}>\n")))?;
                }
                for s in &stack[keep..] {
                    emit(Piece::Copy {
                        start: s.2,
                        end: s.3,
                        line: None,
                    })?;
                    emit(Piece::Text("\n".into()))?;
                    written.push((s.2, s.1.clone()));
                }
                emit(Piece::Text(format!(
                    "<!-- erpdrop_error: {} -->\n",
                    comment_text(&message)
                )))?;
                emit(Piece::Copy {
                    start: begin,
                    end: record_end,
                    line: Some(line),
                })?;
                emit(Piece::Text("\n".into()))?;
            }
            Event::End(_) => {
                stack.pop();
            }
            _ => {}
        }
    }
    while let Some((_, q)) = written.pop() {
        emit(Piece::Text(format!("</{q}>\n")))?;
    }
    Ok(())
}

pub(super) fn copy_xml(
    input: &RejectedInput<'_>,
    rows: &Rows,
    w: &mut dyn Write,
) -> io::Result<()> {
    // the second reader: the text again, copied where the first says
    let mut text = open_text(input, input.mapping.source.encoding)?;
    let mut out = Encoded::new(w, text.encoding, text.bom)?;
    let r = &mut text.reader;
    let mut at = 0u64;
    let mut line = 1u64;
    let mut bytes = Vec::new();
    plan(input, rows, &mut |p| {
        match p {
            Piece::Text(t) => out.write_str(&t)?,
            Piece::Copy {
                start,
                end,
                line: want,
            } => {
                if start < at {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the records do not follow one another in the text",
                    ));
                }
                // skip to `start`, counting lines
                while at < start {
                    let avail = r.fill_buf()?;
                    if avail.is_empty() {
                        break;
                    }
                    let n = avail.len().min((start - at) as usize);
                    line += crate::source::count_newlines(&avail[..n]);
                    r.consume(n);
                    at += n as u64;
                }
                if let Some(want) = want {
                    if want != line {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "a record starts on line {line}, the source read it on line {want}"
                            ),
                        ));
                    }
                }
                bytes.clear();
                while at < end {
                    let avail = r.fill_buf()?;
                    if avail.is_empty() {
                        break;
                    }
                    let n = avail.len().min((end - at) as usize);
                    bytes.extend_from_slice(&avail[..n]);
                    line += crate::source::count_newlines(&avail[..n]);
                    r.consume(n);
                    at += n as u64;
                }
                out.write_str(String::from_utf8_lossy(&bytes).trim_end())?;
            }
        }
        Ok(())
    })?;
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comment_never_holds_two_dashes() {
        assert_eq!(comment_text("a -- b"), "a - - b");
        assert_eq!(comment_text("a---b"), "a- - -b");
        assert_eq!(comment_text("ends-"), "ends- ");
        assert!(!comment_text("----").contains("--"));
    }

    #[test]
    fn records_are_found_by_path() {
        let (d, s) = steps("/Export/x:Invoice");
        let names = |v: &[&str]| v.iter().map(|n| n.as_bytes().to_vec()).collect::<Vec<_>>();
        assert!(is_record(&names(&["Export", "Invoice"]), d, &s));
        assert!(!is_record(&names(&["Export", "Batch", "Invoice"]), d, &s));
        let (d, s) = steps("//Invoice");
        assert!(is_record(&names(&["Export", "Batch", "Invoice"]), d, &s));
    }
}
