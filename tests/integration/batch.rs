//! Envelopes and batches against the loopback ERP (`util/erp.rs`): JSON-RPC bodies with
//! their ids and errors read back, documents in batches of `batch.size`, all-or-nothing
//! refusals split until each bad document is rejected alone, retries of a whole batch
//! under one idempotency key, and a run killed while a batch is at the ERP.

use crate::util::erp::{Behaviour, FakeErp};
use crate::util::{invoices_csv, Out, TestDir, INVOICE_MAPPING};
use std::collections::BTreeMap;

fn setup(erp: &FakeErp, path: &str, extra: &str) -> TestDir {
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
url = "{}{path}"
timeout_seconds = 5
retry = {{ attempts = 3, backoff_ms = 10 }}
{extra}
"#,
            erp.base()
        ),
    );
    t
}

/// The ERP ids the ledger holds for a file's documents, by key.
fn ledger_ids(t: &TestDir, file: &str) -> BTreeMap<String, String> {
    let h = t.run(&["history", "--file", file, "--json"]).json();
    h.as_array()
        .unwrap()
        .iter()
        .filter(|op| op["outcome"] == "accepted")
        .map(|op| {
            (
                op["key"].as_str().unwrap().to_string(),
                op["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The rows of a failed file's report, by document.
fn rows(t: &TestDir, file: &str) -> BTreeMap<String, serde_json::Value> {
    let r = t.read_json(&format!("drop/failed/{file}.errors.json"));
    r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["document"].as_str().unwrap().to_string(), e.clone()))
        .collect()
}

fn key(i: usize) -> String {
    format!("INV{i:06}")
}

fn run(t: &TestDir, args: &[&str]) -> Out {
    t.run(args)
}

#[test]
fn a_json_rpc_envelope_carries_each_document_and_its_answer_is_read_back() {
    let erp = FakeErp::start(Behaviour {
        reject: [key(1)].into(),
        ..Behaviour::default()
    });
    let t = setup(
        &erp,
        "/rpc/",
        r#"body = '{"jsonrpc": "2.0", "id": 1, "method": "model.account.invoice.create", "params": [[{payload}], {"company": 1}]}'
id_pointer = "/result/0"
error_pointer = "/error/1/0"
concurrency = 1"#,
    );
    t.write("drop/inbox/INV_1.csv", invoices_csv(3, 2));
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    let reqs = erp.requests();
    assert_eq!(reqs.len(), 3);
    for r in &reqs {
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["method"], "model.account.invoice.create");
        assert_eq!(body["params"][1], serde_json::json!({"company": 1}));
        let docs = body["params"][0].as_array().unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(
            docs[0]["lines"].as_array().unwrap().len(),
            2,
            "the payload whole"
        );
        assert_eq!(r.header("Content-Type"), Some("application/json"));
    }
    assert_eq!(erp.created(), (2, 1));
    assert_eq!(erp.batch_sizes(), [1, 1, 1], "one document a request");
    assert_eq!(erp.times_created(&key(1)), 0);
    // the ids from /result/0 in the ledger, the error from /error/1/0 in the report
    let ids = ledger_ids(&t, "INV_1.csv");
    assert_eq!(ids.keys().collect::<Vec<_>>(), [&key(0), &key(2)]);
    for (k, id) in &ids {
        assert_eq!(erp.id_of(k).unwrap().to_string(), *id);
    }
    let rows = rows(&t, "INV_1.csv");
    let row = &rows[&key(1)];
    assert_eq!(row["code"], "rejected");
    assert_eq!(row["status"], 200);
    assert!(
        row["message"]
            .as_str()
            .unwrap()
            .contains(": Unknown GL account on invoice INV000001"),
        "{row}"
    );
}

#[test]
fn an_xml_payload_goes_into_a_soap_envelope_without_its_declaration() {
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(
        &erp,
        "/soap",
        r#"format = "xml"
headers = { Content-Type = "text/xml; charset=utf-8", SOAPAction = "CreateInvoice" }
body = '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>{payload}</s:Body></s:Envelope>'"#,
    );
    t.write("drop/inbox/INV_1.csv", invoices_csv(1, 1));
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let reqs = erp.requests();
    assert_eq!(reqs.len(), 1);
    let body = &reqs[0].body;
    assert!(
        body.starts_with(r#"<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><"#),
        "{body}"
    );
    assert_eq!(body.matches("<?xml").count(), 1, "{body}");
    assert!(body.contains("<number>INV000000</number>"), "{body}");
    assert!(body.ends_with("</s:Body></s:Envelope>"), "{body}");
    assert_eq!(
        reqs[0].header("Content-Type"),
        Some("text/xml; charset=utf-8")
    );
}

/// The documents (by number) of a batch request, in order.
fn numbers(body: &str, rpc: bool) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    let docs = if rpc { &v["params"][0] } else { &v };
    docs.as_array()
        .unwrap()
        .iter()
        .map(|d| d["number"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_hundred_documents_go_in_four_batches_of_25_with_their_ids_in_order() {
    let erp = FakeErp::start(Behaviour {
        delay: std::time::Duration::from_millis(100),
        ..Behaviour::default()
    });
    let t = setup(
        &erp,
        "/batch/{document}",
        r#"concurrency = 2
id_pointer = "/id"
batch = { size = 25, ids_pointer = "/ids" }"#,
    );
    t.write("drop/inbox/INV_1.csv", invoices_csv(100, 2));
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let reqs = erp.requests();
    assert_eq!(reqs.len(), 4, "{:?}", erp.batch_sizes());
    assert_eq!(erp.max_in_flight(), 2, "two workers, a batch each");
    let mut sent: Vec<Vec<String>> = reqs
        .iter()
        .map(|r| {
            assert_eq!(r.path, "/batch/sales_invoice");
            assert_eq!(r.header("Content-Type"), Some("application/json"));
            assert_eq!(r.header("Idempotency-Key").map(str::len), Some(64));
            numbers(&r.body, false)
        })
        .collect();
    sent.sort();
    // four stretches of the file, each in its order
    for (b, docs) in sent.iter().enumerate() {
        assert_eq!(*docs, (b * 25..b * 25 + 25).map(key).collect::<Vec<_>>());
    }
    assert_eq!(erp.created(), (100, 1));
    // each document's own id, in the report and in the ledger
    let done = t.read_json(&format!(
        "drop/done/{}/INV_1.csv.report.json",
        chrono::Local::now().format("%Y-%m-%d")
    ));
    let docs = done["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 100);
    let ledger = ledger_ids(&t, "INV_1.csv");
    assert_eq!(ledger.len(), 100);
    for d in docs {
        let k = d["document"].as_str().unwrap();
        let id = erp.id_of(k).unwrap().to_string();
        assert_eq!(d["id"], id.as_str(), "{d}");
        assert_eq!(ledger[k], id);
    }
}

/// A file of `n` invoices where those numbered in `bad` are refused, sent in batches
/// of `size` to a JSON-RPC endpoint that refuses a list whole (as Tryton does): the
/// requests, and the report's rows.
fn bisect(n: usize, size: usize, bad: &[usize]) -> (FakeErp, TestDir) {
    let erp = FakeErp::start(Behaviour {
        reject: bad.iter().map(|&i| key(i)).collect(),
        ..Behaviour::default()
    });
    let t = setup(
        &erp,
        "/rpc/",
        &format!(
            r#"concurrency = 2
error_pointer = "/error/1/0"
batch = {{ size = {size}, body = '{{"id": 1, "method": "model.account.invoice.create", "params": [{{payloads}}, {{}}]}}', ids_pointer = "/result", all_or_nothing = true }}"#
        ),
    );
    t.write("drop/inbox/INV_1.csv", invoices_csv(n, 1));
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    // every good one created once, no bad one
    assert_eq!(erp.created(), (n - bad.len(), 1));
    for &i in bad {
        assert_eq!(erp.times_created(&key(i)), 0);
    }
    let rows = rows(&t, "INV_1.csv");
    assert_eq!(
        rows.keys().cloned().collect::<Vec<_>>(),
        bad.iter().map(|&i| key(i)).collect::<Vec<_>>()
    );
    for (k, row) in &rows {
        assert_eq!(row["code"], "rejected");
        assert_eq!(row["status"], 200);
        let msg = row["message"].as_str().unwrap();
        assert!(
            msg.contains(&format!("Unknown GL account on invoice {k}")),
            "{row}"
        );
    }
    let report = t.read_json("drop/failed/INV_1.csv.errors.json");
    assert_eq!(report["counts"]["accepted"], (n - bad.len()) as u64);
    assert_eq!(report["counts"]["rejected"], bad.len() as u64);
    assert_eq!(ledger_ids(&t, "INV_1.csv").len(), n - bad.len());
    (erp, t)
}

#[test]
fn a_refused_batch_is_split_until_its_one_bad_document_is_alone() {
    let (erp, _t) = bisect(50, 50, &[37]);
    // 50 -> 25 -> 13 -> 7 -> 4 -> 2 -> 1: one refused and one accepted half a level
    let sizes = erp.batch_sizes();
    assert!(sizes.len() <= 13, "{sizes:?}");
    assert_eq!(sizes[0], 50);
    assert!(sizes.contains(&1), "the bad one alone: {sizes:?}");
}

#[test]
fn three_bad_documents_in_a_hundred_are_each_rejected_with_their_own_message() {
    let (erp, _t) = bisect(100, 50, &[3, 4, 71]);
    let sizes = erp.batch_sizes();
    assert!(sizes.len() <= 3 * 13, "{sizes:?}");
    assert_eq!(sizes.iter().filter(|&&s| s == 50).count(), 2, "{sizes:?}");
}

#[test]
fn a_batch_that_meets_a_503_is_sent_again_whole_with_the_same_key() {
    let erp = FakeErp::start(Behaviour {
        fail_next: 1,
        ..Behaviour::default()
    });
    let t = setup(
        &erp,
        "/batch",
        r#"concurrency = 1
batch = { size = 10, ids_pointer = "/ids" }"#,
    );
    t.write("drop/inbox/INV_1.csv", invoices_csv(10, 1));
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let reqs = erp.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].body, reqs[1].body);
    assert_eq!(
        reqs[0].header("Idempotency-Key"),
        reqs[1].header("Idempotency-Key")
    );
    assert_eq!(erp.created(), (10, 1));
    assert_eq!(ledger_ids(&t, "INV_1.csv").len(), 10);
}

#[cfg(unix)]
#[test]
fn a_run_killed_while_a_batch_is_at_the_erp_resends_it_with_the_same_key() {
    use std::time::{Duration, Instant};
    let erp = FakeErp::start(Behaviour {
        delay: Duration::from_millis(600),
        ..Behaviour::default()
    });
    let t = setup(
        &erp,
        "/batch",
        r#"concurrency = 1
batch = { size = 10, ids_pointer = "/ids" }"#,
    );
    t.write("drop/inbox/INV_1.csv", invoices_csv(20, 1));
    let mut child = t
        .spawn_cmd()
        .args(["-q", "run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while erp.request_count() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    // the first batch is at the ERP, which takes it but answers too late
    child.kill().unwrap();
    child.wait().unwrap();
    while erp.created().0 < 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(erp.created(), (10, 1));
    erp.set(|b| b.delay = Duration::ZERO);
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let reqs = erp.requests();
    assert_eq!(reqs.len(), 3, "{:?}", erp.batch_sizes());
    assert_eq!(reqs[1].body, reqs[0].body, "the batch in flight, resent");
    assert_eq!(
        reqs[1].header("Idempotency-Key"),
        reqs[0].header("Idempotency-Key")
    );
    assert_eq!(erp.created(), (20, 1), "no document created twice");
    let ids = ledger_ids(&t, "INV_1.csv");
    assert_eq!(ids.len(), 20);
    for (k, id) in &ids {
        assert_eq!(erp.id_of(k).unwrap().to_string(), *id);
    }
}

/// A batch whose answer does not say which documents the ERP created: every document
/// of it is in doubt, in the report and the ledger, and no run sends it again until
/// an operator settles it.
fn in_doubt_until_resolved(b: Behaviour, batch: &str, status: u64, says: &str) {
    let erp = FakeErp::start(b);
    let t = setup(&erp, "/batch", &format!("concurrency = 1\nbatch = {batch}"));
    t.write("drop/inbox/INV_1.csv", invoices_csv(4, 1));
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(erp.request_count(), 1, "never split nor resent");
    let first = rows(&t, "INV_1.csv");
    assert_eq!(first.len(), 4, "{first:?}");
    for row in first.values() {
        assert_eq!(row["stage"], "submit");
        assert_eq!(row["code"], "in_doubt");
        assert_eq!(row["status"], status);
        let msg = row["message"].as_str().unwrap();
        assert!(
            msg.contains(says) && msg.contains("erpdrop resolve"),
            "{row}"
        );
    }
    let report = t.read_json("drop/failed/INV_1.csv.errors.json");
    assert_eq!(report["counts"]["accepted"], 0);
    let st = run(&t, &["status", "--json"]).json();
    let states: Vec<&str> = st["failed_documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["in_doubt"; 4], "{st}");
    // the ERP works again: reprocessing sends none of them, twice over
    erp.set(|b| {
        b.reject.clear();
        b.batch_short_ids = false;
    });
    for _ in 0..2 {
        let out = run(&t, &["reprocess", "--all"]);
        assert_eq!(out.code, 1, "{out:?}");
        assert_eq!(erp.request_count(), 1, "nothing sent while in doubt");
        let again = rows(&t, "INV_1.csv");
        assert_eq!(again.len(), 4);
        for row in again.values() {
            assert_eq!(row["code"], "in_doubt");
            let msg = row["message"].as_str().unwrap();
            assert!(msg.contains(says), "the ERP's answer is kept: {row}");
        }
    }
    // an operator looked: the ERP has INV000000 and not the rest
    assert_eq!(
        run(&t, &["resolve", &key(0), "--accepted", "--id", "77"]).code,
        0
    );
    for i in 1..4 {
        assert_eq!(run(&t, &["resolve", &key(i), "--not-sent"]).code, 0);
    }
    let out = run(&t, &["reprocess", "--all", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(erp.batch_sizes()[1..], [3]);
}

#[test]
fn a_refused_batch_that_is_not_all_or_nothing_leaves_its_documents_in_doubt() {
    in_doubt_until_resolved(
        Behaviour {
            reject: [key(2)].into(),
            batch_partial: true,
            ..Behaviour::default()
        },
        r#"{ size = 10, ids_pointer = "/ids" }"#,
        400,
        "the ERP refused the batch of 4 documents it was in (Unknown GL account on invoice INV000002)",
    );
}

#[test]
fn an_answer_with_fewer_ids_than_documents_leaves_them_in_doubt() {
    in_doubt_until_resolved(
        Behaviour {
            batch_short_ids: true,
            ..Behaviour::default()
        },
        r#"{ size = 10, ids_pointer = "/ids", all_or_nothing = true }"#,
        201,
        "the ERP answered 3 ids for the batch of 4 documents it was in",
    );
}

#[test]
fn a_batch_cannot_go_to_a_url_with_a_key() {
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(&erp, "/batch/{key}", "batch = { size = 10 }");
    let out = run(&t, &["check"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("key target.batch: ") && out.stderr.contains("cannot have {key}"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_batch_refused_for_its_credentials_or_redirected_stops_the_run_and_shows_no_secret() {
    let secret = "wr0ng-s3cret-token";
    let erp = FakeErp::start(Behaviour {
        token: Some("the-right-one".into()),
        echo_headers: true,
        ..Behaviour::default()
    });
    let t = setup(
        &erp,
        "/batch",
        r#"concurrency = 2
auth = { bearer_env = "ERP_TOKEN" }
batch = { size = 10, ids_pointer = "/ids", all_or_nothing = true }"#,
    );
    t.write("drop/inbox/INV_1.csv", invoices_csv(40, 1));
    let o = t
        .cmd()
        .env("ERP_TOKEN", secret)
        .args(["-vv", "run"])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("HTTP 401") && stderr.contains("refused the credentials"),
        "{stderr}"
    );
    assert!(
        erp.request_count() <= 2,
        "no retry storm, no split: {}",
        erp.request_count()
    );
    assert!(t.exists("drop/inbox/INV_1.csv"));
    let st = t
        .cmd()
        .env("ERP_TOKEN", secret)
        .args(["status", "--json"])
        .output()
        .unwrap();
    for text in [&stdout, &stderr, &String::from_utf8_lossy(&st.stdout)] {
        assert!(!text.contains(secret), "{text}");
    }
    // a redirect: the target is unavailable, the message names where it points
    erp.set(|b| {
        b.token = None;
        b.redirect = Some((308, "https://erp.example/batch".into()));
    });
    let out = t
        .cmd()
        .env("ERP_TOKEN", secret)
        .arg("run")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("redirects to https://erp.example/batch"),
        "{stderr}"
    );
    assert_eq!(erp.created(), (0, 0));
}

#[test]
fn a_batch_of_size_one_still_goes_in_the_batch_body() {
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(
        &erp,
        "/rpc/",
        r#"concurrency = 1
batch = { size = 1, body = '{"method": "create", "params": [{payloads}]}', ids_pointer = "/result" }"#,
    );
    t.write("drop/inbox/INV_1.csv", invoices_csv(3, 1));
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(erp.batch_sizes(), [1, 1, 1]);
    let first: Vec<String> = numbers(&erp.requests()[0].body, true);
    assert_eq!(first, [key(0)]);
    assert_eq!(ledger_ids(&t, "INV_1.csv").len(), 3);
}

#[test]
fn with_verify_a_batch_that_timed_out_is_looked_up_before_it_goes_again() {
    // an ERP that ignores idempotency keys commits the first batch and answers it
    // after erpdrop's timeout
    let forgetful = || {
        FakeErp::start(Behaviour {
            ignore_idempotency: true,
            late: 1,
            late_delay: std::time::Duration::from_millis(1500),
            ..Behaviour::default()
        })
    };
    let erp = forgetful();
    let verify = format!(
        r#"verify = {{ url = "{}/search?number={{key}}", found_pointer = "/0/id" }}"#,
        erp.base()
    );
    let t = setup(
        &erp,
        "/batch",
        &format!("concurrency = 1\nbatch = {{ size = 10, ids_pointer = \"/ids\" }}\n{verify}"),
    );
    let cfg = t
        .read("erpdrop.toml")
        .replace("timeout_seconds = 5", "timeout_seconds = 1");
    t.write("erpdrop.toml", cfg);
    t.write("drop/inbox/INV_1.csv", invoices_csv(10, 1));
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(erp.created(), (10, 1), "asked, not sent again");
    assert_eq!(erp.batch_sizes(), [10]);
    let searches = erp
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/search?number="))
        .count();
    assert_eq!(searches, 10);
    // the ids the search found, in the ledger
    let ids = ledger_ids(&t, "INV_1.csv");
    assert_eq!(ids.len(), 10);
    for (k, id) in &ids {
        assert_eq!(erp.id_of(k).unwrap().to_string(), *id);
    }
}

#[cfg(unix)]
#[test]
fn a_batch_in_flight_behind_a_split_one_is_resent_whole_after_a_kill() {
    use std::time::{Duration, Instant};
    // The first batch (INV000000-09) is split around its bad invoice; batches 0-3 are
    // recorded while batch 4 (INV000040-49) is at the ERP, which takes it but answers
    // late, when the run is killed. The next run must send batch 4 as it was, under its
    // key, although the bad invoice of batch 0 goes again before it.
    let erp = FakeErp::start(Behaviour {
        reject: [key(3)].into(),
        slow: Some((key(45), Duration::from_millis(1000))),
        ..Behaviour::default()
    });
    let t = setup(
        &erp,
        "/batch",
        r#"concurrency = 1
batch = { size = 10, ids_pointer = "/ids", all_or_nothing = true }"#,
    );
    t.write("drop/inbox/INV_1.csv", invoices_csv(60, 1));
    let mut child = t
        .spawn_cmd()
        .args(["-q", "run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let slow = |r: &crate::util::erp::Seen| r.body.contains(&key(45));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !erp.requests().iter().any(slow) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    // the ledger commits the answers of batches 0-3 meanwhile
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    while erp.created().0 < 49 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(erp.created(), (49, 1), "the ERP took batch 4");
    let st = run(&t, &["status", "--json"]).json();
    assert!(
        st.to_string().contains("INV000003"),
        "batch 0 was recorded: {st}"
    );
    erp.set(|b| b.slow = None);
    let first_key = erp
        .requests()
        .iter()
        .find(|r| slow(r))
        .and_then(|r| r.header("Idempotency-Key").map(str::to_string));
    let before = erp.request_count();
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 1, "the bad invoice is rejected again: {out:?}");
    let again: Vec<_> = erp.requests()[before..]
        .iter()
        .filter(|r| slow(r))
        .cloned()
        .collect();
    assert_eq!(again.len(), 1, "{:?}", erp.batch_sizes());
    assert_eq!(
        numbers(&again[0].body, false),
        (40..50).map(key).collect::<Vec<_>>()
    );
    assert_eq!(
        again[0].header("Idempotency-Key").map(str::to_string),
        first_key
    );
    assert_eq!(erp.created(), (59, 1), "no invoice created twice");
    assert_eq!(ledger_ids(&t, "INV_1.csv").len(), 59);
}

#[test]
fn batches_keep_the_erps_rate_limit() {
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(
        &erp,
        "/batch",
        r#"concurrency = 4
max_requests_per_second = 10
batch = { size = 10, ids_pointer = "/ids" }"#,
    );
    t.write("drop/inbox/INV_1.csv", invoices_csv(40, 1));
    let start = std::time::Instant::now();
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(erp.batch_sizes(), [10; 4]);
    // four requests at 10 a second: three gaps of 100 ms, whatever the workers
    assert!(
        start.elapsed() >= std::time::Duration::from_millis(280),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_batch_too_large_for_the_erp_is_split_even_when_not_all_or_nothing() {
    let erp = FakeErp::start(Behaviour {
        max_batch: Some(10),
        ..Behaviour::default()
    });
    let t = setup(
        &erp,
        "/batch",
        r#"concurrency = 1
batch = { size = 40, ids_pointer = "/ids" }"#,
    );
    t.write("drop/inbox/INV_1.csv", invoices_csv(40, 1));
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    // 40 -> 20 + 20 -> 10 + 10 + 10 + 10
    assert_eq!(erp.batch_sizes(), [40, 20, 10, 10, 20, 10, 10]);
    assert_eq!(erp.created(), (40, 1));
    assert_eq!(ledger_ids(&t, "INV_1.csv").len(), 40);
}

#[test]
fn json_rpc_creates_in_batches_and_writes_changes_to_the_ids_it_kept() {
    let erp = FakeErp::start(Behaviour::default());
    let t = TestDir::new();
    t.mapping_setup(
        r#"name = "crm-customers"
match = ["CUST_*.csv"]
document_type = "party.party"

[source]
delimiter = ";"

[document]
key = ["CustomerNo"]
on_change = "update"

[header]
number = { from = "CustomerNo", required = true }
name   = { from = "Name", required = true }
"#,
    );
    let rpc = format!("{}/rpc/", erp.base());
    t.write(
        "erpdrop.toml",
        format!(
            r#"mappings = ["mappings/*.toml"]
[scan]
settle_seconds = 0
[target]
kind = "http"
url = "{rpc}"
concurrency = 1
error_pointer = "/error/1/0"
body = '{{"method": "model.{{document}}.create", "params": [[{{payload}}], {{}}]}}'
id_pointer = "/result/0"
batch = {{ size = 50, body = '{{"method": "model.{{document}}.create", "params": [{{payloads}}, {{}}]}}', ids_pointer = "/result", all_or_nothing = true }}
update = {{ method = "POST", url = "{rpc}", body = '{{"method": "model.{{document}}.write", "params": [[{{id}}], {{payload}}, {{}}]}}' }}
"#
        ),
    );
    let file = |rows: &[(&str, &str)]| {
        let mut s = String::from("CustomerNo;Name\n");
        for (k, n) in rows {
            s.push_str(&format!("{k};{n}\n"));
        }
        s
    };
    t.write(
        "drop/inbox/CUST_1.csv",
        file(&[("C1", "Acme"), ("C2", "Globex"), ("C3", "Initech")]),
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(erp.batch_sizes(), [3]);
    let create: serde_json::Value = serde_json::from_str(&erp.requests()[0].body).unwrap();
    assert_eq!(create["method"], "model.party.party.create");
    // C2 renamed: a write to the id the create's answer gave
    t.write(
        "drop/inbox/CUST_2.csv",
        file(&[("C1", "Acme"), ("C2", "Globex Corp"), ("C3", "Initech")]),
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let reqs = erp.requests();
    assert_eq!(reqs.len(), 2);
    let write: serde_json::Value = serde_json::from_str(&reqs[1].body).unwrap();
    let id = erp.id_of("C2").unwrap();
    assert_eq!(write["method"], "model.party.party.write");
    assert_eq!(write["params"][0], serde_json::json!([id]));
    assert_eq!(write["params"][1]["name"], "Globex Corp");
    assert_eq!(erp.records()[&id]["name"], "Globex Corp");
    assert_eq!(erp.applied(id), (1, 0));
}
