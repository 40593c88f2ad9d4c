//! The HTTP target against hostile or misconfigured ERPs (issue 11): a redirect is
//! never delivery, refused credentials are the target being unavailable, secrets echoed
//! by the ERP are stored and printed nowhere, a key cannot change the request's path,
//! and text logs keep one event per line whatever a file name or an ERP message holds.

use crate::util::erp::{Behaviour, FakeErp};
use crate::util::{invoices_csv, TestDir, INVOICE_HEADER, INVOICE_MAPPING};

const TOKEN: &str = "s3cret-t0ken-value";
const KEY: &str = "k3y-that-must-stay-secret";

/// An http target at `url` (`{base}` is the fake ERP) with `auth` and `extra` lines.
fn setup(erp: &FakeErp, url: &str, auth: &str, extra: &str) -> TestDir {
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    let url = url.replace("{base}", &erp.base());
    t.write(
        "erpdrop.toml",
        format!(
            "[folders]\nroot = \"drop\"\n[scan]\nsettle_seconds = 0\n[target]\nkind = \"http\"\n\
             url = \"{url}\"\n{auth}\ntimeout_seconds = 5\nid_pointer = \"/id\"\n{extra}\n"
        ),
    );
    t
}

fn run_env(t: &TestDir, env: &[(&str, &str)], args: &[&str]) -> crate::util::Out {
    let mut c = t.cmd();
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.args(args).output().unwrap();
    crate::util::Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn today() -> String {
    chrono::Local::now().format("%Y-%m-%d").to_string()
}

/// The `documents` counts of `status --json` (state -> count).
fn doc_counts(t: &TestDir, env: &[(&str, &str)]) -> serde_json::Value {
    let st = run_env(t, env, &["status", "--json"]);
    assert_eq!(st.code, 0, "{st:?}");
    st.json()["documents"].clone()
}

#[test]
fn a_redirect_is_never_delivery_and_the_file_waits_in_the_inbox() {
    let env = [("ERP_TOKEN", TOKEN)];
    for code in [301u16, 302, 303, 307, 308] {
        let erp = FakeErp::start(Behaviour::default());
        // the ERP moved: a followed redirect would reach a server that answers 200
        let location = format!("{}/moved/api/sales_invoice", erp.base());
        erp.set(|b| b.redirect = Some((code, location.clone())));
        let t = setup(
            &erp,
            "{base}/api/{document}",
            "auth = { bearer_env = \"ERP_TOKEN\" }",
            "concurrency = 2\nretry = { attempts = 4, backoff_ms = 10 }",
        );
        t.write("drop/inbox/INV_1.csv", invoices_csv(6, 1));
        let out = run_env(&t, &env, &["run"]);
        assert_eq!(out.code, 3, "HTTP {code}: {out:?}");
        assert_eq!(t.ls("drop/inbox"), vec!["INV_1.csv"], "HTTP {code}");
        assert!(t.ls("drop/failed").is_empty(), "HTTP {code}");
        assert!(t.ls("drop/done").is_empty(), "HTTP {code}");
        assert!(t.ls("drop/processing").is_empty(), "HTTP {code}");
        // never followed, never retried: at most one request per worker
        let reqs = erp.requests();
        assert!(
            reqs.iter()
                .all(|r| r.method == "POST" && r.path == "/api/sales_invoice"),
            "HTTP {code}: {reqs:?}"
        );
        assert!(reqs.len() <= 2, "HTTP {code}: {} requests", reqs.len());
        // the message names the status and where the ERP points
        assert!(
            out.stderr.contains(&format!("HTTP {code}")),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains(&location), "{}", out.stderr);
        assert!(out.stderr.contains("target.url"), "{}", out.stderr);
        // nothing is recorded as accepted
        let counts = doc_counts(&t, &env);
        assert!(counts.get("accepted").is_none(), "HTTP {code}: {counts}");
        assert_eq!(erp.created(), (0, 0));

        // the URL is fixed (here: the ERP stops redirecting): the next run sends it
        erp.set(|b| b.redirect = None);
        let out = run_env(&t, &env, &["run"]);
        assert_eq!(out.code, 0, "HTTP {code}: {out:?}");
        assert_eq!(erp.created(), (6, 1), "HTTP {code}");
        assert_eq!(
            t.ls(&format!("drop/done/{}", today())),
            vec!["INV_1.csv", "INV_1.csv.report.json"]
        );
        assert_eq!(doc_counts(&t, &env)["accepted"], 6);
    }
}

#[test]
fn check_reports_a_redirect_as_a_problem() {
    let erp = FakeErp::start(Behaviour::default());
    // a followed redirect would reach a server that answers 200
    let location = format!("{}/moved/health", erp.base());
    erp.set(|b| b.redirect = Some((301, location.clone())));
    let t = setup(
        &erp,
        "{base}/api/{document}",
        &format!("health_url = \"{}/health\"", erp.base()),
        "",
    );
    let out = run_env(&t, &[], &["check"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("HTTP 301"), "{}", out.stderr);
    assert!(out.stderr.contains(&location), "{}", out.stderr);
    assert_eq!(erp.request_count(), 1, "the redirect was not followed");
}

#[test]
fn refused_credentials_are_the_target_unavailable_not_the_documents() {
    for code in [401u16, 403] {
        let erp = FakeErp::start(Behaviour {
            token: Some(TOKEN.into()),
            refuse_status: Some(code),
            ..Behaviour::default()
        });
        let t = setup(
            &erp,
            "{base}/api/{document}",
            "auth = { bearer_env = \"ERP_TOKEN\" }",
            "concurrency = 2\nretry = { attempts = 4, backoff_ms = 10 }",
        );
        t.write("drop/inbox/INV_1.csv", invoices_csv(20, 1));
        t.write(
            "drop/inbox/INV_2.csv",
            invoices_csv(3, 1).replace("INV0", "B0"),
        );
        let wrong = [("ERP_TOKEN", "expired-t0ken")];
        let out = run_env(&t, &wrong, &["run"]);
        assert_eq!(out.code, 3, "HTTP {code}: {out:?}");
        assert_eq!(t.ls("drop/inbox"), vec!["INV_1.csv", "INV_2.csv"]);
        assert!(t.ls("drop/failed").is_empty(), "HTTP {code}");
        // no retries, every worker stops: one request per worker at most
        assert!(
            erp.request_count() <= 2,
            "HTTP {code}: {} requests",
            erp.request_count()
        );
        assert!(
            out.stderr.contains(&format!("HTTP {code}")),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("invalid token"), "{}", out.stderr);
        assert!(out.stderr.contains("credentials"), "{}", out.stderr);
        assert!(!out.stderr.contains("expired-t0ken"), "{}", out.stderr);
        let counts = doc_counts(&t, &wrong);
        assert!(counts.get("rejected").is_none(), "HTTP {code}: {counts}");

        let out = run_env(&t, &[("ERP_TOKEN", TOKEN)], &["run"]);
        assert_eq!(out.code, 0, "HTTP {code}: {out:?}");
        assert_eq!(erp.created(), (23, 1));
    }
}

#[test]
fn dot_keys_never_change_the_request_path() {
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(&erp, "{base}/api/{document}/{key}", "", "concurrency = 1");
    let mut csv = String::from(INVOICE_HEADER);
    for key in ["A1", ".", "..", "...", "%2e%2e", "B2"] {
        csv.push_str(&format!("{key};20.11.2026;C1;N30;1,50;X;1,50\n"));
    }
    t.write("drop/inbox/INV_1.csv", csv);
    let out = run_env(&t, &[], &["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    let mut paths: Vec<String> = erp.requests().into_iter().map(|r| r.path).collect();
    paths.sort();
    // `...` is no dot segment and `%` is encoded: both reach their own path
    assert_eq!(
        paths,
        [
            "/api/sales_invoice/%252e%252e",
            "/api/sales_invoice/...",
            "/api/sales_invoice/A1",
            "/api/sales_invoice/B2"
        ]
    );
    let report = t.read_json("drop/failed/INV_1.csv.errors.json");
    assert_eq!(report["counts"]["accepted"], 4);
    assert_eq!(report["counts"]["rejected"], 2);
    let rows = report["errors"].as_array().unwrap();
    let mut docs: Vec<&str> = rows
        .iter()
        .map(|r| r["document"].as_str().unwrap())
        .collect();
    docs.sort();
    assert_eq!(docs, [".", ".."]);
    for r in rows {
        assert_eq!(r["code"], "rejected", "{r}");
        assert_eq!(r["stage"], "submit", "{r}");
        assert!(r.get("status").is_none(), "never sent: {r}");
        let msg = r["message"].as_str().unwrap();
        assert!(msg.contains("URL path segment"), "{msg}");
        assert!(msg.contains("line "), "{msg}");
    }
}

/// Every file under `dir`, recursively, as text.
fn files_under(t: &TestDir, dir: &str) -> Vec<(String, String)> {
    walkdir::WalkDir::new(t.join(dir))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let bytes = std::fs::read(e.path()).unwrap();
            (
                e.path().display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            )
        })
        .collect()
}

#[test]
fn secrets_echoed_by_the_erp_are_stored_and_printed_nowhere() {
    use base64::Engine as _;
    let user = "erp-api-user";
    let password = "pa55-w0rd-for-the-erp";
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    // (the auth lines, the environment, the secrets that must appear nowhere)
    type Flavour<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<String>);
    let flavours: [Flavour<'_>; 2] = [
        (
            "auth = { bearer_env = \"ERP_TOKEN\" }\nheaders = { X-Api-Key = { env = \"ERP_KEY\" } }",
            vec![("ERP_TOKEN", TOKEN), ("ERP_KEY", KEY)],
            vec![TOKEN.to_string(), KEY.to_string()],
        ),
        (
            "auth = { basic_user_env = \"ERP_USER\", basic_password_env = \"ERP_PASSWORD\", \
             header = \"X-Api-Key\", header_env = \"ERP_KEY\" }",
            vec![("ERP_USER", user), ("ERP_PASSWORD", password), ("ERP_KEY", KEY)],
            vec![
                user.to_string(),
                password.to_string(),
                basic.clone(),
                KEY.to_string(),
            ],
        ),
    ];
    for (auth, env, secrets) in flavours {
        let erp = FakeErp::start(Behaviour {
            reject: ["INV000001".to_string(), "B000001".to_string()].into(),
            echo_headers: true,
            ..Behaviour::default()
        });
        let t = setup(
            &erp,
            "{base}/api/{document}",
            auth,
            "concurrency = 1\nretry = { attempts = 2, backoff_ms = 10 }",
        );
        let mut seen = Vec::new();
        // a 400 echoing the headers: text summary and text logs
        t.write("drop/inbox/INV_1.csv", invoices_csv(3, 1));
        let out = run_env(&t, &env, &["run"]);
        assert_eq!(out.code, 1, "{out:?}");
        seen.push(("run", out));
        // the same in JSON: the summary and the logs
        t.write(
            "drop/inbox/INV_2.csv",
            invoices_csv(3, 1).replace("INV0", "B0"),
        );
        let out = run_env(&t, &env, &["--log-format", "json", "run", "--json"]);
        assert_eq!(out.code, 1, "{out:?}");
        assert!(out.json()["files"][0]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("you sent Authorization: "));
        seen.push(("run --json", out));
        // a 500 echoing them: the document in flight keeps it as its last error, the
        // ERROR log line says it, in text and in JSON
        erp.set(|b| {
            b.down = true;
            b.down_status = Some(500);
        });
        t.write(
            "drop/inbox/INV_3.csv",
            invoices_csv(2, 1).replace("INV0", "C0"),
        );
        for args in [&["run"][..], &["--log-format", "json", "run"][..]] {
            let out = run_env(&t, &env, args);
            assert_eq!(out.code, 3, "{out:?}");
            assert!(out.stderr.contains("you sent Authorization: "), "{out:?}");
            seen.push(("run (down)", out));
        }
        // the rejected files again: their reports go to failed/.history
        erp.set(|b| b.down = false);
        let out = run_env(&t, &env, &["reprocess", "--all"]);
        assert_eq!(out.code, 1, "{out:?}");
        seen.push(("reprocess", out));
        for args in [
            &["status"][..],
            &["status", "--json"][..],
            &["status", "--failed"][..],
        ] {
            let out = run_env(&t, &env, args);
            assert_eq!(out.code, 0, "{out:?}");
            seen.push(("status", out));
        }
        let status = run_env(&t, &env, &["status", "--json"]).json();
        let docs = status["failed_documents"].as_array().unwrap();
        assert!(
            docs.iter().any(|d| d["state"] == "in_flight"
                && d["last_error"].as_str().unwrap().contains("you sent")),
            "{status}"
        );

        let mut texts: Vec<(String, String)> = Vec::new();
        for (what, out) in seen {
            texts.push((format!("{what}: stdout"), out.stdout));
            texts.push((format!("{what}: stderr"), out.stderr));
        }
        let failed = files_under(&t, "drop/failed");
        assert!(
            failed.iter().any(|(p, _)| p.contains(".history")),
            "{failed:?}"
        );
        let reports: Vec<_> = failed
            .iter()
            .filter(|(p, _)| p.ends_with(".errors.json") || p.ends_with(".errors.csv"))
            .collect();
        assert_eq!(reports.len(), 8, "{failed:?}");
        for (p, text) in &reports {
            // the ERP's echo is there, with the secrets masked
            assert!(text.contains("you sent Authorization: "), "{p}: {text}");
            assert!(text.contains("***"), "{p}: {text}");
        }
        texts.extend(failed);
        texts.extend(files_under(&t, "drop/.erpdrop"));
        for (what, text) in &texts {
            for s in &secrets {
                assert!(!text.contains(s.as_str()), "{s} in {what}:\n{text}");
            }
        }
    }
}

#[cfg(unix)]
#[test]
fn text_logs_keep_one_event_per_line() {
    let erp = FakeErp::start(Behaviour {
        down: true,
        error_text: Some("maintenance\nERROR forged: all documents posted\r\x1b[2K".into()),
        ..Behaviour::default()
    });
    let t = setup(
        &erp,
        "{base}/api/{document}",
        "",
        "concurrency = 1\nretry = { attempts = 1 }",
    );
    let name = "INV_x\nERROR forged: file accepted.csv";
    t.write(&format!("drop/inbox/{name}"), invoices_csv(2, 1));
    let out = run_env(&t, &[], &["run"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(t.ls("drop/inbox"), vec![name.to_string()]);
    let event =
        regex::Regex::new(r"^\d{4}-\d\d-\d\dT\S+\s+(TRACE|DEBUG|INFO|WARN|ERROR) ").unwrap();
    for line in out.stderr.lines() {
        assert!(
            event.is_match(line),
            "a forged log line: {line:?}\n{}",
            out.stderr
        );
    }
    assert!(!out.stderr.contains('\r') && !out.stderr.contains('\x1b'));
    // the file and the ERP's message are there, escaped
    assert!(
        out.stderr
            .contains(r"INV_x\nERROR forged: file accepted.csv"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(r"maintenance\nERROR forged: all documents posted\r\x1b[2K"),
        "{}",
        out.stderr
    );
    // the summary on stdout too: one line per file, its problems indented
    for line in out.stdout.lines() {
        assert!(!line.starts_with("ERROR"), "{line:?}\n{}", out.stdout);
    }
    // JSON logs escape by their nature: every line is one event
    let out = run_env(&t, &[], &["--log-format", "json", "run"]);
    assert_eq!(out.code, 3, "{out:?}");
    for line in out.stderr.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v.get("level").is_some(), "{line}");
    }
}

#[test]
fn a_secret_that_reaches_a_report_by_another_path_is_masked_there_too() {
    // The second line of defence: the sinks mask what did not come through the
    // target (here a cell of the file that holds the token).
    let erp = FakeErp::start(Behaviour::default());
    let t = setup(
        &erp,
        "{base}/api/{document}",
        "auth = { bearer_env = \"ERP_TOKEN\" }",
        "",
    );
    let env = [("ERP_TOKEN", TOKEN)];
    t.write(
        "drop/inbox/INV_1.csv",
        format!("{INVOICE_HEADER}A1;20.11.2026;C1;{TOKEN};1,50;X;1,50\n"),
    );
    let mut texts = Vec::new();
    let out = run_env(&t, &env, &["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("Terms code \"***\""), "{}", out.stdout);
    texts.push(out.stdout);
    texts.push(out.stderr);
    t.write(
        "drop/inbox/INV_2.csv",
        format!("{INVOICE_HEADER}B1;20.11.2026;C1;{TOKEN};1,50;X;1,50\n"),
    );
    let out = run_env(&t, &env, &["run", "--json"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.json()["files"][0]["errors"][0]["value"], "***");
    texts.push(out.stdout);
    for args in [&["status"][..], &["status", "--json"][..]] {
        let out = run_env(&t, &env, args);
        assert_eq!(out.code, 0, "{out:?}");
        texts.push(out.stdout);
    }
    let report = t.read_json("drop/failed/INV_1.csv.errors.json");
    assert_eq!(report["errors"][0]["code"], "not_allowed", "{report}");
    assert_eq!(report["errors"][0]["value"], "***", "{report}");
    // the reports (the file itself is the user's data, as it came)
    let reports: Vec<String> = files_under(&t, "drop/failed")
        .into_iter()
        .filter(|(p, _)| p.contains(".errors."))
        .map(|(_, t)| t)
        .collect();
    assert_eq!(reports.len(), 4);
    texts.extend(reports);
    texts.extend(files_under(&t, "drop/.erpdrop").into_iter().map(|(_, t)| t));
    for text in &texts {
        assert!(!text.contains(TOKEN), "{text}");
    }
    assert_eq!(erp.request_count(), 0);
}
