//! A loopback ERP that wants credentials obtained at run time: an OAuth2 token
//! endpoint (`POST /oauth2/token`, client credentials), a session login (`POST /Login`,
//! answering `{"SessionId": ...}` and setting cookies as SAP Business One's Service
//! Layer does, or only a `session_id` cookie as Odoo does), and the API (`/api/...`),
//! which takes a document only with a credential it issued and that has not expired or
//! been revoked. It can pace-check (every request is kept with the instant it came), and
//! answer 429 with `Retry-After`.

use super::erp::Seen;
use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const CLIENT_ID: &str = "erpdrop-app@contoso";
/// A secret with characters that form-encoding changes (RFC 6749 2.3.1).
pub const CLIENT_SECRET: &str = "s3cr:et/+value~Q";

#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// The token endpoint answers this (status, body) instead of a token.
    pub refuse_client: Option<(u16, String)>,
    /// The token endpoint issues this token every time (for an API elsewhere that
    /// wants one fixed token).
    pub fixed_token: Option<String>,
    /// The token endpoint redirects there (302).
    pub token_redirect: Option<String>,
    /// The token endpoint answers 503 to the next N token requests.
    pub token_down_next: usize,
    /// `expires_in` of the tokens issued; they stop working after it.
    pub expires_in: Option<u64>,
    /// The token endpoint waits this long before answering.
    pub token_delay: Duration,
    /// `Odoo`: the login sets only `session_id` and its body holds no session id.
    pub odoo: bool,
    /// The login answers this (status, body) instead of a session.
    pub refuse_login: Option<(u16, String)>,
    /// With `odoo`: the login answers a wrong password as Odoo does: 200, a JSON-RPC
    /// error, and a cookie of a session that is not logged in.
    pub odoo_denied: bool,
    /// After this many documents were created, every credential issued so far stops
    /// working (a revoked token, a session that timed out).
    pub revoke_after: Option<usize>,
    /// The API refuses every credential (a token for another audience).
    pub refuse_all: bool,
    /// The API waits this long before answering a document.
    pub delay: Duration,
    /// The Nth request to the API (counted from 1) is answered 429 with this
    /// `Retry-After`.
    pub too_many_at: Option<(usize, String)>,
    /// Documents (by number) answered 400, echoing the request's `Authorization` and
    /// `Cookie` headers in the message.
    pub reject: HashSet<String>,
}

/// A request and when it came.
#[derive(Debug, Clone)]
pub struct Hit {
    pub at: Instant,
    pub seen: Seen,
}

#[derive(Default)]
struct State {
    behaviour: Behaviour,
    hits: Vec<Hit>,
    /// Credential -> until when it works.
    issued: HashMap<String, Option<Instant>>,
    next: u64,
    created: HashMap<String, u32>,
    api_requests: usize,
    revoked: bool,
    /// When the 429 was answered.
    too_many_sent: Option<Instant>,
}

pub struct LoginErp {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl LoginErp {
    pub fn start(behaviour: Behaviour) -> LoginErp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            behaviour,
            next: 1,
            ..State::default()
        }));
        let st = Arc::downgrade(&state);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                // the test is over when its LoginErp is gone
                let Some(st) = st.upgrade() else { break };
                let Ok(conn) = conn else { continue };
                std::thread::spawn(move || serve(conn, st));
            }
        });
        LoginErp { addr, state }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut self.state.lock().unwrap().behaviour);
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.state.lock().unwrap().hits.clone()
    }

    /// The requests whose path starts with this.
    pub fn to(&self, path: &str) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| h.seen.path.starts_with(path))
            .collect()
    }

    /// How many documents were created, and the most times any one was.
    pub fn created(&self) -> (usize, u32) {
        let s = self.state.lock().unwrap();
        (
            s.created.len(),
            s.created.values().copied().max().unwrap_or(0),
        )
    }

    /// When the 429 was answered.
    pub fn too_many_sent(&self) -> Option<Instant> {
        self.state.lock().unwrap().too_many_sent
    }

    /// Every credential issued so far (tokens, session ids, cookie values).
    pub fn issued(&self) -> Vec<String> {
        self.state.lock().unwrap().issued.keys().cloned().collect()
    }
}

fn serve(conn: TcpStream, state: Arc<Mutex<State>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let Some(seen) = super::erp::read_request(&mut reader) else {
            return;
        };
        let delay = {
            let mut s = state.lock().unwrap();
            s.hits.push(Hit {
                at: Instant::now(),
                seen: seen.clone(),
            });
            if seen.path.starts_with("/oauth2") {
                s.behaviour.token_delay
            } else if seen.path.starts_with("/api") {
                s.behaviour.delay
            } else {
                Duration::ZERO
            }
        };
        std::thread::sleep(delay);
        let (status, extra, reply) = answer(&seen, &state);
        let resp = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}\r\n{reply}",
            reply.len()
        );
        if conn.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

fn json(v: serde_json::Value) -> String {
    v.to_string()
}

fn answer(seen: &Seen, state: &Arc<Mutex<State>>) -> (u16, String, String) {
    let mut s = state.lock().unwrap();
    let b = s.behaviour.clone();
    s.next += 1;
    let n = s.next;
    if seen.path.starts_with("/oauth2/token") {
        if s.behaviour.token_down_next > 0 {
            s.behaviour.token_down_next -= 1;
            return (
                503,
                String::new(),
                r#"{"error":"temporarily_unavailable"}"#.into(),
            );
        }
        if let Some(to) = b.token_redirect {
            return (302, format!("Location: {to}\r\n"), "{}".into());
        }
        if let Some((status, body)) = b.refuse_client {
            return (status, String::new(), body);
        }
        let token = b
            .fixed_token
            .clone()
            .unwrap_or_else(|| format!("tok-{n}-Zq8xLm4Rw2"));
        let until = b
            .expires_in
            .map(|e| Instant::now() + Duration::from_secs(e));
        s.issued.insert(token.clone(), until);
        let mut v = serde_json::json!({"access_token": token, "token_type": "Bearer"});
        if let Some(e) = b.expires_in {
            v["expires_in"] = e.into();
        }
        return (200, String::new(), json(v));
    }
    if seen.path.starts_with("/Login") || seen.path.starts_with("/web/session") {
        if let Some((status, body)) = b.refuse_login {
            return (status, String::new(), body);
        }
        if b.odoo_denied {
            return (
                200,
                format!("Set-Cookie: session_id=anon-{n}-0a9f3e; HttpOnly; Path=/\r\n"),
                r#"{"jsonrpc":"2.0","error":{"code":200,"message":"Odoo Server Error","data":{"name":"odoo.exceptions.AccessDenied","message":"Access Denied"}}}"#.into(),
            );
        }
        let id = format!("sess-{n}-7f3c9a1b-e2d4");
        s.issued.insert(id.clone(), None);
        return if b.odoo {
            (
                200,
                format!("Set-Cookie: session_id={id}; Expires=Wed, 01 Jan 2031 00:00:00 GMT; HttpOnly; Path=/\r\n"),
                r#"{"jsonrpc":"2.0","result":{"uid":2}}"#.into(),
            )
        } else {
            (
                200,
                format!("Set-Cookie: B1SESSION={id};HttpOnly;\r\nSet-Cookie: ROUTEID=.node1; path=/b1s\r\n"),
                json(serde_json::json!({"SessionId": id, "Version": "1000190", "SessionTimeout": 30})),
            )
        };
    }
    // the API: a credential it issued, still good
    let now = Instant::now();
    let mut offered: Vec<String> = Vec::new();
    if let Some(a) = seen.header("Authorization") {
        offered.push(a.strip_prefix("Bearer ").unwrap_or(a).to_string());
    }
    if let Some(c) = seen.header("Cookie") {
        for pair in c.split(';') {
            if let Some((_, v)) = pair.trim().split_once('=') {
                offered.push(v.to_string());
            }
        }
    }
    let good = offered.iter().any(|o| {
        s.issued
            .get(o)
            .is_some_and(|until| until.is_none_or(|u| now < u))
    });
    let echo = format!(
        " (you sent Authorization: {}; Cookie: {})",
        seen.header("Authorization").unwrap_or("-"),
        seen.header("Cookie").unwrap_or("-")
    );
    if !good || b.refuse_all {
        let msg = format!("invalid or expired credentials{echo}");
        return (
            401,
            String::new(),
            json(serde_json::json!({ "message": msg })),
        );
    }
    s.api_requests += 1;
    if let Some((at, retry_after)) = &b.too_many_at {
        if s.api_requests == *at {
            s.too_many_sent = Some(Instant::now());
            return (
                429,
                format!("Retry-After: {retry_after}\r\n"),
                r#"{"message":"slow down"}"#.into(),
            );
        }
    }
    if seen.method == "GET" {
        return (200, String::new(), r#"{"status":"ok"}"#.into());
    }
    let doc: serde_json::Value = serde_json::from_str(&seen.body).unwrap_or_default();
    let number = doc["number"].as_str().unwrap_or("").to_string();
    if b.reject.contains(&number) {
        let msg = format!("Unknown GL account on invoice {number}{echo}");
        return (
            400,
            String::new(),
            json(serde_json::json!({ "message": msg })),
        );
    }
    *s.created.entry(number).or_default() += 1;
    let total: usize = s.created.values().map(|c| *c as usize).sum();
    if !s.revoked && b.revoke_after.is_some_and(|r| total >= r) {
        s.revoked = true;
        s.issued.clear();
    }
    (201, String::new(), json(serde_json::json!({ "id": n })))
}
