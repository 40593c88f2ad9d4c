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
    Ok(HttpConfig {
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
        if !who.is_empty() && req.url.contains("{id}") {
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
