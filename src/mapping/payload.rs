//! The document payload: a small tree written as JSON or XML.
//!
//! Decimals stay text end to end (`"1234.50"`), so no value ever passes through binary
//! floating point; a number marked `json_number` is written bare.

use std::io::{self, Write};

/// A node of a payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    /// A string (also dates and decimals written as strings).
    Str(String),
    /// A number, already formatted (integers, `json_number` decimals).
    Num(String),
    Bool(bool),
    Obj(Vec<(String, Node)>),
    Arr(Vec<Node>),
}

impl Node {
    /// An empty object.
    pub fn obj() -> Node {
        Node::Obj(Vec::new())
    }

    /// Sets `path` (e.g. `["customer", "id"]`) in an object, creating nested objects.
    pub fn insert_path(&mut self, path: &[String], value: Node) {
        let Node::Obj(entries) = self else {
            return;
        };
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        if rest.is_empty() {
            match entries.iter_mut().find(|(k, _)| k == first) {
                Some((_, v)) => *v = value,
                None => entries.push((first.clone(), value)),
            }
            return;
        }
        let child = match entries.iter().position(|(k, _)| k == first) {
            Some(i) => &mut entries[i].1,
            None => {
                entries.push((first.clone(), Node::obj()));
                &mut entries.last_mut().unwrap().1
            }
        };
        if !matches!(child, Node::Obj(_)) {
            *child = Node::obj();
        }
        child.insert_path(rest, value);
    }

    /// Writes the node as JSON, indented with two spaces when `pretty`.
    pub fn write_json<W: Write>(&self, out: &mut W, pretty: bool) -> io::Result<()> {
        self.json_at(out, pretty, 0)
    }

    /// The node as JSON text (see [`write_json`](Node::write_json)).
    pub fn to_json(&self, pretty: bool) -> String {
        let mut v = Vec::new();
        self.write_json(&mut v, pretty).expect("writing to a Vec");
        String::from_utf8(v).expect("JSON is UTF-8")
    }

    fn json_at<W: Write>(&self, out: &mut W, pretty: bool, depth: usize) -> io::Result<()> {
        match self {
            Node::Null => out.write_all(b"null"),
            Node::Str(s) => write_json_str(out, s),
            Node::Num(n) => out.write_all(n.as_bytes()),
            Node::Bool(b) => out.write_all(if *b { b"true" } else { b"false" }),
            Node::Obj(entries) => {
                if entries.is_empty() {
                    return out.write_all(b"{}");
                }
                out.write_all(b"{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.write_all(b",")?;
                    }
                    newline(out, pretty, depth + 1)?;
                    write_json_str(out, k)?;
                    out.write_all(if pretty { b": " } else { b":" })?;
                    v.json_at(out, pretty, depth + 1)?;
                }
                newline(out, pretty, depth)?;
                out.write_all(b"}")
            }
            Node::Arr(items) => {
                if items.is_empty() {
                    return out.write_all(b"[]");
                }
                out.write_all(b"[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.write_all(b",")?;
                    }
                    newline(out, pretty, depth + 1)?;
                    v.json_at(out, pretty, depth + 1)?;
                }
                newline(out, pretty, depth)?;
                out.write_all(b"]")
            }
        }
    }

    /// Writes the node as an XML document whose root element is `root`: objects become
    /// elements, arrays repeated elements named after their key, nulls are left out.
    pub fn write_xml<W: Write>(&self, out: &mut W, root: &str) -> io::Result<()> {
        out.write_all(b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n")?;
        self.xml_element(out, root, 0)?;
        out.write_all(b"\n")
    }

    /// The node as an XML document under a `root` element (see [`write_xml`](Node::write_xml)).
    pub fn to_xml(&self, root: &str) -> String {
        let mut v = Vec::new();
        self.write_xml(&mut v, root).expect("writing to a Vec");
        String::from_utf8(v).expect("XML is UTF-8")
    }

    fn xml_element<W: Write>(&self, out: &mut W, name: &str, depth: usize) -> io::Result<()> {
        match self {
            Node::Null => Ok(()),
            Node::Arr(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        newline(out, true, depth)?;
                    }
                    item.xml_element(out, name, depth)?;
                }
                Ok(())
            }
            Node::Obj(entries) => {
                write!(out, "<{name}>")?;
                let mut wrote = false;
                for (k, v) in entries {
                    if matches!(v, Node::Null) || matches!(v, Node::Arr(a) if a.is_empty()) {
                        continue;
                    }
                    newline(out, true, depth + 1)?;
                    v.xml_element(out, k, depth + 1)?;
                    wrote = true;
                }
                if wrote {
                    newline(out, true, depth)?;
                }
                write!(out, "</{name}>")
            }
            Node::Str(s) | Node::Num(s) => {
                write!(out, "<{name}>")?;
                write_xml_text(out, s)?;
                write!(out, "</{name}>")
            }
            Node::Bool(b) => write!(out, "<{name}>{b}</{name}>"),
        }
    }
}

fn newline<W: Write>(out: &mut W, pretty: bool, depth: usize) -> io::Result<()> {
    if pretty {
        out.write_all(b"\n")?;
        for _ in 0..depth {
            out.write_all(b"  ")?;
        }
    }
    Ok(())
}

fn write_json_str<W: Write>(out: &mut W, s: &str) -> io::Result<()> {
    out.write_all(b"\"")?;
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.write_all(&bytes[start..i])?;
        match esc {
            Some(e) => out.write_all(e)?,
            None => write!(out, "\\u{b:04x}")?,
        }
        start = i + 1;
    }
    out.write_all(&bytes[start..])?;
    out.write_all(b"\"")
}

fn write_xml_text<W: Write>(out: &mut W, s: &str) -> io::Result<()> {
    let mut start = 0;
    for (i, ch) in s.char_indices() {
        let esc: &str = match ch {
            '<' => "&lt;",
            '>' => "&gt;",
            '&' => "&amp;",
            '"' => "&quot;",
            '\r' => "&#13;",
            // characters XML 1.0 cannot carry are left out
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => "",
            _ => continue,
        };
        out.write_all(&s.as_bytes()[start..i])?;
        out.write_all(esc.as_bytes())?;
        start = i + ch.len_utf8();
    }
    out.write_all(&s.as_bytes()[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<String> {
        s.split('.').map(str::to_string).collect()
    }

    #[test]
    fn dotted_paths_make_nested_objects() {
        let mut n = Node::obj();
        n.insert_path(&p("number"), Node::Str("INV1".into()));
        n.insert_path(&p("customer.id"), Node::Str("C1".into()));
        n.insert_path(&p("customer.name"), Node::Str("Ann \"A\"".into()));
        n.insert_path(&p("total"), Node::Str("10.50".into()));
        assert_eq!(
            n.to_json(false),
            r#"{"number":"INV1","customer":{"id":"C1","name":"Ann \"A\""},"total":"10.50"}"#
        );
    }

    #[test]
    fn xml_repeats_array_elements_and_escapes_text() {
        let mut n = Node::obj();
        n.insert_path(&p("head.no"), Node::Str("A&B".into()));
        n.insert_path(
            &p("items.line"),
            Node::Arr(vec![
                Node::Obj(vec![("qty".into(), Node::Num("1".into()))]),
                Node::Obj(vec![("qty".into(), Node::Num("2".into()))]),
            ]),
        );
        n.insert_path(&p("skip"), Node::Null);
        let xml = n.to_xml("doc");
        assert!(xml.contains("<no>A&amp;B</no>"), "{xml}");
        assert_eq!(xml.matches("<line>").count(), 2, "{xml}");
        assert!(xml.contains("<items>"));
        assert!(!xml.contains("skip"));
    }

    #[test]
    fn control_characters_are_escaped_in_json() {
        let n = Node::Str("a\u{1}b\tc".into());
        assert_eq!(n.to_json(false), "\"a\\u0001b\\tc\"");
    }
}
