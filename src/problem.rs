//! One problem found in a file: the row of an error report.
//!
//! Every layer (reading, mapping, validation, submission) reports what it finds as a
//! [`Problem`], so that reports, summaries and exit codes agree without string matching.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where in the pipeline a problem was found (SPEC: "the stage").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Read,
    Map,
    Validate,
    Submit,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Read => "read",
            Stage::Map => "map",
            Stage::Validate => "validate",
            Stage::Submit => "submit",
        }
    }
}

/// The machine-readable kind of a problem; the strings are SPEC's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    Required,
    Type,
    MaxLength,
    Lookup,
    NotAllowed,
    Pattern,
    Min,
    Max,
    Sum,
    Duplicate,
    Conflict,
    Rejected,
    Unavailable,
    Encoding,
    Malformed,
    MissingColumn,
    Empty,
    Io,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Required => "required",
            Code::Type => "type",
            Code::MaxLength => "max_length",
            Code::Lookup => "lookup",
            Code::NotAllowed => "not_allowed",
            Code::Pattern => "pattern",
            Code::Min => "min",
            Code::Max => "max",
            Code::Sum => "sum",
            Code::Duplicate => "duplicate",
            Code::Conflict => "conflict",
            Code::Rejected => "rejected",
            Code::Unavailable => "unavailable",
            Code::Encoding => "encoding",
            Code::Malformed => "malformed",
            Code::MissingColumn => "missing_column",
            Code::Empty => "empty",
            Code::Io => "io",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `FILE.errors.json` / `FILE.errors.csv`.
///
/// Fields that do not apply are `None` and are left out of the JSON (empty in the CSV).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub stage: Stage,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub document: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub column: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<String>,
    pub code: Code,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status: Option<u16>,
}

impl Problem {
    /// A problem with the whole file (no document).
    pub fn file(code: Code, line: Option<u64>, message: impl Into<String>) -> Problem {
        Problem {
            stage: Stage::Read,
            document: None,
            line,
            column: None,
            field: None,
            value: None,
            code,
            message: message.into(),
            status: None,
        }
    }

    pub fn with_column(mut self, column: impl Into<String>) -> Problem {
        self.column = Some(column.into());
        self
    }

    pub fn with_value(mut self, value: impl Into<String>) -> Problem {
        self.value = Some(value.into());
        self
    }
}

/// Appends SPEC's location suffix, e.g. ` (line 137, column Terms)`, to a message.
pub fn with_location(message: &str, line: Option<u64>, column: Option<&str>) -> String {
    match (line, column) {
        (Some(l), Some(c)) if !c.is_empty() => format!("{message} (line {l}, column {c})"),
        (Some(l), _) => format!("{message} (line {l})"),
        (None, Some(c)) if !c.is_empty() => format!("{message} (column {c})"),
        _ => message.to_string(),
    }
}

/// Renders a value for a message: quoted, with control characters escaped and long
/// values shortened so that one bad cell cannot flood a report.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for (n, ch) in value.chars().enumerate() {
        if n == 80 {
            out.push('…');
            break;
        }
        match ch {
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `52428731` as `52,428,731`, for messages.
pub fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_suffix_names_line_and_column() {
        assert_eq!(
            with_location(
                "Terms code \"F48\" is not in ref/terms.csv",
                Some(137),
                Some("Terms")
            ),
            "Terms code \"F48\" is not in ref/terms.csv (line 137, column Terms)"
        );
        assert_eq!(with_location("x", Some(3), None), "x (line 3)");
        assert_eq!(with_location("x", None, None), "x");
    }

    #[test]
    fn digits_are_grouped_by_thousands() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1,000");
        assert_eq!(group_digits(52_428_731), "52,428,731");
        assert_eq!(group_digits(100_000), "100,000");
    }

    #[test]
    fn quote_escapes_and_shortens() {
        assert_eq!(quote("a\"b\n"), "\"a\\\"b\\n\"");
        let long = "x".repeat(200);
        assert_eq!(quote(&long).chars().count(), 83);
    }

    #[test]
    fn problem_json_leaves_out_empty_keys() {
        let p = Problem::file(Code::Empty, None, "The file is empty");
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"stage":"read","code":"empty","message":"The file is empty"}"#
        );
    }
}
