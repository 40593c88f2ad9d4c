//! Mappings: how the rows of an export become ERP documents.
//!
//! A mapping file is compiled once ([`Mapping::load`]): formats, patterns and lookups
//! are prepared, and every column it reads gets a slot. Then [`Mapping::map_document`]
//! turns each [`RawDocument`] into a payload plus the problems found on the way.

pub mod field;
pub mod lookup;
pub mod payload;
pub mod spec;
pub mod value;

pub use spec::OnInvalid;

use crate::config_error::{parse_toml, ConfigError, ConfigErrors, KeyLocator};
use crate::problem::{bound, group_digits, Code, Problem, Stage, MAX_VALUE_CHARS};
use crate::source::decode::encoding_for_label;
use crate::source::{
    Budget, CsvOptions, RawDocument, Slots, SourceFormat, SourceOptions, XmlOptions,
};
use field::{EvalCtx, Field, FieldDefaults, Kind};
use indexmap::IndexMap;
use lookup::{single_byte, Lookup};
use payload::Node;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use spec::{CheckKind, MappingSpec};
use std::path::{Path, PathBuf};
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
    pub header: Vec<Field>,
    pub line_fields: Vec<Field>,
    pub lookups: IndexMap<String, Arc<Lookup>>,
    checks: Vec<SumCheck>,
    pub slots: Slots,
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
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Mapping {
    /// Reads and compiles a mapping file. Relative lookup paths are taken from the
    /// config's folder, or else from the mapping file's own folder.
    pub fn load(file: &Path, base_dir: &Path) -> Result<Mapping, ConfigErrors> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| ConfigError::new(file, format!("cannot read the mapping file: {e}")))?;
        let spec: MappingSpec = parse_toml(file, &text).map_err(|e| dotted_name_hint(e, &text))?;
        Mapping::compile(file, &text, spec, base_dir)
    }

    fn compile(
        file: &Path,
        text: &str,
        spec: MappingSpec,
        base_dir: &Path,
    ) -> Result<Mapping, ConfigErrors> {
        let loc = KeyLocator::new(text);
        let mut errors: Vec<ConfigError> = Vec::new();
        let err = |path: &[&str], msg: String| {
            ConfigError::at(file, loc.line(path), &path.join("."), msg)
        };

        if spec.name.trim().is_empty() {
            errors.push(err(&["name"], "the mapping needs a name".into()));
        }
        if spec.document_type.trim().is_empty() {
            errors.push(err(&["document_type"], "document_type is empty".into()));
        }
        let mut gb = globset::GlobSetBuilder::new();
        if spec.match_globs.is_empty() {
            errors.push(err(
                &["match"],
                "`match` needs at least one file pattern, e.g. [\"INV_*.csv\"]".into(),
            ));
        }
        for g in &spec.match_globs {
            match globset::GlobBuilder::new(g)
                .case_insensitive(true)
                .literal_separator(true)
                .build()
            {
                Ok(glob) => {
                    gb.add(glob);
                }
                Err(e) => errors.push(err(&["match"], format!("bad pattern {g:?}: {e}"))),
            }
        }
        let globs = gb.build().unwrap_or_else(|_| globset::GlobSet::empty());

        // [source]
        let src = &spec.source;
        let delimiter = match &src.delimiter {
            None => b',',
            Some(d) => single_byte(d).unwrap_or_else(|| {
                errors.push(err(&["source", "delimiter"], format!("delimiter {d:?} must be a single one-byte character (\";\", \",\", \"\\t\", \"|\")")));
                b','
            }),
        };
        let quote = match &src.quote {
            None => b'"',
            Some(q) => single_byte(q).unwrap_or_else(|| {
                errors.push(err(
                    &["source", "quote"],
                    format!("quote {q:?} must be a single one-byte character"),
                ));
                b'"'
            }),
        };
        let encoding = src.encoding.as_ref().map(|l| {
            encoding_for_label(l).unwrap_or_else(|| {
                errors.push(err(&["source", "encoding"], format!("unknown encoding {l:?} (e.g. utf-8, utf-16, windows-1251, windows-1252, iso-8859-1)")));
                encoding_rs::UTF_8
            })
        });
        let one_char =
            |key: &str, v: &Option<String>, errors: &mut Vec<ConfigError>| -> Option<char> {
                let s = v.as_ref()?;
                let mut c = s.chars();
                match (c.next(), c.next()) {
                    (Some(ch), None) => Some(ch),
                    (None, _) => None,
                    _ => {
                        errors.push(err(
                            &["source", key],
                            format!("{s:?} must be a single character"),
                        ));
                        None
                    }
                }
            };
        let decimal =
            one_char("decimal_separator", &src.decimal_separator, &mut errors).unwrap_or('.');
        let thousands = one_char("thousands_separator", &src.thousands_separator, &mut errors);
        for (key, fmt, dt) in [
            ("date_format", &src.date_format, false),
            ("datetime_format", &src.datetime_format, true),
        ] {
            if let Some(f) = fmt {
                if let Err(m) = value::DateFormat::compile(f, dt) {
                    errors.push(err(&["source", key], m));
                }
            }
        }
        if src.format == SourceFormat::Xml
            && src.record.as_deref().is_none_or(|r| r.trim().is_empty())
        {
            errors.push(err(&["source", "record"], "an XML source needs `record`, the path of the element that is one document (e.g. \"/Export/Invoice\")".into()));
        }
        if src.format == SourceFormat::Xml && !spec.lines.is_empty() && src.lines.is_none() {
            errors.push(err(&["source", "lines"], "an XML source with [lines] needs `lines`, the path of the line elements relative to the record (e.g. \"Lines/Line\")".into()));
        }
        if src.format == SourceFormat::Csv && (src.record.is_some() || src.lines.is_some()) {
            errors.push(err(
                &["source", "record"],
                "`record` and `lines` are for format = \"xml\"".into(),
            ));
        }

        // [lookups]
        let mapping_dir = file.parent().unwrap_or(Path::new("."));
        let mut lookups: IndexMap<String, Arc<Lookup>> = IndexMap::new();
        for (name, ls) in &spec.lookups {
            let mut path = base_dir.join(&ls.file);
            if !path.exists() && mapping_dir.join(&ls.file).exists() {
                path = mapping_dir.join(&ls.file);
            }
            match Lookup::load(name, ls, &path) {
                Ok(l) => {
                    lookups.insert(name.clone(), Arc::new(l));
                }
                Err(m) => errors.push(err(&["lookups", name, "file"], m)),
            }
        }

        // fields
        let defaults = FieldDefaults {
            decimal,
            thousands,
            date_format: src.date_format.clone(),
            datetime_format: src.datetime_format.clone(),
        };
        let mut slots = Slots::default();
        let compile_section = |section: &str,
                               fields: &IndexMap<String, spec::FieldSpec>,
                               list: &mut Vec<String>,
                               errors: &mut Vec<ConfigError>|
         -> Vec<Field> {
            let mut out = Vec::new();
            for (name, fs) in fields {
                let mut intern = |n: &str| Slots::intern(list, n);
                match Field::compile(name, fs, &defaults, &lookups, &mut intern) {
                    Ok(f) => out.push(f),
                    Err((key, msg)) => {
                        // A lookup that is in [lookups] but failed to load was reported
                        // already; "there is no lookup named ..." would be wrong.
                        let named = match key {
                            "lookup" => fs.lookup.as_deref(),
                            "allowed" => match &fs.allowed {
                                Some(spec::Allowed::Lookup(l)) => Some(l.as_str()),
                                _ => None,
                            },
                            _ => None,
                        };
                        if named.is_some_and(|l| {
                            spec.lookups.contains_key(l) && !lookups.contains_key(l)
                        }) {
                            continue;
                        }
                        let mut path = vec![section, name.as_str()];
                        if !key.is_empty() {
                            path.push(key);
                        }
                        errors.push(err(&path, msg));
                    }
                }
            }
            out
        };
        let header = compile_section("header", &spec.header, &mut slots.header, &mut errors);
        let line_fields = compile_section("lines", &spec.lines, &mut slots.lines, &mut errors);
        if header.is_empty() && line_fields.is_empty() && errors.is_empty() {
            errors.push(err(
                &["header"],
                "the mapping has no fields: add [header] and/or [lines]".into(),
            ));
        }

        // [document]
        if spec.document.key.is_empty() || spec.document.key.iter().any(|k| k.trim().is_empty()) {
            errors.push(err(
                &["document", "key"],
                "`key` needs at least one column, e.g. [\"InvoiceNo\"]".into(),
            ));
        }
        for k in &spec.document.key {
            Slots::intern(&mut slots.key, k);
        }
        let lines_path: Vec<String> = spec.document.lines.split('.').map(str::to_string).collect();
        if lines_path.iter().any(|p| p.trim().is_empty()) {
            errors.push(err(
                &["document", "lines"],
                format!("{:?} is not a valid name", spec.document.lines),
            ));
        }

        slots.wants_lines = !line_fields.is_empty();

        // Every field must have a place of its own in the payload: `customer` and
        // `customer.id` cannot both be written, nor a header field where the lines go.
        let mut places: Vec<(&[String], String)> = Vec::new();
        for f in &header {
            places.push((&f.path, format!("header.{}", f.name)));
        }
        if !line_fields.is_empty() {
            places.push((
                &lines_path,
                format!("document.lines ({:?})", spec.document.lines),
            ));
        }
        for (i, (a, an)) in places.iter().enumerate() {
            for (b, bn) in &places[i + 1..] {
                let n = a.len().min(b.len());
                if a[..n] == b[..n] {
                    let key_path: Vec<&str> = bn.split(['.', ' ']).take(2).collect();
                    errors.push(err(
                        &key_path,
                        format!(
                            "{bn} and {an} would be written to the same place in the payload ({})",
                            b[..n].join(".")
                        ),
                    ));
                }
            }
        }
        let mut line_places: Vec<&Field> = Vec::new();
        for f in &line_fields {
            if let Some(o) = line_places.iter().find(|o| {
                let n = o.path.len().min(f.path.len());
                o.path[..n] == f.path[..n]
            }) {
                errors.push(err(
                    &["lines", &f.name],
                    format!(
                        "lines.{} and lines.{} would be written to the same place in the payload",
                        f.name, o.name
                    ),
                ));
            }
            line_places.push(f);
        }

        // XML paths are checked now, not when the first file arrives.
        if src.format == SourceFormat::Xml {
            let ns = &src.namespaces;
            let check =
                |path: &str, is_record: bool| crate::source::xml::check_path(path, is_record, ns);
            if let Some(r) = &src.record {
                if let Err(m) = check(r, true) {
                    errors.push(err(&["source", "record"], m));
                }
            }
            if let Some(l) = &src.lines {
                if let Err(m) = check(l, false) {
                    errors.push(err(&["source", "lines"], m));
                }
            }
            for (section, list) in [
                ("header", &slots.header),
                ("lines", &slots.lines),
                ("document", &slots.key),
            ] {
                for p in list.iter() {
                    if let Err(m) = check(p, false) {
                        let key = if section == "document" {
                            vec!["document", "key"]
                        } else {
                            vec![section]
                        };
                        errors.push(err(&key, format!("path {p:?}: {m}")));
                    }
                }
            }
        }

        // [[checks]]
        let mut checks = Vec::new();
        for (i, c) in spec.checks.iter().enumerate() {
            let idx = i.to_string();
            match c.kind {
                CheckKind::Sum => {
                    let lf = line_fields.iter().position(|f| f.name == c.lines_field);
                    let hf = header.iter().position(|f| f.name == c.equals);
                    let numeric =
                        |f: &Field| matches!(f.kind, Kind::Decimal { .. } | Kind::Integer { .. });
                    // a field that failed to compile was reported already
                    match lf {
                        None if spec.lines.contains_key(&c.lines_field) => {}
                        None => errors.push(err(
                            &["checks", &idx, "lines_field"],
                            format!("there is no field {:?} in [lines]", c.lines_field),
                        )),
                        Some(i) if !numeric(&line_fields[i]) => errors.push(err(
                            &["checks", &idx, "lines_field"],
                            format!(
                                "lines field {:?} must have type decimal or integer",
                                c.lines_field
                            ),
                        )),
                        _ => {}
                    }
                    match hf {
                        None if spec.header.contains_key(&c.equals) => {}
                        None => errors.push(err(
                            &["checks", &idx, "equals"],
                            format!("there is no field {:?} in [header]", c.equals),
                        )),
                        Some(i) if !numeric(&header[i]) => errors.push(err(
                            &["checks", &idx, "equals"],
                            format!(
                                "header field {:?} must have type decimal or integer",
                                c.equals
                            ),
                        )),
                        _ => {}
                    }
                    let tolerance = match &c.tolerance {
                        None => Decimal::ZERO,
                        Some(t) => value::decimal_from_config(&t.as_text())
                            .filter(|d| !d.is_sign_negative())
                            .unwrap_or_else(|| {
                                errors.push(err(
                                    &["checks", &idx, "tolerance"],
                                    format!(
                                        "tolerance {:?} must be a number of 0 or more",
                                        t.as_text()
                                    ),
                                ));
                                Decimal::ZERO
                            }),
                    };
                    if let (Some(l), Some(h)) = (lf, hf) {
                        checks.push(SumCheck {
                            line_field: l,
                            header_field: h,
                            tolerance,
                        });
                    }
                }
            }
        }

        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok(Mapping {
            name: spec.name,
            file: file.to_path_buf(),
            document_type: spec.document_type,
            match_globs: spec.match_globs,
            globs,
            source: SourceOptions {
                format: src.format,
                encoding,
                csv: CsvOptions {
                    delimiter,
                    quote,
                    header: src.header,
                    skip_lines: src.skip_lines,
                },
                xml: XmlOptions {
                    record: src.record.clone(),
                    lines: src.lines.clone(),
                    namespaces: src.namespaces.clone(),
                },
                budget: Budget::default(),
            },
            key: spec.document.key,
            lines_path,
            lines_wrap: spec.document.lines_wrap.clone(),
            lines_first: spec.document.lines_first,
            on_invalid: spec.document.on_invalid,
            header,
            line_fields,
            lookups,
            checks,
            slots,
        })
    }

    /// Whether this mapping takes a file of this name (globs match case-insensitively).
    pub fn matches(&self, file_name: &str) -> bool {
        self.globs.is_match(file_name)
    }

    /// Maps one document. Never fails: what is wrong becomes the document's problems.
    pub fn map_document(&self, raw: &RawDocument, file: &str, run: &str) -> MappedDocument {
        self.map_document_with(raw, file, run, true)
    }

    /// Maps one document; without `payload` only its problems are found (a check with
    /// nothing to emit or submit builds no payload tree).
    pub fn map_document_with(
        &self,
        raw: &RawDocument,
        file: &str,
        run: &str,
        payload: bool,
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
                let ctx = EvalCtx { row, file, run };
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

/// `address.city = { from = "City" }` is a table `address` in TOML, so serde says
/// "unknown field "city"" under `header.address`: say what to write instead. (An
/// unknown option such as `requird = true` is not a table and gets no hint.)
fn dotted_name_hint(mut e: ConfigError, text: &str) -> ConfigError {
    let key = e.key.clone().unwrap_or_default();
    let parts: Vec<&str> = key.split('.').collect();
    if parts.len() != 3
        || !matches!(parts[0], "header" | "lines")
        || !e.message.starts_with("unknown field")
    {
        return e;
    }
    let Ok(doc) = toml_edit::ImDocument::parse(text.to_string()) else {
        return e;
    };
    let mut cur = doc
        .as_table()
        .get(parts[0])
        .and_then(|i| i.as_table_like())
        .and_then(|t| t.get(parts[1]))
        .and_then(|i| i.as_table_like())
        .and_then(|t| t.get(parts[2]));
    let mut name = vec![parts[1].to_string(), parts[2].to_string()];
    // follow `a.b.c = {...}` down to the table that holds the field's options
    loop {
        let Some(table) = cur.and_then(|i| i.as_table_like()) else {
            return e;
        };
        if ["from", "value", "template"]
            .iter()
            .any(|k| table.contains_key(k))
            || table.len() != 1
        {
            break;
        }
        let Some((k, v)) = table.iter().next() else {
            break;
        };
        name.push(k.to_string());
        cur = Some(v);
    }
    e.message = format!(
        "{}; a field name with dots must be quoted: \"{}\" = {{ ... }}",
        e.message,
        name.join(".")
    );
    e
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
