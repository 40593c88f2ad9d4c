//! The HTTP target: POST each document to an ERP's REST API.
//!
//! Only a 2xx answer is delivery. Transient failures (connection refused or reset,
//! timeout, 408, 429, 5xx) are retried with exponential backoff and jitter, honouring
//! `Retry-After`; when they persist, the target is down and every thread stops at once.
//! A redirect (never followed), any other answer that is not 2xx, and refused
//! credentials (401, 403) make the target unavailable at once, without retries: they
//! will not fix themselves. Permanent failures (other 4xx, or a 2xx whose body carries
//! an error at `error_pointer`) reject the document with the ERP's own message. Each
//! request carries an `Idempotency-Key` derived from mapping, key and content hash, so
//! a resend after a crash is safe where the ERP honours it.
//!
//! Every message made of the ERP's answer (its body, a header) or of a transport error
//! has the secrets masked ([`crate::redact`]) before it leaves this module.
//!
//! Every request to the ERP is made in one place, [`HttpTarget::exchange`]: it waits
//! its turn under `max_requests_per_second` and any pause a 429 asked for (`rate.rs`),
//! and carries the configured headers and the credentials, fetched at run time when the
//! target logs in (`auth.rs`: OAuth2, a session), fetched again once on a 401.

use super::{Cancel, Delivery, DocContext, RemoteTarget, SubmitOutcome, Target};
use crate::config::{HttpConfig, Login, PayloadFormat};
use crate::ledger::Operation;
use crate::spool::SpooledDoc;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

mod answer;
mod auth;
mod batch;
mod envelope;
mod rate;
mod tls;
mod url;
mod verify;

use answer::{error_text, not_delivery, read_body, scalar_text, transport_message};
use url::{base_url, fill, key_changes_path};

pub struct HttpTarget {
    agent: ureq::Agent,
    tls: tls::Tls,
    cfg: HttpConfig,
    content_type: &'static str,
    jitter: AtomicU64,
    /// The credential obtained at run time (`auth.oauth2`, `auth.session`), shared by
    /// all workers.
    login: auth::Cache,
    /// The pace of requests across all workers.
    gate: rate::Gate,
}

/// The ERP's answer to a request, or ureq's error, as ureq gives them.
pub(super) type Sent = Result<ureq::Response, ureq::Error>;

/// What one attempt gave: the ERP's answer (`T`: a document's outcome, or a batch's).
enum Attempt<T = SubmitOutcome> {
    Done(T),
    Transient {
        message: String,
        retry_after: Option<Duration>,
        /// Whether the ERP may have taken the document although no answer says so (a
        /// timeout or a connection lost after the request went out, a gateway error);
        /// not when the connection was never made or the ERP said it took nothing
        /// (429, 503).
        maybe_delivered: bool,
    },
    /// The target is unavailable and retrying cannot help (a redirect, refused
    /// credentials): every thread stops now.
    Down {
        message: String,
    },
}

/// The `Idempotency-Key` of a document.
///
/// It covers the operation and how many times the key was deleted before, so that an
/// update is never taken for a replay of the create, nor a create after a delete for
/// the first create; an update also covers how many updates were accepted before it,
/// so that a change made again after it was undone is never taken for a replay. A
/// first create keeps the form of earlier releases (mapping, key, content), and a
/// first update its form from before updates were counted, so a document left in
/// flight by one is resent under the same key.
pub fn idempotency_key(doc: &SpooledDoc, mapping: &str) -> String {
    let mut h = Sha256::new();
    h.update(mapping.as_bytes());
    h.update([0]);
    h.update(doc.key.as_bytes());
    h.update([0]);
    h.update(doc.content_hash.as_bytes());
    if doc.operation != Operation::Create || doc.deletions > 0 {
        h.update([0]);
        h.update(doc.operation.as_str().as_bytes());
        h.update([0]);
        h.update(doc.deletions.to_le_bytes());
    }
    if doc.operation == Operation::Update && doc.updates > 0 {
        // the updates before it: A, B, A, B is four requests, the second B no replay
        h.update([0]);
        h.update(doc.updates.to_le_bytes());
    }
    hex::encode(h.finalize())
}

impl HttpTarget {
    pub fn new(cfg: &HttpConfig, format: PayloadFormat) -> HttpTarget {
        let tls = tls::Tls::new(&cfg.tls, &cfg.tls_material);
        let agent = ureq::AgentBuilder::new()
            .tls_connector(tls.connector.clone())
            // A redirect is never followed: ureq would resend a POST as a GET without
            // its body (301, 302, 303), or hand back the 3xx (307, 308); either way the
            // ERP never got the document. A 3xx is the target being unavailable.
            .redirects(0)
            .timeout(cfg.timeout)
            .max_idle_connections_per_host(cfg.concurrency.max(1) * 2)
            .user_agent(concat!("erpdrop/", env!("CARGO_PKG_VERSION")))
            .build();
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1;
        HttpTarget {
            agent,
            tls,
            cfg: cfg.clone(),
            content_type: match format {
                PayloadFormat::Json => "application/json",
                PayloadFormat::Xml => "application/xml",
            },
            jitter: AtomicU64::new(seed),
            login: auth::Cache::default(),
            gate: rate::Gate::new(cfg.max_requests_per_second),
        }
    }

    fn url_for(&self, ctx: &DocContext<'_>, key: &str) -> String {
        fill(&self.cfg.url, ctx, key, None)
    }

    /// The method, URL and body of a document's request, by its operation. A create
    /// goes in the envelope (`body`) where there is one.
    fn request_of<'d>(
        &'d self,
        ctx: &DocContext<'_>,
        doc: &'d SpooledDoc,
    ) -> (&'d str, String, Cow<'d, [u8]>) {
        match doc.operation {
            Operation::Create => {
                let body = match &self.cfg.body {
                    Some(template) => Cow::Owned(envelope::envelope(template, ctx, &doc.body)),
                    None => Cow::Borrowed(&doc.body[..]),
                };
                ("POST", self.url_for(ctx, &doc.key), body)
            }
            Operation::Update | Operation::Delete => {
                let r = if doc.operation == Operation::Update {
                    &self.cfg.update
                } else {
                    &self.cfg.delete
                };
                let url = fill(&r.url, ctx, &doc.key, doc.erp_id.as_deref());
                let body = match &r.body {
                    Some(b) => Cow::Owned(envelope::request_body(b, ctx, doc)),
                    None if doc.operation == Operation::Update => Cow::Borrowed(&doc.body[..]),
                    None => Cow::Borrowed(&[][..]),
                };
                (&r.method, url, body)
            }
        }
    }

    /// A request with the configured headers (and no credential obtained at run time).
    fn request(&self, method: &str, url: &str) -> ureq::Request {
        let mut r = self.agent.request(method, url);
        for h in &self.cfg.headers {
            r = r.set(&h.name, &h.value);
        }
        r
    }

    /// The payload's `Content-Type`, unless `headers` gives one (`text/xml` for a SOAP
    /// envelope).
    fn content_type_of(&self, req: ureq::Request) -> ureq::Request {
        let given = self
            .cfg
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("content-type"));
        if given {
            req
        } else {
            req.set("Content-Type", self.content_type)
        }
    }

    /// Makes a request to the ERP: every request goes through here (documents, the
    /// probe, batches, verify). It waits for its turn under the rate limit (and any
    /// pause a 429 asked for), carries the configured headers and the credential, and
    /// `send` sends it (with its body). A 401 to a request made with a credential
    /// obtained at run time drops that credential; a new one is fetched (once for all
    /// workers) and the request is made once more: a second 401 is the caller's to
    /// read, as refused credentials. A 429 with `Retry-After` pauses every worker for
    /// that long (at most `retry.max_backoff_ms`).
    ///
    /// `Err` when no credential can be had: the login or token endpoint refused, or
    /// stayed unreachable through every attempt; no request went to the ERP.
    pub(super) fn exchange(
        &self,
        method: &str,
        url: &str,
        send: impl Fn(ureq::Request) -> Sent,
    ) -> Result<Sent, String> {
        let mut renewed = false;
        loop {
            let credential = match &self.cfg.login {
                Some(login) => Some(
                    self.login
                        .get(|| self.log_in(login))
                        .map_err(|e| e.message().to_string())?,
                ),
                None => None,
            };
            self.gate.wait();
            let mut req = self.request(method, url);
            if let Some(c) = &credential {
                req = req.set(&c.header, &c.value);
            }
            let sent = send(req);
            match (&sent, &credential) {
                (Err(ureq::Error::Status(401, _)), Some(c)) if !renewed => {
                    tracing::debug!("HTTP 401 from {url}: logging in again");
                    self.login.refused(c);
                    renewed = true;
                    continue;
                }
                (Err(ureq::Error::Status(429, resp)), _) => {
                    if let Some(wait) = resp.header("Retry-After").and_then(rate::retry_after) {
                        let wait = wait.min(Duration::from_millis(self.cfg.retry.max_backoff_ms));
                        tracing::debug!("HTTP 429 from {url}: every worker waits {wait:?}");
                        self.gate.pause(wait);
                    }
                }
                _ => {}
            }
            return Ok(sent);
        }
    }

    /// Fetches the credential: the token request or the login, retried with backoff
    /// while the endpoint is unreachable or answers 5xx; a refusal is final at once.
    /// A session's login goes to the ERP: it keeps the rate limit and carries the
    /// configured headers. A token request goes to the identity provider, with neither.
    fn log_in(&self, login: &Login) -> Result<auth::Fetched, auth::AuthError> {
        let attempts = self.cfg.retry.attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            let step = match login {
                Login::OAuth2(o) => auth::token_request(&self.agent, &self.tls, o),
                Login::Session(s) => {
                    self.gate.wait();
                    auth::session_login(self.request(&s.method, &s.url), &self.tls, s)
                }
            };
            match step {
                auth::Step::Got(f) => {
                    tracing::debug!("logged in ({})", f.header);
                    return Ok(f);
                }
                auth::Step::Refused(m) => return Err(auth::AuthError::Refused(m)),
                auth::Step::Transient {
                    message,
                    retry_after,
                } => {
                    tracing::debug!(attempt, "logging in failed: {message}");
                    last = message;
                    if attempt < attempts {
                        std::thread::sleep(self.backoff(attempt, retry_after));
                    }
                }
            }
        }
        Err(auth::AuthError::Unavailable(format!(
            "{last} (after {attempts} attempts)"
        )))
    }

    /// The URL template of a document's request, by its operation.
    fn template_of(&self, doc: &SpooledDoc) -> &str {
        match doc.operation {
            Operation::Create => &self.cfg.url,
            Operation::Update => &self.cfg.update.url,
            Operation::Delete => &self.cfg.delete.url,
        }
    }

    /// Why a document's request cannot be made, if it cannot: its key (or ERP id) would
    /// change the request's path, or the URL needs the ERP's id and it is not known.
    fn request_problem(&self, ctx: &DocContext<'_>, doc: &SpooledDoc) -> Option<String> {
        let template = self.template_of(doc);
        let id = doc.erp_id.as_deref();
        let body_id = match doc.operation {
            Operation::Create => false,
            Operation::Update => self
                .cfg
                .update
                .body
                .as_ref()
                .is_some_and(|b| b.contains("{id}")),
            Operation::Delete => self
                .cfg
                .delete
                .body
                .as_ref()
                .is_some_and(|b| b.contains("{id}")),
        };
        if (template.contains("{id}") || body_id) && id.is_none() {
            return Some(format!(
                "the ERP's id for it is not known, and the {} request goes to {template}: it was created when the target kept no ids (target.id_pointer); {} it in the ERP by hand",
                doc.operation.as_str(),
                doc.operation.as_str(),
            ));
        }
        let suspect = |v: &str| v.is_empty() || v.contains('.');
        let key_used = template.contains("{key}") && suspect(&doc.key);
        let id_used = template.contains("{id}") && id.is_some_and(suspect);
        if !key_used && !id_used {
            return None;
        }
        let url = fill(template, ctx, &doc.key, id);
        let plain = fill(template, ctx, "x", Some("x"));
        key_changes_path(&url, &plain).then(|| {
            let (what, value) = if key_used {
                ("key", doc.key.as_str())
            } else {
                ("ERP id", id.unwrap_or(""))
            };
            format!(
                "its {what} {} cannot be a URL path segment of {template}: as `.`, `..` or empty it would change the request's path, to another resource of the ERP",
                crate::problem::quote(value),
            )
        })
    }

    fn attempt(&self, ctx: &DocContext<'_>, doc: &SpooledDoc) -> Attempt {
        let (method, url, body) = self.request_of(ctx, doc);
        let key = idempotency_key(doc, ctx.mapping);
        let sent = self.exchange(method, &url, |req| {
            let mut req = req.set("Idempotency-Key", &key);
            if !body.is_empty() {
                req = self.content_type_of(req);
            }
            if body.is_empty() && doc.operation == Operation::Delete {
                req.call()
            } else {
                req.send_bytes(&body)
            }
        });
        let sent = match sent {
            Ok(sent) => sent,
            Err(message) => return Attempt::Down { message },
        };
        match sent {
            Ok(resp) if !(200..300).contains(&resp.status()) => Attempt::Down {
                message: not_delivery(&url, &resp),
            },
            Ok(resp) => {
                let status = resp.status();
                let body = read_body(resp);
                let json: Option<serde_json::Value> = serde_json::from_str(&body).ok();
                if let (Some(p), Some(j)) = (&self.cfg.error_pointer, &json) {
                    if let Some(msg) = j.pointer(p).and_then(error_text) {
                        return Attempt::Done(SubmitOutcome::Rejected {
                            status: Some(status),
                            message: crate::redact::redact_string(msg),
                        });
                    }
                }
                let id = match (&self.cfg.id_pointer, &json) {
                    (Some(p), Some(j)) => j
                        .pointer(p)
                        .and_then(scalar_text)
                        .map(crate::redact::redact_string),
                    _ => None,
                };
                if id.is_none() && doc.operation == Operation::Create {
                    if let Some(p) = &self.cfg.id_pointer {
                        // a 2xx is delivery; but without its id, a later update or
                        // delete of this document cannot be sent: say so now
                        tracing::warn!(
                            document = %doc.key, status,
                            "the ERP accepted it, but its answer has no id at {p} (target.id_pointer){}: its later updates or deletes cannot name it",
                            if json.is_none() { ", and is not JSON" } else { "" }
                        );
                    }
                }
                Attempt::Done(SubmitOutcome::Accepted {
                    id,
                    status: Some(status),
                })
            }
            // a delete of what is gone already: deleted
            Err(ureq::Error::Status(code @ (404 | 410), _))
                if doc.operation == Operation::Delete =>
            {
                Attempt::Done(SubmitOutcome::Accepted {
                    id: None,
                    status: Some(code),
                })
            }
            Err(e) => self.failed(&url, e, |status, message| SubmitOutcome::Rejected {
                status: Some(status),
                message,
            }),
        }
    }

    /// An attempt that got no 2xx: refused credentials make the target unavailable at
    /// once, 408, 429, 5xx and transport errors are transient, any other status is the
    /// ERP's refusal (`refused` makes it the answer, with the ERP's words).
    fn failed<T>(
        &self,
        url: &str,
        e: ureq::Error,
        refused: impl FnOnce(u16, String) -> T,
    ) -> Attempt<T> {
        match e {
            ureq::Error::Status(code, resp) => {
                let retry_after = resp.header("Retry-After").and_then(rate::retry_after);
                let body = read_body(resp);
                let message = self.error_message(code, &body);
                if code == 401 || code == 403 {
                    // the credentials, not the document: no document is at fault, and
                    // no retry will change the answer
                    Attempt::Down {
                        message: format!(
                            "HTTP {code} from {url}: the ERP refused the credentials: {message} (check target.auth and the environment variables it names)"
                        ),
                    }
                } else if code == 408 || code == 429 || code >= 500 {
                    Attempt::Transient {
                        message: format!("HTTP {code}: {message}"),
                        retry_after,
                        maybe_delivered: !matches!(code, 429 | 503),
                    }
                } else {
                    Attempt::Done(refused(code, message))
                }
            }
            ureq::Error::Transport(t) => match self.tls.failure(&t, url) {
                // a certificate error, or the server refused the TLS client: it will
                // not fix itself, and the ERP never read the request
                Some(message) => Attempt::Down { message },
                None => Attempt::Transient {
                    message: transport_message(&t, url),
                    retry_after: None,
                    maybe_delivered: !tls::in_handshake(&t)
                        && !matches!(
                            t.kind(),
                            ureq::ErrorKind::ConnectionFailed
                                | ureq::ErrorKind::Dns
                                | ureq::ErrorKind::InvalidUrl
                                | ureq::ErrorKind::UnknownScheme
                                | ureq::ErrorKind::InsecureRequestHttpsOnly
                        ),
                },
            },
        }
    }

    /// The ERP's own words for an error: the body at `error_pointer`, or a usual place
    /// (`/message`, `/error/message`, `/error`, `/detail`, `/title`), or the body text;
    /// secrets masked.
    fn error_message(&self, code: u16, body: &str) -> String {
        crate::redact::redact_string(answer::error_words(
            self.cfg.error_pointer.as_deref(),
            code,
            body,
        ))
    }

    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let r = &self.cfg.retry;
        let exp = r
            .backoff_ms
            .saturating_mul(1u64 << (attempt - 1).min(20))
            .min(r.max_backoff_ms);
        // xorshift: jitter between 50% and 100% of the delay
        let mut x = self.jitter.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.jitter.store(x, Ordering::Relaxed);
        let jittered = exp / 2 + x % (exp / 2 + 1);
        let ms = match retry_after {
            Some(ra) => (ra.as_millis() as u64).min(r.max_backoff_ms).max(jittered),
            None => jittered,
        };
        Duration::from_millis(ms)
    }

    /// Reaches the health URL (or the base URL) with the configured headers. `Ok` with
    /// a sentence when the target answers and accepts the credentials.
    pub fn probe(&self) -> Result<String, String> {
        let url = self
            .cfg
            .health_url
            .clone()
            .unwrap_or_else(|| base_url(&self.cfg.url));
        let sent = self.exchange("GET", &url, |req| req.call())?;
        match sent {
            Ok(r) if !(200..300).contains(&r.status()) => Err(not_delivery(&url, &r)),
            Ok(r) => Ok(self.answered(&url, r.status())),
            Err(ureq::Error::Status(code @ (401 | 403), r)) => Err(format!(
                "{url} refused the credentials: HTTP {code} {}",
                self.error_message(code, &read_body(r))
            )),
            // a server error, or one that is not taking requests (503): a run would find
            // the target unavailable, so check says so
            Err(ureq::Error::Status(code, r)) if code >= 500 => Err(format!(
                "{url} answered HTTP {code}: {}",
                self.error_message(code, &read_body(r))
            )),
            // Anything else (a 404 of a base URL, a 405) means the server is there and
            // took the credentials.
            Err(ureq::Error::Status(code, _)) => Ok(self.answered(&url, code)),
            Err(ureq::Error::Transport(t)) => Err(self
                .tls
                .failure(&t, &url)
                .unwrap_or_else(|| transport_message(&t, &url))),
        }
    }

    /// `check`'s words for an answer: the status, and over https what TLS did.
    fn answered(&self, url: &str, status: u16) -> String {
        let login = match &self.cfg.login {
            Some(Login::OAuth2(o)) => format!(" with a token from {}", o.token_url),
            Some(Login::Session(s)) => format!(" with the session of {}", s.url),
            None => String::new(),
        };
        if url.len() > 8 && url[..8].eq_ignore_ascii_case("https://") {
            format!("{url} answered {status}{login}; {}", self.tls.summary())
        } else {
            format!("{url} answered {status}{login}")
        }
    }
}

impl Target for HttpTarget {
    fn delivery(&self) -> Delivery<'_> {
        Delivery::Remote(self)
    }
}

impl RemoteTarget for HttpTarget {
    fn concurrency(&self) -> usize {
        self.cfg.concurrency
    }

    fn look_up(&self, ctx: &DocContext<'_>, key: &str) -> Option<super::LookUp> {
        self.look_up_key(ctx, key)
    }

    fn send(&self, ctx: &DocContext<'_>, doc: &SpooledDoc, cancel: &Cancel<'_>) -> SubmitOutcome {
        if let Some(message) = self.request_problem(ctx, doc) {
            return SubmitOutcome::Rejected {
                status: None,
                message,
            };
        }
        // whether the ERP may have this document already: asked first (`verify`)
        let mut unknown = doc.resend;
        self.retrying(&doc.key, doc.resend, cancel, || {
            if unknown {
                match self.settle_unknown(ctx, doc) {
                    Some(Ok(outcome)) => return Attempt::Done(outcome),
                    Some(Err(unanswered)) => return unanswered,
                    None => unknown = false,
                }
            }
            let tried = self.attempt(ctx, doc);
            if let Attempt::Transient {
                maybe_delivered: true,
                ..
            } = tried
            {
                unknown = true;
            }
            tried
        })
        .unwrap_or_else(|(message, maybe_delivered)| SubmitOutcome::Unavailable {
            message,
            maybe_delivered,
        })
    }

    fn batch_size(&self) -> Option<usize> {
        self.cfg.batch.as_ref().map(|b| b.size)
    }

    fn send_batch(
        &self,
        ctx: &DocContext<'_>,
        docs: &[SpooledDoc],
        cancel: &Cancel<'_>,
    ) -> Vec<SubmitOutcome> {
        match &self.cfg.batch {
            Some(b) => self.send_creates(b, ctx, docs, cancel),
            None => docs.iter().map(|d| self.send(ctx, d, cancel)).collect(),
        }
    }
}

impl HttpTarget {
    /// Makes one request (`what` names it in the log) until it is answered, retrying
    /// transient failures with backoff unless `cancel` says stop. `Err`: the target is
    /// unavailable (it is down for every thread), with the message and whether an
    /// attempt (or an earlier one: `maybe_before`) may have reached the ERP.
    fn retrying<T>(
        &self,
        what: &str,
        maybe_before: bool,
        cancel: &Cancel<'_>,
        mut once: impl FnMut() -> Attempt<T>,
    ) -> Result<T, (String, bool)> {
        let attempts = self.cfg.retry.attempts.max(1);
        let mut last = String::new();
        let mut maybe = maybe_before;
        for attempt in 1..=attempts {
            if attempt > 1 && cancel.any() {
                break;
            }
            match once() {
                Attempt::Done(answer) => return Ok(answer),
                Attempt::Down { message } => {
                    cancel.target_down();
                    // a redirect or refused credentials: this request was not taken,
                    // an earlier one that timed out may have been
                    return Err((message, maybe));
                }
                Attempt::Transient {
                    message,
                    retry_after,
                    maybe_delivered,
                } => {
                    maybe |= maybe_delivered;
                    tracing::debug!(document = %what, attempt, "transient target error: {message}");
                    last = message;
                    if attempt < attempts {
                        let wait = self.backoff(attempt, retry_after);
                        let until = std::time::Instant::now() + wait;
                        while std::time::Instant::now() < until && !cancel.any() {
                            std::thread::sleep(Duration::from_millis(20).min(wait));
                        }
                    }
                }
            }
        }
        cancel.target_down();
        let message = if last.is_empty() {
            "the target is down (another document found it unavailable)".to_string()
        } else {
            format!("{last} (after {attempts} attempts)")
        };
        Err((message, maybe))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_key_changes_with_content_operation_and_deletions() {
        let doc = |hash: &str, operation, deletions| SpooledDoc {
            key: "K1".into(),
            line: 2,
            content_hash: hash.into(),
            operation,
            erp_id: None,
            deletions,
            updates: 0,
            body: Vec::new(),
            resend: false,
            ordinal: 0,
        };
        let a = idempotency_key(&doc("h1", Operation::Create, 0), "m");
        assert_eq!(a.len(), 64);
        assert_eq!(a, idempotency_key(&doc("h1", Operation::Create, 0), "m"));
        assert_ne!(a, idempotency_key(&doc("h2", Operation::Create, 0), "m"));
        assert_ne!(a, idempotency_key(&doc("h1", Operation::Create, 0), "n"));
        // a first create keeps the key of earlier releases: sha256(mapping \0 key \0 hash)
        let legacy = hex::encode(Sha256::digest(b"m\0K1\0h1"));
        assert_eq!(a, legacy);
        // an update of the same content, or a create after a delete, is a new request
        let update = idempotency_key(&doc("h1", Operation::Update, 0), "m");
        let again = idempotency_key(&doc("h1", Operation::Create, 1), "m");
        let delete = idempotency_key(&doc("h1", Operation::Delete, 0), "m");
        assert!(a != update && a != again && a != delete && update != delete);
        // an update after others is a new request, even to content sent before
        let later = SpooledDoc {
            updates: 2,
            ..doc("h1", Operation::Update, 0)
        };
        assert_ne!(update, idempotency_key(&later, "m"));
    }
}
