//! Remembering which document keys a file had, in bounded memory.
//!
//! A source must know whether a key comes back (CSV: the file is not grouped by key;
//! XML: a second record with the same key). Keeping every key's hash in memory grows
//! with the file (a few MB per million documents), so [`KeyLog`] keeps the most recent
//! keys in a fixed-size window (allocated once: memory does not grow with the file) and
//! writes older ones to a temporary file as sorted runs. A key that comes back while it
//! is still in the window is found at once; one that comes back later is found when the
//! file has been read, by merging the runs ([`KeyLog::repeated`]).

use crate::codec::{read_u64, write_u64};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, BufReader, BufWriter, Seek, SeekFrom};

/// The hash of a document key (its parts), the same in every pass over a file.
pub fn key_hash<S: AsRef<str>>(parts: &[S]) -> u64 {
    // FNV-1a over the parts, each followed by a separator, then a final mix: stable
    // across passes and runs (unlike RandomState), and cheap.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in p.as_ref().as_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0x1f;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // murmur3's finaliser spreads the bits for the window's table
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The keys are hashes already: the window's table uses them as they are.
#[derive(Default)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Window = HashMap<u64, u64, BuildHasherDefault<IdentityHasher>>;

/// The key hashes of one file: a window in memory, older ones in sorted runs on disk.
/// (`Default` is an empty log that allocates nothing; [`KeyLog::new`] is the one to use.)
#[derive(Default)]
pub struct KeyLog {
    window: Window,
    capacity: usize,
    /// The sorted runs written so far, one temporary file each.
    runs: Vec<File>,
    scratch: Vec<u64>,
    /// Hashes that [`insert`](KeyLog::insert) found in the window.
    repeats: Vec<u64>,
    /// A run could not be written: the window grows instead.
    no_spill: bool,
}

impl KeyLog {
    /// An empty log whose window holds `window` keys (allocated at once: memory does not
    /// grow with the file).
    pub fn new(window: usize) -> KeyLog {
        let capacity = window.max(1);
        KeyLog {
            window: Window::with_capacity_and_hasher(capacity, Default::default()),
            capacity,
            ..KeyLog::default()
        }
    }

    /// Adds a key's hash with the line it was found on. `Some(line)` of the earlier key
    /// when the window still holds the same hash (the key came back soon).
    pub fn insert(&mut self, hash: u64, line: u64) -> Option<u64> {
        if let Some(&first) = self.window.get(&hash) {
            self.repeats.push(hash);
            return Some(first);
        }
        if self.window.len() >= self.capacity.max(1) && !self.no_spill {
            if let Err(e) = self.spill() {
                tracing::warn!(
                    "cannot write document keys to a temporary file ({e}); keeping them in memory"
                );
                self.no_spill = true;
            }
        }
        self.window.insert(hash, line);
        None
    }

    /// Writes the window out as a sorted run and empties it (its memory is kept).
    fn spill(&mut self) -> io::Result<()> {
        if self.window.is_empty() {
            return Ok(());
        }
        self.scratch.clear();
        self.scratch.extend(self.window.drain().map(|(h, _)| h));
        self.scratch.sort_unstable();
        let mut w = BufWriter::with_capacity(64 * 1024, tempfile::tempfile()?);
        for &h in &self.scratch {
            write_u64(&mut w, h)?;
        }
        let mut file = w.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        self.runs.push(file);
        self.scratch.clear();
        self.scratch.shrink_to(0);
        Ok(())
    }

    /// After the last key: every hash that occurred more than once (those `insert`
    /// reported too), sorted, and whether some repeat was found only now (a key that
    /// came back after it had left the window).
    pub fn repeated(mut self) -> io::Result<(Vec<u64>, bool)> {
        let mut out = std::mem::take(&mut self.repeats);
        let reported = out.len();
        if self.runs.is_empty() {
            // Everything was in the window, and `insert` saw every repeat.
            out.sort_unstable();
            out.dedup();
            return Ok((out, false));
        }
        self.spill()?;
        let mut readers: Vec<BufReader<File>> = std::mem::take(&mut self.runs)
            .into_iter()
            .map(|f| BufReader::with_capacity(16 * 1024, f))
            .collect();
        let mut heap = BinaryHeap::new();
        for (i, r) in readers.iter_mut().enumerate() {
            if let Some(h) = read_u64(r)? {
                heap.push(Reverse((h, i)));
            }
        }
        let mut last: Option<u64> = None;
        while let Some(Reverse((h, i))) = heap.pop() {
            if last == Some(h) {
                if out[reported..].last() != Some(&h) {
                    out.push(h);
                }
            } else {
                last = Some(h);
            }
            if let Some(n) = read_u64(&mut readers[i])? {
                heap.push(Reverse((n, i)));
            }
        }
        // the window never holds a hash twice: a repeat across runs was not reported
        let late = out.len() > reported;
        out.sort_unstable();
        out.dedup();
        Ok((out, late))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small window, so that a few hundred keys spill.
    const WINDOW: usize = 64;

    #[test]
    fn repeats_in_the_window_are_found_at_once() {
        let mut k = KeyLog::new(WINDOW);
        assert_eq!(k.insert(key_hash(&["A"]), 2), None);
        assert_eq!(k.insert(key_hash(&["B"]), 3), None);
        assert_eq!(k.insert(key_hash(&["A"]), 4), Some(2));
        assert_eq!(k.repeated().unwrap(), (vec![key_hash(&["A"])], false));
        assert_eq!(KeyLog::new(WINDOW).repeated().unwrap(), (vec![], false));
    }

    #[test]
    fn repeats_across_runs_are_found_at_the_end() {
        let mut k = KeyLog::new(WINDOW);
        let n = WINDOW as u64 * 3 + 10;
        for i in 0..n {
            assert_eq!(k.insert(key_hash(&[i.to_string()]), i), None);
        }
        // key 5 left the window long ago
        assert_eq!(k.insert(key_hash(&["5"]), n), None);
        assert_eq!(k.repeated().unwrap(), (vec![key_hash(&["5"])], true));

        let mut k = KeyLog::new(WINDOW);
        for i in 0..n {
            k.insert(key_hash(&[i.to_string()]), i);
        }
        assert_eq!(k.repeated().unwrap(), (vec![], false));
    }

    #[test]
    fn key_parts_do_not_run_together() {
        assert_ne!(key_hash(&["AB", "C"]), key_hash(&["A", "BC"]));
        assert_eq!(
            key_hash(&["A", "B"]),
            key_hash(&[String::from("A"), "B".into()])
        );
    }
}
