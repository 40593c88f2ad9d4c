//! The rejected records of an XML file: its declaration, then the failed records under
//! the same ancestors (their start tags as written, attributes and namespace
//! declarations included), each after a comment `<!-- erpdrop_error: ... -->`.

use super::rejected::{open_text, Encoded, RejectedInput, Rows};
use quick_xml::events::Event;
use std::io::{self, Read, Write};

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

pub(super) fn copy_xml(
    input: &RejectedInput<'_>,
    rows: &Rows,
    w: &mut dyn Write,
) -> io::Result<()> {
    let record = input.mapping.source.xml.record.as_deref().unwrap_or("");
    let (descendant, steps) = steps(record);
    let mut text = open_text(input, input.mapping.source.encoding)?;
    // the text is read whole: only a failed file's, once
    let mut all = String::new();
    text.reader.read_to_string(&mut all)?;
    let mut out = Encoded::new(w, text.encoding, text.bom)?;
    let mut reader = quick_xml::Reader::from_str(&all);
    reader.config_mut().check_end_names = false;
    // open elements: local name, raw start tag, its qualified name, its offset
    let mut stack: Vec<(Vec<u8>, String, String, usize)> = Vec::new();
    // the ancestors written so far, by offset of their start tag
    let mut written: Vec<(usize, String)> = Vec::new();
    let mut ordinal = 0u64;
    let bad = |e: quick_xml::Error| io::Error::new(io::ErrorKind::InvalidData, e.to_string());
    loop {
        let start = reader.buffer_position() as usize;
        let ev = reader.read_event().map_err(bad)?;
        let end = reader.buffer_position() as usize;
        match ev {
            Event::Eof => break,
            Event::Decl(_) => {
                out.write_str(&all[..end])?;
                out.write_str("\n")?;
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                let qname = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                let mut names: Vec<Vec<u8>> = stack.iter().map(|s| s.0.clone()).collect();
                names.push(local(e.name().as_ref()).to_vec());
                if is_record(&names, descendant, &steps) {
                    let record_end = if empty {
                        end
                    } else {
                        let name = e.name().as_ref().to_vec();
                        reader
                            .read_to_end(quick_xml::name::QName(&name))
                            .map_err(bad)?;
                        reader.buffer_position() as usize
                    };
                    let here = ordinal;
                    ordinal += 1;
                    let Some((line, message)) = rows.get(&here) else {
                        continue;
                    };
                    let lt = start + all[start..].find('<').unwrap_or(0);
                    let found_line =
                        1 + all.as_bytes()[..lt].iter().filter(|&&b| b == b'\n').count() as u64;
                    if found_line != *line {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("record {} is on line {found_line}, the source read it on line {line}", here + 1),
                        ));
                    }
                    // the ancestors of this record, opened as in the file
                    let keep = written
                        .iter()
                        .zip(&stack)
                        .take_while(|(w, s)| w.0 == s.3)
                        .count();
                    while written.len() > keep {
                        let (_, q) = written.pop().expect("an ancestor");
                        out.write_str(&format!("</{q}>\n"))?;
                    }
                    for s in &stack[keep..] {
                        out.write_str(&format!("{}\n", s.1))?;
                        written.push((s.3, s.2.clone()));
                    }
                    out.write_str(&format!(
                        "<!-- erpdrop_error: {} -->\n",
                        comment_text(message)
                    ))?;
                    out.write_str(all[lt..record_end].trim_end())?;
                    out.write_str("\n")?;
                    continue;
                }
                if !empty {
                    let lt = start + all[start..].find('<').unwrap_or(0);
                    stack.push((
                        local(e.name().as_ref()).to_vec(),
                        all[lt..end].to_string(),
                        qname,
                        lt,
                    ));
                }
            }
            Event::End(_) => {
                stack.pop();
            }
            _ => {}
        }
    }
    while let Some((_, q)) = written.pop() {
        out.write_str(&format!("</{q}>\n"))?;
    }
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
