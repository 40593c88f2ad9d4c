//! `[retry]`: failed files put through again on a schedule, by `run` and `watch`.
//!
//! A file of failed/ is retried when every problem of its report (`FILE.errors.json`)
//! belongs to a document and has one of the configured codes (a missing terms code that
//! the ERP's set-up gains an hour later), `every` has passed since its last attempt (the
//! report's `finished`), and its failed documents have failed fewer than `attempts`
//! times (the ledger's `failures`, the first attempt counted). It goes back to the inbox
//! as `reprocess` moves it (its reports to `failed/.history/`); the ledger skips what
//! the ERP accepted, so only the failed documents are sent again. After the last
//! attempt the file stays in failed/ and the ledger records that erpdrop gave up on it.
//! A file whose rejected rows a person dropped back into the inbox is left alone: the
//! fix goes first, and once the ERP has every failed document nothing is left to retry.

use crate::config::{AutoRetry, Config};
use crate::ledger::{DocState, Ledger, LedgerError};
use crate::lifecycle::back_to_inbox;
use crate::lifecycle::scan::list_failed_files;
use serde::Deserialize;
use std::collections::{BTreeSet, HashSet};
use std::path::Path;

/// What a failed file's report says, as far as retrying it goes.
#[derive(Deserialize)]
struct ReportView {
    finished: String,
    errors: Vec<RowView>,
}

#[derive(Deserialize)]
struct RowView {
    document: Option<String>,
    code: String,
    message: Option<String>,
}

/// Whether and when a failed file goes again.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// It needs a person: a problem of the whole file, or a code not listed.
    Person,
    /// Not yet: `every` has not passed.
    Later,
    /// Now: the attempt it will be.
    Now(i64),
    /// Its documents have had every attempt.
    GaveUp {
        attempts: i64,
        last_error: Option<String>,
    },
}

/// Moves the failed files that are due back to the inbox: their names there. Records
/// the files erpdrop gives up on.
pub fn move_due(cfg: &Config, ledger: &Ledger) -> Result<HashSet<String>, LedgerError> {
    let mut moved = HashSet::new();
    let Some(retry) = &cfg.retry else {
        return Ok(moved);
    };
    let failed = &cfg.folders.failed;
    let now = chrono::Utc::now();
    let stamp = chrono::Local::now().format("%Y-%m-%dT%H%M%S").to_string();
    let history = failed.join(".history").join(&stamp);
    for file in list_failed_files(failed).unwrap_or_default() {
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let Some(mapping) = cfg.mapping_for(&name) else {
            continue;
        };
        // its rejected rows are back in the inbox, fixed by a person: they go first, and
        // the old content would only be a conflict beside them
        let rows = crate::report::rejected::rejected_name(&name);
        if cfg.folders.inbox.join(&rows).symlink_metadata().is_ok() {
            tracing::info!(file = %name, "not retried: its rejected rows {rows} are in the inbox");
            continue;
        }
        let report = failed.join(format!("{name}.errors.json"));
        let Some(view) = read_report(&report) else {
            continue;
        };
        match verdict(&view, retry, now, |key| {
            ledger.document(&mapping.name, key).map(|d| match d {
                // a document accepted meanwhile (another file) no longer counts
                Some(d) if d.state == DocState::Accepted => None,
                Some(d) => Some(d.failures),
                None => Some(0),
            })
        })? {
            Verdict::Person | Verdict::Later => {}
            Verdict::GaveUp {
                attempts,
                last_error,
            } => {
                let stored = file.display().to_string();
                if ledger.record_gave_up(
                    &stored,
                    &name,
                    &mapping.name,
                    attempts,
                    last_error.as_deref(),
                )? {
                    // the `gave_up` event: told once, when it is first known
                    tracing::error!(
                        file = %name, mapping = %mapping.name, attempts,
                        last_error = last_error.as_deref().unwrap_or(""),
                        "gave up retrying after {attempts} attempts; the file stays in failed/"
                    );
                    crate::notify::Notifier::new(cfg).send(&crate::notify::Event::gave_up_on(
                        &name,
                        &mapping.name,
                        u32::try_from(attempts).unwrap_or(u32::MAX),
                        last_error.as_deref(),
                        failed.join(format!("{name}.errors.csv")),
                    ));
                }
            }
            Verdict::Now(attempt) => {
                match back_to_inbox(&cfg.folders, &file, cfg.ready_marker.as_deref(), &history) {
                    Ok(to) => {
                        tracing::info!(
                            file = %name, attempt, of = retry.attempts,
                            "retrying: moved back to the inbox"
                        );
                        moved.insert(
                            to.file_name()
                                .unwrap_or_default()
                                .to_string_lossy()
                                .into_owned(),
                        );
                    }
                    Err(e) => tracing::error!(file = %name, "cannot retry the file: {e}"),
                }
            }
        }
    }
    Ok(moved)
}

fn read_report(path: &Path) -> Option<ReportView> {
    let file = std::fs::File::open(path).ok()?;
    match serde_json::from_reader(std::io::BufReader::new(file)) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::debug!(report = %path.display(), "not retried: the report cannot be read ({e})");
            None
        }
    }
}

/// What becomes of a failed file with this report; `failures` gives how many times a
/// document failed (`None`: the ERP accepted it since).
fn verdict(
    view: &ReportView,
    retry: &AutoRetry,
    now: chrono::DateTime<chrono::Utc>,
    mut failures: impl FnMut(&str) -> Result<Option<i64>, LedgerError>,
) -> Result<Verdict, LedgerError> {
    if view.errors.is_empty() {
        return Ok(Verdict::Person);
    }
    let mut keys = BTreeSet::new();
    for row in &view.errors {
        let listed = retry.codes.iter().any(|c| c.as_str() == row.code);
        match &row.document {
            Some(k) if listed => {
                keys.insert(k.as_str());
            }
            _ => return Ok(Verdict::Person),
        }
    }
    let mut most = 0;
    let mut open = 0;
    for k in keys {
        if let Some(n) = failures(k)? {
            most = most.max(n);
            open += 1;
        }
    }
    if open == 0 {
        // every failed document reached the ERP meanwhile (from another file, such as
        // the fixed rejected rows): nothing is left to send, and sending this file's
        // old content would only be a conflict
        return Ok(Verdict::Person);
    }
    if most >= i64::from(retry.attempts) {
        return Ok(Verdict::GaveUp {
            attempts: most,
            last_error: view.errors.last().and_then(|r| r.message.clone()),
        });
    }
    let Ok(last) = chrono::DateTime::parse_from_rfc3339(&view.finished) else {
        return Ok(Verdict::Person);
    };
    let since = now.signed_duration_since(last.with_timezone(&chrono::Utc));
    if since.to_std().unwrap_or_default() < retry.every {
        return Ok(Verdict::Later);
    }
    Ok(Verdict::Now(most + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::Code;
    use std::time::Duration;

    fn view(finished: &str, rows: &[(Option<&str>, &str)]) -> ReportView {
        ReportView {
            finished: finished.into(),
            errors: rows
                .iter()
                .map(|(d, c)| RowView {
                    document: d.map(str::to_string),
                    code: c.to_string(),
                    message: Some(format!("{c} message")),
                })
                .collect(),
        }
    }

    fn retry() -> AutoRetry {
        AutoRetry {
            attempts: 3,
            every: Duration::from_secs(900),
            codes: vec![Code::Rejected, Code::Lookup],
        }
    }

    fn at(ts: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(ts).unwrap().into()
    }

    #[test]
    fn a_file_goes_again_when_every_problem_is_listed_and_its_time_has_come() {
        let v = view(
            "2026-11-25T04:00:00Z",
            &[(Some("A"), "rejected"), (Some("B"), "lookup")],
        );
        let n = |k: &str| Ok(Some(if k == "A" { 2 } else { 1 }));
        assert_eq!(
            verdict(&v, &retry(), at("2026-11-25T04:10:00Z"), n).unwrap(),
            Verdict::Later
        );
        assert_eq!(
            verdict(&v, &retry(), at("2026-11-25T04:15:00Z"), n).unwrap(),
            Verdict::Now(3)
        );
    }

    #[test]
    fn a_problem_of_another_code_or_of_the_whole_file_needs_a_person() {
        let late = at("2026-11-26T00:00:00Z");
        let n = |_: &str| Ok(Some(1));
        let v = view(
            "2026-11-25T04:00:00Z",
            &[(Some("A"), "rejected"), (Some("B"), "not_allowed")],
        );
        assert_eq!(verdict(&v, &retry(), late, n).unwrap(), Verdict::Person);
        let v = view("2026-11-25T04:00:00Z", &[(None, "rejected")]);
        assert_eq!(verdict(&v, &retry(), late, n).unwrap(), Verdict::Person);
    }

    #[test]
    fn a_file_whose_failed_documents_the_erp_has_now_is_not_sent_again() {
        let v = view("2026-11-25T04:00:00Z", &[(Some("A"), "rejected")]);
        let got = verdict(&v, &retry(), at("2026-11-26T00:00:00Z"), |_| Ok(None)).unwrap();
        assert_eq!(got, Verdict::Person);
    }

    #[test]
    fn after_the_last_attempt_erpdrop_gives_up() {
        let v = view("2026-11-25T04:00:00Z", &[(Some("A"), "rejected")]);
        let got = verdict(&v, &retry(), at("2026-11-26T00:00:00Z"), |_| Ok(Some(3))).unwrap();
        assert_eq!(
            got,
            Verdict::GaveUp {
                attempts: 3,
                last_error: Some("rejected message".into())
            }
        );
    }
}
