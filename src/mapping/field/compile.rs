//! Compiling a field from its table in the mapping file, step by step: where its text
//! comes from, its type, the options that only some types take, its pattern, bounds and
//! lookups. Each step refuses what it cannot compile with the sub-key at fault.

use super::{AllowedSet, CompileError, Field, FieldDefaults, FieldSource, Kind, Part};
use crate::mapping::lookup::Lookup;
use crate::mapping::spec::{Allowed, FieldSpec, FieldType, Scalar};
use crate::mapping::value::{DateFormat, Value};
use indexmap::IndexMap;
use regex::Regex;
use std::sync::Arc;

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
        let source = text_source(spec, intern)?;
        let kind = kind(spec, defaults)?;
        check_type_options(spec, &kind)?;
        let pattern = pattern(spec)?;
        let min = bound("min", &spec.min, &kind)?;
        let max = bound("max", &spec.max, &kind)?;
        let lookup = replacing_lookup(spec, lookups)?;
        if let (Some(_), Some(r)) = (&spec.lookup, &spec.reference) {
            return Err((
                "ref",
                format!(
                    "a field takes `lookup` or `ref = {r:?}`, not both: each replaces the value"
                ),
            ));
        }
        if spec
            .reference
            .as_deref()
            .is_some_and(|r| r.trim().is_empty())
        {
            return Err((
                "ref",
                "`ref` names a mapping, e.g. ref = \"crm-customers\"".into(),
            ));
        }
        let allowed = allowed(spec, lookups)?;
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
            reference: spec.reference.clone(),
            allowed,
            json_number: spec.json_number,
        })
    }
}

/// Exactly one of `from`, `value` and `template`.
fn text_source(
    spec: &FieldSpec,
    intern: &mut dyn FnMut(&str) -> usize,
) -> Result<FieldSource, CompileError> {
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
    Ok(if let Some(from) = &spec.from {
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
    })
}

/// The field's type (`type`, else that of a constant `value`, else string), with its
/// separators and formats (the field's own, else `[source]`'s).
fn kind(spec: &FieldSpec, defaults: &FieldDefaults) -> Result<Kind, CompileError> {
    let inferred_type = match &spec.value {
        Some(Scalar::Bool(_)) => Some(FieldType::Boolean),
        Some(Scalar::Int(_)) => Some(FieldType::Integer),
        Some(Scalar::Float(_)) => Some(FieldType::Decimal),
        _ => None,
    };
    let one_char = |key: &'static str, v: &Option<String>| -> Result<Option<char>, CompileError> {
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
    Ok(match field_type {
        FieldType::String => Kind::String,
        FieldType::Integer => Kind::Integer { decimal, thousands },
        FieldType::Decimal => Kind::Decimal {
            decimal,
            thousands,
            scale: spec.scale,
            exact: spec.rounding == Some(crate::mapping::spec::Rounding::Error),
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
    })
}

/// `scale`, `format` and `truncate` only where they mean something.
fn check_type_options(spec: &FieldSpec, kind: &Kind) -> Result<(), CompileError> {
    if spec.scale.is_some() && !matches!(kind, Kind::Decimal { .. }) {
        return Err(("scale", "`scale` needs type = \"decimal\"".to_string()));
    }
    if spec.scale.is_some_and(|s| s > 28) {
        return Err(("scale", "`scale` can be at most 28".to_string()));
    }
    if spec.rounding.is_some() && spec.scale.is_none() {
        return Err((
            "rounding",
            "`rounding` says what happens to decimals beyond `scale`, and there is no scale"
                .to_string(),
        ));
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
    Ok(())
}

/// `pattern`, anchored: the whole value must match.
fn pattern(spec: &FieldSpec) -> Result<Option<(Regex, String)>, CompileError> {
    let Some(p) = &spec.pattern else {
        if spec.pattern_message.is_some() {
            return Err((
                "pattern_message",
                "pattern_message says what pattern asks for, and there is no pattern".into(),
            ));
        }
        return Ok(None);
    };
    let re = Regex::new(&format!("^(?:{p})$")).map_err(|e| {
        (
            "pattern",
            format!(
                "{p:?} is not a valid regular expression: {}",
                regex_error(&e)
            ),
        )
    })?;
    // what a message shows: the user's words, else the expression
    let shown = match &spec.pattern_message {
        Some(m) if m.trim().is_empty() => {
            return Err(("pattern_message", "pattern_message is empty".into()))
        }
        Some(m) => format!("is not {}", m.trim()),
        None => format!("does not have the expected form {p}"),
    };
    Ok(Some((re, shown)))
}

/// `min` or `max` (the sub-key `key`), as a value of the field's type.
fn bound(
    key: &'static str,
    s: &Option<Scalar>,
    kind: &Kind,
) -> Result<Option<Value>, CompileError> {
    let Some(s) = s else { return Ok(None) };
    let text = s.as_text();
    let v = match kind {
        Kind::Integer { .. } => text.trim().parse::<i64>().ok().map(Value::Int),
        Kind::Decimal { .. } => crate::mapping::value::decimal_from_config(&text).map(Value::Dec),
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
            format!("{text:?} is not a valid {key} for this field's type (dates as YYYY-MM-DD)"),
        )
    })
}

/// `lookup`: a lookup of the mapping's, with a `value` column to replace the text with.
fn replacing_lookup(
    spec: &FieldSpec,
    lookups: &IndexMap<String, Arc<Lookup>>,
) -> Result<Option<Arc<Lookup>>, CompileError> {
    let Some(l) = &spec.lookup else {
        return Ok(None);
    };
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
    Ok(Some(found.clone()))
}

/// `allowed`: a list, or a lookup of the mapping's.
fn allowed(
    spec: &FieldSpec,
    lookups: &IndexMap<String, Arc<Lookup>>,
) -> Result<Option<AllowedSet>, CompileError> {
    Ok(match &spec.allowed {
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
    })
}

/// `unit_price` -> `Unit price`; `customer.id` -> `Customer id`.
/// A field's name as a finance user reads it: its last dotted part (`bank.iban` is
/// "Iban", not "Bank iban"), `_` as spaces, the first letter capital.
fn default_label(name: &str) -> String {
    let last = name.rsplit('.').find(|p| !p.is_empty()).unwrap_or(name);
    let spaced = last.replace('_', " ");
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
