//! The one binary form of erpdrop's temporary files: the runs of the external sort and of
//! the key log, the documents set aside while a file is sorted, and the spool. Numbers
//! are little-endian `u32` or `u64`; lengths and counts are `u32` (nothing erpdrop holds
//! in memory at once comes near 4 GiB: a row's values are placed by `u32` offsets); a
//! byte string is its length then its bytes. The files live no longer than the reading
//! of one file, so the form has no version.
//!
//! Values are appended to a `Vec<u8>` (`put_*`) and taken back from the front of a slice
//! (`take_*`, `None` when the slice is too short: the file is damaged), or written to and
//! read from a stream (`write_*`, `read_*`).

use std::io::{self, Read, Write};

/// Appends `n`.
#[inline]
pub fn put_u32(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(&n.to_le_bytes());
}

/// Appends `n`.
#[inline]
pub fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_le_bytes());
}

/// Appends a length or a count.
#[inline]
pub fn put_len(out: &mut Vec<u8>, n: usize) {
    put_u32(out, u32::try_from(n).expect("a length under 4 GiB"));
}

/// Appends `b` after its length.
#[inline]
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_len(out, b.len());
    out.extend_from_slice(b);
}

/// Takes a `u32` from the front of `buf`.
#[inline]
pub fn take_u32(buf: &mut &[u8]) -> Option<u32> {
    let (b, rest) = buf.split_first_chunk::<4>()?;
    *buf = rest;
    Some(u32::from_le_bytes(*b))
}

/// Takes a `u64` from the front of `buf`.
#[inline]
pub fn take_u64(buf: &mut &[u8]) -> Option<u64> {
    let (b, rest) = buf.split_first_chunk::<8>()?;
    *buf = rest;
    Some(u64::from_le_bytes(*b))
}

/// Takes a length or a count from the front of `buf`.
#[inline]
pub fn take_len(buf: &mut &[u8]) -> Option<usize> {
    Some(take_u32(buf)? as usize)
}

/// Takes a byte string from the front of `buf`.
#[inline]
pub fn take_bytes<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = take_len(buf)?;
    if n > buf.len() {
        return None;
    }
    let (b, rest) = buf.split_at(n);
    *buf = rest;
    Some(b)
}

/// Takes a byte string that is text from the front of `buf`.
#[inline]
pub fn take_str<'a>(buf: &mut &'a [u8]) -> Option<&'a str> {
    std::str::from_utf8(take_bytes(buf)?).ok()
}

/// Writes `n`.
pub fn write_u64<W: Write>(w: &mut W, n: u64) -> io::Result<()> {
    w.write_all(&n.to_le_bytes())
}

/// Writes `b` after its length; more than 4 GiB is refused.
pub fn write_bytes<W: Write>(w: &mut W, b: &[u8]) -> io::Result<()> {
    let n = u32::try_from(b.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "more than 4 GiB for a temporary file's record",
        )
    })?;
    w.write_all(&n.to_le_bytes())?;
    w.write_all(b)
}

/// Reads `N` bytes; `None` at the end of the stream.
fn read_array<R: Read, const N: usize>(r: &mut R) -> io::Result<Option<[u8; N]>> {
    let mut b = [0u8; N];
    match r.read_exact(&mut b) {
        Ok(()) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads a `u64`; `None` at the end of the stream.
pub fn read_u64<R: Read>(r: &mut R) -> io::Result<Option<u64>> {
    Ok(read_array(r)?.map(u64::from_le_bytes))
}

/// Reads a byte string into `buf` (which it replaces); `false` at the end of the stream.
/// A stream that ends inside the string is an error.
pub fn read_bytes<R: Read>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<bool> {
    let Some(n) = read_array(r)?.map(u32::from_le_bytes) else {
        return Ok(false);
    };
    buf.resize(n as usize, 0);
    r.read_exact(buf)?;
    Ok(true)
}

/// Reads a byte string that must be there (inside a record whose start was read).
pub fn read_bytes_owned<R: Read>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    if !read_bytes(r, &mut buf)? {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_back_as_they_went_in() {
        let mut out = Vec::new();
        put_u32(&mut out, 7);
        put_u64(&mut out, u64::MAX);
        put_bytes(&mut out, "Grüße".as_bytes());
        put_bytes(&mut out, b"");
        let mut buf = &out[..];
        assert_eq!(take_u32(&mut buf), Some(7));
        assert_eq!(take_u64(&mut buf), Some(u64::MAX));
        assert_eq!(take_str(&mut buf), Some("Grüße"));
        assert_eq!(take_bytes(&mut buf), Some(&b""[..]));
        assert!(buf.is_empty());
        assert_eq!(take_u32(&mut buf), None);
        // a length past the end is damage, not a panic
        let mut short = Vec::new();
        put_len(&mut short, 10);
        short.extend_from_slice(b"abc");
        assert_eq!(take_bytes(&mut &short[..]), None);
    }

    #[test]
    fn streams_end_cleanly_or_not_at_all() {
        let mut w = Vec::new();
        write_bytes(&mut w, b"key").unwrap();
        write_u64(&mut w, 42).unwrap();
        let mut r = &w[..];
        let mut buf = Vec::new();
        assert!(read_bytes(&mut r, &mut buf).unwrap());
        assert_eq!(buf, b"key");
        assert_eq!(read_u64(&mut r).unwrap(), Some(42));
        assert_eq!(read_u64(&mut r).unwrap(), None);
        assert!(!read_bytes(&mut r, &mut buf).unwrap());
        assert!(read_bytes_owned(&mut r).is_err());
        let cut = &w[..w.len() - 10];
        assert!(read_bytes(&mut &cut[..], &mut buf).is_err());
    }
}
