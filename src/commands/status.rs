//! `erpdrop status [--failed] [--json]`: the integration monitor. Recent runs, files
//! waiting in the inbox and why, failed files, and the documents that failed and why,
//! newest first. Reads the ledger without blocking a run that writes it.

use crate::config::Config;
use crate::exit::{Exit, Failure};
use crate::ledger::{DocRecord, FileRecord, Ledger, RunRecord, RunState};
use crate::lifecycle::scan::{list_failed_files, list_files, readiness, NotReady};
use crate::outcome::Outcome;
use crate::problem::{bound, MAX_MESSAGE_CHARS};
use crate::ui::Ui;
use serde::Serialize;
use std::time::{Duration, SystemTime};

#[derive(Debug, Serialize)]
struct Waiting {
    file: String,
    reason: String,
}

#[derive(Debug, Serialize)]
struct FailedFile {
    file: String,
    run: Option<String>,
    finished: Option<String>,
    first_error: Option<String>,
    /// Documents of the file that failed (invalid or rejected), the first error's
    /// included.
    failed_documents: u64,
    /// `[retry]` gave up on it: after how many attempts, and the last error.
    #[serde(skip_serializing_if = "Option::is_none")]
    gave_up: Option<GaveUpView>,
}

#[derive(Debug, Serialize)]
struct GaveUpView {
    attempts: i64,
    last_error: Option<String>,
    at: String,
    /// "gave up after N attempts", as the text listing says it.
    message: String,
}

#[derive(Debug, Serialize)]
struct FailedDoc {
    mapping: String,
    document: String,
    state: String,
    /// What the last attempt asked of the ERP (none for a document that was never sent).
    #[serde(skip_serializing_if = "Option::is_none")]
    operation: Option<&'static str>,
    file: Option<String>,
    attempts: i64,
    /// Attempts in a row that failed (rejected or invalid): what `[retry]` counts.
    failed_attempts: i64,
    status: Option<i64>,
    last_error: Option<String>,
    updated: String,
}

#[derive(Debug, Serialize)]
struct Status {
    /// The latest runs that handled a file or did not end well.
    runs: Vec<RunRecord>,
    /// Runs since the oldest of those that found nothing to do (not listed).
    empty_runs: u64,
    /// The latest failed run, when none of `runs` failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_failed_run: Option<RunRecord>,
    waiting: Vec<Waiting>,
    failed_files: Vec<FailedFile>,
    failed_documents: Vec<FailedDoc>,
    documents: std::collections::BTreeMap<String, i64>,
}

pub fn status(cfg: &Config, ui: &Ui, failed_only: bool) -> Result<Exit, Failure> {
    // a linked inbox or failed/ would list files from elsewhere
    crate::pass::refuse_linked_folders(cfg)?;
    let ledger = Ledger::open_read_only(&cfg.folders.state.join("ledger.sqlite"))?;
    let runs = match &ledger {
        Some(l) if !failed_only => l.recent_runs_with_work(10)?,
        _ => Vec::new(),
    };
    let failed = |r: &RunRecord| !matches!(r.exit_code, Some(0) | Some(4));
    let (empty_runs, last_failed_run) = match &ledger {
        Some(l) if !failed_only => {
            let since = runs.last().map(|r| r.started.as_str()).unwrap_or("");
            let last_failed = if runs.iter().any(failed) {
                None
            } else {
                l.recent_failed_runs(1)?.into_iter().next()
            };
            (l.empty_runs_since(since)?, last_failed)
        }
        _ => (0, None),
    };
    let files: Vec<FileRecord> = match &ledger {
        Some(l) => l.recent_files(500)?,
        None => Vec::new(),
    };
    let docs: Vec<DocRecord> = match &ledger {
        Some(l) => l.failed_documents(50)?,
        None => Vec::new(),
    };
    let gave_up = match &ledger {
        Some(l) => l.gave_up_files()?,
        None => Vec::new(),
    };
    let counts = match &ledger {
        Some(l) => l.document_counts()?.into_iter().collect(),
        None => Default::default(),
    };

    let mut waiting = Vec::new();
    if !failed_only {
        let now = SystemTime::now();
        for f in list_files(&cfg.folders.inbox).unwrap_or_default() {
            let name = f
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let reason = match cfg.mapping_for(&name) {
                None => "no mapping matches this name".to_string(),
                Some(_) => match readiness(
                    &f,
                    Duration::from_secs(cfg.settle_seconds),
                    cfg.ready_marker.as_deref(),
                    now,
                ) {
                    Err(NotReady::Settling(_)) => {
                        format!("settling (changed less than {}s ago)", cfg.settle_seconds)
                    }
                    Err(NotReady::NoMarker(m)) => format!(
                        "waiting for {}",
                        m.file_name().unwrap_or_default().to_string_lossy()
                    ),
                    Ok(()) => match files.iter().find(|r| r.name == name) {
                        Some(r) if r.outcome == Outcome::Unavailable => {
                            format!(
                                "target was unavailable at {}; retried next run",
                                short_time(&r.finished)
                            )
                        }
                        _ => "ready: next run takes it".to_string(),
                    },
                },
            };
            waiting.push(Waiting { file: name, reason });
        }
    }

    let mut failed_files = Vec::new();
    for f in list_failed_files(&cfg.folders.failed).unwrap_or_default() {
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let path = f.display().to_string();
        let rec = files
            .iter()
            .find(|r| {
                r.stored_as
                    .as_deref()
                    .map(|s| s.ends_with(&format!("/{name}")) || s == path)
                    .unwrap_or(false)
            })
            .or_else(|| {
                files
                    .iter()
                    .find(|r| r.name == name && r.outcome == Outcome::Failed)
            });
        let given_up = gave_up
            .iter()
            .find(|g| g.stored_as == path || g.stored_as.ends_with(&format!("/{name}")))
            .map(|g| GaveUpView {
                attempts: g.attempts,
                last_error: g
                    .last_error
                    .as_deref()
                    .map(|e| bounded_message(&crate::redact::redact(e))),
                at: g.time.clone(),
                message: format!("gave up after {} attempts", g.attempts),
            });
        failed_files.push(FailedFile {
            gave_up: given_up,
            file: name,
            run: rec.map(|r| r.run_id.clone()),
            finished: rec.map(|r| r.finished.clone()),
            // masked and bounded as it is printed too: what an older erpdrop wrote, or
            // before a secret was known
            first_error: rec
                .and_then(|r| r.first_error.as_deref())
                .map(|e| bounded_message(&crate::redact::redact(e))),
            failed_documents: rec.map_or(0, |r| r.counts.invalid + r.counts.rejected),
        });
    }
    failed_files.sort_by(|a, b| b.finished.cmp(&a.finished));

    let failed_documents: Vec<FailedDoc> = docs
        .into_iter()
        .map(|d| FailedDoc {
            mapping: d.mapping,
            document: d.key,
            state: d.state.as_str().to_string(),
            operation: (d.state != crate::ledger::DocState::Invalid)
                .then_some(d.operation.as_str()),
            file: d.file,
            attempts: d.attempts,
            failed_attempts: d.failures,
            status: d.last_status,
            last_error: d
                .last_error
                .as_deref()
                .map(|e| bounded_message(&crate::redact::redact(e))),
            updated: d.updated,
        })
        .collect();

    let st = Status {
        runs,
        empty_runs,
        last_failed_run,
        waiting,
        failed_files,
        failed_documents,
        documents: counts,
    };
    if ui.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&st).expect("status serialises")
        );
        return Ok(Exit::Ok);
    }
    print_text(&st, failed_only, ledger.is_none());
    Ok(Exit::Ok)
}

fn short_time(ts: &str) -> String {
    // 2026-11-25T04:29:48.832Z -> 2026-11-25 04:29:48
    ts.get(..19).unwrap_or(ts).replace('T', " ")
}

/// A text for one line of the listing: control characters escaped (a file name or an
/// ERP message cannot break the layout or forge a line), cut to `n` characters.
fn cut(s: &str, n: usize) -> String {
    let s = crate::ui::escape_controls(s, false);
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn duration(r: &RunRecord) -> String {
    if r.state == RunState::Interrupted {
        // how long it lasted is not known
        return "-".to_string();
    }
    let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
    match (parse(&r.started), r.finished.as_deref().and_then(parse)) {
        (Some(a), Some(b)) => {
            let ms = (b - a).num_milliseconds().max(0);
            if ms < 10_000 {
                format!("{:.1}s", ms as f64 / 1000.0)
            } else {
                format!("{}s", ms / 1000)
            }
        }
        _ => "running".to_string(),
    }
}

fn print_text(st: &Status, failed_only: bool, no_ledger: bool) {
    if no_ledger {
        crate::outln!("No runs yet (no ledger).");
    }
    if !failed_only {
        crate::outln!("Recent runs");
        if st.runs.is_empty() {
            crate::outln!("  none");
        } else {
            // 80 columns; "already" are documents the ERP had (not sent again)
            crate::outln!(
                "  started        took  command   files accepted already rejected invalid exit"
            );
        }
        for r in st.runs.iter().chain(&st.last_failed_run) {
            if st
                .last_failed_run
                .as_ref()
                .is_some_and(|l| std::ptr::eq(l, r))
            {
                crate::outln!("  the last failed run:");
            }
            crate::outln!(
                "  {} {:>5} {:<9} {:>5} {:>8} {:>7} {:>8} {:>7} {:>4}",
                short_time(&r.started).get(5..).unwrap_or_default(),
                duration(r),
                cut(&r.command, 9),
                r.files,
                r.counts.accepted,
                r.counts.already_imported,
                r.counts.rejected,
                r.counts.invalid,
                r.exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into())
            );
            // master data: what the ERP was asked to do, beside how many went through
            let c = &r.counts;
            if c.has_changes() {
                crate::outln!(
                    "    {} created, {} updated, {} deleted, {} unchanged",
                    c.created,
                    c.updated,
                    c.deleted,
                    c.already_imported
                );
            }
            if c.skipped > 0 {
                crate::outln!("    {} rows skipped ([[skip]])", c.skipped);
            }
            if r.state == RunState::Interrupted {
                crate::outln!(
                    "    interrupted: its end was never recorded (killed, or stopped by an error)"
                );
            }
        }
        if st.empty_runs > 0 {
            crate::outln!(
                "  and {} {} with nothing to do, not listed",
                st.empty_runs,
                if st.empty_runs == 1 { "pass" } else { "passes" }
            );
        }
        crate::outln!();
        crate::outln!("Waiting in the inbox");
        if st.waiting.is_empty() {
            crate::outln!("  none");
        }
        for w in &st.waiting {
            crate::outln!("  {:<30} {}", cut(&w.file, 30), cut(&w.reason, 46));
        }
        crate::outln!();
    }
    crate::outln!("Failed files");
    if st.failed_files.is_empty() {
        crate::outln!("  none");
    }
    for f in &st.failed_files {
        crate::outln!(
            "  {:<30} {}",
            cut(&f.file, 30),
            f.finished.as_deref().map(short_time).unwrap_or_default()
        );
        if let Some(g) = &f.gave_up {
            crate::outln!(
                "    {} ({}): {}",
                g.message,
                short_time(&g.at),
                cut(g.last_error.as_deref().unwrap_or(""), 40)
            );
        }
        if let Some(e) = &f.first_error {
            crate::outln!("    {}", cut(e, 74));
        }
        if f.failed_documents > 1 {
            crate::outln!(
                "    and {} more failed documents: failed/{}.errors.csv lists them all",
                f.failed_documents - 1,
                cut(&f.file, 40)
            );
        }
    }
    crate::outln!();
    crate::outln!("Failed documents (newest first)");
    if st.failed_documents.is_empty() {
        crate::outln!("  none");
    }
    for d in &st.failed_documents {
        // an update or a delete says so; a create is what most documents are
        let state = match d.operation {
            Some(op @ ("update" | "delete")) => format!("{op} {}", d.state),
            _ => d.state.clone(),
        };
        crate::outln!(
            "  {:<20} {:<16} attempts {:<3} {}",
            cut(&d.document, 20),
            state,
            d.attempts,
            cut(d.file.as_deref().unwrap_or(""), 26)
        );
        if let Some(e) = &d.last_error {
            let status = d.status.map(|s| format!("[{s}] ")).unwrap_or_default();
            crate::outln!("    {}", cut(&format!("{status}{e}"), 74));
        }
    }
}

fn bounded_message(e: &str) -> String {
    bound(e, MAX_MESSAGE_CHARS).into_owned()
}
