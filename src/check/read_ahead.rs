//! XML parsed on a second thread while the checking thread maps and validates: its
//! parser costs about as much as the mapping. Memory stays bounded: documents go over
//! in small chunks through a short queue.

use super::{open_source_for, Pass};
use crate::fsutil::FileId;
use crate::mapping::Mapping;
use crate::source::decode::Tap;
use crate::source::{DocumentSource, RawDocument, SourceError};
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

/// A hand-over between the reading and the checking thread holds up to `AHEAD_BATCH`
/// documents or `AHEAD_LINES` lines (a record with many lines fills it alone), and
/// `AHEAD_QUEUE` hand-overs may wait: at most `AHEAD_QUEUE + 2` of them in memory.
const AHEAD_BATCH: usize = 64;
const AHEAD_LINES: usize = 4096;
const AHEAD_QUEUE: usize = 2;

struct Chunk {
    docs: Vec<Result<RawDocument, SourceError>>,
    /// Bytes of the file read when the chunk was handed over.
    bytes: u64,
}

/// A source read on another thread: it opens the source there, reads documents in
/// chunks and hands them over through a short queue; this side gives them out one by
/// one. The reader stops at the end of the file, at a fatal problem, or when this side
/// is dropped; it returns its [`Tap`] (bytes read and their hash) when joined.
pub(super) struct ReadAhead {
    rx: std::sync::mpsc::Receiver<Chunk>,
    current: std::vec::IntoIter<Result<RawDocument, SourceError>>,
    bytes: u64,
}

impl ReadAhead {
    pub(super) fn start<'scope, 'env: 'scope>(
        s: &'scope std::thread::Scope<'scope, 'env>,
        mapping: &'env Mapping,
        path: &'env Path,
        id: Option<FileId>,
        pass: Pass,
    ) -> (ReadAhead, std::thread::ScopedJoinHandle<'scope, Tap>) {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Chunk>(AHEAD_QUEUE);
        let handle = s.spawn(move || {
            let shared = Rc::new(RefCell::new(Tap::default()));
            let mut source = match open_source_for(mapping, path, id, shared.clone(), pass) {
                Ok(src) => src,
                Err(p) => {
                    let _ = tx.send(Chunk {
                        docs: vec![Err(SourceError::Fatal(p))],
                        bytes: 0,
                    });
                    return Tap::default();
                }
            };
            hand_over(&mut *source, &tx);
            drop(source);
            let tap = std::mem::take(&mut *shared.borrow_mut());
            tap
        });
        let ra = ReadAhead {
            rx,
            current: Vec::new().into_iter(),
            bytes: 0,
        };
        (ra, handle)
    }
}

/// Reads `source` to its end (or a fatal problem) and sends its documents in chunks of
/// at most `AHEAD_BATCH` documents or about `AHEAD_LINES` lines; stops early when the
/// receiver is gone.
fn hand_over(source: &mut dyn DocumentSource, tx: &std::sync::mpsc::SyncSender<Chunk>) {
    let mut docs = Vec::with_capacity(AHEAD_BATCH);
    let mut lines = 0;
    loop {
        let item = source.next_document();
        let end = matches!(
            item,
            None | Some(Err(SourceError::Fatal(_) | SourceError::Environment(_)))
        );
        if let Some(Ok(d)) = &item {
            lines += d.lines.len();
        }
        docs.extend(item);
        if end || docs.len() >= AHEAD_BATCH || lines >= AHEAD_LINES {
            lines = 0;
            let chunk = Chunk {
                docs: std::mem::replace(&mut docs, Vec::with_capacity(AHEAD_BATCH)),
                bytes: source.bytes_read(),
            };
            let gone = tx.send(chunk).is_err();
            if end || gone {
                return;
            }
        }
    }
}

impl DocumentSource for ReadAhead {
    fn next_document(&mut self) -> Option<Result<RawDocument, SourceError>> {
        loop {
            if let Some(d) = self.current.next() {
                return Some(d);
            }
            let chunk = self.rx.recv().ok()?;
            self.bytes = chunk.bytes;
            self.current = chunk.docs.into_iter();
        }
    }

    fn bytes_read(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::{Code, Problem};
    use crate::source::RawRow;

    /// `docs` documents of `lines` lines each, then the end (or a fatal problem).
    struct Fake {
        docs: usize,
        lines: usize,
        fatal_at: Option<usize>,
        given: usize,
    }

    impl DocumentSource for Fake {
        fn next_document(&mut self) -> Option<Result<RawDocument, SourceError>> {
            if Some(self.given) == self.fatal_at {
                self.given += 1;
                return Some(Err(SourceError::Fatal(Problem::file(
                    Code::Malformed,
                    Some(7),
                    "broken",
                ))));
            }
            if self.given >= self.docs {
                return None;
            }
            self.given += 1;
            Some(Ok(RawDocument {
                key: vec![format!("K{}", self.given)],
                line: self.given as u64,
                lines: (0..self.lines).map(|l| RawRow::new(l as u64)).collect(),
                ..RawDocument::default()
            }))
        }

        fn bytes_read(&self) -> u64 {
            self.given as u64 * 100
        }
    }

    /// The chunks `hand_over` sends for a source.
    fn chunks(mut src: Fake) -> Vec<Chunk> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1_000_000);
        hand_over(&mut src, &tx);
        drop(tx);
        rx.iter().collect()
    }

    fn keys(chunks: &[Chunk]) -> Vec<String> {
        chunks
            .iter()
            .flat_map(|c| &c.docs)
            .filter_map(|d| d.as_ref().ok().map(|d| d.key[0].clone()))
            .collect()
    }

    #[test]
    fn documents_go_over_in_order_in_bounded_chunks() {
        // small documents: chunks of AHEAD_BATCH
        let c = chunks(Fake {
            docs: 200,
            lines: 2,
            fatal_at: None,
            given: 0,
        });
        assert_eq!(
            keys(&c),
            (1..=200).map(|i| format!("K{i}")).collect::<Vec<_>>()
        );
        assert!(c.iter().all(|c| c.docs.len() <= AHEAD_BATCH));
        assert_eq!(c[0].docs.len(), AHEAD_BATCH);
        assert_eq!(c[0].bytes, AHEAD_BATCH as u64 * 100);
        // documents of many lines: a chunk closes once it holds AHEAD_LINES lines, so
        // memory does not grow with the size of the records
        let c = chunks(Fake {
            docs: 300,
            lines: 1000,
            fatal_at: None,
            given: 0,
        });
        assert_eq!(keys(&c).len(), 300);
        const { assert!(AHEAD_LINES <= 64 * 1024, "a chunk's lines must stay few") };
        for chunk in &c {
            assert!(
                chunk.docs.len() * 1000 < AHEAD_LINES + 1000,
                "{}",
                chunk.docs.len()
            );
        }
        // one huge record goes alone
        let c = chunks(Fake {
            docs: 3,
            lines: 3 * AHEAD_LINES,
            fatal_at: None,
            given: 0,
        });
        assert_eq!(
            c.iter().map(|c| c.docs.len()).collect::<Vec<_>>(),
            [1, 1, 1, 0]
        );
    }

    #[test]
    fn a_fatal_problem_is_the_last_thing_sent() {
        let c = chunks(Fake {
            docs: 100,
            lines: 1,
            fatal_at: Some(70),
            given: 0,
        });
        let all: Vec<&Result<RawDocument, SourceError>> = c.iter().flat_map(|c| &c.docs).collect();
        assert_eq!(all.len(), 71);
        assert!(matches!(all[70], Err(SourceError::Fatal(_))));
    }

    #[test]
    fn the_reader_stops_when_the_checker_is_gone() {
        let (tx, rx) = std::sync::mpsc::sync_channel(0);
        drop(rx);
        let mut src = Fake {
            docs: 1_000_000,
            lines: 1,
            fatal_at: None,
            given: 0,
        };
        hand_over(&mut src, &tx);
        assert_eq!(src.given, AHEAD_BATCH);
    }
}
