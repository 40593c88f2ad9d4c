//! quick-xml's errors, and the reader's own, as problems that say what is wrong in
//! words a user can act on, on which line and character, inside which element.

use super::line_counter::{ForbiddenChar, LineCounter, TooLarge};
use super::matcher::State;
use super::reader::Events;
use super::MAX_EVENT_BYTES;
use crate::problem::{Code, Problem, Stage};
use crate::source::count_newlines;
use crate::source::decode::{encoding_error, hex_bytes};
use quick_xml::errors::{Error as XmlError, IllFormedError, SyntaxError};
use quick_xml::escape::EscapeError;
use std::io::{self, Read};

impl State {
    pub(super) fn malformed(
        &self,
        line: u64,
        col: Option<u64>,
        what: &str,
        value: Option<String>,
    ) -> Problem {
        Problem::read(
            Code::Malformed,
            format!("The file is not well-formed XML: {what}"),
        )
        .with_line(line)
        .with_character(col)
        .with_column_opt(self.element_path())
        .with_value_opt(value)
    }

    pub(super) fn escape_problem(&self, e: EscapeError, text: &str, line: u64) -> Problem {
        let (at, what, value) = match &e {
            EscapeError::UnrecognizedEntity(r, name) => (
                r.start,
                format!("the entity &{name}; is not defined (XML knows only &amp; &lt; &gt; &quot; &apos; and character references such as &#1234;; entities from a DTD are not read)"),
                format!("&{name};"),
            ),
            EscapeError::UnterminatedEntity(r) => (
                r.start,
                "an `&` is not followed by an entity name and `;` (an ampersand must be written &amp;)".to_string(),
                text.get(r.start..).unwrap_or("").chars().take(20).collect(),
            ),
            EscapeError::InvalidCharRef(c) => (0, format!("a character reference is not valid: {c}"), String::new()),
        };
        let line = line + count_newlines(&text.as_bytes()[..at.min(text.len())]);
        self.malformed(line, None, &what, (!value.is_empty()).then_some(value))
    }

    fn io_problem(&self, e: &io::Error, line: u64) -> Problem {
        if let Some(enc) = encoding_error(e) {
            let msg = format!(
                "The bytes {} are not valid {}: the file is in another encoding (declare it in the XML declaration, e.g. <?xml version=\"1.0\" encoding=\"windows-1251\"?>, or set source.encoding in the mapping)",
                hex_bytes(&enc.bytes),
                enc.encoding
            );
            // Only the UTF-8 check stops exactly at the bad bytes; then the open
            // elements say where they are.
            let column = if enc.encoding == "UTF-8" {
                self.element_path()
            } else {
                None
            };
            return Problem::new(Stage::Read, Code::Encoding, &msg)
                .with_line(enc.line)
                .with_column_opt(column.clone())
                .with_value(hex_bytes(&enc.bytes));
        }
        if let Some(f) = e.get_ref().and_then(|x| x.downcast_ref::<ForbiddenChar>()) {
            let what = format!(
                "the character U+{:04X} is not allowed in XML (XML 1.0 allows no control character but tab, line feed and carriage return, nor U+FFFE and U+FFFF): the file is damaged or not XML",
                f.ch as u32
            );
            return self.malformed(f.line, f.col, &what, Some(format!("U+{:04X}", f.ch as u32)));
        }
        if e.get_ref().is_some_and(|x| x.is::<TooLarge>()) {
            return self.malformed(
                line,
                None,
                &format!(
                    "a single tag or text is longer than {} MiB",
                    MAX_EVENT_BYTES >> 20
                ),
                None,
            );
        }
        Problem::file(
            Code::Io,
            Some(line),
            format!("The file could not be read: {e}"),
        )
    }

    pub(super) fn xml_error<C: Read, Rd: Events<Source = LineCounter<C>>>(
        &self,
        err: XmlError,
        rd: &Rd,
    ) -> Problem {
        let counter = rd.get_ref();
        let lag = counter.consumed.saturating_sub(rd.buffer_position());
        let (line, col) = counter.locate(rd.error_position() + lag);
        match err {
            XmlError::Io(e) => self.io_problem(&e, line),
            XmlError::Syntax(s) => {
                let what = match s {
                    SyntaxError::UnclosedTag => {
                        "a tag is not closed: the file ends before its `>`".to_string()
                    }
                    SyntaxError::UnclosedComment => {
                        "a comment is not closed: `-->` is missing".to_string()
                    }
                    SyntaxError::UnclosedCData => {
                        "a CDATA section is not closed: `]]>` is missing".to_string()
                    }
                    SyntaxError::UnclosedDoctype => {
                        "the DOCTYPE is not closed: `>` is missing".to_string()
                    }
                    SyntaxError::UnclosedPIOrXmlDecl => {
                        "a processing instruction or the XML declaration is not closed: `?>` is missing".to_string()
                    }
                    SyntaxError::InvalidBangMarkup => {
                        "`<!` starts neither a comment, a CDATA section nor a DOCTYPE".to_string()
                    }
                };
                self.malformed(line, col, &what, None)
            }
            XmlError::IllFormed(IllFormedError::MismatchedEndTag { expected, found }) => {
                let opened = self
                    .levels
                    .last()
                    .map(|l| format!(" (opened on line {})", l.line))
                    .unwrap_or_default();
                let what = format!(
                    "the end tag </{found}> does not close <{expected}>{opened}: a tag is misspelt or not closed"
                );
                self.malformed(line, col, &what, Some(format!("</{found}>")))
            }
            XmlError::IllFormed(IllFormedError::UnmatchedEndTag(name)) => self.malformed(
                line,
                col,
                &format!("the end tag </{name}> closes no open element"),
                Some(format!("</{name}>")),
            ),
            XmlError::IllFormed(other) => self.malformed(line, col, &other.to_string(), None),
            XmlError::InvalidAttr(a) => {
                self.malformed(line, col, &format!("an attribute is malformed: {a}"), None)
            }
            XmlError::Escape(e) => self.malformed(line, col, &e.to_string(), None),
            XmlError::Namespace(e) => self.malformed(
                line,
                col,
                &format!("a namespace declaration is wrong: {e}"),
                None,
            ),
            XmlError::Encoding(e) => Problem::file(
                Code::Encoding,
                Some(line),
                format!("The file is not valid UTF-8: {e}"),
            ),
        }
    }

    /// A character reference (`&#1;`) to a character that XML 1.0 forbids.
    pub(super) fn forbidden_reference(&self, ch: char, line: u64, col: Option<u64>) -> Problem {
        let what = format!(
            "a character reference names U+{:04X}, a character XML does not allow (XML 1.0 allows no control character but tab, line feed and carriage return, nor U+FFFE and U+FFFF)",
            ch as u32
        );
        self.malformed(line, col, &what, Some(format!("U+{:04X}", ch as u32)))
    }
}
