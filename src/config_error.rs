//! Configuration errors: what is wrong, in which file, on which line, under which key.
//!
//! Below [`config`](crate::config) and [`mapping`](crate::mapping), which both read TOML
//! files written by users and report through these.

use std::fmt;
use std::path::{Path, PathBuf};

/// A problem in `erpdrop.toml`, a mapping file or a lookup file. Always exit code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file as the user would name it (relative to the working directory where possible).
    pub file: PathBuf,
    /// 1-based line in that file, where known.
    pub line: Option<usize>,
    /// The dotted key, e.g. `header.total.type`.
    pub key: Option<String>,
    pub message: String,
}

impl ConfigError {
    /// A problem of a whole file (no line, no key).
    pub fn new(file: &Path, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.to_path_buf(),
            line: None,
            key: None,
            message: message.into(),
        }
    }

    /// A problem on `line` (where known) under the dotted `key` (none when empty).
    pub fn at(file: &Path, line: Option<usize>, key: &str, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            line,
            key: if key.is_empty() {
                None
            } else {
                Some(key.to_string())
            },
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ", key {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Several configuration errors at once, so that `erpdrop check` can list them all.
#[derive(Debug, Clone, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, e) in self.0.iter().enumerate() {
            if n > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

/// Finds the line of a dotted key path in a TOML text, so that errors found after
/// deserialisation (a bad regular expression, an unknown lookup) can still name a line.
pub struct KeyLocator {
    text: String,
    doc: Option<toml_edit::Document<String>>,
}

impl KeyLocator {
    /// Parses `text` once; a text that does not parse locates nothing.
    pub fn new(text: &str) -> KeyLocator {
        KeyLocator {
            text: text.to_string(),
            doc: toml_edit::Document::parse(text.to_string()).ok(),
        }
    }

    /// The 1-based line of the deepest part of `path` that exists (`["header", "total",
    /// "pattern"]`); numeric parts index arrays of tables.
    pub fn line(&self, path: &[&str]) -> Option<usize> {
        enum Cur<'a> {
            Item(&'a toml_edit::Item),
            Table(&'a toml_edit::Table),
        }
        let doc = self.doc.as_ref()?;
        let mut best: Option<usize> = None;
        let mut cur = Cur::Table(doc.as_table());
        for part in path {
            let table: &dyn toml_edit::TableLike = match cur {
                Cur::Table(t) => t,
                Cur::Item(toml_edit::Item::ArrayOfTables(arr)) => {
                    let Some(t) = part.parse::<usize>().ok().and_then(|i| arr.get(i)) else {
                        break;
                    };
                    if let Some(span) = t.span() {
                        best = Some(span.start);
                    }
                    cur = Cur::Table(t);
                    continue;
                }
                Cur::Item(item) => match item.as_table_like() {
                    Some(t) => t,
                    None => break,
                },
            };
            match table.get_key_value(part) {
                Some((key, value)) => {
                    if let Some(span) = key.span().or_else(|| value.span()) {
                        best = Some(span.start);
                    }
                    cur = Cur::Item(value);
                }
                None => break,
            }
        }
        best.map(|b| line_of(&self.text, b))
    }
}

/// The 1-based line of the byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    memchr::memchr_iter(b'\n', &text.as_bytes()[..offset.min(text.len())]).count() + 1
}

/// Parses a TOML text into `T`, turning serde's error into a [`ConfigError`] with the
/// line and the dotted key path of the problem.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    file: &Path,
    text: &str,
) -> Result<T, ConfigError> {
    let syntax = |inner: toml::de::Error| {
        let line = inner.span().map(|s| line_of(text, s.start));
        ConfigError::at(file, line, "", tidy_serde_message(inner.message()))
    };
    let de = toml::Deserializer::parse(text).map_err(syntax)?;
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let line = inner.span().map(|s| line_of(text, s.start));
        let key = if path == "." { String::new() } else { path };
        ConfigError::at(file, line, &key, tidy_serde_message(inner.message()))
    })
}

/// serde writes backticks around names (`unknown field `x``); users read quotes better.
/// TOML syntax errors span several lines ("invalid array\nexpected `]`"): keep one.
fn tidy_serde_message(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
        .replace('`', "\"")
}
