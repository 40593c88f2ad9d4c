//! Notifications (`[[notify]]`, `[[expect]]`): a real SMTP server on loopback (aiosmtpd,
//! STARTTLS and a login) receiving a failed file's mail with its errors.csv attached; a
//! loopback webhook told once when the ERP goes down and once when it is back over many
//! runs; a webhook on a closed port that changes nothing; a command receiving its argv;
//! `no_file` once a day; `check` and `check --notify-test`.

use crate::util::erp::{Behaviour, FakeErp};
use crate::util::smtp::{SmtpOptions, SmtpServer};
use crate::util::{invoices_csv, Out, TestDir, INVOICE_HEADER, INVOICE_MAPPING};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// Writes a CA (`smtp-ca.pem`) and a server certificate for 127.0.0.1 signed by it
/// (`smtp-cert.pem`, `smtp-key.pem`) into the test's folder.
fn certificates(t: &TestDir) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "Test mail CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    t.write("smtp-ca.pem", ca.self_signed(&ca_key).unwrap().pem());
    let issuer = Issuer::new(ca, ca_key);
    let mut server = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    server
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let key = KeyPair::generate().unwrap();
    t.write(
        "smtp-cert.pem",
        server.signed_by(&key, &issuer).unwrap().pem(),
    );
    t.write("smtp-key.pem", key.serialize_pem());
}

/// The invoice setup with `notify` appended to erpdrop.toml.
fn setup(notify: &str) -> TestDir {
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    let cfg = t.read("erpdrop.toml");
    t.write("erpdrop.toml", format!("{cfg}{notify}"));
    t
}

/// Three invoices, the second with a terms code that ref/terms.csv does not have.
fn one_bad_invoice() -> String {
    format!(
        "{INVOICE_HEADER}A1;20.11.2026;C1;N30;1,50;I1;1,50\nA2;20.11.2026;C1;ZZ9;1,50;I1;1,50\nA3;20.11.2026;C2;N30;1,50;I1;1,50\n"
    )
}

fn run_with(t: &TestDir, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut c = t.cmd();
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.args(args).output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// The JSON bodies that a webhook receiver got.
fn hooks(receiver: &FakeErp) -> Vec<serde_json::Value> {
    receiver
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/hook")
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect()
}

const SMTP_PASSWORD: &str = "s3cret-Mail-Pw!";

#[test]
fn a_failed_file_is_mailed_over_starttls_with_its_errors_csv_attached() {
    let t = TestDir::new();
    certificates(&t);
    let smtp = SmtpServer::start(SmtpOptions {
        tls: Some((t.join("smtp-cert.pem"), t.join("smtp-key.pem"))),
        login: Some(("erpdrop-mailer".into(), SMTP_PASSWORD.into())),
        ..SmtpOptions::default()
    });
    let t2 = setup(&format!(
        "[[notify]]\non = [\"file_failed\"]\nemail = {{ to = [\"ap@example.com\", \"Controller <fc@example.com>\"], from = \"erpdrop@example.com\", smtp = \"127.0.0.1:{}\", starttls = true, user_env = \"SMTP_USER\", password_env = \"SMTP_PASSWORD\", ca_file = \"smtp-ca.pem\" }}\n",
        smtp.port
    ));
    std::fs::copy(t.join("smtp-ca.pem"), t2.join("smtp-ca.pem")).unwrap();
    t2.write("drop/inbox/INV_2026-11-20.csv", one_bad_invoice());
    let env = [
        ("SMTP_USER", "erpdrop-mailer"),
        ("SMTP_PASSWORD", SMTP_PASSWORD),
    ];
    let out = run_with(&t2, &["run", "-v"], &env);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(t2.exists("drop/failed/INV_2026-11-20.csv"), "{out:?}");

    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{out:?}");
    let m = &mails[0];
    assert_eq!(m.session["tls"], true, "STARTTLS was used");
    assert_eq!(m.session["login"], "erpdrop-mailer");
    assert_eq!(
        m.session["to"],
        serde_json::json!(["ap@example.com", "fc@example.com"])
    );
    let p = &m.parsed;
    assert_eq!(
        p["subject"],
        "erpdrop: INV_2026-11-20.csv failed: 1 of 3 documents not imported"
    );
    let body = p["body"].as_str().unwrap();
    assert!(body.contains("Mapping: inv"), "{body}");
    assert!(body.contains("- A2: "), "{body}");
    assert!(body.contains("ZZ9"), "{body}");
    let atts = p["attachments"].as_array().unwrap();
    assert_eq!(atts.len(), 1, "{p:#}");
    assert_eq!(atts[0]["filename"], "INV_2026-11-20.csv.errors.csv");
    assert_eq!(atts[0]["content_type"], "text/csv");
    assert_eq!(
        atts[0]["content"].as_str().unwrap(),
        t2.read("drop/failed/INV_2026-11-20.csv.errors.csv")
    );
    // the password is in no output and no message
    for text in [&out.stdout, &out.stderr, &m.raw] {
        assert!(!text.contains(SMTP_PASSWORD), "{text}");
    }
    assert!(out.stderr.contains("notification sent"), "{}", out.stderr);
}

#[test]
fn mail_goes_over_implicit_tls_with_tls_true_and_never_in_the_clear_to_an_unknown_ca() {
    let t = setup("");
    certificates(&t);
    let smtp = SmtpServer::start(SmtpOptions {
        tls: Some((t.join("smtp-cert.pem"), t.join("smtp-key.pem"))),
        implicit_tls: true,
        ..SmtpOptions::default()
    });
    let cfg = t.read("erpdrop.toml");
    let notify = |ca: &str| {
        format!(
            "{cfg}[[notify]]\non = [\"file_failed\"]\nemail = {{ to = \"ap@example.com\", from = \"erpdrop@example.com\", smtp = \"127.0.0.1:{}\", tls = true{ca} }}\n",
            smtp.port
        )
    };
    // the server's CA is not trusted: no mail, a warning, the same outcome
    t.write("erpdrop.toml", notify(""));
    t.write("drop/inbox/INV_1.csv", one_bad_invoice());
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(smtp.mails().is_empty());
    assert!(
        out.stderr.contains("the notification could not be sent")
            && out.stderr.to_lowercase().contains("certificate"),
        "{}",
        out.stderr
    );
    // trusted through ca_file: the mail arrives over TLS
    t.write("erpdrop.toml", notify(", ca_file = \"smtp-ca.pem\""));
    t.write("drop/inbox/INV_2.csv", one_bad_invoice());
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{out:?}");
    assert_eq!(mails[0].session["tls"], true);
    assert_eq!(
        mails[0].parsed["attachments"][0]["filename"],
        "INV_2.csv.errors.csv"
    );
}

#[test]
fn a_mail_server_that_is_down_is_a_warning_and_changes_nothing() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let with = setup(&format!(
        "[[notify]]\non = [\"file_failed\"]\nemail = {{ to = \"ap@example.com\", from = \"erpdrop@example.com\", smtp = \"127.0.0.1:{port}\", starttls = false }}\n"
    ));
    let without = setup("");
    for t in [&with, &without] {
        t.write("drop/inbox/INV_1.csv", one_bad_invoice());
        t.write("drop/inbox/INV_2.csv", invoices_csv(3, 1));
    }
    let a = with.run(&["run"]);
    let b = without.run(&["run"]);
    assert_eq!(a.code, 1, "{a:?}");
    assert_eq!(a.code, b.code);
    for dir in ["drop/inbox", "drop/failed", "drop/outbox"] {
        assert_eq!(with.ls(dir), without.ls(dir), "{dir}");
    }
    assert!(
        a.stderr.contains("the notification could not be sent")
            && a.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        a.stderr
    );
}

/// A drop folder whose target is `erp` and whose `[[notify]]` goes to `hook`.
fn http_setup(erp: &FakeErp, notify: &str) -> TestDir {
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    t.write(
        "erpdrop.toml",
        format!(
            "[folders]\nroot = \"drop\"\n[scan]\nsettle_seconds = 0\n[target]\nkind = \"http\"\nurl = \"{}/api/{{document}}\"\nid_pointer = \"/id\"\nconcurrency = 1\nretry = {{ attempts = 2, backoff_ms = 5, max_backoff_ms = 10 }}\n{notify}",
            erp.base()
        ),
    );
    t
}

#[test]
fn target_down_is_told_once_when_it_goes_down_and_once_when_it_is_back() {
    const TOKEN: &str = "tok-Secret-42";
    // an ERP in maintenance that echoes the credentials it was sent
    let erp = FakeErp::start(Behaviour {
        down: true,
        echo_headers: true,
        token: Some(TOKEN.into()),
        ..Behaviour::default()
    });
    let hook = FakeErp::start(Behaviour::default());
    let t = http_setup(
        &erp,
        &format!(
            "auth = {{ bearer_env = \"ERP_TOKEN\" }}\n[[notify]]\non = [\"target_down\"]\nwebhook = {{ url = \"{}/hook\", format = \"json\" }}\n",
            hook.base()
        ),
    );
    let env = [("ERP_TOKEN", TOKEN)];
    t.write("drop/inbox/INV_1.csv", invoices_csv(2, 1));
    for _ in 0..3 {
        let out = run_with(&t, &["run"], &env);
        assert_eq!(out.code, 3, "{out:?}");
    }
    let seen = hooks(&hook);
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert_eq!(seen[0]["event"], "target_down");
    assert_eq!(seen[0]["state"], "down");
    let detail = seen[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("503") && detail.contains("Bearer ***"),
        "{:#}",
        seen[0]
    );
    assert!(!seen[0].to_string().contains(TOKEN), "{:#}", seen[0]);

    erp.set(|b| b.down = false);
    let out = run_with(&t, &["run"], &env);
    assert_eq!(out.code, 0, "{out:?}");
    t.write(
        "drop/inbox/INV_2.csv",
        invoices_csv(2, 1).replace("INV0", "B0"),
    );
    let out = run_with(&t, &["run"], &env);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(run_with(&t, &["run"], &env).code, 0);
    let seen = hooks(&hook);
    let states: Vec<&str> = seen.iter().map(|v| v["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["down", "back"], "{seen:#?}");
}

#[test]
fn a_webhook_on_a_closed_port_changes_no_outcome_and_no_exit_code() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let with = setup(&format!(
        "[[notify]]\non = [\"file_failed\", \"no_file\"]\nwebhook = {{ url = \"http://127.0.0.1:{port}/T000/B000/KEY\", format = \"slack\" }}\n[[expect]]\nmapping = \"inv\"\nby = \"00:00\"\n"
    ));
    let without = setup("");
    for t in [&with, &without] {
        t.write("drop/inbox/INV_1.csv", one_bad_invoice());
        t.write("drop/inbox/INV_2.csv", invoices_csv(3, 1));
        t.write("drop/inbox/INV_3.csv", one_bad_invoice());
    }
    let started = std::time::Instant::now();
    let a = with.run(&["run"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let b = without.run(&["run"]);
    assert_eq!(
        (a.code, a.stdout.lines().count()),
        (b.code, b.stdout.lines().count()),
        "{a:?}\n{b:?}"
    );
    assert_eq!(a.code, 1);
    for dir in ["drop/inbox", "drop/failed", "drop/outbox"] {
        assert_eq!(with.ls(dir), without.ls(dir), "{dir}");
    }
    // tried once in the pass, not waited for again for the second failed file
    assert_eq!(
        a.stderr
            .matches("the notification could not be sent")
            .count(),
        1,
        "{}",
        a.stderr
    );
    assert!(
        a.stderr
            .contains("could not be reached earlier in this pass"),
        "{}",
        a.stderr
    );
    assert!(
        a.stderr.contains("the notification could not be sent"),
        "{}",
        a.stderr
    );
    // the webhook's path (its key) is never printed
    assert!(
        !a.stderr.contains("KEY") && !a.stdout.contains("KEY"),
        "{}",
        a.stderr
    );
}

#[test]
fn a_command_receives_its_arguments_and_its_exit_status_is_logged() {
    let t = setup("");
    t.write(
        "hooks/record",
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$(dirname \"$0\")/argv.txt\"\n",
    );
    t.write(
        "hooks/fail",
        "#!/bin/sh\necho 'ticket system refused' >&2\nexit 3\n",
    );
    for f in ["hooks/record", "hooks/fail"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(t.join(f), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let cfg = t.read("erpdrop.toml");
    t.write(
        "erpdrop.toml",
        format!(
            "{cfg}[[notify]]\non = [\"file_failed\"]\ncommand = [\"{}\", \"{{event}}\", \"{{file}}\", \"{{mapping}}\", \"{{report}}\", \"two words; $(not a shell)\"]\n[[notify]]\non = [\"file_failed\"]\ncommand = [\"{}\"]\n",
            t.join("hooks/record").display(),
            t.join("hooks/fail").display()
        ),
    );
    t.write("drop/inbox/INV_7.csv", one_bad_invoice());
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    let argv = t.read("hooks/argv.txt");
    let report = t.join("drop/failed/INV_7.csv.errors.csv");
    assert_eq!(
        argv,
        format!(
            "file_failed\nINV_7.csv\ninv\n{}\ntwo words; $(not a shell)\n",
            report.display()
        )
    );
    assert!(
        out.stderr.contains("exit status: 3") && out.stderr.contains("ticket system refused"),
        "{}",
        out.stderr
    );
}

#[test]
fn no_file_is_told_once_a_day_and_not_when_a_file_came() {
    let hook = FakeErp::start(Behaviour::default());
    let t = setup(&format!(
        "[[notify]]\non = [\"no_file\"]\nwebhook = {{ url = \"{}/hook\", format = \"teams\" }}\n[[expect]]\nmapping = \"inv\"\nby = \"00:00\"\n",
        hook.base()
    ));
    for _ in 0..3 {
        assert_eq!(t.run(&["run"]).code, 0);
    }
    let seen = hooks(&hook);
    assert_eq!(seen.len(), 1, "{seen:#?}");
    let card = &seen[0]["attachments"][0];
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let title = card["content"]["body"][0]["text"].as_str().unwrap();
    assert_eq!(title, "erpdrop: no inv file today");

    // a file handled today: nothing to tell
    let hook2 = FakeErp::start(Behaviour::default());
    let t2 = setup(&format!(
        "[[notify]]\non = [\"no_file\"]\nwebhook = {{ url = \"{}/hook\" }}\n[[expect]]\nmapping = \"inv\"\nby = \"00:00\"\n",
        hook2.base()
    ));
    t2.write("drop/inbox/INV_1.csv", invoices_csv(1, 1));
    assert_eq!(t2.run(&["run"]).code, 0);
    assert_eq!(t2.run(&["run"]).code, 0);
    assert!(hooks(&hook2).is_empty(), "{:#?}", hooks(&hook2));
}

#[test]
fn check_names_what_is_wrong_in_notify_and_expect() {
    let t = setup(
        "[[notify]]\non = [\"file_failed\"]\nemail = { to = [\"not an address\"], from = \"erpdrop@example.com\", smtp = \"127.0.0.1:25\" }\n[[expect]]\nmapping = \"nosuch\"\nby = \"06:00\"\n",
    );
    let out = t.run(&["check"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("notify[0].email.to")
            && out
                .stderr
                .contains("\"not an address\" is not an email address"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("expect[0].mapping")
            && out.stderr.contains("no mapping named \"nosuch\""),
        "{}",
        out.stderr
    );

    for (notify, expect) in [
        ("[[expect]]\nmapping = \"inv\"\nby = \"6am\"\n", "\"6am\" is not a time of day: write HH:MM"),
        ("[[notify]]\non = [\"file_failed\"]\nwebhook = { url = \"ftp://hooks.example/x\" }\n", "must start with http:// or https://"),
        ("[[notify]]\non = [\"file_failed\"]\nemail = { to = \"a@example.com\", from = \"b@example.com\", smtp = \"mail:587\", user_env = \"NO_SUCH_SMTP_USER\", password_env = \"NO_SUCH_SMTP_PW\" }\n", "the environment variable NO_SUCH_SMTP_USER is not set"),
        ("[[notify]]\non = [\"file_failed\"]\ncommand = [\"/no/such/program\", \"{report}\"]\n", "the command /no/such/program does not exist"),
        ("[[notify]]\non = [\"file_fail\"]\ncommand = [\"/bin/true\"]\n", "unknown variant \"file_fail\""),
    ] {
        let t = setup(notify);
        let out = t.run(&["check"]);
        assert_eq!(out.code, 2, "{notify}: {out:?}");
        assert!(out.stderr.contains(expect), "{notify}: {}", out.stderr);
    }
}

#[test]
fn check_notify_test_sends_one_test_to_each_channel() {
    let hook = FakeErp::start(Behaviour::default());
    let t = setup("");
    t.write(
        "hooks/record",
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$(dirname \"$0\")/argv.txt\"\n",
    );
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            t.join("hooks/record"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }
    let cfg = t.read("erpdrop.toml");
    t.write(
        "erpdrop.toml",
        format!(
            "{cfg}[[notify]]\non = [\"file_failed\", \"target_down\"]\nwebhook = {{ url = \"{}/hook\" }}\n[[notify]]\non = [\"gave_up\"]\ncommand = [\"{}\", \"{{event}}\"]\n",
            hook.base(),
            t.join("hooks/record").display()
        ),
    );
    let out = t.run(&["check", "--notify-test"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("notify[0]: webhook http://127.0.0.1:")
            && out.stdout.contains("(test notification sent)"),
        "{}",
        out.stdout
    );
    let seen = hooks(&hook);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["test"], true);
    assert_eq!(t.read("hooks/argv.txt"), "file_failed\n");
    // nothing is sent without --notify-test
    assert_eq!(t.run(&["check"]).code, 0);
    assert_eq!(hooks(&hook).len(), 1);

    // a channel that cannot be told: exit 3, and which one
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    t.write(
        "erpdrop.toml",
        format!("{cfg}[[notify]]\non = [\"file_failed\"]\nwebhook = {{ url = \"http://127.0.0.1:{port}/hook\" }}\n"),
    );
    let out = t.run(&["check", "--notify-test"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr
            .contains("notify[0]: the test notification could not be sent"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_command_that_outlives_its_timeout_is_stopped_with_what_it_started() {
    let t = setup("");
    // a script that starts a long child and waits for it
    t.write(
        "hooks/hang",
        "#!/bin/sh\nsleep 30 &\necho $! > \"$(dirname \"$0\")/child.pid\"\nwait\n",
    );
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(t.join("hooks/hang"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
    let cfg = t.read("erpdrop.toml");
    t.write(
        "erpdrop.toml",
        format!(
            "{cfg}[[notify]]\non = [\"file_failed\"]\ncommand = [\"{}\"]\ntimeout_seconds = 1\n",
            t.join("hooks/hang").display()
        ),
    );
    t.write("drop/inbox/INV_7.csv", one_bad_invoice());
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("still running after 1s"),
        "{}",
        out.stderr
    );
    let pid = t.read("hooks/child.pid").trim().to_string();
    // the child is gone too: no process, or a zombie waiting for whoever adopts it
    let alive = || match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while alive() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!alive(), "the command's child {pid} outlived it");
}
