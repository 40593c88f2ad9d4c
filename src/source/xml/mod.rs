//! XML exports (issue #4): one document per record element, streamed.
//!
//! A mapping names the record element by an absolute path (`record = "/Export/Invoice"`),
//! the line elements by a path relative to the record (`lines = "Lines/Line"`), and each
//! field by a path relative to the record or the line: `Number`, `@id`, `Customer/Code`,
//! `Customer/@code`, `c:Amount` (a prefix declared in `namespaces`), `text()`.
//!
//! The file is read with quick-xml as a stream of events; only the values that the
//! mapping asks for are kept, and only for the record being read, so memory is bounded
//! by the largest record (plus one hash per document key, for duplicates), never by the
//! file.
//!
//! Bytes are decoded before quick-xml sees them ([`DecodeReader`]): a byte-order mark
//! wins, then `source.encoding` when the mapping sets it, then the `encoding` of the XML
//! declaration, then UTF-8. quick-xml always gets UTF-8 and is built without its own
//! decoding. Every byte is checked (`LineCounter`): invalid bytes are an `encoding` error
//! with their line.
//!
//! Lines are counted from what quick-xml consumes (`LineCounter`), incrementally;
//! every value carries the line of its element.
//!
//! Hostile files: a DOCTYPE with an internal subset (entity declarations, the
//! "billion laughs") is refused before anything is expanded; quick-xml never expands
//! entities other than the five predefined ones and character references, so an unknown
//! entity is a `malformed` error. Elements may nest [`MAX_DEPTH`] deep, and a single tag
//! or text run may be at most [`MAX_EVENT_BYTES`] long.
//!
//! The parts, in the order a byte meets them: `line_counter` (the buffer quick-xml
//! reads from: UTF-8 and XML's characters checked, lines indexed), `reader` (quick-xml's
//! plain or namespace-resolving reader), `matcher` (the state machine that follows the
//! mapping's `path`s through the events, with names looked up in a `name_table` and
//! values kept in a `row_buf`), `wellformed` and `syntax` (what quick-xml leaves
//! unchecked: attributes, DOCTYPEs, XML's rules for characters and names), `record` (a
//! finished record becomes a document) and `errors` (quick-xml's errors as problems
//! users can act on).

mod errors;
mod line_counter;
mod matcher;
mod name_table;
mod path;
mod reader;
mod record;
mod row_buf;
mod syntax;
#[cfg(test)]
mod tests;
mod wellformed;

pub use path::check_path;

use super::decode::{encoding_for_label, sniff, DecodeReader};
use super::decode::{Tap, TapReader};
use super::keys::SeenKeys;
use super::{DocumentSource, RawDocument, Slots, SourceError, SourceOptions};
use crate::problem::{quote, Code, Problem};
use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8};
use line_counter::LineCounter;
use matcher::{pump, State, Step};
use path::Paths;
use quick_xml::{NsReader, Reader};
use reader::{Stack, XmlReader};
use std::cell::RefCell;
use std::io::{self, Chain, Cursor, Read};
use std::rc::Rc;

/// The most attributes one element may have; more is `malformed`.
pub const MAX_ATTRIBUTES: usize = 10_000;

/// How deep elements may nest before the file is refused as malformed.
pub const MAX_DEPTH: usize = 256;
/// The longest single tag, text run, comment or CDATA section read (64 MiB).
pub const MAX_EVENT_BYTES: u64 = 64 << 20;

/// How many bytes are looked at for a byte-order mark and the XML declaration.
const HEAD: usize = 1024;

/// The bytes quick-xml reads: the file itself when it is UTF-8 (a UTF-8 byte-order mark
/// skipped), else the file decoded into UTF-8 ([`DecodeReader`]).
enum Input<R: Read> {
    Raw(Chain<Cursor<Vec<u8>>, TapReader<R>>),
    Decoded(DecodeReader<Chain<Cursor<Vec<u8>>, TapReader<R>>>),
}

impl<R: Read> Read for Input<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::Raw(r) => r.read(buf),
            Input::Decoded(r) => r.read(buf),
        }
    }
}

/// What an XML file without a byte-order mark says of its encoding (for [`sniff`]):
/// UTF-16 by the shape of its first `<?`, else the `encoding` of its declaration.
fn in_file_encoding(head: &[u8]) -> Result<Option<&'static Encoding>, Problem> {
    if head.starts_with(&[0x3C, 0, 0x3F, 0]) {
        return Ok(Some(UTF_16LE));
    }
    if head.starts_with(&[0, 0x3C, 0, 0x3F]) {
        return Ok(Some(UTF_16BE));
    }
    let Some(label) = declared_encoding(head) else {
        return Ok(None);
    };
    match encoding_for_label(&label) {
        // 8-bit bytes cannot be UTF-16 whatever the declaration says; read them as UTF-8.
        Some(e) if e == UTF_16LE || e == UTF_16BE => Ok(Some(UTF_8)),
        Some(e) => Ok(Some(e)),
        None => {
            let msg = format!(
                "The XML declaration names the encoding {}, which erpdrop cannot read (set source.encoding in the mapping, e.g. \"windows-1251\")",
                quote(&label)
            );
            Err(Problem::file(Code::Encoding, Some(1), &msg).with_value(label))
        }
    }
}

/// The encoding an XML file is read in, from its first bytes (up to 1,024) and the
/// mapping's `source.encoding`, as [`XmlSource`] reads it.
pub fn encoding_of(head: &[u8], named: Option<&'static Encoding>) -> Option<&'static Encoding> {
    sniff(&head[..head.len().min(HEAD)], named, in_file_encoding)
        .ok()
        .map(|(e, _)| e)
}

/// The `encoding` of an `<?xml ... ?>` declaration at the start of `head`.
fn declared_encoding(head: &[u8]) -> Option<String> {
    if !head.starts_with(b"<?xml") {
        return None;
    }
    let end = memchr::memmem::find(head, b"?>")?;
    let decl = &head[5..end];
    let at = memchr::memmem::find(decl, b"encoding")?;
    let mut rest = decl[at + 8..]
        .iter()
        .copied()
        .skip_while(u8::is_ascii_whitespace);
    if rest.next()? != b'=' {
        return None;
    }
    let mut rest = rest.skip_while(u8::is_ascii_whitespace);
    let q = rest.next()?;
    if q != b'"' && q != b'\'' {
        return None;
    }
    let label: Vec<u8> = rest.take_while(|&c| c != q).collect();
    Some(String::from_utf8_lossy(&label).trim().to_string())
}

/// An XML export read as a stream of documents.
pub struct XmlSource<R: Read> {
    reader: XmlReader<Stack<R>>,
    buf: Vec<u8>,
    st: State,
    tap: Rc<RefCell<Tap>>,
}

impl<R: Read> XmlSource<R> {
    /// Compiles the mapping's paths and finds the file's encoding. A problem here
    /// concerns the whole file.
    pub fn open(
        input: R,
        tap: Rc<RefCell<Tap>>,
        opts: &SourceOptions,
        slots: &Slots,
    ) -> Result<XmlSource<R>, Problem> {
        Self::open_with(input, tap, opts, slots, false)
    }

    /// [`open`](XmlSource::open); `resolve`: use the namespace-resolving reader even when
    /// no path needs it (tests compare the two readers).
    fn open_with(
        input: R,
        tap: Rc<RefCell<Tap>>,
        opts: &SourceOptions,
        slots: &Slots,
        resolve: bool,
    ) -> Result<XmlSource<R>, Problem> {
        let xml = &opts.xml;
        let paths = Paths::compile(
            xml.record.as_deref(),
            xml.lines.as_deref(),
            &xml.namespaces,
            slots,
        )?;
        let resolve = resolve || paths.need_namespaces();
        let st = State::new(paths, slots, opts.budget.key_window);
        let mut input = TapReader::new(input, tap.clone());
        let mut head = vec![0u8; HEAD];
        let mut got = 0;
        while got < HEAD {
            match input.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(Problem::file(
                        Code::Io,
                        None,
                        format!("The file could not be read: {e}"),
                    ))
                }
            }
        }
        head.truncate(got);
        let (encoding, bom) = sniff(&head, opts.encoding, in_file_encoding)?;
        let input = if encoding == UTF_8 {
            // UTF-8 is read as it is (the byte-order mark skipped), checked by LineCounter
            let mut head = Cursor::new(head);
            head.set_position(bom as u64);
            Input::Raw(head.chain(input))
        } else {
            Input::Decoded(DecodeReader::new(Cursor::new(head).chain(input), encoding))
        };
        let counter = LineCounter::new(input);
        let mut reader = if resolve {
            XmlReader::Ns(NsReader::from_reader(counter))
        } else {
            XmlReader::Plain(Reader::from_reader(counter))
        };
        let cfg = match &mut reader {
            XmlReader::Plain(r) => r.config_mut(),
            XmlReader::Ns(r) => r.config_mut(),
        };
        cfg.trim_text(false);
        cfg.expand_empty_elements = false;
        cfg.check_end_names = true;
        cfg.check_comments = true;
        cfg.allow_unmatched_ends = false;

        Ok(XmlSource {
            reader,
            buf: Vec::new(),
            st,
            tap,
        })
    }
}

impl<R: Read> XmlSource<R> {
    /// For a second pass over a file: the keys (hashes) that occur more than once, as
    /// [`SourceError::Repeated`] gave them; each record after the first with such a key
    /// gets a `duplicate` problem naming the first one's line.
    pub fn with_repeats(mut self, repeats: Vec<u64>) -> XmlSource<R> {
        self.st.keys = SeenKeys::known(repeats);
        self
    }
}

impl<R: Read> DocumentSource for XmlSource<R> {
    fn next_document(&mut self) -> Option<Result<RawDocument, SourceError>> {
        if self.st.finished {
            return None;
        }
        let step = match &mut self.reader {
            XmlReader::Plain(r) => pump(r, &mut self.buf, &mut self.st),
            XmlReader::Ns(r) => pump(r, &mut self.buf, &mut self.st),
        };
        match step {
            Step::Document(doc) => Some(Ok(doc)),
            Step::Fatal(p) => {
                self.st.finished = true;
                Some(Err(SourceError::Fatal(p)))
            }
            Step::Eof(line) => {
                self.st.finished = true;
                if let Err(p) = self.st.eof(line) {
                    return Some(Err(SourceError::Fatal(p)));
                }
                // keys that came back after leaving the key log's window
                match std::mem::take(&mut self.st.keys).finish() {
                    Ok(Some(r)) => Some(Err(SourceError::Repeated(r))),
                    Ok(None) => None,
                    Err(e) => Some(Err(SourceError::Environment(format!(
                        "cannot read a temporary file while reading the file: {e}"
                    )))),
                }
            }
        }
    }

    fn bytes_read(&self) -> u64 {
        self.tap.borrow().bytes
    }
}
