//! Mappings: how the rows of an export become ERP documents.
//!
//! A mapping file is compiled once ([`Mapping::load`]): formats, patterns and lookups
//! are prepared, and every column it reads gets a slot. Then [`Mapping::map_document`]
//! turns each [`RawDocument`] into a payload plus the problems found on the way.

mod compile;
pub mod field;
pub mod lookup;
pub mod payload;
pub mod spec;
pub mod value;

pub use spec::{OnChange, OnInvalid, OnMissing};

use crate::problem::{bound, group_digits, Code, Problem, Stage, MAX_VALUE_CHARS};
use crate::source::{RawDocument, Slots, SourceOptions};
use field::{EvalCtx, Field};
use indexmap::IndexMap;
use lookup::Lookup;
use payload::Node;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;

/// A `sum` check, resolved to field indexes.
#[derive(Debug, Clone)]
struct SumCheck {
    line_field: usize,
    header_field: usize,
    tolerance: Decimal,
}

/// A compiled mapping.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub name: String,
    pub file: PathBuf,
    pub document_type: String,
    pub match_globs: Vec<String>,
    globs: globset::GlobSet,
    pub source: SourceOptions,
    pub key: Vec<String>,
    pub lines_path: Vec<String>,
    pub lines_wrap: Option<String>,
    pub lines_first: bool,
    pub on_invalid: OnInvalid,
    /// What changed content of a document accepted before becomes.
    pub on_change: OnChange,
    /// A file lists every record of its kind, and what is not listed any more goes
    /// (`on_missing = "delete"`): deletes are asked for, within `max_deletes`.
    pub deletes_missing: Option<DeleteLimit>,
    pub header: Vec<Field>,
    pub line_fields: Vec<Field>,
    pub lookups: IndexMap<String, Arc<Lookup>>,
    checks: Vec<SumCheck>,
    pub slots: Slots,
    /// The delimiter of the file's `errors.csv`.
    pub report_delimiter: u8,
}

/// How many deletes one snapshot may ask for (`max_deletes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteLimit {
    Count(u64),
    /// Per cent of the documents the mapping has in the ERP.
    Share(u32),
}

impl Mapping {
    /// Master data: the ERP follows the file's changes (updates, or deletes of what a
    /// snapshot no longer lists), so a document sent before with the same content is
    /// "unchanged" rather than "already imported".
    pub fn follows_changes(&self) -> bool {
        self.on_change == OnChange::Update || self.deletes_missing.is_some()
    }
}

impl DeleteLimit {
    /// The deletes allowed when the mapping has `held` documents in the ERP.
    pub fn allowed(self, held: u64) -> u64 {
        match self {
            DeleteLimit::Count(n) => n,
            DeleteLimit::Share(p) => held * u64::from(p) / 100,
        }
    }
}

impl std::fmt::Display for DeleteLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeleteLimit::Count(n) => write!(f, "{n}"),
            DeleteLimit::Share(p) => write!(f, "{p}%"),
        }
    }
}

/// Where a mapping's references (`ref = "MAPPING"`) find the ERP's ids: the ledger.
pub trait Refs {
    /// The ERP's id of `mapping`'s document `key`, when the ERP has it.
    fn erp_id(&self, mapping: &str, key: &str) -> Option<String>;
}

/// No references resolve (nothing was imported yet).
pub struct NoRefs;

impl Refs for NoRefs {
    fn erp_id(&self, _: &str, _: &str) -> Option<String> {
        None
    }
}

/// A document after mapping: its payload, or the problems that make it invalid.
#[derive(Debug, Clone)]
pub struct MappedDocument {
    /// The key as users see it (`INV0042`; parts joined by `/`); empty for a keyless row.
    pub key: String,
    pub line: u64,
    pub payload: Node,
    /// sha256 of the source values the document was made from (not of the payload, so
    /// that `{_file}` or `{_run}` in a template do not make a re-drop look new).
    pub content_hash: String,
    pub problems: Vec<Problem>,
    pub rows: u64,
}

impl MappedDocument {
    /// Whether nothing is wrong with the document: it may be submitted.
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Mapping {
    /// The mappings this one's fields refer to (`ref`), each once.
    pub fn references(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for f in self.header.iter().chain(&self.line_fields) {
            if let Some(r) = f.reference.as_deref() {
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
        out
    }

    /// Whether this mapping takes a file of this name (globs match case-insensitively).
    pub fn matches(&self, file_name: &str) -> bool {
        self.globs.is_match(file_name)
    }

    /// Maps one document. Never fails: what is wrong becomes the document's problems.
    pub fn map_document(&self, raw: &RawDocument, file: &str, run: &str) -> MappedDocument {
        self.map_document_with(raw, file, run, true, &NoRefs)
    }

    /// Maps one document; without `payload` only its problems are found (a check with
    /// nothing to emit or submit builds no payload tree).
    pub fn map_document_with(
        &self,
        raw: &RawDocument,
        file: &str,
        run: &str,
        payload: bool,
        refs: &dyn Refs,
    ) -> MappedDocument {
        let build = payload;
        let key = raw.key_display();
        // A key longer than a report or the ledger keeps whole cannot name its document:
        // the document is invalid, like one without a key.
        let too_long = key.len() > MAX_VALUE_CHARS && key.chars().count() > MAX_VALUE_CHARS;
        let doc_key = (!key.is_empty() && !too_long).then(|| key.clone());
        let mut problems: Vec<Problem> = raw
            .problems
            .iter()
            .cloned()
            .map(|mut p| {
                if p.document.is_none() || too_long {
                    p.document = doc_key.clone();
                }
                p
            })
            .collect();
        if too_long {
            problems.insert(0, self.key_too_long(&key, raw.line));
        }
        let mut header_nodes: Vec<(usize, Node)> = Vec::with_capacity(self.header.len());
        let mut lines_node: Option<Node> = None;
        let mut header_values: Vec<Option<Decimal>> = vec![None; self.header.len()];
        let ctx = EvalCtx {
            row: &raw.header,
            file,
            run,
            refs,
        };
        for (i, f) in self.header.iter().enumerate() {
            match f.eval(&ctx) {
                Ok(v) => {
                    header_values[i] = v.as_decimal();
                    if build {
                        header_nodes.push((i, v.into_node(f.json_number)));
                    }
                }
                Err(e) => {
                    let line = f.slot().map(|s| raw.header.line_of(s)).unwrap_or(raw.line);
                    problems.push(field_problem(f, e, &doc_key, line));
                }
            }
        }
        if !self.line_fields.is_empty() {
            let mut sums: Vec<Option<Decimal>> = vec![Some(Decimal::ZERO); self.checks.len()];
            let mut lines = Vec::with_capacity(if build { raw.lines.len() } else { 0 });
            for row in &raw.lines {
                let ctx = EvalCtx {
                    row,
                    file,
                    run,
                    refs,
                };
                let mut obj = Node::Obj(Vec::with_capacity(if build {
                    self.line_fields.len()
                } else {
                    0
                }));
                for (fi, f) in self.line_fields.iter().enumerate() {
                    match f.eval(&ctx) {
                        Ok(v) => {
                            for (ci, c) in self.checks.iter().enumerate() {
                                if c.line_field == fi {
                                    sums[ci] = match (sums[ci], v.as_decimal()) {
                                        (Some(s), Some(d)) => s.checked_add(d),
                                        // an empty amount counts as zero
                                        (Some(s), None) if v.is_null() => Some(s),
                                        _ => None,
                                    };
                                }
                            }
                            if build {
                                obj.insert_path(&f.path, v.into_node(f.json_number));
                            }
                        }
                        Err(e) => {
                            for (ci, c) in self.checks.iter().enumerate() {
                                if c.line_field == fi {
                                    sums[ci] = None;
                                }
                            }
                            let line = f.slot().map(|s| row.line_of(s)).unwrap_or(row.line);
                            problems.push(field_problem(f, e, &doc_key, line));
                        }
                    }
                }
                if build {
                    lines.push(obj);
                }
            }
            for (ci, c) in self.checks.iter().enumerate() {
                let (Some(sum), Some(expected)) = (sums[ci], header_values[c.header_field]) else {
                    continue;
                };
                let diff = (sum - expected).abs();
                if diff > c.tolerance {
                    let hf = &self.header[c.header_field];
                    let lf = &self.line_fields[c.line_field];
                    let line = hf.slot().map(|s| raw.header.line_of(s)).unwrap_or(raw.line);
                    // amounts in one scale: "1249.00 ... 1249.50 (difference 0.50)"
                    let scale = sum.scale().max(expected.scale());
                    let at_scale = |mut d: Decimal| {
                        d.rescale(scale);
                        d
                    };
                    let msg = format!(
                        "{} is {} but the lines' {} adds up to {} (difference {})",
                        hf.label,
                        at_scale(expected),
                        lf.label.to_lowercase(),
                        at_scale(sum),
                        at_scale(diff)
                    );
                    problems.push(
                        Problem::new(Stage::Validate, Code::Sum, &msg)
                            .with_document_opt(doc_key.clone())
                            .with_line(line)
                            .with_column_opt(hf.column().map(str::to_string))
                            .with_field(hf.name.clone())
                            .with_value(expected.to_string()),
                    );
                }
            }
            let lines = match &self.lines_wrap {
                Some(w) => Node::Arr(vec![Node::Arr(vec![
                    Node::Str(w.clone()),
                    Node::Arr(lines),
                ])]),
                None => Node::Arr(lines),
            };
            if build {
                lines_node = Some(lines);
            }
        }
        let mut payload = Node::obj();
        if self.lines_first {
            if let Some(l) = lines_node.take() {
                payload.insert_path(&self.lines_path, l);
            }
        }
        for (i, node) in header_nodes {
            payload.insert_path(&self.header[i].path, node);
        }
        if let Some(l) = lines_node {
            payload.insert_path(&self.lines_path, l);
        }
        MappedDocument {
            content_hash: content_hash(raw),
            key,
            line: raw.line,
            payload,
            problems,
            rows: raw.rows,
        }
    }
}

impl Mapping {
    /// The problem of a document key longer than [`MAX_VALUE_CHARS`].
    fn key_too_long(&self, key: &str, line: u64) -> Problem {
        let column = self.key.join(", ");
        let msg = format!(
            "The document key is {} characters long; a key may have at most {}",
            group_digits(key.chars().count() as u64),
            group_digits(MAX_VALUE_CHARS as u64)
        );
        Problem::new(Stage::Map, Code::MaxLength, &msg)
            .with_line(line)
            .with_column(column.clone())
            .with_value(bound(key, MAX_VALUE_CHARS).into_owned())
    }
}

fn field_problem(f: &Field, e: field::FieldError, doc: &Option<String>, line: u64) -> Problem {
    let stage = match e.code {
        Code::Type | Code::Lookup => Stage::Map,
        _ => Stage::Validate,
    };
    Problem::new(stage, e.code, e.message)
        .with_document_opt(doc.clone())
        .with_line(line)
        .with_column_opt(f.column().map(str::to_string))
        .with_field(f.name.clone())
        .with_value(e.value)
}

/// sha256 over the key and every slot value of the document, in order.
fn content_hash(raw: &RawDocument) -> String {
    let mut h = Sha256::new();
    for k in &raw.key {
        h.update(k.as_bytes());
        h.update([0x1f]);
    }
    let mut row = |r: &crate::source::RawRow| {
        h.update([0x1e]);
        for i in 0..r.len() {
            match r.get(i) {
                Some(v) => h.update(crate::source::trim(v).as_bytes()),
                None => h.update([0x00]),
            }
            h.update([0x1f]);
        }
    };
    row(&raw.header);
    for l in &raw.lines {
        row(l);
    }
    hex::encode(h.finalize())
}
