//! The reader under the CSV parser: it ends the text with a newline the parser can see
//! by position, never by content, caps the header row, and notes the first NUL byte.

use super::Inner;
use crate::problem::{Code, Problem};
use std::io::Read;

/// Makes sure the text ends with `\n`, so that every record is terminated the same way
/// and its physical line can be computed from the reader's position; then appends one
/// more `\n`. After a well-formed file that is a blank line, which the CSV reader skips;
/// when a quote is still open at the end (a truncated or malformed file) it becomes the
/// tail of the last value, and the record that holds it ends past
/// [`tail_start`](EndWithNewline::tail_start). The end is known by position, never by
/// content: no bytes of a file can pass for it.
pub(super) struct EndWithNewline<R> {
    inner: R,
    last: u8,
    /// Bytes of the text given out (the `\n` added after it included).
    given: u64,
    /// How much of the tail (`\n` where needed, then the extra `\n`) was given out.
    tail: Option<([u8; 2], usize, usize)>,
    /// Where the extra `\n` starts, once the text has ended.
    tail_start: Option<u64>,
    /// How many bytes of text it may give out (while the header is read).
    pub(super) cap: Option<u64>,
    /// Where the first NUL byte of the text is: the record that holds it is an
    /// `encoding` error (one memchr per buffer, not one per row).
    nul: Option<u64>,
}

/// The longest header row read (1 MiB): a longer one is no export's header, and reading
/// it whole would hold all of it (50 MB of header took 440 MB of memory).
pub const MAX_HEADER_BYTES: u64 = 1 << 20;

/// The header row did not end within [`MAX_HEADER_BYTES`].
#[derive(Debug)]
struct HeaderTooLong;

impl std::fmt::Display for HeaderTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the header row is longer than {MAX_HEADER_BYTES} bytes")
    }
}

impl std::error::Error for HeaderTooLong {}

pub(super) fn is_header_too_long(e: &csv::Error) -> bool {
    matches!(e.kind(), csv::ErrorKind::Io(io) if io.get_ref().is_some_and(|x| x.is::<HeaderTooLong>()))
}

pub(super) fn header_too_long_problem(line: u64) -> Problem {
    Problem::file(Code::Malformed, Some(line), format!(
                "The header row is longer than {} MiB: it is not the header of an export (or a quote in it is never closed)",
                MAX_HEADER_BYTES >> 20
            ))
}

impl<R> EndWithNewline<R> {
    pub(super) fn new(inner: R) -> Self {
        EndWithNewline {
            inner,
            last: 0,
            given: 0,
            tail: None,
            tail_start: None,
            cap: None,
            nul: None,
        }
    }

    /// Whether a record that ends at byte `end` of the reader's input swallowed the tail:
    /// a quote opened in it is never closed.
    fn past_the_text(&self, end: u64) -> bool {
        self.tail_start.is_some_and(|t| end > t)
    }

    /// Whether the bytes before `end` hold a NUL.
    pub(super) fn nul_before(&self, end: u64) -> bool {
        self.nul.is_some_and(|at| at < end)
    }
}

impl<R: Read> Read for EndWithNewline<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.tail.is_none() {
            let mut buf = &mut *buf;
            if let Some(cap) = self.cap {
                let left = cap.saturating_sub(self.given);
                if left == 0 && !buf.is_empty() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        HeaderTooLong,
                    ));
                }
                let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                buf = &mut buf[..n];
            }
            let n = self.inner.read(buf)?;
            if n > 0 {
                if self.nul.is_none() {
                    self.nul = memchr::memchr(0, &buf[..n]).map(|i| self.given + i as u64);
                }
                self.given += n as u64;
                self.last = buf[n - 1];
                return Ok(n);
            }
            if buf.is_empty() {
                return Ok(0);
            }
            // an empty file stays empty
            let mut tail = ([b'\n'; 2], 0, 0);
            if self.given > 0 {
                tail.2 = if self.last == b'\n' { 1 } else { 2 };
                self.tail_start = Some(self.given + tail.2 as u64 - 1);
            }
            self.tail = Some(tail);
        }
        let Some((tail, pos, len)) = self.tail.as_mut() else {
            return Ok(0);
        };
        let n = (*len - *pos).min(buf.len());
        buf[..n].copy_from_slice(&tail[*pos..*pos + n]);
        *pos += n;
        Ok(n)
    }
}

/// Whether the record just read holds the end of the input: a quote opened on its lines
/// is never closed.
pub(super) fn unclosed_quote<R: Read>(rdr: &csv::Reader<Inner<R>>) -> bool {
    rdr.get_ref().past_the_text(rdr.position().byte())
}

/// The problem of a quote that is not closed before the end of the file.
pub(super) fn unclosed_quote_problem(line: u64) -> Problem {
    Problem::file(Code::Malformed, Some(line), "A quoted value that starts in this row is not closed before the end of the file: the file is cut off, or a quote character inside a value is not doubled")
}
