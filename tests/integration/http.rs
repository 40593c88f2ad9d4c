//! The HTTP target against a loopback ERP (`util/erp.rs`): partial rejection and
//! reprocess, ERP down, transient errors, slow ERP with concurrency, dropped
//! connections, a crash in mid-file, credentials and headers.

use crate::util::erp::{Behaviour, FakeErp};
use crate::util::{invoices_csv, TestDir, INVOICE_HEADER, INVOICE_MAPPING};
use std::process::Stdio;
use std::time::{Duration, Instant};

const TOKEN: &str = "s3cret-t0ken-value";

fn setup(erp: &FakeErp, extra: &str) -> TestDir {
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
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
headers = {{ Accept = "application/json", X-Context = {{ base64url = '{{"company":1}}' }} }}
timeout_seconds = 5
id_pointer = "/id"
{extra}
"#,
            erp.base()
        ),
    );
    t
}

fn run(t: &TestDir, args: &[&str]) -> crate::util::Out {
    let o = t.cmd().env("ERP_TOKEN", TOKEN).args(args).output().unwrap();
    crate::util::Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn today() -> String {
    chrono::Local::now().format("%Y-%m-%d").to_string()
}

#[test]
fn partial_rejection_then_reprocess_sends_only_the_rejected() {
    let erp = FakeErp::start(Behaviour {
        token: Some(TOKEN.into()),
        reject: (0..10).map(|i| format!("INV{:06}", i * 150)).collect(),
        ..Behaviour::default()
    });
    let t = setup(
        &erp,
        "concurrency = 4\nretry = { attempts = 2, backoff_ms = 10 }",
    );
    t.write("drop/inbox/INV_big.csv", invoices_csv(2000, 1));
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(erp.created(), (1990, 1));
    let report = t.read_json("drop/failed/INV_big.csv.errors.json");
    assert_eq!(report["counts"]["accepted"], 1990);
    assert_eq!(report["counts"]["rejected"], 10);
    let rows = report["errors"].as_array().unwrap();
    assert_eq!(rows.len(), 10);
    let mut keys: Vec<&str> = rows
        .iter()
        .map(|r| r["document"].as_str().unwrap())
        .collect();
    keys.sort();
    assert_eq!(keys[0], "INV000000");
    for r in rows {
        assert_eq!(r["stage"], "submit");
        assert_eq!(r["code"], "rejected");
        assert_eq!(r["status"], 400);
        let key = r["document"].as_str().unwrap();
        assert!(
            r["message"]
                .as_str()
                .unwrap()
                .contains(&format!("Unknown GL account on invoice {key}")),
            "{r}"
        );
        let line = r["line"].as_u64().unwrap();
        assert_eq!(line, key[3..].parse::<u64>().unwrap() + 2);
    }
    // every request carried the credentials, the headers and an idempotency key
    let reqs = erp.requests();
    assert_eq!(reqs.len(), 2000);
    assert!(reqs.iter().all(|r| r.path == "/api/sales_invoice"));
    assert!(reqs
        .iter()
        .all(|r| r.header("X-Context") == Some("eyJjb21wYW55IjoxfQ==")));
    assert!(reqs
        .iter()
        .all(|r| r.header("Idempotency-Key").is_some_and(|k| k.len() == 64)));
    // the secret appears nowhere
    let status = run(&t, &["status", "--json"]);
    for text in [
        &out.stdout,
        &out.stderr,
        &status.stdout,
        &t.read("drop/failed/INV_big.csv.errors.csv"),
    ] {
        assert!(!text.contains(TOKEN));
    }

    // the ERP is fixed; reprocess sends only the 10
    erp.set(|b| b.reject.clear());
    let out = run(&t, &["reprocess", "--all", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(erp.request_count(), 2010);
    assert_eq!(erp.created(), (2000, 1));
    let s = out.json();
    assert_eq!(s["files"][0]["counts"]["accepted"], 10);
    assert_eq!(s["files"][0]["counts"]["already_imported"], 1990);
    let done = t.read_json(&format!("drop/done/{}/INV_big.csv.report.json", today()));
    let docs = done["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 10);
    assert!(docs
        .iter()
        .all(|d| d["id"].as_str().unwrap().parse::<u64>().unwrap() > 1000));
}

#[test]
fn erp_down_leaves_the_file_in_the_inbox_and_exits_3() {
    let erp = FakeErp::start(Behaviour {
        down: true,
        ..Behaviour::default()
    });
    let t = setup(
        &erp,
        "concurrency = 4\nretry = { attempts = 3, backoff_ms = 10, max_backoff_ms = 50 }",
    );
    t.write("drop/inbox/INV_1.csv", invoices_csv(50, 2));
    t.write(
        "drop/inbox/INV_2.csv",
        invoices_csv(5, 1).replace("INV0", "B0"),
    );
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(t.ls("drop/inbox"), vec!["INV_1.csv", "INV_2.csv"]);
    assert!(t.ls("drop/failed").is_empty());
    assert!(t.ls("drop/processing").is_empty());
    // no hammering: each of at most `concurrency` documents tried `attempts` times
    assert!(
        erp.request_count() <= 3 * 4,
        "{} requests",
        erp.request_count()
    );
    assert!(erp.request_count() >= 3);
    assert!(out.stderr.contains("unavailable"), "{}", out.stderr);
    let st = run(&t, &["status"]);
    assert!(
        st.stdout.contains("target was unavailable"),
        "{}",
        st.stdout
    );

    erp.set(|b| b.down = false);
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(erp.created(), (55, 1));
    assert_eq!(t.ls(&format!("drop/done/{}", today())).len(), 4);
}

#[test]
fn transient_errors_and_dropped_connections_are_retried() {
    let erp = FakeErp::start(Behaviour {
        fail_next: 3,
        retry_after: Some(0),
        drop_next: 0,
        ..Behaviour::default()
    });
    let t = setup(
        &erp,
        "concurrency = 1\nretry = { attempts = 5, backoff_ms = 10 }",
    );
    t.write("drop/inbox/INV_1.csv", invoices_csv(5, 1));
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(erp.created(), (5, 1));
    assert_eq!(erp.request_count(), 8);

    erp.set(|b| b.drop_next = 2);
    t.write(
        "drop/inbox/INV_2.csv",
        invoices_csv(3, 1).replace("INV0", "C0"),
    );
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(erp.created(), (8, 1));
}

#[test]
fn an_ok_answer_with_an_error_body_is_a_rejection() {
    let erp = FakeErp::start(Behaviour {
        ok_but_error: ["INV000001".to_string()].into(),
        ..Behaviour::default()
    });
    let t = setup(&erp, "error_pointer = \"/error/message\"");
    t.write("drop/inbox/INV_1.csv", invoices_csv(3, 1));
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    let r = t.read_json("drop/failed/INV_1.csv.errors.json");
    assert_eq!(r["errors"][0]["document"], "INV000001");
    assert_eq!(r["errors"][0]["status"], 200);
    assert!(r["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("Customer on hold for INV000001"));
    assert_eq!(r["counts"]["accepted"], 2);
}

#[test]
fn a_slow_erp_is_fed_concurrently_up_to_the_limit() {
    let erp = FakeErp::start(Behaviour {
        delay: Duration::from_millis(50),
        ..Behaviour::default()
    });
    let t = setup(&erp, "concurrency = 8");
    t.write("drop/inbox/INV_1.csv", invoices_csv(64, 1));
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(erp.created(), (64, 1));
    let max = erp.max_in_flight();
    assert!((5..=8).contains(&max), "max in flight {max}");
}

#[test]
fn a_timeout_counts_as_unavailable() {
    let erp = FakeErp::start(Behaviour {
        delay: Duration::from_millis(2500),
        ..Behaviour::default()
    });
    let t = setup(
        &erp,
        "concurrency = 1\nretry = { attempts = 2, backoff_ms = 10 }",
    );
    let cfg = t
        .read("erpdrop.toml")
        .replace("timeout_seconds = 5", "timeout_seconds = 1");
    t.write("erpdrop.toml", cfg);
    t.write("drop/inbox/INV_1.csv", invoices_csv(2, 1));
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(t.ls("drop/inbox"), vec!["INV_1.csv"]);
    assert!(
        out.stderr.to_lowercase().contains("timed out") || out.stderr.contains("timeout"),
        "{}",
        out.stderr
    );
}

#[cfg(unix)]
#[test]
fn a_crash_in_mid_file_creates_no_document_twice() {
    let erp = FakeErp::start(Behaviour {
        delay: Duration::from_millis(5),
        ..Behaviour::default()
    });
    let t = setup(&erp, "concurrency = 4");
    t.write("drop/inbox/INV_1.csv", invoices_csv(600, 1));
    let mut child = t
        .spawn_cmd()
        .env("ERP_TOKEN", TOKEN)
        .args(["-q", "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while erp.created().0 < 100 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(erp.created().0 < 600);
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        erp.created(),
        (600, 1),
        "every invoice created exactly once"
    );
}

#[test]
fn missing_secret_is_a_config_error_that_names_the_variable() {
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(&erp, "");
    let o = t.cmd().env_remove("ERP_TOKEN").arg("run").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("ERP_TOKEN"), "{err}");
    assert!(err.contains("target.auth.bearer_env"), "{err}");
    assert_eq!(erp.request_count(), 0);
}

#[test]
fn check_reaches_the_target_and_says_whether_credentials_work() {
    let erp = FakeErp::start(Behaviour {
        token: Some(TOKEN.into()),
        ..Behaviour::default()
    });
    let t = setup(&erp, "health_url = \"\"");
    let cfg = t.read("erpdrop.toml").replace(
        "health_url = \"\"",
        &format!("health_url = \"{}/health\"", erp.base()),
    );
    t.write("erpdrop.toml", cfg);
    let ok = run(&t, &["check"]);
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(ok.stdout.contains("answered 200"), "{}", ok.stdout);
    let bad = t
        .cmd()
        .env("ERP_TOKEN", "wrong")
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(3));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(!err.contains("wrong"), "{err}");
    // an ERP that answers its health URL with a server error is not usable: exit 3, as
    // a run would find it
    erp.set(|b| {
        b.down = true;
        b.down_status = Some(500);
    });
    let down = run(&t, &["check"]);
    assert_eq!(down.code, 3, "{down:?}");
    assert!(down.stderr.contains("answered HTTP 500"), "{}", down.stderr);
    drop(erp);
}

#[test]
fn one_invoice_keeps_its_lines_and_header_in_the_request() {
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(&erp, "");
    t.write(
        "drop/inbox/INV_1.csv",
        format!(
            "{INVOICE_HEADER}A1;20.11.2026;C1;N30;3,00;X;1,50\nA1;20.11.2026;C1;N30;3,00;Y;1,50\n"
        ),
    );
    assert_eq!(run(&t, &["run"]).code, 0);
    let body: serde_json::Value = serde_json::from_str(&erp.requests()[0].body).unwrap();
    assert_eq!(body["number"], "A1");
    assert_eq!(body["customer"], "CUST-1");
    assert_eq!(body["date"], "2026-11-20");
    assert_eq!(body["total"], "3.00");
    assert_eq!(body["lines"][1]["item"], "Y");
    assert_eq!(
        erp.requests()[0].header("Content-Type"),
        Some("application/json")
    );
}

#[cfg(unix)]
fn signal(child: &std::process::Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[cfg(unix)]
fn wait_created(erp: &FakeErp, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while erp.created().0 < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(unix)]
#[test]
fn sigterm_lets_the_file_in_hand_finish_and_status_reads_meanwhile() {
    let erp = FakeErp::start(Behaviour {
        delay: Duration::from_millis(40),
        ..Behaviour::default()
    });
    let t = setup(&erp, "concurrency = 1");
    t.write("drop/inbox/INV_1.csv", invoices_csv(30, 1));
    t.write(
        "drop/inbox/INV_2.csv",
        invoices_csv(3, 1).replace("INV0", "B0"),
    );
    let child = t
        .spawn_cmd()
        .env("ERP_TOKEN", TOKEN)
        .args(["watch", "--interval", "1h"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_created(&erp, 3);
    // the ledger does not block a reader while the run writes it
    let started = Instant::now();
    let st = run(&t, &["status", "--json"]);
    assert_eq!(st.code, 0, "{st:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    signal(&child, "-TERM");
    // the signal came with the file in hand: the rest of it need not be slow
    erp.set(|b| b.delay = Duration::ZERO);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    // the file in hand finished; the next file was not started
    assert_eq!(erp.created(), (30, 1));
    assert_eq!(
        t.ls(&format!("drop/done/{}", today())),
        vec!["INV_1.csv", "INV_1.csv.report.json"]
    );
    assert_eq!(t.ls("drop/inbox"), vec!["INV_2.csv"]);
}

#[cfg(unix)]
#[test]
fn a_second_signal_stops_after_the_document_in_flight() {
    let erp = FakeErp::start(Behaviour {
        delay: Duration::from_millis(40),
        ..Behaviour::default()
    });
    let t = setup(&erp, "concurrency = 1");
    t.write("drop/inbox/INV_1.csv", invoices_csv(200, 1));
    let child = t
        .spawn_cmd()
        .env("ERP_TOKEN", TOKEN)
        .args(["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_created(&erp, 3);
    signal(&child, "-INT");
    std::thread::sleep(Duration::from_millis(100));
    signal(&child, "-INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let (created, _) = erp.created();
    assert!(created < 200, "stopped early: {created}");
    assert_eq!(t.ls("drop/inbox"), vec!["INV_1.csv"]);
    assert!(t.ls("drop/processing").is_empty());
    // the next run sends the rest: no need to wait 40 ms for each
    erp.set(|b| b.delay = Duration::ZERO);
    let out = run(&t, &["run", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(erp.created(), (200, 1));
    assert_eq!(
        out.json()["files"][0]["counts"]["already_imported"],
        created as u64
    );
}

#[test]
fn verbose_logs_never_show_credentials_or_the_http_client_internals() {
    // A custom credential header is not one the HTTP client knows to hide; at -vv its
    // debug output would print every request's headers. erpdrop's own debug output is
    // there, the library's is not (RUST_LOG can still ask for it explicitly).
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(
        &erp,
        "concurrency = 2\n[target.headers]\nX-Api-Key = { env = \"ERP_KEY\" }\n",
    );
    let cfg = t
        .read("erpdrop.toml")
        .replace("headers = { Accept", "# headers = { Accept");
    t.write("erpdrop.toml", cfg);
    t.write("drop/inbox/INV_1.csv", invoices_csv(20, 2));
    for flag in ["-v", "-vv"] {
        let o = t
            .cmd()
            .env("ERP_TOKEN", TOKEN)
            .env("ERP_KEY", "k3y-that-must-stay-secret")
            .env_remove("RUST_LOG")
            .args([flag, "run"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{err}");
        assert!(!err.contains("k3y-that-must-stay-secret"), "{err}");
        assert!(!err.contains(TOKEN), "{err}");
        assert!(!err.contains("writing prelude"), "{err}");
        if flag == "-v" {
            assert!(err.contains("submitted"), "{err}");
            assert!(err.contains("accepted=20"), "{err}");
        }
        t.write("drop/inbox/INV_1.csv", invoices_csv(20, 2));
    }
    let seen = erp.requests();
    assert_eq!(
        seen[0].header("X-Api-Key"),
        Some("k3y-that-must-stay-secret")
    );
}

#[test]
fn an_accepted_create_without_an_id_at_id_pointer_is_said_at_once() {
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(&erp, "");
    let cfg = t
        .read("erpdrop.toml")
        .replace("id_pointer = \"/id\"", "id_pointer = \"/data/id\"");
    t.write("erpdrop.toml", cfg);
    t.write("drop/inbox/INV_1.csv", invoices_csv(2, 1));
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(erp.created(), (2, 1), "a 2xx is delivery");
    assert!(
        out.stderr
            .contains("its answer has no id at /data/id (target.id_pointer)"),
        "{}",
        out.stderr
    );
}
