//! Notifications: what happened ([`Event`]) told to the channels of `[[notify]]`
//! (email, webhook, command) that take it ([`Notifier`]).
//!
//! A notification that cannot be sent (the mail server down, a webhook answering 500,
//! a command missing or too slow) is a warning in the log: it changes no file's
//! outcome and no exit code, and each channel is given at most its `timeout_seconds`.
//! Every text sent is masked of the secrets erpdrop holds (`redact`).
//!
//! Events: `file_failed` (a file went to failed/: `pass/live.rs`), `target_down` (the
//! target went down, or is back: remembered in the ledger, `pass/live.rs`), `no_file`
//! (an `[[expect]]`ed mapping had no file today by its time: [`expected_files`]) and
//! `gave_up` (automatic retries of a file ended: [`Event::gave_up`]).

mod command;
mod email;
mod webhook;

use crate::config::{Channel, Config, EventName, Notify};
use crate::ledger::{Ledger, LedgerError};
use crate::outcome::Counts;
use crate::report::FileReport;
use std::path::PathBuf;

/// How many of a file's problems a notification names (the report has them all).
pub const FIRST_PROBLEMS: usize = 5;

/// One problem, as a notification names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProblemLine {
    pub document: Option<String>,
    pub line: Option<u64>,
    pub code: String,
    pub message: String,
}

/// Something to tell.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: EventName,
    /// `target_down`: the target is back (`false`: it went down).
    pub back: bool,
    /// Sent by `check --notify-test`.
    pub test: bool,
    pub file: Option<String>,
    pub mapping: Option<String>,
    pub counts: Option<Counts>,
    /// The first problems ([`FIRST_PROBLEMS`] at most) and how many there are in all.
    pub problems: Vec<ProblemLine>,
    pub problem_count: u64,
    /// The file's `FILE.errors.csv` (attached to an email).
    pub report: Option<PathBuf>,
    /// Automatic retries: the attempts made (`gave_up`).
    pub attempts: Option<u32>,
    /// What else there is to say: why the target is down, when a file was expected.
    pub detail: Option<String>,
    pub time: String,
}

impl Event {
    fn new(name: EventName) -> Event {
        Event {
            name,
            back: false,
            test: false,
            file: None,
            mapping: None,
            counts: None,
            problems: Vec::new(),
            problem_count: 0,
            report: None,
            attempts: None,
            detail: None,
            time: crate::time::timestamp(chrono::Utc::now()),
        }
    }

    fn of_report(name: EventName, report: &FileReport, errors_csv: Option<PathBuf>) -> Event {
        let mut e = Event::new(name);
        e.file = Some(report.file.clone());
        e.mapping = Some(report.mapping.clone());
        e.counts = Some(report.counts);
        e.problems = report
            .errors
            .first()
            .iter()
            .take(FIRST_PROBLEMS)
            .map(|p| ProblemLine {
                document: p.document.clone(),
                line: p.line,
                code: p.code.as_str().to_string(),
                message: p.message(),
            })
            .collect();
        e.problem_count = report.errors.len();
        // absolute: a command may change folders, a reader of the mail is elsewhere
        e.report = errors_csv.map(|p| std::path::absolute(&p).unwrap_or(p));
        e
    }

    /// A file went to `failed/`; `errors_csv` is where its `FILE.errors.csv` is.
    pub fn file_failed(report: &FileReport, errors_csv: Option<PathBuf>) -> Event {
        Event::of_report(EventName::FileFailed, report, errors_csv)
    }

    /// erpdrop gave up retrying a file: its last attempt's report (`attempts` made in
    /// all), the file left in `failed/` with `errors_csv`.
    pub fn gave_up(report: &FileReport, errors_csv: Option<PathBuf>, attempts: u32) -> Event {
        let mut e = Event::of_report(EventName::GaveUp, report, errors_csv);
        e.attempts = Some(attempts);
        e
    }

    /// erpdrop gave up retrying a stored failed file (`[retry]`): its name and mapping,
    /// the attempts made, the last error, and its `FILE.errors.csv`.
    pub fn gave_up_on(
        file: &str,
        mapping: &str,
        attempts: u32,
        last_error: Option<&str>,
        errors_csv: PathBuf,
    ) -> Event {
        let mut e = Event::new(EventName::GaveUp);
        e.file = Some(file.to_string());
        e.mapping = Some(mapping.to_string());
        e.attempts = Some(attempts);
        e.detail = last_error.map(str::to_string);
        e.report = Some(std::path::absolute(&errors_csv).unwrap_or(errors_csv));
        e
    }

    /// The target went down (`reason`: its answer), files wait in the inbox.
    pub fn target_down(reason: &str) -> Event {
        let mut e = Event::new(EventName::TargetDown);
        e.detail = Some(reason.to_string());
        e
    }

    /// The target answers again.
    pub fn target_back() -> Event {
        let mut e = Event::new(EventName::TargetDown);
        e.back = true;
        e
    }

    /// No file of `mapping` was handled today by `by`.
    pub fn no_file(mapping: &str, by: chrono::NaiveTime) -> Event {
        let mut e = Event::new(EventName::NoFile);
        e.mapping = Some(mapping.to_string());
        e.detail = Some(format!(
            "No file for mapping {mapping} has arrived today by {} (local time).",
            by.format("%H:%M")
        ));
        e
    }

    /// What `check --notify-test` sends: a `file_failed`-shaped message marked as a test.
    pub fn test() -> Event {
        let mut e = Event::new(EventName::FileFailed);
        e.test = true;
        e
    }

    /// `target_down`'s two states, as the json format and command's `{event}` say them.
    pub fn state(&self) -> Option<&'static str> {
        (self.name == EventName::TargetDown).then_some(if self.back { "back" } else { "down" })
    }

    /// The documents that did not go in: rejected and invalid.
    fn failed_documents(&self) -> u64 {
        self.counts.map_or(0, |c| c.rejected + c.invalid)
    }

    /// The subject of an email, the first line of a chat message.
    pub fn subject(&self) -> String {
        let s = if self.test {
            "erpdrop: test notification (nothing has failed)".to_string()
        } else {
            let file = self.file.as_deref().unwrap_or("a file");
            match self.name {
                EventName::FileFailed => match self.counts {
                    Some(c) if c.documents > 0 => format!(
                        "erpdrop: {file} failed: {} of {} documents not imported",
                        self.failed_documents(),
                        c.documents
                    ),
                    _ => format!("erpdrop: {file} failed: nothing in it was imported"),
                },
                EventName::GaveUp => format!(
                    "erpdrop gave up on {file} after {} attempts: {} documents need a fix",
                    self.attempts.unwrap_or(0),
                    self.failed_documents()
                ),
                EventName::TargetDown if self.back => {
                    "erpdrop: the ERP is reachable again; waiting files go in on the next run"
                        .to_string()
                }
                EventName::TargetDown => {
                    "erpdrop: the ERP is unavailable; files wait in the inbox".to_string()
                }
                EventName::NoFile => format!(
                    "erpdrop: no {} file today",
                    self.mapping.as_deref().unwrap_or("expected")
                ),
            }
        };
        crate::redact::redact_string(s)
    }

    /// The message, in plain text, for a finance user.
    pub fn text(&self) -> String {
        let mut t = String::new();
        if self.test {
            t.push_str("This is a test notification sent by `erpdrop check --notify-test`.\nNothing has failed: this channel works.\n");
            return t;
        }
        match self.name {
            EventName::FileFailed | EventName::GaveUp => {
                let file = self.file.as_deref().unwrap_or("");
                let c = self.counts.unwrap_or_default();
                if self.name == EventName::GaveUp && self.counts.is_none() {
                    // told by [retry], from the stored file: its last error, not counts
                    t.push_str(&format!(
                        "erpdrop retried {file} {} times and gave up: the ERP still refuses some of its documents. The file stays in failed/.\n",
                        self.attempts.unwrap_or(0)
                    ));
                    if let Some(d) = &self.detail {
                        t.push_str(&format!("\nThe last error: {d}\n"));
                    }
                } else if self.name == EventName::GaveUp {
                    t.push_str(&format!(
                        "erpdrop retried {file} {} times and gave up: the ERP still refuses {} of its documents. The file stays in failed/.\n",
                        self.attempts.unwrap_or(0),
                        self.failed_documents()
                    ));
                } else if c.documents > 0 {
                    t.push_str(&format!(
                        "{file} failed: {} of its {} documents were not imported.\n",
                        self.failed_documents(),
                        c.documents
                    ));
                } else {
                    t.push_str(&format!("{file} failed: nothing in it was imported.\n"));
                }
                t.push('\n');
                if let Some(m) = &self.mapping {
                    t.push_str(&format!("Mapping: {m}\n"));
                }
                if self.counts.is_some() {
                    t.push_str(&format!(
                        "Documents: {} (accepted {}, rejected by the ERP {}, invalid {}, already imported {})\n",
                        c.documents, c.accepted, c.rejected, c.invalid, c.already_imported
                    ));
                }
                if let Some(r) = &self.report {
                    t.push_str(&format!("Report: {}\n", r.display()));
                }
                if !self.problems.is_empty() {
                    t.push_str("\nFirst problems:\n");
                    for p in &self.problems {
                        match &p.document {
                            Some(d) => t.push_str(&format!("- {d}: {}\n", p.message)),
                            None => t.push_str(&format!("- {}\n", p.message)),
                        }
                    }
                    let more = self
                        .problem_count
                        .saturating_sub(self.problems.len() as u64);
                    if more > 0 {
                        t.push_str(&format!("... and {more} more in the report.\n"));
                    }
                }
                t.push_str(
                    "\nThe report lists every problem with its line and column. Documents the ERP accepted are not sent again when the file is reprocessed (`erpdrop reprocess`).\n",
                );
            }
            EventName::TargetDown if self.back => {
                t.push_str("The ERP answers again. Files that waited in the inbox go in on the next run.\n");
            }
            EventName::TargetDown => {
                t.push_str("erpdrop cannot reach the ERP. Files stay in the inbox and are sent when it is back; you will be told once when it is.\n");
                if let Some(d) = &self.detail {
                    t.push_str(&format!("\nWhat the ERP (or the network) said: {d}\n"));
                }
            }
            EventName::NoFile => {
                if let Some(d) = &self.detail {
                    t.push_str(d);
                    t.push('\n');
                }
                t.push_str("Check that the export ran and that its file reached the inbox.\n");
            }
        }
        crate::redact::redact_string(t)
    }

    /// The `json` format of a webhook (README: "What you receive").
    pub fn json(&self) -> serde_json::Value {
        let problems: Vec<serde_json::Value> = self
            .problems
            .iter()
            .map(|p| {
                serde_json::json!({
                    "document": p.document, "line": p.line, "code": p.code,
                    "message": crate::redact::redact(&p.message),
                })
            })
            .collect();
        let mut v = serde_json::json!({
            "event": self.name.as_str(),
            "test": self.test,
            "time": self.time,
            "subject": self.subject(),
            "text": self.text(),
            "file": self.file.as_deref().map(crate::redact::redact),
            "mapping": self.mapping,
            "counts": self.counts,
            "problems": problems,
            "problem_count": self.problem_count,
            "report": self.report.as_ref().map(|p| p.display().to_string()),
        });
        if let Some(s) = self.state() {
            v["state"] = s.into();
        }
        if let Some(a) = self.attempts {
            v["attempts"] = a.into();
        }
        if let Some(d) = &self.detail {
            v["detail"] = crate::redact::redact(d).into();
        }
        v
    }
}

/// The channels of `[[notify]]`.
pub struct Notifier<'a> {
    notify: &'a [Notify],
    /// Channels (by index) that could not be reached in this pass: a mail server or a
    /// webhook that is down is not waited for again for every failed file of a big
    /// pass (each wait is up to its timeout).
    unreachable: std::cell::RefCell<Vec<bool>>,
}

impl<'a> Notifier<'a> {
    pub fn new(cfg: &'a Config) -> Notifier<'a> {
        Notifier::of(&cfg.notify)
    }

    fn of(notify: &'a [Notify]) -> Notifier<'a> {
        Notifier {
            notify,
            unreachable: std::cell::RefCell::new(vec![false; notify.len()]),
        }
    }

    /// Whether any channel takes this event.
    pub fn wants(&self, name: EventName) -> bool {
        self.notify.iter().any(|n| n.on.contains(&name))
    }

    /// Tells every channel that takes the event; one that cannot be told is a warning.
    pub fn send(&self, event: &Event) {
        for (i, n) in self.notify.iter().enumerate() {
            if !n.on.contains(&event.name) {
                continue;
            }
            if self.unreachable.borrow()[i] {
                tracing::warn!(
                    event = event.name.as_str(), to = %n.channel.describe(),
                    "{}: the notification was not sent: this channel could not be reached earlier in this pass", n.name
                );
                continue;
            }
            match send_to(n, event) {
                Ok(said) => {
                    tracing::info!(event = event.name.as_str(), to = %n.channel.describe(), "notification sent{said}")
                }
                Err(e) => {
                    // a command is run again for the next event: its failure may be
                    // that event's own
                    if !matches!(n.channel, Channel::Command(_)) {
                        self.unreachable.borrow_mut()[i] = true;
                    }
                    tracing::warn!(
                        event = event.name.as_str(), to = %n.channel.describe(),
                        "{}: the notification could not be sent: {}", n.name, crate::redact::redact(&e)
                    )
                }
            }
        }
    }
}

/// Sends one event to one channel: `Ok` with what is worth adding to the log line.
pub fn send_to(n: &Notify, event: &Event) -> Result<String, String> {
    match &n.channel {
        Channel::Email(e) => email::send(e, n.timeout, event).map(|()| String::new()),
        Channel::Webhook(w) => webhook::send(w, n.timeout, event).map(|()| String::new()),
        Channel::Command(argv) => command::run(argv, n.timeout, event),
    }
}

/// The `target_down` state across runs: the run's outcome for the target (`down`: why
/// it was found unavailable; `reached`: it answered documents) against what the ledger
/// remembers; one notification when the state changes.
pub fn target_state(
    notifier: &Notifier<'_>,
    ledger: &Ledger,
    down: Option<&str>,
    reached: bool,
) -> Result<(), LedgerError> {
    const KEY: &str = "target";
    let was_down = ledger.notice(KEY)?.as_deref() == Some("down");
    if let Some(reason) = down {
        if !was_down {
            ledger.set_notice(KEY, "down")?;
            notifier.send(&Event::target_down(reason));
        }
    } else if reached && was_down {
        ledger.set_notice(KEY, "up")?;
        notifier.send(&Event::target_back());
    }
    Ok(())
}

/// `[[expect]]`: for each mapping whose time has passed today (local time) with no file
/// handled since midnight, one `no_file`, once a day (the ledger remembers the day).
pub fn expected_files(
    cfg: &Config,
    notifier: &Notifier<'_>,
    ledger: &Ledger,
    now: chrono::DateTime<chrono::Local>,
) -> Result<(), LedgerError> {
    use chrono::TimeZone as _;
    let today = now.date_naive();
    for x in &cfg.expect {
        if now.time() < x.by {
            continue;
        }
        let key = format!("no_file:{}", x.mapping);
        let day = today.format("%Y-%m-%d").to_string();
        if ledger.notice(&key)?.as_deref() == Some(day.as_str()) {
            continue;
        }
        let midnight = today.and_hms_opt(0, 0, 0).expect("midnight exists");
        let since = chrono::Local
            .from_local_datetime(&midnight)
            .earliest()
            .unwrap_or(now)
            .with_timezone(&chrono::Utc);
        if ledger.files_of_mapping_since(&x.mapping, &crate::time::timestamp(since))? > 0 {
            continue;
        }
        ledger.set_notice(&key, &day)?;
        notifier.send(&Event::no_file(&x.mapping, x.by));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed_event() -> Event {
        let mut e = Event::new(EventName::FileFailed);
        e.file = Some("INV_2026-11-20.csv".into());
        e.mapping = Some("billing-invoices".into());
        e.counts = Some(Counts {
            documents: 2000,
            accepted: 1990,
            rejected: 3,
            invalid: 7,
            ..Counts::default()
        });
        e.problems = (0..FIRST_PROBLEMS)
            .map(|i| ProblemLine {
                document: Some(format!("INV{i:04}")),
                line: Some(i as u64 + 2),
                code: "not_allowed".into(),
                message: format!(
                    "Terms code \"F48\" is not in ref/terms.csv (line {}, column Terms)",
                    i + 2
                ),
            })
            .collect();
        e.problem_count = 10;
        e.report = Some(PathBuf::from("drop/failed/INV_2026-11-20.csv.errors.csv"));
        e
    }

    #[test]
    fn a_failed_file_says_how_many_of_how_many_and_the_first_problems() {
        let e = failed_event();
        assert_eq!(
            e.subject(),
            "erpdrop: INV_2026-11-20.csv failed: 10 of 2000 documents not imported"
        );
        let t = e.text();
        assert!(
            t.starts_with(
                "INV_2026-11-20.csv failed: 10 of its 2000 documents were not imported.\n"
            ),
            "{t}"
        );
        assert!(t.contains("Mapping: billing-invoices\n"), "{t}");
        assert!(
            t.contains("accepted 1990, rejected by the ERP 3, invalid 7"),
            "{t}"
        );
        assert!(
            t.contains(
                "- INV0000: Terms code \"F48\" is not in ref/terms.csv (line 2, column Terms)\n"
            ),
            "{t}"
        );
        assert!(t.contains("... and 5 more in the report.\n"), "{t}");
        let j = e.json();
        assert_eq!(j["event"], "file_failed");
        assert_eq!(j["counts"]["invalid"], 7);
        assert_eq!(j["problems"].as_array().unwrap().len(), FIRST_PROBLEMS);
        assert_eq!(j["problem_count"], 10);
        assert!(j.get("state").is_none());
    }

    #[test]
    fn gave_up_names_the_attempts() {
        let mut e = failed_event();
        e.name = EventName::GaveUp;
        e.attempts = Some(5);
        assert_eq!(
            e.subject(),
            "erpdrop gave up on INV_2026-11-20.csv after 5 attempts: 10 documents need a fix"
        );
        assert!(e
            .text()
            .starts_with("erpdrop retried INV_2026-11-20.csv 5 times and gave up"));
        assert_eq!(e.json()["attempts"], 5);
        assert_eq!(e.json()["event"], "gave_up");
    }

    #[test]
    fn gave_up_is_delivered_to_the_channels_that_take_it_and_no_other() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("told.txt");
        let channel = |on: EventName, to: &std::path::Path| Notify {
            name: "notify[0]".into(),
            on: vec![on],
            channel: Channel::Command(vec![
                "/bin/sh".into(),
                "-c".into(),
                "printf '%s|%s|%s|%s' \"$1\" \"$2\" \"$3\" \"$4\" > \"$0\"".into(),
                to.display().to_string(),
                "{event}".into(),
                "{file}".into(),
                "{mapping}".into(),
                "{report}".into(),
            ]),
            timeout: std::time::Duration::from_secs(10),
            line: None,
        };
        let other = d.path().join("other.txt");
        let notify = vec![
            channel(EventName::GaveUp, &out),
            channel(EventName::FileFailed, &other),
        ];
        let mut e = failed_event();
        e.name = EventName::GaveUp;
        e.attempts = Some(5);
        Notifier::of(&notify).send(&e);
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "gave_up|INV_2026-11-20.csv|billing-invoices|drop/failed/INV_2026-11-20.csv.errors.csv"
        );
        assert!(
            !other.exists(),
            "file_failed's channel is not told of gave_up"
        );
    }

    #[test]
    fn target_down_and_back_are_two_states_of_one_event() {
        let d = Event::target_down("HTTP 503 from http://erp/api");
        assert_eq!(d.json()["state"], "down");
        assert!(d.text().contains("HTTP 503"));
        let b = Event::target_back();
        assert_eq!(b.json()["state"], "back");
        assert_eq!(b.json()["event"], "target_down");
    }

    #[test]
    fn the_target_state_is_told_once_when_it_changes() {
        let l = Ledger::open_in_memory().unwrap();
        let cfg_notify: Vec<Notify> = Vec::new();
        let n = Notifier::of(&cfg_notify);
        target_state(&n, &l, None, true).unwrap();
        assert_eq!(
            l.notice("target").unwrap(),
            None,
            "up from the start: nothing to tell"
        );
        target_state(&n, &l, Some("503"), false).unwrap();
        assert_eq!(l.notice("target").unwrap().as_deref(), Some("down"));
        target_state(&n, &l, None, false).unwrap();
        assert_eq!(
            l.notice("target").unwrap().as_deref(),
            Some("down"),
            "nothing reached: still down"
        );
        target_state(&n, &l, None, true).unwrap();
        assert_eq!(l.notice("target").unwrap().as_deref(), Some("up"));
    }
}
