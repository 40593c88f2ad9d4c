//! What erpdrop promises when things around it go wrong: a closed or full output, a
//! full temporary folder or disk, a document whose earlier attempt has no known
//! outcome, keys that make long file names. (SPEC: "Rules every command keeps".)
mod util;

use std::process::Stdio;
use std::time::{Duration, Instant};
use util::{invoices_csv, TestDir, INVOICE_HEADER, INVOICE_MAPPING};

fn setup() -> TestDir {
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    t
}

fn today() -> String {
    chrono::Local::now().format("%Y-%m-%d").to_string()
}

/// Runs erpdrop with `args`, standard output going to `stdout`.
fn run_into(t: &TestDir, args: &[&str], stdout: Stdio) -> util::Out {
    let o = t
        .spawn_cmd()
        .args(args)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    util::Out {
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
fn run_with_file_size_limit(t: &TestDir, bytes: u64, args: &[&str]) -> util::Out {
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
    util::Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[cfg(unix)]
#[test]
fn a_full_disk_while_writing_a_report_is_exit_3_with_nothing_half_written() {
    let t = setup();
    // 150 invalid invoices whose reports are far larger than the limit, while the
    // ledger's records of them stay small
    let long = "Z".repeat(900);
    let mut csv = String::from(INVOICE_HEADER);
    for i in 0..150 {
        csv.push_str(&format!(
            "INV{i:06};20.11.2026;C1;{long};1,50;ITEM;{long}\n"
        ));
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
    assert_eq!(report["counts"]["invalid"], 150);
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

