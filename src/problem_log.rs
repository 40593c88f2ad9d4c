//! The problems of one file (and the documents a run delivered), in bounded memory.
//!
//! A file in which every row fails has as many problems as rows. [`ProblemLog`] keeps
//! the first [`IN_MEMORY`] in memory (enough for the printed summary and for most
//! files, which then never touch the disk) and writes the rest to a temporary file as
//! JSON lines; the reports are streamed from it ([`SpillLog::iter`]), in the order the
//! problems were added. The accepted documents of a file (its done report) are kept the
//! same way.

use crate::problem::Problem;
use serde::de::DeserializeOwned;
use serde::ser::{Serialize, SerializeSeq, Serializer};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};

/// The problems of one file.
pub type ProblemLog = SpillLog<Problem>;

/// An entry of a report: kept as [`bounded`](Entry::bounded) gives it.
pub trait Entry {
    /// The entry with its texts bounded (see [`Problem::bounded`]).
    fn bounded(self) -> Self;
}

impl Entry for Problem {
    fn bounded(self) -> Problem {
        Problem::bounded(self)
    }
}

/// How many entries stay in memory before the rest go to a temporary file.
pub const IN_MEMORY: usize = 1000;

/// Bytes of spilled problems collected before they are written out.
const PENDING: usize = 64 * 1024;

/// A list that keeps its first entries in memory and the rest in a temporary file.
#[derive(Debug)]
pub struct SpillLog<T> {
    first: Vec<T>,
    len: u64,
    /// The problems after the first [`IN_MEMORY`], as JSON lines.
    spill: Option<File>,
    /// Spilled problems not yet written to `spill`.
    pending: Vec<u8>,
    /// A write to the temporary file failed: the log is not whole, and no report may be
    /// made of it ([`failure`](SpillLog::failure)).
    lost: Option<String>,
}

impl<T> Default for SpillLog<T> {
    fn default() -> Self {
        SpillLog {
            first: Vec::new(),
            len: 0,
            spill: None,
            pending: Vec::new(),
            lost: None,
        }
    }
}

impl<T: Serialize + DeserializeOwned + Clone + Entry> SpillLog<T> {
    pub fn new() -> SpillLog<T> {
        SpillLog::default()
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds every entry of `other`, after these (taken whole when this log is empty);
    /// a log that was not whole makes this one not whole.
    pub fn append(&mut self, other: SpillLog<T>) {
        if self.is_empty() && self.lost.is_none() {
            *self = other;
            return;
        }
        let lost = other.lost.clone();
        self.extend(other.iter());
        if let (None, Some(e)) = (&self.lost, lost) {
            self.lost = Some(e);
        }
    }

    /// Why the log is not whole (a write to its temporary file failed), if it is not.
    pub fn failure(&self) -> Option<&str> {
        self.lost.as_deref()
    }

    /// The first entries (at most [`IN_MEMORY`]).
    pub fn first(&self) -> &[T] {
        &self.first
    }

    /// Adds an entry, its texts bounded: a report never holds a 50 MB value.
    pub fn push(&mut self, p: T) {
        let p = p.bounded();
        self.len += 1;
        if self.first.len() < IN_MEMORY {
            self.first.push(p);
            return;
        }
        if self.lost.is_some() {
            return;
        }
        serde_json::to_writer(&mut self.pending, &p).expect("an entry serialises");
        self.pending.push(b'\n');
        if self.pending.len() >= PENDING {
            if let Err(e) = self.write_pending() {
                self.lost = Some(e.to_string());
                self.pending = Vec::new();
            }
        }
    }

    fn write_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let file = match &mut self.spill {
            Some(f) => f,
            None => self.spill.insert(tempfile::tempfile()?),
        };
        file.seek(SeekFrom::End(0))?;
        file.write_all(&self.pending)?;
        self.pending.clear();
        Ok(())
    }

    pub fn clear(&mut self) {
        *self = SpillLog::default();
    }

    /// Every entry, in order. The spilled ones are read back from the temporary file.
    pub fn iter(&self) -> SpillIter<'_, T> {
        let spilled = self.spill.as_ref().and_then(|f| {
            let mut f: &File = f;
            f.seek(SeekFrom::Start(0)).ok()?;
            Some(BufReader::with_capacity(64 * 1024, f))
        });
        SpillIter {
            log: self,
            next_first: 0,
            spilled,
            pending_at: 0,
            line: String::new(),
        }
    }
}

impl<T: Serialize + DeserializeOwned + Clone + Entry> Extend<T> for SpillLog<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for p in iter {
            self.push(p);
        }
    }
}

impl<T: Serialize + DeserializeOwned + Clone + Entry> From<Vec<T>> for SpillLog<T> {
    fn from(v: Vec<T>) -> SpillLog<T> {
        let mut log = SpillLog::new();
        log.extend(v);
        log
    }
}

/// Iterates a [`SpillLog`]: the first entries, then the spilled ones.
pub struct SpillIter<'a, T> {
    log: &'a SpillLog<T>,
    next_first: usize,
    spilled: Option<BufReader<&'a File>>,
    pending_at: usize,
    line: String,
}

impl<T: DeserializeOwned + Clone> Iterator for SpillIter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if let Some(p) = self.log.first.get(self.next_first) {
            self.next_first += 1;
            return Some(p.clone());
        }
        if let Some(r) = self.spilled.as_mut() {
            self.line.clear();
            match r.read_line(&mut self.line) {
                Ok(n) if n > 0 => {
                    return serde_json::from_str(self.line.trim_end()).ok();
                }
                _ => self.spilled = None,
            }
        }
        let rest = &self.log.pending[self.pending_at..];
        if rest.is_empty() {
            return None;
        }
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        self.pending_at += end + 1;
        serde_json::from_slice(&rest[..end]).ok()
    }
}

impl<T: Serialize + DeserializeOwned + Clone + Entry> SpillLog<T> {
    /// Serialises the log as an array of `f(entry)`, streamed; an error, never a
    /// shorter array, when the log is not whole or cannot be read back.
    pub fn serialize_as<S: Serializer, U: Serialize>(
        &self,
        s: S,
        mut f: impl FnMut(T) -> U,
    ) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        if let Some(e) = &self.lost {
            return Err(S::Error::custom(format!(
                "a temporary file could not be written: {e}"
            )));
        }
        let mut seq = s.serialize_seq(Some(self.len as usize))?;
        let mut n = 0u64;
        for p in self.iter() {
            seq.serialize_element(&f(p))?;
            n += 1;
        }
        if n != self.len {
            return Err(S::Error::custom(format!(
                "a temporary file gave back {n} of {} entries",
                self.len
            )));
        }
        seq.end()
    }

    /// Calls `f` with every entry, in order; an error when the log is not whole or
    /// cannot be read back, so that nothing made of it is silently short.
    pub fn try_for_each(&self, mut f: impl FnMut(T) -> io::Result<()>) -> io::Result<()> {
        if let Some(e) = &self.lost {
            return Err(io::Error::other(format!(
                "a temporary file could not be written: {e}"
            )));
        }
        let mut n = 0u64;
        for p in self.iter() {
            f(p)?;
            n += 1;
        }
        if n != self.len {
            return Err(io::Error::other(format!(
                "a temporary file gave back {n} of {} entries",
                self.len
            )));
        }
        Ok(())
    }
}

impl<T: Serialize + DeserializeOwned + Clone + Entry> Serialize for SpillLog<T> {
    /// As a JSON array of every entry (see [`serialize_as`](SpillLog::serialize_as)).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.serialize_as(s, |e| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::Code;

    fn problem(i: usize) -> Problem {
        Problem::file(
            Code::Malformed,
            Some(i as u64),
            format!("problem \"{i}\"\nx"),
        )
    }

    #[test]
    fn many_problems_come_back_in_order_and_serialise_as_a_vec_would() {
        let n = IN_MEMORY * 3 + 17;
        let all: Vec<Problem> = (0..n).map(problem).collect();
        let mut log = ProblemLog::new();
        log.extend(all.iter().cloned());
        assert_eq!(log.len(), n as u64);
        assert_eq!(log.first().len(), IN_MEMORY);
        assert!(log.spill.is_some());
        assert_eq!(log.iter().collect::<Vec<_>>(), all);
        // twice: reading does not consume
        assert_eq!(log.iter().count(), n);
        assert_eq!(
            serde_json::to_string_pretty(&log).unwrap(),
            serde_json::to_string_pretty(&all).unwrap()
        );
        let small = ProblemLog::from(vec![problem(1)]);
        assert_eq!(
            serde_json::to_string(&small).unwrap(),
            serde_json::to_string(&vec![problem(1)]).unwrap()
        );
        assert_eq!(serde_json::to_string(&ProblemLog::new()).unwrap(), "[]");
    }
}
