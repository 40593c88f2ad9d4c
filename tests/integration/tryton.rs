//! Against a real ERP: Tryton 8.2 on loopback, brought up by `scripts/tryton-up.sh`
//! (`.ci/run` and `scripts/test-tryton` do it and set the environment below).
//!
//! - The example inbox in one run: the CRM's customers and their addresses become
//!   parties, then the billing file becomes customer invoices for those parties (`ref`);
//!   a rejected invoice shows Tryton's own message; reprocess after the fix.
//!
//! Needs: ERPDROP_TRYTON_URL (e.g. http://127.0.0.1:8000/tryton), ERPDROP_TRYTON_IDS
//! (the ids.json of the bring-up). Built only with `--features tryton`.

use crate::util::{Out, TestDir};
use base64::Engine as _;
use serde_json::Value;

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
    fn get(&self, path: &str) -> Value {
        let ctx = base64::engine::general_purpose::URL_SAFE.encode(r#"{"company":1}"#);
        ureq::get(&format!("{}/rest/model/{path}", self.url))
            .set("Authorization", &format!("Bearer {}", self.key))
            .set("X-Tryton-Context", &ctx)
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .into_json()
            .unwrap()
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
