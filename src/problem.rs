//! One problem found in a file: the row of an error report.
//!
//! Every layer (reading, mapping, validation, submission) reports what it finds as a
//! [`Problem`], so that reports, summaries and exit codes agree without string matching.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// The longest value (a cell, a key, a column or field name) that a report, the ledger or
/// a log keeps, in characters, the note of what was cut included.
pub const MAX_VALUE_CHARS: usize = 1_000;
/// The longest message that a report, the ledger or a log keeps, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4_000;

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
    /// An earlier attempt has no known outcome and the document arrived with other
    /// content: not sent until that is settled.
    InDoubt,
    Rejected,
    Unavailable,
    Encoding,
    Malformed,
    MissingColumn,
    Empty,
    Io,
    /// A snapshot asks for more deletes than `max_deletes` allows.
    TooManyDeletes,
    /// The file's trailer states other totals than the file holds, or it has none.
    Incomplete,
    /// A workbook has no sheet of the name the mapping gives.
    MissingSheet,
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
            Code::InDoubt => "in_doubt",
            Code::Rejected => "rejected",
            Code::Unavailable => "unavailable",
            Code::Encoding => "encoding",
            Code::Malformed => "malformed",
            Code::MissingColumn => "missing_column",
            Code::Empty => "empty",
            Code::Io => "io",
            Code::TooManyDeletes => "too_many_deletes",
            Code::Incomplete => "incomplete",
            Code::MissingSheet => "missing_sheet",
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
/// Built with [`Problem::new`] (or [`Problem::read`] for the whole file) and the
/// `with_*` setters. The sentence for a finance user is kept without its location:
/// [`message`](Problem::message) adds `(line 137, column Terms)` from the problem's own
/// line and column when it is shown, so the two can never disagree. Fields that do not
/// apply are `None`: left out of the JSON, empty in the CSV.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub stage: Stage,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub document: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub line: Option<u64>,
    /// Where on the line, in characters, for a problem of the file's syntax (XML).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub character: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub column: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<String>,
    pub code: Code,
    /// What went wrong, without where (see [`message`](Problem::message)).
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status: Option<u16>,
    /// The text says where in words of its own ("The header row has no column…"):
    /// [`message`](Problem::message) adds no location.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub placed_in_text: bool,
}

impl Problem {
    /// A problem found at `stage`.
    pub fn new(stage: Stage, code: Code, text: impl Into<String>) -> Problem {
        Problem {
            stage,
            document: None,
            line: None,
            character: None,
            column: None,
            field: None,
            value: None,
            code,
            text: text.into(),
            status: None,
            placed_in_text: false,
        }
    }

    /// A problem with the whole file (stage `read`, no document).
    pub fn read(code: Code, text: impl Into<String>) -> Problem {
        Problem::new(Stage::Read, code, text)
    }

    /// A problem with the whole file, on a line where known.
    pub fn file(code: Code, line: Option<u64>, text: impl Into<String>) -> Problem {
        Problem::read(code, text).with_line(line)
    }

    pub fn with_document(mut self, key: impl Into<String>) -> Problem {
        self.document = Some(key.into());
        self
    }

    /// The document, where there is one (a row without its key has none).
    pub fn with_document_opt(mut self, key: Option<String>) -> Problem {
        self.document = key;
        self
    }

    pub fn with_line(mut self, line: impl Into<Option<u64>>) -> Problem {
        self.line = line.into();
        self
    }

    /// The character on the line where the file's syntax breaks.
    pub fn with_character(mut self, character: Option<u64>) -> Problem {
        self.character = character;
        self
    }

    pub fn with_column(mut self, column: impl Into<String>) -> Problem {
        self.column = Some(column.into());
        self
    }

    pub fn with_column_opt(mut self, column: Option<String>) -> Problem {
        self.column = column;
        self
    }

    pub fn with_field_opt(mut self, field: Option<String>) -> Problem {
        self.field = field;
        self
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Problem {
        self.field = Some(field.into());
        self
    }

    pub fn with_value(mut self, value: impl Into<String>) -> Problem {
        self.value = Some(value.into());
        self
    }

    pub fn with_value_opt(mut self, value: Option<String>) -> Problem {
        self.value = value;
        self
    }

    pub fn with_status(mut self, status: Option<u16>) -> Problem {
        self.status = status;
        self
    }

    /// Marks a text that says where in words of its own.
    pub fn placed_in_text(mut self) -> Problem {
        self.placed_in_text = true;
        self
    }

    /// The sentence as reports show it: the text and where, e.g. `Terms code "F48" is
    /// not in ref/terms.csv (line 137, column Terms)`.
    pub fn message(&self) -> String {
        if self.placed_in_text {
            return self.text.clone();
        }
        match (self.line, self.character) {
            (Some(l), Some(c)) => format!("{} (line {l}, character {c})", self.text),
            _ => with_location(&self.text, self.line, self.column.as_deref()),
        }
    }

    /// The problem as reports and the ledger keep it: its values cut to
    /// [`MAX_VALUE_CHARS`] and its message, location included, to
    /// [`MAX_MESSAGE_CHARS`], each saying how much was cut. Every problem that enters a
    /// report goes through here.
    pub fn bounded(mut self) -> Problem {
        for v in [
            &mut self.document,
            &mut self.column,
            &mut self.field,
            &mut self.value,
        ]
        .into_iter()
        .flatten()
        {
            bound_in_place(v, MAX_VALUE_CHARS);
        }
        let location = self.message().chars().count() - self.text.chars().count();
        bound_in_place(&mut self.text, MAX_MESSAGE_CHARS.saturating_sub(location));
        self
    }
}

/// `text` cut to at most `max` characters, the note of how many more there were
/// included: `INV-0001 AAAA… (52,428,731 more characters)`.
pub fn bound(text: &str, max: usize) -> Cow<'_, str> {
    match cut_at(text, max) {
        None => Cow::Borrowed(text),
        Some((at, note)) => Cow::Owned(format!("{}{note}", &text[..at])),
    }
}

/// [`bound`], in place.
pub fn bound_in_place(text: &mut String, max: usize) {
    if let Some((at, note)) = cut_at(text, max) {
        text.truncate(at);
        text.push_str(&note);
        text.shrink_to_fit();
    }
}

/// Where to cut `text` so that it and the note fit in `max` characters, and the note;
/// `None` when it fits as it is.
fn cut_at(text: &str, max: usize) -> Option<(usize, String)> {
    // a text of at most `max` bytes has at most `max` characters: the usual case
    if text.len() <= max {
        return None;
    }
    let (at, _) = text.char_indices().nth(max)?;
    let total = max + text[at..].chars().count();
    let mut keep = max;
    loop {
        let note = format!(
            "… ({} more characters)",
            group_digits((total - keep) as u64)
        );
        let fits = max.saturating_sub(note.chars().count());
        if fits >= keep {
            let at = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
            return Some((at, note));
        }
        keep = fits;
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
    fn long_texts_are_cut_saying_how_much() {
        assert_eq!(bound("short", 10), "short");
        assert_eq!(bound(&"x".repeat(1000), 1000).len(), 1000);
        let long = "é".repeat(52_428_800);
        let cut = bound(&long, MAX_VALUE_CHARS);
        assert_eq!(cut.chars().count(), MAX_VALUE_CHARS);
        let kept = MAX_VALUE_CHARS - "… (52,427,830 more characters)".chars().count();
        assert_eq!(
            cut,
            format!("{}… (52,427,830 more characters)", "é".repeat(kept))
        );
        // the note's length changes with the number it gives
        for n in [1001, 1005, 1040, 1041, 1042, 1050, 2000, 100_000] {
            let text = "y".repeat(n);
            let cut = bound(&text, 1000);
            assert_eq!(cut.chars().count(), 1000, "{n}");
            let kept = cut.chars().take_while(|&c| c == 'y').count();
            assert!(
                cut.ends_with(&format!(
                    "… ({} more characters)",
                    group_digits((n - kept) as u64)
                )),
                "{n}: {cut}"
            );
        }
        let p = Problem::file(Code::Malformed, Some(1), "m".repeat(5000))
            .with_value("v".repeat(1001))
            .with_column("c".repeat(1000))
            .bounded();
        assert_eq!(p.message().chars().count(), MAX_MESSAGE_CHARS);
        assert!(p.message().contains("more characters)"));
        assert_eq!(p.value.as_ref().unwrap().chars().count(), MAX_VALUE_CHARS);
        assert_eq!(p.column.as_deref(), Some("c".repeat(1000).as_str()));
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
}
