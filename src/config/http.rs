//! The http target's settings: URL templates, credentials (always from the
//! environment, and masked from the moment they are read), headers, retries, the
//! requests of updates and deletes.

use super::TargetSpec;
use crate::config_error::{ConfigError, ConfigErrors, KeyLocator};
use crate::mapping::Mapping;
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;

/// `update = { method = "PUT", url = "...", body = "..." }` (and `delete`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RequestSpec {
    method: Option<String>,
    url: Option<String>,
    body: Option<String>,
}

/// Credentials, always from the environment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuthSpec {
    bearer_env: Option<String>,
    basic_user_env: Option<String>,
    basic_password_env: Option<String>,
    /// A header carrying a key: `header = "X-Api-Key", header_env = "ERP_KEY"`.
    header: Option<String>,
    header_env: Option<String>,
    oauth2: Option<super::login::OAuth2Spec>,
    session: Option<super::login::SessionSpec>,
}

/// `batch = { size, body, ids_pointer, all_or_nothing }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BatchSpec {
    size: Option<usize>,
    body: Option<String>,
    ids_pointer: Option<String>,
    #[serde(default)]
    all_or_nothing: bool,
}

/// `verify = { url, found_pointer }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VerifySpec {
    url: Option<String>,
    found_pointer: Option<String>,
    method: Option<String>,
    body: Option<String>,
}

/// Up to `size` documents in one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchConfig {
    pub size: usize,
    /// The request's body, `{payloads}` replaced by a JSON array of the payloads.
    pub body: String,
    /// Where the answer holds the array of ERP ids, in the documents' order.
    pub ids_pointer: Option<String>,
    /// The ERP creates none of a batch when one document is bad.
    pub all_or_nothing: bool,
}

/// How to ask the ERP whether it has a document whose last attempt has no known
/// outcome: a GET of `url` (`{key}`, `{document}`, `{mapping}`); an id at
/// `found_pointer` in the answer means it has. An ERP whose search is an RPC call
/// (Tryton's or Odoo's JSON-RPC) takes `method = "POST"` and a `body`, in which `{key}`
/// is the key as a JSON string's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verify {
    pub url: String,
    pub found_pointer: String,
    /// `GET` unless the config says otherwise.
    pub method: String,
    pub body: Option<String>,
}

/// PEM files for TLS, absolute: CAs trusted besides the system's, and a client
/// certificate with its key for mutual TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca_file: Option<std::path::PathBuf>,
    pub client_cert: Option<std::path::PathBuf>,
    pub client_key: Option<std::path::PathBuf>,
}

/// A header value: a constant, or `{ env = "VAR" }`, or `{ base64 = "..." }` /
/// `{ base64url = "..." }` (a constant encoded, e.g. a JSON context).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum HeaderSpec {
    Text(String),
    Special(HeaderSpecial),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HeaderSpecial {
    env: Option<String>,
    base64: Option<String>,
    base64url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RetrySpec {
    #[serde(default = "default_attempts")]
    attempts: u32,
    #[serde(default = "default_backoff")]
    backoff_ms: u64,
    #[serde(default = "default_max_backoff")]
    max_backoff_ms: u64,
}

fn default_attempts() -> u32 {
    5
}
fn default_backoff() -> u64 {
    500
}
fn default_max_backoff() -> u64 {
    30_000
}

/// Retry policy for transient target errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub backoff_ms: u64,
    pub max_backoff_ms: u64,
}

/// One header to send; `secret` ones are never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
    pub secret: bool,
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = if self.secret { "<secret>" } else { &self.value };
        write!(f, "{}: {}", self.name, v)
    }
}

/// The HTTP target, resolved (secrets read from the environment).
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// URL template: `{document}`, `{mapping}`, `{key}` are replaced.
    pub url: String,
    pub health_url: Option<String>,
    pub headers: Vec<Header>,
    pub timeout: std::time::Duration,
    pub concurrency: usize,
    pub retry: RetryPolicy,
    pub id_pointer: Option<String>,
    pub error_pointer: Option<String>,
    /// How an update is sent (default: PUT on `url` + `/{id}`).
    pub update: Request,
    /// How a delete is sent (default: DELETE on `url` + `/{id}`).
    pub delete: Request,
    /// A credential obtained at run time (OAuth2, a session), if any.
    pub login: Option<super::Login>,
    pub tls: TlsFiles,
    /// What those files hold, read and checked when the config loaded.
    pub tls_material: super::tls::TlsMaterial,
    /// Requests per second across all workers, if the ERP limits them.
    pub max_requests_per_second: Option<f64>,
    /// An envelope for each document's request: `{payload}` is the payload, as it is.
    pub body: Option<String>,
    pub batch: Option<BatchConfig>,
    pub verify: Option<Verify>,
}

/// A request for an operation: method, URL template (`{id}`, `{key}`, `{document}`,
/// `{mapping}`), and a body that replaces the payload (a deactivation), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub body: Option<String>,
}

/// Reads the HTTP target's settings, with secrets from the environment.
pub(super) fn resolve_http(
    path: &Path,
    base_dir: &Path,
    loc: &KeyLocator,
    t: &TargetSpec,
) -> Result<HttpConfig, ConfigErrors> {
    use base64::Engine as _;
    let err = |keys: &[&str], msg: String| -> ConfigErrors {
        let mut full = vec!["target"];
        full.extend_from_slice(keys);
        ConfigError::at(path, loc.line(&full), &full.join("."), msg).into()
    };
    // Every value the target takes from the environment is a secret: masked from now
    // on in everything erpdrop prints, logs or stores.
    let env = |keys: &[&str], var: &str| -> Result<String, ConfigErrors> {
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => {
                crate::redact::add(&v);
                Ok(v)
            }
            _ => Err(err(
                keys,
                format!("the environment variable {var} is not set (secrets come from the environment, never the file)"),
            )),
        }
    };
    let url = t.url.clone().ok_or_else(|| {
        err(
            &["url"],
            "kind = \"http\" needs `url`, e.g. \"http://127.0.0.1:8000/api/{document}\"".into(),
        )
    })?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(err(
            &["url"],
            format!("{url:?} must start with http:// or https://"),
        ));
    }
    let mut headers = Vec::new();
    for (name, h) in &t.headers {
        let (value, secret) = match h {
            HeaderSpec::Text(v) => (v.clone(), false),
            HeaderSpec::Special(s) => match (&s.env, &s.base64, &s.base64url) {
                (Some(var), None, None) => (env(&["headers", name], var)?, true),
                (None, Some(text), None) => (base64::engine::general_purpose::STANDARD.encode(text), false),
                (None, None, Some(text)) => (base64::engine::general_purpose::URL_SAFE.encode(text), false),
                _ => {
                    return Err(err(
                        &["headers", name],
                        "a header takes a text, or exactly one of { env = \"VAR\" }, { base64 = \"...\" }, { base64url = \"...\" }".into(),
                    ))
                }
            },
        };
        headers.push(Header {
            name: name.clone(),
            value,
            secret,
        });
    }
    if let Some(a) = &t.auth {
        if let Some(var) = &a.bearer_env {
            headers.push(Header {
                name: "Authorization".into(),
                value: format!("Bearer {}", env(&["auth", "bearer_env"], var)?),
                secret: true,
            });
        }
        match (&a.basic_user_env, &a.basic_password_env) {
            (Some(u), Some(p)) => {
                let user = env(&["auth", "basic_user_env"], u)?;
                let pass = env(&["auth", "basic_password_env"], p)?;
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
                crate::redact::add(&encoded);
                headers.push(Header {
                    name: "Authorization".into(),
                    value: format!("Basic {encoded}"),
                    secret: true,
                });
            }
            (None, None) => {}
            _ => {
                return Err(err(
                    &["auth"],
                    "basic auth needs both basic_user_env and basic_password_env".into(),
                ))
            }
        }
        match (&a.header, &a.header_env) {
            (Some(h), Some(var)) => headers.push(Header {
                name: h.clone(),
                value: env(&["auth", "header_env"], var)?,
                secret: true,
            }),
            (None, None) => {}
            _ => {
                return Err(err(
                    &["auth"],
                    "a key header needs both `header` and `header_env`".into(),
                ))
            }
        }
    }
    let retry = t.retry.clone().unwrap_or(RetrySpec {
        attempts: default_attempts(),
        backoff_ms: default_backoff(),
        max_backoff_ms: default_max_backoff(),
    });
    if retry.attempts == 0 {
        return Err(err(
            &["retry", "attempts"],
            "attempts must be at least 1".into(),
        ));
    }
    let concurrency = t.concurrency.unwrap_or(4);
    if concurrency == 0 || concurrency > 256 {
        return Err(err(
            &["concurrency"],
            "concurrency must be between 1 and 256".into(),
        ));
    }
    for (k, p) in [
        ("id_pointer", &t.id_pointer),
        ("error_pointer", &t.error_pointer),
    ] {
        if let Some(p) = p {
            if !p.is_empty() && !p.starts_with('/') {
                return Err(err(
                    &[k],
                    format!("{p:?} is not a JSON pointer (it starts with /, e.g. \"/id\")"),
                ));
            }
        }
    }
    let login = match &t.auth {
        Some(a) => resolve_login(a, &err, &env)?,
        None => None,
    };
    let tls = resolve_tls(t, base_dir, &err)?;
    let tls_material = super::tls::load(&tls).map_err(|e| err(&[e.key], e.message))?;
    if let Some(r) = t.max_requests_per_second {
        if !(r.is_finite() && r > 0.0) {
            return Err(err(
                &["max_requests_per_second"],
                format!("{r} is not a rate: give the requests per second the ERP allows, e.g. 20 (0.5 is one every 2 s)"),
            ));
        }
    }
    if let Some(b) = &t.body {
        if !b.contains("{payload}") {
            return Err(err(
                &["body"],
                "the envelope must contain {payload}, where each document's payload goes".into(),
            ));
        }
    }
    let batch = match &t.batch {
        Some(b) => Some(resolve_batch(b, t, &err)?),
        None => None,
    };
    let verify = match &t.verify {
        Some(v) => Some(resolve_verify(v, &err)?),
        None => None,
    };
    Ok(HttpConfig {
        login,
        tls,
        tls_material,
        max_requests_per_second: t.max_requests_per_second,
        body: t.body.clone(),
        batch,
        verify,
        health_url: t.health_url.clone(),
        headers,
        timeout: std::time::Duration::from_secs(t.timeout_seconds.unwrap_or(30).max(1)),
        concurrency,
        retry: RetryPolicy {
            attempts: retry.attempts,
            backoff_ms: retry.backoff_ms,
            max_backoff_ms: retry.max_backoff_ms.max(retry.backoff_ms),
        },
        id_pointer: t.id_pointer.clone().filter(|p| !p.is_empty()),
        error_pointer: t.error_pointer.clone().filter(|p| !p.is_empty()),
        update: request(&err, "update", "PUT", &url, t.update.as_ref())?,
        delete: request(&err, "delete", "DELETE", &url, t.delete.as_ref())?,
        url,
    })
}

/// `auth.oauth2` or `auth.session`: one way of authenticating, not beside a bearer
/// token or basic credentials (they would all claim `Authorization`).
fn resolve_login(
    a: &AuthSpec,
    err: &dyn Fn(&[&str], String) -> ConfigErrors,
    env: super::login::EnvReader<'_>,
) -> Result<Option<super::Login>, ConfigErrors> {
    let fixed = a.bearer_env.is_some()
        || a.basic_user_env.is_some()
        || a.basic_password_env.is_some()
        || a.header.is_some()
        || a.header_env.is_some();
    let r = super::login::Resolver { err, env };
    match (&a.oauth2, &a.session) {
        (Some(_), Some(_)) => Err(err(
            &["auth"],
            "auth takes oauth2 or session, not both".into(),
        )),
        (Some(_), None) | (None, Some(_)) if fixed => Err(err(
            &["auth"],
            "oauth2 and session are a way of authenticating of their own: leave out bearer_env, basic_*_env, header and header_env".into(),
        )),
        (Some(o), None) => Ok(Some(super::Login::OAuth2(o.resolve(&r)?))),
        (None, Some(s)) => Ok(Some(super::Login::Session(s.resolve(&r)?))),
        (None, None) => Ok(None),
    }
}

/// `ca_file`, `client_cert`, `client_key`: paths relative to the config's folder; a
/// client certificate needs its key and the other way round. The files are read right
/// after, by [`super::tls::load`], which names the one that is wrong.
fn resolve_tls(
    t: &TargetSpec,
    base_dir: &Path,
    err: &dyn Fn(&[&str], String) -> ConfigErrors,
) -> Result<TlsFiles, ConfigErrors> {
    let at = |p: &Option<String>| {
        p.as_ref()
            .filter(|p| !p.trim().is_empty())
            .map(|p| base_dir.join(p))
    };
    let files = TlsFiles {
        ca_file: at(&t.ca_file),
        client_cert: at(&t.client_cert),
        client_key: at(&t.client_key),
    };
    match (&files.client_cert, &files.client_key) {
        (Some(_), None) => Err(err(
            &["client_cert"],
            "client_cert needs client_key, the certificate's private key (PEM)".into(),
        )),
        (None, Some(_)) => Err(err(
            &["client_key"],
            "client_key needs client_cert, the certificate it belongs to (PEM)".into(),
        )),
        _ => Ok(files),
    }
}

fn json_pointer(
    err: &dyn Fn(&[&str], String) -> ConfigErrors,
    keys: &[&str],
    p: &str,
) -> Result<String, ConfigErrors> {
    if p.starts_with('/') {
        Ok(p.to_string())
    } else {
        Err(err(
            keys,
            format!("{p:?} is not a JSON pointer (it starts with /, e.g. \"/result\")"),
        ))
    }
}

/// `batch`: at most 1,000 documents a request, a body with `{payloads}`; JSON only
/// (`{payloads}` is a JSON array).
fn resolve_batch(
    b: &BatchSpec,
    t: &TargetSpec,
    err: &dyn Fn(&[&str], String) -> ConfigErrors,
) -> Result<BatchConfig, ConfigErrors> {
    let size = b.size.unwrap_or(50);
    if !(1..=1000).contains(&size) {
        return Err(err(
            &["batch", "size"],
            format!("{size} documents a request: the size must be between 1 and 1000"),
        ));
    }
    if t.format == super::PayloadFormat::Xml {
        return Err(err(
            &["batch"],
            "batches send a JSON array of payloads ({payloads}): they need format = \"json\""
                .into(),
        ));
    }
    if t.url.as_deref().is_some_and(|u| u.contains("{key}")) {
        return Err(err(
            &["batch"],
            "a batch goes to one URL for all its documents: `url` cannot have {key}".into(),
        ));
    }
    let body = b.body.clone().unwrap_or_else(|| "{payloads}".into());
    if !body.contains("{payloads}") {
        return Err(err(
            &["batch", "body"],
            "the batch's body must contain {payloads}, where the array of payloads goes".into(),
        ));
    }
    let ids_pointer = match b.ids_pointer.as_deref() {
        None | Some("") => None,
        Some(p) => Some(json_pointer(err, &["batch", "ids_pointer"], p)?),
    };
    Ok(BatchConfig {
        size,
        body,
        ids_pointer,
        all_or_nothing: b.all_or_nothing,
    })
}

fn resolve_verify(
    v: &VerifySpec,
    err: &dyn Fn(&[&str], String) -> ConfigErrors,
) -> Result<Verify, ConfigErrors> {
    let url = match &v.url {
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => u.clone(),
        Some(u) => {
            return Err(err(
                &["verify", "url"],
                format!("{u:?} must start with http:// or https://"),
            ))
        }
        None => {
            return Err(err(
                &["verify", "url"],
                "verify needs url, the GET that finds a document (e.g. \"https://erp.example/api/{document}?reference={key}\")".into(),
            ))
        }
    };
    let found_pointer = match v.found_pointer.as_deref() {
        Some(p) if !p.is_empty() => json_pointer(err, &["verify", "found_pointer"], p)?,
        _ => {
            return Err(err(
                &["verify", "found_pointer"],
                "verify needs found_pointer, where the answer holds the id of the document found (e.g. \"/0/id\")".into(),
            ))
        }
    };
    let method = v.method.clone().unwrap_or_else(|| "GET".into());
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(err(
            &["verify", "method"],
            format!("{method:?} is not an HTTP method (GET, POST)"),
        ));
    }
    Ok(Verify {
        url,
        found_pointer,
        method: method.to_ascii_uppercase(),
        body: v.body.clone(),
    })
}

/// An operation's request from its spec, or the default: `method` on `url` + `/{id}`.
fn request(
    err: &dyn Fn(&[&str], String) -> ConfigErrors,
    name: &str,
    method: &str,
    url: &str,
    spec: Option<&RequestSpec>,
) -> Result<Request, ConfigErrors> {
    let spec = spec.cloned().unwrap_or_default();
    let method = spec.method.unwrap_or_else(|| method.to_string());
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(err(
            &[name, "method"],
            format!("{method:?} is not an HTTP method (PUT, PATCH, POST, DELETE)"),
        ));
    }
    let url = spec
        .url
        .unwrap_or_else(|| format!("{}/{{id}}", url.trim_end_matches('/')));
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(err(
            &[name, "url"],
            format!("{url:?} must start with http:// or https://"),
        ));
    }
    Ok(Request {
        method: method.to_ascii_uppercase(),
        url,
        body: spec.body,
    })
}

/// Updates and deletes need the ERP's id for a document: a mapping that sends them,
/// with a request URL that has `{id}`, needs `id_pointer` to find the id in the ERP's
/// answers.
pub(super) fn check_operations(
    path: &Path,
    loc: &KeyLocator,
    h: &HttpConfig,
    mappings: &[Arc<Mapping>],
    errors: &mut Vec<ConfigError>,
) {
    if h.id_pointer.is_some() {
        return;
    }
    // a ref is the ERP's id of another mapping's document: without id_pointer there
    // is none to give
    let referring: Vec<String> = mappings
        .iter()
        .filter(|m| !m.references().is_empty())
        .map(|m| m.name.clone())
        .collect();
    if !referring.is_empty() {
        errors.push(ConfigError::at(
            path,
            loc.line(&["target", "id_pointer"]).or(loc.line(&["target"])),
            "target.id_pointer",
            format!(
                "mapping {} refers to documents of other mappings by the ERP's ids (ref): set id_pointer (e.g. \"/id\") so that erpdrop keeps the id from each answer",
                referring.join(", ")
            ),
        ));
    }
    let users = |pred: &dyn Fn(&Mapping) -> bool| {
        mappings
            .iter()
            .filter(|m| pred(m))
            .map(|m| m.name.clone())
            .collect::<Vec<_>>()
    };
    for (op, req, who) in [
        (
            "update",
            &h.update,
            users(&|m| m.on_change == crate::mapping::OnChange::Update),
        ),
        ("delete", &h.delete, users(&|m| m.deletes_missing.is_some())),
    ] {
        let needs_id =
            req.url.contains("{id}") || req.body.as_ref().is_some_and(|b| b.contains("{id}"));
        if !who.is_empty() && needs_id {
            errors.push(ConfigError::at(
                path,
                loc.line(&["target", "id_pointer"]).or(loc.line(&["target"])),
                "target.id_pointer",
                format!(
                    "mapping {} sends {op}s to {}, whose {{id}} is the ERP's id for the document: set id_pointer (e.g. \"/id\") so that erpdrop keeps the id from each answer",
                    who.join(", "),
                    req.url
                ),
            ));
        }
    }
}
