//! `erpdrop run`, `init` and `watch`: the drop-folder lifecycle driven through the real
//! binary.

use crate::util::{age, invoices_csv, TestDir, INVOICE_HEADER, INVOICE_MAPPING};
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

#[test]
fn init_then_run_puts_the_sample_in_done() {
    let t = TestDir::new();
    let out = t.run(&["init", "starter"]);
    assert_eq!(out.code, 0, "{out:?}");
    let out = t.run(&["-c", "starter/erpdrop.toml", "run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let day = format!("starter/drop/done/{}", today());
    assert_eq!(
        t.ls(&day),
        vec!["INV_2026-11-20.csv", "INV_2026-11-20.csv.report.json"]
    );
    assert!(t.ls("starter/drop/inbox").is_empty());
    assert_eq!(t.ls("starter/drop/outbox").len(), 3);
    let report = t.read_json(&format!("{day}/INV_2026-11-20.csv.report.json"));
    assert_eq!(report["outcome"], "done");
    assert_eq!(report["counts"]["accepted"], 3);
    assert_eq!(report["mapping"], "billing-invoices");
    assert_eq!(report["sha256"].as_str().unwrap().len(), 64);
    // init refuses to overwrite an existing config
    let again = t.run(&["init", "starter"]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
}

#[test]
fn inits_next_line_is_a_command_that_works_as_printed() {
    let t = TestDir::new();
    let out = t.run(&["init", "starter"]);
    assert_eq!(out.code, 0, "{out:?}");
    // the test runs erpdrop by its path, not from the PATH: the hint names that path
    let next = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("next: "))
        .unwrap_or_else(|| panic!("no next: line in {}", out.stdout));
    let exe = assert_cmd::cargo::cargo_bin("erpdrop");
    assert!(next.contains(&exe.display().to_string()), "{next}");
    let ran = std::process::Command::new("sh")
        .arg("-c")
        .arg(next)
        .current_dir(t.path())
        .env_remove("ERPDROP_CONFIG")
        .output()
        .unwrap();
    assert!(ran.status.success(), "{next}: {ran:?}");
    assert_eq!(t.ls(&format!("starter/drop/done/{}", today())).len(), 2);
}

#[test]
fn init_writes_the_config_that_c_names() {
    let t = TestDir::new();
    let out = t.run(&["-c", "custom.toml", "init", "starter"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(t.exists("starter/custom.toml"));
    assert!(!t.exists("starter/erpdrop.toml"));
    assert!(
        out.stdout.contains("-c custom.toml validate"),
        "{}",
        out.stdout
    );
    assert_eq!(t.run(&["-c", "starter/custom.toml", "run"]).code, 0);
    // -c with a folder of its own: the starter goes beside it
    let out = t.run(&["-c", "other/prod.toml", "init"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(t.exists("other/prod.toml") && t.exists("other/mappings/invoices.toml"));
    // a config outside DIR would lose its relative paths: refused, nothing written
    let out = t.run(&["-c", "elsewhere/x.toml", "init", "third"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("-c elsewhere/x.toml is not in third"),
        "{}",
        out.stderr
    );
    assert!(!t.exists("third") && !t.exists("elsewhere"));
}

#[test]
fn init_force_over_a_used_starter_says_that_the_ledger_is_kept() {
    let t = TestDir::new();
    assert_eq!(t.run(&["init", "starter"]).code, 0);
    assert_eq!(t.run(&["-c", "starter/erpdrop.toml", "run"]).code, 0);
    let out = t.run(&["init", "--force", "starter"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("ledger")
            && out.stdout.contains("already imported")
            && out.stdout.contains("remove"),
        "{}",
        out.stdout
    );
    // a fresh starter says nothing of the kind
    let out = t.run(&["init", "fresh"]);
    assert!(!out.stdout.contains("note:"), "{}", out.stdout);
}

#[test]
fn watch_refuses_an_interval_under_one_second() {
    let t = setup();
    for bad in ["0s", "500ms"] {
        let out = t.run(&["watch", "--interval", bad]);
        assert_eq!(out.code, 2, "{bad}: {out:?}");
        assert!(
            out.stderr.contains("shorter than one second"),
            "{}",
            out.stderr
        );
    }
    // no pass ran: no ledger, no run recorded
    assert!(!t.exists("drop/.erpdrop/ledger.sqlite"));
    let out = t.run(&["watch", "--interval", "soon"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("e.g. 30s"), "{}", out.stderr);
}

#[test]
fn valid_documents_held_back_by_reject_file_are_said_in_the_summary_and_reports() {
    let t = setup();
    // A1 and A3 are valid; A2 has an unknown customer: with reject-file nothing goes
    t.write(
        "drop/inbox/INV_1.csv",
        format!(
            "{INVOICE_HEADER}A1;20.11.2026;C1;N30;1,50;X;1,50\nA2;20.11.2026;C9;N30;1,50;X;1,50\nA3;20.11.2026;C1;N30;1,50;X;1,50\n"
        ),
    );
    let dry = t.run(&["validate"]);
    assert!(
        dry.stdout.contains(", 2 held back")
            && dry.stdout.contains(
                "2 valid documents would not be submitted because the file has invalid ones"
            ),
        "{}",
        dry.stdout
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    let note = "2 valid documents were not submitted because the file has invalid ones (on_invalid = \"reject-file\"): fix those and reprocess the file";
    assert!(
        out.stdout.contains(&format!("  {note}\n")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(", 2 held back by invalid ones"),
        "{}",
        out.stdout
    );
    let json = t.read_json("drop/failed/INV_1.csv.errors.json");
    assert_eq!(json["counts"]["held_back"], 2, "{json}");
    assert_eq!(json["note"], note);
    assert_eq!(
        json["errors"].as_array().unwrap().len(),
        1,
        "the rows stay the problems"
    );
    let csv = t.read("drop/failed/INV_1.csv.errors.csv");
    let last = csv.lines().last().unwrap();
    assert!(last.starts_with("submit;;;;;;held_back;"), "{csv}");
    assert!(last.contains(note.replace('"', "\"\"").as_str()), "{csv}");
    // skip-document: the valid ones go, nothing is held back
    let t = TestDir::new();
    t.invoice_setup(&INVOICE_MAPPING.replace(
        "[document]\nkey = [\"No\"]",
        "[document]\nkey = [\"No\"]\non_invalid = \"skip-document\"",
    ));
    t.write(
        "drop/inbox/INV_1.csv",
        format!(
            "{INVOICE_HEADER}A1;20.11.2026;C1;N30;1,50;X;1,50\nA2;20.11.2026;C9;N30;1,50;X;1,50\n"
        ),
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(!out.stdout.contains("held back"), "{}", out.stdout);
    assert_eq!(
        t.read_json("drop/failed/INV_1.csv.errors.json")["counts"]["accepted"],
        1
    );
}

#[test]
fn good_and_bad_files_each_end_in_their_place() {
    let t = setup();
    t.write(
        "drop/inbox/INV_1.csv",
        format!("{INVOICE_HEADER}A1;20.11.2026;C1;N30;1,50;X;1,50\n"),
    );
    t.write(
        "drop/inbox/INV_2.csv",
        format!(
            "{INVOICE_HEADER}B1;20.11.2026;C1;F49;1,50;X;1,50\nB2;20.11.2026;C9;N30;1,50;X;1,50\n"
        ),
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        t.ls(&format!("drop/done/{}", today())),
        vec!["INV_1.csv", "INV_1.csv.report.json"]
    );
    assert_eq!(
        t.ls("drop/failed"),
        vec![
            "INV_2.csv",
            "INV_2.csv.errors.csv",
            "INV_2.csv.errors.json",
            "INV_2.rejected.csv"
        ]
    );
    let errors = t.read_json("drop/failed/INV_2.csv.errors.json");
    assert_eq!(errors["outcome"], "failed");
    assert_eq!(errors["counts"]["invalid"], 2);
    assert_eq!(errors["counts"]["accepted"], 0);
    let rows = errors["errors"].as_array().unwrap();
    assert_eq!(rows[0]["code"], "not_allowed");
    assert_eq!(rows[0]["line"], 2);
    assert_eq!(
        rows[0]["message"],
        "Terms code \"F49\" is not in ref/terms.csv (line 2, column Terms)"
    );
    assert_eq!(rows[1]["code"], "lookup");
    assert_eq!(rows[1]["document"], "B2");
    let csv = t.read("drop/failed/INV_2.csv.errors.csv");
    // semicolons, as the mapping's source: Excel in that locale shows columns
    assert!(csv.contains("stage;document;line;column;field;value;code;message;status"));
    assert!(csv.contains("validate;B1;2;Terms;terms;F49;not_allowed;"));
    // reject-file: nothing of the bad file was submitted
    assert_eq!(t.ls("drop/outbox"), vec!["sales_invoice-A1.json"]);
    assert!(t.ls("drop/processing").is_empty());
}

#[test]
fn unreadable_and_empty_files_fail_alone() {
    let t = setup();
    t.write("drop/inbox/INV_a.csv", b"No;Date\n\xff\xfe\xfa;x\n");
    t.write("drop/inbox/INV_b.csv", b"");
    t.write(
        "drop/inbox/INV_c.csv",
        format!("{INVOICE_HEADER}C1;20.11.2026;C1;N30;1,50;X;1,50\n"),
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    let a = t.read_json("drop/failed/INV_a.csv.errors.json");
    assert_eq!(a["errors"][0]["stage"], "read");
    assert!(a["errors"][0].get("document").is_none());
    let b = t.read_json("drop/failed/INV_b.csv.errors.json");
    assert_eq!(b["errors"][0]["code"], "empty");
    assert_eq!(t.ls(&format!("drop/done/{}", today())).len(), 2);
}

#[test]
fn unmatched_temporary_and_partial_names_stay_in_the_inbox() {
    let t = TestDir::new();
    t.invoice_setup(&INVOICE_MAPPING.replace(r#"match = ["INV_*.csv"]"#, r#"match = ["*"]"#));
    let good = format!("{INVOICE_HEADER}A1;20.11.2026;C1;N30;1,50;X;1,50\n");
    for n in [
        "INV_1.csv.tmp",
        "INV_1.csv.part",
        "~$INV_1.csv",
        ".INV_1.csv",
    ] {
        t.write(&format!("drop/inbox/{n}"), &good);
    }
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(t.ls("drop/inbox").len(), 4);
    assert!(t.ls("drop/done").is_empty());

    let t = setup();
    t.write("drop/inbox/customers.csv", "x\n");
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(t.ls("drop/inbox"), vec!["customers.csv"]);
    assert!(out.stderr.contains("no mapping matches"), "{}", out.stderr);
}

#[test]
fn files_wait_until_settled() {
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    t.write(
        "erpdrop.toml",
        "[folders]\nroot = \"drop\"\n[scan]\nsettle_seconds = 60\n",
    );
    let body = format!("{INVOICE_HEADER}A1;20.11.2026;C1;N30;1,50;X;1,50\n");
    t.write("drop/inbox/INV_new.csv", &body);
    let old = t.write("drop/inbox/INV_old.csv", body.replace("A1", "A2"));
    age(&old, 120);
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(t.ls("drop/inbox"), vec!["INV_new.csv"]);
    assert_eq!(t.ls("drop/outbox"), vec!["sales_invoice-A2.json"]);
    // the summary says what was left, and why
    assert!(
        out.stdout.contains(
            "not yet: 1 file waiting in the inbox: INV_new.csv (not settled yet: modified less than 60s ago)"
        ),
        "{}",
        out.stdout
    );
    // a pass with only waiting files is not "nothing to do"
    t.write("drop/inbox/notes.txt", "x");
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout,
        "nothing to do yet: 2 files waiting in the inbox: INV_new.csv (not settled yet: modified less than 60s ago), notes.txt (matches no mapping)\n"
    );
    let json = t.run(&["--json", "run"]).json();
    assert_eq!(json["waiting"].as_array().unwrap().len(), 2, "{json}");
}

#[test]
fn ready_marker_is_required_and_moves_along() {
    let t = setup();
    t.write(
        "erpdrop.toml",
        "[folders]\nroot = \"drop\"\n[scan]\nsettle_seconds = 0\nready_marker = \"{name}.ok\"\n",
    );
    let body = format!("{INVOICE_HEADER}A1;20.11.2026;C1;N30;1,50;X;1,50\n");
    t.write("drop/inbox/INV_1.csv", &body);
    t.write("drop/inbox/INV_2.csv", body.replace("A1", "A2"));
    t.write("drop/inbox/INV_2.csv.ok", "");
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(t.ls("drop/inbox"), vec!["INV_1.csv"]);
    assert_eq!(
        t.ls(&format!("drop/done/{}", today())),
        vec!["INV_2.csv", "INV_2.csv.ok", "INV_2.csv.report.json"]
    );
    let out = t.run(&["run"]);
    assert_eq!(
        out.stdout,
        "nothing to do yet: 1 file waiting in the inbox: INV_1.csv (waiting for its ready marker INV_1.csv.ok)\n"
    );
}

#[test]
fn names_in_done_and_failed_are_never_overwritten() {
    let t = setup();
    let good = format!("{INVOICE_HEADER}A1;20.11.2026;C1;N30;1,50;X;1,50\n");
    let bad = format!("{INVOICE_HEADER}B1;20.11.2026;C1;XX;1,50;X;1,50\n");
    for round in 0..2 {
        t.write(
            "drop/inbox/INV_1.csv",
            good.replace("A1", &format!("A{round}")),
        );
        t.write("drop/inbox/INV_2.csv", &bad);
        t.run(&["run"]);
    }
    assert_eq!(
        t.ls(&format!("drop/done/{}", today())),
        vec![
            "INV_1.1.csv",
            "INV_1.1.csv.report.json",
            "INV_1.csv",
            "INV_1.csv.report.json"
        ]
    );
    assert_eq!(
        t.ls("drop/failed"),
        vec![
            "INV_2.1.csv",
            "INV_2.1.csv.errors.csv",
            "INV_2.1.csv.errors.json",
            "INV_2.1.rejected.csv",
            "INV_2.csv",
            "INV_2.csv.errors.csv",
            "INV_2.csv.errors.json",
            "INV_2.rejected.csv"
        ]
    );
    assert!(t
        .read(&format!("drop/done/{}/INV_1.csv", today()))
        .contains("A0;"));
    assert!(t
        .read(&format!("drop/done/{}/INV_1.1.csv", today()))
        .contains("A1;"));
}

#[cfg(unix)]
#[test]
fn symbolic_links_are_never_followed_or_moved() {
    let t = setup();
    let outside = t.write(
        "elsewhere/INV_secret.csv",
        format!("{INVOICE_HEADER}S1;20.11.2026;C1;N30;1,50;X;1,50\n"),
    );
    std::os::unix::fs::symlink(&outside, t.join("drop/inbox/INV_link.csv")).unwrap();
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(t
        .join("drop/inbox/INV_link.csv")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(outside.exists());
    assert!(t.ls("drop/outbox").is_empty());
    assert!(t.ls("drop/done").is_empty());
}

#[test]
fn a_held_lock_makes_a_run_exit_4_and_touch_nothing() {
    let t = setup();
    t.write(
        "drop/inbox/INV_1.csv",
        format!("{INVOICE_HEADER}A1;20.11.2026;C1;N30;1,50;X;1,50\n"),
    );
    std::fs::create_dir_all(t.join("drop/.erpdrop")).unwrap();
    let lock = std::fs::File::create(t.join("drop/.erpdrop/lock")).unwrap();
    lock.lock().unwrap();
    let out = t.run(&["run"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(t.ls("drop/inbox"), vec!["INV_1.csv"]);
    assert!(!t.exists("drop/.erpdrop/ledger.sqlite"));
    drop(lock);
    assert_eq!(t.run(&["run"]).code, 0);
}

#[test]
fn two_runs_started_together_one_exits_4() {
    let t = setup();
    t.write("drop/inbox/INV_big.csv", invoices_csv(4000, 2));
    let first = t
        .spawn_cmd()
        .arg("run")
        .arg("-q")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // wait until the first run holds the lock (it has claimed the file)
    let deadline = Instant::now() + Duration::from_secs(30);
    while t.ls("drop/processing").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let second = t.run(&["run"]);
    let first = first.wait_with_output().unwrap();
    assert_eq!(second.code, 4, "{second:?}");
    assert_eq!(first.status.code(), Some(0));
    assert_eq!(t.ls("drop/outbox").len(), 4000);
}

#[cfg(unix)]
#[test]
fn a_run_killed_mid_file_loses_nothing_and_posts_each_document_once() {
    let t = setup();
    // killed once 200 payloads are out, with most of the file still to go
    let n = 3_000;
    t.write("drop/inbox/INV_big.csv", invoices_csv(n, 1));
    t.write(
        "drop/inbox/INV_next.csv",
        format!("{INVOICE_HEADER}Z1;20.11.2026;C1;N30;1,50;X;1,50\n"),
    );
    let mut child = t
        .spawn_cmd()
        .arg("run")
        .arg("-q")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while t.ls("drop/outbox").len() < 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let written = t.ls("drop/outbox").len();
    assert!(
        written >= 200 && written < n,
        "killed too late or too early: {written}"
    );
    assert_eq!(t.ls("drop/processing"), vec!["INV_big.csv"]);

    let out = t.run(&["run", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let day = format!("drop/done/{}", today());
    assert_eq!(
        t.ls(&day),
        vec![
            "INV_big.csv",
            "INV_big.csv.report.json",
            "INV_next.csv",
            "INV_next.csv.report.json"
        ]
    );
    assert!(t.ls("drop/processing").is_empty());
    assert!(t.ls("drop/inbox").is_empty());
    let outbox = t.ls("drop/outbox");
    assert_eq!(
        outbox.len(),
        n + 1,
        "every document exactly once, no temporary files"
    );
    let mut want: Vec<String> = (0..n)
        .map(|i| format!("sales_invoice-INV{i:06}.json"))
        .collect();
    want.push("sales_invoice-Z1.json".to_string());
    want.sort();
    assert_eq!(outbox, want, "every document's payload, under its own name");
    for name in &outbox {
        t.read_json(&format!("drop/outbox/{name}"));
    }
    let summary = out.json();
    let big = &summary["files"][0]["counts"];
    assert_eq!(
        big["accepted"].as_u64().unwrap() + big["already_imported"].as_u64().unwrap(),
        n as u64
    );
    assert!(big["already_imported"].as_u64().unwrap() >= 199);
}

#[test]
fn dry_run_touches_nothing() {
    let t = setup();
    t.write(
        "drop/inbox/INV_1.csv",
        format!("{INVOICE_HEADER}A1;20.11.2026;C1;N30;1,50;X;1,50\n"),
    );
    let out = t.run(&["run", "--dry-run", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["dry_run"], true);
    assert_eq!(t.ls("drop/inbox"), vec!["INV_1.csv"]);
    assert!(!t.exists("drop/.erpdrop/ledger.sqlite"));
    assert!(!t.exists("drop/outbox"));
}

#[test]
fn a_config_error_exits_2_and_touches_nothing() {
    let t = setup();
    t.write(
        "mappings/inv.toml",
        INVOICE_MAPPING.replace("type = \"date\"", "type = \"dat\""),
    );
    t.write(
        "drop/inbox/INV_1.csv",
        format!("{INVOICE_HEADER}A1;20.11.2026;C1;N30;1,50;X;1,50\n"),
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("mappings/inv.toml"), "{}", out.stderr);
    assert!(out.stderr.contains("header.date.type"), "{}", out.stderr);
    assert_eq!(t.ls("drop/inbox"), vec!["INV_1.csv"]);
    assert!(!t.exists("drop/.erpdrop"));
}

#[test]
fn quiet_prints_one_line_per_failed_file_with_its_counts_and_report() {
    let t = setup();
    t.write(
        "drop/inbox/INV_1.csv",
        format!(
            "{INVOICE_HEADER}A1;20.11.2026;C1;N30;1,50;X;1,50\nA2;20.11.2026;C9;N30;1,50;X;1,50\n"
        ),
    );
    t.write(
        "drop/inbox/INV_2.csv",
        format!("{INVOICE_HEADER}B1;20.11.2026;C1;N30;1,50;X;1,50\n"),
    );
    let out = t.run(&["-q", "run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stdout, "");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    let line = lines[0];
    assert!(
        line.contains("ERROR") && line.contains("file failed"),
        "{line}"
    );
    assert!(line.contains("file=INV_1.csv"), "{line}");
    assert!(
        line.contains("invalid=1") && line.contains("documents=2"),
        "{line}"
    );
    assert!(
        line.contains("report=./drop/failed/INV_1.csv.errors.csv"),
        "{line}"
    );
    assert!(t.exists("drop/failed/INV_1.csv.errors.csv"));
}

#[test]
fn a_files_log_lines_agree_on_its_counts() {
    let t = setup();
    let csv = format!("{INVOICE_HEADER}A1;20.11.2026;C1;N30;1,50;X;1,50\n");
    t.write("drop/inbox/INV_1.csv", &csv);
    assert_eq!(t.run(&["run"]).code, 0);
    // the same invoices again, and a new one
    t.write(
        "drop/inbox/INV_2.csv",
        format!("{csv}A2;20.11.2026;C1;N30;1,50;X;1,50\n"),
    );
    let out = t.run(&["--log-format", "json", "run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<serde_json::Value> = out
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |m: &str| {
        lines
            .iter()
            .find(|l| l["message"] == m && l["file"] == "INV_2.csv")
            .unwrap_or_else(|| panic!("no {m:?} line in {}", out.stderr))
            .clone()
    };
    let (sent, handled) = (of("submitted"), of("file handled"));
    assert_eq!(sent["accepted"], handled["accepted"]);
    assert_eq!(handled["already_imported"], 1);
    assert!(sent.get("already_imported").is_none(), "{sent}");
}

#[test]
fn quiet_prints_nothing_and_json_log_lines_parse() {
    let t = setup();
    t.write(
        "drop/inbox/INV_1.csv",
        format!("{INVOICE_HEADER}A1;20.11.2026;C1;N30;1,50;X;1,50\n"),
    );
    let out = t.run(&["-q", "run"]);
    assert_eq!(out.code, 0);
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "");
    t.write(
        "drop/inbox/INV_2.csv",
        format!("{INVOICE_HEADER}A2;20.11.2026;C1;N30;1,50;X;1,50\n"),
    );
    let out = t.run(&["--log-format", "json", "run"]);
    assert_eq!(out.code, 0);
    let lines: Vec<serde_json::Value> = out
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(lines
        .iter()
        .any(|l| l["message"] == "file handled" && l["file"] == "INV_2.csv"));
    assert!(lines.iter().any(|l| l["message"] == "run finished"));
}

#[cfg(unix)]
#[test]
fn watch_runs_passes_until_sigterm() {
    let t = setup();
    let child = t
        .spawn_cmd()
        .args(["watch", "--interval", "1s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    t.write(
        "drop/inbox/INV_1.csv",
        format!("{INVOICE_HEADER}A1;20.11.2026;C1;N30;1,50;X;1,50\n"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    // a payload appears under its name only once it is complete
    while !t.exists("drop/outbox/sales_invoice-A1.json") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    t.read_json("drop/outbox/sales_invoice-A1.json");
    let pid = child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(t.ls("drop/processing").is_empty());
    assert_eq!(t.ls("drop/outbox"), vec!["sales_invoice-A1.json"]);
    // empty passes are quiet; the file's pass is not
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("nothing to do"), "{stdout}");
    assert!(stdout.contains("done: INV_1.csv"), "{stdout}");
    // with -v an empty pass says so
    let child = t
        .spawn_cmd()
        .args(["-v", "watch", "--interval", "1s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("nothing to do"), "{stdout}");
}
