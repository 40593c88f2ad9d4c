//! `erpdrop.toml` and the mapping files it names: load, check, resolve paths.
//!
//! Paths in the config are relative to the config file's folder. Every error names the
//! file, the line and the key (see [`ConfigError`]). The mapping files are read and
//! compiled by [`Mapping::load`]; this module finds them.

mod notify;

pub use notify::{
    Channel, Email, EventName, Expect, Notify, SmtpSecurity, Webhook, WebhookFormat,
    DEFAULT_TIMEOUT_SECONDS,
};

use crate::config_error::{parse_toml, ConfigError, ConfigErrors, KeyLocator};
use crate::mapping::Mapping;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod http;
mod login;
mod tls;

use http::{
    check_operations, resolve_http, AuthSpec, BatchSpec, HeaderSpec, RequestSpec, RetrySpec,
    VerifySpec,
};
pub use http::{BatchConfig, Header, HttpConfig, Request, RetryPolicy, TlsFiles, Verify};
pub use login::{ClientAuth, Login, OAuth2, Session};
pub use tls::{provider as tls_provider, TlsMaterial};

/// The raw `erpdrop.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigSpec {
    #[serde(default = "default_mappings")]
    mappings: Vec<String>,
    #[serde(default)]
    folders: FoldersSpec,
    #[serde(default)]
    scan: ScanSpec,
    #[serde(default)]
    target: TargetSpec,
    #[serde(default)]
    notify: Vec<notify::NotifySpec>,
    #[serde(default)]
    expect: Vec<notify::ExpectSpec>,
    /// Failed files sent again on a schedule (`[retry]`).
    retry: Option<AutoRetrySpec>,
}

/// `[retry]`: failed files put through again automatically.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AutoRetrySpec {
    #[serde(default = "default_retry_attempts")]
    attempts: u32,
    #[serde(default = "default_every")]
    every: String,
    #[serde(default = "default_codes")]
    codes: Vec<String>,
}

/// `[retry] attempts`: five, the first counted.
fn default_retry_attempts() -> u32 {
    5
}

fn default_every() -> String {
    "15m".to_string()
}

fn default_codes() -> Vec<String> {
    vec!["rejected".to_string()]
}

/// `[retry]`: a failed file whose failed documents all have one of `codes` goes back to
/// the inbox once `every` has passed since its last attempt, until its documents have
/// had `attempts` attempts (the first counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoRetry {
    pub attempts: u32,
    pub every: std::time::Duration,
    pub codes: Vec<crate::problem::Code>,
}

/// Compiles `[retry]`; errors name the key and its line.
fn auto_retry(
    path: &Path,
    loc: &KeyLocator,
    spec: &AutoRetrySpec,
) -> Result<AutoRetry, ConfigErrors> {
    let err = |key: &str, msg: String| -> ConfigErrors {
        ConfigError::at(
            path,
            loc.line(&["retry", key]),
            &format!("retry.{key}"),
            msg,
        )
        .into()
    };
    if spec.attempts == 0 {
        return Err(err(
            "attempts",
            "attempts must be at least 1 (the first attempt counts)".into(),
        ));
    }
    let every = humantime::parse_duration(spec.every.trim()).map_err(|e| {
        err(
            "every",
            format!(
                "every = {:?} is not a duration: {e} (e.g. \"15m\", \"1h\")",
                spec.every
            ),
        )
    })?;
    let mut codes = Vec::new();
    for c in &spec.codes {
        let code: crate::problem::Code =
            serde_json::from_value(serde_json::Value::String(c.clone())).map_err(|_| {
                err(
                    "codes",
                    format!(
                    "{c:?} is not an error code (e.g. \"rejected\", \"lookup\", \"not_allowed\")"
                ),
                )
            })?;
        codes.push(code);
    }
    if codes.is_empty() {
        return Err(err(
            "codes",
            "codes is empty: no failed file would ever be retried (e.g. codes = [\"rejected\"])"
                .into(),
        ));
    }
    Ok(AutoRetry {
        attempts: spec.attempts,
        every,
        codes,
    })
}

fn default_mappings() -> Vec<String> {
    vec!["mappings/*.toml".to_string()]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FoldersSpec {
    #[serde(default = "default_root")]
    root: String,
}

impl Default for FoldersSpec {
    fn default() -> Self {
        FoldersSpec {
            root: default_root(),
        }
    }
}

fn default_root() -> String {
    "drop".to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanSpec {
    #[serde(default = "default_settle")]
    settle_seconds: u64,
    #[serde(default)]
    ready_marker: String,
}

impl Default for ScanSpec {
    fn default() -> Self {
        ScanSpec {
            settle_seconds: default_settle(),
            ready_marker: String::new(),
        }
    }
}

fn default_settle() -> u64 {
    5
}

/// Where documents go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    #[default]
    Outbox,
    Http,
}

/// How a payload is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadFormat {
    #[default]
    Json,
    Xml,
}

impl PayloadFormat {
    /// The file extension of a payload in this format (`json`, `xml`).
    pub fn extension(self) -> &'static str {
        match self {
            PayloadFormat::Json => "json",
            PayloadFormat::Xml => "xml",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetSpec {
    #[serde(default)]
    kind: TargetKind,
    dir: Option<String>,
    #[serde(default)]
    format: PayloadFormat,
    url: Option<String>,
    health_url: Option<String>,
    auth: Option<AuthSpec>,
    #[serde(default)]
    headers: indexmap::IndexMap<String, HeaderSpec>,
    timeout_seconds: Option<u64>,
    concurrency: Option<usize>,
    retry: Option<RetrySpec>,
    id_pointer: Option<String>,
    error_pointer: Option<String>,
    update: Option<RequestSpec>,
    delete: Option<RequestSpec>,
    ca_file: Option<String>,
    client_cert: Option<String>,
    client_key: Option<String>,
    max_requests_per_second: Option<f64>,
    body: Option<String>,
    batch: Option<BatchSpec>,
    verify: Option<VerifySpec>,
}

/// The drop folders, all under one root.
#[derive(Debug, Clone)]
pub struct Folders {
    pub root: PathBuf,
    pub inbox: PathBuf,
    pub processing: PathBuf,
    pub done: PathBuf,
    pub failed: PathBuf,
    pub state: PathBuf,
}

impl Folders {
    fn new(root: PathBuf) -> Folders {
        Folders {
            inbox: root.join("inbox"),
            processing: root.join("processing"),
            done: root.join("done"),
            failed: root.join("failed"),
            state: root.join(".erpdrop"),
            root,
        }
    }
}

/// The target as configured.
#[derive(Debug, Clone)]
pub struct TargetConfig {
    pub kind: TargetKind,
    /// Outbox folder (absolute).
    pub dir: PathBuf,
    pub format: PayloadFormat,
    /// The HTTP settings when `kind = "http"`.
    pub http: Option<HttpConfig>,
}

/// The loaded, checked configuration with every mapping compiled.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub base_dir: PathBuf,
    pub folders: Folders,
    pub settle_seconds: u64,
    pub ready_marker: Option<String>,
    pub target: TargetConfig,
    pub mappings: Vec<Arc<Mapping>>,
    /// `[[notify]]`: who is told what.
    pub notify: Vec<Notify>,
    /// `[[expect]]`: files expected every day by a time.
    pub expect: Vec<Expect>,
    /// `[retry]`, when set.
    pub retry: Option<AutoRetry>,
}

impl Config {
    /// Loads the config and compiles every mapping (loading its lookups). All problems
    /// found are returned together.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(
                path,
                if e.kind() == std::io::ErrorKind::NotFound {
                    "no such config file (use -c PATH, set ERPDROP_CONFIG, or run `erpdrop init`)"
                        .to_string()
                } else {
                    format!("cannot read the config file: {e}")
                },
            )
        })?;
        let spec: ConfigSpec = parse_toml(path, &text)?;
        let locator = KeyLocator::new(&text);
        let base_dir = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .to_path_buf();

        let root = base_dir.join(&spec.folders.root);
        let folders = Folders::new(root);
        let ready_marker = if spec.scan.ready_marker.trim().is_empty() {
            None
        } else {
            let marker = spec.scan.ready_marker.clone();
            if !marker.contains("{name}") && !marker.contains("{stem}") {
                return Err(ConfigError::at(
                    path,
                    locator.line(&["scan", "ready_marker"]),
                    "scan.ready_marker",
                    format!(
                        "ready_marker {marker:?} must contain {{name}} or {{stem}}, e.g. \"{{name}}.ok\""
                    ),
                )
                .into());
            }
            Some(marker)
        };
        let target = TargetConfig {
            kind: spec.target.kind,
            dir: spec
                .target
                .dir
                .as_ref()
                .map(|d| base_dir.join(d))
                .unwrap_or_else(|| folders.root.join("outbox")),
            format: spec.target.format,
            http: match spec.target.kind {
                TargetKind::Http => Some(resolve_http(path, &base_dir, &locator, &spec.target)?),
                TargetKind::Outbox => None,
            },
        };

        let retry = match &spec.retry {
            Some(r) => Some(auto_retry(path, &locator, r)?),
            None => None,
        };
        let mut errors = Vec::new();
        let mut files = Vec::new();
        for (n, pattern) in spec.mappings.iter().enumerate() {
            match expand_glob(&base_dir, pattern) {
                Ok(found) if found.is_empty() => errors.push(ConfigError::at(
                    path,
                    locator.line(&["mappings"]),
                    &format!("mappings[{n}]"),
                    format!("no mapping file matches {pattern:?}"),
                )),
                Ok(found) => files.extend(found),
                Err(msg) => errors.push(ConfigError::at(
                    path,
                    locator.line(&["mappings"]),
                    &format!("mappings[{n}]"),
                    msg,
                )),
            }
        }
        files.dedup();
        let mut mappings: Vec<Arc<Mapping>> = Vec::new();
        for file in &files {
            match Mapping::load(file, &base_dir) {
                Ok(m) => {
                    if let Some(other) = mappings.iter().find(|o| o.name == m.name) {
                        errors.push(ConfigError::new(
                            file,
                            format!(
                                "mapping name {:?} is already used by {}",
                                m.name,
                                other.file.display()
                            ),
                        ));
                    } else {
                        mappings.push(Arc::new(m));
                    }
                }
                Err(e) => errors.extend(e.0),
            }
        }
        check_references(&mappings, &mut errors);
        let notify = notify::resolve_notify(path, &locator, &base_dir, &spec.notify, &mut errors);
        let names: Vec<&str> = mappings.iter().map(|m| m.name.as_str()).collect();
        let expect = notify::resolve_expect(path, &locator, &spec.expect, &names, &mut errors);
        if let Some(h) = &target.http {
            check_operations(path, &locator, h, &mappings, &mut errors);
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok(Config {
            path: path.to_path_buf(),
            base_dir,
            folders,
            settle_seconds: spec.scan.settle_seconds,
            ready_marker,
            target,
            mappings,
            notify,
            expect,
            retry,
        })
    }

    /// The first mapping whose `match` globs take this file name.
    pub fn mapping_for(&self, file_name: &str) -> Option<&Arc<Mapping>> {
        self.mappings.iter().find(|m| m.matches(file_name))
    }

    /// Where a mapping's files come in a pass: after the files of every mapping it
    /// refers to (`ref`), so that what they create is there when its documents need it.
    /// 0 for a mapping that refers to none.
    pub fn rank(&self, name: &str) -> usize {
        // cycles are refused when the config loads; the depth bound is a guard
        fn depth(cfg: &Config, name: &str, bound: usize) -> usize {
            let Some(m) = cfg.mapping_named(name) else {
                return 0;
            };
            if bound == 0 {
                return 0;
            }
            m.references()
                .iter()
                .map(|r| 1 + depth(cfg, r, bound - 1))
                .max()
                .unwrap_or(0)
        }
        depth(self, name, self.mappings.len())
    }

    /// Whether a mapping's fields refer to this one (`ref`).
    pub fn is_referenced(&self, name: &str) -> bool {
        self.mappings.iter().any(|m| m.references().contains(&name))
    }

    /// Looks a mapping up by its name.
    pub fn mapping_named(&self, name: &str) -> Option<&Arc<Mapping>> {
        self.mappings.iter().find(|m| m.name == name)
    }
}

/// Every `ref` names a mapping, and no mapping refers back to itself through others (a
/// cycle: no pass could handle one file before the other).
fn check_references(mappings: &[Arc<Mapping>], errors: &mut Vec<ConfigError>) {
    let named = |n: &str| mappings.iter().find(|m| m.name == n);
    for m in mappings {
        for r in m.references() {
            if named(r).is_none() {
                let known: Vec<&str> = mappings.iter().map(|m| m.name.as_str()).collect();
                errors.push(ConfigError::new(
                    &m.file,
                    format!(
                        "a field refers to mapping {r:?} (ref), but there is no mapping of that name (mappings: {})",
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    // depth-first, from each mapping: a path that comes back to where it started
    for start in mappings {
        let mut path = vec![start.name.as_str()];
        if let Some(cycle) = find_cycle(start.name.as_str(), &named, &mut path) {
            // reported once, by the mapping that comes first in the cycle's order
            if cycle.iter().min() == Some(&start.name.as_str()) {
                errors.push(ConfigError::new(
                    &start.file,
                    format!(
                        "mappings refer to each other in a circle ({}): each needs the others' documents imported first; one of the refs must go",
                        cycle.join(" -> ")
                    ),
                ));
            }
        }
    }
}

/// A cycle of references back to `path[0]` from `at`, if there is one.
fn find_cycle<'a>(
    at: &'a str,
    named: &dyn Fn(&str) -> Option<&'a Arc<Mapping>>,
    path: &mut Vec<&'a str>,
) -> Option<Vec<&'a str>> {
    let m = named(at)?;
    for r in m.references() {
        if r == path[0] {
            let mut cycle = path.clone();
            cycle.push(r);
            return Some(cycle);
        }
        if path.contains(&r) {
            continue; // a cycle that does not pass through the start is another's
        }
        path.push(r);
        if let Some(c) = find_cycle(r, named, path) {
            return Some(c);
        }
        path.pop();
    }
    None
}

/// Expands a config-relative glob such as `mappings/*.toml` into sorted file paths.
fn expand_glob(base: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    let is_glob = pattern.contains(['*', '?', '[', '{']);
    if !is_glob {
        let p = base.join(pattern);
        return if p.is_file() {
            Ok(vec![p])
        } else {
            Err(format!("mapping file {pattern:?} does not exist"))
        };
    }
    // The folder part before the first component with a wildcard is walked.
    let mut prefix = PathBuf::new();
    let mut rest = Vec::new();
    let mut globbing = false;
    for comp in pattern.split(['/', '\\']) {
        if globbing || comp.contains(['*', '?', '[', '{']) {
            globbing = true;
            rest.push(comp);
        } else {
            prefix.push(comp);
        }
    }
    let glob = globset::GlobBuilder::new(&rest.join("/"))
        .literal_separator(true)
        .build()
        .map_err(|e| format!("bad pattern {pattern:?}: {e}"))?
        .compile_matcher();
    let dir = base.join(&prefix);
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(&dir)
        .min_depth(1)
        .max_depth(rest.len().max(1) + 8)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
    {
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(&dir).unwrap_or(entry.path());
        let rel = rel.to_string_lossy().replace('\\', "/");
        if glob.is_match(&rel) {
            out.push(entry.path().to_path_buf());
        }
    }
    Ok(out)
}

/// Resolves the config path: `-c`, then `ERPDROP_CONFIG` (done by clap), then
/// `./erpdrop.toml`.
pub fn default_config_path() -> PathBuf {
    PathBuf::from("erpdrop.toml")
}
