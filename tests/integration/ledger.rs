//! The ledger: exactly-once documents, conflicts, `reprocess` and `status`.

use crate::util::{TestDir, INVOICE_HEADER, INVOICE_MAPPING};

fn setup() -> TestDir {
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    t
}

fn today() -> String {
    chrono::Local::now().format("%Y-%m-%d").to_string()
}

const THREE: &str = "A1;20.11.2026;C1;N30;1,50;X;1,50\nA2;20.11.2026;C2;N30;3,00;X;1,50\nA2;20.11.2026;C2;N30;3,00;Y;1,50\nA3;21.11.2026;C1;F48;1,50;X;1,50\n";

fn mtime(t: &TestDir, rel: &str) -> std::time::SystemTime {
    std::fs::metadata(t.join(rel)).unwrap().modified().unwrap()
}

#[test]
fn a_file_dropped_again_posts_nothing_and_ends_in_done() {
    let t = setup();
    t.write("drop/inbox/INV_1.csv", format!("{INVOICE_HEADER}{THREE}"));
    assert_eq!(t.run(&["run"]).code, 0);
    let before = mtime(&t, "drop/outbox/sales_invoice-A2.json");
    std::thread::sleep(std::time::Duration::from_millis(20));

    // the same file again, and the same content under another name
    t.write("drop/inbox/INV_1.csv", format!("{INVOICE_HEADER}{THREE}"));
    t.write(
        "drop/inbox/INV_copy.csv",
        format!("{INVOICE_HEADER}{THREE}"),
    );
    let out = t.run(&["run", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let s = out.json();
    for f in s["files"].as_array().unwrap() {
        assert_eq!(f["outcome"], "done");
        assert_eq!(f["counts"]["accepted"], 0);
        assert_eq!(f["counts"]["already_imported"], 3);
    }
    assert_eq!(
        mtime(&t, "drop/outbox/sales_invoice-A2.json"),
        before,
        "not written again"
    );
    assert_eq!(
        t.ls(&format!("drop/done/{}", today())),
        vec![
            "INV_1.1.csv",
            "INV_1.1.csv.report.json",
            "INV_1.csv",
            "INV_1.csv.report.json",
            "INV_copy.csv",
            "INV_copy.csv.report.json"
        ]
    );
}

#[test]
fn a_changed_document_under_an_old_key_is_a_conflict() {
    let t = setup();
    t.write("drop/inbox/INV_1.csv", format!("{INVOICE_HEADER}{THREE}"));
    assert_eq!(t.run(&["run"]).code, 0);
    let original = t.read("drop/outbox/sales_invoice-A1.json");
    t.write(
        "drop/inbox/INV_2.csv",
        format!(
            "{INVOICE_HEADER}A1;20.11.2026;C1;N30;9,00;X;9,00\nA9;20.11.2026;C1;N30;1,50;X;1,50\n"
        ),
    );
    // a dry run already says so, and writes nothing
    let dry = t.run(&["validate", "--json"]);
    assert_eq!(dry.code, 1, "{dry:?}");
    assert_eq!(dry.json()["files"][0]["errors"][0]["code"], "conflict");

    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    let report = t.read_json("drop/failed/INV_2.csv.errors.json");
    let row = &report["errors"][0];
    assert_eq!(row["code"], "conflict");
    assert_eq!(row["document"], "A1");
    assert_eq!(row["line"], 2);
    assert!(
        row["message"]
            .as_str()
            .unwrap()
            .contains("already imported"),
        "{row}"
    );
    assert_eq!(t.read("drop/outbox/sales_invoice-A1.json"), original);
    // reject-file: the good document of that file was not sent either
    assert!(!t.exists("drop/outbox/sales_invoice-A9.json"));
}

#[test]
fn reprocess_after_a_fix_sends_only_the_failed_documents() {
    let t = setup();
    t.write(
        "mappings/inv.toml",
        INVOICE_MAPPING.replace(
            "[document]\nkey = [\"No\"]",
            "[document]\nkey = [\"No\"]\non_invalid = \"skip-document\"",
        ),
    );
    t.write(
        "drop/inbox/INV_1.csv",
        format!("{INVOICE_HEADER}{THREE}A4;21.11.2026;C1;F99;1,50;X;1,50\n"),
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(t.ls("drop/outbox").len(), 3);
    assert!(t.exists("drop/failed/INV_1.csv"));
    let a1 = mtime(&t, "drop/outbox/sales_invoice-A1.json");

    // status shows the failed file and document, and why
    let st = t.run(&["status"]);
    assert_eq!(st.code, 0, "{st:?}");
    assert!(st.stdout.contains("INV_1.csv"), "{}", st.stdout);
    assert!(st.stdout.contains("A4"), "{}", st.stdout);
    assert!(
        st.stdout
            .contains("Terms code \"F99\" is not in ref/terms.csv"),
        "{}",
        st.stdout
    );
    assert!(
        st.stdout.lines().all(|l| l.chars().count() <= 80),
        "{}",
        st.stdout
    );
    let js = t.run(&["status", "--json"]).json();
    assert_eq!(js["failed_documents"][0]["document"], "A4");
    assert_eq!(js["failed_documents"][0]["state"], "invalid");
    assert_eq!(js["failed_files"][0]["file"], "INV_1.csv");
    assert_eq!(js["runs"][0]["exit_code"], 1);

    // the fix: the terms code is created in the ERP (our reference list)
    t.write(
        "ref/terms.csv",
        "code,description\nN30,Net 30\nF48,48 months\nF99,99 days\n",
    );
    let out = t.run(&["reprocess", "INV_1.csv", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let counts = &out.json()["files"][0]["counts"];
    assert_eq!(counts["accepted"], 1);
    assert_eq!(counts["already_imported"], 3);
    assert_eq!(t.ls("drop/outbox").len(), 4);
    assert_eq!(mtime(&t, "drop/outbox/sales_invoice-A1.json"), a1);
    assert!(
        t.ls("drop/failed").iter().all(|n| n == ".history"),
        "{:?}",
        t.ls("drop/failed")
    );
    let history = t.ls("drop/failed/.history");
    assert_eq!(history.len(), 1);
    assert_eq!(
        t.ls(&format!("drop/failed/.history/{}", history[0])),
        vec![
            "INV_1.csv.errors.csv",
            "INV_1.csv.errors.json",
            "INV_1.rejected.csv"
        ]
    );
    let js = t.run(&["status", "--failed", "--json"]).json();
    assert!(
        js["failed_documents"].as_array().unwrap().is_empty(),
        "{js}"
    );
}

#[test]
fn reprocess_needs_names_that_are_in_failed() {
    let t = setup();
    let out = t.run(&["reprocess"]);
    assert_eq!(out.code, 2);
    let out = t.run(&["reprocess", "INV_nope.csv"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("INV_nope.csv"), "{}", out.stderr);
}

#[test]
fn validate_reads_the_ledger_but_never_writes_it() {
    let t = setup();
    t.write("drop/inbox/INV_1.csv", format!("{INVOICE_HEADER}{THREE}"));
    assert_eq!(t.run(&["run"]).code, 0);
    let ledger = t.join("drop/.erpdrop/ledger.sqlite");
    let count = || {
        let c = rusqlite::Connection::open(&ledger).unwrap();
        let runs: i64 = c
            .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
            .unwrap();
        let docs: i64 = c
            .query_row("SELECT count(*) FROM documents", [], |r| r.get(0))
            .unwrap();
        (runs, docs)
    };
    let before = count();
    t.write("check/INV_1.csv", format!("{INVOICE_HEADER}{THREE}"));
    let out = t.run(&["validate", "check", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["files"][0]["counts"]["already_imported"], 3);
    assert_eq!(count(), before);
}

#[test]
fn a_ledger_of_an_older_schema_is_migrated() {
    let t = setup();
    std::fs::create_dir_all(t.join("drop/.erpdrop")).unwrap();
    let c = rusqlite::Connection::open(t.join("drop/.erpdrop/ledger.sqlite")).unwrap();
    // schema version 1, as the first release wrote it, with one accepted document
    c.execute_batch(
        "CREATE TABLE schema_version (version INTEGER NOT NULL, applied TEXT NOT NULL);
         INSERT INTO schema_version VALUES (1, '2026-01-01T00:00:00Z');
         CREATE TABLE runs (id TEXT PRIMARY KEY, command TEXT NOT NULL, started TEXT NOT NULL, finished TEXT,
           files INTEGER NOT NULL DEFAULT 0, accepted INTEGER NOT NULL DEFAULT 0, rejected INTEGER NOT NULL DEFAULT 0,
           invalid INTEGER NOT NULL DEFAULT 0, already_imported INTEGER NOT NULL DEFAULT 0, exit_code INTEGER);
         CREATE TABLE files (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL,
           mapping TEXT NOT NULL, outcome TEXT NOT NULL, rows INTEGER NOT NULL, documents INTEGER NOT NULL,
           accepted INTEGER NOT NULL, rejected INTEGER NOT NULL, invalid INTEGER NOT NULL, started TEXT NOT NULL,
           finished TEXT NOT NULL);
         CREATE TABLE documents (mapping TEXT NOT NULL, key TEXT NOT NULL, content_hash TEXT NOT NULL, state TEXT NOT NULL,
           target_id TEXT, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, file TEXT, run_id TEXT,
           updated TEXT NOT NULL, PRIMARY KEY (mapping, key));
         INSERT INTO documents VALUES ('billing', 'OLD-1', 'h-old', 'accepted', '77', 1, NULL,
           'INV_0.csv', 'r0', '2026-01-01T00:00:00Z');",
    )
    .unwrap();
    drop(c);
    t.write("drop/inbox/INV_1.csv", format!("{INVOICE_HEADER}{THREE}"));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let c = rusqlite::Connection::open(t.join("drop/.erpdrop/ledger.sqlite")).unwrap();
    let v: i64 = c
        .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, erpdrop::ledger::SCHEMA_VERSION);
    assert_eq!(v, 8);
    let accepted: i64 = c
        .query_row(
            "SELECT count(*) FROM documents WHERE state = 'accepted'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(accepted, 4, "the document of the old ledger is kept");
    let (erp_hash, id): (String, String) = c
        .query_row(
            "SELECT erp_hash, target_id FROM documents WHERE key = 'OLD-1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((erp_hash.as_str(), id.as_str()), ("h-old", "77"));
    // its creation is the first line of its history
    let out = t.run(&["history", "OLD-1", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let h = out.json();
    assert_eq!(h[0]["operation"], "create");
    assert_eq!(h[0]["id"], "77");
    assert_eq!(h[0]["file"], "INV_0.csv");

    // a ledger from a newer erpdrop is refused, and nothing is touched
    c.execute(
        "INSERT INTO schema_version VALUES (?1, 'future')",
        [erpdrop::ledger::SCHEMA_VERSION + 1],
    )
    .unwrap();
    drop(c);
    t.write(
        "drop/inbox/INV_2.csv",
        format!("{INVOICE_HEADER}B1;20.11.2026;C1;N30;1,50;X;1,50\n"),
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("newer erpdrop"), "{}", out.stderr);
    assert_eq!(t.ls("drop/inbox"), vec!["INV_2.csv"]);
}

#[test]
fn status_keeps_the_failed_run_in_sight_and_shows_counts_apart() {
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    // a run that imports three, then a failed run, then a good one with two seen before
    t.write("drop/inbox/INV_1.csv", format!("{INVOICE_HEADER}{THREE}"));
    assert_eq!(t.run(&["run"]).code, 0);
    t.write(
        "drop/inbox/INV_2.csv",
        format!(
            "{INVOICE_HEADER}B1;20.11.2026;C9;N30;1,50;X;1,50\nB2;20.11.2026;C1;F99;1,50;X;1,50\nB3;20.11.2026;C1;F98;1,50;X;1,50\n"
        ),
    );
    assert_eq!(t.run(&["run"]).code, 1);
    // twenty empty passes, as `watch` makes in minutes
    for _ in 0..20 {
        assert_eq!(t.run(&["run"]).code, 0);
    }
    let st = t.run(&["status"]);
    assert_eq!(st.code, 0, "{st:?}");
    let lines: Vec<&str> = st.stdout.lines().collect();
    assert_eq!(
        lines[1], "  started        took  command   files accepted already rejected invalid exit",
        "{}",
        st.stdout
    );
    // the failed run is still listed, the empty passes are one line
    assert!(lines[2].ends_with(" 1"), "{}", st.stdout);
    assert!(lines[3].ends_with(" 0"), "{}", st.stdout);
    assert_eq!(lines[4], "  and 20 passes with nothing to do, not listed");
    // accepted and already imported apart: the first run accepted 3, none already
    let first: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(
        &first[first.len() - 6..],
        ["1", "3", "0", "0", "0", "0"],
        "{}",
        lines[3]
    );
    // the failed file says how many more failed than its first error
    assert!(
        st.stdout.contains(
            "    and 2 more failed documents: failed/INV_2.csv.errors.csv lists them all"
        ),
        "{}",
        st.stdout
    );
    let js = t.run(&["status", "--json"]).json();
    assert_eq!(js["empty_runs"], 20);
    assert_eq!(js["runs"].as_array().unwrap().len(), 2);
    assert_eq!(js["failed_files"][0]["failed_documents"], 3);
    // a good run again with the same invoices: "already" is counted apart from accepted
    t.write("drop/inbox/INV_3.csv", format!("{INVOICE_HEADER}{THREE}"));
    assert_eq!(t.run(&["run"]).code, 0);
    let st = t.run(&["status"]);
    let newest: Vec<&str> = st
        .stdout
        .lines()
        .nth(2)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        &newest[newest.len() - 6..],
        ["1", "0", "3", "0", "0", "0"],
        "{}",
        st.stdout
    );
    // ten good runs push the failed one out of the list: it is still shown, as the last
    for i in 0..10 {
        t.write(
            &format!("drop/inbox/INV_g{i}.csv"),
            format!("{INVOICE_HEADER}G{i};20.11.2026;C1;N30;1,50;X;1,50\n"),
        );
        assert_eq!(t.run(&["run"]).code, 0);
    }
    let st = t.run(&["status"]);
    assert!(
        st.stdout.contains("  the last failed run:"),
        "{}",
        st.stdout
    );
    assert!(
        st.stdout.lines().all(|l| l.chars().count() <= 80),
        "{}",
        st.stdout
    );
}
