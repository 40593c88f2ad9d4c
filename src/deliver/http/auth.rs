//! Credentials obtained at run time: an OAuth2 access token (client credentials, RFC
//! 6749 4.4) or a session from a login request, kept for every worker of the target.
//!
//! One credential serves all workers ([`Cache`]): the first worker that needs one fetches
//! it while the others wait for it (one token request however many workers), and it is
//! reused until shortly before it expires ([`refresh_margin`]). A token inside that margin
//! is still good: one worker fetches the next while the others go on with it. When the
//! ERP answers 401 to a request made with a credential, that credential is dropped
//! ([`Cache::refused`]), once for all the workers that were using it, and the next
//! request fetches a new one.
//!
//! An endpoint that refuses the client or the login is final ([`AuthError::Refused`]):
//! asking again cannot change its answer. One that cannot be reached or answers 5xx is
//! retried by the caller ([`Step::Transient`]). Whatever the answer, a secret in it (the
//! token, the session, the cookies) is registered with [`crate::redact`] before anything
//! else is done with it, and the messages made of an answer are masked.

use super::answer::{
    error_text, error_words, read_body, scalar_text, transport_message, HEADER_SHOWN,
};
use crate::config::{ClientAuth, OAuth2, Session};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Why no credential could be had; the same answer for every worker of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AuthError {
    /// The endpoint refused the client or the login (or answered what erpdrop cannot
    /// use): retrying cannot help.
    Refused(String),
    /// It stayed unreachable (or 5xx) through every attempt.
    Unavailable(String),
}

impl AuthError {
    pub(super) fn message(&self) -> &str {
        match self {
            AuthError::Refused(m) | AuthError::Unavailable(m) => m,
        }
    }
}

/// What one login or token request gave.
pub(super) enum Step {
    Got(Fetched),
    Refused(String),
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
}

/// A credential as the endpoint gave it.
#[derive(Debug)]
pub(super) struct Fetched {
    /// The header that carries it and its value (`Authorization: Bearer ...`).
    pub header: String,
    pub value: String,
    /// How long it lives, if the endpoint said (`expires_in`).
    pub lifetime: Option<Duration>,
}

/// A credential in use.
#[derive(Debug)]
pub(super) struct Credential {
    pub header: String,
    pub value: String,
    /// Which fetch it came from: a 401 drops only the credential it was made with.
    generation: u64,
    /// From then on, the next request fetches a new one (the others go on with this).
    refresh_at: Option<Instant>,
    /// From then on, it is not sent.
    expires_at: Option<Instant>,
}

/// How long before a token expires a new one is fetched: 5 minutes (the margin of
/// Azure's and Google's own clients), but no more than half a short-lived token's
/// lifetime, so that a token of 1 s is used for half a second rather than never.
pub(super) fn refresh_margin(lifetime: Duration) -> Duration {
    Duration::from_secs(300).min(lifetime / 2)
}

/// The credential shared by the workers of one target.
#[derive(Default)]
pub(super) struct Cache {
    state: Mutex<State>,
    fetched: Condvar,
}

#[derive(Default)]
struct State {
    current: Option<Arc<Credential>>,
    /// A worker is fetching one now.
    fetching: bool,
    /// The fetch failed: every worker gets this answer (the target is down).
    failed: Option<AuthError>,
    generation: u64,
}

impl Cache {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The credential to send now: the current one, or one fetched by `fetch` (by this
    /// worker, while the others wait, or by another while this one waits).
    pub(super) fn get(
        &self,
        fetch: impl FnOnce() -> Result<Fetched, AuthError>,
    ) -> Result<Arc<Credential>, AuthError> {
        let mut s = self.lock();
        loop {
            if let Some(e) = &s.failed {
                return Err(e.clone());
            }
            let now = Instant::now();
            if let Some(c) = &s.current {
                let fresh = c.refresh_at.is_none_or(|r| now < r);
                let valid = c.expires_at.is_none_or(|e| now < e);
                // fresh, or good still while another worker fetches the next
                if fresh || (s.fetching && valid) {
                    return Ok(c.clone());
                }
            }
            if !s.fetching {
                break;
            }
            s = self.fetched.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.fetching = true;
        drop(s);
        // should `fetch` panic, the waiting workers are woken and one of them fetches
        let guard = Fetching(self);
        let got = fetch();
        std::mem::forget(guard);
        let mut s = self.lock();
        s.fetching = false;
        let out = match got {
            Ok(f) => {
                let now = Instant::now();
                s.generation += 1;
                let c = Arc::new(Credential {
                    header: f.header,
                    value: f.value,
                    generation: s.generation,
                    refresh_at: f.lifetime.map(|l| now + l - refresh_margin(l)),
                    expires_at: f.lifetime.map(|l| now + l),
                });
                s.current = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                s.current = None;
                s.failed = Some(e.clone());
                Err(e)
            }
        };
        drop(s);
        self.fetched.notify_all();
        out
    }

    /// The ERP answered 401 to a request made with `used`: it is dropped, unless a newer
    /// one replaced it already (another worker's 401 came first).
    pub(super) fn refused(&self, used: &Credential) {
        let mut s = self.lock();
        if s.current
            .as_ref()
            .is_some_and(|c| c.generation == used.generation)
        {
            s.current = None;
        }
    }
}

/// Clears `fetching` if the fetch unwinds.
struct Fetching<'a>(&'a Cache);

impl Drop for Fetching<'_> {
    fn drop(&mut self) {
        self.0.lock().fetching = false;
        self.0.fetched.notify_all();
    }
}

fn form(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The token request of OAuth2 client credentials: a form POST of
/// `grant_type=client_credentials` (and `scope`), the client authenticated by HTTP
/// basic over its form-encoded id and secret (RFC 6749 2.3.1) or by form fields. It
/// goes to the identity provider, not the ERP: none of the ERP's headers go with it.
pub(super) fn token_request(agent: &ureq::Agent, tls: &super::tls::Tls, o: &OAuth2) -> Step {
    let mut body = form_urlencoded::Serializer::new(String::new());
    body.append_pair("grant_type", "client_credentials");
    if let Some(scope) = &o.scope {
        body.append_pair("scope", scope);
    }
    let mut req = agent
        .post(&o.token_url)
        .set("Content-Type", "application/x-www-form-urlencoded")
        .set("Accept", "application/json");
    match o.client_auth {
        ClientAuth::Basic => {
            use base64::Engine as _;
            let pair = format!("{}:{}", form(&o.client_id), form(&o.client_secret));
            let basic = base64::engine::general_purpose::STANDARD.encode(pair);
            crate::redact::add(&basic);
            req = req.set("Authorization", &format!("Basic {basic}"));
        }
        ClientAuth::Form => {
            // as it goes over the wire, so that an echo of the body is masked too
            crate::redact::add(&form(&o.client_secret));
            body.append_pair("client_id", &o.client_id);
            body.append_pair("client_secret", &o.client_secret);
        }
    }
    let url = &o.token_url;
    match req.send_string(&body.finish()) {
        Ok(resp) if !(200..300).contains(&resp.status()) => Step::Refused(redirect(
            resp,
            "the token endpoint",
            url,
            "auth.oauth2.token_url",
        )),
        Ok(resp) => token_answer(&read_body(resp), url),
        Err(ureq::Error::Status(code, resp)) => {
            let retry_after = resp
                .header("Retry-After")
                .and_then(super::rate::retry_after);
            let body = read_body(resp);
            let words = crate::redact::redact_string(oauth_error(code, &body));
            if transient(code) {
                Step::Transient {
                    message: format!("HTTP {code} from the token endpoint {url}: {words}"),
                    retry_after,
                }
            } else {
                Step::Refused(format!(
                    "the token endpoint {url} refused the client: HTTP {code} {words} (check target.auth.oauth2 and the environment variables it names)"
                ))
            }
        }
        Err(ureq::Error::Transport(t)) => match tls.failure(&t, url) {
            // a certificate error does not fix itself
            Some(m) => Step::Refused(format!("the token endpoint: {m}")),
            None => Step::Transient {
                message: format!("the token endpoint: {}", transport_message(&t, url)),
                retry_after: None,
            },
        },
    }
}

fn transient(code: u16) -> bool {
    code == 408 || code == 429 || code >= 500
}

/// The answer of a token endpoint: `access_token`, `token_type` Bearer, `expires_in`.
fn token_answer(body: &str, url: &str) -> Step {
    let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let token = match json.get("access_token").and_then(|t| t.as_str()) {
        Some(t) if !t.is_empty() => t,
        _ => {
            return Step::Refused(format!(
                "the answer of the token endpoint {url} holds no access_token"
            ))
        }
    };
    crate::redact::add(token);
    match json.get("token_type").and_then(|t| t.as_str()) {
        None => {}
        Some(t) if t.eq_ignore_ascii_case("bearer") => {}
        Some(other) => {
            let other: String = other.chars().take(40).collect();
            return Step::Refused(crate::redact::redact_string(format!(
                "the token endpoint {url} gave a token of type {other:?}; erpdrop sends Bearer tokens only"
            )));
        }
    }
    // a number, or a string of one (as some endpoints send it)
    let lifetime = match json.get("expires_in") {
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|s| s.is_finite() && *s > 0.0)
    .map(|s| Duration::from_secs_f64(s.min(1e9)));
    Step::Got(Fetched {
        header: "Authorization".into(),
        value: format!("Bearer {token}"),
        lifetime,
    })
}

/// `error: error_description` of an OAuth2 error answer (RFC 6749 5.2), else the
/// usual places of an error text.
fn oauth_error(code: u16, body: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let text = |k: &str| {
        json.get(k)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
    };
    match (text("error"), text("error_description")) {
        (Some(e), Some(d)) => format!("{e}: {d}"),
        (Some(e), None) => e.to_string(),
        _ => error_words(None, code, body),
    }
}

/// Why a 1xx or 3xx answer of a login or token endpoint is not a credential.
fn redirect(resp: ureq::Response, what: &str, url: &str, key: &str) -> String {
    let code = resp.status();
    let to = resp
        .header("Location")
        .map(|l| l.chars().take(HEADER_SHOWN).collect::<String>());
    crate::redact::redact_string(match to {
        Some(to) => format!(
            "HTTP {code} from {what} {url}: it redirects to {to}; erpdrop never follows a redirect with credentials: fix target.{key}"
        ),
        None => format!("HTTP {code} from {what} {url}: not an answer that gives credentials"),
    })
}

/// The login request of a session (`req`: the method and URL, with the ERP's headers),
/// and its answer: the token at `token_pointer`, or the cookies the answer sets.
pub(super) fn session_login(req: ureq::Request, tls: &super::tls::Tls, s: &Session) -> Step {
    let url = &s.url;
    let sent = match &s.body {
        Some(body) => {
            let json = serde_json::from_str::<serde_json::Value>(body).is_ok();
            req.set(
                "Content-Type",
                if json {
                    "application/json"
                } else {
                    "application/x-www-form-urlencoded"
                },
            )
            .send_string(body)
        }
        None => req.call(),
    };
    match sent {
        Ok(resp) if !(200..300).contains(&resp.status()) => {
            Step::Refused(redirect(resp, "the login", url, "auth.session.url"))
        }
        Ok(resp) => session_answer(resp, s),
        Err(ureq::Error::Status(code, resp)) => {
            let retry_after = resp
                .header("Retry-After")
                .and_then(super::rate::retry_after);
            let body = read_body(resp);
            let words = crate::redact::redact_string(error_words(None, code, &body));
            if transient(code) {
                Step::Transient {
                    message: format!("HTTP {code} from the login {url}: {words}"),
                    retry_after,
                }
            } else {
                Step::Refused(format!(
                    "the login at {url} was refused: HTTP {code} {words} (check target.auth.session and the environment variables its body names)"
                ))
            }
        }
        Err(ureq::Error::Transport(t)) => match tls.failure(&t, url) {
            Some(m) => Step::Refused(format!("the login: {m}")),
            None => Step::Transient {
                message: format!("the login: {}", transport_message(&t, url)),
                retry_after: None,
            },
        },
    }
}

/// A session cookie's value shorter than this is not masked on its own (a routing
/// cookie such as SAP's `ROUTEID=.node1` is no secret, and masking a short text would
/// mangle everything that holds it); the whole header value is masked all the same.
const SHORT_COOKIE: usize = 8;

fn session_answer(resp: ureq::Response, s: &Session) -> Step {
    let url = &s.url;
    let cookies: Vec<String> = resp
        .all("Set-Cookie")
        .into_iter()
        .filter_map(|c| {
            let pair = c.split(';').next()?.trim();
            let (name, value) = pair.split_once('=')?;
            let value = value.trim();
            // an empty value deletes a cookie; it is no session
            (!name.trim().is_empty() && !value.is_empty()).then(|| {
                if value.len() >= SHORT_COOKIE {
                    crate::redact::add(value);
                }
                format!("{}={value}", name.trim())
            })
        })
        .collect();
    let status = resp.status();
    let json: serde_json::Value = serde_json::from_str(&read_body(resp)).unwrap_or_default();
    // an error in a 2xx answer is a refusal: Odoo answers a wrong password with 200 and
    // a JSON-RPC error (and a cookie of a session that is not logged in)
    if json.get("error").and_then(error_text).is_some() {
        let words = ["/error/data/message", "/error/message", "/error"]
            .iter()
            .find_map(|p| json.pointer(p).and_then(error_text))
            .unwrap_or_default();
        return Step::Refused(crate::redact::redact_string(format!(
            "the login at {url} was refused: HTTP {status} with an error: {words} (check target.auth.session and the environment variables its body names)"
        )));
    }
    let token = match &s.token_pointer {
        Some(p) => {
            match json.pointer(p).and_then(scalar_text).filter(|t| !t.is_empty()) {
                Some(t) => {
                    crate::redact::add(&t);
                    t
                }
                None => {
                    return Step::Refused(format!(
                        "the answer of the login at {url} holds no session at {p} (auth.session.token_pointer)"
                    ))
                }
            }
        }
        None if cookies.is_empty() => {
            return Step::Refused(format!(
                "the login at {url} answered {status} but set no cookie; if the session is in the answer's body, give auth.session.token_pointer"
            ))
        }
        None => cookies.join("; "),
    };
    let value = s.value.replace("{token}", &token);
    crate::redact::add(&value);
    Step::Got(Fetched {
        header: s.header.clone(),
        value,
        lifetime: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn fetched(v: &str, lifetime: Option<Duration>) -> Fetched {
        Fetched {
            header: "Authorization".into(),
            value: v.into(),
            lifetime,
        }
    }

    #[test]
    fn one_fetch_for_many_workers_and_one_more_after_a_401() {
        let cache = Cache::default();
        let fetches = AtomicUsize::new(0);
        let fetch = || {
            let n = fetches.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(30));
            Ok(fetched(&format!("Bearer t{n}"), None))
        };
        let used: Vec<Arc<Credential>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| s.spawn(|| cache.get(fetch).unwrap()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert!(used.iter().all(|c| c.value == "Bearer t0"));
        // every worker's request is answered 401: the credential is dropped once
        for c in &used {
            cache.refused(c);
        }
        let again = cache.get(fetch).unwrap();
        assert_eq!(again.value, "Bearer t1");
        // a late 401 with the old one does not drop the new one
        cache.refused(&used[0]);
        assert_eq!(cache.get(fetch).unwrap().value, "Bearer t1");
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_token_is_fetched_again_before_it_expires() {
        let cache = Cache::default();
        let n = AtomicUsize::new(0);
        let fetch = || {
            let i = n.fetch_add(1, Ordering::SeqCst);
            Ok(fetched(&format!("t{i}"), Some(Duration::from_millis(100))))
        };
        assert_eq!(cache.get(fetch).unwrap().value, "t0");
        assert_eq!(cache.get(fetch).unwrap().value, "t0");
        // past half its life (the margin of a short token): a new one
        std::thread::sleep(Duration::from_millis(55));
        assert_eq!(cache.get(fetch).unwrap().value, "t1");
        assert_eq!(
            refresh_margin(Duration::from_secs(3600)),
            Duration::from_secs(300)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(1)),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn a_refusal_is_every_workers_answer_without_asking_again() {
        let cache = Cache::default();
        let n = AtomicUsize::new(0);
        let fetch = || {
            n.fetch_add(1, Ordering::SeqCst);
            Err(AuthError::Refused("invalid_client: bad secret".into()))
        };
        for _ in 0..3 {
            assert_eq!(
                cache.get(fetch).unwrap_err(),
                AuthError::Refused("invalid_client: bad secret".into())
            );
        }
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn token_answers() {
        let got = |body: &str| match token_answer(body, "https://idp/token") {
            Step::Got(f) => Ok(f),
            Step::Refused(m) => Err(m),
            Step::Transient { message, .. } => Err(message),
        };
        let f = got(r#"{"access_token":"tok-1","token_type":"Bearer","expires_in":3599}"#).unwrap();
        assert_eq!(
            (f.header.as_str(), f.value.as_str()),
            ("Authorization", "Bearer tok-1")
        );
        assert_eq!(f.lifetime, Some(Duration::from_secs(3599)));
        // Azure's v1 endpoint sends expires_in as a string; no expires_in: until a 401
        let f = got(r#"{"access_token":"tok-2","token_type":"bearer","expires_in":"60"}"#).unwrap();
        assert_eq!(f.lifetime, Some(Duration::from_secs(60)));
        assert_eq!(got(r#"{"access_token":"tok-3"}"#).unwrap().lifetime, None);
        assert!(got(r#"{"token_type":"Bearer"}"#)
            .unwrap_err()
            .contains("no access_token"));
        assert!(got(r#"{"access_token":"tok-4","token_type":"MAC"}"#)
            .unwrap_err()
            .contains("Bearer tokens only"));
        assert_eq!(
            oauth_error(
                401,
                r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#
            ),
            "invalid_client: AADSTS7000215: Invalid client secret provided."
        );
        assert_eq!(
            oauth_error(400, r#"{"error":"invalid_scope"}"#),
            "invalid_scope"
        );
    }
}
