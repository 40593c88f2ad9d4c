//! Against a real ERP: Tryton 8.2 on loopback, brought up by `scripts/tryton-up.sh`
//! (`.ci/run` and `scripts/test-tryton` do it and set the environment below).
//!
//! - The example inbox in one run: the CRM's customers and their addresses become
//!   parties, then the billing file becomes customer invoices for those parties (`ref`);
//!   a rejected invoice shows Tryton's own message; reprocess after the fix.
//! - A customer master that follows the CRM night after night: day 1 creates the
//!   parties, day 2 updates the renamed ones, deactivates the one gone from the snapshot
//!   (`active = false` through the target's `delete.body`), creates the new one and
//!   writes nothing else; then customers, addresses and invoices dropped together go
//!   through in one run. Each party and invoice is read back over the REST API.
//!
//! Needs: ERPDROP_TRYTON_URL (e.g. http://127.0.0.1:8000/tryton), ERPDROP_TRYTON_IDS
//! (the ids.json of the bring-up). Built only with `--features tryton`.

use crate::util::{Out, TestDir};
use base64::Engine as _;
use serde_json::{json, Value};

/// One test at a time against the one Tryton: on SQLite it numbers new parties without
/// a lock, so parties created at once by two tests could get the same code.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Tryton {
    url: String,
    key: String,
    ids: Value,
}

fn tryton() -> Tryton {
    let url = std::env::var("ERPDROP_TRYTON_URL").expect(
        "ERPDROP_TRYTON_URL is not set: run this test through .ci/run or scripts/test-tryton",
    );
    let ids_path = std::env::var("ERPDROP_TRYTON_IDS").expect("ERPDROP_TRYTON_IDS is not set");
    let ids: Value = serde_json::from_str(&std::fs::read_to_string(ids_path).unwrap()).unwrap();
    Tryton {
        url,
        key: ids["rest_key"].as_str().unwrap().to_string(),
        ids,
    }
}

impl Tryton {
    /// GET on the REST API; `all` also finds deactivated records (Tryton's searches
    /// skip them unless the context says `active_test: false`).
    fn get_with(&self, path: &str, all: bool) -> Value {
        let ctx = if all {
            r#"{"company":1,"active_test":false}"#
        } else {
            r#"{"company":1}"#
        };
        let ctx = base64::engine::general_purpose::URL_SAFE.encode(ctx);
        ureq::get(&format!("{}/rest/model/{path}", self.url))
            .set("Authorization", &format!("Bearer {}", self.key))
            .set("X-Tryton-Context", &ctx)
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .into_json()
            .unwrap()
    }

    fn get(&self, path: &str) -> Value {
        self.get_with(path, false)
    }

    fn id(&self, name: &str) -> i64 {
        self.ids[name].as_i64().unwrap()
    }
}

fn decimal(v: &Value) -> String {
    v["decimal"]
        .as_str()
        .unwrap_or_else(|| panic!("not a Decimal: {v}"))
        .to_string()
}

/// Tryton's booleans: `true`/`false` on PostgreSQL, 1/0 on SQLite.
fn truthy(v: &Value) -> bool {
    v == &json!(true) || v == &json!(1)
}

/// A tag unique to this test and run, so that reruns against one database stay apart.
fn tag(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        std::process::id() as u64 * 1000 + chrono::Utc::now().timestamp_subsec_millis() as u64
    )
}

/// The example, pointed at this Tryton and the ids of its bring-up.
fn example(erp: &Tryton) -> TestDir {
    let t = TestDir::new();
    t.copy_from_repo("examples/tryton");
    let cfg = t
        .read("erpdrop.toml")
        .replace("http://127.0.0.1:8000/tryton", &erp.url);
    t.write("erpdrop.toml", cfg);
    let mapping = t
        .read("mappings/invoices.toml")
        .replace(
            "{ value = 39 }",
            &format!("{{ value = {} }}", erp.id("receivable_account")),
        )
        .replace(
            "journal         = { value = 1 }",
            &format!(
                "journal         = {{ value = {} }}",
                erp.id("revenue_journal")
            ),
        );
    t.write("mappings/invoices.toml", mapping);
    t.write(
        "xref/terms.csv",
        format!("code,tryton_id\nDUE,{0}\nN30,{0}\n", erp.id("payment_term")),
    );
    let revenue = erp.id("revenue_account");
    t.write(
        "xref/accounts.csv",
        format!("gl,tryton_id\n4000-00,{revenue}\n4100-00,{revenue}\n9999-00,88888\n"),
    );
    t
}

/// erpdrop with this Tryton's REST key.
fn run(t: &TestDir, erp: &Tryton, args: &[&str]) -> Out {
    let o = t
        .cmd()
        .env("TRYTON_KEY", &erp.key)
        .args(args)
        .output()
        .unwrap();
    Out {
        code: o.status.code().unwrap(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// The ERP id that the ledger holds for a mapping's document (its last operation).
fn erp_id(t: &TestDir, erp: &Tryton, key: &str, mapping: &str) -> i64 {
    let h = run(t, erp, &["history", key, "--mapping", mapping, "--json"]).json();
    let last = h.as_array().unwrap().last().unwrap().clone();
    last["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id for {key}: {h}"))
        .parse()
        .unwrap()
}

/// What `erpdrop history --file` says was sent for a file, as sorted "operation key".
fn sent_for(t: &TestDir, erp: &Tryton, file: &str) -> Vec<String> {
    let h = run(t, erp, &["history", "--file", file, "--json"]).json();
    let mut v: Vec<String> = h
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
    v.sort();
    v
}

#[test]
fn billing_file_becomes_tryton_invoices_and_a_bad_account_is_rejected_with_trytons_message() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let erp = tryton();
    let t = example(&erp);
    // unique references, so that reruns against one database stay apart
    let tag = tag("T");
    let csv = t
        .read("drop/inbox/INV_2026-11-21.csv")
        .replace("TRY-", &format!("{tag}-"));
    t.write("drop/inbox/INV_2026-11-21.csv", csv);

    let out = run(&t, &erp, &["check"]);
    assert_eq!(out.code, 0, "{out:?}");

    // customers, addresses and invoices, dropped together, in one run
    let out = run(&t, &erp, &["run", "--json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let s = out.json();
    let files: Vec<(&str, &str)> = s["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["file"].as_str().unwrap(), f["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        files,
        [
            ("CUST_2026-11-21.csv", "done"),
            ("ADDR_2026-11-21.csv", "done"),
            ("INV_2026-11-21.csv", "failed")
        ],
        "the customers first, then their addresses, then the invoices"
    );
    let report = t.read_json("drop/failed/INV_2026-11-21.csv.errors.json");
    assert_eq!(report["counts"]["accepted"], 2, "{report}");
    assert_eq!(report["counts"]["rejected"], 1);
    let row = &report["errors"][0];
    assert_eq!(row["stage"], "submit");
    assert_eq!(row["code"], "rejected");
    assert_eq!(row["status"], 400);
    assert_eq!(row["document"], format!("{tag}-0003"));
    assert_eq!(row["line"], 5);
    let msg = row["message"].as_str().unwrap();
    assert!(
        msg.contains("\"88888\"") && msg.contains("is not valid according to its domain"),
        "{msg}"
    );
    assert!(!out.stderr.contains(&erp.key) && !out.stdout.contains(&erp.key));

    // read the invoices back and compare with the file: the parties erpdrop created
    let docs = report["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 2);
    let expect = [
        (
            format!("{tag}-0001"),
            "C-1001",
            "Nordlys Consulting AS",
            "Oslo",
            "399.50",
            vec!["300.00", "99.50"],
        ),
        (
            format!("{tag}-0002"),
            "C-1002",
            "Fjord Analytics",
            "Bergen",
            "420.00",
            vec!["420.00"],
        ),
    ];
    for (reference, customer, name, city, total, lines) in &expect {
        let party = erp_id(&t, &erp, customer, "crm-customers");
        let d = docs.iter().find(|d| d["document"] == *reference).unwrap();
        let id = d["id"].as_str().unwrap();
        let inv = erp.get(&format!(
            "account.invoice/{id}?f=reference&f=total_amount&f=invoice_date&f=party.name&f=invoice_address.party&f=invoice_address.city&f=lines.amount&f=lines.quantity&f=lines.description"
        ));
        assert_eq!(inv["reference"], *reference);
        assert_eq!(decimal(&inv["total_amount"]), *total, "{inv}");
        assert_eq!(inv["party"]["id"], party, "{inv}");
        assert_eq!(inv["party"]["name"], *name, "{inv}");
        assert_eq!(inv["invoice_address"]["party"], party, "{inv}");
        assert_eq!(inv["invoice_address"]["city"], *city, "{inv}");
        let mut got: Vec<String> = inv["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| decimal(&l["amount"]))
            .collect();
        got.sort();
        let mut want: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(got, want, "{inv}");
    }

    // the fix: the GL account is mapped to a real Tryton account; only that invoice goes
    let revenue = erp.id("revenue_account");
    t.write(
        "xref/accounts.csv",
        format!("gl,tryton_id\n4000-00,{revenue}\n4100-00,{revenue}\n9999-00,{revenue}\n"),
    );
    let out = run(&t, &erp, &["reprocess", "--all", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let s = out.json();
    assert_eq!(s["files"][0]["counts"]["accepted"], 1);
    assert_eq!(s["files"][0]["counts"]["already_imported"], 2);
    let all = erp.get("account.invoice?f=reference");
    let ours = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| {
            i["reference"]
                .as_str()
                .unwrap_or("")
                .starts_with(&format!("{tag}-"))
        })
        .count();
    assert_eq!(ours, 3, "each invoice exactly once in Tryton");
}

/// The CRM's customers as `(CustomerNo, Name, Terms)`.
type Customers = Vec<(String, String, &'static str)>;

fn customers_csv(rows: &Customers) -> String {
    let mut s = String::from("CustomerNo;Name;Terms\n");
    for (no, name, terms) in rows {
        s.push_str(&format!("{no};{name};{terms}\n"));
    }
    s
}

/// This test's parties in Tryton (their names end with its tag), the deactivated ones
/// too, by id.
fn parties(erp: &Tryton, tag: &str) -> std::collections::BTreeMap<i64, Value> {
    erp.get_with(
        "party.party?f=name&f=active&f=customer_payment_term&f=write_date",
        true,
    )
    .as_array()
    .unwrap()
    .iter()
    .filter(|p| p["name"].as_str().unwrap_or("").ends_with(tag))
    .map(|p| (p["id"].as_i64().unwrap(), p.clone()))
    .collect()
}

#[test]
fn the_crms_customers_follow_night_after_night_and_invoices_refer_to_them() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let erp = tryton();
    let t = example(&erp);
    for f in t.ls("drop/inbox") {
        std::fs::remove_file(t.join(&format!("drop/inbox/{f}"))).unwrap();
    }
    // the names carry the tag, so that this test finds its own parties among all
    let tag = tag("K");
    let no = |i: u32| format!("C{i:02}");
    let name = |n: &str| format!("{n} {tag}");
    let term = erp.id("payment_term");

    // day 1: ten customers become ten parties
    let day1: Customers = (1..=10)
        .map(|i| {
            let terms = if i % 2 == 0 { "DUE" } else { "N30" };
            (no(i), name(&format!("Customer {i}")), terms)
        })
        .collect();
    t.write("drop/inbox/CUST_1.csv", customers_csv(&day1));
    let out = run(&t, &erp, &["run", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["files"][0]["counts"]["created"], 10, "{out:?}");
    let id = |i: u32| erp_id(&t, &erp, &no(i), "crm-customers");
    let ids: Vec<i64> = (1..=10).map(id).collect();
    let before = parties(&erp, &tag);
    assert_eq!(before.len(), 10, "{before:?}");
    for (i, (_, name, _)) in day1.iter().enumerate() {
        let p = &before[&ids[i]];
        assert_eq!(p["name"], *name, "{p}");
        assert!(truthy(&p["active"]), "{p}");
        assert_eq!(p["customer_payment_term"], term, "{p}");
    }

    // day 2: C01 and C02 renamed, C03 gone, C11 new, the other seven as they were
    let mut day2: Customers = day1
        .iter()
        .filter(|(k, _, _)| *k != no(3))
        .map(|(k, n, terms)| {
            let n = match k.as_str() {
                "C01" => name("Customer One Ltd"),
                "C02" => name("Customer Two AS"),
                _ => n.clone(),
            };
            (k.clone(), n, *terms)
        })
        .collect();
    day2.push((no(11), name("Customer 11"), "N30"));
    t.write("drop/inbox/CUST_2.csv", customers_csv(&day2));
    let out = run(&t, &erp, &["run", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let c = &out.json()["files"][0]["counts"];
    assert_eq!(
        (&c["created"], &c["updated"], &c["deleted"], &c["unchanged"]),
        (&json!(1), &json!(2), &json!(1), &json!(7)),
        "{out:?}"
    );
    assert_eq!(
        sent_for(&t, &erp, "CUST_2.csv"),
        ["create C11", "delete C03", "update C01", "update C02"],
        "nothing sent for the seven unchanged customers"
    );
    let after = parties(&erp, &tag);
    assert_eq!(after.len(), 11, "one party more, none twice: {after:?}");
    let p = |i: u32| &after[&ids[i as usize - 1]];
    assert_eq!(p(1)["name"], name("Customer One Ltd"));
    assert_eq!(p(2)["name"], name("Customer Two AS"));
    assert!(truthy(&p(1)["active"]) && truthy(&p(2)["active"]));
    // deactivated, not deleted, and otherwise as it was
    assert!(!truthy(&p(3)["active"]), "{}", p(3));
    assert_eq!(p(3)["name"], name("Customer 3"));
    let new = &after[&id(11)];
    assert!(truthy(&new["active"]), "{new}");
    assert_eq!(new["name"], name("Customer 11"));
    for i in 4..=10 {
        assert_eq!(
            p(i),
            &before[&ids[i as usize - 1]],
            "Tryton wrote nothing to C{i:02}"
        );
    }

    // customers, their addresses and invoices dropped together: one run, in that order
    // (the addresses' file name sorts first; they refer to the customers)
    let mut day3 = day2.clone();
    day3.push((no(12), name("Customer 12"), "DUE"));
    t.write("drop/inbox/CUST_3.csv", customers_csv(&day3));
    t.write(
        "drop/inbox/ADDR_3.csv",
        "CustomerNo;Street;PostalCode;City\nC01;Storgata 1;0155;Oslo\nC12;Bryggen 7;5003;Bergen\n",
    );
    t.write(
        "drop/inbox/INV_3.csv",
        format!(
            "InvoiceNo;InvoiceDate;CustomerId;Terms;ItemCode;Description;Qty;UnitPrice;LineTotal;GLAccount\n\
             {tag}-A;20.11.2026;C01;N30;CONS;Consulting;2;150,00;300,00;4000-00\n\
             {tag}-B;21.11.2026;C12;DUE;CONS;Consulting, remote;1;120,00;120,00;4000-00\n"
        ),
    );
    let out = run(&t, &erp, &["run", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let s = out.json();
    let files: Vec<&str> = s["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["CUST_3.csv", "ADDR_3.csv", "INV_3.csv"]);
    assert_eq!(s["files"][0]["counts"]["created"], 1);
    assert_eq!(s["files"][0]["counts"]["unchanged"], 10);
    for (invoice, i, customer, city, total) in [
        ("A", 1, "Customer One Ltd", "Oslo", "300.00"),
        ("B", 12, "Customer 12", "Bergen", "120.00"),
    ] {
        let reference = format!("{tag}-{invoice}");
        let party = id(i);
        let address = erp_id(&t, &erp, &no(i), "crm-addresses");
        let invoice = erp_id(&t, &erp, &reference, "billing-to-tryton");
        let inv = erp.get(&format!(
            "account.invoice/{invoice}?f=reference&f=total_amount&f=party.name&f=invoice_address.party&f=invoice_address.city"
        ));
        assert_eq!(inv["reference"], reference, "{inv}");
        assert_eq!(inv["party"]["id"], party, "{inv}");
        assert_eq!(inv["party"]["name"], name(customer), "{inv}");
        assert_eq!(inv["invoice_address"]["id"], address, "{inv}");
        assert_eq!(inv["invoice_address"]["party"], party, "{inv}");
        assert_eq!(inv["invoice_address"]["city"], city, "{inv}");
        assert_eq!(decimal(&inv["total_amount"]), total, "{inv}");
    }
}

/// The example with its batched JSON-RPC config (`rpc.toml`), pointed at this Tryton, with
/// the example's customers and addresses created through the REST config first and the
/// example's own invoice file taken away.
fn rpc_example(erp: &Tryton) -> TestDir {
    let t = example(erp);
    std::fs::remove_file(t.join("drop/inbox/INV_2026-11-21.csv")).unwrap();
    let out = run(&t, erp, &["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let cfg = t
        .read("rpc.toml")
        .replace("http://127.0.0.1:8000/tryton", &erp.url);
    t.write("rpc.toml", cfg);
    t
}

/// erpdrop with the batched config and Tryton's admin login (JSON-RPC takes HTTP basic).
fn rpc_cmd(t: &TestDir) -> std::process::Command {
    let mut c = t.spawn_cmd();
    c.env("TRYTON_USER", "admin")
        .env("TRYTON_PASSWORD", "admin")
        .args(["-c", "rpc.toml"]);
    c
}

fn rpc(t: &TestDir, args: &[&str]) -> Out {
    let o = rpc_cmd(t).args(args).output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// A billing file of `n` one-line invoices `TAG-0001`... for the example's customers;
/// the invoice numbers in `bad` go to the unmapped GL account (Tryton refuses them).
fn billing_csv(tag: &str, n: usize, bad: &[usize]) -> String {
    let mut s =
        String::from("InvoiceNo;InvoiceDate;CustomerId;Terms;ItemCode;Description;Qty;UnitPrice;LineTotal;GLAccount\n");
    for i in 1..=n {
        let customer = if i % 2 == 0 { "C-1002" } else { "C-1001" };
        let gl = if bad.contains(&i) {
            "9999-00"
        } else {
            "4000-00"
        };
        s.push_str(&format!(
            "{tag}-{i:04};20.11.2026;{customer};N30;CONS;Consulting {i};1;{i},00;{i},00;{gl}\n"
        ));
    }
    s
}

/// How many times Tryton holds each invoice reference of this tag.
fn references(erp: &Tryton, tag: &str) -> std::collections::BTreeMap<String, usize> {
    let mut seen = std::collections::BTreeMap::new();
    for inv in erp.get("account.invoice?f=reference").as_array().unwrap() {
        let r = inv["reference"].as_str().unwrap_or("");
        if r.starts_with(&format!("{tag}-")) {
            *seen.entry(r.to_string()).or_insert(0) += 1;
        }
    }
    seen
}

#[test]
fn invoices_go_in_json_rpc_batches_and_the_bad_one_is_refused_alone_with_trytons_message() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let erp = tryton();
    let t = rpc_example(&erp);
    let out = rpc(&t, &["check"]);
    assert_eq!(out.code, 0, "{out:?}");
    let tag = tag("B");
    // 120 invoices in calls of 50; the 57th (in the second call) is refused by Tryton
    t.write("drop/inbox/INV_batch.csv", billing_csv(&tag, 120, &[57]));
    let out = rpc(&t, &["run", "--json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let report = t.read_json("drop/failed/INV_batch.csv.errors.json");
    assert_eq!(report["counts"]["accepted"], 119, "{report}");
    assert_eq!(report["counts"]["rejected"], 1);
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{report}");
    assert_eq!(errors[0]["document"], format!("{tag}-0057"));
    assert_eq!(errors[0]["code"], "rejected");
    let msg = errors[0]["message"].as_str().unwrap();
    assert!(
        msg.contains("\"88888\"") && msg.contains("is not valid according to its domain"),
        "Tryton's own message: {msg}"
    );
    // read back: every good invoice once, the bad one not at all
    let seen = references(&erp, &tag);
    assert_eq!(seen.len(), 119, "{seen:?}");
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
    assert!(!seen.contains_key(&format!("{tag}-0057")));
    // each with the id the ledger and the report hold
    let docs = report["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 119);
    for d in docs.iter().step_by(17) {
        let id = d["id"].as_str().unwrap();
        let inv = erp.get(&format!("account.invoice/{id}?f=reference&f=total_amount"));
        assert_eq!(inv["reference"], d["document"], "{inv}");
    }
    assert!(!out.stdout.contains("admin:admin") && !out.stderr.contains("YWRtaW46YWRtaW4"));
    // the fix: the account is mapped; reprocess sends the one invoice, alone
    let revenue = erp.id("revenue_account");
    t.write(
        "xref/accounts.csv",
        format!("gl,tryton_id\n4000-00,{revenue}\n4100-00,{revenue}\n9999-00,{revenue}\n"),
    );
    let out = rpc(&t, &["reprocess", "--all", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["files"][0]["counts"]["accepted"], 1);
    let seen = references(&erp, &tag);
    assert_eq!(seen.len(), 120);
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
}

#[cfg(unix)]
#[test]
fn a_run_killed_in_mid_batch_creates_no_invoice_twice_because_verify_asks_tryton() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let erp = tryton();
    let t = rpc_example(&erp);
    // small calls, so that the kill lands while one is at Tryton
    let cfg = t.read("rpc.toml").replace("size = 50,", "size = 10,");
    t.write("rpc.toml", cfg);
    let tag = tag("V");
    t.write("drop/inbox/INV_kill.csv", billing_csv(&tag, 200, &[]));
    let mut child = rpc_cmd(&t)
        .args(["-q", "run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while references(&erp, &tag).len() < 30 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = references(&erp, &tag).len();
    assert!(before < 200, "killed before the end: {before}");
    // Tryton ignores Idempotency-Key: the batch in flight at the kill is looked up by
    // reference (verify) before anything of it goes again
    let out = rpc(&t, &["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let seen = references(&erp, &tag);
    assert_eq!(seen.len(), 200, "every invoice in Tryton");
    assert!(
        seen.values().all(|&n| n == 1),
        "none twice: {:?}",
        seen.iter().filter(|(_, &n)| n > 1).collect::<Vec<_>>()
    );
}
