//! Checking one file: source -> mapping -> problems, with the valid documents spooled.
//!
//! `validate`, `run --dry-run` and `run` all go through [`check_file`]; only what happens
//! to the spooled documents afterwards differs.

use crate::fsutil::{open_regular, FileId};
use crate::mapping::{MappedDocument, Mapping};
use crate::problem::{Code, Problem};
use crate::problem_log::ProblemLog;
use crate::source::csv::{CsvSource, Grouping};
use crate::source::decode::Tap;
use crate::source::SourceFormat;
use crate::source::{DocumentSource, RawDocument, SourceError};
use crate::spool::Spool;
use chrono::{DateTime, Utc};
use sha2::Digest;
use std::cell::RefCell;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::rc::Rc;

/// What checking a file found.
#[derive(Debug)]
pub struct FileCheck {
    pub name: String,
    pub mapping: String,
    pub sha256: String,
    pub size: u64,
    pub rows: u64,
    pub documents: u64,
    pub valid: u64,
    pub invalid: u64,
    /// Documents the ledger says were already accepted with the same content.
    pub already_imported: u64,
    /// Every problem, in order (the first ones in memory, the rest in a temporary file).
    pub problems: ProblemLog,
    /// The whole file is unusable (a `read` problem with no document).
    pub fatal: bool,
    /// The check could not finish for a reason outside the file (a temporary or spool
    /// file could not be written): nothing about the file is known, it waits in the
    /// inbox.
    pub environment: Option<String>,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
}

impl FileCheck {
    pub fn is_clean(&self) -> bool {
        !self.fatal && self.invalid == 0
    }
}

/// What a caller decides about a valid document before it is spooled (the ledger says
/// "already imported" or "conflict").
pub enum Verdict {
    Take,
    AlreadyImported,
    Reject(Problem),
}

/// Options of one check.
pub struct CheckOptions<'a> {
    pub run_id: &'a str,
    /// Called with the bytes read so far, for progress bars.
    pub progress: &'a dyn Fn(u64),
    /// Called for each valid document before it is spooled.
    pub classify: &'a mut dyn FnMut(&MappedDocument) -> Verdict,
    /// The file that was claimed: every open of the path must find that file.
    pub file_id: Option<FileId>,
}

/// How a file is read: one pass usually; a second one when the first found that the
/// file is not grouped by key (CSV), or that keys repeat far apart (XML).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pass {
    /// Streamed, one document at a time.
    Stream,
    /// CSV rows of one key are not adjacent: sorted by key.
    Ungrouped,
    /// XML: these keys (hashes) occur more than once.
    Repeats(Vec<u64>),
}

/// Opens the mapping's source on a file.
pub fn open_source(
    mapping: &Mapping,
    path: &Path,
    tap: Rc<RefCell<Tap>>,
    grouping: Grouping,
) -> Result<Box<dyn DocumentSource>, Problem> {
    let pass = match grouping {
        Grouping::Grouped => Pass::Stream,
        Grouping::Ungrouped => Pass::Ungrouped,
    };
    open_source_for(mapping, path, None, tap, pass)
}

/// Opens the mapping's source on a file for a pass; with `id`, only if the path still
/// holds that file (see [`open_regular`]).
pub fn open_source_for(
    mapping: &Mapping,
    path: &Path,
    id: Option<FileId>,
    tap: Rc<RefCell<Tap>>,
    pass: Pass,
) -> Result<Box<dyn DocumentSource>, Problem> {
    let grouping = match pass {
        Pass::Ungrouped => Grouping::Ungrouped,
        _ => Grouping::Grouped,
    };
    let file = open_regular(path, id)
        .map_err(|e| Problem::file(Code::Io, None, format!("The file could not be opened: {e}")))?;
    match mapping.source.format {
        SourceFormat::Csv => Ok(Box::new(CsvSource::open(
            file,
            tap,
            &mapping.source,
            &mapping.slots,
            grouping,
        )?)),
        SourceFormat::Xml => {
            let src =
                crate::source::xml::XmlSource::open(file, tap, &mapping.source, &mapping.slots)?;
            Ok(match pass {
                Pass::Repeats(r) => Box::new(src.with_repeats(r)),
                _ => Box::new(src),
            })
        }
    }
}

/// Reads, maps and validates a file; valid documents go to `spool` when given.
pub fn check_file(
    path: &Path,
    mapping: &Mapping,
    mut spool: Option<&mut Spool>,
    mut opts: CheckOptions<'_>,
) -> FileCheck {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let size = std::fs::symlink_metadata(path)
        .map(|m| m.len())
        .unwrap_or(0);
    let id = opts.file_id;
    let mut check = FileCheck {
        name: name.clone(),
        mapping: mapping.name.clone(),
        sha256: String::new(),
        size,
        rows: 0,
        documents: 0,
        valid: 0,
        invalid: 0,
        already_imported: 0,
        problems: ProblemLog::new(),
        fatal: false,
        environment: None,
        started: Utc::now(),
        finished: Utc::now(),
    };
    let mut tap;
    let mut pass = Pass::Stream;
    loop {
        check.rows = 0;
        check.documents = 0;
        check.valid = 0;
        check.invalid = 0;
        check.already_imported = 0;
        check.problems.clear();
        check.fatal = false;
        if let Some(s) = spool.as_deref_mut() {
            if let Err(e) = s.clear() {
                return environment(check, format!("cannot write the spool file: {e}"));
            }
        }
        // XML is read on a second thread while this one maps and validates: its parser
        // costs about as much as the mapping (see [`ReadAhead`])
        let ahead = mapping.source.format == SourceFormat::Xml && read_ahead_enabled();
        let (flow, pass_tap) = std::thread::scope(|s| {
            // the tap of a source read here; a source read ahead returns its own
            let shared = Rc::new(RefCell::new(Tap::default()));
            let (mut source, producer): (Box<dyn DocumentSource>, _) = if ahead {
                let (ra, handle) = ReadAhead::start(s, mapping, path, id, pass.clone());
                (Box::new(ra), Some(handle))
            } else {
                match open_source_for(mapping, path, id, shared.clone(), pass.clone()) {
                    Ok(src) => (src, None),
                    Err(p) => return (Flow::Fatal(p), Tap::default()),
                }
            };
            let flow = read_documents(
                &mut *source,
                mapping,
                &name,
                &pass,
                &mut check,
                spool.as_deref_mut(),
                &mut opts,
            );
            (opts.progress)(source.bytes_read());
            drop(source);
            let t = match producer {
                // a panic of the reader is this thread's, as if it had read the file
                Some(h) => h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
                None => std::mem::take(&mut *shared.borrow_mut()),
            };
            (flow, t)
        });
        tap = pass_tap;
        let again = match flow {
            Flow::Done => None,
            Flow::Again(p) => Some(p),
            Flow::Fatal(p) => {
                check.problems.push(p);
                check.fatal = true;
                None
            }
            Flow::Environment(reason) => return environment(check, reason),
        };
        match again {
            None => break,
            Some(p) => {
                match &p {
                    Pass::Ungrouped => {
                        tracing::debug!(file = %name, "a document key comes back after other keys: reading the file again, grouped by key")
                    }
                    _ => {
                        tracing::debug!(file = %name, "document keys repeat far apart: reading the file again to report them")
                    }
                }
                pass = p;
            }
        }
    }
    if let Some(e) = check.problems.failure() {
        // a report without all its rows would be a lie
        let reason = format!("cannot keep the file's problems in a temporary file: {e}");
        return environment(check, reason);
    }
    if check.fatal {
        // Nothing of an unusable file counts: what was read of it is invalid.
        check.valid = 0;
        check.invalid = check.documents;
        check.already_imported = 0;
        if let Some(s) = spool {
            let _ = s.clear();
        }
    }
    check.sha256 = finish_hash(path, id, tap);
    check.finished = Utc::now();
    check
}

/// Ends a check that could not finish for a reason outside the file.
fn environment(mut check: FileCheck, reason: String) -> FileCheck {
    check.environment = Some(reason);
    check.valid = 0;
    check.finished = Utc::now();
    check
}

/// How reading a file's documents ended.
enum Flow {
    /// The end of the file.
    Done,
    /// Read it again this way.
    Again(Pass),
    /// The file cannot be used.
    Fatal(Problem),
    /// Reading could not go on for a reason outside the file (a temporary or spool
    /// file could not be written or read).
    Environment(String),
}

/// Maps, validates, classifies and spools the documents of one pass.
fn read_documents(
    source: &mut dyn DocumentSource,
    mapping: &Mapping,
    name: &str,
    pass: &Pass,
    check: &mut FileCheck,
    mut spool: Option<&mut Spool>,
    opts: &mut CheckOptions<'_>,
) -> Flow {
    let mut n = 0u64;
    while let Some(item) = source.next_document() {
        match item {
            Ok(raw) => {
                // a payload is built only where it goes somewhere
                let doc = mapping.map_document_with(&raw, name, opts.run_id, spool.is_some());
                drop(raw);
                check.rows += doc.rows;
                check.documents += 1;
                if doc.is_valid() {
                    match (opts.classify)(&doc) {
                        Verdict::Take => {
                            check.valid += 1;
                            if let Some(s) = spool.as_deref_mut() {
                                if let Err(e) = s.push(&doc) {
                                    return Flow::Environment(format!(
                                        "cannot write the spool file: {e}"
                                    ));
                                }
                            }
                        }
                        Verdict::AlreadyImported => {
                            check.valid += 1;
                            check.already_imported += 1;
                        }
                        Verdict::Reject(p) => {
                            check.invalid += 1;
                            check.problems.push(p);
                        }
                    }
                } else {
                    check.invalid += 1;
                    check.problems.extend(doc.problems);
                }
            }
            Err(SourceError::Ungrouped) if *pass == Pass::Stream => {
                return Flow::Again(Pass::Ungrouped);
            }
            Err(SourceError::Repeated(r)) if *pass == Pass::Stream => {
                return Flow::Again(Pass::Repeats(r));
            }
            Err(SourceError::Ungrouped | SourceError::Repeated(_)) => {}
            Err(SourceError::Fatal(p)) => return Flow::Fatal(p),
            Err(SourceError::Environment(reason)) => return Flow::Environment(reason),
        }
        n += 1;
        if n.is_multiple_of(1024) {
            (opts.progress)(source.bytes_read());
        }
    }
    Flow::Done
}

/// `ERPDROP_READ_AHEAD=0` reads XML on the checking thread (for tests that compare).
fn read_ahead_enabled() -> bool {
    std::env::var_os("ERPDROP_READ_AHEAD").is_none_or(|v| v != "0")
}

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
struct ReadAhead {
    rx: std::sync::mpsc::Receiver<Chunk>,
    current: std::vec::IntoIter<Result<RawDocument, SourceError>>,
    bytes: u64,
}

impl ReadAhead {
    fn start<'scope, 'env: 'scope>(
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

/// The file's sha256: what the reader hashed, plus whatever it did not reach.
fn finish_hash(path: &Path, id: Option<FileId>, t: Tap) -> String {
    let mut hasher = t.hasher;
    if let Ok(mut f) = open_regular(path, id) {
        if f.seek(SeekFrom::Start(t.bytes)).is_ok() {
            let mut buf = vec![0u8; 256 * 1024];
            while let Ok(n) = f.read(&mut buf) {
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
        }
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
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
