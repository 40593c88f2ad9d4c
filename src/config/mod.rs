//! `erpdrop.toml` and the mapping files it names: load, check, resolve paths.
//!
//! Paths in the config are relative to the config file's folder. Every error names the
//! file, the line and the key (see [`ConfigError`]).

mod error;
pub mod mapping;

pub use error::{parse_toml, ConfigError, ConfigErrors, KeyLocator};

use crate::mapping::Mapping;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
        })
    }

    /// The first mapping whose `match` globs take this file name.
    pub fn mapping_for(&self, file_name: &str) -> Option<&Arc<Mapping>> {
        self.mappings.iter().find(|m| m.matches(file_name))
    }

    /// Looks a mapping up by its name.
    pub fn mapping_named(&self, name: &str) -> Option<&Arc<Mapping>> {
        self.mappings.iter().find(|m| m.name == name)
    }
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
