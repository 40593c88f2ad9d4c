//! Checking one file: source -> mapping -> problems, with the valid documents spooled.
//!
//! A pass, dry or not, checks every file through [`check_file`]; only what happens to
//! the spooled documents afterwards differs. `verdict` is what the ledger says of a
//! valid document, `read_ahead` parses XML on a second thread.

mod read_ahead;
mod verdict;

pub use verdict::{classify, in_doubt_problem, Plan, Verdict};

use crate::fsutil::{open_regular, FileId};
use crate::mapping::OnInvalid;
use crate::mapping::{MappedDocument, Mapping};
use crate::outcome::{AcceptedDoc, Counts};
use crate::problem::{Code, Problem, Stage};
use crate::problem_log::{ProblemLog, SpillLog};
use crate::source::csv::{CsvSource, Grouping};
use crate::source::decode::Tap;
use crate::source::fixed::FixedReader;
use crate::source::rows::RowDocuments;
use crate::source::sheet::SheetSource;
use crate::source::SourceFormat;
use crate::source::{DocumentSource, SourceError};
use crate::spool::Spool;
use chrono::{DateTime, Utc};
use read_ahead::ReadAhead;
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
    /// The mapping follows changes (master data): see [`Mapping::follows_changes`].
    pub master: bool,
    /// The delimiter of its `errors.csv` (the mapping's `[report] delimiter`).
    pub report_delimiter: u8,
    pub sha256: String,
    pub size: u64,
    /// Rows, documents, invalid ones and those the ledger says were already accepted
    /// with the same content (nothing is accepted or rejected by a check).
    pub counts: Counts,
    /// What would be asked of the ERP for the valid documents.
    pub plan: Planned,
    /// Each document that would be sent, with its operation (only when asked: a dry
    /// run's `--report` lists them).
    pub planned: SpillLog<AcceptedDoc>,
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
        !self.fatal && self.counts.invalid == 0
    }

    /// Whether valid documents of this file go to the target: none from an unusable
    /// file, none from a file with an invalid document unless its mapping says
    /// `skip-document`.
    pub fn submits(&self, m: &Mapping) -> bool {
        !self.fatal && (self.counts.invalid == 0 || m.on_invalid == OnInvalid::SkipDocument)
    }
}

/// How many documents of a file would be created, updated and deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Planned {
    pub create: u64,
    pub update: u64,
    pub delete: u64,
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
    /// XML is parsed on a second thread (see `read_ahead`); off only to compare.
    pub read_ahead: bool,
    /// Where `ref` fields find the ERP's ids.
    pub refs: &'a dyn crate::mapping::Refs,
    /// Called with the key of every document read, valid or not (a snapshot's list).
    pub seen: Option<&'a mut dyn FnMut(&str)>,
    /// Keep each document that would be sent in [`FileCheck::planned`].
    pub list_plan: bool,
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
    let (opts, slots) = (&mapping.source, &mapping.slots);
    match mapping.source.format {
        SourceFormat::Csv if opts.rows.record_type.is_some() || opts.rows.trailer.is_some() => {
            let csv = CsvSource::open(file, tap, opts, slots, Grouping::Grouped)?;
            Ok(Box::new(RowDocuments::open(
                csv,
                slots,
                &opts.rows,
                opts.budget,
            )?))
        }
        SourceFormat::Fixed => {
            let fixed = FixedReader::open(file, tap, opts);
            Ok(Box::new(RowDocuments::open(
                fixed,
                slots,
                &opts.rows,
                opts.budget,
            )?))
        }
        // without record types or a trailer, rows are skipped as the CSV reader reads
        // them, so that a file not grouped by key is still sorted
        SourceFormat::Csv => Ok(Box::new(
            CsvSource::open(file, tap, opts, slots, grouping)?.with_skip(&opts.rows.skip)?,
        )),
        // a workbook with a trailer (its totals row) goes through the rows layer, as
        // CSV does; with [[skip]] only, it skips rows itself and can still be sorted
        SourceFormat::Xlsx | SourceFormat::Xls | SourceFormat::Ods
            if opts.rows.record_type.is_some() || opts.rows.trailer.is_some() =>
        {
            let sheet = SheetSource::open(file, opts, slots, Grouping::Grouped)?;
            Ok(Box::new(RowDocuments::open(
                sheet,
                slots,
                &opts.rows,
                opts.budget,
            )?))
        }
        SourceFormat::Xlsx | SourceFormat::Xls | SourceFormat::Ods => Ok(Box::new(
            SheetSource::open(file, opts, slots, grouping)?.with_skip(&opts.rows.skip)?,
        )),
        SourceFormat::Json => {
            let src = crate::source::json::JsonSource::open(file, tap, opts, slots)?
                .with_skip(&opts.rows.skip);
            Ok(match pass {
                Pass::Repeats(r) => Box::new(src.with_repeats(r)),
                _ => Box::new(src),
            })
        }
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
        master: mapping.follows_changes(),
        report_delimiter: mapping.report_delimiter,
        sha256: String::new(),
        size,
        counts: Counts::default(),
        plan: Planned::default(),
        planned: SpillLog::new(),
        problems: ProblemLog::new(),
        fatal: false,
        environment: None,
        started: Utc::now(),
        finished: Utc::now(),
    };
    let mut tap;
    let mut pass = Pass::Stream;
    loop {
        check.counts = Counts::default();
        check.plan = Planned::default();
        check.planned.clear();
        check.problems.clear();
        check.fatal = false;
        if let Some(s) = spool.as_deref_mut() {
            if let Err(e) = s.clear() {
                return environment(check, format!("cannot write the spool file: {e}"));
            }
        }
        // XML is read on a second thread while this one maps and validates: its parser
        // costs about as much as the mapping (see [`ReadAhead`])
        let ahead = mapping.source.format == SourceFormat::Xml && opts.read_ahead;
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
            check.counts.skipped = source.skipped();
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
            Flow::Fatal(mut p) => {
                if p.code == Code::MissingColumn {
                    name_readers(&mut p, mapping);
                }
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
        check.counts.invalid = check.counts.documents;
        check.counts.already_imported = 0;
        check.plan = Planned::default();
        check.planned.clear();
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
                let doc =
                    mapping.map_document_with(&raw, name, opts.run_id, spool.is_some(), opts.refs);
                drop(raw);
                if let Some(seen) = opts.seen.as_deref_mut() {
                    if !doc.key.is_empty() {
                        seen(&doc.key);
                    }
                }
                check.counts.rows += doc.rows;
                check.counts.documents += 1;
                if doc.is_valid() {
                    match (opts.classify)(&doc) {
                        Verdict::Take(plan) => {
                            match plan.operation {
                                crate::ledger::Operation::Update => check.plan.update += 1,
                                _ => check.plan.create += 1,
                            }
                            if opts.list_plan {
                                check.planned.push(AcceptedDoc {
                                    document: doc.key.clone(),
                                    line: doc.line,
                                    id: plan.erp_id.clone(),
                                    operation: plan.operation,
                                });
                            }
                            if let Some(s) = spool.as_deref_mut() {
                                let id = plan.erp_id.as_deref();
                                // its place among the file's documents, whatever became of the others
                                let ordinal = check.counts.documents - 1;
                                if let Err(e) = s.push(
                                    &doc,
                                    plan.operation,
                                    id,
                                    plan.deletions,
                                    plan.updates,
                                    ordinal,
                                ) {
                                    return Flow::Environment(format!(
                                        "cannot write the spool file: {e}"
                                    ));
                                }
                            }
                        }
                        Verdict::AlreadyImported => check.counts.already_imported += 1,
                        Verdict::Reject(p) => {
                            check.counts.invalid += 1;
                            check.problems.push(p);
                        }
                    }
                } else {
                    check.counts.invalid += 1;
                    let mut problems = doc.problems;
                    // a workbook names a column by its letter and header: `C (Amount)`
                    for p in problems.iter_mut().filter(|p| p.stage != Stage::Read) {
                        if let Some(label) =
                            p.column.as_deref().and_then(|c| source.column_label(c))
                        {
                            p.column = Some(label);
                        }
                    }
                    check.problems.extend(problems);
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

/// Adds to a missing-column problem which fields of which mapping file read the columns
/// the file lacks (and the line of each field), so that a typing error in a mapping
/// (`from = "Amout"`) reaches the integrator as one, not as finance's data problem.
fn name_readers(p: &mut Problem, mapping: &Mapping) {
    let Some(value) = p.value.clone() else {
        return;
    };
    let missing: Vec<&str> = value.split(", ").collect();
    let text = std::fs::read_to_string(&mapping.file).unwrap_or_default();
    let loc = crate::config_error::KeyLocator::new(&text);
    let mut readers = Vec::new();
    for (section, fields) in [("header", &mapping.header), ("lines", &mapping.line_fields)] {
        for f in fields.iter() {
            if f.column()
                .is_some_and(|c| missing.contains(&c) || c == value)
            {
                let at = loc
                    .line(&[section, &f.name])
                    .map(|l| format!(" (line {l})"))
                    .unwrap_or_default();
                readers.push(format!("{section}.{}{at}", f.name));
            }
        }
    }
    if mapping
        .key
        .iter()
        .any(|k| missing.contains(&k.as_str()) || *k == value)
    {
        let at = loc
            .line(&["document", "key"])
            .map(|l| format!(" (line {l})"))
            .unwrap_or_default();
        readers.push(format!("document.key{at}"));
    }
    if readers.is_empty() {
        return;
    }
    if p.field.is_none() {
        p.field = readers[0].split(' ').next().map(str::to_string);
    }
    let said = format!(
        ", which {} reads in {} (if the file's column is right, fix the mapping)",
        mapping.file.display(),
        readers.join(", ")
    );
    match p.text.find("; its columns are") {
        Some(at) => p.text.insert_str(at, &said),
        None => p.text.push_str(&said),
    }
}
