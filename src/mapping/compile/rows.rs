//! `[source.columns]` (fixed width), `record_type`, `[[skip]]` and `[source.trailer]`:
//! checked when the mapping loads, so that `erpdrop check` says what is wrong before a
//! file arrives.

use super::Errors;
use crate::mapping::spec::{ColumnEntry, ColumnRef, ColumnSpec, MappingSpec};
use crate::source::{
    FixedColumn, FixedOptions, RecordTypes, RowRules, SkipRule, Slots, SourceFormat, TrailerRule,
};
use indexmap::IndexMap;

/// The column a rule names: a name, or (CSV without a header row) a number.
fn column_text(c: &ColumnRef) -> String {
    c.as_string()
}

/// The rules over rows; `decimal` and `thousands` are the mapping's defaults.
pub(super) fn compile_rules(
    spec: &MappingSpec,
    decimal: char,
    thousands: Option<char>,
    errors: &mut Errors,
) -> RowRules {
    let src = &spec.source;
    // record types: csv and fixed width; [[skip]]: every row-shaped format and JSON (a
    // record is one row); [source.trailer]: a trailer row, so not JSON, whose records
    // are not rows of a table and which has no last row standing apart
    let typed = matches!(src.format, SourceFormat::Csv | SourceFormat::Fixed);
    let row_shaped = typed || src.format.is_sheet();
    let skippable = row_shaped || src.format == SourceFormat::Json;
    let record_type = src.record_type.as_ref().map(|rt| {
        if !typed {
            errors.at(
                &["source", "record_type"],
                "record_type is for format = \"csv\" and \"fixed\"".into(),
            );
        }
        let codes = [Some(&rt.header), rt.line.as_ref(), rt.trailer.as_ref()];
        let given: Vec<&String> = codes.iter().flatten().copied().collect();
        for (i, a) in given.iter().enumerate() {
            if a.trim().is_empty() {
                errors.at(&["source", "record_type"], "a record type code is empty".into());
            }
            if given[i + 1..].contains(a) {
                errors.at(
                    &["source", "record_type"],
                    format!("record type {a:?} is given to two kinds of row"),
                );
            }
        }
        if rt.line.is_none() && !spec.lines.is_empty() {
            errors.at(
                &["source", "record_type"],
                "the mapping has [lines] but record_type names no `line` type: which rows are lines?".into(),
            );
        }
        if let Some(l) = &rt.line {
            if spec.lines.is_empty() {
                errors.at(
                    &["source", "record_type", "line"],
                    format!("no field reads the line rows (record type {l:?}): add [lines], or leave `line` out"),
                );
            }
        }
        RecordTypes {
            column: column_text(&rt.column),
            header: rt.header.trim().to_string(),
            line: rt.line.as_ref().map(|s| s.trim().to_string()),
            trailer: rt.trailer.as_ref().map(|s| s.trim().to_string()),
        }
    });
    let mut skip = Vec::new();
    for (i, s) in spec.skip.iter().enumerate() {
        let idx = i.to_string();
        if !skippable {
            errors.at(
                &["skip", &idx],
                "[[skip]] is for format = \"csv\", \"fixed\", \"xlsx\", \"xls\", \"ods\" and \"json\"".into(),
            );
        }
        if src.format == SourceFormat::Json {
            if let Err(m) = crate::source::json::check_path(&column_text(&s.column)) {
                errors.at(&["skip", &idx, "column"], m);
            }
        }
        let matches = match (&s.equals, &s.matches) {
            (Some(_), Some(_)) | (None, None) => {
                errors.at(
                    &["skip", &idx],
                    "a [[skip]] needs either `equals` (a list of values) or `matches` (a regular expression)".into(),
                );
                None
            }
            (_, Some(m)) => match regex::Regex::new(&format!("^(?:{m})$")) {
                Ok(r) => Some(r),
                Err(e) => {
                    errors.at(
                        &["skip", &idx, "matches"],
                        format!("{m:?} is not a valid regular expression: {e}"),
                    );
                    None
                }
            },
            _ => None,
        };
        skip.push(SkipRule {
            column: column_text(&s.column),
            equals: s.equals.clone().unwrap_or_default(),
            matches,
        });
    }
    let trailer = src.trailer.as_ref().map(|t| {
        if !row_shaped {
            errors.at(&["source", "trailer"], "[source.trailer] is for format = \"csv\", \"fixed\", \"xlsx\", \"xls\" and \"ods\": JSON records have no trailer row".into());
        }
        if t.count.is_none() && t.sum.is_none() {
            errors.at(
                &["source", "trailer"],
                "[source.trailer] needs `count` and/or `sum`".into(),
            );
        }
        if let Some(rt) = &record_type {
            if rt.trailer.is_none() {
                errors.at(
                    &["source", "trailer"],
                    "[source.trailer] with record_type needs record_type.trailer, the code of the trailer row".into(),
                );
            }
        }
        TrailerRule {
            count: t.count.as_ref().map(column_text),
            sum: t
                .sum
                .as_ref()
                .map(|s| (column_text(&s.column), column_text(&s.of))),
        }
    });
    RowRules {
        record_type,
        skip,
        trailer,
        decimal,
        thousands,
    }
}

/// The columns one kind of row has, by name.
type Layout<'a> = Vec<(&'a String, FixedColumn)>;

/// `[source.columns]`: positions from 1 and widths of 1 or more, no two columns of one
/// record type on the same characters; tables only for the record types there are.
pub(super) fn compile_columns(
    spec: &MappingSpec,
    rules: &RowRules,
    errors: &mut Errors,
) -> FixedOptions {
    let src = &spec.source;
    let mut out = FixedOptions::default();
    if src.format != SourceFormat::Fixed {
        if !src.columns.is_empty() {
            errors.at(
                &["source", "columns"],
                "[source.columns] is for format = \"fixed\"".into(),
            );
        }
        return out;
    }
    if src.columns.is_empty() {
        errors.at(
            &["source", "columns"],
            "a fixed-width source needs [source.columns], e.g. InvoiceNo = { start = 1, width = 10 }".into(),
        );
    }
    let position = |errors: &mut Errors, path: &[&str], c: &ColumnSpec| -> Option<FixedColumn> {
        if c.start < 1 {
            errors.at(
                path,
                format!(
                    "start = {} must be 1 or more (the first character is 1)",
                    c.start
                ),
            );
            return None;
        }
        if c.width < 1 {
            errors.at(path, format!("width = {} must be 1 or more", c.width));
            return None;
        }
        Some(FixedColumn {
            start: (c.start - 1) as usize,
            width: c.width as usize,
        })
    };
    for (name, entry) in &src.columns {
        match entry {
            ColumnEntry::Column(c) => {
                // a bad one is kept, so that the fields reading it are not reported too
                // (the mapping does not load anyway)
                let at = position(errors, &["source", "columns", name], c);
                out.columns.insert(
                    name.clone(),
                    at.unwrap_or(FixedColumn {
                        start: usize::MAX / 4,
                        width: 1,
                    }),
                );
            }
            ColumnEntry::Type(cols) => {
                let known = rules.record_type.as_ref().is_some_and(|rt| {
                    [Some(&rt.header), rt.line.as_ref(), rt.trailer.as_ref()]
                        .iter()
                        .flatten()
                        .any(|c| *c == name)
                });
                if !known {
                    let msg = match &rules.record_type {
                        None => format!("[source.columns.{name}] is the table of record type {name:?}, but the mapping has no record_type"),
                        Some(_) => format!("{name:?} is not one of the record types in source.record_type, so no row reads these columns"),
                    };
                    errors.at(&["source", "columns", name], msg);
                }
                let mut table = IndexMap::new();
                for (n, c) in cols {
                    let at = position(errors, &["source", "columns", name, n], c);
                    table.insert(
                        n.clone(),
                        at.unwrap_or(FixedColumn {
                            start: usize::MAX / 4,
                            width: 1,
                        }),
                    );
                }
                out.types.insert(name.clone(), table);
            }
        }
    }
    // overlaps, within what one kind of row reads
    let mut layouts: Vec<(Option<&String>, Layout)> = Vec::new();
    let shared: Vec<(&String, FixedColumn)> = out.columns.iter().map(|(n, c)| (n, *c)).collect();
    if out.types.is_empty() {
        layouts.push((None, shared.clone()));
    }
    for (t, cols) in &out.types {
        let mut all = shared.clone();
        all.extend(cols.iter().map(|(n, c)| (n, *c)));
        layouts.push((Some(t), all));
    }
    let mut said = Vec::new();
    for (t, cols) in &layouts {
        for (i, (a, ca)) in cols.iter().enumerate() {
            for (b, cb) in &cols[i + 1..] {
                let bad = |c: &FixedColumn| c.start >= usize::MAX / 4;
                let overlap = !bad(ca)
                    && !bad(cb)
                    && ca.start < cb.start + cb.width
                    && cb.start < ca.start + ca.width;
                if overlap && !said.contains(&(*a, *b)) {
                    said.push((*a, *b));
                    let rows = match t {
                        Some(t) => format!("rows of record type {t:?}"),
                        None => "every row".to_string(),
                    };
                    let place = |c: &FixedColumn| {
                        format!("characters {} to {}", c.start + 1, c.start + c.width)
                    };
                    let path: Vec<&str> = match t {
                        Some(t) if out.types[*t].contains_key(*b) => {
                            vec!["source", "columns", t, b]
                        }
                        _ => vec!["source", "columns", b],
                    };
                    errors.at(
                        &path,
                        format!(
                            "columns {a:?} ({}) and {b:?} ({}) overlap in {rows}: one of the starts or widths is wrong (columns of different record types may share positions)",
                            place(ca),
                            place(cb)
                        ),
                    );
                }
            }
        }
    }
    out
}

/// Every column a field, the key, a skip rule or the trailer reads is in the table of a
/// record type whose rows it reads (or in the shared one).
pub(super) fn check_fixed_reads(
    fixed: &FixedOptions,
    rules: &RowRules,
    slots: &Slots,
    errors: &mut Errors,
) {
    let has = |name: &str, code: Option<&str>| {
        fixed.columns.contains_key(name)
            || code.is_some_and(|c| fixed.types.get(c).is_some_and(|t| t.contains_key(name)))
    };
    let (header, line, trailer) = match &rules.record_type {
        Some(rt) => (
            Some(rt.header.as_str()),
            rt.line.as_deref(),
            rt.trailer.as_deref(),
        ),
        None => (None, None, None),
    };
    let need = |errors: &mut Errors, section: &str, name: &str, code: Option<&str>, what: &str| {
        if !has(name, code) {
            let tables = match code {
                Some(c) => format!("[source.columns] or [source.columns.{c}]"),
                None => "[source.columns]".to_string(),
            };
            let elsewhere: Vec<String> = fixed
                .types
                .iter()
                .filter(|(t, cols)| Some(t.as_str()) != code && cols.contains_key(name))
                .map(|(t, _)| format!("[source.columns.{t}]"))
                .collect();
            let hint = if elsewhere.is_empty() {
                String::new()
            } else {
                format!(
                    " (it is in {}, but {section} fields read the rows of their own record type)",
                    elsewhere.join(", ")
                )
            };
            errors.at(
                &[section],
                format!("{what} column {name:?}, which is not in {tables}{hint}"),
            );
        }
    };
    for n in &slots.header {
        need(errors, "header", n, header, "a [header] field reads");
    }
    for n in &slots.key {
        need(errors, "document", n, header, "the document key reads");
    }
    for n in &slots.lines {
        need(errors, "lines", n, line, "a [lines] field reads");
    }
    if let Some(rt) = &rules.record_type {
        if !fixed.columns.contains_key(&rt.column) {
            errors.at(
                &["source", "record_type"],
                format!("the record type column {:?} must be in [source.columns], where every row has it", rt.column),
            );
        }
    }
    for s in &rules.skip {
        if !has(&s.column, header) && !has(&s.column, line) {
            errors.at(
                &["skip"],
                format!(
                    "[[skip]] reads column {:?}, which no record type has",
                    s.column
                ),
            );
        }
    }
    if let Some(t) = &rules.trailer {
        for c in t.count.iter().chain(t.sum.as_ref().map(|s| &s.0)) {
            need(errors, "source", c, trailer, "[source.trailer] reads");
        }
        if let Some((_, of)) = &t.sum {
            if !has(of, header) && !has(of, line) {
                errors.at(
                    &["source", "trailer"],
                    format!("sum.of reads column {of:?}, which no record type has"),
                );
            }
        }
    }
}
