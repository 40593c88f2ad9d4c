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
