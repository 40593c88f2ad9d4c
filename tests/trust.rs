//! What erpdrop promises when things around it go wrong: a closed or full output, a
//! full temporary folder or disk, a document whose earlier attempt has no known
//! outcome, keys that make long file names. (SPEC: "Rules every command keeps".)
mod util;

use std::process::Stdio;
use std::time::{Duration, Instant};
use util::{invoices_csv, TestDir, INVOICE_MAPPING};

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

