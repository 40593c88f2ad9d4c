//! Against a real ERP: Tryton 8.2 on loopback, brought up by `scripts/tryton-up.sh`
//! (`.ci/run` and `scripts/test-tryton` do it and set the environment below). Imports the
//! example billing file into customer invoices, reads them back over the REST API, and
//! shows a rejected invoice with Tryton's own message; then reprocess after the fix.
//!
//! Needs: ERPDROP_TRYTON_URL (e.g. http://127.0.0.1:8000/tryton), ERPDROP_TRYTON_IDS
//! (the ids.json of the bring-up). Built only with `--features tryton`.

use crate::util::TestDir;
use base64::Engine as _;

struct Tryton {
    url: String,
    key: String,
    ids: serde_json::Value,
}

fn tryton() -> Tryton {
    let url = std::env::var("ERPDROP_TRYTON_URL").expect(
        "ERPDROP_TRYTON_URL is not set: run this test through .ci/run or scripts/test-tryton",
    );
    let ids_path = std::env::var("ERPDROP_TRYTON_IDS").expect("ERPDROP_TRYTON_IDS is not set");
    let ids: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ids_path).unwrap()).unwrap();
    Tryton {
        url,
        key: ids["rest_key"].as_str().unwrap().to_string(),
        ids,
    }
}

impl Tryton {
    fn get(&self, path: &str) -> serde_json::Value {
        let ctx = base64::engine::general_purpose::URL_SAFE.encode(r#"{"company":1}"#);
        ureq::get(&format!("{}/rest/model/{path}", self.url))
            .set("Authorization", &format!("Bearer {}", self.key))
            .set("X-Tryton-Context", &ctx)
            .call()
            .unwrap()
            .into_json()
            .unwrap()
    }

    fn id(&self, name: &str) -> i64 {
        self.ids[name].as_i64().unwrap()
    }
}

fn decimal(v: &serde_json::Value) -> String {
    v["decimal"]
        .as_str()
        .unwrap_or_else(|| panic!("not a Decimal: {v}"))
        .to_string()
}

#[test]
fn billing_file_becomes_tryton_invoices_and_a_bad_account_is_rejected_with_trytons_message() {
    let erp = tryton();
    let t = TestDir::new();
    t.copy_from_repo("examples/tryton");
    // point the example at this Tryton and its ids
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
        "xref/customers.csv",
        format!(
            "crm_id,party,address\nC-1001,{},{}\n",
            erp.id("customer"),
            erp.id("customer_address")
        ),
    );
    t.write(
        "xref/terms.csv",
        format!("code,tryton_id\nDUE,{0}\nN30,{0}\n", erp.id("payment_term")),
    );
    let revenue = erp.id("revenue_account");
    t.write(
        "xref/accounts.csv",
        format!("gl,tryton_id\n4000-00,{revenue}\n4100-00,{revenue}\n9999-00,88888\n"),
    );
    // unique references, so that reruns against one database stay apart
    let tag = format!(
        "{}",
        std::process::id() as u64 * 1000 + chrono::Utc::now().timestamp_subsec_millis() as u64
    );
    let csv = t
        .read("drop/inbox/INV_2026-11-21.csv")
        .replace("TRY-", &format!("T{tag}-"));
    t.write("drop/inbox/INV_2026-11-21.csv", csv);

    let run = |args: &[&str]| {
        let o = t
            .cmd()
            .env("TRYTON_KEY", &erp.key)
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code().unwrap(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["check"]);
    assert_eq!(code, 0, "{out}{err}");

    let (code, out, err) = run(&["run"]);
    assert_eq!(code, 1, "{out}{err}");
    let report = t.read_json("drop/failed/INV_2026-11-21.csv.errors.json");
    assert_eq!(report["counts"]["accepted"], 2, "{report}");
    assert_eq!(report["counts"]["rejected"], 1);
    let row = &report["errors"][0];
    assert_eq!(row["stage"], "submit");
    assert_eq!(row["code"], "rejected");
    assert_eq!(row["status"], 400);
    assert_eq!(row["document"], format!("T{tag}-0003"));
    assert_eq!(row["line"], 5);
    let msg = row["message"].as_str().unwrap();
    assert!(
        msg.contains("\"88888\"") && msg.contains("is not valid according to its domain"),
        "{msg}"
    );
    assert!(!err.contains(&erp.key) && !out.contains(&erp.key));

    // read the invoices back and compare with the file
    let docs = report["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 2);
    let expect = [
        (format!("T{tag}-0001"), "399.50", vec!["300.00", "99.50"]),
        (format!("T{tag}-0002"), "420.00", vec!["420.00"]),
    ];
    for (reference, total, lines) in &expect {
        let d = docs.iter().find(|d| d["document"] == *reference).unwrap();
        let id = d["id"].as_str().unwrap();
        let inv = erp.get(&format!(
            "account.invoice/{id}?f=reference&f=total_amount&f=invoice_date&f=party&f=lines.amount&f=lines.quantity&f=lines.description"
        ));
        assert_eq!(inv["reference"], *reference);
        assert_eq!(decimal(&inv["total_amount"]), *total, "{inv}");
        assert_eq!(inv["party"], erp.id("customer"));
        let got: Vec<String> = inv["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| decimal(&l["amount"]))
            .collect();
        let mut got_sorted = got.clone();
        got_sorted.sort();
        let mut want: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(got_sorted, want, "{inv}");
    }

    // the fix: the GL account is mapped to a real Tryton account; only that invoice goes
    t.write(
        "xref/accounts.csv",
        format!("gl,tryton_id\n4000-00,{revenue}\n4100-00,{revenue}\n9999-00,{revenue}\n"),
    );
    let (code, out, err) = run(&["reprocess", "--all", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
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
                .starts_with(&format!("T{tag}-"))
        })
        .count();
    assert_eq!(ours, 3, "each invoice exactly once in Tryton");
}
