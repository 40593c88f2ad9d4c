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
use crate::problem::{group_digits, quote, Code, Problem, Stage};
use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8};
use indexmap::IndexMap;
use quick_xml::errors::{Error as XmlError, IllFormedError, SyntaxError};
use quick_xml::escape::{unescape, EscapeError};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{NamespaceError, PrefixDeclaration, QName, ResolveResult};
use quick_xml::{NsReader, Reader};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{self, BufRead, Chain, Cursor, Read};
use std::rc::Rc;

/// The most attributes one element may have; more is `malformed`.
pub const MAX_ATTRIBUTES: usize = 10_000;
/// What an XML name is, for messages.
const NAME_RULE: &str =
    "a name starts with a letter, `_` or `:`, then letters, digits, `-`, `.`, `_` or `:`";
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
    /// The number of `local` in the reader's [`NameIds`] (element steps only).
    id: u32,
    ns: NsTest,
}

impl NameTest {
    /// Whether the element `name` (local part numbered `id` in [`NameIds`], namespace
    /// resolved by `res` when some test needs it) passes this test.
    #[inline]
    fn matches_element(&self, name: QName, id: u32, res: &ResolveResult) -> bool {
        if self.local.is_some() && self.id != id {
            return false;
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
    Ok(NameTest {
        local,
        id: NO_ID,
        ns,
    })
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

fn count_newlines(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

/// Appends the positions of the newlines of `b` (checked UTF-8) to `out`, up to the
/// first character that XML 1.0 forbids, whose position it returns: a control character
/// other than tab, line feed and carriage return, or U+FFFE, U+FFFF (the surrogates are
/// not UTF-8). Every byte of the file goes through here once.
fn index_newlines(b: &[u8], out: &mut Vec<u32>) -> Option<usize> {
    // U+FFFE and U+FFFF are EF BF BE and EF BF BF: the lead byte is rare, and memchr
    // finds it at a fraction of a cycle a byte
    let nonchar = memchr::memchr_iter(0xEF, b)
        .find(|&at| b.get(at + 1) == Some(&0xBF) && matches!(b.get(at + 2), Some(0xBE | 0xBF)));
    let b = &b[..nonchar.unwrap_or(b.len())];
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = ONES << 7;
    let mut chunks = b.chunks_exact(8);
    let mut base = 0usize;
    for c in &mut chunks {
        // eight bytes at a time: a byte below 0x20 (line feeds among them) sends the
        // chunk to the byte-wise look
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        if w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0 {
            if let Some(at) = index_bytes(c, base, out) {
                return Some(at);
            }
        }
        base += 8;
    }
    index_bytes(chunks.remainder(), base, out).or(nonchar)
}

/// [`index_newlines`] of `c`, which starts at `base`, byte by byte.
#[inline]
fn index_bytes(c: &[u8], base: usize, out: &mut Vec<u32>) -> Option<usize> {
    for (j, &x) in c.iter().enumerate() {
        match x {
            b'\n' => out.push((base + j) as u32),
            b'\t' | b'\r' => {}
            0..=0x1F => return Some(base + j),
            _ => {}
        }
    }
    None
}

/// The first character of `s` that XML 1.0 does not allow (see [`index_newlines`]); for
/// text that character references produced.
fn forbidden_char(s: &str) -> Option<char> {
    s.chars().find(|&c| {
        matches!(c, '\0'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
    })
}

/// A character that XML 1.0 does not allow anywhere in a document, where it is.
#[derive(Debug)]
struct ForbiddenChar {
    ch: char,
    line: u64,
    col: Option<u64>,
}

impl fmt::Display for ForbiddenChar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the character U+{:04X} on line {} is not allowed in XML",
            self.ch as u32, self.line
        )
    }
}

impl std::error::Error for ForbiddenChar {}

/// What stops the bytes that [`LineCounter`] hands out, once quick-xml gets there.
#[derive(Debug)]
enum Stop {
    /// Bytes that are not UTF-8.
    Encoding(EncodingError),
    /// A character XML forbids.
    Forbidden(char),
}

/// Whether `b` holds a `&`, a `\r` and a `]`, in one pass (eight bytes at a time: text
/// events are short and many).
#[inline]
fn amp_cr_bracket(b: &[u8]) -> (bool, bool, bool) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = ONES << 7;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let (mut amp, mut cr, mut bracket) = (0u64, 0u64, 0u64);
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        amp |= zero(w ^ (ONES * u64::from(b'&')));
        cr |= zero(w ^ (ONES * u64::from(b'\r')));
        bracket |= zero(w ^ (ONES * u64::from(b']')));
    }
    // the last bytes, padded with zeros (which are none of them)
    let rest = chunks.remainder();
    let mut last = [0u8; 8];
    last[..rest.len()].copy_from_slice(rest);
    let w = u64::from_le_bytes(last);
    amp |= zero(w ^ (ONES * u64::from(b'&')));
    cr |= zero(w ^ (ONES * u64::from(b'\r')));
    bracket |= zero(w ^ (ONES * u64::from(b']')));
    (amp != 0, cr != 0, bracket != 0)
}

/// How a byte may stand in an XML name: 2 anywhere, 1 not first, 0 never (XML 1.0,
/// `NameStartChar` and `NameChar`); 3: a byte of a character outside ASCII.
const NAME_BYTES: [u8; 256] = {
    let mut t = [3u8; 256];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
            2
        } else if c.is_ascii_digit() || c == b'-' || c == b'.' {
            1
        } else {
            0
        };
        b += 1;
    }
    t
};

/// Whether a character outside ASCII may start an XML name (`NameStartChar`), or stand
/// in one after the first (`NameChar`, with `first` false).
fn name_char(c: char, first: bool) -> bool {
    let start = matches!(c,
        '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}'
        | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}'
        | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}'
        | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}');
    start || (!first && matches!(c, '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}'))
}

/// Whether `name` (checked UTF-8) is an XML name: `Invoice`, `b:Amount`, `x-id`, `Счёт`;
/// not `,status`, `1st` or the empty name.
#[inline]
fn is_xml_name(name: &[u8]) -> bool {
    // the usual name is ASCII: a table look per byte
    let Some(&first) = name.first() else {
        return false;
    };
    match NAME_BYTES[first as usize] {
        2 => {}
        3 => return is_xml_name_beyond_ascii(name),
        _ => return false,
    }
    for &b in &name[1..] {
        match NAME_BYTES[b as usize] {
            0 => return false,
            3 => return is_xml_name_beyond_ascii(name),
            _ => {}
        }
    }
    true
}

/// [`is_xml_name`] of a name with characters outside ASCII.
fn is_xml_name_beyond_ascii(name: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(name) else {
        return false;
    };
    s.chars().enumerate().all(|(i, c)| match u8::try_from(c) {
        Ok(b) if b < 128 => NAME_BYTES[b as usize] > u8::from(i == 0),
        _ => name_char(c, i == 0),
    })
}

/// The buffered reader quick-xml reads from. It checks that the bytes are UTF-8 as it
/// reads them, handing out the valid bytes before an invalid sequence and failing only
/// when quick-xml reaches it (so that the error is raised inside the element that holds
/// the bad bytes); it knows the line of every position it handed out (the newlines of
/// each buffer are indexed once, when it is read), keeps the last [`RING`] bytes to place
/// errors, and refuses a single event longer than [`MAX_EVENT_BYTES`].
struct LineCounter<R> {
    inner: R,
    /// `buf[..valid]` is checked UTF-8: `buf[pos..valid]` is not consumed yet,
    /// `buf[..pos]` was (kept until the next refill, for `locate`); `buf[valid..end]`
    /// is the start of a character whose other bytes are not read yet.
    buf: Box<[u8]>,
    pos: usize,
    valid: usize,
    end: usize,
    consumed: u64,
    /// Positions of the newlines of `buf[..valid]`.
    nl: Vec<u32>,
    /// How many of `nl` are before the last position asked for (`mark`).
    nl_seen: usize,
    /// Newlines before `buf[0]`.
    nl_base: u64,
    ring: Box<[u8]>,
    /// `consumed` and the line when the current event started.
    mark: u64,
    mark_line: u64,
    /// Bytes that are not UTF-8, or a character XML forbids, at `buf[valid]`: raised
    /// when quick-xml gets there.
    error: Option<Stop>,
    eof: bool,
}

impl<R: Read> LineCounter<R> {
    fn new(inner: R) -> Self {
        LineCounter {
            inner,
            buf: vec![0; 256 * 1024].into_boxed_slice(),
            pos: 0,
            valid: 0,
            end: 0,
            consumed: 0,
            nl: Vec::new(),
            nl_seen: 0,
            nl_base: 0,
            ring: vec![0; RING].into_boxed_slice(),
            mark: 0,
            mark_line: 1,
            error: None,
            eof: false,
        }
    }

    /// The line of the next byte to be consumed.
    fn line(&self) -> u64 {
        let pos = self.pos as u32;
        self.nl_base + self.nl.partition_point(|&p| p < pos) as u64 + 1
    }

    /// The current event starts here.
    #[inline]
    fn mark(&mut self) {
        self.mark = self.consumed;
        let pos = self.pos as u32;
        while self.nl_seen < self.nl.len() && self.nl[self.nl_seen] < pos {
            self.nl_seen += 1;
        }
        self.mark_line = self.nl_base + self.nl_seen as u64 + 1;
    }

    /// The line of the start of the current event.
    #[inline]
    fn mark_line(&self) -> u64 {
        self.mark_line
    }

    /// Line and character of the byte `at` bytes into a text event (which starts where
    /// the event starts), on `line`: the character only while the bytes before it are
    /// kept.
    fn place_in_text(&self, at: usize, line: u64) -> (u64, Option<u64>) {
        self.place(self.mark + at as u64, line)
    }

    /// Line and character of `tag[at]`, of the start tag just read (`tag`: its bytes
    /// after `<`, without `/>` or `>`), on `line`. quick-xml stops right after the `>`;
    /// the `<` may have been consumed with the text before it.
    fn place_in_tag(&self, tag: &[u8], empty: bool, at: usize, line: u64) -> (u64, Option<u64>) {
        let back = 1 + u64::from(empty) + (tag.len() - at.min(tag.len())) as u64;
        self.place(self.consumed.saturating_sub(back), line)
    }

    fn place(&self, pos: u64, line: u64) -> (u64, Option<u64>) {
        match self.locate(pos) {
            (l, Some(c)) if l == line => (l, Some(c)),
            _ => (line, None),
        }
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
        let line = self.line() - after;
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

    /// Reads the next bytes, once all the bytes handed out were consumed.
    fn refill(&mut self) -> io::Result<()> {
        // Keep the last consumed bytes in the ring before the buffer is reused: one copy
        // of at most RING bytes per refill, not one per event.
        let tail = &self.buf[self.valid.saturating_sub(RING)..self.valid];
        let from = self.consumed - tail.len() as u64;
        let start = (from % RING as u64) as usize;
        let first = (RING - start).min(tail.len());
        self.ring[start..start + first].copy_from_slice(&tail[..first]);
        self.ring[..tail.len() - first].copy_from_slice(&tail[first..]);
        self.nl_base += self.nl.len() as u64;
        self.nl.clear();
        self.nl_seen = 0;
        // Keep an incomplete character (at most 3 bytes) and read more after it.
        self.buf.copy_within(self.valid..self.end, 0);
        self.end -= self.valid;
        self.pos = 0;
        self.valid = 0;
        loop {
            if let Some(e) = self.error.take() {
                self.eof = true;
                self.end = 0;
                return Err(match e {
                    Stop::Encoding(e) => io::Error::new(io::ErrorKind::InvalidData, e),
                    Stop::Forbidden(ch) => {
                        // every byte before it was consumed: it is where the reader stands
                        let (line, col) = self.locate(self.consumed);
                        let e = ForbiddenChar { ch, line, col };
                        io::Error::new(io::ErrorKind::InvalidData, e)
                    }
                });
            }
            if self.eof {
                return Ok(());
            }
            let n = loop {
                match self.inner.read(&mut self.buf[self.end..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            };
            if n == 0 {
                self.eof = true;
                if self.end > 0 {
                    self.error = Some(Stop::Encoding(EncodingError {
                        encoding: "UTF-8",
                        line: self.nl_base + 1,
                        bytes: self.buf[..self.end].to_vec(),
                    }));
                    self.end = 0;
                }
                continue;
            }
            self.end += n;
            match std::str::from_utf8(&self.buf[..self.end]) {
                Ok(_) => self.valid = self.end,
                Err(e) => {
                    self.valid = e.valid_up_to();
                    if let Some(len) = e.error_len() {
                        let at = self.valid;
                        self.error = Some(Stop::Encoding(EncodingError {
                            encoding: "UTF-8",
                            line: self.nl_base + count_newlines(&self.buf[..at]) + 1,
                            bytes: self.buf[at..at + len].to_vec(),
                        }));
                        self.end = at;
                    }
                }
            }
            if let Some(at) = index_newlines(&self.buf[..self.valid], &mut self.nl) {
                // handed out up to the character, which stops quick-xml where it is
                let ch = std::str::from_utf8(&self.buf[at..self.valid])
                    .ok()
                    .and_then(|s| s.chars().next())
                    .unwrap_or('\0');
                self.error = Some(Stop::Forbidden(ch));
                self.valid = at;
                self.end = at;
            }
            if self.valid > 0 {
                return Ok(());
            }
        }
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
    #[inline]
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.consumed - self.mark > MAX_EVENT_BYTES {
            return Err(io::Error::new(io::ErrorKind::InvalidData, TooLarge));
        }
        if self.pos == self.valid {
            self.refill()?;
        }
        Ok(&self.buf[self.pos..self.valid])
    }

    #[inline]
    fn consume(&mut self, amt: usize) {
        let amt = amt.min(self.valid - self.pos);
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
            Err(Problem::file(Code::Encoding, Some(1), &msg).with_value(label))
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

const UNSET: u8 = 0;
const CAPTURING: u8 = 1;
const SET: u8 = 2;

/// A slot's value: not found yet, being collected, or found: `text[start..end]` of its
/// row's [`RowBuf`], found on `line`.
#[derive(Debug, Clone, Copy)]
struct SlotVal {
    state: u8,
    start: u32,
    end: u32,
    line: u64,
}

const UNSET_VAL: SlotVal = SlotVal {
    state: UNSET,
    start: 0,
    end: 0,
    line: 0,
};

/// The values of the record (header or key slots) or line being read, in one buffer
/// reused from row to row: values are written into it as they are found. The bytes are
/// UTF-8 (LineCounter hands out nothing else, and text is cut at `<`), checked once per
/// row.
#[derive(Debug, Default)]
struct RowBuf {
    text: Vec<u8>,
    vals: Vec<SlotVal>,
}

impl RowBuf {
    fn new(n: usize) -> RowBuf {
        RowBuf {
            text: Vec::new(),
            vals: vec![UNSET_VAL; n],
        }
    }

    fn reset(&mut self) {
        self.text.clear();
        if self.text.capacity() > 1 << 20 {
            // after a huge value, do not keep its buffer for the rest of the file
            self.text.shrink_to(1 << 12);
        }
        self.vals.fill(UNSET_VAL);
    }

    fn set(&mut self, slot: usize, value: &[u8], line: u64) {
        if let Some(v) = self.vals.get_mut(slot) {
            let start = self.text.len() as u32;
            self.text.extend_from_slice(value);
            *v = SlotVal {
                state: SET,
                start,
                end: self.text.len() as u32,
                line,
            };
        }
    }

    /// The value of `slot` is `text[start..]`, written there by a direct capture.
    #[inline]
    fn close(&mut self, slot: usize, start: u32, line: u64) {
        if let Some(v) = self.vals.get_mut(slot) {
            *v = SlotVal {
                state: SET,
                start,
                end: self.text.len() as u32,
                line,
            };
        }
    }

    fn get(&self, slot: usize) -> Option<Cow<'_, str>> {
        let v = self.vals.get(slot)?;
        (v.state == SET)
            .then(|| String::from_utf8_lossy(&self.text[v.start as usize..v.end as usize]))
    }

    fn row(&self, line: u64) -> RawRow {
        match std::str::from_utf8(&self.text) {
            Ok(text) => RawRow::from_parts(
                line,
                text,
                self.vals
                    .iter()
                    .map(|v| (v.state == SET).then_some((v.start, v.end, v.line))),
            ),
            Err(_) => {
                // not reached (the bytes are checked as they are read); each value
                // on its own, lossily, if it were
                let mut text = String::new();
                let mut ranges = Vec::with_capacity(self.vals.len());
                for v in &self.vals {
                    ranges.push((v.state == SET).then(|| {
                        let start = text.len() as u32;
                        text.push_str(&String::from_utf8_lossy(
                            &self.text[v.start as usize..v.end as usize],
                        ));
                        (start, text.len() as u32, v.line)
                    }));
                }
                RawRow::from_parts(line, &text, ranges.into_iter())
            }
        }
    }
}

/// Text being collected for a slot while its element is open.
#[derive(Debug)]
struct Capture {
    space: Space,
    slot: usize,
    depth: usize,
    own: bool,
    /// The only capture: its text goes straight into its row's buffer, from `start`
    /// on (see [`State::spill`]); else into `text`.
    direct: bool,
    start: u32,
    text: Vec<u8>,
    line: u64,
}

#[derive(Debug)]
struct LineState {
    depth: usize,
    line: u64,
}

/// The record being read; its values are in `State::header`, `State::key` and (the
/// current line's) `State::line`.
#[derive(Debug)]
struct RecordState {
    depth: usize,
    line: u64,
    lines: Vec<RawRow>,
    current: Option<LineState>,
}

/// One open element.
#[derive(Debug)]
struct Level {
    /// The element's name: the mapping's name with this number (an element whose
    /// name is one of the mapping's, unprefixed, is not copied), or, if `NO_ID`,
    /// `State::names[previous level's name_end..name_end]`.
    name: u32,
    name_end: u32,
    line: u64,
    /// Bit k: this element matches the record path's steps up to k.
    rec: u64,
    /// The paths still matching below this element: `State::alive[alive_start..alive_end]`.
    alive_start: u32,
    alive_end: u32,
}

/// No name of the mapping's paths.
const NO_ID: u32 = u32::MAX;

/// The local names of the mapping's element steps, numbered, so that an element's name
/// is looked up once and then compared as a number with each path step.
#[derive(Debug, Default)]
struct NameIds {
    /// Open addressing, a power of two long; `NO_ID` marks a free entry.
    table: Vec<(u32, Box<[u8]>)>,
    names: Vec<Box<[u8]>>,
    /// Per name: whether it is an XML name (checked once, not at every element).
    xml: Vec<bool>,
}

/// A hash of a name from its length and three of its bytes: O(1) per element, and
/// enough to tell a mapping's few names apart (the table compares the names anyway).
#[inline]
fn name_hash(b: &[u8]) -> usize {
    let Some(&last) = b.last() else {
        return 0;
    };
    let x = (b.len() as u32) << 24 | u32::from(b[0]) << 16 | u32::from(b[b.len() / 2]) << 8;
    ((x | u32::from(last)).wrapping_mul(0x9E37_79B1) >> 7) as usize
}

/// `a == b`, without a call to `memcmp` for the usual short names.
#[inline]
fn same_name(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if (8..=16).contains(&n) {
        let word =
            |x: &[u8], i: usize| u64::from_le_bytes(x[i..i + 8].try_into().expect("8 bytes"));
        return word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8);
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

impl NameIds {
    /// The number of `name`, given a new one when it has none.
    fn intern(&mut self, name: &[u8]) -> u32 {
        match self.names.iter().position(|n| &**n == name) {
            Some(i) => i as u32,
            None => {
                self.names.push(name.into());
                (self.names.len() - 1) as u32
            }
        }
    }

    fn build(&mut self) {
        let size = (self.names.len() * 4).next_power_of_two().max(8);
        self.table = vec![(NO_ID, Box::default()); size];
        for (id, n) in self.names.iter().enumerate() {
            let mut i = name_hash(n) & (size - 1);
            while self.table[i].0 != NO_ID {
                i = (i + 1) & (size - 1);
            }
            self.table[i] = (id as u32, n.clone());
        }
        self.xml = self.names.iter().map(|n| is_xml_name(n)).collect();
    }

    #[inline]
    fn get(&self, name: &[u8]) -> u32 {
        let mask = self.table.len() - 1;
        let mut i = name_hash(name) & mask;
        loop {
            let (id, n) = &self.table[i];
            if *id == NO_ID || same_name(n, name) {
                return *id;
            }
            i = (i + 1) & mask;
        }
    }
}

/// The local part of an element or attribute name (after the prefix's `:`).
#[inline]
fn local_part(name: &[u8]) -> &[u8] {
    match name.iter().position(|&c| c == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    }
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
    /// The local names of the element steps.
    ids: NameIds,
    /// The values of the record being read, and of its current line.
    header: RowBuf,
    key: RowBuf,
    line: RowBuf,
    /// How many lines the last record had (to size the next one's).
    last_lines: usize,
    levels: Vec<Level>,
    /// The names of the open elements that are not the mapping's, one after the other
    /// (see `Level::name`); the element path is built from them only for a message.
    names: Vec<u8>,
    /// The paths alive at each open element (see `Level`), each with the `reach` it had
    /// before, to restore when the element closes.
    alive: Vec<(u32, u32)>,
    /// Per path: the depth of the deepest open element at which it is alive, 0 if none.
    reach: Vec<u32>,
    /// Per name number: the (path, step) pairs whose step tests that name.
    by_name: Vec<Vec<(u32, u32)>>,
    /// The (path, step) pairs whose step is `*`.
    wild: Vec<(u32, u32)>,
    rec: Option<RecordState>,
    /// The record that has just ended, until the event loop hands it out.
    ready: Option<RawDocument>,
    captures: Vec<Capture>,
    /// Buffers of finished captures, for the next ones.
    spare: Vec<Vec<u8>>,
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

type Stack<R> = LineCounter<Input<R>>;

/// quick-xml's reader: plain when no path names a namespace URI (nothing needs to be
/// resolved), else namespace-resolving. Both give the same events; the plain one checks
/// namespace declarations as the other does ([`check_ns_declarations`]).
enum XmlReader<S: BufRead> {
    Plain(Reader<S>),
    Ns(NsReader<S>),
}

impl<S: BufRead> XmlReader<S> {
    #[cfg(test)]
    fn is_plain(&self) -> bool {
        matches!(self, XmlReader::Plain(_))
    }
}

/// What the event loop needs of a quick-xml reader, plain or namespace-resolving; the
/// loop is compiled once for each, so that no event pays for the choice.
trait Events {
    type Source: BufRead;
    /// The plain reader: namespace declarations are checked by [`check_ns_declarations`].
    const PLAIN: bool;
    fn read_event_into<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<Event<'b>, XmlError>;
    fn get_ref(&self) -> &Self::Source;
    fn get_mut(&mut self) -> &mut Self::Source;
    fn buffer_position(&self) -> u64;
    fn error_position(&self) -> u64;
    /// The namespace of an element (the plain reader is only used when no path asks).
    fn resolve_element(&self, name: QName) -> ResolveResult<'_>;
    /// The namespace of an attribute (the plain reader is only used when no path asks).
    fn resolve_attribute(&self, name: QName) -> ResolveResult<'_>;
}

impl<S: BufRead> Events for Reader<S> {
    type Source = S;
    const PLAIN: bool = true;
    #[inline]
    fn read_event_into<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<Event<'b>, XmlError> {
        Reader::read_event_into(self, buf)
    }
    fn get_ref(&self) -> &S {
        Reader::get_ref(self)
    }
    fn get_mut(&mut self) -> &mut S {
        Reader::get_mut(self)
    }
    fn buffer_position(&self) -> u64 {
        Reader::buffer_position(self)
    }
    fn error_position(&self) -> u64 {
        Reader::error_position(self)
    }
    fn resolve_element(&self, _: QName) -> ResolveResult<'_> {
        ResolveResult::Unbound
    }
    fn resolve_attribute(&self, _: QName) -> ResolveResult<'_> {
        ResolveResult::Unbound
    }
}

impl<S: BufRead> Events for NsReader<S> {
    type Source = S;
    const PLAIN: bool = false;
    #[inline]
    fn read_event_into<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<Event<'b>, XmlError> {
        NsReader::read_event_into(self, buf)
    }
    fn get_ref(&self) -> &S {
        let r: &Reader<S> = self;
        r.get_ref()
    }
    fn get_mut(&mut self) -> &mut S {
        NsReader::get_mut(self)
    }
    fn buffer_position(&self) -> u64 {
        let r: &Reader<S> = self;
        r.buffer_position()
    }
    fn error_position(&self) -> u64 {
        let r: &Reader<S> = self;
        r.error_position()
    }
    fn resolve_element(&self, name: QName) -> ResolveResult<'_> {
        NsReader::resolve_element(self, name).0
    }
    fn resolve_attribute(&self, name: QName) -> ResolveResult<'_> {
        NsReader::resolve_attribute(self, name).0
    }
}

/// How the event loop stopped.
enum Step {
    Document(RawDocument),
    /// The end of the file, on this line.
    Eof(u64),
    Fatal(Problem),
}

/// Reads events until a record ends, the file ends, or it turns out to be unusable.
fn pump<C: Read, Rd: Events<Source = LineCounter<C>>>(
    rd: &mut Rd,
    buf: &mut Vec<u8>,
    st: &mut State,
) -> Step {
    loop {
        let counter = rd.get_mut();
        counter.mark();
        let line = counter.mark_line();
        buf.clear();
        let step = match rd.read_event_into(buf) {
            Ok(Event::Start(e)) => match Rd::PLAIN.then(|| check_ns_declarations(&e)) {
                Some(Err(err)) => Err(st.xml_error(XmlError::Namespace(err), rd)),
                _ => st.start(&e, false, line, rd),
            },
            Ok(Event::Empty(e)) => match Rd::PLAIN.then(|| check_ns_declarations(&e)) {
                Some(Err(err)) => Err(st.xml_error(XmlError::Namespace(err), rd)),
                _ => st.start(&e, true, line, rd),
            },
            Ok(Event::End(_)) => Ok(st.end_element()),
            Ok(Event::Text(t)) => st.text(&t, false, line, rd.get_ref()).map(|_| false),
            Ok(Event::CData(t)) => st.text(&t, true, line, rd.get_ref()).map(|_| false),
            Ok(Event::DocType(d)) => st.doctype(&d, line).map(|_| false),
            Ok(Event::Eof) => return Step::Eof(line),
            Ok(Event::Decl(_) | Event::PI(_) | Event::Comment(_)) => Ok(false),
            Err(e) => Err(st.xml_error(e, rd)),
        };
        // (a finished record waits in `st.ready`: no event moves a document around)
        match step {
            Ok(true) => {
                return Step::Document(st.ready.take().expect("a finished record"));
            }
            Ok(false) => {}
            Err(p) => return Step::Fatal(p),
        }
    }
}

const XML_NAMESPACE: &[u8] = b"http://www.w3.org/XML/1998/namespace";
const XMLNS_NAMESPACE: &[u8] = b"http://www.w3.org/2000/xmlns/";

/// The checks quick-xml's `NsReader` makes of the namespace declarations of a start tag
/// (its `NamespaceResolver::push`), for the plain reader: the same errors, in the same
/// order.
#[inline]
fn check_ns_declarations(e: &BytesStart) -> Result<(), NamespaceError> {
    let raw = e.attributes_raw();
    if raw.is_empty() || !raw.windows(5).any(|w| w == b"xmlns") {
        return Ok(());
    }
    for a in e.attributes().with_checks(false) {
        let Ok(a) = a else { break };
        let v = &*a.value;
        match a.key.as_namespace_binding() {
            Some(PrefixDeclaration::Named(b"xml")) => {
                if v != XML_NAMESPACE {
                    return Err(NamespaceError::InvalidXmlPrefixBind(v.to_vec()));
                }
            }
            Some(PrefixDeclaration::Named(b"xmlns")) => {
                return Err(NamespaceError::InvalidXmlnsPrefixBind(v.to_vec()));
            }
            Some(PrefixDeclaration::Named(prefix)) => {
                if v == XML_NAMESPACE {
                    return Err(NamespaceError::InvalidPrefixForXml(prefix.to_vec()));
                } else if v == XMLNS_NAMESPACE {
                    return Err(NamespaceError::InvalidPrefixForXmlns(prefix.to_vec()));
                }
            }
            Some(PrefixDeclaration::Default) | None => {}
        }
    }
    Ok(())
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
        // an attribute in a namespace needs the resolving reader too
        let resolve = resolve
            || uses_ns
            || paths.iter().any(
                |c| matches!(&c.path.target, Target::Attr(t) if matches!(t.ns, NsTest::Uri(_))),
            );
        let mut record = record;
        let mut ids = NameIds::default();
        for t in record
            .steps
            .iter_mut()
            .chain(paths.iter_mut().flat_map(|c| c.path.steps.iter_mut()))
        {
            if let Some(l) = &t.local {
                t.id = ids.intern(l);
            }
        }
        ids.build();
        let n_paths = paths.len();
        let mut by_name = vec![Vec::new(); ids.names.len()];
        let mut wild = Vec::new();
        for (p, c) in paths.iter().enumerate() {
            for (k, t) in c.path.steps.iter().enumerate() {
                match t.local {
                    Some(_) => by_name[t.id as usize].push((p as u32, k as u32)),
                    None => wild.push((p as u32, k as u32)),
                }
            }
        }
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
        let input = if encoding == UTF_8 {
            // UTF-8 is read as it is (the byte-order mark skipped), checked by LineCounter
            let mut head = Cursor::new(head);
            if head.get_ref().starts_with(&[0xEF, 0xBB, 0xBF]) {
                head.set_position(3);
            }
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
            st: State {
                record,
                paths,
                record_anchored,
                line_anchored,
                key_names: slots.key.clone(),
                ids,
                header: RowBuf::new(slots.header.len()),
                key: RowBuf::new(slots.key.len()),
                line: RowBuf::new(slots.lines.len()),
                last_lines: 0,
                levels: Vec::new(),
                names: Vec::new(),
                alive: Vec::new(),
                reach: vec![0; n_paths],
                by_name,
                wild,
                rec: None,
                ready: None,
                captures: Vec::new(),
                spare: Vec::new(),
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
                if self.st.repeats.is_some() {
                    return None;
                }
                // keys that came back after leaving the key log's window
                match std::mem::take(&mut self.st.keys).repeated() {
                    Ok((r, true)) => Some(Err(SourceError::Repeated(r))),
                    Ok(_) => None,
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

impl State {
    /// The open elements as a path, `/Export/Invoice/Lines`.
    fn element_path(&self) -> Option<String> {
        if self.levels.is_empty() {
            return None;
        }
        let mut path = Vec::new();
        for i in 0..self.levels.len() {
            path.push(b'/');
            path.extend_from_slice(self.level_name(i));
        }
        Some(lossy(&path))
    }

    /// The name of the open element `levels[i]`.
    fn level_name(&self, i: usize) -> &[u8] {
        let l = &self.levels[i];
        if l.name != NO_ID {
            return &self.ids.names[l.name as usize];
        }
        let start = i.checked_sub(1).map_or(0, |j| self.levels[j].name_end);
        &self.names[start as usize..l.name_end as usize]
    }

    fn malformed(&self, line: u64, col: Option<u64>, what: &str, value: Option<String>) -> Problem {
        Problem::read(
            Code::Malformed,
            format!("The file is not well-formed XML: {what}"),
        )
        .with_line(line)
        .with_character(col)
        .with_column_opt(self.element_path())
        .with_value_opt(value)
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

    fn xml_error<C: Read, Rd: Events<Source = LineCounter<C>>>(
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

    /// The attributes of a start tag: well-formed (names that are XML names, a space
    /// before each, no `<` in a value, entities that exist), each name once, at most
    /// [`MAX_ATTRIBUTES`]. Linear: past a few attributes, names are looked up in a set.
    fn check_attributes<C: Read>(
        &self,
        e: &BytesStart,
        empty: bool,
        line: u64,
        counter: &LineCounter<C>,
    ) -> Result<(), Problem> {
        // the tag's bytes after `<`: its name, then the attributes, which borrow from it
        let tag: &[u8] = e;
        let offset = |part: &[u8]| {
            (part.as_ptr() as usize)
                .checked_sub(tag.as_ptr() as usize)
                .filter(|&o| o <= tag.len())
                .unwrap_or(0)
        };
        let place = |at: usize| {
            let line = line + count_newlines(&tag[..at]);
            counter.place_in_tag(tag, empty, at, line)
        };
        let element = || lossy(e.name().as_ref());
        const FEW: usize = 8;
        let mut few: [&[u8]; FEW] = [&[]; FEW];
        let mut set: HashSet<&[u8]> = HashSet::new();
        let mut n = 0usize;
        let mut attrs = e.attributes();
        attrs.with_checks(false);
        for a in attrs {
            let a = a.map_err(|err| {
                self.malformed(
                    line,
                    None,
                    &format!("an attribute of <{}> is malformed: {err}", element()),
                    None,
                )
            })?;
            let key = a.key.into_inner();
            let at = offset(key);
            let bad = |what: String, at: usize| {
                let (l, c) = place(at);
                self.malformed(l, c, &what, Some(lossy(key)))
            };
            if !is_xml_name(key) {
                return Err(bad(
                    format!(
                        "the attribute name `{}` in <{}> is not an XML name ({NAME_RULE})",
                        lossy(key),
                        element()
                    ),
                    at,
                ));
            }
            if at > 0 && !matches!(tag[at - 1], b' ' | b'\t' | b'\r' | b'\n') {
                return Err(bad(
                    format!(
                        "there is no space before the attribute {} of <{}>",
                        lossy(key),
                        element()
                    ),
                    at,
                ));
            }
            n += 1;
            let repeated = if n <= FEW {
                let seen = few[..n - 1].contains(&key);
                few[n - 1] = key;
                if n == FEW {
                    set.extend(few);
                }
                seen
            } else {
                !set.insert(key)
            };
            if repeated {
                return Err(bad(
                    format!(
                        "the attribute {} appears twice in <{}>",
                        lossy(key),
                        element()
                    ),
                    at,
                ));
            }
            if n > MAX_ATTRIBUTES {
                return Err(bad(
                    format!(
                        "<{}> has more than {} attributes, more than erpdrop reads on one element",
                        element(),
                        group_digits(MAX_ATTRIBUTES as u64)
                    ),
                    at,
                ));
            }
            let v: &[u8] = &a.value;
            if let Some(lt) = v.iter().position(|&b| b == b'<') {
                return Err(bad(
                    format!(
                        "the value of the attribute {} of <{}> holds a `<` (write it &lt;)",
                        lossy(key),
                        element()
                    ),
                    offset(v) + lt,
                ));
            }
            if v.contains(&b'&') {
                let s = String::from_utf8_lossy(v);
                match unescape(&s) {
                    Err(err) => return Err(self.escape_problem(err, &s, line)),
                    Ok(Cow::Owned(u)) => {
                        if let Some(ch) = forbidden_char(&u) {
                            let at = offset(v) + s.find("&#").unwrap_or(0);
                            let (l, c) = place(at);
                            return Err(self.forbidden_reference(ch, l, c));
                        }
                    }
                    Ok(Cow::Borrowed(_)) => {}
                }
            }
        }
        Ok(())
    }

    /// A character reference (`&#1;`) to a character that XML 1.0 forbids.
    fn forbidden_reference(&self, ch: char, line: u64, col: Option<u64>) -> Problem {
        let what = format!(
            "a character reference names U+{:04X}, a character XML does not allow (XML 1.0 allows no control character but tab, line feed and carriage return, nor U+FFFE and U+FFFF)",
            ch as u32
        );
        self.malformed(line, col, &what, Some(format!("U+{:04X}", ch as u32)))
    }

    fn start<C: Read, Rd: Events<Source = LineCounter<C>>>(
        &mut self,
        e: &BytesStart,
        empty: bool,
        line: u64,
        rd: &Rd,
    ) -> Result<bool, Problem> {
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
        // the paths that may continue below the parent
        let (from, to) = match self.levels.last() {
            Some(parent) if self.rec.is_some() => (parent.alive_start, parent.alive_end),
            _ => (0, 0),
        };
        // the element's name is looked up (and its namespace resolved) once, and only
        // when some path may match it
        let test = self.rec.is_none() || from < to;
        let local = local_part(qname.as_ref());
        let local_len = local.len();
        let id = if test { self.ids.get(local) } else { NO_ID };
        // a name of the mapping's was checked once
        let mapped = id != NO_ID && local_len == qname.as_ref().len();
        let named = if mapped {
            self.ids.xml[id as usize]
        } else {
            is_xml_name(qname.as_ref())
        };
        if !named {
            let (l, c) = rd.get_ref().place_in_tag(e, empty, 0, line);
            return Err(self.malformed(
                l,
                c,
                &format!(
                    "the element name `{}` is not an XML name ({NAME_RULE})",
                    lossy(qname.as_ref())
                ),
                Some(lossy(qname.as_ref())),
            ));
        }
        if !e.attributes_raw().is_empty() {
            self.check_attributes(e, empty, line, rd.get_ref())?;
        }
        let res = if test && self.uses_ns {
            rd.resolve_element(qname)
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
                if prev && self.record.steps[k].matches_element(qname, id, &res) {
                    rec_bits |= 1 << k;
                    self.best = self.best.max(k + 1);
                }
            }
            starts_record = rec_bits & (1 << (n - 1)) != 0;
        }

        // a name of the mapping is kept as its number, any other is copied
        let name = if id != NO_ID && local_len == qname.as_ref().len() {
            id
        } else {
            self.names.extend_from_slice(qname.as_ref());
            NO_ID
        };
        let alive_start = self.alive.len() as u32;
        self.levels.push(Level {
            name,
            name_end: self.names.len() as u32,
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
                lines: Vec::with_capacity(self.last_lines),
                current: None,
            });
            self.header.reset();
            self.key.reset();
            for i in 0..self.record_anchored.len() {
                let p = self.record_anchored[i];
                self.make_alive(p, depth);
                if self.paths[p as usize].path.steps.is_empty() {
                    self.full_match(p, e, line, depth, rd)?;
                }
            }
        } else if from < to {
            let Some(rec) = &self.rec else {
                unreachable!("paths are alive only inside a record")
            };
            let record_depth = rec.depth;
            let line_depth = rec.current.as_ref().map_or(usize::MAX, |l| l.depth);
            // Only the steps that test this name (or `*`) can match: for each, whether
            // its path is alive at the parent and this element is its step's depth.
            let named = self.by_name.get(id as usize).map_or(0, Vec::len);
            for i in 0..named + self.wild.len() {
                let (p, k) = match i.checked_sub(named) {
                    None => self.by_name[id as usize][i],
                    Some(w) => self.wild[w],
                };
                if self.reach[p as usize] as usize != depth - 1 {
                    continue;
                }
                let c = &self.paths[p as usize];
                let base = if c.at_line { line_depth } else { record_depth };
                let r = depth.saturating_sub(base);
                let steps = &c.path.steps;
                if r == k as usize + 1 && steps[k as usize].matches_element(qname, id, &res) {
                    let full = r == steps.len();
                    self.make_alive(p, depth);
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
        Ok(false)
    }

    /// Path `p` is alive at the element being opened, at `depth`.
    #[inline]
    fn make_alive(&mut self, p: u32, depth: usize) {
        let r = &mut self.reach[p as usize];
        self.alive.push((p, *r));
        *r = depth as u32;
    }

    /// Where the values of `space` go, while its record (or line) is being read.
    #[inline]
    fn row_buf(&mut self, space: Space) -> Option<&mut RowBuf> {
        let rec = self.rec.as_ref()?;
        match space {
            Space::Header => Some(&mut self.header),
            Space::Key => Some(&mut self.key),
            Space::Line => {
                rec.current.as_ref()?;
                Some(&mut self.line)
            }
        }
    }

    /// Moves the text of a direct capture (there is at most one, and its text is at the
    /// end of its row's buffer) into a buffer of its own, before anything else is
    /// written into a row.
    fn spill(&mut self) {
        let Some(i) = self.captures.iter().position(|c| c.direct) else {
            return;
        };
        let mut text = self.spare.pop().unwrap_or_default();
        let (space, start) = (self.captures[i].space, self.captures[i].start as usize);
        if let Some(b) = self.row_buf(space) {
            text.extend_from_slice(&b.text[start..]);
            b.text.truncate(start);
        }
        let c = &mut self.captures[i];
        c.direct = false;
        c.text = text;
    }

    /// Path `p` reaches element `e`.
    fn full_match<Rd: Events>(
        &mut self,
        p: u32,
        e: &BytesStart,
        line: u64,
        depth: usize,
        rd: &Rd,
    ) -> Result<(), Problem> {
        let role = self.paths[p as usize].role;
        match role {
            Role::Lines => {
                let Some(rec) = self.rec.as_mut() else {
                    return Ok(());
                };
                if rec.current.is_some() {
                    return Ok(());
                }
                rec.current = Some(LineState { depth, line });
                self.line.reset();
                for j in 0..self.line_anchored.len() {
                    let q = self.line_anchored[j];
                    self.make_alive(q, depth);
                    if self.paths[q as usize].path.steps.is_empty() {
                        self.full_match(q, e, line, depth, rd)?;
                    }
                }
            }
            Role::Slot(space, slot) => {
                let unset = self
                    .row_buf(space)
                    .and_then(|b| b.vals.get(slot))
                    .is_some_and(|v| v.state == UNSET);
                if !unset {
                    return Ok(());
                }
                match &self.paths[p as usize].path.target {
                    Target::Element | Target::OwnText => {
                        let own = self.paths[p as usize].path.target == Target::OwnText;
                        // the only capture writes into its row directly; a second one
                        // takes the first one's text out of the row
                        let direct = self.captures.is_empty();
                        let (text, start) = if direct {
                            let start = self.row_buf(space).map_or(0, |b| b.text.len() as u32);
                            (Vec::new(), start)
                        } else {
                            self.spill();
                            (self.spare.pop().unwrap_or_default(), 0)
                        };
                        self.captures.push(Capture {
                            space,
                            slot,
                            depth,
                            own,
                            direct,
                            start,
                            text,
                            line,
                        });
                        if let Some(v) = self.row_buf(space).and_then(|b| b.vals.get_mut(slot)) {
                            v.state = CAPTURING;
                        }
                    }
                    Target::Attr(test) => {
                        if let Some(v) = self.find_attr(e, test, rd, line)? {
                            self.spill();
                            if let Some(b) = self.row_buf(space) {
                                b.set(slot, v.as_bytes(), line);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The value of the attribute of `e` that `test` names; an unprefixed attribute wins
    /// over a prefixed one with the same local name.
    fn find_attr<Rd: Events>(
        &self,
        e: &BytesStart,
        test: &NameTest,
        rd: &Rd,
        line: u64,
    ) -> Result<Option<String>, Problem> {
        let mut found = None;
        // (checked when the element was opened: no need to look for duplicates again)
        let mut attrs = e.attributes();
        attrs.with_checks(false);
        for a in attrs.flatten() {
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
                NsTest::Uri(u) => matches!(rd.resolve_attribute(key),
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

    fn text<C: Read>(
        &mut self,
        raw: &[u8],
        cdata: bool,
        line: u64,
        counter: &LineCounter<C>,
    ) -> Result<(), Problem> {
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
        let (amp, has_cr, bracket) = amp_cr_bracket(raw);
        if bracket && !cdata {
            if let Some(at) = raw.windows(3).position(|w| w == b"]]>") {
                let (l, c) = counter.place_in_text(at, line + count_newlines(&raw[..at]));
                return Err(self.malformed(
                    l,
                    c,
                    "`]]>` stands in text, outside a CDATA section (write it ]]&gt;)",
                    Some("]]>".to_string()),
                ));
            }
        }
        let has_amp = !cdata && amp;
        if self.captures.is_empty() && !has_amp {
            return Ok(());
        }
        let depth = self.levels.len();
        if !has_amp && !has_cr {
            // the usual value: taken as it is (UTF-8, checked with its row)
            self.append(raw, depth);
            return Ok(());
        }
        let s = String::from_utf8_lossy(raw);
        let s = normalize_newlines(&s);
        let unescaped;
        let text: &str = if has_amp {
            unescaped = unescape(&s).map_err(|e| self.escape_problem(e, &s, line))?;
            if let Cow::Owned(u) = &unescaped {
                if let Some(ch) = forbidden_char(u) {
                    let at = raw.windows(2).position(|w| w == b"&#").unwrap_or(0);
                    let (l, c) = counter.place_in_text(at, line + count_newlines(&raw[..at]));
                    return Err(self.forbidden_reference(ch, l, c));
                }
            }
            &unescaped
        } else {
            &s
        };
        self.append(text.as_bytes(), depth);
        Ok(())
    }

    /// Adds text (of an element at `depth`) to the captures that take it.
    #[inline]
    fn append(&mut self, text: &[u8], depth: usize) {
        for c in &mut self.captures {
            if !c.own || c.depth == depth {
                if c.direct {
                    let b = match c.space {
                        Space::Header => &mut self.header,
                        Space::Key => &mut self.key,
                        Space::Line => &mut self.line,
                    };
                    b.text.extend_from_slice(text);
                } else {
                    c.text.extend_from_slice(text);
                }
            }
        }
    }

    /// Closes the innermost element; true when it was a record (then in `ready`).
    fn end_element(&mut self) -> bool {
        let depth = self.levels.len();
        let mut i = 0;
        while i < self.captures.len() {
            if self.captures[i].depth == depth {
                let mut c = self.captures.swap_remove(i);
                if c.direct {
                    if let Some(b) = self.row_buf(c.space) {
                        b.close(c.slot, c.start, c.line);
                    }
                    continue;
                }
                if let Some(b) = self.row_buf(c.space) {
                    b.set(c.slot, &c.text, c.line);
                }
                c.text.clear();
                if c.text.capacity() <= 1 << 20 {
                    self.spare.push(c.text);
                }
            } else {
                i += 1;
            }
        }
        let mut done = false;
        if let Some(rec) = self.rec.as_mut() {
            if rec.current.as_ref().is_some_and(|l| l.depth == depth) {
                let l = rec.current.take().expect("a current line");
                rec.lines.push(self.line.row(l.line));
            }
            if rec.depth == depth {
                let doc = self.finish_record();
                self.ready = Some(doc);
                done = true;
            }
        }
        if let Some(lvl) = self.levels.pop() {
            for &(p, prev) in self.alive[lvl.alive_start as usize..].iter().rev() {
                self.reach[p as usize] = prev;
            }
            self.alive.truncate(lvl.alive_start as usize);
        }
        self.names
            .truncate(self.levels.last().map_or(0, |l| l.name_end as usize));
        if self.levels.is_empty() {
            self.root_closed = true;
        }
        done
    }

    fn record_name(&self) -> &str {
        self.record.names.last().map_or("record", String::as_str)
    }

    fn finish_record(&mut self) -> RawDocument {
        let rec = self.rec.take().expect("a record");
        self.last_lines = rec.lines.len();
        let parts: Vec<String> = (0..self.key.vals.len())
            .map(|i| {
                self.key
                    .get(i)
                    .map_or_else(String::new, |s| s.trim().to_string())
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
            header: self.header.row(rec.line),
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
            doc.problems.push(
                Problem::new(Stage::Map, Code::Required, &msg)
                    .with_line(rec.line)
                    .with_column(cols.clone())
                    .with_value(String::new()),
            );
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
                    doc.problems.push(
                        Problem::new(Stage::Validate, Code::Duplicate, &msg)
                            .with_document(shown.clone())
                            .with_line(rec.line)
                            .with_column(cols.clone())
                            .with_value(shown),
                    );
                }
            }
        }
        doc.key = key;
        doc
    }

    fn eof(&self, line: u64) -> Result<(), Problem> {
        if let Some(top) = self.levels.last() {
            let name = lossy(self.level_name(self.levels.len() - 1));
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
                Err(SourceError::Environment(e)) => panic!("a temporary file failed: {e}"),
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
    fn a_value_being_collected_is_kept_when_others_are_found_inside_it() {
        // `.` is collected straight into the record's values until `B/@x`, `B` and the
        // lines' values are found inside it; each value stays whole
        let xml = b"<R><Doc>a<B x='7'>b</B>c<Ls><L>1<M>m</M></L><L>2</L></Ls>d</Doc></R>";
        let s = slots(&[".", "B/@x", "B", "Ls"], &[".", "M"], &["B/@x"]);
        let o = opts("/R/Doc", Some("Ls/L"), &[]);
        let docs = read_with(xml, &o, &s).unwrap();
        let h = &docs[0].header;
        assert_eq!(h.get(0), Some("abc1m2d"));
        assert_eq!(h.get(1), Some("7"));
        assert_eq!(h.get(2), Some("b"));
        assert_eq!(h.get(3), Some("1m2"));
        let lines: Vec<_> = docs[0].lines.iter().map(|l| (l.get(0), l.get(1))).collect();
        assert_eq!(lines, [(Some("1m"), Some("m")), (Some("2"), None)]);
        both_readers(xml, &o, &s);
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
        assert!(p.message().contains("line 2"), "{}", p.message());
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
        assert!(
            p.message().contains("line 3, character 7"),
            "{}",
            p.message()
        );
        assert!(p.message().contains("opened on line 3"), "{}", p.message());
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
        assert!(p.message().contains("not closed"), "{}", p.message());
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
        assert!(p.message().contains("&amp;"), "{}", p.message());
        let p = fatal(b"<R><D id=\"1\" x=\"&bogus;\"/></R>");
        assert_eq!(p.value.as_deref(), Some("&bogus;"));
        let p = fatal(b"<R><D id=\"1\" x=noquotes/></R>");
        assert_eq!(p.code, Code::Malformed);
    }

    #[test]
    fn text_outside_the_root_and_second_roots_are_malformed() {
        let p = fatal(b"No;Date;Total\n1;2;3\n");
        assert_eq!(p.code, Code::Malformed);
        assert!(p.message().contains("not an XML file"), "{}", p.message());
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
            p.message()
                .contains("DTDs and entity declarations are not allowed"),
            "{}",
            p.message()
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
        assert!(
            p.message().contains("nested more than 256"),
            "{}",
            p.message()
        );
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
            p.message().contains("the root element is <Other>"),
            "{}",
            p.message()
        );
        let p = read(b"<R><X/></R>", "/R/Invoices/D", None, &s).unwrap_err();
        assert!(
            p.message().contains("the file has /R but no <Invoices>"),
            "{}",
            p.message()
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
        assert!(p.message().contains("empty step"), "{}", p.message());
    }

    /// Reads `bytes` with the plain reader and with the namespace-resolving one: the
    /// documents (or the fatal problem) must be the same, to the line and character.
    fn both_readers(bytes: &[u8], o: &SourceOptions, s: &Slots) -> String {
        let run = |resolve: bool| -> (bool, String) {
            let tap = Rc::new(RefCell::new(Tap::default()));
            let mut src = match XmlSource::open_with(bytes, tap, o, s, resolve) {
                Ok(src) => src,
                Err(p) => return (false, format!("{p:?}")),
            };
            assert_eq!(src.reader.is_plain(), !resolve);
            let mut out = String::new();
            while let Some(d) = src.next_document() {
                match d {
                    Ok(d) => out.push_str(&format!("{d:?}\n")),
                    Err(SourceError::Fatal(p)) => out.push_str(&format!("fatal {p:?}\n")),
                    Err(_) => out.push_str("other\n"),
                }
            }
            (true, out)
        };
        let (plain, ns) = (run(false), run(true));
        assert_eq!(plain, ns, "the two readers differ");
        plain.1
    }

    #[test]
    fn the_plain_reader_reads_as_the_resolving_one() {
        let invoices = slots(
            &[
                "Number",
                "@type",
                "Customer/@code",
                "Customer/Name",
                "Missing",
                ".",
            ],
            &["@no", "Item", "Qty", "text()"],
            &["@id"],
        );
        let o = opts("/Export/Invoices/Invoice", Some("Lines/Line"), &[]);
        let out = both_readers(INVOICES.as_bytes(), &o, &invoices);
        assert!(out.contains("Acme & Sons"), "{out}");
        let s = slots(&["N", "@a", "text()"], &[], &["@id"]);
        let o = opts("/R/D", None, &[]);
        let cases: Vec<&[u8]> = vec![
            // prefixes matched as written, and namespace declarations
            br#"<x:R xmlns:x="urn:x" xmlns="urn:d"><x:D id="1" x:a="2"><x:N>v</x:N></x:D><D id="2"><N>w</N></D></x:R>"#,
            // declarations quick-xml refuses (the resolving reader's errors)
            br#"<R><D id="1" xmlns:xml="urn:wrong"><N>v</N></D></R>"#,
            br#"<R><D id="1" xmlns:xml="http://www.w3.org/XML/1998/namespace"><N>v</N></D></R>"#,
            br#"<R><D id="1" xmlns:xmlns="urn:x"/></R>"#,
            br#"<R xmlns:p="http://www.w3.org/XML/1998/namespace"><D id="1"/></R>"#,
            br#"<R><D id="1"/><D id="2" xmlns:q="http://www.w3.org/2000/xmlns/"/></R>"#,
            b"<R>\n<D id=\"1\">\n  <N>1</Nx>\n</D></R>",
            b"<R>\n<D id=\"1\"><N>one\ntwo &nbsp; three</N></D></R>",
            b"<R><D id=\"1\" x=noquotes/></R>",
            b"<R>\r\n<D id=\"1\" a=\"x\r\ny&#10;z\">\r\n<N>one\r\ntwo &lt;&#x41;&gt;<![CDATA[a\r\nb]]></N></D></R>",
            b"<R>\n<D id=\"1\">\n<N>ok</N>\n<Name>\xCE\xCE</Name></D></R>",
            b"<R><D id=\"1\"/></R>\n\xD0",
            b"<R>\n<D id=\"1\">\n<N>1</N\n",
            b"<R/>\n<R/>",
            b"\xEF\xBB\xBF<R><D id=\"1\"><N>\xD0\x96</N></D></R>",
        ];
        for xml in cases {
            both_readers(xml, &o, &s);
        }
        let out = both_readers(br#"<R><D id="1" xmlns:xml="urn:wrong"/></R>"#, &o, &s);
        assert!(out.contains("a namespace declaration is wrong"), "{out}");
        // a path with a namespace URI needs the resolving reader
        let o = opts("/e:Export/e:Doc", None, &[("e", "urn:export")]);
        let tap = Rc::new(RefCell::new(Tap::default()));
        let src = XmlSource::open(&b"<x:Export xmlns:x='urn:export'/>"[..], tap, &o, &s).unwrap();
        assert!(!src.reader.is_plain());
        let o = opts("/R/D", None, &[("m", "urn:m")]);
        let tap = Rc::new(RefCell::new(Tap::default()));
        let src =
            XmlSource::open(&b"<R/>"[..], tap, &o, &slots(&["@m:id"], &[], &["@id"])).unwrap();
        assert!(!src.reader.is_plain(), "an attribute in a namespace");
        let tap = Rc::new(RefCell::new(Tap::default()));
        let src = XmlSource::open(&b"<R/>"[..], tap, &o, &s).unwrap();
        assert!(src.reader.is_plain());
    }

    #[test]
    fn newlines_are_indexed_in_any_position() {
        for len in [0usize, 1, 7, 8, 9, 31, 64, 100] {
            let b: Vec<u8> = (0..len)
                .map(|i| {
                    if i % 3 == 0 || i % 7 == 6 {
                        b'\n'
                    } else {
                        b'a'
                    }
                })
                .collect();
            let mut nl = Vec::new();
            index_newlines(&b, &mut nl);
            let want: Vec<u32> = (0..len as u32)
                .filter(|&i| b[i as usize] == b'\n')
                .collect();
            assert_eq!(nl, want, "{len}");
        }
    }

    #[test]
    fn forbidden_characters_are_found_in_any_position_and_stop_the_index() {
        let text = "ab\tc\r\nd€\u{fffd}\u{efbf}x\ny ﻿\n".repeat(3);
        let mut nl = Vec::new();
        // tab, CR, U+FFFD and other characters with the lead byte 0xEF are allowed
        assert_eq!(index_newlines(text.as_bytes(), &mut nl), None);
        assert_eq!(nl.len(), 9);
        for bad in [
            "\0", "\u{1}", "\u{b}", "\u{c}", "\u{1f}", "\u{fffe}", "\u{ffff}",
        ] {
            for at in 0..20 {
                let mut t = text.clone();
                let at = (0..=at).rev().find(|&i| t.is_char_boundary(i)).unwrap();
                t.insert_str(at, bad);
                let mut nl = Vec::new();
                assert_eq!(
                    index_newlines(t.as_bytes(), &mut nl),
                    Some(at),
                    "{bad:?} at {at}"
                );
                let want: Vec<u32> = (0..at as u32)
                    .filter(|&i| t.as_bytes()[i as usize] == b'\n')
                    .collect();
                assert_eq!(nl, want, "{bad:?} at {at}");
            }
        }
    }

    #[test]
    fn xml_names() {
        for good in [
            "Invoice", "b:Amount", "x-id", "_a", "a.b", "Счёт", "a·b", "A1", ":x", "日付",
        ] {
            assert!(is_xml_name(good.as_bytes()), "{good:?}");
        }
        for bad in [
            "",
            ",status",
            "1st",
            "-a",
            ".a",
            "a b",
            "a,b",
            "·a",
            "a\u{2000}",
            "a\"",
            "a=b",
        ] {
            assert!(!is_xml_name(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn names_are_found_by_number() {
        let mut ids = NameIds::default();
        let names: Vec<&[u8]> = vec![
            b"InvoiceNo",
            b"InvoiceDate",
            b"Line",
            b"LineNo",
            b"LineTotal",
            b"A",
            b"\xD0\x96",
            b"VeryLongElementNameIndeed",
        ];
        for n in &names {
            ids.intern(n);
        }
        ids.build();
        for (i, n) in names.iter().enumerate() {
            assert_eq!(ids.get(n), i as u32);
        }
        for n in [
            &b"InvoiceN0"[..],
            b"Lin",
            b"",
            b"B",
            b"LineTota1",
            b"VeryLongElementNameIndeeD",
        ] {
            assert_eq!(ids.get(n), NO_ID, "{n:?}");
        }
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
