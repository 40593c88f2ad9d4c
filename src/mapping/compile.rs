//! Reading a mapping file and compiling it, step by step: its names and file patterns,
//! `[source]`, `[lookups]`, the fields, `[document]`, where each field goes in the
//! payload, the XML paths and `[[checks]]`. Every step reports what it finds wrong and
//! goes on, so that `erpdrop check` lists all the problems of a file at once.

use super::field::{Field, FieldDefaults, Kind};
use super::lookup::{single_byte, Lookup};
use super::spec::{self, CheckKind, CheckSpec, DocumentSpec, FieldSpec, MappingSpec, SourceSpec};
use super::{value, Mapping, SumCheck};
use crate::config_error::{parse_toml, ConfigError, ConfigErrors, KeyLocator};
use crate::source::decode::{code_page_for_label, encoding_for_label};
use crate::source::{
    Budget, CsvOptions, JsonOptions, SheetOptions, Slots, SourceFormat, SourceOptions, XmlOptions,
};
use indexmap::IndexMap;
use rust_decimal::Decimal;
use std::path::Path;
use std::sync::Arc;

mod rows;

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
        let mut errors = Errors {
            file,
            loc: KeyLocator::new(text),
            list: Vec::new(),
        };
        check_names(&spec, &mut errors);
        let globs = compile_globs(&spec.match_globs, &mut errors);
        let (mut source, defaults) = compile_source(&spec, &mut errors);
        source.rows = rows::compile_rules(&spec, defaults.decimal, defaults.thousands, &mut errors);
        source.fixed = rows::compile_columns(&spec, &source.rows, &mut errors);
        let lookups = load_lookups(file, base_dir, &spec, &mut errors);
        let mut slots = Slots::default();
        let fields = Sections {
            spec: &spec,
            defaults: &defaults,
            lookups: &lookups,
        };
        let header = fields.compile("header", &spec.header, &mut slots.header, &mut errors);
        let line_fields = fields.compile("lines", &spec.lines, &mut slots.lines, &mut errors);
        if header.is_empty() && line_fields.is_empty() && errors.list.is_empty() {
            errors.at(
                &["header"],
                "the mapping has no fields: add [header] and/or [lines]".into(),
            );
        }
        let lines_path = compile_document(&spec.document, &mut slots, &mut errors);
        let deletes_missing = compile_snapshot(&spec.document, &mut errors);
        slots.wants_lines = !line_fields.is_empty();
        check_places(
            &header,
            &line_fields,
            &lines_path,
            &spec.document,
            &mut errors,
        );
        if source.format == SourceFormat::Fixed {
            rows::check_fixed_reads(&source.fixed, &source.rows, &slots, &mut errors);
        }
        if source.format == SourceFormat::Xml {
            check_xml_paths(&source.xml, &slots, &mut errors);
        }
        if source.format == SourceFormat::Json {
            check_json_paths(&slots, &mut errors);
        }
        let checks = compile_checks(&spec, &header, &line_fields, &mut errors);
        let report_delimiter = match &spec.report.delimiter {
            Some(d) => single_byte(d).filter(|b| !b"\"\r\n".contains(b)).unwrap_or_else(|| {
                errors.at(&["report", "delimiter"], format!("delimiter {d:?} must be a single one-byte character (\";\", \",\", \"\\t\", \"|\")"));
                b','
            }),
            None if source.format == SourceFormat::Csv => source.csv.delimiter,
            None => b',',
        };

        if !errors.list.is_empty() {
            return Err(ConfigErrors(errors.list));
        }
        Ok(Mapping {
            name: spec.name,
            file: file.to_path_buf(),
            document_type: spec.document_type,
            match_globs: spec.match_globs,
            globs,
            source,
            key: spec.document.key,
            lines_path,
            lines_wrap: spec.document.lines_wrap.clone(),
            lines_first: spec.document.lines_first,
            on_invalid: spec.document.on_invalid,
            on_change: spec.document.on_change,
            deletes_missing,
            header,
            line_fields,
            lookups,
            checks,
            slots,
            report_delimiter,
        })
    }
}

/// The problems found so far in one mapping file, each placed on the line of its key.
struct Errors<'a> {
    file: &'a Path,
    loc: KeyLocator,
    list: Vec<ConfigError>,
}

impl Errors<'_> {
    /// A problem under the dotted key `path` (`["source", "delimiter"]`).
    fn at(&mut self, path: &[&str], msg: String) {
        let e = ConfigError::at(self.file, self.loc.line(path), &path.join("."), msg);
        self.list.push(e);
    }
}

/// `name` and `document_type` are not empty.
fn check_names(spec: &MappingSpec, errors: &mut Errors) {
    if spec.name.trim().is_empty() {
        errors.at(&["name"], "the mapping needs a name".into());
    }
    if spec.document_type.trim().is_empty() {
        errors.at(&["document_type"], "document_type is empty".into());
    }
}

/// The `match` patterns, matching file names without regard to case.
fn compile_globs(patterns: &[String], errors: &mut Errors) -> globset::GlobSet {
    let mut gb = globset::GlobSetBuilder::new();
    if patterns.is_empty() {
        errors.at(
            &["match"],
            "`match` needs at least one file pattern, e.g. [\"INV_*.csv\"]".into(),
        );
    }
    for g in patterns {
        match globset::GlobBuilder::new(g)
            .case_insensitive(true)
            .literal_separator(true)
            .build()
        {
            Ok(glob) => {
                gb.add(glob);
            }
            Err(e) => errors.at(&["match"], format!("bad pattern {g:?}: {e}")),
        }
    }
    gb.build().unwrap_or_else(|_| globset::GlobSet::empty())
}

/// `[source]`: how the files are read, and the number and date formats the fields
/// inherit.
fn compile_source(spec: &MappingSpec, errors: &mut Errors) -> (SourceOptions, FieldDefaults) {
    let src = &spec.source;
    let delimiter = match &src.delimiter {
        None => b',',
        Some(d) => single_byte(d).unwrap_or_else(|| {
            errors.at(&["source", "delimiter"], format!("delimiter {d:?} must be a single one-byte character (\";\", \",\", \"\\t\", \"|\")"));
            b','
        }),
    };
    let quote = match &src.quote {
        None => b'"',
        Some(q) => single_byte(q).unwrap_or_else(|| {
            errors.at(
                &["source", "quote"],
                format!("quote {q:?} must be a single one-byte character"),
            );
            b'"'
        }),
    };
    let code_page = src.encoding.as_deref().and_then(code_page_for_label);
    if code_page.is_some() && src.format == SourceFormat::Xml {
        errors.at(
            &["source", "encoding"],
            "an XML file names its encoding in its declaration; cp437 is for csv, fixed and json"
                .into(),
        );
    }
    let encoding = src.encoding.as_ref().map(|l| {
        if code_page.is_some() {
            return encoding_rs::UTF_8;
        }
        encoding_for_label(l).unwrap_or_else(|| {
            errors.at(&["source", "encoding"], format!("unknown encoding {l:?} (e.g. utf-8, utf-16, windows-1251, windows-1252, iso-8859-1, cp437)"));
            encoding_rs::UTF_8
        })
    });
    let mut one_char = |key: &str, v: &Option<String>| -> Option<char> {
        let s = v.as_ref()?;
        let mut c = s.chars();
        match (c.next(), c.next()) {
            (Some(ch), None) => Some(ch),
            (None, _) => None,
            _ => {
                errors.at(
                    &["source", key],
                    format!("{s:?} must be a single character"),
                );
                None
            }
        }
    };
    let decimal = one_char("decimal_separator", &src.decimal_separator).unwrap_or('.');
    let thousands = one_char("thousands_separator", &src.thousands_separator);
    // a bad format is said once, at its key: the fields that inherit it do not repeat it
    let mut usable = |key: &str, fmt: &Option<String>, dt: bool| -> Option<String> {
        let f = fmt.as_ref()?;
        match value::DateFormat::compile(f, dt) {
            Ok(_) => Some(f.clone()),
            Err(m) => {
                errors.at(&["source", key], m);
                None
            }
        }
    };
    let date_format = usable("date_format", &src.date_format, false);
    let datetime_format = usable("datetime_format", &src.datetime_format, true);
    check_format_keys(spec, src, errors);
    let options = SourceOptions {
        format: src.format,
        encoding,
        code_page,
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
        fixed: Default::default(),
        rows: Default::default(),
        sheet: SheetOptions {
            sheet: src.sheet.clone(),
        },
        json: JsonOptions {
            record: src.record.clone(),
            lines: src.lines.clone(),
        },
        budget: Budget::default(),
    };
    let defaults = FieldDefaults {
        decimal,
        thousands,
        date_format,
        datetime_format,
    };
    (options, defaults)
}

/// Each format's own keys are there for it, and only for it: `record` and `lines` for
/// XML and JSON, `sheet` for workbooks, `delimiter`, `quote` and `encoding` for text.
fn check_format_keys(spec: &MappingSpec, src: &SourceSpec, errors: &mut Errors) {
    let format = src.format;
    if format == SourceFormat::Xml && src.record.as_deref().is_none_or(|r| r.trim().is_empty()) {
        errors.at(&["source", "record"], "an XML source needs `record`, the path of the element that is one document (e.g. \"/Export/Invoice\")".into());
    }
    if format == SourceFormat::Xml && !spec.lines.is_empty() && src.lines.is_none() {
        errors.at(&["source", "lines"], "an XML source with [lines] needs `lines`, the path of the line elements relative to the record (e.g. \"Lines/Line\")".into());
    }
    if format == SourceFormat::Json && !spec.lines.is_empty() && src.lines.is_none() {
        errors.at(&["source", "lines"], "a JSON source with [lines] needs `lines`, the member of a record that holds its array of lines (e.g. \"lines\")".into());
    }
    if format == SourceFormat::Json {
        if let Some(r) = &src.record {
            if let Err(m) = crate::source::json::check_pointer(r) {
                errors.at(&["source", "record"], m);
            }
        }
        if let Some(l) = &src.lines {
            if let Err(m) = crate::source::json::check_path(l) {
                errors.at(&["source", "lines"], m);
            }
        }
    }
    // row-shaped text: CSV and fixed width
    let text = matches!(format, SourceFormat::Csv | SourceFormat::Fixed);
    if (text || format.is_sheet()) && (src.record.is_some() || src.lines.is_some()) {
        let key = if src.record.is_some() {
            "record"
        } else {
            "lines"
        };
        errors.at(
            &["source", key],
            format!(
                "`record` and `lines` are for format = \"xml\" and \"json\", not {:?}",
                format.name()
            ),
        );
    }
    if src.sheet.is_some() && !format.is_sheet() {
        errors.at(
            &["source", "sheet"],
            format!(
                "`sheet` is for workbooks (format = \"xlsx\", \"xls\" or \"ods\"), not {:?}",
                format.name()
            ),
        );
    }
    if src.sheet.as_deref().is_some_and(|s| s.trim().is_empty()) {
        errors.at(
            &["source", "sheet"],
            "`sheet` is empty: name a sheet of the workbook, or leave it out to read the first"
                .into(),
        );
    }
    if format != SourceFormat::Csv && format != SourceFormat::Xml {
        for (key, set) in [
            ("delimiter", src.delimiter.is_some()),
            ("quote", src.quote.is_some()),
        ] {
            if set {
                errors.at(
                    &["source", key],
                    format!("`{key}` is for CSV files, not format = {:?}", format.name()),
                );
            }
        }
    }
    if format.is_sheet() && src.encoding.is_some() {
        errors.at(
            &["source", "encoding"],
            "a workbook says its own encoding: `encoding` is for text formats (csv, fixed, xml, json)"
                .into(),
        );
    }
    // an XML or JSON file is one value read by its syntax, not by lines: lines above it
    // would be no title but a broken file
    if matches!(format, SourceFormat::Json | SourceFormat::Xml) && src.skip_lines > 0 {
        errors.at(
            &["source", "skip_lines"],
            format!(
                "`skip_lines` is for CSV, fixed-width files and workbooks, not {}",
                format.name().to_uppercase()
            ),
        );
    }
}

/// `[lookups]`: each file loaded, from the config's folder or else the mapping's.
fn load_lookups(
    file: &Path,
    base_dir: &Path,
    spec: &MappingSpec,
    errors: &mut Errors,
) -> IndexMap<String, Arc<Lookup>> {
    let mapping_dir = file.parent().unwrap_or(Path::new("."));
    let mut lookups = IndexMap::new();
    for (name, ls) in &spec.lookups {
        let beside_config = base_dir.join(&ls.file);
        let beside_mapping = mapping_dir.join(&ls.file);
        let mut path = beside_config.clone();
        if !path.exists() && beside_mapping.exists() {
            path = beside_mapping.clone();
        }
        if !path.exists() {
            // both places that are tried, so that the user sees where it was looked for
            let msg = if beside_config == beside_mapping {
                format!(
                    "lookup file {:?} not found at {} (beside the config and the mapping)",
                    ls.file,
                    beside_config.display()
                )
            } else {
                format!(
                    "lookup file {:?} not found: neither {} (beside the config) nor {} (beside the mapping) exists",
                    ls.file,
                    beside_config.display(),
                    beside_mapping.display()
                )
            };
            errors.at(&["lookups", name, "file"], msg);
            continue;
        }
        match Lookup::load(name, ls, &path) {
            Ok(l) => {
                lookups.insert(name.clone(), Arc::new(l));
            }
            Err(m) => errors.at(&["lookups", name, "file"], m),
        }
    }
    lookups
}

/// What the fields of `[header]` and `[lines]` are compiled with.
struct Sections<'a> {
    spec: &'a MappingSpec,
    defaults: &'a FieldDefaults,
    lookups: &'a IndexMap<String, Arc<Lookup>>,
}

impl Sections<'_> {
    /// The fields of one section; each column they read gets a slot in `list`.
    fn compile(
        &self,
        section: &str,
        fields: &IndexMap<String, FieldSpec>,
        list: &mut Vec<String>,
        errors: &mut Errors,
    ) -> Vec<Field> {
        let mut out = Vec::new();
        for (name, fs) in fields {
            let mut intern = |n: &str| Slots::intern(list, n);
            match Field::compile(name, fs, self.defaults, self.lookups, &mut intern) {
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
                        self.spec.lookups.contains_key(l) && !self.lookups.contains_key(l)
                    }) {
                        continue;
                    }
                    let mut path = vec![section, name.as_str()];
                    if !key.is_empty() {
                        path.push(key);
                    }
                    errors.at(&path, msg);
                }
            }
        }
        out
    }
}

/// `[document]`: the key's columns get their slots; the path of the lines array in the
/// payload (`lines`, or dotted: `body.items`).
fn compile_document(doc: &DocumentSpec, slots: &mut Slots, errors: &mut Errors) -> Vec<String> {
    if doc.key.is_empty() || doc.key.iter().any(|k| k.trim().is_empty()) {
        errors.at(
            &["document", "key"],
            "`key` needs at least one column, e.g. [\"InvoiceNo\"]".into(),
        );
    }
    for k in &doc.key {
        Slots::intern(&mut slots.key, k);
    }
    let lines_path: Vec<String> = doc.lines.split('.').map(str::to_string).collect();
    if lines_path.iter().any(|p| p.trim().is_empty()) {
        errors.at(
            &["document", "lines"],
            format!("{:?} is not a valid name", doc.lines),
        );
    }
    lines_path
}

/// `snapshot`, `on_missing` and `max_deletes`: whether and how many documents that a
/// snapshot no longer lists are deleted.
fn compile_snapshot(doc: &DocumentSpec, errors: &mut Errors) -> Option<super::DeleteLimit> {
    use super::DeleteLimit;
    use spec::{MaxDeletes, OnMissing};
    if doc.on_missing == OnMissing::Delete && !doc.snapshot {
        errors.at(
            &["document", "on_missing"],
            "on_missing = \"delete\" needs snapshot = true: only a file that lists every record says which are gone".into(),
        );
        return None;
    }
    if doc.on_missing != OnMissing::Delete {
        if doc.max_deletes.is_some() {
            errors.at(
                &["document", "max_deletes"],
                "max_deletes limits the deletes of on_missing = \"delete\", which this mapping does not ask for".into(),
            );
        }
        return None;
    }
    let bad = |errors: &mut Errors, text: &str| {
        errors.at(
            &["document", "max_deletes"],
            format!(
                "max_deletes {text} is neither a number of documents (25) nor a share (\"10%\")"
            ),
        );
        None
    };
    match &doc.max_deletes {
        None => Some(DeleteLimit::Share(10)),
        Some(MaxDeletes::Count(n)) if *n >= 0 => Some(DeleteLimit::Count(*n as u64)),
        Some(MaxDeletes::Count(n)) => bad(errors, &n.to_string()),
        Some(MaxDeletes::Text(t)) => match t.trim().strip_suffix('%') {
            Some(p) => match p.trim().parse::<u32>() {
                Ok(p) if p <= 100 => Some(DeleteLimit::Share(p)),
                _ => bad(errors, &format!("{t:?}")),
            },
            None => match t.trim().parse::<u64>() {
                Ok(n) => Some(DeleteLimit::Count(n)),
                Err(_) => bad(errors, &format!("{t:?}")),
            },
        },
    }
}

/// Every field must have a place of its own in the payload: `customer` and
/// `customer.id` cannot both be written, nor a header field where the lines go.
fn check_places(
    header: &[Field],
    line_fields: &[Field],
    lines_path: &[String],
    doc: &DocumentSpec,
    errors: &mut Errors,
) {
    let mut places: Vec<(&[String], String)> = Vec::new();
    for f in header {
        places.push((&f.path, format!("header.{}", f.name)));
    }
    if !line_fields.is_empty() {
        places.push((lines_path, format!("document.lines ({:?})", doc.lines)));
    }
    for (i, (a, an)) in places.iter().enumerate() {
        for (b, bn) in &places[i + 1..] {
            let n = a.len().min(b.len());
            if a[..n] == b[..n] {
                let key_path: Vec<&str> = bn.split(['.', ' ']).take(2).collect();
                errors.at(
                    &key_path,
                    format!(
                        "{bn} and {an} would be written to the same place in the payload ({})",
                        b[..n].join(".")
                    ),
                );
            }
        }
    }
    let mut line_places: Vec<&Field> = Vec::new();
    for f in line_fields {
        if let Some(o) = line_places.iter().find(|o| {
            let n = o.path.len().min(f.path.len());
            o.path[..n] == f.path[..n]
        }) {
            errors.at(
                &["lines", &f.name],
                format!(
                    "lines.{} and lines.{} would be written to the same place in the payload",
                    f.name, o.name
                ),
            );
        }
        line_places.push(f);
    }
}

/// XML paths are checked now, not when the first file arrives.
fn check_xml_paths(xml: &XmlOptions, slots: &Slots, errors: &mut Errors) {
    let check = |path: &str, is_record: bool| {
        crate::source::xml::check_path(path, is_record, &xml.namespaces)
    };
    if let Some(r) = &xml.record {
        if let Err(m) = check(r, true) {
            errors.at(&["source", "record"], m);
        }
    }
    if let Some(l) = &xml.lines {
        if let Err(m) = check(l, false) {
            errors.at(&["source", "lines"], m);
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
                errors.at(&key, format!("path {p:?}: {m}"));
            }
        }
    }
}

/// JSON paths inside a record are checked now, not when the first file arrives.
fn check_json_paths(slots: &Slots, errors: &mut Errors) {
    for (section, list) in [
        ("header", &slots.header),
        ("lines", &slots.lines),
        ("document", &slots.key),
    ] {
        for p in list.iter() {
            if let Err(m) = crate::source::json::check_path(p) {
                let key = if section == "document" {
                    vec!["document", "key"]
                } else {
                    vec![section]
                };
                errors.at(&key, m);
            }
        }
    }
}

/// `[[checks]]`, resolved to the fields they compare.
fn compile_checks(
    spec: &MappingSpec,
    header: &[Field],
    line_fields: &[Field],
    errors: &mut Errors,
) -> Vec<SumCheck> {
    let mut checks = Vec::new();
    for (i, c) in spec.checks.iter().enumerate() {
        match c.kind {
            CheckKind::Sum => {
                if let Some(check) = sum_check(spec, c, &i.to_string(), header, line_fields, errors)
                {
                    checks.push(check);
                }
            }
        }
    }
    checks
}

/// A `sum` check: both fields exist and are numbers, the tolerance is a number.
fn sum_check(
    spec: &MappingSpec,
    c: &CheckSpec,
    idx: &str,
    header: &[Field],
    line_fields: &[Field],
    errors: &mut Errors,
) -> Option<SumCheck> {
    let lf = line_fields.iter().position(|f| f.name == c.lines_field);
    let hf = header.iter().position(|f| f.name == c.equals);
    let numeric = |f: &Field| matches!(f.kind, Kind::Decimal { .. } | Kind::Integer { .. });
    // a field that failed to compile was reported already
    match lf {
        None if spec.lines.contains_key(&c.lines_field) => {}
        None => errors.at(
            &["checks", idx, "lines_field"],
            format!("there is no field {:?} in [lines]", c.lines_field),
        ),
        Some(i) if !numeric(&line_fields[i]) => errors.at(
            &["checks", idx, "lines_field"],
            format!(
                "lines field {:?} must have type decimal or integer",
                c.lines_field
            ),
        ),
        _ => {}
    }
    match hf {
        None if spec.header.contains_key(&c.equals) => {}
        None => errors.at(
            &["checks", idx, "equals"],
            format!("there is no field {:?} in [header]", c.equals),
        ),
        Some(i) if !numeric(&header[i]) => errors.at(
            &["checks", idx, "equals"],
            format!(
                "header field {:?} must have type decimal or integer",
                c.equals
            ),
        ),
        _ => {}
    }
    let tolerance = match &c.tolerance {
        None => Decimal::ZERO,
        Some(t) => value::decimal_from_config(&t.as_text())
            .filter(|d| !d.is_sign_negative())
            .unwrap_or_else(|| {
                errors.at(
                    &["checks", idx, "tolerance"],
                    format!("tolerance {:?} must be a number of 0 or more", t.as_text()),
                );
                Decimal::ZERO
            }),
    };
    Some(SumCheck {
        line_field: lf?,
        header_field: hf?,
        tolerance,
    })
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
    let Ok(doc) = toml_edit::Document::parse(text.to_string()) else {
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
