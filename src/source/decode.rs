//! Turning an export's bytes into UTF-8, strictly: a byte sequence that is not valid in
//! the declared encoding is an error with its line, never a silent replacement.
//!
//! A byte-order mark wins over the declared encoding (an Excel "Unicode text" export is
//! UTF-16 whatever the mapping says). UTF-8 input passes through untouched: the CSV and
//! XML readers check it per field, where they can name the column.

use super::count_newlines;
use encoding_rs::{DecoderResult, Encoding, UTF_16BE, UTF_16LE, UTF_8};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::io::{self, Read};
use std::rc::Rc;
use std::sync::OnceLock;

/// Looks an encoding up by the names users write (`utf-8`, `windows-1251`, `cp1252`,
/// `latin1`, `utf-16`...).
pub fn encoding_for_label(label: &str) -> Option<&'static Encoding> {
    let l = label.trim().to_ascii_lowercase();
    let l = match l.as_str() {
        "utf-16" | "utf16" | "ucs-2" => "utf-16le",
        "cp1251" | "win1251" | "windows1251" => "windows-1251",
        "cp1252" | "win1252" | "windows1252" => "windows-1252",
        "cp1250" | "win1250" => "windows-1250",
        "cp866" | "dos-866" => "ibm866",
        other => other,
    };
    Encoding::for_label(l.as_bytes())
}

/// A DOS code page that encoding_rs (the web's list of encodings) does not have: CP437,
/// the IBM PC's, which bank and mainframe exports still use. Its lower half is ASCII;
/// every byte is a character, so no byte is invalid in it.
#[derive(Debug, Clone, Copy)]
pub struct CodePage {
    pub name: &'static str,
    upper: &'static [char; 128],
    /// The byte of each character of the upper half, built on first use.
    reverse: &'static OnceLock<HashMap<char, u8>>,
}

impl PartialEq for CodePage {
    fn eq(&self, other: &CodePage) -> bool {
        self.name == other.name
    }
}

impl Eq for CodePage {}

impl CodePage {
    /// The character of a byte.
    pub fn char_of(&self, b: u8) -> char {
        if b < 0x80 {
            char::from(b)
        } else {
            self.upper[usize::from(b - 0x80)]
        }
    }

    /// The byte of a character; `None` for a character the code page does not have.
    pub fn byte_of(&self, c: char) -> Option<u8> {
        if c.is_ascii() {
            return Some(c as u8);
        }
        let reverse = self.reverse.get_or_init(|| {
            (0x80..=0xFFu8)
                .map(|b| (self.upper[usize::from(b - 0x80)], b))
                .collect()
        });
        reverse.get(&c).copied()
    }
}

/// CP437's characters for the bytes 0x80..=0xFF.
static CP437_UPPER: [char; 128] = [
    'Ç', 'ü', 'é', 'â', 'ä', 'à', 'å', 'ç', 'ê', 'ë', 'è', 'ï', 'î', 'ì', 'Ä', 'Å', 'É', 'æ', 'Æ',
    'ô', 'ö', 'ò', 'û', 'ù', 'ÿ', 'Ö', 'Ü', '¢', '£', '¥', '₧', 'ƒ', 'á', 'í', 'ó', 'ú', 'ñ', 'Ñ',
    'ª', 'º', '¿', '⌐', '¬', '½', '¼', '¡', '«', '»', '░', '▒', '▓', '│', '┤', '╡', '╢', '╖', '╕',
    '╣', '║', '╗', '╝', '╜', '╛', '┐', '└', '┴', '┬', '├', '─', '┼', '╞', '╟', '╚', '╔', '╩', '╦',
    '╠', '═', '╬', '╧', '╨', '╤', '╥', '╙', '╘', '╒', '╓', '╫', '╪', '┘', '┌', '█', '▄', '▌', '▐',
    '▀', 'α', 'ß', 'Γ', 'π', 'Σ', 'σ', 'µ', 'τ', 'Φ', 'Θ', 'Ω', 'δ', '∞', 'φ', 'ε', '∩', '≡', '±',
    '≥', '≤', '⌠', '⌡', '÷', '≈', '°', '∙', '·', '√', 'ⁿ', '²', '■', '\u{a0}',
];

/// CP437 (IBM PC, "OEM United States").
pub const CP437: CodePage = CodePage {
    name: "CP437",
    upper: &CP437_UPPER,
    reverse: &CP437_REVERSE,
};

static CP437_REVERSE: OnceLock<HashMap<char, u8>> = OnceLock::new();

/// The code page a label names (`cp437`, `ibm437`, `437`, `dos-437`, `oem-us`); `None`
/// for the encodings [`encoding_for_label`] knows.
pub fn code_page_for_label(label: &str) -> Option<CodePage> {
    match label.trim().to_ascii_lowercase().as_str() {
        "cp437" | "ibm437" | "ibm-437" | "437" | "dos-437" | "oem-us" | "cp-437" => Some(CP437),
        _ => None,
    }
}

/// Bytes that are not text in the file's encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodingError {
    pub encoding: &'static str,
    /// 1-based physical line of the bad bytes.
    pub line: u64,
    pub bytes: Vec<u8>,
}

impl fmt::Display for EncodingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bytes {} on line {} are not valid {}",
            hex_bytes(&self.bytes),
            self.line,
            self.encoding
        )
    }
}

impl std::error::Error for EncodingError {}

/// `0xCE 0xE0` style rendering of bytes for messages.
pub fn hex_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(8)
        .map(|b| format!("0x{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Counts and hashes the raw bytes of a file as they are read.
#[derive(Default)]
pub struct Tap {
    pub bytes: u64,
    pub hasher: Sha256,
}

/// A reader that feeds a shared [`Tap`].
pub struct TapReader<R> {
    inner: R,
    tap: Rc<RefCell<Tap>>,
}

impl<R: Read> TapReader<R> {
    /// Reads `inner`, feeding every byte to `tap`.
    pub fn new(inner: R, tap: Rc<RefCell<Tap>>) -> Self {
        TapReader { inner, tap }
    }
}

impl<R: Read> Read for TapReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut t = self.tap.borrow_mut();
        t.bytes += n as u64;
        t.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A byte-order mark at the start of `head`: the encoding it marks and its length.
pub fn byte_order_mark(head: &[u8]) -> Option<(&'static Encoding, usize)> {
    if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        Some((UTF_8, 3))
    } else if head.starts_with(&[0xFF, 0xFE]) {
        Some((UTF_16LE, 2))
    } else if head.starts_with(&[0xFE, 0xFF]) {
        Some((UTF_16BE, 2))
    } else {
        None
    }
}

/// The encoding of a file from its first bytes, for every format: a byte-order mark wins,
/// then the encoding the mapping names, then what the file says of itself (`in_file`,
/// which reads `head`: an XML declaration; `Ok(None)` when it says nothing), then UTF-8.
/// With the length of the byte-order mark, which is no part of the text.
pub fn sniff<E>(
    head: &[u8],
    named: Option<&'static Encoding>,
    in_file: impl FnOnce(&[u8]) -> Result<Option<&'static Encoding>, E>,
) -> Result<(&'static Encoding, usize), E> {
    if let Some(bom) = byte_order_mark(head) {
        return Ok(bom);
    }
    if let Some(e) = named {
        return Ok((e, 0));
    }
    Ok((in_file(head)?.unwrap_or(UTF_8), 0))
}

const IN_BUF: usize = 64 * 1024;

/// Decodes a byte stream in some encoding into UTF-8; a byte-order mark at its start
/// wins over the encoding it is given (see [`sniff`]), and is dropped.
pub struct DecodeReader<R> {
    inner: R,
    declared: &'static Encoding,
    /// `None` until the first bytes were seen; then the decoder, or `None` inside for
    /// UTF-8 pass-through.
    decoder: Option<Option<encoding_rs::Decoder>>,
    encoding: &'static Encoding,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// The decoder was given the end of the input: it must not be called again.
    done: bool,
    newlines: u64,
    out_buf: Vec<u8>,
    out_pos: usize,
    out_end: usize,
    /// A code page that encoding_rs lacks, decoded here (`declared` is then UTF-8).
    code_page: Option<CodePage>,
}

impl<R: Read> DecodeReader<R> {
    /// Decodes `inner`, which is in `declared` unless it starts with a byte-order mark.
    pub fn new(inner: R, declared: &'static Encoding) -> Self {
        DecodeReader {
            inner,
            declared,
            decoder: None,
            encoding: declared,
            buf: vec![0; IN_BUF],
            start: 0,
            end: 0,
            eof: false,
            done: false,
            newlines: 0,
            out_buf: vec![0; IN_BUF * 2],
            out_pos: 0,
            out_end: 0,
            code_page: None,
        }
    }

    /// Decodes a code page that encoding_rs lacks ([`CP437`]) instead, unless the input
    /// starts with a byte-order mark (which wins, as always).
    pub fn with_code_page(mut self, code_page: Option<CodePage>) -> Self {
        self.code_page = code_page;
        self
    }

    /// Decodes the next chunk of a [`CodePage`] into `out_buf`; `Ok(false)` at the end.
    /// Each byte is one character of at most 3 bytes in UTF-8.
    fn code_page_chunk(&mut self, cp: CodePage) -> io::Result<bool> {
        if self.start == self.end && !self.eof {
            self.fill()?;
        }
        if self.start == self.end {
            return Ok(false);
        }
        let n = (self.end - self.start).min(self.out_buf.len() / 3);
        let mut w = 0;
        for &b in &self.buf[self.start..self.start + n] {
            if b < 0x80 {
                self.out_buf[w] = b;
                w += 1;
            } else {
                w += cp.char_of(b).encode_utf8(&mut self.out_buf[w..]).len();
            }
        }
        self.start += n;
        self.out_pos = 0;
        self.out_end = w;
        Ok(true)
    }

    /// The encoding in use (after BOM sniffing).
    pub fn encoding(&self) -> &'static Encoding {
        self.encoding
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while !self.eof && self.end < self.buf.len() {
            let n = self.inner.read(&mut self.buf[self.end..])?;
            if n == 0 {
                self.eof = true;
            }
            self.end += n;
            if self.end >= 4 || n == 0 {
                break;
            }
        }
        Ok(())
    }

    fn sniff(&mut self) -> io::Result<()> {
        while !self.eof && self.end < 3 {
            self.fill()?;
        }
        let Ok((enc, skip)) =
            sniff::<Infallible>(&self.buf[..self.end], Some(self.declared), |_| Ok(None));
        self.start = skip;
        self.encoding = enc;
        if skip > 0 {
            self.code_page = None;
        }
        self.decoder = Some(if enc == UTF_8 {
            None
        } else {
            Some(enc.new_decoder_without_bom_handling())
        });
        Ok(())
    }
}

impl<R: Read> DecodeReader<R> {
    /// Decodes the next chunk into `out_buf`; `Ok(false)` at the end of input.
    fn decode_chunk(&mut self) -> io::Result<bool> {
        if self.done {
            return Ok(false);
        }
        loop {
            if self.start == self.end && !self.eof {
                self.fill()?;
            }
            let Some(Some(decoder)) = self.decoder.as_mut() else {
                unreachable!("decode_chunk is only called with a decoder");
            };
            let last = self.eof;
            let (result, read, written) = decoder.decode_to_utf8_without_replacement(
                &self.buf[self.start..self.end],
                &mut self.out_buf,
                last,
            );
            // A single-byte encoding maps its undefined bytes (0x98 in windows-1251,
            // 0x81 in windows-1252...) to C1 control characters, which no export
            // means as text: they are bytes that are not valid in that encoding.
            if self.encoding.is_single_byte() {
                if let Some(at) = c1_control(&self.out_buf[..written]) {
                    let err = EncodingError {
                        encoding: self.encoding.name(),
                        line: self.newlines + count_newlines(&self.out_buf[..at]) + 1,
                        // the byte a single-byte decoder maps to U+0080..U+009F is that
                        // code point's own value
                        bytes: vec![self.out_buf[at + 1]],
                    };
                    return Err(io::Error::new(io::ErrorKind::InvalidData, err));
                }
            }
            let newlines_here = count_newlines(&self.out_buf[..written]);
            match result {
                DecoderResult::Malformed(bad, after) => {
                    let bad = bad as usize;
                    let from = (self.start + read).saturating_sub(bad + after as usize);
                    let bytes = self.buf[from..(from + bad).min(self.end)].to_vec();
                    let err = EncodingError {
                        encoding: self.encoding.name(),
                        line: self.newlines + newlines_here + 1,
                        bytes,
                    };
                    return Err(io::Error::new(io::ErrorKind::InvalidData, err));
                }
                DecoderResult::InputEmpty | DecoderResult::OutputFull => {
                    self.start += read;
                    self.newlines += newlines_here;
                    self.out_pos = 0;
                    self.out_end = written;
                    if last && result == DecoderResult::InputEmpty {
                        self.done = true;
                    }
                    if written > 0 {
                        return Ok(true);
                    }
                    if last && self.start == self.end {
                        return Ok(false);
                    }
                }
            }
        }
    }
}

impl<R: Read> Read for DecodeReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.decoder.is_none() {
            self.sniff()?;
        }
        if out.is_empty() {
            return Ok(0);
        }
        if matches!(self.decoder, Some(None)) {
            match self.code_page {
                None => {
                    // UTF-8: pass through.
                    if self.start == self.end && !self.eof {
                        self.fill()?;
                    }
                    let n = (self.end - self.start).min(out.len());
                    out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
                    self.start += n;
                    return Ok(n);
                }
                Some(cp) => {
                    if self.out_pos == self.out_end && !self.code_page_chunk(cp)? {
                        return Ok(0);
                    }
                }
            }
        } else if self.out_pos == self.out_end && !self.decode_chunk()? {
            return Ok(0);
        }
        let n = (self.out_end - self.out_pos).min(out.len());
        out[..n].copy_from_slice(&self.out_buf[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

/// The offset of the first C1 control character (U+0080..U+009F, UTF-8 `C2 80`..`C2 9F`)
/// in UTF-8 text.
fn c1_control(utf8: &[u8]) -> Option<usize> {
    memchr::memchr_iter(0xC2, utf8)
        .find(|&at| utf8.get(at + 1).is_some_and(|b| (0x80..=0x9F).contains(b)))
}

/// Finds an [`EncodingError`] inside an I/O error (as the CSV reader passes it on).
pub fn encoding_error(err: &io::Error) -> Option<&EncodingError> {
    err.get_ref()?.downcast_ref::<EncodingError>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8], enc: &str) -> io::Result<String> {
        let mut r = DecodeReader::new(bytes, encoding_for_label(enc).unwrap());
        let mut s = String::new();
        r.read_to_string(&mut s)?;
        Ok(s)
    }

    #[test]
    fn cp437_every_byte_is_its_character() {
        let bytes = b"M\x81ller \xA5o\xA4o Stra\xE1e \xC9\xCD\xBB 12\xF8\n";
        let mut r = DecodeReader::new(&bytes[..], UTF_8).with_code_page(Some(CP437));
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "Müller Ñoño Straße ╔═╗ 12°\n");
        // all 256 bytes decode, the upper half as Python's cp437 codec does
        let all: Vec<u8> = (0..=255).collect();
        let mut r =
            DecodeReader::new(&all[..], UTF_8).with_code_page(code_page_for_label("IBM437"));
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s.chars().count(), 256);
        assert!(s.ends_with("√ⁿ²■\u{a0}"));
        // a byte-order mark wins
        let mut r =
            DecodeReader::new(&b"\xEF\xBB\xBFM\xC3\xBC"[..], UTF_8).with_code_page(Some(CP437));
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "Mü");
    }

    #[test]
    fn cp437_every_byte_round_trips_and_other_characters_have_none() {
        for b in 0..=255u8 {
            assert_eq!(CP437.byte_of(CP437.char_of(b)), Some(b), "byte {b:#04x}");
        }
        assert_eq!(CP437.byte_of('╔'), Some(0xC9));
        assert_eq!(CP437.byte_of('é'), Some(0x82));
        assert_eq!(CP437.byte_of('€'), None);
        assert_eq!(CP437.byte_of('Ж'), None);
    }

    #[test]
    fn utf8_bom_is_dropped() {
        assert_eq!(decode(b"\xEF\xBB\xBFa;b\n", "utf-8").unwrap(), "a;b\n");
    }

    #[test]
    fn windows_1251_becomes_utf8() {
        assert_eq!(
            decode(b"\xCE\xCE\xCE \xD0\xEE\xEC\xE0\xF8\xEA\xE0", "windows-1251").unwrap(),
            "ООО Ромашка"
        );
    }

    #[test]
    fn utf16_bom_wins_over_declared_encoding() {
        let mut bytes = vec![0xFF, 0xFE];
        for u in "Näme\r\nx".encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(decode(&bytes, "utf-8").unwrap(), "Näme\r\nx");
        assert_eq!(decode(&bytes, "windows-1252").unwrap(), "Näme\r\nx");
    }

    #[test]
    fn malformed_utf16_names_the_line() {
        let mut bytes = vec![0xFF, 0xFE];
        for u in "a\nb\nc".encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        // a lone high surrogate on line 3
        bytes.extend_from_slice(&0xD800u16.to_le_bytes());
        bytes.extend_from_slice(&(b'x' as u16).to_le_bytes());
        let err = decode(&bytes, "utf-16").unwrap_err();
        let enc = encoding_error(&err).expect("an encoding error");
        assert_eq!(enc.line, 3);
        assert_eq!(enc.encoding, "UTF-16LE");
    }

    #[test]
    fn undefined_single_byte_is_an_error_not_a_control_character() {
        let err = decode(b"a;b\nc;\x98\n", "windows-1251").unwrap_err();
        let enc = encoding_error(&err).expect("an encoding error");
        assert_eq!((enc.line, enc.bytes.as_slice()), (2, &[0x98u8][..]));
        let err = decode(b"x\n\ny\x81", "windows-1252").unwrap_err();
        assert_eq!(encoding_error(&err).unwrap().line, 3);
        // defined bytes pass: the euro sign, and Cyrillic
        assert_eq!(decode(b"\x80", "windows-1252").unwrap(), "\u{20ac}");
        assert_eq!(decode(b"\xE0", "windows-1251").unwrap(), "\u{430}");
    }

    #[test]
    fn reading_on_after_the_end_is_harmless() {
        // a short file is decoded in one call that also ends the decoder; readers such
        // as a BufReader may ask again after the end
        let mut r = DecodeReader::new(&b"a;\xE0"[..], encoding_for_label("cp1251").unwrap());
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "a;\u{430}");
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf).unwrap(), 0);
        assert_eq!(r.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn large_input_crosses_buffer_boundaries() {
        let text = "Привет, мир;1,5\n".repeat(20_000);
        let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(&text);
        assert_eq!(decode(&bytes, "cp1251").unwrap(), text);
    }

    #[test]
    fn labels_users_write_are_known() {
        for l in [
            "utf-8",
            "UTF8",
            "utf-16",
            "windows-1251",
            "cp1251",
            "windows-1252",
        ] {
            assert!(encoding_for_label(l).is_some(), "{l}");
        }
        assert_eq!(
            encoding_for_label("iso-8859-1").unwrap().name(),
            "windows-1252"
        );
        assert!(encoding_for_label("klingon").is_none());
    }
}
