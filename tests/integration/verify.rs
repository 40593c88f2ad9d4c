//! `target.verify`: an ERP that ignores `Idempotency-Key` (as most do) and commits a
//! create whose answer comes after the client's timeout. Without verify, the resend
//! makes a second invoice; with it, erpdrop asks the ERP first and settles the document
//! from the answer, in the same run or in the next one.

use crate::util::erp::{Behaviour, FakeErp};
use crate::util::{invoices_csv, TestDir, INVOICE_MAPPING};
use std::time::Duration;

/// An ERP that ignores idempotency keys and answers the first create 1.5 s late (past
/// erpdrop's timeout of 1 s), after creating it.
fn forgetful_erp() -> FakeErp {
    FakeErp::start(Behaviour {
        ignore_idempotency: true,
        late: 1,
        late_delay: Duration::from_millis(1500),
        ..Behaviour::default()
    })
}

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
url = "{base}/api/{{document}}"
timeout_seconds = 1
id_pointer = "/id"
concurrency = 1
{extra}
"#,
            base = erp.base()
        ),
    );
    t
}

fn verify_line(erp: &FakeErp) -> String {
    format!(
        r#"verify = {{ url = "{}/search?number={{key}}", found_pointer = "/0/id" }}"#,
        erp.base()
    )
}

/// The searches the ERP was asked, by the number searched for.
fn searches(erp: &FakeErp) -> Vec<String> {
    erp.requests()
        .iter()
        .filter_map(|r| r.path.strip_prefix("/search?number=").map(str::to_string))
        .collect()
}

#[test]
fn a_create_that_timed_out_is_looked_up_before_it_is_sent_again() {
    // Without verify the retry, under the same idempotency key, makes a second invoice
    // at an ERP that ignores the key: the hazard this setting exists for.
    let plain = forgetful_erp();
    let t = setup(&plain, "retry = { attempts = 3, backoff_ms = 10 }");
    t.write("drop/inbox/INV_1.csv", invoices_csv(3, 1));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        plain.created(),
        (3, 2),
        "the timed-out invoice created twice"
    );

    let erp = forgetful_erp();
    let t = setup(
        &erp,
        &format!(
            "retry = {{ attempts = 3, backoff_ms = 10 }}\n{}",
            verify_line(&erp)
        ),
    );
    t.write("drop/inbox/INV_1.csv", invoices_csv(3, 1));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(erp.created(), (3, 1), "every invoice created once");
    // only the document whose attempt had no known outcome was looked up
    assert_eq!(searches(&erp), ["INV000000"]);
    // and it is recorded with the id the ERP gave it
    let id = erp.id_of("INV000000").unwrap().to_string();
    let done = t.read_json(&format!(
        "drop/done/{}/INV_1.csv.report.json",
        chrono::Local::now().format("%Y-%m-%d")
    ));
    let doc = done["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["document"] == "INV000000")
        .unwrap()
        .clone();
    assert_eq!(doc["id"], id.as_str(), "{done}");
    let shown = t.run(&["history", "INV000000", "--json"]);
    assert_eq!(shown.code, 0, "{shown:?}");
    assert!(shown.stdout.contains(&id), "{}", shown.stdout);
}

#[test]
fn a_document_a_run_left_in_flight_is_settled_by_the_next_run_from_the_erps_answer() {
    let erp = forgetful_erp();
    let t = setup(
        &erp,
        &format!(
            "retry = {{ attempts = 2, backoff_ms = 10 }}\n{}",
            verify_line(&erp)
        ),
    );
    // The search fails while the ERP is busy: nothing can be said, so nothing is sent
    // again; the run gives up with the invoice still in flight.
    t.write("drop/inbox/INV_1.csv", invoices_csv(3, 1));
    // first run: the create times out, the lookup is answered 503 twice
    let first = std::thread::scope(|s| {
        let run = s.spawn(|| t.run(&["run"]));
        // once the late create is in, the ERP is busy for the searches
        while erp.created().0 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        erp.set(|b| b.fail_next = 2);
        run.join().unwrap()
    });
    assert_eq!(first.code, 3, "{first:?}");
    assert_eq!(t.ls("drop/inbox"), ["INV_1.csv"]);
    assert_eq!(erp.created(), (1, 1));
    let doc = &t.run(&["history", "INV000000", "--json"]);
    assert!(doc.stdout.contains("unknown"), "{doc:?}");

    // next run: the ERP answers; it has the invoice: settled, not sent again; the
    // others are sent
    let second = t.run(&["run"]);
    assert_eq!(second.code, 0, "{second:?}");
    assert_eq!(erp.created(), (3, 1), "every invoice created once");
    assert_eq!(
        searches(&erp).len(),
        3,
        "two unanswered lookups, then one answered: {:?}",
        searches(&erp)
    );
    let status = t.run(&["status", "--json"]);
    assert_eq!(status.code, 0, "{status:?}");
}

#[test]
fn a_document_the_erp_does_not_have_is_sent_after_the_lookup() {
    // the connection is closed after the request was read, before anything was created:
    // the outcome is unknown to erpdrop
    let erp = FakeErp::start(Behaviour {
        ignore_idempotency: true,
        drop_next: 1,
        ..Behaviour::default()
    });
    let t = setup(
        &erp,
        &format!(
            "retry = {{ attempts = 1, backoff_ms = 10 }}\n{}",
            verify_line(&erp)
        ),
    );
    t.write("drop/inbox/INV_1.csv", invoices_csv(2, 1));
    let first = t.run(&["run"]);
    assert_eq!(first.code, 3, "{first:?}");
    assert_eq!(erp.created(), (0, 0));
    assert!(searches(&erp).is_empty());
    let second = t.run(&["run"]);
    assert_eq!(second.code, 0, "{second:?}");
    assert_eq!(searches(&erp), ["INV000000"], "asked once, then sent");
    assert_eq!(erp.created(), (2, 1));
}

#[test]
fn a_lookup_refused_as_a_bad_request_stops_the_run_and_sends_nothing_again() {
    let erp = FakeErp::start(Behaviour {
        ignore_idempotency: true,
        late: 1,
        late_delay: Duration::from_millis(1500),
        ..Behaviour::default()
    });
    // a search URL the ERP does not serve: answered 400 (a bad setting, not a document)
    let t = setup(
        &erp,
        &format!(
            r#"retry = {{ attempts = 3, backoff_ms = 10 }}
verify = {{ url = "{}/search-typo/{{key}}", method = "POST", body = '{{"reference": "{{key}}"}}', found_pointer = "/0/id" }}"#,
            erp.base()
        ),
    );
    erp.set(|b| {
        b.reject.insert(String::new());
    });
    t.write("drop/inbox/INV_1.csv", invoices_csv(2, 1));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("check target.verify"), "{}", out.stderr);
    assert_eq!(erp.created(), (1, 1), "never sent again without an answer");
    assert_eq!(t.ls("drop/inbox"), ["INV_1.csv"]);
    let asked: Vec<_> = erp
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/search-typo/"))
        .collect();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].method, "POST");
    assert_eq!(asked[0].body, r#"{"reference": "INV000000"}"#);
}

/// `invoices_csv(n, 1)` with the first invoice's item changed: other content.
fn changed_first(n: usize) -> String {
    invoices_csv(n, 1).replacen(";ITEM0;", ";ITEM9;", 1)
}

#[test]
fn a_document_in_doubt_is_settled_by_the_erps_answer_not_left_to_an_operator() {
    // The ERP created the first version (its answer came too late), and the file then
    // arrives with other content. Without verify it is in doubt until an operator
    // decides; with verify the ERP's answer decides: it has the first version, so the
    // new one is a change of an imported invoice (not created again).
    let erp = forgetful_erp();
    let t = setup(
        &erp,
        &format!(
            "retry = {{ attempts = 1, backoff_ms = 10 }}\n{}",
            verify_line(&erp)
        ),
    );
    t.write("drop/inbox/INV_1.csv", invoices_csv(2, 1));
    assert_eq!(t.run(&["run"]).code, 3);
    assert_eq!(erp.created(), (1, 1));
    let id = erp.id_of("INV000000").unwrap();
    t.write("drop/inbox/INV_1.csv", changed_first(2));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    // nothing created twice (and, by the default policy reject-file, nothing of a file
    // with an invalid document)
    assert_eq!(erp.created(), (1, 1));
    let report = t.read_json("drop/failed/INV_1.csv.errors.json");
    let codes: Vec<_> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["document"].clone(), e["code"].clone()))
        .collect();
    assert_eq!(
        codes,
        [(
            serde_json::json!("INV000000"),
            serde_json::json!("conflict")
        )],
        "{report}"
    );
    let h = t.run(&["history", "INV000000", "--json"]).json();
    let text = h.to_string();
    assert!(text.contains("target.verify"), "{text}");
    assert!(text.contains(&id.to_string()), "{text}");

    // The ERP never got the first version: the new content is sent, once.
    let erp = FakeErp::start(Behaviour {
        ignore_idempotency: true,
        drop_next: 1,
        ..Behaviour::default()
    });
    let t = setup(
        &erp,
        &format!(
            "retry = {{ attempts = 1, backoff_ms = 10 }}\n{}",
            verify_line(&erp)
        ),
    );
    t.write("drop/inbox/INV_1.csv", invoices_csv(2, 1));
    assert_eq!(t.run(&["run"]).code, 3);
    t.write("drop/inbox/INV_1.csv", changed_first(2));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(erp.created(), (2, 1));
    let rec = &erp.records()[&erp.id_of("INV000000").unwrap()];
    assert_eq!(rec["lines"][0]["item"], "ITEM9", "{rec}");

    // without verify, the same is in doubt and waits for an operator
    let erp = FakeErp::start(Behaviour {
        ignore_idempotency: true,
        drop_next: 1,
        ..Behaviour::default()
    });
    let t = setup(&erp, "retry = { attempts = 1, backoff_ms = 10 }");
    t.write("drop/inbox/INV_1.csv", invoices_csv(2, 1));
    assert_eq!(t.run(&["run"]).code, 3);
    t.write("drop/inbox/INV_1.csv", changed_first(2));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(erp.created(), (0, 0));
    let report = t.read_json("drop/failed/INV_1.csv.errors.json");
    assert_eq!(report["errors"][0]["code"], "in_doubt", "{report}");
}

#[test]
fn a_lookup_carries_the_token_the_target_logged_in_with() {
    // the ERP wants a bearer token that only the token endpoint gives: the lookup, like
    // the creates, goes through the one place that adds the credential
    let idp = crate::util::login_erp::LoginErp::start(crate::util::login_erp::Behaviour {
        fixed_token: Some("tok-from-the-idp-5e8f".into()),
        ..Default::default()
    });
    let erp = FakeErp::start(Behaviour {
        ignore_idempotency: true,
        late: 1,
        late_delay: Duration::from_millis(1500),
        token: Some("tok-from-the-idp-5e8f".into()),
        ..Behaviour::default()
    });
    let t = setup(
        &erp,
        &format!(
            "retry = {{ attempts = 3, backoff_ms = 10 }}\n{}\nauth = {{ oauth2 = {{ token_url = \"{}/oauth2/token\", client_id_env = \"CID\", client_secret_env = \"CSECRET\" }} }}",
            verify_line(&erp),
            idp.base()
        ),
    );
    t.write("drop/inbox/INV_1.csv", invoices_csv(3, 1));
    let out = t
        .cmd()
        .env("CID", "app")
        .env("CSECRET", "secret-of-the-app-91")
        .arg("run")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(erp.created(), (3, 1), "every invoice created once");
    assert_eq!(searches(&erp), ["INV000000"]);
    assert_eq!(idp.to("/oauth2/token").len(), 1);
}

#[test]
fn an_answer_of_another_shape_than_found_pointer_is_never_taken_for_not_there() {
    // the verify URL is the ERP's health page: it answers {"status": "ok"}, which says
    // nothing of the document; taken for "not there", the invoice would be created twice
    let erp = forgetful_erp();
    let t = setup(
        &erp,
        &format!(
            r#"retry = {{ attempts = 3, backoff_ms = 10 }}
verify = {{ url = "{}/health", found_pointer = "/0/id" }}"#,
            erp.base()
        ),
    );
    t.write("drop/inbox/INV_1.csv", invoices_csv(2, 1));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains("has no /0/id")
            && out.stderr.contains("check target.verify.found_pointer"),
        "{}",
        out.stderr
    );
    assert_eq!(erp.created(), (1, 1), "never sent again without an answer");
    assert_eq!(t.ls("drop/inbox"), ["INV_1.csv"]);
}
