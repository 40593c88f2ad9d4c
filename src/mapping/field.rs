//! One field of a document: where its text comes from, and the steps of SPEC's pipeline
//! in their order: trim, map, default, required, type, case, max_length, pattern,
//! min/max, lookup, allowed. Everything that can be prepared (formats, patterns,
//! lookups) is prepared once, when the mapping is compiled.

use super::lookup::Lookup;
use super::spec::{Allowed, Case, FieldSpec, FieldType, Scalar};
use super::value::{parse_boolean, parse_decimal, parse_integer, DateFormat, Value};
use crate::problem::{quote, Code};
use crate::source::RawRow;
use indexmap::IndexMap;
use regex::Regex;
use rust_decimal::{Decimal, RoundingStrategy};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// Where a field's text comes from.
#[derive(Debug, Clone)]
pub enum FieldSource {
    /// A source column or path, by slot, with its name for messages.
    Slot {
        slot: usize,
        column: String,
    },
    Const(String),
    Template(Vec<Part>),
}

#[derive(Debug, Clone)]
pub enum Part {
    Lit(String),
    Slot(usize),
    File,
    Line,
    Run,
}

#[derive(Debug, Clone)]
pub enum Kind {
    String,
    Integer {
        decimal: char,
        thousands: Option<char>,
    },
    Decimal {
        decimal: char,
        thousands: Option<char>,
        scale: Option<u32>,
    },
    Date(DateFormat),
    DateTime(Vec<DateFormat>),
    Boolean,
}

#[derive(Debug, Clone)]
pub enum AllowedSet {
    List(Vec<String>),
    Lookup(Arc<Lookup>),
}

/// A field's failure at one step.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub code: Code,
    /// A sentence without the location suffix (the caller knows line and column).
    pub message: String,
    pub value: String,
}

/// What a field needs from the row it is evaluated on.
pub struct EvalCtx<'a> {
    pub row: &'a RawRow,
    pub file: &'a str,
    pub run: &'a str,
}

/// Defaults from `[source]` that a field inherits.
#[derive(Debug, Clone)]
pub struct FieldDefaults {
    pub decimal: char,
    pub thousands: Option<char>,
    pub date_format: Option<String>,
    pub datetime_format: Option<String>,
}

/// A compiled field.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub path: Vec<String>,
    pub label: String,
    pub source: FieldSource,
    trim: bool,
    map: Option<HashMap<String, String>>,
    default: Option<String>,
    required: bool,
    pub kind: Kind,
    case: Option<Case>,
    max_length: Option<usize>,
    truncate: bool,
    pattern: Option<(Regex, String)>,
    min: Option<Value>,
    max: Option<Value>,
    lookup: Option<Arc<Lookup>>,
    allowed: Option<AllowedSet>,
    pub json_number: bool,
}

/// A field compile error: the sub-key it concerns (e.g. `pattern`) and a sentence.
pub type CompileError = (&'static str, String);

impl Field {
    /// Compiles a field. `intern` maps a column name or path to a slot of the field's
    /// section; `lookups` are the mapping's loaded lookups by name.
    pub fn compile(
        name: &str,
        spec: &FieldSpec,
        defaults: &FieldDefaults,
        lookups: &IndexMap<String, Arc<Lookup>>,
        intern: &mut dyn FnMut(&str) -> usize,
    ) -> Result<Field, CompileError> {
        let sources = [
            spec.from.is_some(),
            spec.value.is_some(),
            spec.template.is_some(),
        ]
        .iter()
        .filter(|&&b| b)
        .count();
        if sources != 1 {
            return Err((
                "from",
                "a field takes exactly one of `from`, `value` or `template`".to_string(),
            ));
        }
        let inferred_type = match &spec.value {
            Some(Scalar::Bool(_)) => Some(FieldType::Boolean),
            Some(Scalar::Int(_)) => Some(FieldType::Integer),
            Some(Scalar::Float(_)) => Some(FieldType::Decimal),
            _ => None,
        };
        let source = if let Some(from) = &spec.from {
            let column = from.as_string();
            if column.trim().is_empty() {
                return Err(("from", "`from` is empty".to_string()));
            }
            FieldSource::Slot {
                slot: intern(&column),
                column,
            }
        } else if let Some(v) = &spec.value {
            FieldSource::Const(v.as_text())
        } else {
            let t = spec.template.as_deref().unwrap_or_default();
            FieldSource::Template(parse_template(t, intern).map_err(|m| ("template", m))?)
        };

        let one_char =
            |key: &'static str, v: &Option<String>| -> Result<Option<char>, CompileError> {
                match v {
                    None => Ok(None),
                    Some(s) if s.chars().count() == 1 => Ok(s.chars().next()),
                    Some(s) if s.is_empty() => Ok(None),
                    Some(s) => Err((key, format!("{s:?} must be a single character"))),
                }
            };
        let decimal =
            one_char("decimal_separator", &spec.decimal_separator)?.unwrap_or(defaults.decimal);
        let thousands =
            one_char("thousands_separator", &spec.thousands_separator)?.or(defaults.thousands);
        if Some(decimal) == thousands {
            return Err((
                "thousands_separator",
                "the thousands separator must differ from the decimal separator".to_string(),
            ));
        }
        let field_type = spec
            .field_type
            .or(inferred_type)
            .unwrap_or(FieldType::String);
        let kind = match field_type {
            FieldType::String => Kind::String,
            FieldType::Integer => Kind::Integer { decimal, thousands },
            FieldType::Decimal => Kind::Decimal {
                decimal,
                thousands,
                scale: spec.scale,
            },
            FieldType::Date => {
                let fmt = spec
                    .format
                    .clone()
                    .or_else(|| defaults.date_format.clone())
                    .unwrap_or_else(|| "%Y-%m-%d".to_string());
                Kind::Date(DateFormat::compile(&fmt, false).map_err(|m| ("format", m))?)
            }
            FieldType::Datetime => {
                let fmts = match spec
                    .format
                    .clone()
                    .or_else(|| defaults.datetime_format.clone())
                {
                    Some(f) => vec![f],
                    None => vec![
                        "%Y-%m-%dT%H:%M:%S%.f".to_string(),
                        "%Y-%m-%d %H:%M:%S%.f".to_string(),
                        "%Y-%m-%dT%H:%M".to_string(),
                        "%Y-%m-%d %H:%M".to_string(),
                    ],
                };
                let compiled = fmts
                    .iter()
                    .map(|f| DateFormat::compile(f, true))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|m| ("format", m))?;
                Kind::DateTime(compiled)
            }
            FieldType::Boolean => Kind::Boolean,
        };
        if spec.scale.is_some() && !matches!(kind, Kind::Decimal { .. }) {
            return Err(("scale", "`scale` needs type = \"decimal\"".to_string()));
        }
        if spec.scale.is_some_and(|s| s > 28) {
            return Err(("scale", "`scale` can be at most 28".to_string()));
        }
        if spec.format.is_some() && !matches!(kind, Kind::Date(_) | Kind::DateTime(_)) {
            return Err((
                "format",
                "`format` needs type = \"date\" or \"datetime\"".to_string(),
            ));
        }
        if spec.truncate && spec.max_length.is_none() {
            return Err(("truncate", "`truncate` needs `max_length`".to_string()));
        }
        let pattern = match &spec.pattern {
            Some(p) => {
                let re = Regex::new(&format!("^(?:{p})$")).map_err(|e| {
                    (
                        "pattern",
                        format!(
                            "{p:?} is not a valid regular expression: {}",
                            regex_error(&e)
                        ),
                    )
                })?;
                Some((re, p.clone()))
            }
            None => None,
        };
        let bound = |key: &'static str,
                     s: &Option<Scalar>|
         -> Result<Option<Value>, CompileError> {
            let Some(s) = s else { return Ok(None) };
            let text = s.as_text();
            let v = match &kind {
                Kind::Integer { .. } => text.trim().parse::<i64>().ok().map(Value::Int),
                Kind::Decimal { .. } => super::value::decimal_from_config(&text).map(Value::Dec),
                Kind::Date(_) => chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
                    .ok()
                    .map(Value::Date),
                Kind::DateTime(_) => {
                    chrono::NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M:%S")
                        .ok()
                        .map(|d| Value::DateTime(d, None))
                }
                _ => {
                    return Err((
                        key,
                        format!("`{key}` needs type integer, decimal, date or datetime"),
                    ))
                }
            };
            v.map(Some).ok_or_else(|| {
                (
                    key,
                    format!(
                        "{text:?} is not a valid {key} for this field's type (dates as YYYY-MM-DD)"
                    ),
                )
            })
        };
        let min = bound("min", &spec.min)?;
        let max = bound("max", &spec.max)?;
        let lookup = match &spec.lookup {
            Some(l) => {
                let found = lookups.get(l).ok_or_else(|| {
                    (
                        "lookup",
                        format!(
                            "there is no lookup named {l:?} in [lookups]{}",
                            known(lookups)
                        ),
                    )
                })?;
                if !found.has_value {
                    return Err((
                        "lookup",
                        format!("lookup {l:?} has no `value` column, so it cannot replace a value (use `allowed = {l:?}` to only check)"),
                    ));
                }
                Some(found.clone())
            }
            None => None,
        };
        let allowed = match &spec.allowed {
            Some(Allowed::List(list)) => Some(AllowedSet::List(list.clone())),
            Some(Allowed::Lookup(l)) => Some(AllowedSet::Lookup(
                lookups
                    .get(l)
                    .ok_or_else(|| {
                        (
                            "allowed",
                            format!(
                                "there is no lookup named {l:?} in [lookups]{}",
                                known(lookups)
                            ),
                        )
                    })?
                    .clone(),
            )),
            None => None,
        };
        let path: Vec<String> = name.split('.').map(str::to_string).collect();
        if path.iter().any(|p| p.trim().is_empty()) {
            return Err(("", format!("field name {name:?} has an empty part")));
        }
        Ok(Field {
            name: name.to_string(),
            label: spec.label.clone().unwrap_or_else(|| default_label(name)),
            path,
            source,
            trim: spec.trim.unwrap_or(true),
            map: spec
                .map
                .as_ref()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            default: spec.default.as_ref().map(Scalar::as_text),
            required: spec.required,
            kind,
            case: spec.case,
            max_length: spec.max_length,
            truncate: spec.truncate,
            pattern,
            min,
            max,
            lookup,
            allowed,
            json_number: spec.json_number,
        })
    }

    /// The source column (or path) the field reads, for messages.
    pub fn column(&self) -> Option<&str> {
        match &self.source {
            FieldSource::Slot { column, .. } => Some(column),
            _ => None,
        }
    }

    /// The slot the field reads, if any.
    pub fn slot(&self) -> Option<usize> {
        match &self.source {
            FieldSource::Slot { slot, .. } => Some(*slot),
            _ => None,
        }
    }

    fn raw<'a>(&'a self, ctx: &'a EvalCtx<'a>) -> Cow<'a, str> {
        match &self.source {
            FieldSource::Slot { slot, .. } => Cow::Borrowed(ctx.row.get(*slot).unwrap_or("")),
            FieldSource::Const(s) => Cow::Borrowed(s),
            FieldSource::Template(parts) => {
                let mut out = String::new();
                for p in parts {
                    match p {
                        Part::Lit(s) => out.push_str(s),
                        Part::Slot(i) => {
                            out.push_str(crate::source::trim(ctx.row.get(*i).unwrap_or("")))
                        }
                        Part::File => out.push_str(ctx.file),
                        Part::Line => out.push_str(&ctx.row.line.to_string()),
                        Part::Run => out.push_str(ctx.run),
                    }
                }
                Cow::Owned(out)
            }
        }
    }

    /// Runs the pipeline on one row.
    pub fn eval(&self, ctx: &EvalCtx<'_>) -> Result<Value, FieldError> {
        let raw = self.raw(ctx);
        let mut text: &str = if self.trim {
            crate::source::trim(&raw)
        } else {
            &raw
        };
        if let Some(map) = &self.map {
            if let Some(m) = map.get(text) {
                text = m;
            }
        }
        if text.is_empty() {
            if let Some(d) = &self.default {
                text = d;
            }
        }
        if text.is_empty() {
            if self.required {
                return Err(self.fail(Code::Required, "", format!("{} is missing", self.label)));
            }
            return Ok(Value::Null);
        }
        let mut value = self.convert(text)?;
        if let (Some(case), Value::Str(s)) = (self.case, &mut value) {
            // most values are in the wanted case already: no new string for them
            match case {
                Case::Upper if s.is_ascii() => s.make_ascii_uppercase(),
                Case::Lower if s.is_ascii() => s.make_ascii_lowercase(),
                Case::Upper => *s = s.to_uppercase(),
                Case::Lower => *s = s.to_lowercase(),
            }
        }
        if let Some(max) = self.max_length {
            let t = value.text();
            // a text of at most `max` bytes has at most `max` characters
            let len = if t.len() <= max { 0 } else { t.chars().count() };
            if len > max {
                let t = t.into_owned();
                match (&mut value, self.truncate) {
                    (Value::Str(s), true) => {
                        let cut = s.char_indices().nth(max).map(|(i, _)| i).unwrap_or(s.len());
                        s.truncate(cut);
                    }
                    _ => {
                        return Err(self.fail(
                            Code::MaxLength,
                            &t,
                            format!(
                                "{} {} is {len} characters long; at most {max} are allowed",
                                self.label,
                                quote(&t)
                            ),
                        ))
                    }
                }
            }
        }
        if let Some((re, src)) = &self.pattern {
            let t = value.text();
            if !re.is_match(&t) {
                return Err(self.fail(
                    Code::Pattern,
                    &t,
                    format!(
                        "{} {} does not have the expected form {src}",
                        self.label,
                        quote(&t)
                    ),
                ));
            }
        }
        if let Some(min) = &self.min {
            if value.compare(min) == Some(std::cmp::Ordering::Less) {
                let t = value.to_text();
                return Err(self.fail(
                    Code::Min,
                    &t,
                    format!(
                        "{} {t} is less than the minimum {}",
                        self.label,
                        min.to_text()
                    ),
                ));
            }
        }
        if let Some(max) = &self.max {
            if value.compare(max) == Some(std::cmp::Ordering::Greater) {
                let t = value.to_text();
                return Err(self.fail(
                    Code::Max,
                    &t,
                    format!(
                        "{} {t} is more than the maximum {}",
                        self.label,
                        max.to_text()
                    ),
                ));
            }
        }
        if let Some(lookup) = &self.lookup {
            let found = {
                let t = value.text();
                match lookup.get(&t) {
                    Some(v) => Ok(v.to_string()),
                    None => Err(self.fail(
                        Code::Lookup,
                        &t,
                        format!(
                            "{} {} has no entry in {}",
                            self.code_label(),
                            quote(&t),
                            lookup.display
                        ),
                    )),
                }
            };
            value = Value::Str(found?);
        }
        if let Some(allowed) = &self.allowed {
            let t = value.text();
            let ok = match allowed {
                AllowedSet::List(list) => list.iter().any(|a| *a == *t),
                AllowedSet::Lookup(l) => l.contains(&t),
            };
            if !ok {
                // the sentence is made only for a value that fails
                let msg = match allowed {
                    AllowedSet::List(list) => format!(
                        "{} {} is not one of {}",
                        self.code_label(),
                        quote(&t),
                        list.join(", ")
                    ),
                    AllowedSet::Lookup(l) => format!(
                        "{} {} is not in {}",
                        self.code_label(),
                        quote(&t),
                        l.display
                    ),
                };
                return Err(self.fail(Code::NotAllowed, &t, msg));
            }
        }
        Ok(value)
    }

    fn convert(&self, text: &str) -> Result<Value, FieldError> {
        match &self.kind {
            Kind::String => Ok(Value::Str(text.to_string())),
            Kind::Integer { decimal, thousands } => parse_integer(text, *decimal, *thousands)
                .map(Value::Int)
                .ok_or_else(|| {
                    self.fail(
                        Code::Type,
                        text,
                        format!("{} {} is not a whole number", self.label, quote(text)),
                    )
                }),
            Kind::Decimal {
                decimal,
                thousands,
                scale,
            } => {
                let d = parse_decimal(text, *decimal, *thousands).ok_or_else(|| {
                    self.fail(
                        Code::Type,
                        text,
                        format!(
                            "{} {} is not a number (decimal separator {:?}{})",
                            self.label,
                            quote(text),
                            decimal.to_string(),
                            match thousands {
                                Some(t) => format!(", thousands separator {:?}", t.to_string()),
                                None => String::new(),
                            }
                        ),
                    )
                })?;
                Ok(Value::Dec(match scale {
                    Some(s) => round_to(d, *s),
                    None => d,
                }))
            }
            Kind::Date(f) => f.parse_date(text).map(Value::Date).ok_or_else(|| {
                self.fail(
                    Code::Type,
                    text,
                    format!(
                        "{} {} is not a valid date in the form {}",
                        self.label,
                        quote(text),
                        f.human
                    ),
                )
            }),
            Kind::DateTime(fs) => fs
                .iter()
                .find_map(|f| f.parse_datetime(text))
                .map(|(d, o)| Value::DateTime(d, o))
                .ok_or_else(|| {
                    self.fail(
                        Code::Type,
                        text,
                        format!(
                            "{} {} is not a valid date and time in the form {}",
                            self.label,
                            quote(text),
                            fs.iter()
                                .map(|f| f.human.as_str())
                                .collect::<Vec<_>>()
                                .join(" or ")
                        ),
                    )
                }),
            Kind::Boolean => parse_boolean(text).map(Value::Bool).ok_or_else(|| {
                self.fail(
                    Code::Type,
                    text,
                    format!(
                        "{} {} is not yes or no (true/false, 1/0)",
                        self.label,
                        quote(text)
                    ),
                )
            }),
        }
    }

    fn fail(&self, code: Code, value: &str, message: String) -> FieldError {
        FieldError {
            code,
            message,
            value: value.to_string(),
        }
    }

    /// "Terms" -> "Terms code": lookups and allowed lists hold codes. A label in another
    /// language ("ИНН контрагента") is left as written.
    fn code_label(&self) -> String {
        let l = self.label.to_lowercase();
        if !l.is_ascii()
            || ["code", "id", "number", "no", "account", "key"]
                .iter()
                .any(|s| l.ends_with(s))
        {
            self.label.clone()
        } else {
            format!("{} code", self.label)
        }
    }
}

/// Rounds half away from zero and writes exactly `scale` decimals.
pub fn round_to(d: Decimal, scale: u32) -> Decimal {
    let mut r = d.round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(scale);
    r
}

/// `unit_price` -> `Unit price`; `customer.id` -> `Customer id`.
fn default_label(name: &str) -> String {
    let spaced = name.replace(['_', '.'], " ");
    let mut c = spaced.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn known(lookups: &IndexMap<String, Arc<Lookup>>) -> String {
    if lookups.is_empty() {
        " (there are none)".to_string()
    } else {
        format!(
            " (known: {})",
            lookups.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    }
}

fn regex_error(e: &regex::Error) -> String {
    // The regex crate's message spans several lines with a caret; keep the last line.
    e.to_string()
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}

/// Splits `"Imported from {_file}, line {_line}"` into parts; `{{` and `}}` are braces.
fn parse_template(t: &str, intern: &mut dyn FnMut(&str) -> usize) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                lit.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(ch) => name.push(ch),
                        None => return Err(format!("template {t:?} has a `{{` without its `}}`")),
                    }
                }
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                parts.push(match name.trim() {
                    "_file" => Part::File,
                    "_line" => Part::Line,
                    "_run" => Part::Run,
                    "" => return Err(format!("template {t:?} has an empty {{}}")),
                    n if n.starts_with('_') => {
                        return Err(format!(
                            "template {t:?}: unknown built-in {{{n}}} (there are {{_file}}, {{_line}}, {{_run}})"
                        ))
                    }
                    n => Part::Slot(intern(n)),
                });
            }
            '}' => {
                return Err(format!(
                    "template {t:?} has a `}}` without its `{{` (write `}}}}` for a brace)"
                ))
            }
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> FieldDefaults {
        FieldDefaults {
            decimal: '.',
            thousands: None,
            date_format: None,
            datetime_format: None,
        }
    }

    fn field(toml_text: &str) -> Result<Field, CompileError> {
        field_with(toml_text, IndexMap::new())
    }

    fn field_with(
        toml_text: &str,
        lookups: IndexMap<String, Arc<Lookup>>,
    ) -> Result<Field, CompileError> {
        let spec: FieldSpec = toml::from_str(toml_text).unwrap();
        let mut slots: Vec<String> = Vec::new();
        let mut intern = |n: &str| crate::source::Slots::intern(&mut slots, n);
        Field::compile("terms", &spec, &defaults(), &lookups, &mut intern)
    }

    fn eval(f: &Field, cell: &str) -> Result<Value, FieldError> {
        let mut row = RawRow::new(7);
        row.push(Some(cell));
        row.push(Some("second"));
        f.eval(&EvalCtx {
            row: &row,
            file: "INV_1.csv",
            run: "r1",
        })
    }

    #[test]
    fn trim_map_default_required_in_order() {
        let f = field(
            r#"from = "T"
map = { "48 Month Repayment Plan" = "F48", "none" = "" }
default = "N30"
required = true"#,
        )
        .unwrap();
        assert_eq!(
            eval(&f, "  48 Month Repayment Plan ").unwrap(),
            Value::Str("F48".into())
        );
        assert_eq!(eval(&f, "none").unwrap(), Value::Str("N30".into()));
        assert_eq!(eval(&f, "").unwrap(), Value::Str("N30".into()));
        let g = field(
            r#"from = "T"
required = true"#,
        )
        .unwrap();
        assert_eq!(eval(&g, "  ").unwrap_err().code, Code::Required);
        let h = field(
            r#"from = "T"
trim = false"#,
        )
        .unwrap();
        assert_eq!(eval(&h, " a ").unwrap(), Value::Str(" a ".into()));
    }

    #[test]
    fn decimal_scale_rounds_half_away_from_zero() {
        let f = field(
            r#"from = "T"
type = "decimal"
decimal_separator = ","
scale = 2"#,
        )
        .unwrap();
        assert_eq!(eval(&f, "2,345").unwrap().to_text(), "2.35");
        assert_eq!(eval(&f, "-2,345").unwrap().to_text(), "-2.35");
        assert_eq!(eval(&f, "7").unwrap().to_text(), "7.00");
        let e = eval(&f, "7.5").unwrap_err();
        assert_eq!(e.code, Code::Type);
        assert!(
            e.message.contains("\"7.5\" is not a number"),
            "{}",
            e.message
        );
    }

    #[test]
    fn case_max_length_truncate_pattern() {
        let f = field(
            r#"from = "T"
case = "upper"
max_length = 3
pattern = "[A-Z]{3}""#,
        )
        .unwrap();
        assert_eq!(eval(&f, "usd").unwrap(), Value::Str("USD".into()));
        assert_eq!(eval(&f, "usdx").unwrap_err().code, Code::MaxLength);
        assert_eq!(eval(&f, "u1d").unwrap_err().code, Code::Pattern);
        let t = field(
            r#"from = "T"
max_length = 5
truncate = true"#,
        )
        .unwrap();
        assert_eq!(eval(&t, "Ромашка").unwrap(), Value::Str("Ромаш".into()));
    }

    #[test]
    fn min_and_max_compare_typed_values() {
        let f = field(
            r#"from = "T"
type = "decimal"
min = 0
max = "100.5""#,
        )
        .unwrap();
        assert!(eval(&f, "100.5").is_ok());
        assert_eq!(eval(&f, "100.51").unwrap_err().code, Code::Max);
        assert_eq!(eval(&f, "-1").unwrap_err().code, Code::Min);
        let d = field(
            r#"from = "T"
type = "date"
format = "%d.%m.%Y"
min = "2026-01-01""#,
        )
        .unwrap();
        assert_eq!(eval(&d, "31.12.2025").unwrap_err().code, Code::Min);
        assert_eq!(eval(&d, "01.01.2026").unwrap().to_text(), "2026-01-01");
    }

    #[test]
    fn allowed_list_and_lookup_messages() {
        let f = field(
            r#"from = "T"
allowed = ["N30", "F48"]"#,
        )
        .unwrap();
        let e = eval(&f, "X").unwrap_err();
        assert_eq!(e.code, Code::NotAllowed);
        assert_eq!(e.message, "Terms code \"X\" is not one of N30, F48");
    }

    #[test]
    fn template_uses_columns_and_builtins() {
        let f = field(r#"template = "{T}/{_file}:{_line} {{x}}""#).unwrap();
        assert_eq!(
            eval(&f, " A ").unwrap(),
            Value::Str("A/INV_1.csv:7 {x}".into())
        );
        assert!(field(r#"template = "{_nope}""#).is_err());
        assert!(field(r#"template = "{open""#).is_err());
    }

    #[test]
    fn constant_values_infer_their_type() {
        let f = field("value = 1").unwrap();
        assert_eq!(eval(&f, "").unwrap(), Value::Int(1));
        let b = field("value = true").unwrap();
        assert_eq!(eval(&b, "").unwrap(), Value::Bool(true));
    }

    #[test]
    fn compile_errors_name_the_key() {
        assert_eq!(
            field(
                r#"from = "T"
pattern = "([A-Z""#
            )
            .unwrap_err()
            .0,
            "pattern"
        );
        assert_eq!(
            field(
                r#"from = "T"
type = "date"
format = "%Q""#
            )
            .unwrap_err()
            .0,
            "format"
        );
        assert_eq!(
            field(
                r#"from = "T"
lookup = "nope""#
            )
            .unwrap_err()
            .0,
            "lookup"
        );
        assert_eq!(
            field(
                r#"from = "T"
value = "x""#
            )
            .unwrap_err()
            .0,
            "from"
        );
        assert_eq!(
            field(
                r#"from = "T"
scale = 2"#
            )
            .unwrap_err()
            .0,
            "scale"
        );
    }
}
