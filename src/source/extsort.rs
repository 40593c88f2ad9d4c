//! A stable external sort of byte records, for reading a file that is not grouped by
//! key in bounded memory: records are buffered up to a budget, sorted, written to a
//! temporary file as a run, and the runs are merged at the end.

use crate::codec::{read_bytes, write_bytes};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

/// How many runs are merged at once; more are merged in several rounds.
const FAN_IN: usize = 64;
/// Runs kept open while the input is read; more are folded into one.
const MAX_OPEN_RUNS: usize = 128;

/// Sorts `(key, record)` pairs by key, stably (equal keys keep the order they were
/// pushed in).
pub struct Sorter {
    budget: usize,
    data: Vec<u8>,
    /// (key start, key length, record length) of each buffered pair in `data`.
    index: Vec<(usize, u32, u32)>,
    runs: Vec<File>,
}

impl Sorter {
    /// A sorter that keeps about `budget` bytes in memory.
    pub fn new(budget: usize) -> Sorter {
        Sorter {
            budget,
            data: Vec::new(),
            index: Vec::new(),
            runs: Vec::new(),
        }
    }

    pub fn push(&mut self, key: &[u8], record: &[u8]) -> io::Result<()> {
        let start = self.data.len();
        self.data.extend_from_slice(key);
        self.data.extend_from_slice(record);
        self.index
            .push((start, key.len() as u32, record.len() as u32));
        if self.data.len() + self.index.len() * 16 >= self.budget {
            self.spill()?;
        }
        Ok(())
    }

    fn sort_buffer(&mut self) {
        let data = &self.data;
        // stable: equal keys keep their order
        self.index
            .sort_by(|a, b| data[a.0..a.0 + a.1 as usize].cmp(&data[b.0..b.0 + b.1 as usize]));
    }

    fn spill(&mut self) -> io::Result<()> {
        if self.index.is_empty() {
            return Ok(());
        }
        self.sort_buffer();
        let mut w = BufWriter::with_capacity(256 * 1024, tempfile::tempfile()?);
        for &(start, klen, rlen) in &self.index {
            write_pair(
                &mut w,
                &self.data[start..start + klen as usize],
                &self.data[start + klen as usize..start + klen as usize + rlen as usize],
            )?;
        }
        let mut f = w.into_inner().map_err(|e| e.into_error())?;
        f.seek(SeekFrom::Start(0))?;
        self.runs.push(f);
        self.data.clear();
        self.index.clear();
        if self.runs.len() >= MAX_OPEN_RUNS {
            // keep the number of open files bounded: fold the runs so far into one
            let runs = std::mem::take(&mut self.runs);
            self.runs.push(merge_to_run(runs)?);
        }
        Ok(())
    }

    /// Ends the input: the pairs in key order.
    pub fn finish(mut self) -> io::Result<Sorted> {
        if self.runs.is_empty() {
            self.sort_buffer();
            return Ok(Sorted::Memory {
                data: self.data,
                index: self.index,
                next: 0,
            });
        }
        self.spill()?;
        self.data = Vec::new();
        self.index = Vec::new();
        let mut runs = std::mem::take(&mut self.runs);
        // Merge in rounds until one merge can take every run.
        while runs.len() > FAN_IN {
            let rest = runs.split_off(FAN_IN);
            let merged = merge_to_run(runs)?;
            runs = rest;
            // the merged run holds the earliest pairs: it goes first, for stability
            runs.insert(0, merged);
        }
        Ok(Sorted::Runs(Merge::new(runs)?))
    }
}

/// Merges runs into one new run.
fn merge_to_run(runs: Vec<File>) -> io::Result<File> {
    let mut merge = Merge::new(runs)?;
    let mut w = BufWriter::with_capacity(256 * 1024, tempfile::tempfile()?);
    let (mut k, mut r) = (Vec::new(), Vec::new());
    while merge.next_into(&mut k, &mut r)? {
        write_pair(&mut w, &k, &r)?;
    }
    let mut f = w.into_inner().map_err(|e| e.into_error())?;
    f.seek(SeekFrom::Start(0))?;
    Ok(f)
}

/// Writes a pair to a run: the key, then the record ([`codec`](crate::codec) byte strings).
fn write_pair<W: Write>(w: &mut W, key: &[u8], record: &[u8]) -> io::Result<()> {
    write_bytes(w, key)?;
    write_bytes(w, record)
}

/// Reads the next pair of a run into `key` and `record`; `false` at its end.
fn read_pair<R: Read>(r: &mut R, key: &mut Vec<u8>, record: &mut Vec<u8>) -> io::Result<bool> {
    if !read_bytes(r, key)? {
        return Ok(false);
    }
    if !read_bytes(r, record)? {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(true)
}

/// The sorted pairs.
pub enum Sorted {
    Memory {
        data: Vec<u8>,
        index: Vec<(usize, u32, u32)>,
        next: usize,
    },
    Runs(Merge),
}

impl Sorted {
    /// The next pair, copied into `key` and `record`; `false` at the end.
    pub fn next_into(&mut self, key: &mut Vec<u8>, record: &mut Vec<u8>) -> io::Result<bool> {
        match self {
            Sorted::Memory { data, index, next } => {
                let Some(&(start, klen, rlen)) = index.get(*next) else {
                    // give the memory back as soon as the last pair was taken
                    *data = Vec::new();
                    *index = Vec::new();
                    return Ok(false);
                };
                *next += 1;
                let (k, r) =
                    data[start..start + klen as usize + rlen as usize].split_at(klen as usize);
                key.clear();
                key.extend_from_slice(k);
                record.clear();
                record.extend_from_slice(r);
                Ok(true)
            }
            Sorted::Runs(m) => m.next_into(key, record),
        }
    }
}

/// One run's current pair in the merge.
struct Head {
    key: Vec<u8>,
    record: Vec<u8>,
    run: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    // BinaryHeap is a max-heap: the smallest key (then the earliest run) is the greatest
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .key
            .cmp(&self.key)
            .then_with(|| other.run.cmp(&self.run))
    }
}

/// A k-way merge of sorted runs; ties go to the earlier run, which keeps the sort stable.
pub struct Merge {
    readers: Vec<BufReader<File>>,
    heap: BinaryHeap<Head>,
}

impl Merge {
    fn new(runs: Vec<File>) -> io::Result<Merge> {
        let mut readers: Vec<BufReader<File>> = runs
            .into_iter()
            .map(|f| BufReader::with_capacity(32 * 1024, f))
            .collect();
        let mut heap = BinaryHeap::with_capacity(readers.len());
        for (run, r) in readers.iter_mut().enumerate() {
            let (mut key, mut record) = (Vec::new(), Vec::new());
            if read_pair(r, &mut key, &mut record)? {
                heap.push(Head { key, record, run });
            }
        }
        Ok(Merge { readers, heap })
    }

    pub fn next_into(&mut self, key: &mut Vec<u8>, record: &mut Vec<u8>) -> io::Result<bool> {
        let Some(mut head) = self.heap.pop() else {
            return Ok(false);
        };
        std::mem::swap(key, &mut head.key);
        std::mem::swap(record, &mut head.record);
        // the head's buffers (the caller's old ones) take the run's next pair
        if read_pair(&mut self.readers[head.run], &mut head.key, &mut head.record)? {
            self.heap.push(head);
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(budget: usize, pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut s = Sorter::new(budget);
        for (k, r) in pairs {
            s.push(k.as_bytes(), r.as_bytes()).unwrap();
        }
        let mut out = Vec::new();
        let mut m = s.finish().unwrap();
        let (mut k, mut r) = (Vec::new(), Vec::new());
        while m.next_into(&mut k, &mut r).unwrap() {
            out.push((
                String::from_utf8(k.clone()).unwrap(),
                String::from_utf8(r.clone()).unwrap(),
            ));
        }
        out
    }

    #[test]
    fn sorts_stably_in_memory_and_on_disk() {
        let mut pairs = Vec::new();
        let keys: Vec<String> = (0..3000)
            .map(|i| format!("k{:04}", (i * 7919) % 500))
            .collect();
        let recs: Vec<String> = (0..3000).map(|i| format!("r{i}")).collect();
        for i in 0..3000 {
            pairs.push((keys[i].as_str(), recs[i].as_str()));
        }
        let mut expected: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, r)| (k.to_string(), r.to_string()))
            .collect();
        expected.sort_by(|a, b| a.0.cmp(&b.0)); // stable
        assert_eq!(sorted(1 << 30, &pairs), expected);
        // tiny budgets: a few pairs per run, runs folded while reading, merge rounds
        assert_eq!(sorted(60, &pairs), expected);
        assert_eq!(sorted(2000, &pairs), expected);
        assert_eq!(sorted(500, &pairs), expected);
        assert!(sorted(10, &[]).is_empty());
    }
}
