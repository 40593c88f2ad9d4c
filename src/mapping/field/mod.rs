//! One field of a document: where its text comes from, and the steps of SPEC's pipeline
//! in their order: trim, map, default, required, type, case, max_length, pattern,
//! min/max, lookup, allowed. Everything that can be prepared (formats, patterns,
//! lookups) is prepared once, when the mapping is compiled.

mod compile;
mod eval;
#[cfg(test)]
mod tests;

use super::lookup::Lookup;
use super::spec::Case;
use super::value::{DateFormat, Value};
use crate::problem::Code;
use crate::source::RawRow;
use regex::Regex;
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

/// A piece of a template: literal text, a column's value, or a built-in.
#[derive(Debug, Clone)]
pub enum Part {
    Lit(String),
    Slot(usize),
    File,
    Line,
    Run,
}

/// A field's type, with what it needs to read a value of it.
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
        /// More decimals than `scale` is an error rather than rounded.
        exact: bool,
    },
    Date(DateFormat),
    DateTime(Vec<DateFormat>),
    Boolean,
}

/// The values a field may take (`allowed`): a list, or the keys of a lookup.
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
    /// Where `ref` finds the ERP's ids.
    pub refs: &'a dyn super::Refs,
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
    /// `ref = "MAPPING"`: replaced by the ERP's id of that mapping's document.
    pub reference: Option<String>,
    allowed: Option<AllowedSet>,
    pub json_number: bool,
}

/// A field compile error: the sub-key it concerns (e.g. `pattern`) and a sentence.
pub type CompileError = (&'static str, String);

impl Field {
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
}
