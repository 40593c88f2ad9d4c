//! A real SMTP server on loopback for the notification tests: Python's aiosmtpd
//! (installed by `.ci/run`), with STARTTLS and a login when asked. Each message it
//! receives is kept as `N.eml` with `N.json` (whether it came over TLS, who logged in,
//! the envelope); [`Mail`] parses one with Python's own MIME parser.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const SERVER: &str = r#"
import sys, os, json, ssl, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, out, cert, key, user, password, implicit = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7] == "1"

class Keep:
    async def handle_DATA(self, server, session, envelope):
        n = len([f for f in os.listdir(out) if f.endswith('.eml')])
        tls = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        meta = {"tls": tls, "login": session.auth_data.decode() if isinstance(session.auth_data, bytes) else None,
                "from": envelope.mail_from, "to": envelope.rcpt_tos}
        with open(os.path.join(out, f"{n}.json"), "w") as f:
            json.dump(meta, f)
        with open(os.path.join(out, f".{n}.tmp"), "wb") as f:
            f.write(envelope.original_content)
        os.rename(os.path.join(out, f".{n}.tmp"), os.path.join(out, f"{n}.eml"))
        return "250 OK"

def login(server, session, envelope, mechanism, data):
    if isinstance(data, LoginPassword) and data.login.decode() == user and data.password.decode() == password:
        return AuthResult(success=True, auth_data=data.login)
    return AuthResult(success=False, handled=False)

kw = {}
if cert:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    if not implicit:
        kw.update(tls_context=ctx, require_starttls=True)
if user:
    kw.update(authenticator=login, auth_require_tls=bool(cert))
else:
    kw.update(auth_require_tls=False)
if cert and implicit:
    c = Controller(Keep(), hostname="127.0.0.1", port=port, ssl_context=ctx, **kw)
else:
    c = Controller(Keep(), hostname="127.0.0.1", port=port, **kw)
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
"#;

const PARSE: &str = r#"
import sys, json, email
from email import policy
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=policy.default)
body = m.get_body(preferencelist=("plain",))
atts = [{"filename": a.get_filename(), "content_type": a.get_content_type(),
         "content": a.get_payload(decode=True).decode("utf-8")} for a in m.iter_attachments()]
print(json.dumps({"subject": str(m["subject"]), "from": str(m["from"]), "to": str(m["to"]),
                  "body": body.get_content() if body else "", "attachments": atts}))
"#;

/// Fails the test, with how to fix it, when aiosmtpd is not installed (never skips).
pub fn require_aiosmtpd() {
    let ok = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "the SMTP tests need Python's aiosmtpd: `python3 -m pip install aiosmtpd` (.ci/run installs it)"
    );
}

/// The login the server takes, and the certificate it shows for STARTTLS (PEM files).
#[derive(Default)]
pub struct SmtpOptions {
    pub tls: Option<(PathBuf, PathBuf)>,
    pub login: Option<(String, String)>,
    /// With `tls`: TLS from the first byte (port 465's way) instead of STARTTLS.
    pub implicit_tls: bool,
}

pub struct SmtpServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl SmtpServer {
    pub fn start(opts: SmtpOptions) -> SmtpServer {
        require_aiosmtpd();
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (cert, key) = opts
            .tls
            .map(|(c, k)| (c.display().to_string(), k.display().to_string()))
            .unwrap_or_default();
        let (user, password) = opts.login.unwrap_or_default();
        let mut child = Command::new("python3")
            .args(["-c", SERVER, &port.to_string()])
            .arg(dir.path())
            .args([&cert, &key, &user, &password])
            .arg(if opts.implicit_tls { "1" } else { "0" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP server did not start");
        SmtpServer { port, dir, child }
    }

    /// The messages received so far, oldest first.
    pub fn mails(&self) -> Vec<Mail> {
        let mut n = 0;
        let mut out = Vec::new();
        while self.dir.path().join(format!("{n}.eml")).exists() {
            out.push(Mail::read(self.dir.path(), n));
            n += 1;
        }
        out
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One message, parsed.
#[derive(Debug)]
pub struct Mail {
    /// The raw message as it was received.
    pub raw: String,
    /// subject, from, to, body, attachments [{filename, content_type, content}]
    pub parsed: serde_json::Value,
    /// tls, login, from, to (the envelope)
    pub session: serde_json::Value,
}

impl Mail {
    fn read(dir: &Path, n: usize) -> Mail {
        let eml = dir.join(format!("{n}.eml"));
        let o = Command::new("python3")
            .args(["-c", PARSE])
            .arg(&eml)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        Mail {
            raw: std::fs::read_to_string(&eml).unwrap(),
            parsed: serde_json::from_slice(&o.stdout).unwrap(),
            session: serde_json::from_str(
                &std::fs::read_to_string(dir.join(format!("{n}.json"))).unwrap(),
            )
            .unwrap(),
        }
    }
}
