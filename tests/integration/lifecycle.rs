//! The drop folders under attack and after faults: file modes and the umask, folders
//! that are symbolic links, names swapped between scan and claim, the run lock removed
//! mid-run, a final move cut short, runs that never ended, a ledger that went missing.

use crate::util::{TestDir, INVOICE_HEADER, INVOICE_MAPPING};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn setup() -> TestDir {
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    t
}

fn today() -> String {
    chrono::Local::now().format("%Y-%m-%d").to_string()
}

const GOOD: &str = "A1;20.11.2026;C1;N30;1,50;X;1,50\n";
const BAD: &str = "B1;20.11.2026;C1;F99;1,50;X;1,50\n";

/// Runs the binary with these arguments under a umask (through `sh`).
#[cfg(unix)]
fn run_with_umask(t: &TestDir, umask: &str, args: &[&str]) -> crate::util::Out {
    let bin = assert_cmd::cargo::cargo_bin("erpdrop");
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
        .arg(bin)
        .args(args)
        .current_dir(t.path())
        .env_remove("ERPDROP_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    crate::util::Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[cfg(unix)]
fn mode(t: &TestDir, rel: &str) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(t.join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
        .permissions()
        .mode()
        & 0o777
}

#[cfg(unix)]
#[test]
fn payloads_and_reports_follow_the_umask() {
    for (umask, want) in [("022", 0o644), ("077", 0o600), ("002", 0o664)] {
        let t = setup();
        t.write("drop/inbox/INV_1.csv", format!("{INVOICE_HEADER}{GOOD}"));
        t.write("drop/inbox/INV_2.csv", format!("{INVOICE_HEADER}{BAD}"));
        let out = run_with_umask(&t, umask, &["run"]);
        assert_eq!(out.code, 1, "{out:?}");
        let day = format!("drop/done/{}", today());
        for rel in [
            "drop/outbox/sales_invoice-A1.json".to_string(),
            format!("{day}/INV_1.csv.report.json"),
            "drop/failed/INV_2.csv.errors.json".into(),
            "drop/failed/INV_2.csv.errors.csv".into(),
        ] {
            assert_eq!(mode(&t, &rel), want, "{rel} under umask {umask}");
        }
        // what validate writes on request, too (a document the run did not import)
        t.write(
            "check/INV_3.csv",
            format!("{INVOICE_HEADER}V1;20.11.2026;C1;N30;1,50;X;1,50\n"),
        );
        let out = run_with_umask(
            &t,
            umask,
            &["validate", "check", "--report", "rep", "--emit", "em"],
        );
        assert_eq!(out.code, 0, "{out:?}");
        for rel in [
            "rep/INV_3.csv.errors.json",
            "rep/INV_3.csv.errors.csv",
            "em/sales_invoice-V1.json",
        ] {
            assert_eq!(mode(&t, rel), want, "{rel} under umask {umask}");
        }
    }
}

/// Runs erpdrop with these arguments, killed after `limit` (code -1 then).
fn run_for(t: &TestDir, args: &[&str], limit: Duration) -> crate::util::Out {
    let mut child = t
        .spawn_cmd()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let o = child.wait_with_output().unwrap();
    crate::util::Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Every file below `dir`, recursively (to show that nothing was written there).
fn tree(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .collect();
    v.sort();
    v
}

#[cfg(unix)]
#[test]
fn folders_under_the_root_that_are_symbolic_links_are_refused() {
    let day = format!("drop/done/{}", today());
    for (folder, command) in [
        ("drop/done", "run"),
        ("drop/failed", "run"),
        (day.as_str(), "run"),
        ("drop/failed/.history", "reprocess"),
        ("drop/processing", "run"),
        ("drop/inbox", "run"),
        ("drop/.erpdrop", "run"),
        ("drop/outbox", "run"),
        ("drop/done", "watch"),
        ("drop/failed", "status"),
    ] {
        let t = setup();
        // a real drop with history, so that nothing else stops the run
        t.write("drop/inbox/INV_0.csv", format!("{INVOICE_HEADER}{GOOD}"));
        assert_eq!(t.run(&["run"]).code, 0);
        t.write("drop/inbox/INV_1.csv", format!("{INVOICE_HEADER}{BAD}"));
        t.write(
            "drop/inbox/INV_2.csv",
            format!("{INVOICE_HEADER}A2;20.11.2026;C1;N30;1,50;X;1,50\n"),
        );
        if command == "reprocess" {
            assert_eq!(t.run(&["run"]).code, 1);
        }
        // the folder (and what it holds) moves outside the root, a link takes its place
        let outside = t.join("elsewhere");
        let link = t.join(folder);
        if link.exists() {
            std::fs::rename(&link, &outside).unwrap();
        } else {
            std::fs::create_dir_all(&outside).unwrap();
            std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        }
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let before_outside = tree(&outside);
        let before_drop = tree(&t.join("drop"));
        let args: Vec<&str> = match command {
            "reprocess" => vec!["reprocess", "--all"],
            "watch" => vec!["watch", "--interval", "1s"],
            c => vec![c],
        };
        let out = run_for(&t, &args, Duration::from_secs(20));
        assert_eq!(out.code, 2, "{folder} with {command}: {out:?}");
        assert!(
            out.stderr.contains(&format!("{folder} is a symbolic link")),
            "{folder}: {}",
            out.stderr
        );
        assert_eq!(tree(&outside), before_outside, "{folder}: written outside");
        assert_eq!(tree(&t.join("drop")), before_drop, "{folder}: touched");
    }
}

/// Waits until `rel` lists `name` (a run has claimed a file); panics after a minute.
fn wait_for(t: &TestDir, rel: &str, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !t.ls(rel).iter().any(|n| n == name) {
        assert!(Instant::now() < deadline, "{name} never appeared in {rel}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(unix)]
#[test]
fn a_name_swapped_after_the_scan_is_not_followed_or_taken() {
    let t = setup();
    t.write("drop/inbox/INV_a.csv", crate::util::invoices_csv(3_000, 1));
    t.write("drop/inbox/INV_b.csv", format!("{INVOICE_HEADER}{GOOD}"));
    t.write(
        "drop/inbox/INV_c.csv",
        format!("{INVOICE_HEADER}C1;20.11.2026;C1;N30;1,50;X;1,50\n"),
    );
    let secret = t.write(
        "elsewhere/INV_secret.csv",
        format!("{INVOICE_HEADER}S1;20.11.2026;C1;N30;1,50;X;1,50\n"),
    );
    let secret_mtime = std::fs::metadata(&secret).unwrap().modified().unwrap();
    let child = t
        .spawn_cmd()
        .args(["run", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // the pass listed the inbox and is busy with the first file: swap the others
    wait_for(&t, "drop/processing", "INV_a.csv");
    std::fs::remove_file(t.join("drop/inbox/INV_b.csv")).unwrap();
    std::os::unix::fs::symlink(&secret, t.join("drop/inbox/INV_b.csv")).unwrap();
    std::fs::remove_file(t.join("drop/inbox/INV_c.csv")).unwrap();
    t.write(
        "drop/inbox/INV_c.csv",
        format!("{INVOICE_HEADER}R1;20.11.2026;C1;N30;1,50;X;1,50\n"),
    );
    assert!(
        t.ls("drop/processing").contains(&"INV_a.csv".to_string()),
        "the first file finished before the swap: the test proves nothing"
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let outbox = t.ls("drop/outbox");
    assert_eq!(outbox.len(), 3_000, "only the first file's documents");
    assert!(
        !outbox.iter().any(|n| n.contains("S1")),
        "the outside file was imported"
    );
    assert!(
        !outbox.iter().any(|n| n.contains("R1")),
        "a file the scan never saw was taken"
    );
    let day = format!("drop/done/{}", today());
    assert_eq!(t.ls(&day), ["INV_a.csv", "INV_a.csv.report.json"]);
    assert!(t.ls("drop/processing").is_empty());
    // the link and the other file are back in the inbox as they were
    assert!(std::fs::symlink_metadata(t.join("drop/inbox/INV_b.csv"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(t.read("drop/inbox/INV_c.csv").contains("R1;"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("INV_b.csv"), "{stderr}");
    // nothing outside changed
    assert_eq!(tree(&t.join("elsewhere")), ["INV_secret.csv"]);
    assert!(t.read("elsewhere/INV_secret.csv").contains("S1;"));
    assert_eq!(
        std::fs::metadata(&secret).unwrap().modified().unwrap(),
        secret_mtime
    );
    // the next pass takes the new file, never the link
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(t.ls("drop/outbox").iter().any(|n| n.contains("R1")));
    assert!(!t.ls("drop/outbox").iter().any(|n| n.contains("S1")));
    assert_eq!(t.ls("drop/inbox"), ["INV_b.csv"]);
}

const TOKEN: &str = "s3cret-t0ken-value";

/// The invoice setup against a loopback ERP, one document at a time.
fn http_setup(erp: &crate::util::erp::FakeErp) -> TestDir {
    let t = setup();
    t.write(
        "erpdrop.toml",
        format!(
            r#"[folders]
root = "drop"
[scan]
settle_seconds = 0
[target]
kind = "http"
url = "{}/api/{{document}}"
auth = {{ bearer_env = "ERP_TOKEN" }}
timeout_seconds = 5
concurrency = 1
id_pointer = "/id"
"#,
            erp.base()
        ),
    );
    t
}

fn posts(erp: &crate::util::erp::FakeErp) -> usize {
    erp.requests().iter().filter(|r| r.method == "POST").count()
}

#[cfg(unix)]
#[test]
fn removing_or_replacing_the_lock_file_lets_no_second_run_in() {
    let erp = crate::util::erp::FakeErp::start(crate::util::erp::Behaviour {
        delay: Duration::from_millis(40),
        ..Default::default()
    });
    let t = http_setup(&erp);
    let n = 80;
    t.write("drop/inbox/INV_1.csv", crate::util::invoices_csv(n, 1));
    let first = t
        .spawn_cmd()
        .env("ERP_TOKEN", TOKEN)
        .args(["-q", "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while erp.created().0 < 5 {
        assert!(Instant::now() < deadline, "the first run never submitted");
        std::thread::sleep(Duration::from_millis(5));
    }
    let lock = t.join("drop/.erpdrop/lock");
    let second = |what: &str| {
        let o = t.cmd().env("ERP_TOKEN", TOKEN).arg("run").output().unwrap();
        assert_eq!(o.status.code(), Some(4), "lock {what}: {o:?}");
        assert_eq!(t.ls("drop/processing"), ["INV_1.csv"], "lock {what}");
        assert!(t.ls("drop/inbox").is_empty(), "lock {what}");
    };
    // removed
    std::fs::remove_file(&lock).unwrap();
    second("removed");
    // replaced by another file under the name
    std::fs::remove_file(&lock).unwrap_or(());
    t.write("drop/.erpdrop/lock.new", "");
    std::fs::rename(t.join("drop/.erpdrop/lock.new"), &lock).unwrap();
    second("replaced");
    assert!(
        erp.created().0 < n,
        "the first run finished meanwhile: the test proves nothing"
    );
    // proven: the ERP may now answer at once, so that the first run ends soon
    erp.set(|b| b.delay = Duration::ZERO);
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    assert_eq!(erp.created(), (n, 1));
    assert_eq!(posts(&erp), n, "no document posted twice");
    assert_eq!(t.ls(&format!("drop/done/{}", today())).len(), 2);
}

#[cfg(unix)]
#[test]
fn a_killed_run_shows_as_interrupted_after_the_next_run() {
    let t = setup();
    t.write(
        "drop/inbox/INV_big.csv",
        crate::util::invoices_csv(3_000, 1),
    );
    let mut child = t
        .spawn_cmd()
        .args(["-q", "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while t.ls("drop/outbox").len() < 100 {
        assert!(Instant::now() < deadline, "the run never wrote a payload");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL: the run's end is never recorded
    child.wait().unwrap();
    assert_eq!(t.ls("drop/processing"), ["INV_big.csv"], "killed too late");

    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("interrupted"), "{}", out.stderr);
    let status = t.run(&["status", "--json"]);
    assert_eq!(status.code, 0, "{status:?}");
    let runs = status.json()["runs"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 2, "{runs:#?}");
    // newest first: the run that finished, then the one that was killed
    assert_eq!(runs[0]["state"], "finished", "{runs:#?}");
    assert_eq!(runs[0]["exit_code"], 0);
    assert_eq!(runs[1]["state"], "interrupted", "{runs:#?}");
    assert!(runs[1]["exit_code"].is_null());
    let text = t.run(&["status"]);
    assert!(!text.stdout.contains("running"), "{}", text.stdout);
    let lines: Vec<&str> = text.stdout.lines().collect();
    // lines[1] is the table's header
    assert!(lines[1].ends_with(" exit"), "{}", text.stdout);
    assert!(
        lines[3].contains(" run ") && lines[3].ends_with(" -"),
        "{}",
        text.stdout
    );
    assert!(lines[4].starts_with("    interrupted"), "{}", text.stdout);
    assert!(lines[2].ends_with(" 0"), "{}", text.stdout);
    assert!(
        lines.iter().all(|l| l.chars().count() <= 80),
        "{}",
        text.stdout
    );
}

const THREE: &str = "M1;20.11.2026;C1;N30;1,50;X;1,50\nM2;20.11.2026;C1;N30;1,50;X;1,50\nM3;20.11.2026;C2;N30;1,50;X;1,50\n";

/// The ledger's file rows for a name: (run, stored as).
fn file_rows(t: &TestDir, name: &str) -> Vec<(String, Option<String>)> {
    let c = rusqlite::Connection::open(t.join("drop/.erpdrop/ledger.sqlite")).unwrap();
    let mut st = c
        .prepare("SELECT run_id, stored_as FROM files WHERE name = ?1 ORDER BY id")
        .unwrap();
    st.query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Handles INV_1.csv once, then returns its day folder (relative to the test folder).
fn handled_once(t: &TestDir) -> String {
    t.write("drop/inbox/INV_1.csv", format!("{INVOICE_HEADER}{THREE}"));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(t.ls("drop/outbox").len(), 3);
    assert_eq!(file_rows(t, "INV_1.csv").len(), 1);
    format!("drop/done/{}", today())
}

/// The record a run writes before a file's reports and its move out of processing/.
fn write_intent(t: &TestDir, day: &str) {
    let day = day.strip_prefix("drop/").unwrap();
    t.write(
        "drop/.erpdrop/moving.json",
        serde_json::json!({
            "from": "processing/INV_1.csv",
            "to": format!("{day}/INV_1.csv"),
            "reports": [format!("{day}/INV_1.csv.report.json")],
            "marker": null,
            "marker_to": null,
        })
        .to_string(),
    );
}

#[cfg(unix)]
#[test]
fn a_run_killed_between_link_and_unlink_does_not_handle_the_file_twice() {
    let t = setup();
    let day = handled_once(&t);
    // the state kill -9 leaves after the file's link in done/, before its old name went
    std::fs::hard_link(
        t.join(&format!("{day}/INV_1.csv")),
        t.join("drop/processing/INV_1.csv"),
    )
    .unwrap();
    write_intent(&t, &day);
    let report_before = t.read(&format!("{day}/INV_1.csv.report.json"));

    let out = t.run(&["run", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["totals"]["files"], 0, "nothing handled again");
    assert_eq!(t.ls(&day), ["INV_1.csv", "INV_1.csv.report.json"]);
    assert_eq!(
        t.read(&format!("{day}/INV_1.csv.report.json")),
        report_before
    );
    assert!(t.ls("drop/processing").is_empty());
    assert!(t.ls("drop/inbox").is_empty());
    assert!(!t.exists("drop/.erpdrop/moving.json"));
    assert_eq!(t.ls("drop/outbox").len(), 3);
    assert_eq!(
        file_rows(&t, "INV_1.csv").len(),
        1,
        "one file in the ledger"
    );
}

#[cfg(unix)]
#[test]
fn a_run_killed_after_the_report_before_the_move_leaves_no_orphan_report() {
    let t = setup();
    let day = handled_once(&t);
    let first_run = file_rows(&t, "INV_1.csv")[0].0.clone();
    // the state kill -9 leaves after the report (and the ledger's line), before the link
    std::fs::rename(
        t.join(&format!("{day}/INV_1.csv")),
        t.join("drop/processing/INV_1.csv"),
    )
    .unwrap();
    write_intent(&t, &day);

    let out = t.run(&["run", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let summary = out.json();
    assert_eq!(summary["totals"]["files"], 1, "{summary:#}");
    let counts = &summary["files"][0]["counts"];
    assert_eq!(
        (
            counts["accepted"].as_u64(),
            counts["already_imported"].as_u64()
        ),
        (Some(0), Some(3))
    );
    // one copy, under its own name, with a report that names it and this run
    assert_eq!(t.ls(&day), ["INV_1.csv", "INV_1.csv.report.json"]);
    let report = t.read_json(&format!("{day}/INV_1.csv.report.json"));
    let run = summary["run_id"].as_str().unwrap();
    assert_eq!(report["run_id"], run);
    assert!(t.ls("drop/processing").is_empty());
    assert!(t.ls("drop/inbox").is_empty());
    assert!(!t.exists("drop/.erpdrop/moving.json"));
    assert_eq!(t.ls("drop/outbox").len(), 3);
    // the ledger forgot the move that never happened
    let rows = file_rows(&t, "INV_1.csv");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_ne!(rows[0].0, first_run);
    assert_eq!(rows[0].0, run);
}

/// Removes the ledger with its WAL files.
fn remove_ledger(t: &TestDir) {
    for f in ["ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"] {
        let _ = std::fs::remove_file(t.join(&format!("drop/.erpdrop/{f}")));
    }
}

fn mtimes(t: &TestDir, rel: &str) -> Vec<(String, std::time::SystemTime)> {
    t.ls(rel)
        .into_iter()
        .map(|n| {
            let m = std::fs::metadata(t.join(&format!("{rel}/{n}")))
                .unwrap()
                .modified()
                .unwrap();
            (n, m)
        })
        .collect()
}

#[test]
fn a_lost_ledger_next_to_history_is_refused_until_a_new_one_is_asked_for() {
    let t = setup();
    let day = handled_once(&t);
    t.write("drop/inbox/INV_2.csv", format!("{INVOICE_HEADER}{BAD}"));
    assert_eq!(t.run(&["run"]).code, 1);
    let outbox = mtimes(&t, "drop/outbox");
    for how in ["deleted", "emptied"] {
        remove_ledger(&t);
        if how == "emptied" {
            t.write("drop/.erpdrop/ledger.sqlite", "");
        }
        // the same file dropped again
        t.write("drop/inbox/INV_1.csv", format!("{INVOICE_HEADER}{THREE}"));
        for args in [
            &["run"][..],
            &["reprocess", "--all"],
            &["watch", "--interval", "1s"],
        ] {
            let out = run_for(&t, args, Duration::from_secs(20));
            assert_eq!(out.code, 2, "ledger {how}, {args:?}: {out:?}");
            for words in ["ledger.sqlite", "done", "again", "--new-ledger"] {
                assert!(out.stderr.contains(words), "{words}: {}", out.stderr);
            }
            assert_eq!(t.ls("drop/inbox"), ["INV_1.csv"]);
            assert_eq!(
                t.ls("drop/failed"),
                [
                    "INV_2.csv",
                    "INV_2.csv.errors.csv",
                    "INV_2.csv.errors.json",
                    "INV_2.rejected.csv"
                ]
            );
            assert_eq!(t.ls(&day), ["INV_1.csv", "INV_1.csv.report.json"]);
            assert_eq!(mtimes(&t, "drop/outbox"), outbox, "nothing submitted");
            let ledger = t.join("drop/.erpdrop/ledger.sqlite");
            match how {
                "deleted" => assert!(!ledger.exists()),
                _ => assert_eq!(std::fs::metadata(&ledger).unwrap().len(), 0),
            }
        }
    }
    // deliberately: a new ledger, and the file is submitted again
    let out = t.run(&["run", "--new-ledger", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["totals"]["accepted"], 3);
    // from then on the new ledger is the ledger
    t.write("drop/inbox/INV_1.csv", format!("{INVOICE_HEADER}{THREE}"));
    let out = t.run(&["run", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["totals"]["already_imported"], 3);
    // a first run in a new drop needs no flag
    let fresh = setup();
    fresh.write("drop/inbox/INV_1.csv", format!("{INVOICE_HEADER}{THREE}"));
    assert_eq!(fresh.run(&["run"]).code, 0);
}
