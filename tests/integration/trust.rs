//! What erpdrop promises when things around it go wrong: a closed or full output, a
//! full temporary folder or disk, a document whose earlier attempt has no known
//! outcome, keys that make long file names. (SPEC: "Rules every command keeps".)

use crate::util::erp::{Behaviour, FakeErp};
use crate::util::{invoices_csv, TestDir, INVOICE_HEADER, INVOICE_MAPPING};
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

/// Runs erpdrop with `args`, standard output going to `stdout`.
fn run_into(t: &TestDir, args: &[&str], stdout: Stdio) -> crate::util::Out {
    let o = t
        .spawn_cmd()
        .args(args)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    crate::util::Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// A pipe whose reader has already gone.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer.into()
}

fn dev_full() -> Option<Stdio> {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .ok()
        .map(Stdio::from)
}

// ---------------------------------------------------------------- output

#[test]
fn a_closed_output_ends_quietly_with_the_commands_own_exit() {
    let t = setup();
    t.write("drop/inbox/INV_1.csv", invoices_csv(3, 1));
    assert_eq!(t.run(&["run"]).code, 0);
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["check"],
        &["validate", "--json"],
    ] {
        let out = run_into(&t, args, closed_pipe());
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
        assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
    }
    // a run whose reader went away still does its work and says how it went
    t.write(
        "drop/inbox/INV_2.csv",
        invoices_csv(3, 1).replace("INV0", "B0"),
    );
    let out = run_into(&t, &["run"], closed_pipe());
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert_eq!(t.ls(&format!("drop/done/{}", today())).len(), 4);
}

#[test]
fn watch_stops_when_its_reader_is_gone() {
    let t = setup();
    t.write("drop/inbox/INV_1.csv", invoices_csv(2, 1));
    let started = Instant::now();
    let mut child = t
        .spawn_cmd()
        .args(["watch", "--interval", "1s"])
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("watch did not stop after its output was closed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(20));
    // the pass it made is whole
    assert_eq!(t.ls(&format!("drop/done/{}", today())).len(), 2);
}

#[test]
fn an_output_that_cannot_be_written_is_an_error_never_exit_0() {
    let t = setup();
    t.write("drop/inbox/INV_1.csv", invoices_csv(3, 1));
    for args in [&["check"][..], &["validate", "--json"], &["status"]] {
        let Some(full) = dev_full() else { return };
        let out = run_into(&t, args, full);
        assert_eq!(out.code, 3, "{args:?}: {out:?}");
        assert!(
            out.stderr.contains("cannot write the output"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    // validate touched nothing
    assert_eq!(t.ls("drop/inbox"), vec!["INV_1.csv"]);
}

// ------------------------------------------------ temporary space and disk

#[test]
fn an_unusable_temporary_folder_is_not_bad_data_and_reports_are_never_cut_short() {
    let t = setup();
    // 1,500 invalid invoices: more problems than are kept in memory
    let bad = invoices_csv(1500, 1).replace(";C1;", ";C9;");
    t.write("drop/inbox/INV_bad.csv", &bad);
    let nowhere = t.join("no-such-folder");
    let out = t
        .cmd()
        .env("TMPDIR", &nowhere)
        .args(["run"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("temporary file"), "{stderr}");
    assert!(stderr.contains("back in the inbox"), "{stderr}");
    assert_eq!(t.ls("drop/inbox"), vec!["INV_bad.csv"]);
    assert!(t.ls("drop/failed").is_empty(), "{:?}", t.ls("drop/failed"));
    assert!(t.ls("drop/processing").is_empty());

    // a dry run says the same, and writes no partial report
    let out = t
        .cmd()
        .env("TMPDIR", &nowhere)
        .args(["validate", "--report", "rep"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(t.ls("rep").is_empty(), "{:?}", t.ls("rep"));

    // with room again, the report is whole: every one of the 1,500
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    let report = t.read_json("drop/failed/INV_bad.csv.errors.json");
    assert_eq!(report["errors"].as_array().unwrap().len(), 1500);
    assert_eq!(report["counts"]["invalid"], 1500);
    let csv = t.read("drop/failed/INV_bad.csv.errors.csv");
    assert_eq!(csv.lines().count(), 1501);
}

#[test]
fn a_done_report_that_cannot_be_whole_leaves_the_file_in_the_inbox() {
    let t = setup();
    // more accepted documents than the report keeps in memory
    t.write("drop/inbox/INV_1.csv", invoices_csv(3000, 1));
    let out = t
        .cmd()
        .env("TMPDIR", t.join("no-such-folder"))
        .args(["run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(t.ls("drop/inbox"), vec!["INV_1.csv"]);
    assert!(!t.exists(&format!("drop/done/{}", today())));
    // what was delivered stays delivered: the next run sends nothing again
    assert_eq!(t.ls("drop/outbox").len(), 3000);
    let out = t.run(&["run", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let s = out.json();
    assert_eq!(s["files"][0]["counts"]["already_imported"], 3000);
    assert_eq!(s["files"][0]["counts"]["accepted"], 0);
    assert_eq!(t.ls("drop/outbox").len(), 3000);
}

/// erpdrop with writes past `bytes` in any one file failing as on a full disk
/// (RLIMIT_FSIZE, with SIGXFSZ ignored so that the write fails instead of killing).
#[cfg(unix)]
fn run_with_file_size_limit(t: &TestDir, bytes: u64, args: &[&str]) -> crate::util::Out {
    use std::os::unix::process::CommandExt;
    let mut c = t.spawn_cmd();
    c.args(args);
    // SAFETY: between fork and exec only async-signal-safe calls: signal, setrlimit.
    unsafe {
        c.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: bytes as libc::rlim_t,
                rlim_max: bytes as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = c.output().unwrap();
    crate::util::Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[cfg(unix)]
#[test]
fn a_full_disk_while_writing_a_report_is_exit_3_with_nothing_half_written() {
    let t = setup();
    // one invoice of 250 lines with bad amounts: its reports are far larger than the
    // limit, while the ledger's record of it (its first problem) stays small
    let long = "Z".repeat(900);
    let mut csv = String::from(INVOICE_HEADER);
    for _ in 0..250 {
        csv.push_str(&format!("INV000001;20.11.2026;C1;N30;1,50;ITEM;{long}\n"));
    }
    t.write("drop/inbox/INV_1.csv", &csv);
    let out = run_with_file_size_limit(&t, 200 * 1024, &["run"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("back in the inbox"), "{}", out.stderr);
    assert_eq!(t.ls("drop/inbox"), vec!["INV_1.csv"]);
    assert!(t.ls("drop/failed").is_empty(), "{:?}", t.ls("drop/failed"));
    assert!(t.ls("drop/processing").is_empty());
    // and without the limit the same file is what it is: bad data
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    let report = t.read_json("drop/failed/INV_1.csv.errors.json");
    assert_eq!(report["counts"]["invalid"], 1);
    assert_eq!(report["errors"].as_array().unwrap().len(), 250);
}

// ------------------------------------------------------------- outbox names

#[test]
fn a_long_key_in_any_script_makes_a_valid_outbox_name_and_blocks_nothing() {
    let t = setup();
    let key = "請求書".repeat(30); // 90 characters, 270 bytes
    t.write(
        "drop/inbox/INV_1.csv",
        format!("{INVOICE_HEADER}{key};20.11.2026;C1;N30;1,50;X;1,50\n"),
    );
    t.write("drop/inbox/INV_2.csv", invoices_csv(2, 1));
    let mapping = INVOICE_MAPPING.replace("max_length = 10", "max_length = 100");
    t.write("mappings/inv.toml", mapping);
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let names = t.ls("drop/outbox");
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.iter().all(|n| n.len() <= 255), "{names:?}");
    let long = names.iter().find(|n| n.contains("請求書")).unwrap();
    let payload: serde_json::Value =
        serde_json::from_str(&t.read(&format!("drop/outbox/{long}"))).unwrap();
    assert_eq!(payload["number"], key.as_str());
}

// ------------------------------------------------------------------ in doubt

fn http_setup(erp: &FakeErp) -> TestDir {
    let t = setup();
    t.write(
        "erpdrop.toml",
        format!(
            "[scan]\nsettle_seconds = 0\n[target]\nkind = \"http\"\nurl = \"{}/api/{{document}}\"\n\
             timeout_seconds = 5\nconcurrency = 1\nid_pointer = \"/id\"\n\
             retry = {{ attempts = 1, backoff_ms = 10 }}\n",
            erp.base()
        ),
    );
    t
}

const ONE: &str = "INV000000;20.11.2026;C1;N30;1,50;ITEM0;1,50\n";
const ONE_CHANGED: &str = "INV000000;20.11.2026;C1;N30;2,50;ITEM0;2,50\n";

fn ledger_history(t: &TestDir, key: &str) -> Vec<(String, String, Option<String>)> {
    let c = rusqlite::Connection::open(t.join("drop/.erpdrop/ledger.sqlite")).unwrap();
    let mut st = c
        .prepare("SELECT operation, outcome, actor FROM history WHERE key = ?1 ORDER BY seq")
        .unwrap();
    st.query_map([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn other_content_after_an_unanswered_attempt_is_in_doubt_and_never_sent_under_a_new_key() {
    let erp = FakeErp::start(Behaviour {
        drop_next: 1, // the request reaches the ERP; the answer never comes back
        ..Behaviour::default()
    });
    let t = http_setup(&erp);
    t.write("drop/inbox/INV_1.csv", format!("{INVOICE_HEADER}{ONE}"));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(erp.request_count(), 1);
    // the export is corrected and dropped again
    t.write(
        "drop/inbox/INV_1.csv",
        format!("{INVOICE_HEADER}{ONE_CHANGED}"),
    );
    let out = t.run(&["run", "--json"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(erp.request_count(), 1, "nothing sent while in doubt");
    let report = t.read_json("drop/failed/INV_1.csv.errors.json");
    let row = &report["errors"][0];
    assert_eq!(row["code"], "in_doubt");
    assert_eq!(row["document"], "INV000000");
    let msg = row["message"].as_str().unwrap();
    assert!(
        msg.contains("erpdrop resolve INV000000 --mapping inv"),
        "{msg}"
    );
    // a dry run sees it too
    let out = t.run(&["validate", "drop/failed/INV_1.csv", "--json"]);
    assert_eq!(out.json()["files"][0]["errors"][0]["code"], "in_doubt");
    // status lists it, with what to do
    let st = t.run(&["status", "--json"]).json();
    let doc = &st["failed_documents"][0];
    assert_eq!(doc["state"], "in_doubt");
    assert!(doc["last_error"].as_str().unwrap().contains("resolve"));
    let text = t.run(&["status"]).stdout;
    assert!(text.contains("in_doubt"), "{text}");

    // the operator looks in the ERP: it does not have it
    let out = t.run(&["resolve", "INV000000", "--not-sent", "--by", "alice"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("not sent"), "{}", out.stdout);
    let out = t.run(&["reprocess", "--all"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(erp.created(), (1, 1));
    let reqs = erp.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[1].body.contains("\"2.50\""), "{}", reqs[1].body);
    assert_ne!(
        reqs[0].header("Idempotency-Key"),
        reqs[1].header("Idempotency-Key"),
        "other content goes under its own key, once the first is known not sent"
    );
    // the history keeps each attempt and the decision between them
    assert_eq!(
        ledger_history(&t, "INV000000"),
        vec![
            ("create".into(), "unknown".into(), None),
            ("resolve".into(), "not_sent".into(), Some("alice".into())),
            ("create".into(), "accepted".into(), None),
        ]
    );
}

#[cfg(unix)]
#[test]
fn a_run_killed_while_the_erp_was_creating_leaves_it_in_doubt_until_resolved() {
    // the run is killed as soon as the request arrives: far within the ERP's delay
    let erp = FakeErp::start(Behaviour {
        delay: Duration::from_millis(400),
        ..Behaviour::default()
    });
    let t = http_setup(&erp);
    t.write("drop/inbox/INV_1.csv", format!("{INVOICE_HEADER}{ONE}"));
    let mut child = t
        .spawn_cmd()
        .args(["-q", "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while erp.request_count() < 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL while the ERP works on it
    child.wait().unwrap();
    while erp.created().0 < 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(erp.created(), (1, 1), "the ERP created it after all");
    // the source system corrects it and drops it again
    std::fs::remove_file(t.join("drop/processing/INV_1.csv")).unwrap();
    t.write(
        "drop/inbox/INV_1.csv",
        format!("{INVOICE_HEADER}{ONE_CHANGED}"),
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(erp.request_count(), 1, "not sent a second time");
    assert_eq!(
        t.read_json("drop/failed/INV_1.csv.errors.json")["errors"][0]["code"],
        "in_doubt"
    );
    // only a document in doubt can be resolved, and only one that exists
    assert_eq!(t.run(&["resolve", "NOPE", "--accepted"]).code, 2);
    // the ERP has it, as id 1001
    let out = t.run(&[
        "resolve",
        "INV000000",
        "--mapping",
        "inv",
        "--accepted",
        "--id",
        "1001",
        "--by",
        "bob",
        "--json",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    assert_eq!(
        (v["state"].as_str(), v["id"].as_str()),
        (Some("accepted"), Some("1001"))
    );
    assert_eq!(t.run(&["resolve", "INV000000", "--accepted"]).code, 2);
    let st = t.run(&["status", "--json"]).json();
    assert!(st["failed_documents"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["document"] != "INV000000"));
    // the corrected file is now a conflict with what the ERP has: never a second invoice
    let out = t.run(&["reprocess", "--all"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        t.read_json("drop/failed/INV_1.csv.errors.json")["errors"][0]["code"],
        "conflict"
    );
    assert_eq!(erp.request_count(), 1);
    assert_eq!(erp.created(), (1, 1));
    assert_eq!(
        ledger_history(&t, "INV000000"),
        vec![("resolve".into(), "accepted".into(), Some("bob".into()))]
    );
}

#[test]
fn documents_the_target_never_got_are_not_in_doubt() {
    // the ERP answers 503 (it is down, nothing was taken): corrected content simply
    // goes next time, under its own key
    let erp = FakeErp::start(Behaviour {
        down: true,
        ..Behaviour::default()
    });
    let t = http_setup(&erp);
    t.write("drop/inbox/INV_1.csv", invoices_csv(20, 1));
    assert_eq!(t.run(&["run"]).code, 3);
    erp.set(|b| b.down = false);
    t.write(
        "drop/inbox/INV_1.csv",
        invoices_csv(20, 1).replace(";ITEM0;", ";ITEM9;"),
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(erp.created(), (20, 1));
    let st = t.run(&["status", "--json"]).json();
    assert_eq!(st["failed_documents"].as_array().unwrap().len(), 0, "{st}");
}
