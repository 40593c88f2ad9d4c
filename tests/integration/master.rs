//! Master data as an ongoing integration (SPEC "Changes: updates, deletions, and only
//! what changed", "References between mappings", "History"): a nightly customer export
//! keeps the ERP's customers in step, and invoices refer to them by the ERP's own ids.

use crate::util::erp::{Behaviour, FakeErp};
use crate::util::{age, TestDir};
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::{Duration, Instant};

const CUSTOMERS: &str = r#"name = "crm-customers"
match = ["CUST_*.csv"]
document_type = "customer"

[source]
delimiter = ";"

[document]
key = ["CustomerNo"]
on_change = "update"
snapshot = true
on_missing = "delete"

[header]
number = { from = "CustomerNo", required = true }
name   = { from = "Name", required = true }
city   = { from = "City" }
"#;

const INVOICES: &str = r#"name = "billing-invoices"
match = ["INV_*.csv"]
document_type = "invoice"

[source]
delimiter = ";"

[document]
key = ["No"]

[header]
number   = { from = "No", required = true }
customer = { from = "Cust", ref = "crm-customers", json_number = true }
total    = { from = "Total", type = "decimal", scale = 2 }
"#;

/// Ten customers, `C01`..`C10`.
fn day1() -> Vec<(String, String, String)> {
    (1..=10)
        .map(|i| {
            (
                format!("C{i:02}"),
                format!("Customer {i}"),
                "Oslo".to_string(),
            )
        })
        .collect()
}

/// Day 2: C01 and C02 renamed, C03 gone, C11 new, the rest as they were.
fn day2() -> Vec<(String, String, String)> {
    let mut v: Vec<_> = day1()
        .into_iter()
        .filter(|(k, _, _)| k != "C03")
        .map(|(k, n, c)| match k.as_str() {
            "C01" => (k, "Customer One Ltd".into(), c),
            "C02" => (k, "Customer Two AS".into(), c),
            _ => (k, n, c),
        })
        .collect();
    v.push(("C11".into(), "Customer 11".into(), "Bergen".into()));
    v
}

fn customers_csv(rows: &[(String, String, String)]) -> String {
    let mut s = String::from("CustomerNo;Name;City\n");
    for (k, n, c) in rows {
        s.push_str(&format!("{k};{n};{c}\n"));
    }
    s
}

fn setup(erp: &FakeErp, target_extra: &str) -> TestDir {
    let t = TestDir::new();
    t.write(
        "erpdrop.toml",
        format!(
            "[scan]\nsettle_seconds = 0\n[target]\nkind = \"http\"\nurl = \"{}/api/{{document}}\"\n\
             id_pointer = \"/id\"\ntimeout_seconds = 5\nconcurrency = 2\n\
             retry = {{ attempts = 1, backoff_ms = 10 }}\n{target_extra}\n",
            erp.base()
        ),
    );
    t.write("mappings/customers.toml", CUSTOMERS);
    t.write("mappings/invoices.toml", INVOICES);
    std::fs::create_dir_all(t.join("drop/inbox")).unwrap();
    t
}

fn drop_file(t: &TestDir, name: &str, text: &str) {
    let p = t.write(&format!("drop/inbox/{name}"), text);
    age(&p, 60);
}

fn today() -> String {
    chrono::Local::now().format("%Y-%m-%d").to_string()
}

/// The requests the ERP saw after the first `skip`, as "METHOD path".
fn requests_after(erp: &FakeErp, skip: usize) -> Vec<String> {
    erp.requests()
        .iter()
        .skip(skip)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn day1_done(t: &TestDir, erp: &FakeErp) {
    drop_file(t, "CUST_1.csv", &customers_csv(&day1()));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(erp.created(), (10, 1));
}

#[test]
fn a_nightly_snapshot_sends_only_what_changed_and_deletes_what_is_gone() {
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(&erp, "");
    day1_done(&t, &erp);
    let (id1, id2, id3) = (
        erp.id_of("C01").unwrap(),
        erp.id_of("C02").unwrap(),
        erp.id_of("C03").unwrap(),
    );
    let before = erp.request_count();
    drop_file(&t, "CUST_2.csv", &customers_csv(&day2()));
    let out = t.run(&["run", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let mut reqs = requests_after(&erp, before);
    // creates and updates first (in any order between them), the delete last
    assert_eq!(reqs.pop().unwrap(), format!("DELETE /api/customer/{id3}"));
    reqs.sort();
    let mut want = vec![
        "POST /api/customer".to_string(),
        format!("PUT /api/customer/{id1}"),
        format!("PUT /api/customer/{id2}"),
    ];
    want.sort();
    assert_eq!(reqs, want);
    let records = erp.records();
    assert_eq!(records[&id1]["name"], "Customer One Ltd");
    assert_eq!(records[&id2]["name"], "Customer Two AS");
    assert!(!records.contains_key(&id3));
    assert_eq!(records.len(), 10);
    let c = &out.json()["files"][0]["counts"];
    assert_eq!(
        (&c["created"], &c["updated"], &c["deleted"], &c["unchanged"]),
        (&json!(1), &json!(2), &json!(1), &json!(7))
    );
    assert_eq!(c["accepted"], 4);
    assert_eq!(c["already_imported"], 7);
    // the done report lists each operation with the ERP's id
    let report = t.read_json(&format!("drop/done/{}/CUST_2.csv.report.json", today()));
    let ops: Vec<(String, String)> = report["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["document"].as_str().unwrap().to_string(),
                d["operation"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(ops.contains(&("C03".into(), "delete".into())), "{ops:?}");
    assert!(ops.contains(&("C01".into(), "update".into())), "{ops:?}");
    assert!(ops.contains(&("C11".into(), "create".into())), "{ops:?}");
    // status shows what the run asked of the ERP
    let st = t.run(&["status"]);
    assert!(
        st.stdout
            .contains("    1 created, 2 updated, 1 deleted, 7 unchanged"),
        "{}",
        st.stdout
    );
    // the text summary names the operations
    drop_file(&t, "CUST_3.csv", &customers_csv(&day2()));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("0 accepted") && out.stdout.contains("10 unchanged"),
        "{}",
        out.stdout
    );
    assert_eq!(
        erp.request_count(),
        before + 4,
        "an unchanged snapshot sends nothing"
    );
}

#[test]
fn a_deleted_key_that_comes_back_is_created_again_as_a_new_request() {
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(&erp, "");
    day1_done(&t, &erp);
    let first_key = erp
        .requests()
        .iter()
        .find(|r| r.body.contains("\"C03\""))
        .and_then(|r| r.header("Idempotency-Key").map(str::to_string))
        .unwrap();
    drop_file(&t, "CUST_2.csv", &customers_csv(&day2()));
    assert_eq!(t.run(&["run"]).code, 0);
    assert!(erp.id_of("C03").is_none());
    // C03 is back, as it was on day 1
    drop_file(&t, "CUST_3.csv", &customers_csv(&day1()));
    let out = t.run(&["run", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let again = erp
        .requests()
        .iter()
        .rev()
        .find(|r| r.method == "POST" && r.body.contains("\"C03\""))
        .and_then(|r| r.header("Idempotency-Key").map(str::to_string))
        .unwrap();
    assert_ne!(
        first_key, again,
        "never taken for a replay of the first create"
    );
    assert!(erp.id_of("C03").is_some(), "created again");
    assert_eq!(out.json()["files"][0]["counts"]["created"], 1);
}

#[test]
fn a_delete_body_deactivates_instead_of_deleting() {
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(
        &erp,
        &format!(
            "delete = {{ method = \"PUT\", url = \"{}/api/{{document}}/{{id}}\", body = '{{\"active\": false}}' }}",
            erp.base()
        ),
    );
    day1_done(&t, &erp);
    let id3 = erp.id_of("C03").unwrap();
    drop_file(&t, "CUST_2.csv", &customers_csv(&day2()));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let rec = &erp.records()[&id3];
    assert_eq!(rec["active"], false);
    assert_eq!(rec["name"], "Customer 3", "only deactivated");
    let last = erp.requests().pop().unwrap();
    assert_eq!(
        (last.method.as_str(), last.body.as_str()),
        ("PUT", "{\"active\": false}")
    );
}

#[test]
fn a_truncated_snapshot_is_refused_whole() {
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(&erp, "");
    day1_done(&t, &erp);
    let before = erp.request_count();
    // cut off after five customers, and one of them changed
    let mut cut = day1();
    cut.truncate(5);
    cut[0].1 = "Renamed".into();
    drop_file(&t, "CUST_2.csv", &customers_csv(&cut));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        erp.request_count(),
        before,
        "nothing created, updated or deleted"
    );
    let report = t.read_json("drop/failed/CUST_2.csv.errors.json");
    let rows = report["errors"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["code"], "too_many_deletes");
    assert_eq!(rows[0]["stage"], "read");
    let msg = rows[0]["message"].as_str().unwrap();
    assert!(msg.contains("5 of the 10") && msg.contains("10%"), "{msg}");
    assert_eq!(erp.records().len(), 10);
    // a limit that allows them lets the same file through
    t.write(
        "mappings/customers.toml",
        CUSTOMERS.replace(
            "on_missing = \"delete\"",
            "on_missing = \"delete\"\nmax_deletes = 5",
        ),
    );
    let out = t.run(&["reprocess", "--all", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let c = &out.json()["files"][0]["counts"];
    assert_eq!((&c["deleted"], &c["updated"]), (&json!(5), &json!(1)));
    assert_eq!(erp.records().len(), 5);
}

#[test]
fn a_delete_of_what_the_erp_no_longer_has_counts_as_deleted() {
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(&erp, "");
    day1_done(&t, &erp);
    let id3 = erp.id_of("C03").unwrap();
    erp.forget(id3);
    drop_file(&t, "CUST_2.csv", &customers_csv(&day2()));
    let out = t.run(&["run", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["files"][0]["counts"]["deleted"], 1);
    let hist = t.run(&["history", "C03", "--json"]).json();
    let last = hist.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (&last["operation"], &last["outcome"], &last["status"]),
        (&json!("delete"), &json!("accepted"), &json!(404))
    );
}

#[test]
fn changed_content_stays_a_conflict_unless_the_mapping_asks_for_updates() {
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(&erp, "");
    t.write(
        "mappings/customers.toml",
        CUSTOMERS
            .replace("on_change = \"update\"\n", "")
            .replace("snapshot = true\non_missing = \"delete\"\n", ""),
    );
    day1_done(&t, &erp);
    let before = erp.request_count();
    drop_file(&t, "CUST_2.csv", &customers_csv(&day2()));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    let report = t.read_json("drop/failed/CUST_2.csv.errors.json");
    let codes: Vec<&str> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["conflict", "conflict"]);
    // reject-file: nothing sent, not even the new one; and no deletes without a snapshot
    assert_eq!(erp.request_count(), before);
}

#[cfg(unix)]
#[test]
fn a_run_killed_during_updates_sends_no_update_twice_under_another_key() {
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(&erp, "");
    let many: Vec<_> = (1..=200)
        .map(|i| (format!("K{i:03}"), format!("Name {i}"), "Oslo".to_string()))
        .collect();
    drop_file(&t, "CUST_1.csv", &customers_csv(&many));
    assert_eq!(t.run(&["run"]).code, 0);
    let renamed: Vec<_> = many
        .iter()
        .map(|(k, n, c)| (k.clone(), format!("{n} (renamed)"), c.clone()))
        .collect();
    erp.set(|b| b.delay = Duration::from_millis(20));
    drop_file(&t, "CUST_2.csv", &customers_csv(&renamed));
    let before = erp.request_count();
    let mut child = t
        .spawn_cmd()
        .args(["-q", "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while erp.request_count() < before + 40 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    erp.set(|b| b.delay = Duration::ZERO);
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    for (k, n, _) in &renamed {
        let id = erp.id_of(k).unwrap();
        assert_eq!(erp.applied(id).0, 1, "{k} updated once");
        assert_eq!(erp.records()[&id]["name"], n.as_str());
    }
    let puts = erp.requests().iter().filter(|r| r.method == "PUT").count();
    assert!(
        puts >= 200,
        "every update went, resends under the same key at most"
    );
}

#[test]
fn invoices_refer_to_customers_by_the_erps_ids_and_go_after_them() {
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(&erp, "");
    // dropped together; the invoices' name sorts first
    drop_file(
        &t,
        "INV_1.csv",
        "No;Cust;Total\nA1;C01;10,00\nA2;C02;20,00\n"
            .replace(',', ".")
            .as_str(),
    );
    drop_file(&t, "CUST_1.csv", &customers_csv(&day1()));
    let out = t.run(&["run", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let s = out.json();
    let names: Vec<String> = s["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["CUST_1.csv", "INV_1.csv"]);
    let invoice = erp
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/invoice" && r.body.contains("\"A1\""))
        .unwrap();
    let body: Value = serde_json::from_str(&invoice.body).unwrap();
    assert_eq!(body["customer"], json!(erp.id_of("C01").unwrap()));
    // a customer that was never imported is the invoice's lookup problem
    drop_file(&t, "INV_2.csv", "No;Cust;Total\nB1;C99;10.00\n");
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    let row = &t.read_json("drop/failed/INV_2.csv.errors.json")["errors"][0];
    assert_eq!(row["code"], "lookup");
    assert_eq!(
        row["message"],
        "Customer \"C99\" has not been imported yet (mapping crm-customers) (line 2, column Cust)"
    );
}

#[test]
fn a_dry_run_says_what_would_be_created_updated_and_deleted() {
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(&erp, "");
    day1_done(&t, &erp);
    let before = erp.request_count();
    drop_file(&t, "CUST_2.csv", &customers_csv(&day2()));
    // invoices referring to the new customer resolve in a dry run too
    drop_file(&t, "INV_1.csv", "No;Cust;Total\nA1;C11;10.00\n");
    let out = t.run(&["run", "--dry-run", "--report", "rep", "--emit", "em"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("would create 1, update 2, delete 1"),
        "{}",
        out.stdout
    );
    assert_eq!(erp.request_count(), before, "a dry run sends nothing");
    let rep = t.read_json("rep/CUST_2.csv.errors.json");
    let c = &rep["counts"];
    assert_eq!(
        (
            &c["created"],
            &c["updated"],
            &c["deleted"],
            &c["unchanged"],
            &c["accepted"]
        ),
        (&json!(1), &json!(2), &json!(1), &json!(7), &json!(0))
    );
    let mut planned: Vec<String> = rep["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{} {}",
                d["operation"].as_str().unwrap(),
                d["document"].as_str().unwrap()
            )
        })
        .collect();
    planned.sort();
    assert_eq!(
        planned,
        ["create C11", "delete C03", "update C01", "update C02"]
    );
    // the emitted updates and deletes are files of their own, named by operation
    let names = t.ls("em");
    assert_eq!(
        names.iter().filter(|n| n.contains(".update.")).count(),
        2,
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| n.contains(".delete.")).count(),
        1,
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.starts_with("invoice-A1")),
        "{names:?}"
    );
    // and nothing moved, nothing was recorded
    assert_eq!(t.ls("drop/inbox").len(), 2);
}

#[test]
fn history_says_what_was_sent_for_a_document_and_for_a_file() {
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(&erp, "");
    day1_done(&t, &erp);
    drop_file(&t, "CUST_2.csv", &customers_csv(&day2()));
    assert_eq!(t.run(&["run"]).code, 0);
    let h = t.run(&["history", "C01", "--json"]).json();
    let ops: Vec<(String, String, String)> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["operation"].as_str().unwrap().into(),
                o["outcome"].as_str().unwrap().into(),
                o["file"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("create".into(), "accepted".into(), "CUST_1.csv".into()),
            ("update".into(), "accepted".into(), "CUST_2.csv".into())
        ]
    );
    for k in [
        "time",
        "run_id",
        "file",
        "mapping",
        "key",
        "operation",
        "content_hash",
        "outcome",
        "status",
        "id",
        "message",
    ] {
        assert!(h[0].get(k).is_some(), "{k} in {}", h[0]);
    }
    assert_eq!(h[1]["id"], json!(erp.id_of("C01").unwrap().to_string()));
    let f = t.run(&["history", "--file", "CUST_2.csv", "--json"]).json();
    let mut what: Vec<String> = f
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{} {}",
                o["operation"].as_str().unwrap(),
                o["key"].as_str().unwrap()
            )
        })
        .collect();
    what.sort();
    assert_eq!(
        what,
        ["create C11", "delete C03", "update C01", "update C02"]
    );
    let text = t.run(&["history", "C03"]);
    assert_eq!(text.code, 0);
    assert!(
        text.stdout.contains("delete") && text.stdout.contains("accepted"),
        "{}",
        text.stdout
    );
    assert!(t
        .run(&["history", "NOPE"])
        .stdout
        .contains("nothing was sent"));
}

#[test]
fn a_rejected_update_shows_in_status_and_leaves_what_the_erp_has() {
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(&erp, "");
    day1_done(&t, &erp);
    erp.set(|b| {
        b.reject.insert("C02".into());
    });
    drop_file(&t, "CUST_2.csv", &customers_csv(&day2()));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    let row = &t.read_json("drop/failed/CUST_2.csv.errors.json")["errors"][0];
    assert_eq!(row["code"], "rejected");
    assert!(
        row["message"]
            .as_str()
            .unwrap()
            .starts_with("The ERP rejected the update of document \"C02\""),
        "{row}"
    );
    let st = t.run(&["status", "--json"]).json();
    let doc = st["failed_documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["document"] == "C02")
        .unwrap()
        .clone();
    assert_eq!(
        (&doc["state"], &doc["operation"]),
        (&json!("rejected"), &json!("update"))
    );
    // the ERP still has the first name, and the next run tries the update again
    let id2 = erp.id_of("C02").unwrap();
    assert_eq!(erp.records()[&id2]["name"], "Customer 2");
    erp.set(|b| b.reject.clear());
    let out = t.run(&["reprocess", "--all", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["files"][0]["counts"]["updated"], 1);
    assert_eq!(erp.records()[&id2]["name"], "Customer Two AS");
}

#[test]
fn the_outbox_writes_updates_and_deletes_as_files_a_reader_can_sort() {
    let t = TestDir::new();
    t.write("erpdrop.toml", "[scan]\nsettle_seconds = 0\n");
    t.write("mappings/customers.toml", CUSTOMERS);
    std::fs::create_dir_all(t.join("drop/inbox")).unwrap();
    drop_file(&t, "CUST_1.csv", &customers_csv(&day1()));
    assert_eq!(t.run(&["run"]).code, 0);
    drop_file(&t, "CUST_2.csv", &customers_csv(&day2()));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let names = t.ls("drop/outbox");
    let mut changes: Vec<&String> = names
        .iter()
        .filter(|n| n.contains(".update.") || n.contains(".delete."))
        .collect();
    assert_eq!(changes.len(), 3, "{names:?}");
    assert!(
        names.contains(&"customer-C11.json".to_string()),
        "{names:?}"
    );
    // the order after the operation sorts as they were decided: updates, then the delete
    changes.sort_by_key(|n| n.rsplit('.').nth(1).unwrap().to_string());
    assert!(
        changes[2].starts_with("customer-C03.delete."),
        "{changes:?}"
    );
    let del: Value = serde_json::from_str(&t.read(&format!("drop/outbox/{}", changes[2]))).unwrap();
    assert_eq!(
        (&del["operation"], &del["key"], &del["id"]),
        (&json!("delete"), &json!("C03"), &json!("customer-C03.json"))
    );
    let upd: Value = serde_json::from_str(&t.read(&format!(
        "drop/outbox/{}",
        changes.iter().find(|n| n.starts_with("customer-C01.")).unwrap()
    )))
    .unwrap();
    assert_eq!(upd["name"], "Customer One Ltd");
}

#[test]
fn references_and_operations_are_checked_when_the_config_loads() {
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(&erp, "");
    t.write(
        "mappings/invoices.toml",
        INVOICES.replace("ref = \"crm-customers\"", "ref = \"crm-customer\""),
    );
    let out = t.run(&["check"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("\"crm-customer\"") && out.stderr.contains("crm-customers"),
        "{}",
        out.stderr
    );
    // a circle of references
    t.write("mappings/invoices.toml", INVOICES);
    t.write(
        "mappings/customers.toml",
        CUSTOMERS.replace(
            "city   = { from = \"City\" }",
            "city   = { from = \"City\", ref = \"billing-invoices\" }",
        ),
    );
    let out = t.run(&["check"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("billing-invoices -> crm-customers -> billing-invoices"),
        "{}",
        out.stderr
    );
    // updates by {id} need the id from the ERP's answers
    t.write("mappings/customers.toml", CUSTOMERS);
    t.write(
        "erpdrop.toml",
        format!("[scan]\nsettle_seconds = 0\n[target]\nkind = \"http\"\nurl = \"{}/api/{{document}}\"\n", erp.base()),
    );
    let out = t.run(&["check"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("id_pointer") && out.stderr.contains("crm-customers"),
        "{}",
        out.stderr
    );
    // so do references, whatever the requests' URLs
    assert!(
        out.stderr
            .contains("mapping billing-invoices refers to documents of other mappings"),
        "{}",
        out.stderr
    );
    // on_missing without a snapshot
    t.write(
        "mappings/customers.toml",
        CUSTOMERS.replace("snapshot = true\n", ""),
    );
    let out = t.run(&["validate"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("snapshot = true"), "{}", out.stderr);
}

#[test]
fn documents_created_without_erp_ids_are_deleted_by_key_or_refused_by_id() {
    let erp = FakeErp::start(Behaviour::default());
    let t = TestDir::new();
    // no id_pointer: the ERP's ids are not kept; deletes go to the key
    let config = |extra: &str, delete_url: &str| {
        format!(
            "[scan]\nsettle_seconds = 0\n[target]\nkind = \"http\"\nurl = \"{base}/api/{{document}}\"\n\
             timeout_seconds = 5\nretry = {{ attempts = 1, backoff_ms = 10 }}\n{extra}\n\
             delete = {{ method = \"DELETE\", url = \"{base}{delete_url}\" }}\n",
            base = erp.base()
        )
    };
    t.write(
        "erpdrop.toml",
        config("", "/api/{document}/by-number/{key}"),
    );
    t.write(
        "mappings/customers.toml",
        CUSTOMERS.replace("on_change = \"update\"\n", "").replace(
            "on_missing = \"delete\"",
            "on_missing = \"delete\"\nmax_deletes = 5",
        ),
    );
    drop_file(&t, "CUST_1.csv", &customers_csv(&day1()));
    assert_eq!(t.run(&["run"]).code, 0);
    let mut night = day1();
    night.retain(|(k, _, _)| k != "C03" && k != "C04");
    drop_file(&t, "CUST_2.csv", &customers_csv(&night));
    let before = erp.request_count();
    // the fake ERP holds no "by-number" resource: 404, which is a delete done
    let out = t.run(&["run", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let mut reqs = requests_after(&erp, before);
    reqs.sort();
    assert_eq!(
        reqs,
        [
            "DELETE /api/customer/by-number/C03",
            "DELETE /api/customer/by-number/C04"
        ]
    );
    assert_eq!(out.json()["files"][0]["counts"]["deleted"], 2);

    // now the ids are kept and deletes go to them: the old documents have none, so
    // their delete is refused before anything is sent, and says why
    t.write(
        "erpdrop.toml",
        config("id_pointer = \"/id\"", "/api/{document}/{id}"),
    );
    night.retain(|(k, _, _)| k != "C05");
    drop_file(&t, "CUST_3.csv", &customers_csv(&night));
    let before = erp.request_count();
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(erp.request_count(), before, "nothing sent");
    let errors = t.read("drop/failed/CUST_3.csv.errors.csv");
    assert!(
        errors.contains("C05") && errors.contains("the ERP's id for it is not known"),
        "{errors}"
    );
}

#[test]
fn an_invoice_whose_customer_got_a_new_erp_id_is_not_taken_for_changed() {
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(&erp, "");
    day1_done(&t, &erp);
    drop_file(&t, "INV_1.csv", "No;Cust;Total\nA1;C01;10.00\n");
    assert_eq!(t.run(&["run"]).code, 0);
    let first_id = erp.id_of("C01").unwrap();
    // C01 goes, then comes back: the ERP gives it a new id
    let mut without = day1();
    without.retain(|(k, _, _)| k != "C01");
    drop_file(&t, "CUST_2.csv", &customers_csv(&without));
    assert_eq!(t.run(&["run"]).code, 0);
    drop_file(&t, "CUST_3.csv", &customers_csv(&day1()));
    assert_eq!(t.run(&["run"]).code, 0);
    let new_id = erp.id_of("C01").unwrap();
    assert_ne!(first_id, new_id);
    // the same invoice again: its source values did not change, only what ref gives
    let invoices_before = erp
        .requests()
        .iter()
        .filter(|r| r.path == "/api/invoice")
        .count();
    drop_file(&t, "INV_1b.csv", "No;Cust;Total\nA1;C01;10.00\n");
    let out = t.run(&["run", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let c = &out.json()["files"][0]["counts"];
    assert_eq!(
        (&c["already_imported"], &c["accepted"]),
        (&json!(1), &json!(0))
    );
    let invoices_after = erp
        .requests()
        .iter()
        .filter(|r| r.path == "/api/invoice")
        .count();
    assert_eq!(invoices_after, invoices_before, "nothing sent, no conflict");
}

#[test]
fn a_change_made_again_after_it_was_undone_reaches_the_erp() {
    // C01 is renamed, renamed back, renamed again: the third update has the content of
    // the first, and an ERP that honours Idempotency-Key must not take it for a replay
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(&erp, "");
    day1_done(&t, &erp);
    let id = erp.id_of("C01").unwrap();
    for (i, day) in [day2(), day1(), day2()].iter().enumerate() {
        drop_file(&t, &format!("CUST_{}.csv", i + 2), &customers_csv(day));
        let out = t.run(&["run"]);
        assert_eq!(out.code, 0, "{out:?}");
        let name = &day.iter().find(|(k, _, _)| k == "C01").unwrap().1;
        assert_eq!(
            erp.records()[&id]["name"],
            json!(name),
            "run {}: the ERP has what the ledger says it has",
            i + 2
        );
    }
    assert_eq!(erp.applied(id).0, 3, "three updates applied");
    let keys: Vec<String> = erp
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.body.contains("\"C01\""))
        .filter_map(|r| r.header("Idempotency-Key").map(str::to_string))
        .collect();
    assert_eq!(keys.len(), 3);
    assert_ne!(keys[0], keys[2], "a new update, not a replay of the first");
}

#[test]
fn a_dry_run_does_not_resolve_references_to_customers_held_back_by_their_file() {
    // the customers file has an invalid row, so (reject-file) none of it is created:
    // a dry run must not promise the invoices an id their customer will never have
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(&erp, "");
    drop_file(
        &t,
        "CUST_1.csv",
        "CustomerNo;Name;City\nC01;One;Oslo\nC02;;Oslo\n",
    );
    drop_file(&t, "INV_1.csv", "No;Cust;Total\nA1;C01;10.00\n");
    let dry = t.run(&["validate"]);
    assert_eq!(dry.code, 1, "{dry:?}");
    assert!(
        dry.stdout.contains("invalid: INV_1.csv"),
        "the dry run says what the run will do: {}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains("has not been imported yet"),
        "{}",
        dry.stdout
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("failed: INV_1.csv"), "{}", out.stdout);
    assert_eq!(erp.request_count(), 0);
}

#[test]
fn history_and_dry_runs_read_a_ledger_that_an_older_release_wrote() {
    // after an upgrade, before a run migrates the ledger: what it holds is still known
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(&erp, "");
    day1_done(&t, &erp);
    let path = t.join("drop/.erpdrop/ledger.sqlite");
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "ALTER TABLE documents DROP COLUMN updates;
         DELETE FROM schema_version WHERE version = 8;",
    )
    .unwrap();
    drop(c);
    let out = t.run(&["history", "C01"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("create  accepted  C01"),
        "{}",
        out.stdout
    );
    t.write("check/CUST_2.csv", customers_csv(&day2()));
    let out = t.run(&["validate", "check"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("would create 1, update 2, delete 1"),
        "{}",
        out.stdout
    );
    let c = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = c
        .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 7, "read-only commands leave the ledger as it was");
}
