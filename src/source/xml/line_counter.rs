//! The buffer quick-xml reads from: checks the bytes (UTF-8, characters XML allows) as
//! they are read, knows the line of every byte it handed out, keeps the last ones to
//! place an error on its line and column, and bounds a single event.

use super::MAX_EVENT_BYTES;
use crate::source::count_newlines;
use crate::source::decode::EncodingError;
use std::fmt;
use std::io::{self, BufRead, Read};

/// How many of the last bytes read are kept to place an error on its line and column.
const RING: usize = 4096;

/// A single tag or text run longer than [`MAX_EVENT_BYTES`].
#[derive(Debug)]
pub(super) struct TooLarge;

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a single tag or text is longer than {MAX_EVENT_BYTES} bytes"
        )
    }
}

impl std::error::Error for TooLarge {}

/// Appends the positions of the newlines of `b` (checked UTF-8) to `out`, up to the
/// first character that XML 1.0 forbids, whose position it returns: a control character
/// other than tab, line feed and carriage return, or U+FFFE, U+FFFF (the surrogates are
/// not UTF-8). Every byte of the file goes through here once.
pub(super) fn index_newlines(b: &[u8], out: &mut Vec<u32>) -> Option<usize> {
    // U+FFFE and U+FFFF are EF BF BE and EF BF BF: the lead byte is rare, and memchr
    // finds it at a fraction of a cycle a byte
    let nonchar = memchr::memchr_iter(0xEF, b)
        .find(|&at| b.get(at + 1) == Some(&0xBF) && matches!(b.get(at + 2), Some(0xBE | 0xBF)));
    let b = &b[..nonchar.unwrap_or(b.len())];
    let control = first_control(b);
    let b = &b[..control.unwrap_or(b.len())];
    out.extend(memchr::memchr_iter(b'\n', b).map(|at| at as u32));
    control.or(nonchar)
}

/// A control character XML forbids: below U+0020, but for tab, line feed and carriage
/// return.
#[inline]
fn is_forbidden_control(c: u8) -> bool {
    c < 0x20 && c != b'\t' && c != b'\n' && c != b'\r'
}

/// The position of the first [forbidden control character](is_forbidden_control) of `b`.
/// 64 bytes at a time without an early exit, which the compiler turns into vector
/// compares; measured faster than eight bytes at a time, where every line feed sent its
/// word to a byte-by-byte look.
fn first_control(b: &[u8]) -> Option<usize> {
    let mut chunks = b.chunks_exact(64);
    let mut base = 0;
    for c in &mut chunks {
        if c.iter()
            .fold(false, |any, &x| any | is_forbidden_control(x))
        {
            break;
        }
        base += 64;
    }
    b[base..]
        .iter()
        .position(|&x| is_forbidden_control(x))
        .map(|at| base + at)
}

/// A character that XML 1.0 does not allow anywhere in a document, where it is.
#[derive(Debug)]
pub(super) struct ForbiddenChar {
    pub(super) ch: char,
    pub(super) line: u64,
    pub(super) col: Option<u64>,
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

/// The buffered reader quick-xml reads from. It checks that the bytes are UTF-8 as it
/// reads them, handing out the valid bytes before an invalid sequence and failing only
/// when quick-xml reaches it (so that the error is raised inside the element that holds
/// the bad bytes); it knows the line of every position it handed out (the newlines of
/// each buffer are indexed once, when it is read), keeps the last [`RING`] bytes to place
/// errors, and refuses a single event longer than [`MAX_EVENT_BYTES`].
pub(super) struct LineCounter<R> {
    inner: R,
    /// `buf[..valid]` is checked UTF-8: `buf[pos..valid]` is not consumed yet,
    /// `buf[..pos]` was (kept until the next refill, for `locate`); `buf[valid..end]`
    /// is the start of a character whose other bytes are not read yet.
    buf: Box<[u8]>,
    pos: usize,
    valid: usize,
    end: usize,
    pub(super) consumed: u64,
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
    pub(super) fn new(inner: R) -> Self {
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
    pub(super) fn mark(&mut self) {
        self.mark = self.consumed;
        let pos = self.pos as u32;
        while self.nl_seen < self.nl.len() && self.nl[self.nl_seen] < pos {
            self.nl_seen += 1;
        }
        self.mark_line = self.nl_base + self.nl_seen as u64 + 1;
    }

    /// The line of the start of the current event.
    #[inline]
    pub(super) fn mark_line(&self) -> u64 {
        self.mark_line
    }

    /// Line and character of the byte `at` bytes into a text event (which starts where
    /// the event starts), on `line`: the character only while the bytes before it are
    /// kept.
    pub(super) fn place_in_text(&self, at: usize, line: u64) -> (u64, Option<u64>) {
        self.place(self.mark + at as u64, line)
    }

    /// Line and character of `tag[at]`, of the start tag just read (`tag`: its bytes
    /// after `<`, without `/>` or `>`), on `line`. quick-xml stops right after the `>`;
    /// the `<` may have been consumed with the text before it.
    pub(super) fn place_in_tag(
        &self,
        tag: &[u8],
        empty: bool,
        at: usize,
        line: u64,
    ) -> (u64, Option<u64>) {
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
    pub(super) fn locate(&self, pos: u64) -> (u64, Option<u64>) {
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
    // always inlined into quick-xml's reader, which calls it for every few bytes: left to
    // the compiler's judgement, a change elsewhere once made it a call, and cost 3% of
    // the instructions of reading a file
    #[inline(always)]
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.consumed - self.mark > MAX_EVENT_BYTES {
            return Err(io::Error::new(io::ErrorKind::InvalidData, TooLarge));
        }
        if self.pos == self.valid {
            self.refill()?;
        }
        Ok(&self.buf[self.pos..self.valid])
    }

    #[inline(always)]
    fn consume(&mut self, amt: usize) {
        let amt = amt.min(self.valid - self.pos);
        self.pos += amt;
        self.consumed += amt as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
