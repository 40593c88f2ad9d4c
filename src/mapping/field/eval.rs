//! Running a field's pipeline on one row: its text, then trim, map, default, required,
//! type, case, max_length, pattern, min/max, lookup and allowed, in that order.

use super::{AllowedSet, EvalCtx, Field, FieldError, FieldSource, Kind, Part};
use crate::mapping::spec::Case;
use crate::mapping::value::{parse_boolean, parse_decimal, parse_integer, Value};
use crate::problem::{quote, Code};
use rust_decimal::{Decimal, RoundingStrategy};
use std::borrow::Cow;

/// The years a date may have without `min`/`max` on its field: a date outside them is far
/// more often a typing error (`0026` for 2026, `20266`) than a real date of an export.
const PLAUSIBLE_YEARS: std::ops::RangeInclusive<i32> = 1900..=2200;

impl Field {
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
        // a workbook's date cell, as long as its text is the cell's
        let mut date_cell =
            matches!(self.source, FieldSource::Slot { slot, .. } if ctx.row.is_date(slot));
        // and its number cell (or a JSON number), the decimal it holds whatever the
        // field's separators
        let mut number_cell =
            matches!(self.source, FieldSource::Slot { slot, .. } if ctx.row.is_number(slot));
        if let Some(map) = &self.map {
            if let Some(m) = map.get(text) {
                text = m;
                date_cell = false;
                number_cell = false;
            }
        }
        if text.is_empty() {
            if let Some(d) = &self.default {
                text = d;
                date_cell = false;
                number_cell = false;
            }
        }
        if text.is_empty() {
            if self.required {
                return Err(self.fail(Code::Required, "", format!("{} is missing", self.label)));
            }
            return Ok(Value::Null);
        }
        let mut value = match (date_cell, number_cell) {
            (true, _) => self.convert_date_cell(text)?,
            (_, true) => self.convert_number_cell(text)?,
            _ => self.convert(text)?,
        };
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
        if let Some((re, says)) = &self.pattern {
            let t = value.text();
            if !re.is_match(&t) {
                return Err(self.fail(
                    Code::Pattern,
                    &t,
                    format!("{} {} {says}", self.label, quote(&t)),
                ));
            }
        }
        if self.min.is_none() && self.max.is_none() {
            if let Some(year) = value.year().filter(|y| !PLAUSIBLE_YEARS.contains(y)) {
                let t = value.to_text();
                return Err(self.fail(
                    Code::Type,
                    &t,
                    format!(
                        "{} {t} is in the year {year}: outside {}-{}, a mistyped year? (give the field min and max to allow it)",
                        self.label,
                        PLAUSIBLE_YEARS.start(),
                        PLAUSIBLE_YEARS.end()
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
        if let Some(mapping) = &self.reference {
            let t = value.text();
            match ctx.refs.erp_id(mapping, &t) {
                Some(id) => value = Value::Str(id),
                None => {
                    return Err(self.fail(
                        Code::Lookup,
                        &t,
                        format!(
                            "{} {} has not been imported yet (mapping {mapping})",
                            self.label,
                            quote(&t)
                        ),
                    ))
                }
            }
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
        self.convert_as(&self.kind, text)
    }

    /// A workbook's number cell or a JSON number (the decimal it holds, `1234.5`, as
    /// the reader wrote it): a number field reads it with a `.` and no thousands
    /// separator, whatever its `decimal_separator` and `thousands_separator`, which are
    /// for text cells and strings. Other types read its text.
    fn convert_number_cell(&self, text: &str) -> Result<Value, FieldError> {
        match &self.kind {
            Kind::Integer { .. } => self.convert_as(
                &Kind::Integer {
                    decimal: '.',
                    thousands: None,
                },
                text,
            ),
            Kind::Decimal { scale, exact, .. } => self.convert_as(
                &Kind::Decimal {
                    decimal: '.',
                    thousands: None,
                    scale: *scale,
                    exact: *exact,
                },
                text,
            ),
            _ => self.convert(text),
        }
    }

    fn convert_as(&self, kind: &Kind, text: &str) -> Result<Value, FieldError> {
        match kind {
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
                exact,
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
                let places = d.normalize().scale();
                if let Some(s) = scale.filter(|s| *exact && places > *s) {
                    return Err(self.fail(
                        Code::Type,
                        text,
                        format!(
                            "{} {} has {places} decimals, more than the {s} of its scale (rounding = \"error\": it is not rounded silently)",
                            self.label,
                            quote(text)
                        ),
                    ));
                }
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

    /// A workbook's date cell (ISO 8601 as the reader wrote it): a date whatever the
    /// field's `format`; a date field takes its day. Other types read its text.
    fn convert_date_cell(&self, text: &str) -> Result<Value, FieldError> {
        let iso = crate::mapping::value::parse_iso_cell(text);
        match (&self.kind, iso) {
            (Kind::Date(_), Some(dt)) => Ok(Value::Date(dt.date())),
            (Kind::DateTime(_), Some(dt)) => Ok(Value::DateTime(dt, None)),
            _ => self.convert(text),
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
fn round_to(d: Decimal, scale: u32) -> Decimal {
    let mut r = d.round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(scale);
    r
}
