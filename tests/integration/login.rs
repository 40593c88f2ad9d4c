//! Credentials obtained at run time (OAuth2 client credentials, a session login) and the
//! pace of requests (`max_requests_per_second`, a 429's `Retry-After`), against a
//! loopback ERP with a token endpoint and a login (`util/login_erp.rs`).

use crate::util::login_erp::{Behaviour, Hit, LoginErp, CLIENT_ID, CLIENT_SECRET};
use crate::util::{invoices_csv, Out, TestDir, INVOICE_MAPPING};
use std::time::{Duration, Instant};

const PASSWORD: &str = "B1-pa55word!";

fn oauth2(erp: &LoginErp, extra_auth: &str) -> String {
    format!(
        r#"auth = {{ oauth2 = {{ token_url = "{}/oauth2/token", client_id_env = "ERP_CLIENT_ID", client_secret_env = "ERP_CLIENT_SECRET", scope = "https://api.example/.default"{extra_auth} }} }}"#,
        erp.base()
    )
}

fn sap_session(erp: &LoginErp, pointer: bool) -> String {
    let how = if pointer {
        r#", token_pointer = "/SessionId", header = "Cookie", value = "B1SESSION={token}""#
    } else {
        ""
    };
    format!(
        r#"auth = {{ session = {{ url = "{}/Login", body = '{{"CompanyDB": "SBODEMO", "UserName": "{{env:ERP_USER}}", "Password": "{{env:ERP_PASSWORD}}"}}'{how} }} }}"#,
        erp.base()
    )
}

fn setup(erp: &LoginErp, auth: &str, extra: &str) -> TestDir {
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
health_url = "{}/api/health"
{auth}
timeout_seconds = 5
id_pointer = "/id"
retry = {{ attempts = 3, backoff_ms = 10 }}
{extra}
"#,
            erp.base(),
            erp.base()
        ),
    );
    t
}

fn run(t: &TestDir, args: &[&str]) -> Out {
    let o = t
        .cmd()
        .env("ERP_CLIENT_ID", CLIENT_ID)
        .env("ERP_CLIENT_SECRET", CLIENT_SECRET)
        .env("ERP_USER", "manager")
        .env("ERP_PASSWORD", PASSWORD)
        .args(args)
        .output()
        .unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Every file under the drop folder (reports, the ledger and its journal), as text.
fn stored(t: &TestDir) -> Vec<(String, String)> {
    walkdir::WalkDir::new(t.join("drop"))
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

/// None of `secrets` in what the commands printed nor in anything stored.
fn assert_hidden(t: &TestDir, outs: &[&Out], secrets: &[String]) {
    for secret in secrets {
        for o in outs {
            assert!(
                !o.stdout.contains(secret.as_str()) && !o.stderr.contains(secret.as_str()),
                "{secret:?} printed: {o:?}"
            );
        }
        for (path, text) in stored(t) {
            assert!(
                !text.contains(secret.as_str()),
                "{secret:?} stored in {path}"
            );
        }
    }
}

fn api(hits: &[Hit]) -> Vec<&Hit> {
    hits.iter()
        .filter(|h| h.seen.path.starts_with("/api/sales_invoice"))
        .collect()
}

fn form_encoded(s: &str) -> String {
    // what RFC 6749 appendix B asks for, written out for the test's two values
    s.replace('@', "%40")
        .replace(':', "%3A")
        .replace('/', "%2F")
        .replace('+', "%2B")
        .replace('~', "%7E")
}

#[test]
fn one_token_serves_eight_workers_and_is_shown_nowhere() {
    let erp = LoginErp::start(Behaviour {
        // slow enough that every worker asks for the token while it is being fetched
        token_delay: Duration::from_millis(200),
        expires_in: Some(3600),
        reject: ["INV000007".to_string()].into(),
        ..Behaviour::default()
    });
    let t = setup(&erp, &oauth2(&erp, ""), "concurrency = 8");
    t.write("drop/inbox/INV_1.csv", invoices_csv(40, 1));
    let out = run(&t, &["-vv", "run"]);
    assert_eq!(out.code, 1, "{out:?}");
    let tokens = erp.to("/oauth2/token");
    assert_eq!(tokens.len(), 1, "one token request for 8 workers");
    assert_eq!(erp.created(), (39, 1));
    let token = erp.issued().pop().unwrap();
    let docs = erp.hits();
    let docs = api(&docs);
    assert_eq!(docs.len(), 40, "no request was repeated");
    let bearer = format!("Bearer {token}");
    assert!(docs
        .iter()
        .all(|h| h.seen.header("Authorization") == Some(bearer.as_str())));

    // the client authenticated with HTTP basic over its form-encoded id and secret
    use base64::Engine as _;
    let r = &tokens[0].seen;
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.header("Content-Type"),
        Some("application/x-www-form-urlencoded")
    );
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        form_encoded(CLIENT_ID),
        form_encoded(CLIENT_SECRET)
    ));
    assert_eq!(
        r.header("Authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    assert_eq!(
        r.body,
        "grant_type=client_credentials&scope=https%3A%2F%2Fapi.example%2F.default"
    );

    // the ERP echoed the bearer token into the rejection: masked in the report
    let report = t.read_json("drop/failed/INV_1.csv.errors.json");
    let message = report["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("Authorization: Bearer ***"), "{message}");
    let status = run(&t, &["status", "--json", "--failed"]);
    let json_log = run(&t, &["--log-format", "json", "-vv", "reprocess", "--all"]);
    assert_eq!(json_log.code, 1, "{json_log:?}");
    assert_hidden(
        &t,
        &[&out, &status, &json_log],
        &[
            token,
            CLIENT_SECRET.into(),
            form_encoded(CLIENT_SECRET),
            basic,
        ],
    );
}

#[test]
fn form_client_auth_puts_the_client_in_the_body() {
    let erp = LoginErp::start(Behaviour::default());
    let t = setup(&erp, &oauth2(&erp, r#", client_auth = "form""#), "");
    t.write("drop/inbox/INV_1.csv", invoices_csv(2, 1));
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let tokens = erp.to("/oauth2/token");
    assert_eq!(tokens.len(), 1);
    let r = &tokens[0].seen;
    assert_eq!(r.header("Authorization"), None);
    assert_eq!(
        r.body,
        format!(
            "grant_type=client_credentials&scope=https%3A%2F%2Fapi.example%2F.default&client_id={}&client_secret={}",
            form_encoded(CLIENT_ID),
            form_encoded(CLIENT_SECRET)
        )
    );
    assert_eq!(erp.created(), (2, 1));
}

#[test]
fn a_token_is_fetched_again_shortly_before_it_expires() {
    // tokens of 1 s, a document every 150 ms: the ERP refuses an expired token, and
    // none is sent (a 401 would show as a repeated request)
    let erp = LoginErp::start(Behaviour {
        expires_in: Some(1),
        delay: Duration::from_millis(150),
        ..Behaviour::default()
    });
    let t = setup(&erp, &oauth2(&erp, ""), "concurrency = 1");
    t.write("drop/inbox/INV_1.csv", invoices_csv(8, 1));
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(erp.created(), (8, 1));
    assert_eq!(
        api(&erp.hits()).len(),
        8,
        "no request was refused and repeated"
    );
    let fetches = erp.to("/oauth2/token").len();
    assert!(
        (2..=4).contains(&fetches),
        "{fetches} token requests in about 1.2 s"
    );
}

#[test]
fn a_revoked_token_is_fetched_again_once_and_nothing_is_posted_twice() {
    let erp = LoginErp::start(Behaviour {
        revoke_after: Some(10),
        delay: Duration::from_millis(5),
        ..Behaviour::default()
    });
    let t = setup(&erp, &oauth2(&erp, ""), "concurrency = 8");
    t.write("drop/inbox/INV_1.csv", invoices_csv(40, 1));
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        erp.to("/oauth2/token").len(),
        2,
        "one new token for all workers"
    );
    assert_eq!(erp.created(), (40, 1));
    assert!(t.ls("drop/failed").is_empty());
}

#[test]
fn a_second_401_with_a_new_token_is_refused_credentials() {
    let erp = LoginErp::start(Behaviour {
        refuse_all: true,
        ..Behaviour::default()
    });
    let t = setup(&erp, &oauth2(&erp, ""), "concurrency = 1");
    t.write("drop/inbox/INV_1.csv", invoices_csv(3, 1));
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("HTTP 401"), "{out:?}");
    assert!(out.stderr.contains("refused the credentials"), "{out:?}");
    assert_eq!(erp.to("/oauth2/token").len(), 2, "one new token, not more");
    assert_eq!(
        api(&erp.hits()).len(),
        2,
        "the request made once more, not more"
    );
    assert_eq!(t.ls("drop/inbox"), vec!["INV_1.csv"]);
    let tokens = erp.issued();
    assert_hidden(&t, &[&out], &tokens);
}

#[test]
fn a_refused_client_is_exit_3_in_the_endpoints_words_without_retries() {
    let erp = LoginErp::start(Behaviour {
        refuse_client: Some((
            401,
            r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#.into(),
        )),
        ..Behaviour::default()
    });
    let t = setup(&erp, &oauth2(&erp, ""), "concurrency = 8");
    t.write("drop/inbox/INV_1.csv", invoices_csv(20, 1));
    t.write("drop/inbox/INV_2.csv", invoices_csv(3, 1));
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr
            .contains("invalid_client: AADSTS7000215: Invalid client secret provided."),
        "{out:?}"
    );
    assert!(out.stderr.contains("/oauth2/token"), "{out:?}");
    assert_eq!(t.ls("drop/inbox"), vec!["INV_1.csv", "INV_2.csv"]);
    assert_eq!(erp.to("/oauth2/token").len(), 1, "a refusal is not retried");
    assert!(api(&erp.hits()).is_empty());

    let check = run(&t, &["check"]);
    assert_eq!(check.code, 3, "{check:?}");
    assert!(
        check.stderr.contains("invalid_client: AADSTS7000215")
            || check.stdout.contains("invalid_client: AADSTS7000215"),
        "{check:?}"
    );
    assert!(
        erp.to("/api").is_empty(),
        "check sent nothing without a token"
    );
}

#[test]
fn an_unreachable_token_endpoint_is_retried_then_the_target_is_down() {
    let erp = LoginErp::start(Behaviour {
        token_down_next: 1,
        ..Behaviour::default()
    });
    let t = setup(&erp, &oauth2(&erp, ""), "concurrency = 4");
    t.write("drop/inbox/INV_1.csv", invoices_csv(5, 1));
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(erp.to("/oauth2/token").len(), 2);
    assert_eq!(erp.created(), (5, 1));

    erp.set(|b| b.token_down_next = 100);
    t.write(
        "drop/inbox/INV_2.csv",
        invoices_csv(5, 1).replace("INV0", "INV9"),
    );
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains("HTTP 503 from the token endpoint"),
        "{out:?}"
    );
    assert!(out.stderr.contains("after 3 attempts"), "{out:?}");
    assert_eq!(t.ls("drop/inbox"), vec!["INV_2.csv"]);
    assert_eq!(erp.to("/oauth2/token").len(), 5);
}

#[test]
fn a_token_endpoint_that_redirects_is_not_followed() {
    let elsewhere = LoginErp::start(Behaviour::default());
    let erp = LoginErp::start(Behaviour {
        token_redirect: Some(format!("{}/oauth2/token", elsewhere.base())),
        ..Behaviour::default()
    });
    let t = setup(&erp, &oauth2(&erp, ""), "concurrency = 4");
    t.write("drop/inbox/INV_1.csv", invoices_csv(5, 1));
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "HTTP 302 from the token endpoint {}/oauth2/token: it redirects to {}/oauth2/token",
            erp.base(),
            elsewhere.base()
        )),
        "{out:?}"
    );
    assert_eq!(
        erp.to("/oauth2/token").len(),
        1,
        "a redirect is not retried"
    );
    assert!(
        elsewhere.hits().is_empty(),
        "the client's secret went nowhere else"
    );
    assert!(api(&erp.hits()).is_empty());
    assert_eq!(t.ls("drop/inbox"), vec!["INV_1.csv"]);
}

#[test]
fn check_fetches_a_token_and_reaches_the_health_url_with_it() {
    let erp = LoginErp::start(Behaviour::default());
    let t = setup(&erp, &oauth2(&erp, ""), "");
    let out = run(&t, &["check"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains(&format!(
            "/api/health answered 200 with a token from {}/oauth2/token",
            erp.base()
        )),
        "{out:?}"
    );
    let health = erp.to("/api/health");
    assert_eq!(health.len(), 1);
    let token = erp.issued().pop().unwrap();
    assert_eq!(
        health[0].seen.header("Authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert_hidden(&t, &[&out], &[token]);
}

#[test]
fn a_session_by_pointer_is_sent_as_its_cookie_and_renewed_once_on_a_401() {
    let erp = LoginErp::start(Behaviour {
        revoke_after: Some(10),
        delay: Duration::from_millis(5),
        reject: ["INV000030".to_string()].into(),
        ..Behaviour::default()
    });
    let t = setup(&erp, &sap_session(&erp, true), "concurrency = 8");
    t.write("drop/inbox/INV_1.csv", invoices_csv(40, 1));
    let out = run(&t, &["-vv", "run"]);
    assert_eq!(out.code, 1, "{out:?}");
    let logins = erp.to("/Login");
    assert_eq!(logins.len(), 2, "one login, and one again after the 401");
    assert_eq!(
        logins[0].seen.body,
        format!(r#"{{"CompanyDB": "SBODEMO", "UserName": "manager", "Password": "{PASSWORD}"}}"#)
    );
    assert_eq!(
        logins[0].seen.header("Content-Type"),
        Some("application/json")
    );
    assert_eq!(erp.created(), (39, 1));
    let sessions = erp.hits();
    let cookies: std::collections::HashSet<&str> = api(&sessions)
        .iter()
        .map(|h| h.seen.header("Cookie").unwrap())
        .collect();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(cookies
        .iter()
        .all(|c| c.starts_with("B1SESSION=sess-") && !c.contains(';')));
    let report = t.read_json("drop/failed/INV_1.csv.errors.json");
    let message = report["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("Cookie: ***"), "{message}");
    let status = run(&t, &["status", "--json"]);
    let mut secrets = erp.issued();
    secrets.push(PASSWORD.into());
    assert_hidden(&t, &[&out, &status], &secrets);
}

#[test]
fn a_session_by_cookie_sends_the_cookies_the_login_set() {
    // SAP without token_pointer: both cookies; Odoo: its session_id
    for (odoo, login) in [(false, "/Login"), (true, "/web/session/authenticate")] {
        let erp = LoginErp::start(Behaviour {
            odoo,
            ..Behaviour::default()
        });
        let auth = format!(
            r#"auth = {{ session = {{ url = "{}{login}", body = '{{"jsonrpc": "2.0", "params": {{"db": "odoo", "login": "admin", "password": "{{env:ERP_PASSWORD}}"}}}}' }} }}"#,
            erp.base()
        );
        let t = setup(&erp, &auth, "concurrency = 2");
        t.write("drop/inbox/INV_1.csv", invoices_csv(3, 1));
        let out = run(&t, &["run"]);
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(erp.to(login).len(), 1);
        let id = erp.issued().pop().unwrap();
        let want = if odoo {
            format!("session_id={id}")
        } else {
            format!("B1SESSION={id}; ROUTEID=.node1")
        };
        let hits = erp.hits();
        assert!(api(&hits)
            .iter()
            .all(|h| h.seen.header("Cookie") == Some(want.as_str())));
        assert_eq!(erp.created(), (3, 1));
        assert_hidden(&t, &[&out], &[id, PASSWORD.into()]);
    }
}

#[test]
fn a_refused_login_is_exit_3_with_the_answers_words() {
    let erp = LoginErp::start(Behaviour {
        refuse_login: Some((
            401,
            r#"{"error":{"code":-304,"message":"Invalid login credential."}}"#.into(),
        )),
        ..Behaviour::default()
    });
    let t = setup(&erp, &sap_session(&erp, true), "concurrency = 4");
    t.write("drop/inbox/INV_1.csv", invoices_csv(10, 1));
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("Invalid login credential."), "{out:?}");
    assert!(
        out.stderr.contains("/Login was refused: HTTP 401"),
        "{out:?}"
    );
    assert_eq!(t.ls("drop/inbox"), vec!["INV_1.csv"]);
    assert_eq!(erp.to("/Login").len(), 1);
    assert!(api(&erp.hits()).is_empty());
    let check = run(&t, &["check"]);
    assert_eq!(check.code, 3, "{check:?}");
    assert!(
        format!("{}{}", check.stdout, check.stderr).contains("Invalid login credential."),
        "{check:?}"
    );
    assert_hidden(&t, &[&out, &check], &[PASSWORD.into()]);
}

#[test]
fn an_odoo_login_answered_200_with_an_error_is_refused() {
    let erp = LoginErp::start(Behaviour {
        odoo: true,
        odoo_denied: true,
        ..Behaviour::default()
    });
    let auth = format!(
        r#"auth = {{ session = {{ url = "{}/web/session/authenticate", body = '{{"jsonrpc": "2.0", "params": {{"db": "odoo", "login": "admin", "password": "{{env:ERP_PASSWORD}}"}}}}' }} }}"#,
        erp.base()
    );
    let t = setup(&erp, &auth, "concurrency = 2");
    t.write("drop/inbox/INV_1.csv", invoices_csv(3, 1));
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr
            .contains("was refused: HTTP 200 with an error: Access Denied"),
        "{out:?}"
    );
    assert_eq!(erp.to("/web/session").len(), 1);
    assert!(api(&erp.hits()).is_empty());
    assert_eq!(t.ls("drop/inbox"), vec!["INV_1.csv"]);
}

#[test]
fn the_rate_limit_holds_across_eight_workers_logins_included() {
    let erp = LoginErp::start(Behaviour::default());
    let t = setup(
        &erp,
        &sap_session(&erp, true),
        "concurrency = 8\nmax_requests_per_second = 20",
    );
    t.write("drop/inbox/INV_1.csv", invoices_csv(31, 1));
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(erp.created(), (31, 1));
    let hits = erp.hits();
    let all: Vec<&Hit> = hits.iter().collect();
    assert_eq!(all.len(), 32, "the login and 31 documents");
    // requests leave erpdrop 50 ms apart, so that 21 of them span at least 1 s; the ERP
    // may read one later than it was sent (a thread of a test server on a busy 2-core
    // machine): 100 ms of that is the tolerance, so 21 requests span at least 900 ms
    // (without the limit, all 32 come within a fraction of that)
    let tightest = (0..all.len() - 20)
        .map(|i| all[i + 20].at.duration_since(all[i].at))
        .min()
        .unwrap();
    assert!(
        tightest >= Duration::from_millis(900),
        "21 requests in {tightest:?}"
    );
    // and over the whole run: the last request comes 31 intervals after the login (one
    // of tolerance again)
    let span = all[31].at.duration_since(all[0].at);
    assert!(span >= Duration::from_millis(30 * 50), "{span:?}");
}

#[test]
fn a_429_with_retry_after_pauses_every_worker() {
    // the 5th request is answered 429, Retry-After: 1; the others take 50 ms each, so
    // the worker that got the 429 has 50 ms to pause the others before any of them is
    // free to send again
    let erp = LoginErp::start(Behaviour {
        too_many_at: Some((5, "1".into())),
        delay: Duration::from_millis(50),
        ..Behaviour::default()
    });
    let t = setup(&erp, &oauth2(&erp, ""), "concurrency = 8");
    t.write("drop/inbox/INV_1.csv", invoices_csv(24, 1));
    let started = Instant::now();
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(erp.created(), (24, 1));
    let at = erp.too_many_sent().unwrap();
    let hits = erp.hits();
    let docs = api(&hits);
    assert_eq!(docs.len(), 25, "24 documents and the one answered 429");
    // requests already on their way when the 429 left may still arrive: 20 ms
    let inside: Vec<Duration> = docs
        .iter()
        .filter(|h| h.at > at + Duration::from_millis(20) && h.at < at + Duration::from_secs(1))
        .map(|h| h.at.duration_since(at))
        .collect();
    assert!(inside.is_empty(), "requests inside the pause: {inside:?}");
    assert!(docs.iter().any(|h| h.at >= at + Duration::from_secs(1)));
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Runs erpdrop with the system's store replaced by an empty one (only what the test
/// trusts is trusted).
fn run_tls(t: &TestDir, args: &[&str]) -> Out {
    t.write("empty-store.pem", "");
    let o = t
        .cmd()
        .env("SSL_CERT_FILE", t.join("empty-store.pem"))
        .env_remove("SSL_CERT_DIR")
        .args(args)
        .output()
        .unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn tls_setup(erp: &crate::util::tls::TlsErp, ca: &crate::util::tls::Ca) -> TestDir {
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    t.write("ca.pem", &ca.pem);
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
ca_file = "ca.pem"
auth = {{ session = {{ url = "{base}/Login", body = '{{"UserName": "manager"}}', token_pointer = "/id" }} }}
timeout_seconds = 5
concurrency = 2
retry = {{ attempts = 3, backoff_ms = 10 }}
"#,
            base = erp.base()
        ),
    );
    t
}

#[test]
fn a_login_over_tls_trusts_the_targets_ca_and_a_certificate_error_is_final() {
    use crate::util::tls::{Ca, TlsErp};
    let ca = Ca::new("Company CA");
    // the loopback https ERP answers the login 201 {"id": "T1"}: the session at /id
    let erp = TlsErp::start(&ca.server(&["127.0.0.1"]), None);
    let t = tls_setup(&erp, &ca);
    t.write("drop/inbox/INV_1.csv", invoices_csv(3, 1));
    let out = run_tls(&t, &["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let reqs = erp.requests();
    assert_eq!(reqs.len(), 4, "the login and 3 documents");
    assert_eq!(reqs[0].path, "/Login");
    let session = reqs[1..]
        .iter()
        .map(|r| {
            r.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("Authorization"))
                .map(|(_, v)| v.clone())
        })
        .collect::<Vec<_>>();
    assert!(
        session.iter().all(|v| v.as_deref() == Some("Bearer T1")),
        "{session:?}"
    );

    // an expired certificate at the login: no retries, nothing sent, exit 3
    let expired = TlsErp::start(&ca.expired_server(&["127.0.0.1"]), None);
    let t = tls_setup(&expired, &ca);
    t.write("drop/inbox/INV_1.csv", invoices_csv(3, 1));
    let out = run_tls(&t, &["run"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "the login: {}/Login: the server's certificate expired on 2021-01-01",
            expired.base()
        )),
        "{out:?}"
    );
    assert_eq!(
        expired.refused().len(),
        1,
        "a certificate error is not retried"
    );
    assert!(expired.requests().is_empty());
    assert_eq!(t.ls("drop/inbox"), vec!["INV_1.csv"]);
}
