//! JSON exports (in progress).

use super::decode::Tap;
use super::{DocumentSource, RawDocument, Slots, SourceError, SourceOptions};
use crate::problem::{Code, Problem};
use std::cell::RefCell;
use std::io::Read;
use std::rc::Rc;

/// A JSON export read as a stream of documents.
pub struct JsonSource;

impl JsonSource {
    /// Opens a JSON file.
    pub fn open<R: Read>(
        _input: R,
        _tap: Rc<RefCell<Tap>>,
        _opts: &SourceOptions,
        _slots: &Slots,
    ) -> Result<JsonSource, Problem> {
        Err(Problem::file(Code::Malformed, None, "JSON is not read yet"))
    }
}

impl DocumentSource for JsonSource {
    fn next_document(&mut self) -> Option<Result<RawDocument, SourceError>> {
        None
    }
    fn bytes_read(&self) -> u64 {
        0
    }
}

/// Checks a `record` pointer (RFC 6901): `""` for a file that is one array, or
/// `/member/...` with `~0` for `~` and `~1` for `/`.
pub fn check_pointer(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Ok(());
    }
    if !p.starts_with('/') {
        return Err(format!("{p:?} is not a JSON pointer: it starts with / (e.g. \"/invoices\", or \"\" for a file that is one array)"));
    }
    for seg in p[1..].split('/') {
        unescape(seg).ok_or_else(|| {
            format!("{p:?} is not a JSON pointer: `~` must be followed by 0 (for ~) or 1 (for /)")
        })?;
    }
    Ok(())
}

/// Checks a path inside a record (`customer/id`, `lines`, `addresses/0/city`).
pub fn check_path(p: &str) -> Result<(), String> {
    if p.starts_with('/') {
        return Err(format!(
            "{p:?}: a path inside a record does not start with / (write \"customer/id\")"
        ));
    }
    if p.is_empty() || p.split('/').any(str::is_empty) {
        return Err(format!(
            "{p:?} is not a path: its names are separated by single slashes (\"customer/id\")"
        ));
    }
    Ok(())
}

/// A pointer segment with `~1` and `~0` undone; `None` for another `~`.
fn unescape(seg: &str) -> Option<String> {
    if !seg.contains('~') {
        return Some(seg.to_string());
    }
    let mut out = String::new();
    let mut chars = seg.chars();
    while let Some(c) = chars.next() {
        match c {
            '~' => match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            },
            c => out.push(c),
        }
    }
    Some(out)
}
