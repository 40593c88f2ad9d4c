//! Checking one file: source -> mapping -> problems, with the valid documents spooled.
//!
//! `validate`, `run --dry-run` and `run` all go through [`check_file`]; only what happens
//! to the spooled documents afterwards differs.

use crate::config::mapping::SourceFormat;
use crate::mapping::{MappedDocument, Mapping};
use crate::problem::{Code, Problem};
use crate::problem_log::ProblemLog;
use crate::source::csv::{CsvSource, Grouping};
use crate::source::decode::Tap;
use crate::source::{DocumentSource, SourceError};
use crate::spool::Spool;
use chrono::{DateTime, Utc};
use sha2::Digest;
use std::cell::RefCell;
use std::fs::File;
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
    open_source_for(mapping, path, tap, pass)
}

/// Opens the mapping's source on a file for a pass.
pub fn open_source_for(
    mapping: &Mapping,
    path: &Path,
    tap: Rc<RefCell<Tap>>,
    pass: Pass,
) -> Result<Box<dyn DocumentSource>, Problem> {
    let grouping = match pass {
        Pass::Ungrouped => Grouping::Ungrouped,
        _ => Grouping::Grouped,
    };
    let file = File::open(path)
        .map_err(|e| Problem::file(Code::Io, None, format!("The file could not be opened: {e}")))?;
    match mapping.source.format {
        SourceFormat::Csv => Ok(Box::new(CsvSource::open(
            file,
            tap,
            &mapping.source.csv,
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
    opts: CheckOptions<'_>,
) -> FileCheck {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
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
        started: Utc::now(),
        finished: Utc::now(),
    };
    let mut tap = Tap::default();
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
                return fatal(
                    check,
                    Problem::file(Code::Io, None, format!("Cannot write the spool file: {e}")),
                );
            }
        }
        let mut again: Option<Pass> = None;
        let shared = Rc::new(RefCell::new(Tap::default()));
        let mut source = match open_source_for(mapping, path, shared.clone(), pass.clone()) {
            Ok(s) => s,
            Err(p) => {
                check.problems.push(p);
                check.fatal = true;
                break;
            }
        };
        let mut n = 0u64;
        while let Some(item) = source.next_document() {
            match item {
                Ok(raw) => {
                    // a payload is built only where it goes somewhere
                    let doc = mapping.map_document_with(&raw, &name, opts.run_id, spool.is_some());
                    check.rows += doc.rows;
                    check.documents += 1;
                    if doc.is_valid() {
                        match (opts.classify)(&doc) {
                            Verdict::Take => {
                                check.valid += 1;
                                if let Some(s) = spool.as_deref_mut() {
                                    if let Err(e) = s.push(&doc) {
                                        return fatal(
                                            check,
                                            Problem::file(
                                                Code::Io,
                                                None,
                                                format!("Cannot write the spool file: {e}"),
                                            ),
                                        );
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
                Err(SourceError::Ungrouped) if pass == Pass::Stream => {
                    again = Some(Pass::Ungrouped);
                    break;
                }
                Err(SourceError::Repeated(r)) if pass == Pass::Stream => {
                    again = Some(Pass::Repeats(r));
                    break;
                }
                Err(SourceError::Ungrouped | SourceError::Repeated(_)) => {}
                Err(SourceError::Fatal(p)) => {
                    check.problems.push(p);
                    check.fatal = true;
                    break;
                }
            }
            n += 1;
            if n.is_multiple_of(1024) {
                (opts.progress)(source.bytes_read());
            }
        }
        (opts.progress)(source.bytes_read());
        drop(source);
        tap = std::mem::take(&mut *shared.borrow_mut());
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
    if check.fatal {
        // Nothing of an unusable file counts: what was read of it is invalid.
        check.valid = 0;
        check.invalid = check.documents;
        check.already_imported = 0;
        if let Some(s) = spool {
            let _ = s.clear();
        }
    }
    check.sha256 = finish_hash(path, tap);
    check.finished = Utc::now();
    check
}

fn fatal(mut check: FileCheck, p: Problem) -> FileCheck {
    check.problems.push(p);
    check.fatal = true;
    check.valid = 0;
    check.finished = Utc::now();
    check
}

/// The file's sha256: what the reader hashed, plus whatever it did not reach.
fn finish_hash(path: &Path, t: Tap) -> String {
    let mut hasher = t.hasher;
    if let Ok(mut f) = File::open(path) {
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
