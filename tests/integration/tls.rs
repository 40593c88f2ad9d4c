//! TLS of the http target against a real TLS server on loopback (`util/tls.rs`):
//! a company CA trusted through `ca_file` or the system's store, certificate errors
//! (unknown CA, expired, wrong host name) that stop the run at once with the reason,
//! mutual TLS, and `check` naming the TLS file that is wrong.

use crate::util::tls::{der_of, Ca, Pem, TlsErp};
use crate::util::{invoices_csv, Out, TestDir, INVOICE_MAPPING};
use std::path::Path;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tls")
            .join(name),
    )
    .unwrap()
}

/// A drop folder whose target is `erp`, over https; `extra` lines go into `[target]`.
fn setup(erp: &TlsErp, extra: &str) -> TestDir {
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    t.write(
        "erpdrop.toml",
        format!(
            "[folders]\nroot = \"drop\"\n[scan]\nsettle_seconds = 0\n[target]\nkind = \"http\"\nurl = \"{}/api/{{document}}\"\nid_pointer = \"/id\"\ntimeout_seconds = 5\nconcurrency = 1\nretry = {{ attempts = 4, backoff_ms = 10, max_backoff_ms = 20 }}\n{extra}\n",
            erp.base()
        ),
    );
    t
}

/// Runs erpdrop with the system's store replaced by an empty one, so that only what a
/// test trusts is trusted wherever the suite runs.
fn run(t: &TestDir, args: &[&str]) -> Out {
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

/// The states of the ledger's documents, sorted (none without a ledger).
fn ledger_states(t: &TestDir) -> Vec<String> {
    let ledger = t.join("drop/.erpdrop/ledger.sqlite");
    if !ledger.exists() {
        return Vec::new();
    }
    let c = rusqlite::Connection::open(ledger).unwrap();
    let mut st = c
        .prepare("SELECT state FROM documents ORDER BY state")
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn accepted_in_ledger(t: &TestDir) -> i64 {
    let ledger = t.join("drop/.erpdrop/ledger.sqlite");
    if !ledger.exists() {
        return 0;
    }
    rusqlite::Connection::open(ledger)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM documents WHERE state = 'accepted'",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

/// A run that the server's certificate stopped: exit 3 with `says`, the files in the
/// inbox, nothing sent or accepted, and no retry (one connection).
fn assert_stopped(t: &TestDir, erp: &TlsErp, out: &Out, says: &str) {
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains(says),
        "wanted {says:?} in:\n{}",
        out.stderr
    );
    assert_eq!(t.ls("drop/inbox"), vec!["INV_1.csv"]);
    assert!(t.ls("drop/failed").is_empty() && t.ls("drop/processing").is_empty());
    assert!(erp.requests().is_empty(), "{:?}", erp.requests());
    assert_eq!(accepted_in_ledger(t), 0);
    // known not to have reached the ERP: neither in flight nor in doubt
    assert!(
        ledger_states(t).iter().all(|s| s == "not_sent"),
        "{:?}",
        ledger_states(t)
    );
    assert_eq!(erp.connections(), 1, "a certificate error is not retried");
}

#[test]
fn a_company_ca_is_trusted_through_ca_file_and_nothing_else_is() {
    let ca = Ca::new("Company CA");
    let erp = TlsErp::start(&ca.server(&["127.0.0.1"]), None);
    let t = setup(&erp, "");
    t.write("drop/inbox/INV_1.csv", invoices_csv(3, 1));

    // not trusted: the system's store does not hold the company CA
    let out = run(&t, &["run"]);
    assert_stopped(
        &t,
        &erp,
        &out,
        "the server's certificate is not signed by a CA erpdrop trusts (the system's roots)",
    );
    assert!(out.stderr.contains("target.ca_file"), "{}", out.stderr);

    // trusted through ca_file (a bundle: another CA first)
    t.write(
        "certs/company-ca.pem",
        format!("{}{}", Ca::new("Other CA").pem, ca.pem),
    );
    let mut cfg = t.read("erpdrop.toml");
    cfg.push_str("ca_file = \"certs/company-ca.pem\"\n");
    t.write("erpdrop.toml", &cfg);
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(erp.requests().len(), 3);
    assert!(erp
        .requests()
        .iter()
        .all(|r| r.method == "POST" && r.path == "/api/sales_invoice"));
    assert!(
        erp.requests()[2].body.contains("\"number\": \"INV000002\""),
        "{:?}",
        erp.requests()
    );
    assert_eq!(accepted_in_ledger(&t), 3);
    assert!(t.ls("drop/inbox").is_empty());
    // one connection for the three documents (keep-alive over TLS)
    assert_eq!(erp.connections(), 2, "the refused one and one kept alive");
}

#[test]
fn a_self_signed_ca_certificate_as_the_servers_own_is_named_as_such() {
    let pem = Ca::self_signed_ca_as_server(&["127.0.0.1"]);
    let erp = TlsErp::start(&pem, None);
    let t = setup(&erp, "");
    t.write("certs/self.pem", &pem.cert);
    let mut cfg = t.read("erpdrop.toml");
    cfg.push_str("ca_file = \"certs/self.pem\"\n");
    t.write("erpdrop.toml", &cfg);
    t.write("drop/inbox/INV_1.csv", invoices_csv(1, 1));
    let out = run(&t, &["run"]);
    assert_stopped(
        &t,
        &erp,
        &out,
        "the server presents a CA certificate as its own",
    );
    assert!(!out.stderr.contains("CaUsedAsEndEntity"), "{}", out.stderr);
}

#[test]
fn the_system_store_is_trusted_and_an_empty_one_falls_back_to_the_compiled_in_roots() {
    let ca = Ca::new("Company CA");
    let erp = TlsErp::start(&ca.server(&["127.0.0.1"]), None);
    let t = setup(&erp, "");
    t.write("drop/inbox/INV_1.csv", invoices_csv(2, 1));
    // an empty store: Mozilla's roots instead, said at -v; they do not hold the company CA
    let out = run(&t, &["-v", "run"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr
            .contains("the system's certificate store is empty or cannot be read; trusting the")
            && out
                .stderr
                .contains("root certificates compiled into erpdrop"),
        "{}",
        out.stderr
    );
    // the company CA installed in the system's store (here: SSL_CERT_FILE, as OpenSSL)
    t.write("store.pem", &ca.pem);
    let o = t
        .cmd()
        .env("SSL_CERT_FILE", t.join("store.pem"))
        .env_remove("SSL_CERT_DIR")
        .args(["-v", "run"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("trusting the system's 1 root certificates"),
        "{err}"
    );
    assert_eq!(erp.requests().len(), 2);
}

#[test]
fn an_expired_server_certificate_says_when_it_expired() {
    let ca = Ca::new("Company CA");
    let erp = TlsErp::start(&ca.expired_server(&["127.0.0.1"]), None);
    let t = setup(&erp, "ca_file = \"ca.pem\"");
    t.write("ca.pem", &ca.pem);
    t.write("drop/inbox/INV_1.csv", invoices_csv(2, 1));
    let out = run(&t, &["run"]);
    assert_stopped(
        &t,
        &erp,
        &out,
        "the server's certificate expired on 2021-01-01 00:00:00 UTC (it is now 20",
    );
}

#[test]
fn a_certificate_for_another_host_names_the_hosts_it_is_for() {
    let ca = Ca::new("Company CA");
    let erp = TlsErp::start(&ca.server(&["erp.example", "erp2.example"]), None);
    let t = setup(&erp, "ca_file = \"ca.pem\"");
    t.write("ca.pem", &ca.pem);
    t.write("drop/inbox/INV_1.csv", invoices_csv(2, 1));
    let out = run(&t, &["run"]);
    assert_stopped(
        &t,
        &erp,
        &out,
        "the server's certificate is not valid for the host name 127.0.0.1: it is for",
    );
    assert!(
        out.stderr
            .contains("it is for erp.example, erp2.example; use one of those names"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_server_that_requires_a_client_certificate_gets_ours() {
    let ca = Ca::new("Company CA");
    let clients = Ca::new("Client CA");
    let erp = TlsErp::start(&ca.server(&["127.0.0.1"]), Some(&clients.pem));
    let t = setup(&erp, "ca_file = \"ca.pem\"");
    t.write("ca.pem", &ca.pem);
    t.write("drop/inbox/INV_1.csv", invoices_csv(2, 1));

    // none configured
    let out = run(&t, &["run"]);
    assert_stopped(
        &t,
        &erp,
        &out,
        "the server requires a client certificate and none is configured: give it in target.client_cert and target.client_key",
    );
    assert!(!erp.refused().is_empty());

    // one the server does not trust
    let stranger = Ca::new("Stranger CA").client("erpdrop", &rcgen::PKCS_ECDSA_P256_SHA256);
    let with_client = |pem: &Pem| {
        t.write("certs/me.pem", &pem.cert);
        t.write("certs/me.key", &pem.key);
        t.write(
            "erpdrop.toml",
            t.read("erpdrop.toml").replace("ca_file = \"ca.pem\"", "ca_file = \"ca.pem\"\nclient_cert = \"certs/me.pem\"\nclient_key = \"certs/me.key\""),
        );
    };
    with_client(&stranger);
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr
            .contains("the server refused erpdrop's client certificate")
            && out.stderr.contains(
                "certs/me.pem (target.client_cert): it does not trust the CA that signed it (TLS alert UnknownCA)"
            ),
        "{}",
        out.stderr
    );
    assert!(erp.requests().is_empty() && t.ls("drop/inbox") == vec!["INV_1.csv"]);

    // ours, signed by the CA the server trusts
    let me = clients.client("erpdrop-prod", &rcgen::PKCS_ECDSA_P256_SHA256);
    t.write("certs/me.pem", &me.cert);
    t.write("certs/me.key", &me.key);
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let seen = erp.requests();
    assert_eq!(seen.len(), 2);
    assert!(seen
        .iter()
        .all(|r| r.client_cert.as_deref() == Some(&der_of(&me.cert)[..])));
    assert_eq!(accepted_in_ledger(&t), 2);
}

#[test]
fn client_keys_in_pkcs1_rsa_and_sec1_ec_are_used() {
    let ca = Ca::new("Company CA");
    let erp = TlsErp::start(&ca.server(&["127.0.0.1"]), Some(&fixture("client-ca.pem")));
    for (i, kind) in ["rsa", "ec"].iter().enumerate() {
        let t = setup(
            &erp,
            "ca_file = \"ca.pem\"\nclient_cert = \"me.pem\"\nclient_key = \"me.key\"",
        );
        t.write("ca.pem", &ca.pem);
        t.write("me.pem", fixture(&format!("{kind}-client.pem")));
        t.write("me.key", fixture(&format!("{kind}-client.key")));
        t.write("drop/inbox/INV_1.csv", invoices_csv(1, 1));
        let out = run(&t, &["run"]);
        assert_eq!(out.code, 0, "{kind}: {out:?}");
        let seen = erp.requests();
        assert_eq!(seen.len(), i + 1);
        assert_eq!(
            seen[i].client_cert.as_deref(),
            Some(&der_of(&fixture(&format!("{kind}-client.pem")))[..]),
            "{kind}"
        );
    }
}

#[test]
fn check_does_the_handshake_and_says_what_tls_did() {
    let ca = Ca::new("Company CA");
    let clients = Ca::new("Client CA");
    let erp = TlsErp::start(&ca.server(&["127.0.0.1"]), Some(&clients.pem));
    let me = clients.client("erpdrop", &rcgen::PKCS_ECDSA_P256_SHA256);
    let t = setup(
        &erp,
        "ca_file = \"ca.pem\"\nclient_cert = \"me.pem\"\nclient_key = \"me.key\"",
    );
    t.write("ca.pem", &ca.pem);
    t.write("me.pem", &me.cert);
    t.write("me.key", &me.key);
    let out = run(&t, &["-vv", "check"]);
    assert_eq!(out.code, 0, "{out:?}");
    // the private key is never printed, at any verbosity
    let key_line = me.key.lines().nth(1).unwrap();
    assert!(!out.stdout.contains(key_line) && !out.stderr.contains(key_line));
    assert!(
        out.stdout.contains(
            "answered 200; TLS: the server's certificate is trusted (target.ca_file ./ca.pem, besides the roots built into erpdrop: the system's store is empty)"
        ) && out
            .stdout
            .contains("the server asked for a client certificate and took"),
        "{}",
        out.stdout
    );
    assert_eq!(
        erp.requests()[0].client_cert.as_deref(),
        Some(&der_of(&me.cert)[..])
    );

    // a server this machine does not trust: exit 3 with the reason
    let other = TlsErp::start(&Ca::new("Unknown CA").server(&["127.0.0.1"]), None);
    t.write(
        "erpdrop.toml",
        t.read("erpdrop.toml").replace(&erp.base(), &other.base()),
    );
    let out = run(&t, &["check"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains("the target is not usable")
            && out.stderr.contains("not signed by a CA erpdrop trusts"),
        "{}",
        out.stderr
    );
}

#[test]
fn tls_files_that_are_wrong_are_named_before_anything_is_touched() {
    let ca = Ca::new("Company CA");
    let erp = TlsErp::start(&ca.server(&["127.0.0.1"]), None);
    let me = ca.client("erpdrop", &rcgen::PKCS_ECDSA_P256_SHA256);
    let other = ca.client("someone else", &rcgen::PKCS_ECDSA_P256_SHA256);
    let t = setup(&erp, "");
    let head = t.read("erpdrop.toml");
    t.write("ca.pem", &ca.pem);
    t.write("me.pem", &me.cert);
    t.write("me.key", &me.key);
    t.write("other.key", &other.key);
    t.write("key-only.pem", &me.key);
    t.write(
        "rsa.der",
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls/rsa-client.der"),
        )
        .unwrap(),
    );
    t.write(
        "encrypted.key",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    std::fs::create_dir_all(t.join("certs")).unwrap();
    t.write("drop/inbox/INV_1.csv", invoices_csv(1, 1));
    let client = |cert: &str, key: &str| {
        format!("ca_file = \"ca.pem\"\nclient_cert = \"{cert}\"\nclient_key = \"{key}\"")
    };
    // (extra lines, key, what is said)
    let cases: Vec<(String, &str, String)> = vec![
        (
            "ca_file = \"missing.pem\"".into(),
            "ca_file",
            "missing.pem: does not exist".into(),
        ),
        (
            "ca_file = \"certs\"".into(),
            "ca_file",
            "certs: is a folder, not a PEM file of CA certificates".into(),
        ),
        (
            "ca_file = \"key-only.pem\"".into(),
            "ca_file",
            "key-only.pem: holds no certificate (no -----BEGIN CERTIFICATE----- section)".into(),
        ),
        (
            "ca_file = \"rsa.der\"".into(),
            "ca_file",
            "rsa.der: is DER (binary), not PEM".into(),
        ),
        (
            client("me.pem", "other.key"),
            "client_key",
            "other.key: is not the private key of the certificate in ./me.pem".into(),
        ),
        (
            client("me.pem", "missing.key"),
            "client_key",
            "missing.key: does not exist".into(),
        ),
        (
            client("me.key", "me.key"),
            "client_cert",
            "me.key: holds no certificate".into(),
        ),
        (
            client("me.pem", "me.pem"),
            "client_key",
            "me.pem: holds no private key".into(),
        ),
        (
            client("me.pem", "encrypted.key"),
            "client_key",
            "encrypted.key: is an encrypted private key".into(),
        ),
    ];
    for (extra, key, says) in &cases {
        t.write("erpdrop.toml", format!("{head}{extra}\n"));
        for cmd in [&["check"][..], &["run"], &["validate"]] {
            let out = run(&t, cmd);
            assert_eq!(out.code, 2, "{extra} {cmd:?}: {out:?}");
            assert!(
                out.stderr.contains(&format!("key target.{key}: "))
                    && out.stderr.contains(says.as_str()),
                "{extra} {cmd:?}: wanted {says:?} in\n{}",
                out.stderr
            );
        }
    }
    assert_eq!(erp.connections(), 0, "nothing reached the target");
    assert_eq!(t.ls("drop/inbox"), vec!["INV_1.csv"]);
    assert!(!t.exists("drop/.erpdrop/ledger.sqlite"));
}

#[test]
fn a_server_that_never_finishes_the_handshake_times_out() {
    // accepts the connection, never answers the ClientHello
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let held = std::thread::spawn(move || silent.accept().map(|(s, _)| s));
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    t.write(
        "erpdrop.toml",
        format!("[folders]\nroot = \"drop\"\n[scan]\nsettle_seconds = 0\n[target]\nkind = \"http\"\nurl = \"https://{addr}/api/{{document}}\"\ntimeout_seconds = 1\nconcurrency = 1\nretry = {{ attempts = 1 }}\n"),
    );
    t.write("drop/inbox/INV_1.csv", invoices_csv(1, 1));
    let started = std::time::Instant::now();
    let out = run(&t, &["run"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(
        out.stderr.contains("TLS handshake failed") && out.stderr.contains("timed out"),
        "{}",
        out.stderr
    );
    assert_eq!(t.ls("drop/inbox"), vec!["INV_1.csv"]);
    drop(held.join());
}
