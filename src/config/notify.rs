//! `[[notify]]` and `[[expect]]` of `erpdrop.toml`: who is told what, and which files
//! are expected by when. Checked when the config loads (addresses, URLs, `by`, the
//! mapping named, the environment variables); a notification that cannot be sent later
//! is only a warning (`crate::notify`).

use crate::config_error::{ConfigError, KeyLocator};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a notification is about (`on = [...]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventName {
    /// A file went to `failed/`.
    FileFailed,
    /// The target went down, or came back.
    TargetDown,
    /// Automatic retries of a file ended without success.
    GaveUp,
    /// No file of an expected mapping by its time (`[[expect]]`).
    NoFile,
}

impl EventName {
    pub fn as_str(self) -> &'static str {
        match self {
            EventName::FileFailed => "file_failed",
            EventName::TargetDown => "target_down",
            EventName::GaveUp => "gave_up",
            EventName::NoFile => "no_file",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NotifySpec {
    on: Vec<EventName>,
    email: Option<EmailSpec>,
    webhook: Option<WebhookSpec>,
    command: Option<Vec<String>>,
    timeout_seconds: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailSpec {
    to: OneOrMany,
    from: String,
    smtp: String,
    #[serde(default)]
    starttls: Option<bool>,
    #[serde(default)]
    tls: bool,
    user_env: Option<String>,
    password_env: Option<String>,
    ca_file: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookSpec {
    url: Option<String>,
    url_env: Option<String>,
    #[serde(default)]
    format: WebhookFormat,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExpectSpec {
    mapping: String,
    by: String,
}

/// How a webhook's message is shaped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// A Slack incoming webhook: `{"text": "..."}`.
    Slack,
    /// A Microsoft Teams workflow: a message with one Adaptive Card.
    Teams,
    /// erpdrop's own object (README: "What you receive").
    #[default]
    Json,
}

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain, then STARTTLS (required: no mail goes out in the clear).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption (a relay on the same machine).
    None,
}

/// An email channel, resolved (credentials read from the environment).
#[derive(Clone)]
pub struct Email {
    pub to: Vec<String>,
    pub from: String,
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub credentials: Option<(String, String)>,
    /// Trusted besides the system's roots (PEM), e.g. the company's own CA.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("to", &self.to)
            .field("from", &self.from)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "<secret>"),
            )
            .finish()
    }
}

/// A webhook channel.
#[derive(Clone)]
pub struct Webhook {
    pub url: String,
    pub format: WebhookFormat,
    /// How the log names it: scheme and host only (a webhook's path is often its key).
    pub shown: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Webhook({}, {:?})", self.shown, self.format)
    }
}

/// Where a notification goes.
#[derive(Debug, Clone)]
pub enum Channel {
    Email(Email),
    Webhook(Webhook),
    /// A program and its arguments (no shell): `{report}`, `{file}`, `{mapping}`,
    /// `{event}` are replaced.
    Command(Vec<String>),
}

impl Channel {
    /// How the log and `check` name it.
    pub fn describe(&self) -> String {
        match self {
            Channel::Email(e) => format!("email to {} via {}:{}", e.to.join(", "), e.host, e.port),
            Channel::Webhook(w) => format!("webhook {} ({:?})", w.shown, w.format).to_lowercase(),
            Channel::Command(argv) => format!("command {}", argv[0]),
        }
    }
}

/// One `[[notify]]`.
#[derive(Debug, Clone)]
pub struct Notify {
    /// `notify[N]`, as errors and warnings name it.
    pub name: String,
    pub on: Vec<EventName>,
    pub channel: Channel,
    /// How long sending may take (connecting, the answer, a command's run).
    pub timeout: Duration,
    /// Its line in `erpdrop.toml`.
    pub line: Option<usize>,
}

/// One `[[expect]]`: a file of `mapping` every day by `by` (local time).
#[derive(Debug, Clone)]
pub struct Expect {
    pub mapping: String,
    pub by: chrono::NaiveTime,
    pub line: Option<usize>,
}

/// The default of `timeout_seconds`: a notification never holds a run for long.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 10;

pub(super) fn resolve_notify(
    path: &Path,
    loc: &KeyLocator,
    base_dir: &Path,
    specs: &[NotifySpec],
    errors: &mut Vec<ConfigError>,
) -> Vec<Notify> {
    let mut out = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let n = i.to_string();
        let name = format!("notify[{i}]");
        let err = |keys: &[&str], msg: String| {
            let mut full = vec!["notify", n.as_str()];
            full.extend_from_slice(keys);
            let mut dotted = name.clone();
            for k in keys {
                dotted.push('.');
                dotted.push_str(k);
            }
            ConfigError::at(path, loc.line(&full), &dotted, msg)
        };
        if spec.on.is_empty() {
            errors.push(err(
                &["on"],
                "`on` lists no event: add one or more of \"file_failed\", \"target_down\", \"gave_up\", \"no_file\"".into(),
            ));
            continue;
        }
        let channels = [
            spec.email.is_some(),
            spec.webhook.is_some(),
            spec.command.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if channels != 1 {
            errors.push(err(
                &[],
                format!(
                    "a [[notify]] takes exactly one of `email`, `webhook` or `command` ({channels} given): write one [[notify]] per channel"
                ),
            ));
            continue;
        }
        let channel = if let Some(e) = &spec.email {
            match email(e, base_dir, &|k: &str, m: String| err(&["email", k], m)) {
                Ok(c) => Channel::Email(c),
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            }
        } else if let Some(w) = &spec.webhook {
            match webhook(w, &|k: &str, m: String| err(&["webhook", k], m)) {
                Ok(c) => Channel::Webhook(c),
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            }
        } else {
            let argv = spec.command.clone().unwrap_or_default();
            if argv.first().is_none_or(|p| p.trim().is_empty()) {
                errors.push(err(
                    &["command"],
                    "command needs a program, e.g. [\"/usr/local/bin/open-ticket\", \"{report}\"]"
                        .into(),
                ));
                continue;
            }
            Channel::Command(argv)
        };
        let timeout = spec.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS);
        if timeout == 0 || timeout > 600 {
            errors.push(err(
                &["timeout_seconds"],
                format!("timeout_seconds = {timeout}: it must be between 1 and 600"),
            ));
            continue;
        }
        let mut on = spec.on.clone();
        on.dedup();
        out.push(Notify {
            line: loc.line(&["notify", n.as_str()]),
            name,
            on,
            channel,
            timeout: Duration::from_secs(timeout),
        });
    }
    out
}

/// Registers the forms in which SMTP sends a login, so that a mail server that echoes
/// them in an error is masked too: AUTH PLAIN's base64 of `\0user\0password`, AUTH
/// LOGIN's base64 of each.
fn mask_smtp_auth(user: &str, password: &str) {
    use base64::Engine as _;
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    crate::redact::add(&b64(format!("\0{user}\0{password}").as_bytes()));
    crate::redact::add(&b64(user.as_bytes()));
    crate::redact::add(&b64(password.as_bytes()));
}

/// A secret from the environment, registered for masking.
fn secret_env(var: &str) -> Result<String, String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => {
            crate::redact::add(&v);
            Ok(v)
        }
        _ => Err(format!(
            "the environment variable {var} is not set (secrets come from the environment, never the file)"
        )),
    }
}

fn email(
    e: &EmailSpec,
    base_dir: &Path,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Email, ConfigError> {
    let to = match &e.to {
        OneOrMany::One(a) => vec![a.clone()],
        OneOrMany::Many(v) => v.clone(),
    };
    if to.is_empty() {
        return Err(err("to", "`to` lists no address".into()));
    }
    for a in &to {
        if a.parse::<lettre::message::Mailbox>().is_err() {
            return Err(err(
                "to",
                format!("{a:?} is not an email address (e.g. \"ap@example.com\" or \"AP <ap@example.com>\")"),
            ));
        }
    }
    if e.from.parse::<lettre::message::Mailbox>().is_err() {
        return Err(err(
            "from",
            format!(
                "{:?} is not an email address (e.g. \"erpdrop@example.com\")",
                e.from
            ),
        ));
    }
    let security = match (e.starttls, e.tls) {
        (Some(true), true) => {
            return Err(err(
                "tls",
                "starttls = true and tls = true cannot both be set: tls is TLS from the first byte (port 465), starttls upgrades a plain connection (port 587)".into(),
            ))
        }
        (_, true) => SmtpSecurity::Tls,
        (Some(false), false) => SmtpSecurity::None,
        (_, false) => SmtpSecurity::StartTls,
    };
    let (host, port) = match e.smtp.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => match p.parse::<u16>() {
            Ok(p) if p > 0 => (h.to_string(), p),
            _ => {
                return Err(err(
                    "smtp",
                    format!(
                        "{:?}: the port {p:?} is not a number between 1 and 65535",
                        e.smtp
                    ),
                ))
            }
        },
        _ if !e.smtp.is_empty() && !e.smtp.contains(':') => (
            e.smtp.clone(),
            match security {
                SmtpSecurity::StartTls => 587,
                SmtpSecurity::Tls => 465,
                SmtpSecurity::None => 25,
            },
        ),
        _ => {
            return Err(err(
                "smtp",
                format!(
                    "{:?} is not a mail server: write \"host:port\", e.g. \"smtp.example.com:587\"",
                    e.smtp
                ),
            ))
        }
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let credentials = match (&e.user_env, &e.password_env) {
        (Some(u), Some(p)) => {
            let user = secret_env(u).map_err(|m| err("user_env", m))?;
            let password = secret_env(p).map_err(|m| err("password_env", m))?;
            mask_smtp_auth(&user, &password);
            Some((user, password))
        }
        (None, None) => None,
        _ => {
            return Err(err(
                "user_env",
                "logging in to the mail server needs both user_env and password_env".into(),
            ))
        }
    };
    let ca_file = match &e.ca_file {
        Some(f) => {
            let p = base_dir.join(f);
            if !p.is_file() {
                return Err(err("ca_file", format!("{f:?}: no such file")));
            }
            Some(p)
        }
        None => None,
    };
    Ok(Email {
        to,
        from: e.from.clone(),
        host,
        port,
        security,
        credentials,
        ca_file,
    })
}

fn webhook(
    w: &WebhookSpec,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Webhook, ConfigError> {
    let (url, key) = match (&w.url, &w.url_env) {
        (Some(u), None) => (u.clone(), "url"),
        (None, Some(var)) => (secret_env(var).map_err(|m| err("url_env", m))?, "url_env"),
        _ => {
            return Err(err(
                "url",
                "a webhook takes exactly one of `url` or `url_env` (the URL from the environment, when it holds a key)".into(),
            ))
        }
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else {
        let shown = if key == "url" {
            format!("{url:?}")
        } else {
            "its value".into()
        };
        return Err(err(
            key,
            format!("{shown} must start with http:// or https://"),
        ));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() {
        return Err(err(key, "the webhook's URL names no host".into()));
    }
    let scheme = if url.starts_with("https://") {
        "https"
    } else {
        "http"
    };
    // the userinfo of a URL (user:password@) is a secret too
    let host = host.rsplit('@').next().unwrap_or(host);
    Ok(Webhook {
        shown: format!("{scheme}://{host}"),
        url,
        format: w.format,
    })
}

pub(super) fn resolve_expect(
    path: &Path,
    loc: &KeyLocator,
    specs: &[ExpectSpec],
    mappings: &[&str],
    errors: &mut Vec<ConfigError>,
) -> Vec<Expect> {
    let mut out = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let n = i.to_string();
        let err = |key: &str, msg: String| {
            ConfigError::at(
                path,
                loc.line(&["expect", n.as_str(), key]),
                &format!("expect[{i}].{key}"),
                msg,
            )
        };
        if !mappings.contains(&spec.mapping.as_str()) {
            errors.push(err(
                "mapping",
                format!(
                    "there is no mapping named {:?} (mappings: {})",
                    spec.mapping,
                    mappings.join(", ")
                ),
            ));
            continue;
        }
        let by = match parse_hhmm(&spec.by) {
            Some(t) => t,
            None => {
                errors.push(err(
                    "by",
                    format!(
                        "{:?} is not a time of day: write HH:MM, e.g. \"06:00\"",
                        spec.by
                    ),
                ));
                continue;
            }
        };
        out.push(Expect {
            mapping: spec.mapping.clone(),
            by,
            line: loc.line(&["expect", n.as_str()]),
        });
    }
    out
}

/// `HH:MM` (24-hour), exactly.
fn parse_hhmm(s: &str) -> Option<chrono::NaiveTime> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    chrono::NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_is_hh_mm_exactly() {
        assert_eq!(
            parse_hhmm("06:00"),
            chrono::NaiveTime::from_hms_opt(6, 0, 0)
        );
        assert_eq!(
            parse_hhmm("23:59"),
            chrono::NaiveTime::from_hms_opt(23, 59, 0)
        );
        for bad in ["6:00", "24:00", "06:60", "06:00:00", "0600", "ab:cd", ""] {
            assert_eq!(parse_hhmm(bad), None, "{bad}");
        }
    }
}

#[cfg(test)]
mod smtp_auth_tests {
    #[test]
    fn a_mail_server_echoing_the_login_in_base64_is_masked() {
        super::mask_smtp_auth("smtpuserX", "SmtpPw987");
        // AUTH PLAIN and AUTH LOGIN as a server would echo them in a 535
        let echoed = "535 bad: AUTH PLAIN AHNtdHB1c2VyWABTbXRwUHc5ODc= / user c210cHVzZXJY password U210cFB3OTg3";
        let shown = crate::redact::redact(echoed);
        assert!(!shown.contains("AHNtdHB1c2VyWABTbXRwUHc5ODc="), "{shown}");
        assert!(!shown.contains("c210cHVzZXJY"), "{shown}");
        assert!(!shown.contains("U210cFB3OTg3"), "{shown}");
        assert!(shown.starts_with("535 bad: AUTH PLAIN ***"), "{shown}");
    }
}
