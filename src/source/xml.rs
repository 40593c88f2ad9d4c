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
//! decoding. Every byte is checked (`Utf8Check`): invalid bytes are an `encoding` error
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

use super::decode::{encoding_error, encoding_for_label, hex_bytes, DecodeReader, EncodingError};
use super::decode::{Tap, TapReader};
use super::{DocumentSource, RawDocument, RawRow, Slots, SourceError};
use crate::keylog::{key_hash, KeyLog};
use crate::mapping::SourceOptions;
use crate::problem::{quote, with_location, Code, Problem, Stage};
use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8};
use indexmap::IndexMap;
use quick_xml::errors::{Error as XmlError, IllFormedError, SyntaxError};
use quick_xml::escape::{unescape, EscapeError};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{QName, ResolveResult};
use quick_xml::NsReader;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufRead, Chain, Cursor, Read};
use std::rc::Rc;

/// How deep elements may nest before the file is refused as malformed.
pub const MAX_DEPTH: usize = 256;
/// The longest single tag, text run, comment or CDATA section read (64 MiB).
pub const MAX_EVENT_BYTES: u64 = 64 << 20;
/// How many of the last bytes read are kept to place an error on its line and column.
const RING: usize = 4096;
/// How many bytes are looked at for a byte-order mark and the XML declaration.
const HEAD: usize = 1024;

// ---------------------------------------------------------------------------------------
// Paths

/// The namespace part of a name test.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NsTest {
    /// No prefix in the mapping: any namespace (match by local name).
    Any,
    /// A prefix declared in the mapping's `namespaces`: that namespace URI.
    Uri(Vec<u8>),
    /// A prefix the mapping does not declare: the prefix as written in the file.
    Prefix(Vec<u8>),
}

/// One step of a path: `Invoice`, `c:Amount`, `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NameTest {
    /// `None` for `*`.
    local: Option<Vec<u8>>,
    ns: NsTest,
}

impl NameTest {
    /// Whether the element `name` (local part `local`, namespace resolved by `res` when
    /// some test needs it) passes this test.
    fn matches_element(&self, name: QName, local: &[u8], res: &ResolveResult) -> bool {
        if let Some(l) = &self.local {
            if local != l.as_slice() {
                return false;
            }
        }
        match &self.ns {
            NsTest::Any => true,
            NsTest::Uri(u) => matches!(res, ResolveResult::Bound(n) if n.as_ref() == u.as_slice()),
            NsTest::Prefix(p) => name.prefix().is_some_and(|x| x.as_ref() == p.as_slice()),
        }
    }
}

/// What a path reads at the element it reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// The element's text content: all its text and CDATA, descendants included.
    Element,
    /// `text()`: the element's own text and CDATA, not its children's.
    OwnText,
    /// `@name`: an attribute of the element.
    Attr(NameTest),
}

/// A compiled path, relative to the record or line element.
#[derive(Debug, Clone, PartialEq, Eq)]
struct XPath {
    steps: Vec<NameTest>,
    target: Target,
}

fn parse_name(s: &str, ns: &IndexMap<String, String>) -> Result<NameTest, String> {
    let (prefix, local) = match s.split_once(':') {
        Some((p, l)) => (Some(p), l),
        None => (None, s),
    };
    let check = |part: &str| -> Result<(), String> {
        if part.is_empty() {
            return Err(format!("{s:?} is not a name"));
        }
        if part.contains('[') {
            return Err(format!(
                "{s:?}: conditions in [brackets] are not supported (the first matching element is taken)"
            ));
        }
        if part.contains('(') {
            return Err(format!(
                "{s:?}: the only function supported is text(), as the last step"
            ));
        }
        match part
            .chars()
            .find(|&c| c.is_whitespace() || "/@[]()=\"'<>&,;:|!?{}$#%^+`\\~".contains(c))
        {
            Some(c) => Err(format!("{s:?}: {c:?} cannot appear in a name")),
            None => Ok(()),
        }
    };
    let local = if local == "*" {
        None
    } else {
        check(local)?;
        Some(local.as_bytes().to_vec())
    };
    let ns = match prefix {
        None | Some("*") => NsTest::Any,
        Some(p) => {
            check(p)?;
            match ns.get(p) {
                Some(uri) => NsTest::Uri(uri.as_bytes().to_vec()),
                None => NsTest::Prefix(p.as_bytes().to_vec()),
            }
        }
    };
    Ok(NameTest { local, ns })
}

/// Parses a field or lines path (relative to the record or line element).
fn parse_relative(path: &str, ns: &IndexMap<String, String>) -> Result<XPath, String> {
    let p = path.trim();
    if p.is_empty() {
        return Err("the path is empty".into());
    }
    if p.starts_with('/') {
        return Err("paths of fields and lines are relative to the record (write \"Customer/Code\", not \"/Export/Invoice/Customer/Code\")".into());
    }
    let segs: Vec<&str> = p.split('/').collect();
    let mut steps = Vec::new();
    let mut target = Target::Element;
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        match seg.trim() {
            "" => {
                return Err(
                    "it has an empty step (`//`, any depth, is only supported at the start of `record`)"
                        .into(),
                )
            }
            "." => {}
            ".." => return Err("`..` is not supported: paths go down from the record or line".into()),
            "text()" => {
                if !last {
                    return Err("text() must be the last step".into());
                }
                target = Target::OwnText;
            }
            s if s.starts_with('@') => {
                if !last {
                    return Err("an attribute (@name) must be the last step".into());
                }
                target = Target::Attr(parse_name(&s[1..], ns)?);
            }
            s => steps.push(parse_name(s, ns)?),
        }
    }
    Ok(XPath { steps, target })
}

/// The record path: `/Export/Invoice` (from the root), or `//Invoice` or `Invoice` (at
/// any depth).
#[derive(Debug, Clone)]
struct RecordPath {
    text: String,
    anywhere: bool,
    steps: Vec<NameTest>,
    /// The steps as written, for messages.
    names: Vec<String>,
}

fn parse_record(path: &str, ns: &IndexMap<String, String>) -> Result<RecordPath, String> {
    let p = path.trim();
    let (anywhere, rest) = if let Some(r) = p.strip_prefix("//") {
        (true, r)
    } else if let Some(r) = p.strip_prefix('/') {
        (false, r)
    } else {
        (true, p)
    };
    if rest.trim().is_empty() {
        return Err(
            "the record path needs at least one element name, e.g. \"/Export/Invoice\"".into(),
        );
    }
    let xp = parse_relative(rest, ns)?;
    if xp.target != Target::Element {
        return Err("the record path names elements only (no @attribute or text())".into());
    }
    if xp.steps.is_empty() {
        return Err("the record path needs at least one element name".into());
    }
    if xp.steps.len() > 64 {
        return Err("the record path is longer than 64 steps".into());
    }
    let names = rest
        .split('/')
        .map(str::trim)
        .filter(|s| *s != ".")
        .map(str::to_string)
        .collect();
    Ok(RecordPath {
        text: p.to_string(),
        anywhere,
        steps: xp.steps,
        names,
    })
}

/// Checks an XML path of a mapping: `record` when `is_record`, else a `lines` or field
/// path. `Err` is a sentence saying what is wrong (for `erpdrop check`).
pub fn check_path(
    path: &str,
    is_record: bool,
    namespaces: &IndexMap<String, String>,
) -> Result<(), String> {
    if is_record {
        parse_record(path, namespaces).map(|_| ())
    } else {
        parse_relative(path, namespaces).map(|_| ())
    }
}

// ---------------------------------------------------------------------------------------
// Byte layers under quick-xml

/// A single tag or text run longer than [`MAX_EVENT_BYTES`].
#[derive(Debug)]
struct TooLarge;

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a single tag or text is longer than {MAX_EVENT_BYTES} bytes"
        )
    }
}

impl std::error::Error for TooLarge {}

/// Checks that a stream is UTF-8, passing on the valid bytes before an invalid sequence
/// and failing only when the reader reaches it, so that the error is raised inside the
/// element that holds the bad bytes.
struct Utf8Check<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    valid_end: usize,
    end: usize,
    /// Newlines in the bytes handed out so far.
    newlines: u64,
    error: Option<EncodingError>,
    eof: bool,
}

impl<R: Read> Utf8Check<R> {
    fn new(inner: R) -> Self {
        Utf8Check {
            inner,
            buf: vec![0; 64 * 1024],
            start: 0,
            valid_end: 0,
            end: 0,
            newlines: 0,
            error: None,
            eof: false,
        }
    }
}

fn count_newlines(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

impl<R: Read> Read for Utf8Check<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if self.start < self.valid_end {
                let n = (self.valid_end - self.start).min(out.len());
                let chunk = &self.buf[self.start..self.start + n];
                out[..n].copy_from_slice(chunk);
                self.newlines += count_newlines(chunk);
                self.start += n;
                return Ok(n);
            }
            if let Some(e) = self.error.take() {
                self.eof = true;
                self.end = 0;
                self.valid_end = 0;
                self.start = 0;
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            if self.eof {
                return Ok(0);
            }
            // Keep an incomplete sequence (at most 3 bytes) and read more after it.
            self.buf.copy_within(self.valid_end..self.end, 0);
            self.end -= self.valid_end;
            self.start = 0;
            self.valid_end = 0;
            let n = self.inner.read(&mut self.buf[self.end..])?;
            if n == 0 {
                self.eof = true;
                if self.end > 0 {
                    self.error = Some(EncodingError {
                        encoding: "UTF-8",
                        line: self.newlines + 1,
                        bytes: self.buf[..self.end].to_vec(),
                    });
                    self.end = 0;
                }
                continue;
            }
            self.end += n;
            match std::str::from_utf8(&self.buf[..self.end]) {
                Ok(_) => self.valid_end = self.end,
                Err(e) => {
                    self.valid_end = e.valid_up_to();
                    if let Some(len) = e.error_len() {
                        let at = self.valid_end;
                        self.error = Some(EncodingError {
                            encoding: "UTF-8",
                            line: self.newlines + count_newlines(&self.buf[..at]) + 1,
                            bytes: self.buf[at..at + len].to_vec(),
                        });
                        self.end = at;
                    }
                }
            }
        }
    }
}

/// The buffered reader quick-xml reads from: counts the newlines of what quick-xml
/// consumes (so the line of every event is known without rescanning), keeps the last
/// [`RING`] bytes to place errors, and refuses a single event longer than
/// [`MAX_EVENT_BYTES`].
struct LineCounter<R> {
    inner: R,
    /// The bytes read and not yet consumed are `buf[pos..end]`; `buf[..pos]` were
    /// consumed, and are kept until the next refill (for `locate`).
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    consumed: u64,
    newlines: u64,
    ring: Box<[u8]>,
    /// `consumed` and the line when the current event started.
    mark: u64,
    mark_line: u64,
}

impl<R: Read> LineCounter<R> {
    fn new(inner: R) -> Self {
        LineCounter {
            inner,
            buf: vec![0; 64 * 1024].into_boxed_slice(),
            pos: 0,
            end: 0,
            consumed: 0,
            newlines: 0,
            ring: vec![0; RING].into_boxed_slice(),
            mark: 0,
            mark_line: 1,
        }
    }

    /// The line of the next byte to be consumed.
    fn line(&self) -> u64 {
        self.newlines + 1
    }

    fn mark(&mut self) {
        self.mark = self.consumed;
        self.mark_line = self.line();
    }

    /// Line and (character) column of a position already consumed. Positions further
    /// back than the kept bytes get the line of the current event and no column.
    fn locate(&self, pos: u64) -> (u64, Option<u64>) {
        let pos = pos.min(self.consumed);
        if self.consumed - pos > RING as u64 {
            return (self.mark_line, None);
        }
        // consumed bytes of the current buffer are there; older ones are in the ring
        let buf_start = self.consumed - self.pos as u64;
        let byte = |p: u64| {
            if p >= buf_start {
                self.buf[(p - buf_start) as usize]
            } else {
                self.ring[(p % RING as u64) as usize]
            }
        };
        let after = (pos..self.consumed).filter(|&p| byte(p) == b'\n').count() as u64;
        let line = self.newlines + 1 - after;
        let floor = self.consumed.saturating_sub(RING as u64);
        let mut chars = 0u64;
        let mut p = pos;
        let col = loop {
            if p == 0 {
                break Some(chars + 1);
            }
            if p == floor {
                break None;
            }
            let b = byte(p - 1);
            if b == b'\n' {
                break Some(chars + 1);
            }
            if b & 0xC0 != 0x80 {
                chars += 1;
            }
            p -= 1;
        };
        (line, col)
    }
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = {
            let avail = self.fill_buf()?;
            let n = avail.len().min(buf.len());
            buf[..n].copy_from_slice(&avail[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for LineCounter<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.consumed - self.mark > MAX_EVENT_BYTES {
            return Err(io::Error::new(io::ErrorKind::InvalidData, TooLarge));
        }
        if self.pos == self.end {
            // Keep the last consumed bytes in the ring before the buffer is reused: one
            // copy of at most RING bytes per refill, not one per event.
            let tail = &self.buf[self.end.saturating_sub(RING)..self.end];
            let from = self.consumed - tail.len() as u64;
            let start = (from % RING as u64) as usize;
            let first = (RING - start).min(tail.len());
            self.ring[start..start + first].copy_from_slice(&tail[..first]);
            self.ring[..tail.len() - first].copy_from_slice(&tail[first..]);
            self.pos = 0;
            self.end = 0;
            self.end = loop {
                match self.inner.read(&mut self.buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            };
        }
        Ok(&self.buf[self.pos..self.end])
    }

    fn consume(&mut self, amt: usize) {
        let amt = amt.min(self.end - self.pos);
        self.newlines += count_newlines(&self.buf[self.pos..self.pos + amt]);
        self.pos += amt;
        self.consumed += amt as u64;
    }
}

/// Finds the encoding: BOM, then the mapping's `encoding`, then the XML declaration.
fn sniff(head: &[u8], opts: &SourceOptions) -> Result<&'static Encoding, Problem> {
    if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Ok(UTF_8);
    }
    if head.starts_with(&[0xFF, 0xFE]) {
        return Ok(UTF_16LE);
    }
    if head.starts_with(&[0xFE, 0xFF]) {
        return Ok(UTF_16BE);
    }
    if opts.encoding_explicit {
        return Ok(opts.csv.encoding);
    }
    if head.starts_with(&[0x3C, 0, 0x3F, 0]) {
        return Ok(UTF_16LE);
    }
    if head.starts_with(&[0, 0x3C, 0, 0x3F]) {
        return Ok(UTF_16BE);
    }
    let Some(label) = declared_encoding(head) else {
        return Ok(UTF_8);
    };
    match encoding_for_label(&label) {
        // 8-bit bytes cannot be UTF-16 whatever the declaration says; read them as UTF-8.
        Some(e) if e == UTF_16LE || e == UTF_16BE => Ok(UTF_8),
        Some(e) => Ok(e),
        None => {
            let msg = format!(
                "The XML declaration names the encoding {}, which erpdrop cannot read (set source.encoding in the mapping, e.g. \"windows-1251\")",
                quote(&label)
            );
            Err(
                Problem::file(Code::Encoding, Some(1), with_location(&msg, Some(1), None))
                    .with_value(label),
            )
        }
    }
}

/// The `encoding` of an `<?xml ... ?>` declaration at the start of `head`.
fn declared_encoding(head: &[u8]) -> Option<String> {
    if !head.starts_with(b"<?xml") {
        return None;
    }
    let end = head.windows(2).position(|w| w == b"?>")?;
    let decl = &head[5..end];
    let at = decl.windows(8).position(|w| w == b"encoding")?;
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

// ---------------------------------------------------------------------------------------
// The reader

/// Which list of slots a path fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Space {
    Header,
    Key,
    Line,
}

#[derive(Debug, Clone, Copy)]
enum Role {
    Slot(Space, usize),
    /// The `lines` path: each match starts a line.
    Lines,
}

#[derive(Debug, Clone)]
struct Compiled {
    path: XPath,
    role: Role,
    /// Relative to the line element (else to the record).
    at_line: bool,
}

#[derive(Debug)]
enum Val {
    Unset,
    Capturing,
    Set(String, u64),
}

/// Text being collected for a slot while its element is open.
#[derive(Debug)]
struct Capture {
    space: Space,
    slot: usize,
    depth: usize,
    own: bool,
    text: String,
    line: u64,
}

#[derive(Debug)]
struct LineState {
    depth: usize,
    line: u64,
    vals: Vec<Val>,
}

#[derive(Debug)]
struct RecordState {
    depth: usize,
    line: u64,
    header: Vec<Val>,
    key: Vec<Val>,
    lines: Vec<RawRow>,
    current: Option<LineState>,
}

/// One open element.
#[derive(Debug)]
struct Level {
    /// End of this element's `/name` in `State::names`.
    name_end: usize,
    line: u64,
    /// Bit k: this element matches the record path's steps up to k.
    rec: u64,
    /// The paths still matching below this element: `State::alive[alive_start..alive_end]`.
    alive_start: u32,
    alive_end: u32,
}

fn unset(n: usize) -> Vec<Val> {
    (0..n).map(|_| Val::Unset).collect()
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// XML line-end handling: `\r\n` and a lone `\r` become `\n`.
fn normalize_newlines(s: &str) -> Cow<'_, str> {
    if s.contains('\r') {
        Cow::Owned(s.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(s)
    }
}

/// Everything but the quick-xml reader, so that events (borrowing the reader's buffer)
/// can be handled while the reader is looked at.
struct State {
    record: RecordPath,
    paths: Vec<Compiled>,
    record_anchored: Vec<u32>,
    line_anchored: Vec<u32>,
    key_names: Vec<String>,
    n_header: usize,
    n_key: usize,
    n_line: usize,
    levels: Vec<Level>,
    names: Vec<u8>,
    alive: Vec<u32>,
    rec: Option<RecordState>,
    captures: Vec<Capture>,
    /// Some element test names a namespace URI: elements must be resolved.
    uses_ns: bool,
    /// The document keys seen (by hash), with the line of their record.
    keys: KeyLog,
    /// Second pass over a file with keys that repeat outside the key log's window:
    /// those keys' hashes, and the line of the first record of each.
    repeats: Option<(Vec<u64>, HashMap<u64, u64>)>,
    root_seen: bool,
    root_closed: bool,
    root_name: String,
    records: u64,
    /// The most record-path steps any element matched.
    best: usize,
    finished: bool,
}

type Stack<R> = LineCounter<Utf8Check<DecodeReader<Chain<Cursor<Vec<u8>>, TapReader<R>>>>>;

/// An XML export read as a stream of documents.
pub struct XmlSource<R: Read> {
    reader: NsReader<Stack<R>>,
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
        let ns = &opts.namespaces;
        let bad_path = |path: &str, what: &str, msg: String| {
            Problem::file(
                Code::MissingColumn,
                None,
                format!(
                    "The mapping's {what} {} is not a valid XML path: {msg}",
                    quote(path)
                ),
            )
            .with_column(path)
            .with_value(path)
        };
        let record_text = opts.record.as_deref().unwrap_or("");
        let record =
            parse_record(record_text, ns).map_err(|m| bad_path(record_text, "source.record", m))?;
        let mut paths = Vec::new();
        let mut add = |list: &[String], space: Space, at_line: bool| -> Result<(), Problem> {
            for (i, p) in list.iter().enumerate() {
                let path = parse_relative(p, ns).map_err(|m| bad_path(p, "field path", m))?;
                paths.push(Compiled {
                    path,
                    role: Role::Slot(space, i),
                    at_line,
                });
            }
            Ok(())
        };
        add(&slots.header, Space::Header, false)?;
        add(&slots.key, Space::Key, false)?;
        add(&slots.lines, Space::Line, true)?;
        if let Some(l) = &opts.lines {
            let path = parse_relative(l, ns).map_err(|m| bad_path(l, "source.lines", m))?;
            if path.target != Target::Element || path.steps.is_empty() {
                return Err(bad_path(
                    l,
                    "source.lines",
                    "it must name elements below the record, e.g. \"Lines/Line\"".into(),
                ));
            }
            paths.push(Compiled {
                path,
                role: Role::Lines,
                at_line: false,
            });
        }
        let record_anchored = (0..paths.len() as u32)
            .filter(|&i| !paths[i as usize].at_line)
            .collect();
        let line_anchored = (0..paths.len() as u32)
            .filter(|&i| paths[i as usize].at_line)
            .collect();

        let uses_ns = record
            .steps
            .iter()
            .chain(paths.iter().flat_map(|c| c.path.steps.iter()))
            .any(|t| matches!(t.ns, NsTest::Uri(_)));
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
        let encoding = sniff(&head, opts)?;
        let decoded = DecodeReader::new(Cursor::new(head).chain(input), encoding);
        let mut reader = NsReader::from_reader(LineCounter::new(Utf8Check::new(decoded)));
        let cfg = reader.config_mut();
        cfg.trim_text(false);
        cfg.expand_empty_elements = false;
        cfg.check_end_names = true;
        cfg.check_comments = true;
        cfg.allow_unmatched_ends = false;

        Ok(XmlSource {
            reader,
            buf: Vec::new(),
            st: State {
                record,
                paths,
                record_anchored,
                line_anchored,
                key_names: slots.key.clone(),
                n_header: slots.header.len(),
                n_key: slots.key.len(),
                n_line: slots.lines.len(),
                levels: Vec::new(),
                names: Vec::new(),
                alive: Vec::new(),
                rec: None,
                captures: Vec::new(),
                keys: KeyLog::new(),
                repeats: None,
                uses_ns,
                root_seen: false,
                root_closed: false,
                root_name: String::new(),
                records: 0,
                best: 0,
                finished: false,
            },
            tap,
        })
    }
}

impl<R: Read> XmlSource<R> {
    /// For a second pass over a file: the keys (hashes) that occur more than once, as
    /// [`SourceError::Repeated`] gave them; each record after the first with such a key
    /// gets a `duplicate` problem naming the first one's line.
    pub fn with_repeats(mut self, mut repeats: Vec<u64>) -> XmlSource<R> {
        repeats.sort_unstable();
        self.st.repeats = Some((repeats, HashMap::new()));
        self
    }
}

impl<R: Read> DocumentSource for XmlSource<R> {
    fn next_document(&mut self) -> Option<Result<RawDocument, SourceError>> {
        if self.st.finished {
            return None;
        }
        loop {
            self.reader.get_mut().mark();
            let line = self.reader.get_ref().line();
            self.buf.clear();
            let step = match self.reader.read_event_into(&mut self.buf) {
                Ok(Event::Start(e)) => self.st.start(&e, false, line, &self.reader),
                Ok(Event::Empty(e)) => self.st.start(&e, true, line, &self.reader),
                Ok(Event::End(_)) => Ok(self.st.end_element()),
                Ok(Event::Text(t)) => self.st.text(&t, false, line).map(|_| None),
                Ok(Event::CData(t)) => self.st.text(&t, true, line).map(|_| None),
                Ok(Event::DocType(d)) => self.st.doctype(&d, line).map(|_| None),
                Ok(Event::Eof) => {
                    self.st.finished = true;
                    if let Err(p) = self.st.eof(line) {
                        return Some(Err(SourceError::Fatal(p)));
                    }
                    if self.st.repeats.is_some() {
                        return None;
                    }
                    // keys that came back after leaving the key log's window
                    return match std::mem::take(&mut self.st.keys).repeated() {
                        Ok((r, true)) => Some(Err(SourceError::Repeated(r))),
                        Ok(_) => None,
                        Err(e) => Some(Err(SourceError::Fatal(Problem::file(
                            Code::Io,
                            None,
                            format!("Cannot read a temporary file while reading the file: {e}"),
                        )))),
                    };
                }
                Ok(Event::Decl(_) | Event::PI(_) | Event::Comment(_)) => Ok(None),
                Err(e) => Err(self.st.xml_error(e, &self.reader)),
            };
            match step {
                Ok(Some(doc)) => return Some(Ok(doc)),
                Ok(None) => {}
                Err(p) => {
                    self.st.finished = true;
                    return Some(Err(SourceError::Fatal(p)));
                }
            }
        }
    }

    fn bytes_read(&self) -> u64 {
        self.tap.borrow().bytes
    }
}

impl State {
    /// The open elements as a path, `/Export/Invoice/Lines`.
    fn element_path(&self) -> Option<String> {
        (!self.names.is_empty()).then(|| lossy(&self.names))
    }

    fn malformed(&self, line: u64, col: Option<u64>, what: &str, value: Option<String>) -> Problem {
        let msg = format!("The file is not well-formed XML: {what}");
        let message = match col {
            Some(c) => format!("{msg} (line {line}, character {c})"),
            None => with_location(&msg, Some(line), None),
        };
        Problem {
            stage: Stage::Read,
            document: None,
            line: Some(line),
            column: self.element_path(),
            field: None,
            value,
            code: Code::Malformed,
            message,
            status: None,
        }
    }

    fn escape_problem(&self, e: EscapeError, text: &str, line: u64) -> Problem {
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
            return Problem {
                stage: Stage::Read,
                document: None,
                line: Some(enc.line),
                column: column.clone(),
                field: None,
                value: Some(hex_bytes(&enc.bytes)),
                code: Code::Encoding,
                message: with_location(&msg, Some(enc.line), column.as_deref()),
                status: None,
            };
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

    fn xml_error<C: Read>(&self, err: XmlError, rd: &NsReader<LineCounter<C>>) -> Problem {
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
                with_location(
                    &format!("The file is not valid UTF-8: {e}"),
                    Some(line),
                    None,
                ),
            ),
        }
    }

    fn doctype(&self, d: &[u8], line: u64) -> Result<(), Problem> {
        // `<!DOCTYPE Export SYSTEM "export.dtd">` names a DTD that is never read; an
        // internal subset `[...]` may declare entities, which are refused.
        if d.contains(&b'[') || d.windows(8).any(|w| w.eq_ignore_ascii_case(b"<!ENTITY")) {
            let shown: String = String::from_utf8_lossy(d).chars().take(60).collect();
            return Err(self.malformed(
                line,
                None,
                "the file has a DOCTYPE with declarations: DTDs and entity declarations are not allowed (they can make a small file expand without limit)",
                Some(format!("<!DOCTYPE {}", shown.trim())),
            ));
        }
        Ok(())
    }

    fn check_attributes(&self, e: &BytesStart, line: u64) -> Result<(), Problem> {
        for a in e.attributes() {
            match a {
                Err(err) => {
                    return Err(self.malformed(
                        line,
                        None,
                        &format!(
                            "an attribute of <{}> is malformed: {err}",
                            lossy(e.name().as_ref())
                        ),
                        None,
                    ))
                }
                Ok(a) if a.value.contains(&b'&') => {
                    let s = String::from_utf8_lossy(&a.value);
                    if let Err(err) = unescape(&s) {
                        return Err(self.escape_problem(err, &s, line));
                    }
                }
                Ok(_) => {}
            }
        }
        Ok(())
    }

    fn start<C: BufRead>(
        &mut self,
        e: &BytesStart,
        empty: bool,
        line: u64,
        rd: &NsReader<C>,
    ) -> Result<Option<RawDocument>, Problem> {
        let depth = self.levels.len() + 1;
        let qname = e.name();
        if self.root_closed {
            return Err(self.malformed(
                line,
                None,
                &format!(
                    "a second root element <{}> follows the end of <{}>",
                    lossy(qname.as_ref()),
                    self.root_name
                ),
                Some(lossy(qname.as_ref())),
            ));
        }
        if depth > MAX_DEPTH {
            return Err(self.malformed(
                line,
                None,
                &format!("elements are nested more than {MAX_DEPTH} deep"),
                None,
            ));
        }
        if !self.root_seen {
            self.root_seen = true;
            self.root_name = lossy(qname.as_ref());
        }
        self.check_attributes(e, line)?;
        // the local name once per element; the namespace only where a path asks for one
        let local = qname.local_name();
        let local = local.as_ref();
        let res = if self.uses_ns {
            rd.resolve_element(qname).0
        } else {
            ResolveResult::Unbound
        };

        let mut rec_bits = 0u64;
        let mut starts_record = false;
        if self.rec.is_none() {
            let parent = self.levels.last().map_or(0, |l| l.rec);
            let n = self.record.steps.len();
            for k in 0..n {
                let prev = if k == 0 {
                    self.record.anywhere || depth == 1
                } else {
                    parent & (1 << (k - 1)) != 0
                };
                if prev && self.record.steps[k].matches_element(qname, local, &res) {
                    rec_bits |= 1 << k;
                    self.best = self.best.max(k + 1);
                }
            }
            starts_record = rec_bits & (1 << (n - 1)) != 0;
        }

        self.names.push(b'/');
        self.names.extend_from_slice(qname.as_ref());
        let alive_start = self.alive.len() as u32;
        self.levels.push(Level {
            name_end: self.names.len(),
            line,
            rec: rec_bits,
            alive_start,
            alive_end: alive_start,
        });
        if starts_record {
            self.records += 1;
            self.rec = Some(RecordState {
                depth,
                line,
                header: unset(self.n_header),
                key: unset(self.n_key),
                lines: Vec::new(),
                current: None,
            });
            for i in 0..self.record_anchored.len() {
                let p = self.record_anchored[i];
                self.alive.push(p);
                if self.paths[p as usize].path.steps.is_empty() {
                    self.full_match(p, e, line, depth, rd)?;
                }
            }
        } else if let Some(rec) = &self.rec {
            let record_depth = rec.depth;
            let line_depth = rec.current.as_ref().map_or(usize::MAX, |l| l.depth);
            let (from, to) = {
                let parent = &self.levels[depth - 2];
                (parent.alive_start, parent.alive_end)
            };
            for i in from..to {
                let p = self.alive[i as usize];
                let c = &self.paths[p as usize];
                let base = if c.at_line { line_depth } else { record_depth };
                let r = depth.saturating_sub(base);
                let steps = &c.path.steps;
                if r >= 1 && r <= steps.len() && steps[r - 1].matches_element(qname, local, &res) {
                    let full = r == steps.len();
                    self.alive.push(p);
                    if full {
                        self.full_match(p, e, line, depth, rd)?;
                    }
                }
            }
        }
        if let Some(l) = self.levels.last_mut() {
            l.alive_end = self.alive.len() as u32;
        }
        if empty {
            return Ok(self.end_element());
        }
        Ok(None)
    }

    fn val(&mut self, space: Space, slot: usize) -> Option<&mut Val> {
        let rec = self.rec.as_mut()?;
        match space {
            Space::Header => rec.header.get_mut(slot),
            Space::Key => rec.key.get_mut(slot),
            Space::Line => rec.current.as_mut()?.vals.get_mut(slot),
        }
    }

    /// Path `p` reaches element `e`.
    fn full_match<C: BufRead>(
        &mut self,
        p: u32,
        e: &BytesStart,
        line: u64,
        depth: usize,
        rd: &NsReader<C>,
    ) -> Result<(), Problem> {
        let role = self.paths[p as usize].role;
        match role {
            Role::Lines => {
                let n_line = self.n_line;
                let Some(rec) = self.rec.as_mut() else {
                    return Ok(());
                };
                if rec.current.is_some() {
                    return Ok(());
                }
                rec.current = Some(LineState {
                    depth,
                    line,
                    vals: unset(n_line),
                });
                for j in 0..self.line_anchored.len() {
                    let q = self.line_anchored[j];
                    self.alive.push(q);
                    if self.paths[q as usize].path.steps.is_empty() {
                        self.full_match(q, e, line, depth, rd)?;
                    }
                }
            }
            Role::Slot(space, slot) => {
                if !matches!(self.val(space, slot), Some(Val::Unset)) {
                    return Ok(());
                }
                let value = match &self.paths[p as usize].path.target {
                    Target::Element | Target::OwnText => {
                        let own = self.paths[p as usize].path.target == Target::OwnText;
                        self.captures.push(Capture {
                            space,
                            slot,
                            depth,
                            own,
                            text: String::new(),
                            line,
                        });
                        Val::Capturing
                    }
                    Target::Attr(test) => match self.find_attr(e, test, rd, line)? {
                        Some(v) => Val::Set(v, line),
                        None => return Ok(()),
                    },
                };
                if let Some(v) = self.val(space, slot) {
                    *v = value;
                }
            }
        }
        Ok(())
    }

    /// The value of the attribute of `e` that `test` names; an unprefixed attribute wins
    /// over a prefixed one with the same local name.
    fn find_attr<C: BufRead>(
        &self,
        e: &BytesStart,
        test: &NameTest,
        rd: &NsReader<C>,
        line: u64,
    ) -> Result<Option<String>, Problem> {
        let mut found = None;
        for a in e.attributes().flatten() {
            let key = a.key;
            let prefix = key.prefix();
            if key.as_ref() == b"xmlns" || prefix.is_some_and(|p| p.as_ref() == b"xmlns") {
                continue;
            }
            if let Some(l) = &test.local {
                if key.local_name().as_ref() != l.as_slice() {
                    continue;
                }
            }
            let ok = match &test.ns {
                NsTest::Any => true,
                NsTest::Uri(u) => matches!(rd.resolve_attribute(key).0,
                    ResolveResult::Bound(n) if n.as_ref() == u.as_slice()),
                NsTest::Prefix(p) => prefix.is_some_and(|x| x.as_ref() == p.as_slice()),
            };
            if !ok {
                continue;
            }
            let unprefixed = prefix.is_none();
            if found.is_none() || unprefixed {
                found = Some(a);
            }
            if unprefixed {
                break;
            }
        }
        let Some(a) = found else {
            return Ok(None);
        };
        // Attribute-value normalisation: each line end or tab is a space.
        let raw = String::from_utf8_lossy(&a.value);
        let norm = raw.replace("\r\n", " ").replace(['\r', '\n', '\t'], " ");
        match unescape(&norm) {
            Ok(v) => Ok(Some(v.into_owned())),
            Err(err) => Err(self.escape_problem(err, &norm, line)),
        }
    }

    fn text(&mut self, raw: &[u8], cdata: bool, line: u64) -> Result<(), Problem> {
        if self.levels.is_empty() {
            if raw.iter().all(u8::is_ascii_whitespace) {
                return Ok(());
            }
            let lead = raw.iter().take_while(|b| b.is_ascii_whitespace()).count();
            let line = line + count_newlines(&raw[..lead]);
            let shown: String = String::from_utf8_lossy(&raw[lead..])
                .chars()
                .take(40)
                .collect();
            let what = if self.root_closed {
                "there is text after the end of the root element"
            } else {
                "there is text before the first element: this is not an XML file"
            };
            return Err(self.malformed(line, None, what, Some(shown.trim().to_string())));
        }
        let has_amp = !cdata && raw.contains(&b'&');
        if self.captures.is_empty() && !has_amp {
            return Ok(());
        }
        let s = String::from_utf8_lossy(raw);
        let s = normalize_newlines(&s);
        let unescaped;
        let text: &str = if has_amp {
            unescaped = unescape(&s).map_err(|e| self.escape_problem(e, &s, line))?;
            &unescaped
        } else {
            &s
        };
        let depth = self.levels.len();
        for c in &mut self.captures {
            if !c.own || c.depth == depth {
                c.text.push_str(text);
            }
        }
        Ok(())
    }

    /// Closes the innermost element; returns the document when it was a record.
    fn end_element(&mut self) -> Option<RawDocument> {
        let depth = self.levels.len();
        let mut i = 0;
        while i < self.captures.len() {
            if self.captures[i].depth == depth {
                let c = self.captures.swap_remove(i);
                if let Some(v) = self.val(c.space, c.slot) {
                    *v = Val::Set(c.text, c.line);
                }
            } else {
                i += 1;
            }
        }
        let mut doc = None;
        if let Some(rec) = self.rec.as_mut() {
            if rec.current.as_ref().is_some_and(|l| l.depth == depth) {
                let l = rec.current.take().expect("a current line");
                rec.lines.push(row_of(&l.vals, l.line));
            }
            if rec.depth == depth {
                doc = Some(self.finish_record());
            }
        }
        if let Some(lvl) = self.levels.pop() {
            self.alive.truncate(lvl.alive_start as usize);
        }
        self.names
            .truncate(self.levels.last().map_or(0, |l| l.name_end));
        if self.levels.is_empty() {
            self.root_closed = true;
        }
        doc
    }

    fn record_name(&self) -> &str {
        self.record.names.last().map_or("record", String::as_str)
    }

    fn finish_record(&mut self) -> RawDocument {
        let rec = self.rec.take().expect("a record");
        let parts: Vec<String> = rec
            .key
            .iter()
            .map(|v| match v {
                Val::Set(s, _) => s.trim().to_string(),
                _ => String::new(),
            })
            .collect();
        let key = if parts.iter().all(String::is_empty) {
            Vec::new()
        } else {
            parts
        };
        let mut doc = RawDocument {
            key: Vec::new(),
            line: rec.line,
            header: row_of(&rec.header, rec.line),
            lines: rec.lines,
            problems: Vec::new(),
            rows: 1,
        };
        let cols = self.key_names.join(", ");
        let rname = self.record_name().to_string();
        if key.is_empty() {
            let msg = format!(
                "This <{}> has no {}, the document key",
                rname,
                self.key_names.join(" or ")
            );
            doc.problems.push(Problem {
                stage: Stage::Map,
                document: None,
                line: Some(rec.line),
                column: Some(cols.clone()),
                field: None,
                value: Some(String::new()),
                code: Code::Required,
                message: with_location(&msg, Some(rec.line), Some(&cols)),
                status: None,
            });
        } else {
            let h = key_hash(&key);
            let first = match self.repeats.as_mut() {
                // second pass: only the keys known to repeat are followed
                Some((known, lines)) => match known.binary_search(&h) {
                    Ok(_) => match lines.entry(h) {
                        Entry::Vacant(v) => {
                            v.insert(rec.line);
                            None
                        }
                        Entry::Occupied(o) => Some(*o.get()),
                    },
                    Err(_) => None,
                },
                None => self.keys.insert(h, rec.line),
            };
            match first {
                None => {}
                Some(first) => {
                    let shown = key.join("/");
                    let msg = format!(
                        "Document {} appears twice in the file: this <{}> has the same key as the one on line {}",
                        shown,
                        rname,
                        first
                    );
                    doc.problems.push(Problem {
                        stage: Stage::Validate,
                        document: Some(shown.clone()),
                        line: Some(rec.line),
                        column: Some(cols.clone()),
                        field: None,
                        value: Some(shown),
                        code: Code::Duplicate,
                        message: with_location(&msg, Some(rec.line), Some(&cols)),
                        status: None,
                    });
                }
            }
        }
        doc.key = key;
        doc
    }

    fn eof(&self, line: u64) -> Result<(), Problem> {
        if let Some(top) = self.levels.last() {
            let start = self
                .levels
                .len()
                .checked_sub(2)
                .map_or(0, |i| self.levels[i].name_end);
            let name = lossy(&self.names[start + 1..top.name_end]);
            return Err(self.malformed(
                top.line,
                None,
                &format!(
                    "<{name}> is never closed: the file ends (line {line}) before </{name}> (it may be cut short)"
                ),
                Some(format!("<{name}>")),
            ));
        }
        if !self.root_seen {
            return Err(Problem::file(
                Code::Empty,
                None,
                "The file is empty: it has no XML element",
            ));
        }
        let n = self.record.steps.len();
        // A file whose record parent is there but empty is an empty export; one without
        // it (or, for an absolute path, with another root) probably does not fit the
        // mapping.
        let need = if self.record.anywhere {
            n - 1
        } else {
            (n - 1).max(1)
        };
        if self.records == 0 && self.best < need {
            let msg = if self.best == 0 {
                format!(
                    "No element matches the record path {}: the root element is <{}>",
                    self.record.text, self.root_name
                )
            } else {
                format!(
                    "No element matches the record path {}: the file has {}{} but no <{}> inside it",
                    self.record.text,
                    if self.record.anywhere { "" } else { "/" },
                    self.record.names[..self.best].join("/"),
                    self.record.names[self.best]
                )
            };
            return Err(Problem::file(Code::MissingColumn, None, msg)
                .with_column(self.record.text.clone())
                .with_value(self.root_name.clone()));
        }
        Ok(())
    }
}

fn row_of(vals: &[Val], line: u64) -> RawRow {
    let bytes = vals
        .iter()
        .map(|v| match v {
            Val::Set(s, _) => s.len(),
            _ => 0,
        })
        .sum();
    let mut row = RawRow::with_capacity(line, vals.len(), bytes);
    row.reserve_lines(vals.len());
    for v in vals {
        match v {
            Val::Set(s, l) => row.push_at(Some(s), *l),
            _ => row.push_at(None, line),
        }
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::mapping::SourceFormat;
    use crate::source::csv::CsvOptions;

    fn opts(record: &str, lines: Option<&str>, ns: &[(&str, &str)]) -> SourceOptions {
        SourceOptions {
            format: SourceFormat::Xml,
            csv: CsvOptions {
                delimiter: b',',
                quote: b'"',
                header: true,
                skip_lines: 0,
                encoding: UTF_8,
            },
            encoding_explicit: false,
            record: Some(record.to_string()),
            lines: lines.map(str::to_string),
            namespaces: ns
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn slots(header: &[&str], lines: &[&str], key: &[&str]) -> Slots {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        Slots {
            header: v(header),
            lines: v(lines),
            key: v(key),
            wants_lines: !lines.is_empty(),
        }
    }

    fn read_with(bytes: &[u8], o: &SourceOptions, s: &Slots) -> Result<Vec<RawDocument>, Problem> {
        let tap = Rc::new(RefCell::new(Tap::default()));
        let mut src = XmlSource::open(bytes, tap, o, s)?;
        let mut out = Vec::new();
        while let Some(d) = src.next_document() {
            match d {
                Ok(d) => out.push(d),
                Err(SourceError::Fatal(p)) => return Err(p),
                Err(SourceError::Ungrouped) => panic!("XML is never regrouped"),
                Err(SourceError::Repeated(_)) => panic!("the test files are small"),
            }
        }
        Ok(out)
    }

    fn read(
        bytes: &[u8],
        record: &str,
        lines: Option<&str>,
        s: &Slots,
    ) -> Result<Vec<RawDocument>, Problem> {
        read_with(bytes, &opts(record, lines, &[]), s)
    }

    const INVOICES: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Export created="2026-11-20">
  <Invoices>
    <Invoice id="INV-1" type="sale">
      <Number>INV-1</Number>
      <Customer code="C1"><Name>Acme &amp; Sons</Name></Customer>
      <Lines>
        <Line no="1"><Item>A</Item><Qty>2</Qty></Line>
        <Line no="2">
          <Item>B</Item>
        </Line>
      </Lines>
    </Invoice>
    <Invoice id="INV-2">
      <Number><![CDATA[INV-]]>2</Number>
      <Lines/>
    </Invoice>
  </Invoices>
</Export>
"#;

    #[test]
    fn records_lines_attributes_and_nested_paths() {
        let s = slots(
            &[
                "Number",
                "@type",
                "Customer/@code",
                "Customer/Name",
                "Missing",
            ],
            &["@no", "Item", "Qty"],
            &["@id"],
        );
        let docs = read(
            INVOICES.as_bytes(),
            "/Export/Invoices/Invoice",
            Some("Lines/Line"),
            &s,
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
        let d = &docs[0];
        assert_eq!(d.key, vec!["INV-1"]);
        assert_eq!(d.line, 4);
        assert_eq!(d.rows, 1);
        assert_eq!(d.header.get(0), Some("INV-1"));
        assert_eq!(d.header.line_of(0), 5);
        assert_eq!(d.header.get(1), Some("sale"));
        assert_eq!(d.header.line_of(1), 4);
        assert_eq!(d.header.get(2), Some("C1"));
        assert_eq!(d.header.line_of(2), 6);
        assert_eq!(d.header.get(3), Some("Acme & Sons"));
        assert_eq!(d.header.get(4), None);
        assert_eq!(d.header.line_of(4), 4);
        assert_eq!(d.lines.len(), 2);
        assert_eq!(d.lines[0].line, 8);
        assert_eq!(d.lines[0].get(0), Some("1"));
        assert_eq!(d.lines[0].get(1), Some("A"));
        assert_eq!(d.lines[0].get(2), Some("2"));
        assert_eq!(d.lines[1].line, 9);
        assert_eq!(d.lines[1].get(1), Some("B"));
        assert_eq!(d.lines[1].line_of(1), 10);
        assert_eq!(d.lines[1].get(2), None);
        assert!(d.problems.is_empty());
        let d = &docs[1];
        assert_eq!(d.key, vec!["INV-2"]);
        assert_eq!(d.header.get(0), Some("INV-2"), "CDATA and text are joined");
        assert_eq!(d.header.get(1), None);
        assert!(d.lines.is_empty());
    }

    #[test]
    fn first_match_wins_and_text_means_own_text() {
        let xml =
            b"<R><Doc>own<B>1</B>tail<B>2</B><C><![CDATA[x<y]]><!-- no --> z</C><E/></Doc></R>";
        let s = slots(&["B", "text()", ".", "C", "E", "B/text()"], &[], &["B"]);
        let docs = read(xml, "/R/Doc", None, &s).unwrap();
        let h = &docs[0].header;
        assert_eq!(h.get(0), Some("1"));
        assert_eq!(h.get(1), Some("owntail"));
        assert_eq!(h.get(2), Some("own1tail2x<y z"));
        assert_eq!(h.get(3), Some("x<y z"));
        assert_eq!(h.get(4), Some(""), "an empty element is present and empty");
        assert_eq!(h.get(5), Some("1"));
    }

    #[test]
    fn record_path_anywhere_and_wildcards() {
        let xml = b"<a><b><Doc k='1'/></b><c><Doc k='2'/></c></a>";
        let s = slots(&[], &[], &["@k"]);
        assert_eq!(read(xml, "//Doc", None, &s).unwrap().len(), 2);
        assert_eq!(read(xml, "Doc", None, &s).unwrap().len(), 2);
        assert_eq!(read(xml, "/a/*/Doc", None, &s).unwrap().len(), 2);
        let docs = read(xml, "/a/c/Doc", None, &s).unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].key, vec!["2"]);
    }

    #[test]
    fn namespaces_by_declared_prefix_or_local_name() {
        let xml = br#"<x:Export xmlns:x="urn:export" xmlns:a="urn:amounts" xmlns="urn:default">
  <x:Doc a:id="7" id="plain">
    <a:Amount>10</a:Amount>
    <Amount>99</Amount>
    <Note xmlns="urn:other">n</Note>
  </x:Doc>
</x:Export>"#;
        // The file uses prefixes x/a; the mapping calls the namespaces e/m.
        let o = opts(
            "/e:Export/e:Doc",
            None,
            &[
                ("e", "urn:export"),
                ("m", "urn:amounts"),
                ("d", "urn:default"),
                ("o", "urn:other"),
            ],
        );
        let s = slots(
            &[
                "m:Amount", "d:Amount", "Amount", "@m:id", "@id", "o:Note", "d:Note",
            ],
            &[],
            &["@id"],
        );
        let docs = read_with(xml, &o, &s).unwrap();
        assert_eq!(docs.len(), 1);
        let h = &docs[0].header;
        assert_eq!(h.get(0), Some("10"));
        assert_eq!(h.get(1), Some("99"));
        assert_eq!(h.get(2), Some("10"), "by local name: the first Amount");
        assert_eq!(h.get(3), Some("7"));
        assert_eq!(h.get(4), Some("plain"), "an unprefixed attribute wins");
        assert_eq!(h.get(5), Some("n"));
        assert_eq!(h.get(6), None);
        // by local name only, and by the file's own prefix when the mapping has none
        let s = slots(&["a:Amount"], &[], &["@x:nope"]);
        let docs = read(xml, "/Export/Doc", None, &s).unwrap();
        assert_eq!(docs[0].header.get(0), Some("10"));
        assert!(docs[0].key.is_empty());
    }

    #[test]
    fn entities_line_ends_and_attribute_normalisation() {
        let xml = b"<R>\r\n<D a=\"x\r\ny&#10;z\">\r\n<T>one\r\ntwo &lt;&#x41;&gt;</T></D></R>";
        let s = slots(&["@a", "T"], &[], &["T"]);
        let docs = read(xml, "/R/D", None, &s).unwrap();
        assert_eq!(docs[0].line, 2);
        assert_eq!(docs[0].header.get(0), Some("x y\nz"));
        assert_eq!(docs[0].header.get(1), Some("one\ntwo <A>"));
        assert_eq!(
            docs[0].header.line_of(1),
            4,
            "the attribute value spans a line end"
        );
    }

    #[test]
    fn a_start_tag_over_several_lines_has_the_line_of_its_start() {
        let xml = b"<R>\n\n<D\n  id=\"1\"\n>\n<N>v</N></D>\n<D id=\"2\"><N>w</N></D></R>";
        let s = slots(&["N"], &[], &["@id"]);
        let docs = read(xml, "/R/D", None, &s).unwrap();
        assert_eq!(docs[0].line, 3);
        assert_eq!(docs[0].header.line_of(0), 6);
        assert_eq!(docs[1].line, 7);
    }

    #[test]
    fn missing_key_is_required_and_repeated_key_is_duplicate() {
        let xml = b"<R>\n<D><K>1</K></D>\n<D><K> </K></D>\n<D><K>1</K></D>\n</R>";
        let s = slots(&[], &[], &["K"]);
        let docs = read(xml, "/R/D", None, &s).unwrap();
        assert_eq!(docs.len(), 3);
        assert!(docs[0].problems.is_empty());
        let p = &docs[1].problems[0];
        assert_eq!(p.code, Code::Required);
        assert_eq!(p.line, Some(3));
        assert_eq!(p.column.as_deref(), Some("K"));
        assert!(docs[1].key.is_empty());
        let p = &docs[2].problems[0];
        assert_eq!(p.code, Code::Duplicate);
        assert_eq!(p.stage, Stage::Validate);
        assert_eq!(p.line, Some(4));
        assert_eq!(p.value.as_deref(), Some("1"));
        assert!(p.message.contains("line 2"), "{}", p.message);
    }

    fn fatal(xml: &[u8]) -> Problem {
        let s = slots(&["N"], &[], &["@id"]);
        read(xml, "/R/D", None, &s).expect_err("a fatal problem")
    }

    #[test]
    fn mismatched_end_tag_is_malformed_with_line_and_character() {
        let p = fatal(b"<R>\n<D id=\"1\">\n  <N>1</Nx>\n</D></R>");
        assert_eq!(p.code, Code::Malformed);
        assert_eq!(p.stage, Stage::Read);
        assert_eq!(p.line, Some(3));
        assert_eq!(p.value.as_deref(), Some("</Nx>"));
        assert_eq!(p.column.as_deref(), Some("/R/D/N"));
        assert!(p.message.contains("line 3, character 7"), "{}", p.message);
        assert!(p.message.contains("opened on line 3"), "{}", p.message);
    }

    #[test]
    fn unclosed_elements_and_tags_are_malformed() {
        let p = fatal(b"<R>\n<D id=\"1\">\n<N>1</N>\n");
        assert_eq!(p.code, Code::Malformed);
        assert_eq!(p.line, Some(2), "the line of the unclosed element");
        assert_eq!(p.value.as_deref(), Some("<D>"));
        let p = fatal(b"<R>\n<D id=\"1\">\n<N>1</N\n");
        assert_eq!(p.code, Code::Malformed);
        assert_eq!(p.line, Some(3));
        assert!(p.message.contains("not closed"), "{}", p.message);
    }

    #[test]
    fn unknown_and_broken_entities_are_malformed() {
        let p = fatal(b"<R>\n<D id=\"1\"><N>one\ntwo &nbsp; three</N></D></R>");
        assert_eq!(p.code, Code::Malformed);
        assert_eq!(p.line, Some(3));
        assert_eq!(p.value.as_deref(), Some("&nbsp;"));
        // not captured by the mapping: still checked
        let p = fatal(b"<R><D id=\"1\"><Other>AT&T</Other></D></R>");
        assert_eq!(p.code, Code::Malformed);
        assert!(p.message.contains("&amp;"), "{}", p.message);
        let p = fatal(b"<R><D id=\"1\" x=\"&bogus;\"/></R>");
        assert_eq!(p.value.as_deref(), Some("&bogus;"));
        let p = fatal(b"<R><D id=\"1\" x=noquotes/></R>");
        assert_eq!(p.code, Code::Malformed);
    }

    #[test]
    fn text_outside_the_root_and_second_roots_are_malformed() {
        let p = fatal(b"No;Date;Total\n1;2;3\n");
        assert_eq!(p.code, Code::Malformed);
        assert!(p.message.contains("not an XML file"), "{}", p.message);
        let p = fatal(b"<R/>\n<R/>");
        assert_eq!(p.line, Some(2));
        let p = fatal(b"<R></R>\ntrailing");
        assert_eq!(p.line, Some(2));
    }

    #[test]
    fn billion_laughs_is_refused_at_once() {
        let mut xml =
            String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n");
        for i in 1..10 {
            let prev = if i == 1 {
                "lol".to_string()
            } else {
                format!("lol{}", i - 1)
            };
            xml.push_str(&format!(
                " <!ENTITY lol{i} \"{}\">\n",
                format!("&{prev};").repeat(10)
            ));
        }
        xml.push_str("]>\n<R><D id=\"1\"><N>&lol9;</N></D></R>\n");
        let p = fatal(xml.as_bytes());
        assert_eq!(p.code, Code::Malformed);
        assert_eq!(p.line, Some(2));
        assert!(
            p.message
                .contains("DTDs and entity declarations are not allowed"),
            "{}",
            p.message
        );
        // an external DTD is never read; its entities are then unknown
        let p = fatal(b"<!DOCTYPE R SYSTEM \"http://example.com/r.dtd\">\n<R><D id=\"1\"><N>&ext;</N></D></R>");
        assert_eq!(p.value.as_deref(), Some("&ext;"));
        let ok = read(
            b"<!DOCTYPE R SYSTEM \"r.dtd\"><R><D id=\"1\"/></R>",
            "/R/D",
            None,
            &slots(&[], &[], &["@id"]),
        );
        assert_eq!(ok.unwrap().len(), 1);
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_malformed() {
        let xml = format!(
            "<R>{}{}</R>",
            "<a>".repeat(MAX_DEPTH),
            "</a>".repeat(MAX_DEPTH)
        );
        let p = fatal(xml.as_bytes());
        assert_eq!(p.code, Code::Malformed);
        assert!(p.message.contains("nested more than 256"), "{}", p.message);
        let xml = format!(
            "<R>{}{}</R>",
            "<a>".repeat(MAX_DEPTH - 1),
            "</a>".repeat(MAX_DEPTH - 1)
        );
        assert!(
            read(xml.as_bytes(), "/R/D", None, &slots(&[], &[], &["@id"]))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn encoding_from_the_declaration_or_the_mapping() {
        let text = "<?xml version=\"1.0\" encoding=\"windows-1251\"?>\n<R><D id=\"1\"><N>ООО «Ромашка»</N></D></R>";
        let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(text);
        let s = slots(&["N"], &[], &["@id"]);
        let docs = read(&bytes, "/R/D", None, &s).unwrap();
        assert_eq!(docs[0].header.get(0), Some("ООО «Ромашка»"));
        // the same bytes without a declaration, with encoding set in the mapping
        let (bytes, _, _) =
            encoding_rs::WINDOWS_1251.encode("<R><D id=\"1\"><N>Ромашка</N></D></R>");
        let mut o = opts("/R/D", None, &[]);
        let p = read_with(&bytes, &o, &s).unwrap_err();
        assert_eq!(p.code, Code::Encoding);
        assert_eq!(p.line, Some(1));
        assert_eq!(p.column.as_deref(), Some("/R/D/N"));
        assert_eq!(p.value.as_deref(), Some("0xD0"));
        o.encoding_explicit = true;
        o.csv.encoding = encoding_rs::WINDOWS_1251;
        assert_eq!(
            read_with(&bytes, &o, &s).unwrap()[0].header.get(0),
            Some("Ромашка")
        );
    }

    #[test]
    fn utf16_with_and_without_bom() {
        let text =
            "<?xml version=\"1.0\" encoding=\"UTF-16\"?>\n<R>\n<D id=\"1\"><N>Grüße</N></D></R>";
        let s = slots(&["N"], &[], &["@id"]);
        for bom in [true, false] {
            let mut bytes = if bom { vec![0xFF, 0xFE] } else { Vec::new() };
            for u in text.encode_utf16() {
                bytes.extend_from_slice(&u.to_le_bytes());
            }
            let docs = read(&bytes, "/R/D", None, &s).unwrap();
            assert_eq!(docs[0].header.get(0), Some("Grüße"), "bom {bom}");
            assert_eq!(docs[0].line, 3);
        }
        let mut be = vec![0xFE, 0xFF];
        for u in text.encode_utf16() {
            be.extend_from_slice(&u.to_be_bytes());
        }
        assert_eq!(read(&be, "/R/D", None, &s).unwrap().len(), 1);
    }

    #[test]
    fn a_byte_order_mark_wins_over_the_declaration() {
        let mut bytes = vec![0xEF, 0xBB, 0xBF];
        bytes.extend_from_slice(
            "<?xml version=\"1.0\" encoding=\"windows-1251\"?><R><D id=\"1\"><N>Ж</N></D></R>"
                .as_bytes(),
        );
        let s = slots(&["N"], &[], &["@id"]);
        let docs = read(&bytes, "/R/D", None, &s).unwrap();
        assert_eq!(docs[0].header.get(0), Some("Ж"));
    }

    #[test]
    fn unknown_declared_encoding_is_an_encoding_problem() {
        let p = fatal(b"<?xml version=\"1.0\" encoding=\"klingon-8\"?><R/>");
        assert_eq!(p.code, Code::Encoding);
        assert_eq!(p.value.as_deref(), Some("klingon-8"));
    }

    #[test]
    fn invalid_utf8_names_line_and_element() {
        let p = fatal(b"<R>\n<D id=\"1\">\n<N>ok</N>\n<Name>\xCE\xCE</Name></D></R>");
        assert_eq!(p.code, Code::Encoding);
        assert_eq!(p.line, Some(4));
        assert_eq!(p.column.as_deref(), Some("/R/D/Name"));
        assert_eq!(p.value.as_deref(), Some("0xCE"));
        // cut off in the middle of a character at the very end
        let p = fatal(b"<R><D id=\"1\"/></R>\n\xD0");
        assert_eq!(p.code, Code::Encoding);
        assert_eq!(p.line, Some(2));
    }

    #[test]
    fn record_path_that_does_not_fit_the_file() {
        let s = slots(&[], &[], &["@id"]);
        let p = read(b"<Other><D/></Other>", "/R/D", None, &s).unwrap_err();
        assert_eq!(p.code, Code::MissingColumn);
        assert!(
            p.message.contains("the root element is <Other>"),
            "{}",
            p.message
        );
        let p = read(b"<R><X/></R>", "/R/Invoices/D", None, &s).unwrap_err();
        assert!(
            p.message.contains("the file has /R but no <Invoices>"),
            "{}",
            p.message
        );
        // the parent is there and empty: an empty export
        assert!(read(b"<R><Invoices/></R>", "/R/Invoices/D", None, &s)
            .unwrap()
            .is_empty());
        assert!(read(b"<R/>", "/R/D", None, &s).unwrap().is_empty());
        let p = read(b"  \n", "/R/D", None, &s).unwrap_err();
        assert_eq!(p.code, Code::Empty);
        let p = read(b"", "/R/D", None, &s).unwrap_err();
        assert_eq!(p.code, Code::Empty);
    }

    #[test]
    fn bad_paths_are_named() {
        let ns = IndexMap::new();
        for bad in [
            "",
            "/A/B",
            "A//B",
            "@a/B",
            "text()/B",
            "A[1]",
            "..",
            "A/count(B)",
            "A B",
        ] {
            assert!(check_path(bad, false, &ns).is_err(), "{bad:?}");
        }
        for good in [
            "A",
            "@id",
            "A/@c",
            "c:A",
            "A/text()",
            "*",
            ".",
            "A/*/B",
            "Номер",
        ] {
            assert!(check_path(good, false, &ns).is_ok(), "{good:?}");
        }
        for bad in ["", "/", "/A/@x", "//", "/A/text()"] {
            assert!(check_path(bad, true, &ns).is_err(), "{bad:?}");
        }
        let s = slots(&["A//B"], &[], &["@id"]);
        let tap = Rc::new(RefCell::new(Tap::default()));
        let p = XmlSource::open(&b"<R/>"[..], tap, &opts("/R/D", None, &[]), &s)
            .err()
            .unwrap();
        assert_eq!(p.column.as_deref(), Some("A//B"));
        assert!(p.message.contains("empty step"), "{}", p.message);
    }

    /// Input that makes its records as they are read, counting the bytes handed out.
    struct Generated {
        records: usize,
        made: usize,
        pending: Vec<u8>,
        pos: usize,
        closed: bool,
    }

    impl Read for Generated {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pos == self.pending.len() {
                self.pending.clear();
                self.pos = 0;
                if self.made == 0
                    && self.pending.is_empty()
                    && !self.closed
                    && self.records > 0
                    && self.made < self.records
                {
                    self.pending
                        .extend_from_slice(b"<?xml version=\"1.0\"?>\n<Export>\n");
                }
                if self.made < self.records {
                    for _ in 0..100.min(self.records - self.made) {
                        self.made += 1;
                        let n = self.made;
                        self.pending.extend_from_slice(
                            format!("  <Doc id=\"D{n}\"><Total>{n}.00</Total><Lines><L><Amt>{n}</Amt></L></Lines></Doc>\n").as_bytes(),
                        );
                    }
                } else if !self.closed {
                    self.closed = true;
                    self.pending.extend_from_slice(b"</Export>\n");
                } else {
                    return Ok(0);
                }
            }
            let n = (self.pending.len() - self.pos).min(buf.len());
            buf[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    #[test]
    fn the_file_is_streamed_not_loaded() {
        let records = 100_000; // about 8 MB of XML
        let input = Generated {
            records,
            made: 0,
            pending: Vec::new(),
            pos: 0,
            closed: false,
        };
        let tap = Rc::new(RefCell::new(Tap::default()));
        let o = opts("/Export/Doc", Some("Lines/L"), &[]);
        let s = slots(&["Total"], &["Amt"], &["@id"]);
        let mut src = XmlSource::open(input, tap, &o, &s).unwrap();
        let first = src.next_document().unwrap().unwrap();
        assert_eq!(first.key, vec!["D1"]);
        assert_eq!(first.line, 3);
        // only the first buffers were read, not the whole file
        assert!(src.bytes_read() < 1_000_000, "{}", src.bytes_read());
        let mut n = 1;
        let mut last = first;
        while let Some(d) = src.next_document() {
            last = d.unwrap();
            n += 1;
        }
        assert_eq!(n, records);
        assert_eq!(last.key, vec![format!("D{records}")]);
        assert_eq!(last.line, records as u64 + 2);
        assert_eq!(last.lines[0].get(0), Some(records.to_string().as_str()));
        assert!(src.bytes_read() > 7_000_000);
    }

    /// Hands out one byte per read, to split characters and tags everywhere.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }

    #[test]
    fn characters_split_across_reads_and_long_values() {
        let long = "Ж".repeat(100_000);
        let xml = format!("<R>\n<D id=\"1\"><N>{long}</N></D>\n<D id=\"2\"><N>€</N></D></R>");
        let s = slots(&["N"], &[], &["@id"]);
        let tap = Rc::new(RefCell::new(Tap::default()));
        let mut src =
            XmlSource::open(Trickle(xml.as_bytes()), tap, &opts("/R/D", None, &[]), &s).unwrap();
        let a = src.next_document().unwrap().unwrap();
        assert_eq!(a.header.get(0), Some(long.as_str()));
        let b = src.next_document().unwrap().unwrap();
        assert_eq!(b.header.get(0), Some("€"));
        assert_eq!(b.line, 3);
        assert!(src.next_document().is_none());
        assert_eq!(src.bytes_read(), xml.len() as u64);
    }

    #[test]
    fn error_positions_after_the_kept_bytes_wrap_around() {
        // byte p is on line p / 10 + 1, column p % 10 + 1
        let text = "abcdefghi\n".repeat(1000);
        let mut c = LineCounter::new(text.as_bytes());
        loop {
            let n = c.fill_buf().unwrap().len().min(3001);
            if n == 0 {
                break;
            }
            c.consume(n);
        }
        assert_eq!(c.line(), 1001);
        assert_eq!(c.locate(9_995), (1000, Some(6)));
        assert_eq!(c.locate(7_000), (701, Some(1)));
        assert_eq!(c.locate(5_915), (592, Some(6)));
        // the line start is no longer kept: the line, but no column
        assert_eq!(c.locate(5_905), (591, None));
        // too far back: the line of the current event
        assert_eq!(c.locate(100), (1, None));
    }

    #[test]
    fn error_columns_count_characters() {
        let mut c = LineCounter::new(&b"ab\n\xD0\x96\xD0\x96x\nyz"[..]);
        let n = c.fill_buf().unwrap().len();
        c.consume(n);
        assert_eq!(c.locate(0), (1, Some(1)));
        assert_eq!(c.locate(3), (2, Some(1)));
        assert_eq!(c.locate(7), (2, Some(3)), "after two two-byte characters");
        assert_eq!(c.locate(9), (3, Some(1)));
    }
}
