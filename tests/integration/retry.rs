//! Automatic retries (issue 16, `[retry]`): a failed file whose documents failed on the
//! ERP's set-up goes back to the inbox after `every`, only its failed documents are sent
//! again, and after `attempts` it stays in failed/ and `status` says erpdrop gave up.

use crate::util::erp::{Behaviour, FakeErp};
use crate::util::{invoices_csv, TestDir, INVOICE_MAPPING};

fn setup(erp: &FakeErp, retry: &str) -> TestDir {
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    t.write(
        "erpdrop.toml",
        format!(
            "[folders]\nroot = \"drop\"\n[scan]\nsettle_seconds = 0\n[target]\nkind = \"http\"\n\
             url = \"{}/api/{{document}}\"\ntimeout_seconds = 5\nid_pointer = \"/id\"\n\
             retry = {{ attempts = 1, backoff_ms = 10 }}\n[retry]\n{retry}\n",
            erp.base()
        ),
    );
    t
}

/// Moves the last attempt of a failed file into the past, as if `secs` had passed.
fn age_last_attempt(t: &TestDir, name: &str, secs: i64) {
    let rel = format!("drop/failed/{name}.errors.json");
    let mut report = t.read_json(&rel);
    let finished = chrono::DateTime::parse_from_rfc3339(report["finished"].as_str().unwrap())
        .unwrap()
        - chrono::Duration::seconds(secs);
    report["finished"] = finished.to_rfc3339().into();
    t.write(&rel, serde_json::to_vec_pretty(&report).unwrap());
}

/// How many times the ERP was asked to create `number`.
fn asked(erp: &FakeErp, number: &str) -> usize {
    erp.requests()
        .iter()
        .filter(|r| {
            serde_json::from_str::<serde_json::Value>(&r.body).is_ok_and(|d| d["number"] == number)
        })
        .count()
}

fn today_done(t: &TestDir) -> Vec<String> {
    t.ls(&format!(
        "drop/done/{}",
        chrono::Local::now().format("%Y-%m-%d")
    ))
}

#[test]
fn a_rejected_document_is_sent_again_after_every_and_the_file_ends_in_done() {
    let erp = FakeErp::start(Behaviour {
        reject: ["INV000001".to_string()].into(),
        ..Behaviour::default()
    });
    let t = setup(&erp, "attempts = 3\nevery = \"1h\"\ncodes = [\"rejected\"]");
    t.write("drop/inbox/INV_1.csv", invoices_csv(3, 1));
    assert_eq!(t.run(&["run"]).code, 1);
    assert_eq!(
        t.ls("drop/failed").len(),
        4,
        "the file, two reports, the rejected rows"
    );
    // the ERP's set-up is fixed meanwhile
    erp.set(|b| b.reject.clear());
    // too early: it stays
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(t.exists("drop/failed/INV_1.csv"));
    assert_eq!(asked(&erp, "INV000001"), 1);
    // an hour later
    age_last_attempt(&t, "INV_1.csv", 3601);
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("retrying"), "{}", out.stderr);
    assert_eq!(today_done(&t), ["INV_1.csv", "INV_1.csv.report.json"]);
    assert!(
        t.ls("drop/failed").iter().all(|n| n == ".history"),
        "{:?}",
        t.ls("drop/failed")
    );
    // only the failed document went again; the others once each
    assert_eq!(asked(&erp, "INV000001"), 2);
    assert_eq!(asked(&erp, "INV000000"), 1);
    assert_eq!(asked(&erp, "INV000002"), 1);
    assert_eq!(erp.created(), (3, 1));
    let history = t.ls("drop/failed/.history");
    let old = t.ls(&format!("drop/failed/.history/{}", history[0]));
    assert!(
        old.contains(&"INV_1.csv.errors.json".to_string()),
        "{old:?}"
    );
    assert!(old.contains(&"INV_1.rejected.csv".to_string()), "{old:?}");
}

#[test]
fn after_the_last_attempt_the_file_stays_and_status_says_erpdrop_gave_up() {
    let erp = FakeErp::start(Behaviour {
        reject: ["INV000001".to_string()].into(),
        reject_message: Some("Payment terms N30 are not set up".into()),
        ..Behaviour::default()
    });
    let t = setup(&erp, "attempts = 2\nevery = \"1s\"");
    t.write("drop/inbox/INV_1.csv", invoices_csv(3, 1));
    assert_eq!(t.run(&["run"]).code, 1);
    age_last_attempt(&t, "INV_1.csv", 5);
    // the second attempt, rejected again
    assert_eq!(t.run(&["run"]).code, 1);
    assert_eq!(asked(&erp, "INV000001"), 2);
    age_last_attempt(&t, "INV_1.csv", 5);
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("gave up retrying after 2 attempts"),
        "{}",
        out.stderr
    );
    assert_eq!(asked(&erp, "INV000001"), 2, "no third attempt");
    assert!(t.exists("drop/failed/INV_1.csv"));
    // said once, not on every run
    let out = t.run(&["run"]);
    assert!(!out.stderr.contains("gave up"), "{}", out.stderr);

    let st = t.run(&["status", "--json"]).json();
    let f = &st["failed_files"][0];
    assert_eq!(f["file"], "INV_1.csv");
    assert_eq!(f["gave_up"]["attempts"], 2);
    assert_eq!(f["gave_up"]["message"], "gave up after 2 attempts");
    assert!(
        f["gave_up"]["last_error"]
            .as_str()
            .unwrap()
            .contains("Payment terms N30 are not set up"),
        "{f}"
    );
    let doc = st["failed_documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["document"] == "INV000001")
        .expect("the failed document is listed");
    assert_eq!(doc["failed_attempts"], 2, "{doc}");
    let text = t.run(&["status"]).stdout;
    assert!(text.contains("gave up after 2 attempts"), "{text}");
    assert!(text.contains("Payment terms N30"), "{text}");
}

#[test]
fn a_lookup_error_is_not_retried_unless_its_code_is_listed() {
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(&erp, "attempts = 3\nevery = \"1s\"\ncodes = [\"rejected\"]");
    let file = invoices_csv(3, 1).replace("INV000001;20.11.2026;C1", "INV000001;20.11.2026;C9");
    t.write("drop/inbox/INV_1.csv", file);
    assert_eq!(t.run(&["run"]).code, 1);
    // the customer is created in the ERP meanwhile, but a lookup needs a person here
    t.write(
        "xref/customers.csv",
        "crm_id;erp_id\nC1;CUST-1\nC9;CUST-9\n",
    );
    age_last_attempt(&t, "INV_1.csv", 3600);
    assert_eq!(t.run(&["run"]).code, 0);
    assert!(t.exists("drop/failed/INV_1.csv"));
    assert!(!t.exists("drop/failed/.history"), "not moved");
    assert!(today_done(&t).is_empty());
    // with "lookup" listed, it is
    let cfg = t.read("erpdrop.toml").replace(
        "codes = [\"rejected\"]",
        "codes = [\"rejected\", \"lookup\"]",
    );
    t.write("erpdrop.toml", cfg);
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(today_done(&t), ["INV_1.csv", "INV_1.csv.report.json"]);
    assert_eq!(erp.created(), (3, 1));
}

#[test]
fn a_wrong_retry_setting_is_named_with_its_line() {
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(&erp, "every = \"soon\"");
    let out = t.run(&["check"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("retry.every"), "{}", out.stderr);
    assert!(out.stderr.contains("\"soon\""), "{}", out.stderr);
    let t = setup(&erp, "codes = [\"rejectd\"]");
    let out = t.run(&["run"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("\"rejectd\" is not an error code"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_file_whose_rejected_rows_came_back_fixed_is_not_retried() {
    let erp = FakeErp::start(Behaviour {
        reject: ["INV000001".to_string()].into(),
        ..Behaviour::default()
    });
    let t = setup(&erp, "attempts = 3\nevery = \"1s\"");
    t.write("drop/inbox/INV_1.csv", invoices_csv(3, 1));
    assert_eq!(t.run(&["run"]).code, 1);
    // the user fixes the rejected row (other content) and drops it back
    erp.set(|b| b.reject.clear());
    let rejected = t.read("drop/failed/INV_1.rejected.csv");
    t.write(
        "drop/inbox/INV_1.rejected.csv",
        rejected.replace("ITEM0", "ITEM9"),
    );
    age_last_attempt(&t, "INV_1.csv", 5);
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        asked(&erp, "INV000001"),
        2,
        "sent once more, from the fixed rows"
    );
    // the original is not sent again with its old content (a conflict)
    assert!(t.exists("drop/failed/INV_1.csv"));
    assert!(!t.exists("drop/failed/.history"), "not moved");
    assert_eq!(
        today_done(&t),
        ["INV_1.rejected.csv", "INV_1.rejected.csv.report.json"]
    );
}

#[test]
fn watch_retries_a_failed_file_when_its_time_comes() {
    use std::time::{Duration, Instant};
    let erp = FakeErp::start(Behaviour {
        reject: ["INV000001".to_string()].into(),
        ..Behaviour::default()
    });
    let t = setup(&erp, "attempts = 3\nevery = \"1h\"");
    t.write("drop/inbox/INV_1.csv", invoices_csv(3, 1));
    let mut child = t
        .spawn_cmd()
        .args(["watch", "--interval", "1s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let wait_for = |what: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !what() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        what()
    };
    let failed = wait_for(&|| t.exists("drop/failed/INV_1.csv.errors.json"));
    erp.set(|b| b.reject.clear());
    if failed {
        // an hour passes
        age_last_attempt(&t, "INV_1.csv", 3601);
    }
    let done = failed && wait_for(&|| today_done(&t).len() == 2);
    let _ = child.kill();
    let _ = child.wait();
    assert!(failed, "the first pass failed the file");
    assert!(done, "the file was retried: {:?}", t.ls("drop/failed"));
    assert_eq!(asked(&erp, "INV000001"), 2);
    assert_eq!(erp.created(), (3, 1));
}

#[test]
fn giving_up_is_told_once_to_the_channels_that_take_gave_up() {
    let erp = FakeErp::start(Behaviour {
        reject: ["INV000001".to_string()].into(),
        reject_message: Some("Payment terms N30 are not set up".into()),
        ..Behaviour::default()
    });
    let hook = FakeErp::start(Behaviour::default());
    let t = setup(&erp, "attempts = 2\nevery = \"1s\"");
    let cfg = t.read("erpdrop.toml");
    t.write(
        "erpdrop.toml",
        format!(
            "{cfg}[[notify]]\non = [\"file_failed\", \"gave_up\"]\nwebhook = {{ url = \"{}/hook\", format = \"json\" }}\n",
            hook.base()
        ),
    );
    let hooks = || -> Vec<serde_json::Value> {
        hook.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path == "/hook")
            .map(|r| serde_json::from_str(&r.body).unwrap())
            .collect()
    };
    t.write("drop/inbox/INV_1.csv", invoices_csv(3, 1));
    assert_eq!(t.run(&["run"]).code, 1);
    age_last_attempt(&t, "INV_1.csv", 5);
    assert_eq!(t.run(&["run"]).code, 1);
    // the first failure was told; the automatic attempt that failed again is not
    let events = |h: &[serde_json::Value]| -> Vec<String> {
        h.iter()
            .map(|e| e["event"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(events(&hooks()), ["file_failed"]);
    age_last_attempt(&t, "INV_1.csv", 5);
    assert_eq!(t.run(&["run"]).code, 0);
    assert_eq!(t.run(&["run"]).code, 0);
    let seen = hooks();
    assert_eq!(events(&seen), ["file_failed", "gave_up"], "{seen:#?}");
    assert_eq!(seen[1]["file"], "INV_1.csv");
    assert!(
        seen[1]
            .to_string()
            .contains("Payment terms N30 are not set up"),
        "{}",
        seen[1]
    );
}
