//! A loopback ERP for HTTP tests: a small HTTP/1.1 server (keep-alive) that creates
//! documents, honours `Idempotency-Key`, and can reject chosen documents, fail with 503
//! for a while, answer slowly, or drop connections. It counts everything it saw.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the fake ERP behaves; change it between runs with [`FakeErp::set`].
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Documents (by `number`) answered 400 with an error message.
    pub reject: HashSet<String>,
    /// The message of those answers, instead of the usual one.
    pub reject_message: Option<String>,
    /// Documents answered 200 with an error in the body (`/error/message`).
    pub ok_but_error: HashSet<String>,
    /// Answer 503 to the next N requests.
    pub fail_next: usize,
    /// With `fail_next`: the `Retry-After` seconds to send.
    pub retry_after: Option<u64>,
    /// Answer every request with 503.
    pub down: bool,
    /// Close the connection without an answer for the next N requests.
    pub drop_next: usize,
    /// Wait this long before answering.
    pub delay: Duration,
    /// The bearer token required (401 otherwise).
    pub token: Option<String>,
    /// With `token`: the status that refuses other credentials (default 401).
    pub refuse_status: Option<u16>,
    /// Answer every request with this redirect status and `Location`, except requests
    /// whose path starts with `/moved` (answered as usual: a followed redirect succeeds).
    pub redirect: Option<(u16, String)>,
    /// With `down`: this status instead of 503.
    pub down_status: Option<u16>,
    /// The message of every error answer (400, 401/403, 5xx), instead of the usual one.
    pub error_text: Option<String>,
    /// Error answers echo the request's `Authorization` and `X-Api-Key` headers in
    /// their message, as a careless ERP does.
    pub echo_headers: bool,
    /// Batch endpoints (`/batch...`: an array of documents in, `{"ids": [...]}` out;
    /// `/rpc...`: JSON-RPC, `params[0]` the documents, `{"result": [...]}` out, errors as
    /// 200 with `{"error": ["UserError", [message, ""]]}`) refuse a list with a document
    /// in `reject` whole, with the message of the first bad one. `batch_partial`: they
    /// create the good documents of a refused list all the same (not all or nothing).
    pub batch_partial: bool,
    /// Batch endpoints answer one id fewer than the documents they created.
    pub batch_short_ids: bool,
    /// A request whose body contains this text waits this long before it is handled
    /// (and then handled, whether the client is still there or not).
    pub slow: Option<(String, Duration)>,
    /// Batch endpoints answer 413 to a list of more documents than this.
    pub max_batch: Option<usize>,
    /// Create a new record for every POST, whatever its `Idempotency-Key` (as most
    /// ERPs do).
    pub ignore_idempotency: bool,
    /// The next N creates are committed, then answered only after `late_delay` (past
    /// a client's timeout: the client cannot know that they were created).
    pub late: usize,
    pub late_delay: Duration,
}

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one HTTP/1.1 request (request line, headers, a body of `Content-Length`), as
/// the loopback servers of the tests see it; `None` when the connection ends first.
pub fn read_request<R: BufRead>(reader: &mut R) -> Option<Seen> {
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Seen {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

#[derive(Default)]
struct State {
    behaviour: Behaviour,
    requests: Vec<Seen>,
    /// Idempotency key -> id of the created document.
    by_key: HashMap<String, u64>,
    /// Document number -> how many times it was created.
    created: HashMap<String, u32>,
    next_id: u64,
    in_flight: usize,
    max_in_flight: usize,
    /// What the ERP holds, by id: the last document sent for it (fields of a PUT merged
    /// in); a DELETE takes it away.
    records: std::collections::BTreeMap<u64, serde_json::Value>,
    /// Idempotency key -> the answer of a PUT or DELETE already applied.
    applied: HashMap<String, (u16, String)>,
    /// Id -> how many PUTs, and how many DELETEs, were applied to it.
    updates: HashMap<u64, u32>,
    deletes: HashMap<u64, u32>,
    /// Idempotency key -> the answer of a batch that created its documents.
    batch_answers: HashMap<String, (u16, String)>,
    /// The number of documents of every batch request, in order.
    batch_sizes: Vec<usize>,
}

pub struct FakeErp {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl FakeErp {
    pub fn start(behaviour: Behaviour) -> FakeErp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            behaviour,
            next_id: 1000,
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || serve(conn, st));
            }
        });
        FakeErp { addr, state, stop }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut self.state.lock().unwrap().behaviour);
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn request_count(&self) -> usize {
        self.state.lock().unwrap().requests.len()
    }

    /// How many documents were created, and the most times any one was.
    pub fn created(&self) -> (usize, u32) {
        let s = self.state.lock().unwrap();
        (
            s.created.len(),
            s.created.values().copied().max().unwrap_or(0),
        )
    }

    pub fn max_in_flight(&self) -> usize {
        self.state.lock().unwrap().max_in_flight
    }

    /// What the ERP holds now, by id.
    pub fn records(&self) -> std::collections::BTreeMap<u64, serde_json::Value> {
        self.state.lock().unwrap().records.clone()
    }

    /// The id of the record whose `number` is this.
    pub fn id_of(&self, number: &str) -> Option<u64> {
        let s = self.state.lock().unwrap();
        s.records
            .iter()
            .find(|(_, v)| v["number"] == number)
            .map(|(id, _)| *id)
    }

    /// Forgets a record, as if someone deleted it in the ERP.
    pub fn forget(&self, id: u64) {
        self.state.lock().unwrap().records.remove(&id);
    }

    /// The number of documents of every batch request seen, in order.
    pub fn batch_sizes(&self) -> Vec<usize> {
        self.state.lock().unwrap().batch_sizes.clone()
    }

    /// How many times the document with this number was created.
    pub fn times_created(&self, number: &str) -> u32 {
        let s = self.state.lock().unwrap();
        s.created.get(number).copied().unwrap_or(0)
    }

    /// How many updates and how many deletes were applied to a record.
    pub fn applied(&self, id: u64) -> (u32, u32) {
        let s = self.state.lock().unwrap();
        (
            s.updates.get(&id).copied().unwrap_or(0),
            s.deletes.get(&id).copied().unwrap_or(0),
        )
    }
}

impl Drop for FakeErp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(conn: TcpStream, state: Arc<Mutex<State>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let Some(seen) = read_request(&mut reader) else {
            return;
        };
        let (delay, drop_it) = {
            let mut s = state.lock().unwrap();
            s.requests.push(seen.clone());
            s.in_flight += 1;
            s.max_in_flight = s.max_in_flight.max(s.in_flight);
            let d = s.behaviour.drop_next > 0;
            if d {
                s.behaviour.drop_next -= 1;
            }
            let slow = match &s.behaviour.slow {
                Some((text, wait)) if seen.body.contains(text.as_str()) => *wait,
                _ => Duration::ZERO,
            };
            (s.behaviour.delay + slow, d)
        };
        std::thread::sleep(delay);
        let (status, extra, reply) = if drop_it {
            state.lock().unwrap().in_flight -= 1;
            let _ = conn.shutdown(std::net::Shutdown::Both);
            return;
        } else {
            answer(&seen, &state)
        };
        if seen.method == "POST" && status == 201 {
            let late = {
                let mut s = state.lock().unwrap();
                let late = s.behaviour.late > 0;
                if late {
                    s.behaviour.late -= 1;
                }
                late.then_some(s.behaviour.late_delay)
            };
            if let Some(d) = late {
                std::thread::sleep(d);
            }
        }
        state.lock().unwrap().in_flight -= 1;
        let resp = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}\r\n{reply}",
            reply.len()
        );
        if conn.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

/// The message of an error answer, as a JSON string.
fn error_message(b: &Behaviour, seen: &Seen, usual: &str) -> String {
    let mut m = b.error_text.clone().unwrap_or_else(|| usual.to_string());
    if b.echo_headers {
        m.push_str(&format!(
            " (you sent Authorization: {}; X-Api-Key: {})",
            seen.header("Authorization").unwrap_or("-"),
            seen.header("X-Api-Key").unwrap_or("-")
        ));
    }
    serde_json::to_string(&m).unwrap()
}

fn answer(seen: &Seen, state: &Arc<Mutex<State>>) -> (u16, String, String) {
    let mut s = state.lock().unwrap();
    let b = s.behaviour.clone();
    if let Some((status, location)) = &b.redirect {
        if !seen.path.starts_with("/moved") {
            return (
                *status,
                format!("Location: {location}\r\n"),
                r#"{"message":"moved"}"#.into(),
            );
        }
    }
    if let Some(t) = &b.token {
        if seen.header("Authorization") != Some(&format!("Bearer {t}")) {
            let msg = error_message(&b, seen, "invalid token");
            return (
                b.refuse_status.unwrap_or(401),
                String::new(),
                format!(r#"{{"message":{msg}}}"#),
            );
        }
    }
    if b.down {
        let msg = error_message(&b, seen, "maintenance");
        return (
            b.down_status.unwrap_or(503),
            String::new(),
            format!(r#"{{"message":{msg}}}"#),
        );
    }
    if b.fail_next > 0 {
        s.behaviour.fail_next -= 1;
        let extra = b
            .retry_after
            .map(|r| format!("Retry-After: {r}\r\n"))
            .unwrap_or_default();
        return (503, extra, r#"{"message":"busy"}"#.into());
    }
    if seen.method == "POST" && (seen.path.starts_with("/batch") || seen.path.starts_with("/rpc")) {
        return batch(seen, &mut s);
    }
    if seen.method == "GET" && seen.path.starts_with("/search?number=") {
        // a search by number, as a verify asks it: the ids of the records found
        let number = &seen.path["/search?number=".len()..];
        let ids: Vec<serde_json::Value> = s
            .records
            .iter()
            .filter(|(_, v)| v["number"] == number)
            .map(|(id, _)| serde_json::json!({ "id": id }))
            .collect();
        return (200, String::new(), serde_json::Value::from(ids).to_string());
    }
    if seen.method == "GET" {
        return (200, String::new(), r#"{"status":"ok"}"#.into());
    }
    let doc: serde_json::Value = serde_json::from_str(&seen.body).unwrap_or_default();
    let number = doc["number"].as_str().unwrap_or("").to_string();
    if b.reject.contains(&number) {
        let usual = b
            .reject_message
            .clone()
            .unwrap_or_else(|| format!("Unknown GL account on invoice {number}"));
        let msg = error_message(&b, seen, &usual);
        return (
            400,
            String::new(),
            format!(r#"{{"error":{{"message":{msg}}}}}"#),
        );
    }
    if seen.method == "PUT" || seen.method == "DELETE" {
        return change(seen, &mut s);
    }
    if b.ok_but_error.contains(&number) {
        return (
            200,
            String::new(),
            format!(r#"{{"error":{{"message":"Customer on hold for {number}"}}}}"#),
        );
    }
    let key = seen.header("Idempotency-Key").unwrap_or("").to_string();
    if let Some(id) = s.by_key.get(&key).filter(|_| !b.ignore_idempotency) {
        return (
            200,
            String::new(),
            format!(r#"{{"id":{id},"replayed":true}}"#),
        );
    }
    s.next_id += 1;
    let id = s.next_id;
    s.by_key.insert(key, id);
    *s.created.entry(number).or_default() += 1;
    s.records.insert(id, doc);
    (201, String::new(), format!(r#"{{"id":{id}}}"#))
}

/// A PUT (fields merged into the record) or DELETE on `.../{id}`; 404 for an id the
/// ERP does not hold; a replay of an applied key answers again without applying.
fn change(seen: &Seen, s: &mut State) -> (u16, String, String) {
    let key = seen.header("Idempotency-Key").unwrap_or("").to_string();
    if let Some((status, body)) = s.applied.get(&key) {
        return (*status, String::new(), body.clone());
    }
    let id: Option<u64> = seen
        .path
        .split('?')
        .next()
        .and_then(|p| p.rsplit('/').next())
        .and_then(|seg| seg.parse().ok());
    let Some(id) = id.filter(|id| s.records.contains_key(id)) else {
        return (404, String::new(), r#"{"message":"no such record"}"#.into());
    };
    let answer = if seen.method == "DELETE" {
        s.records.remove(&id);
        *s.deletes.entry(id).or_default() += 1;
        (200, "{}".to_string())
    } else {
        let fields: serde_json::Value = serde_json::from_str(&seen.body).unwrap_or_default();
        if let (Some(rec), Some(new)) = (s.records.get_mut(&id), fields.as_object()) {
            for (k, v) in new {
                rec[k] = v.clone();
            }
        }
        *s.updates.entry(id).or_default() += 1;
        (200, format!(r#"{{"id":{id}}}"#))
    };
    s.applied.insert(key, answer.clone());
    (answer.0, String::new(), answer.1)
}

/// A list of documents created in one request (see `Behaviour::batch_partial`): all or
/// nothing, the ids in the documents' order; a replay of a key answers again.
fn batch(seen: &Seen, s: &mut State) -> (u16, String, String) {
    let rpc = seen.path.starts_with("/rpc");
    let body: serde_json::Value = serde_json::from_str(&seen.body).unwrap_or_default();
    if rpc
        && body["method"]
            .as_str()
            .is_some_and(|m| m.ends_with(".write"))
    {
        return rpc_write(&body, s);
    }
    let docs = if rpc { &body["params"][0] } else { &body };
    let Some(docs) = docs.as_array() else {
        return (
            400,
            String::new(),
            r#"{"error":{"message":"not a list"}}"#.into(),
        );
    };
    s.batch_sizes.push(docs.len());
    if s.behaviour.max_batch.is_some_and(|m| docs.len() > m) {
        return (
            413,
            String::new(),
            r#"{"message":"request entity too large"}"#.into(),
        );
    }
    let key = seen.header("Idempotency-Key").unwrap_or("").to_string();
    if let Some((status, answer)) = s.batch_answers.get(&key) {
        if !s.behaviour.ignore_idempotency {
            return (*status, String::new(), answer.clone());
        }
    }
    let number = |d: &serde_json::Value| d["number"].as_str().unwrap_or("").to_string();
    let bad = docs
        .iter()
        .map(number)
        .find(|n| s.behaviour.reject.contains(n));
    let create = |s: &mut State, d: &serde_json::Value| {
        s.next_id += 1;
        let id = s.next_id;
        *s.created.entry(number(d)).or_default() += 1;
        s.records.insert(id, d.clone());
        id
    };
    if let Some(bad) = bad {
        if s.behaviour.batch_partial {
            let reject = s.behaviour.reject.clone();
            for d in docs.iter().filter(|d| !reject.contains(&number(d))) {
                create(s, d);
            }
        }
        let msg = serde_json::to_string(&format!("Unknown GL account on invoice {bad}")).unwrap();
        return if rpc {
            (
                200,
                String::new(),
                format!(r#"{{"id":1,"error":["UserError",[{msg},""]]}}"#),
            )
        } else {
            (
                400,
                String::new(),
                format!(r#"{{"error":{{"message":{msg}}}}}"#),
            )
        };
    }
    let mut ids: Vec<u64> = docs.iter().map(|d| create(s, d)).collect();
    if s.behaviour.batch_short_ids {
        ids.pop();
    }
    let ids = serde_json::to_string(&ids).unwrap();
    let answer = if rpc {
        (200, format!(r#"{{"id":1,"result":{ids}}}"#))
    } else {
        (201, format!(r#"{{"ids":{ids}}}"#))
    };
    s.batch_answers.insert(key, answer.clone());
    (answer.0, String::new(), answer.1)
}

/// JSON-RPC `write`: `params[0]` the ids, `params[1]` the fields merged into each
/// record; `{"result": null}`, or an error for an id the ERP does not hold.
fn rpc_write(body: &serde_json::Value, s: &mut State) -> (u16, String, String) {
    let ids: Vec<u64> = body["params"][0]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
        .unwrap_or_default();
    let fields = body["params"][1].as_object().cloned().unwrap_or_default();
    if ids.is_empty() || ids.iter().any(|id| !s.records.contains_key(id)) {
        return (
            200,
            String::new(),
            r#"{"id":1,"error":["UserError",["no such record",""]]}"#.into(),
        );
    }
    for id in ids {
        if let Some(rec) = s.records.get_mut(&id) {
            for (k, v) in &fields {
                rec[k] = v.clone();
            }
        }
        *s.updates.entry(id).or_default() += 1;
    }
    (200, String::new(), r#"{"id":1,"result":null}"#.into())
}
