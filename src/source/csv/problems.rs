//! What is wrong with a row or the whole file, in words: bytes that are not text, and
//! the CSV parser's and the decoder's errors.

use crate::problem::{Code, Problem, Stage};
use crate::source::count_newlines;
use crate::source::decode::{encoding_error, hex_bytes};
use crate::source::SourceError;
use encoding_rs::Encoding;

/// "The byte 0x98 is" / "The bytes 0xD0 0xFF are", for messages.
fn the_bytes(bytes: &[u8]) -> String {
    if bytes.len() == 1 {
        format!("The byte {} is", hex_bytes(bytes))
    } else {
        format!("The bytes {} are", hex_bytes(bytes))
    }
}

/// NUL is no character of any text: a CSV value that holds one is damaged, or the file
/// is in another encoding (UTF-16 read as UTF-8 is half NUL bytes). `line`: where the
/// record starts; the problem names the physical line of the byte.
pub(super) fn nul_problem(
    record: &csv::ByteRecord,
    line: u64,
    column: impl Fn(usize) -> String,
) -> Option<Problem> {
    let mut line = line;
    for (i, field) in record.iter().enumerate() {
        match memchr::memchr(0, field) {
            Some(at) => {
                line += count_newlines(&field[..at]);
                let column = column(i);
                let msg = "The byte 0x00 (NUL) is not text: the file is damaged, in another encoding (UTF-16 without a byte-order mark? set source.encoding in the mapping) or not a text file";
                return Some(
                    Problem::new(Stage::Read, Code::Encoding, msg)
                        .with_line(line)
                        .with_column(column.clone())
                        .with_value(hex_bytes(&[0])),
                );
            }
            None => line += count_newlines(field),
        }
    }
    None
}

pub(super) fn utf8_problem(
    line: u64,
    column: &str,
    field: &[u8],
    err: std::str::Utf8Error,
    encoding: &'static Encoding,
) -> Problem {
    let at = err.valid_up_to();
    let bad_len = err.error_len().unwrap_or(field.len() - at).max(1);
    let bad = &field[at..(at + bad_len).min(field.len())];
    let msg = format!(
        "{} not valid {}: the file is in another encoding (set source.encoding in the mapping, e.g. \"windows-1251\") or is not a text file",
        the_bytes(bad),
        encoding.name()
    );
    Problem::new(Stage::Read, Code::Encoding, &msg)
        .with_line(line)
        .with_column(column.to_string())
        .with_value(hex_bytes(bad))
}

pub(crate) fn io_problem(e: &std::io::Error, line: u64) -> Problem {
    if let Some(enc) = encoding_error(e) {
        let msg = format!(
            "{} not valid {}: the file is in another encoding (check source.encoding in the mapping)",
            the_bytes(&enc.bytes),
            enc.encoding
        );
        return Problem::file(Code::Encoding, Some(enc.line), &msg)
            .with_value(hex_bytes(&enc.bytes));
    }
    Problem::file(
        Code::Io,
        Some(line),
        format!("The file could not be read: {e}"),
    )
}

pub(super) fn csv_problem(e: csv::Error, line_offset: u64) -> Problem {
    let line = e.position().map(|p| p.line() + line_offset).unwrap_or(0);
    match e.into_kind() {
        // The decoder counts lines from the start of the file, skipped lines included.
        csv::ErrorKind::Io(io) => io_problem(&io, line),
        other => Problem::file(
            Code::Malformed,
            (line > 0).then_some(line),
            format!("The file is not valid CSV: {other:?}"),
        ),
    }
}

/// A temporary file for sorting or key bookkeeping could not be written or read: a
/// failure outside the file, never a problem of its data.
pub(super) fn temp_failure(e: &std::io::Error) -> SourceError {
    SourceError::Environment(format!(
        "cannot use a temporary file while reading the file (is the temporary folder full?): {e}"
    ))
}
