//! The mapping file as written (`mappings/*.toml`), before it is compiled.
//!
//! These types mirror SPEC's "Mapping files" section one to one; unknown keys are
//! rejected so that a misspelt option is an error, not a silently ignored line.

use crate::source::SourceFormat;
use indexmap::IndexMap;
use serde::Deserialize;

/// A mapping file, as deserialised.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingSpec {
    pub name: String,
    #[serde(rename = "match")]
    pub match_globs: Vec<String>,
    pub document_type: String,
    #[serde(default)]
    pub source: SourceSpec,
    pub document: DocumentSpec,
    #[serde(default)]
    pub header: IndexMap<String, FieldSpec>,
    #[serde(default)]
    pub lines: IndexMap<String, FieldSpec>,
    #[serde(default)]
    pub lookups: IndexMap<String, LookupSpec>,
    #[serde(default)]
    pub checks: Vec<CheckSpec>,
    #[serde(default)]
    pub report: ReportSpec,
    /// `[[skip]]`: rows that make no document.
    #[serde(default)]
    pub skip: Vec<SkipSpec>,
}

/// `rounding` of a decimal field with `scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rounding {
    /// `12.345` with scale 2 is `12.35` (the default).
    #[default]
    HalfAwayFromZero,
    /// `12.345` with scale 2 is a `type` error: an amount is never changed silently.
    Error,
}

/// `[report]`: how the error report for a spreadsheet is written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    /// The delimiter of `FILE.errors.csv` (default: the source's, for CSV sources, so
    /// that Excel in the users' locale opens it in columns; `,` otherwise).
    pub delimiter: Option<String>,
}

/// `[source]`: the format of the files and how to read them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    #[serde(default)]
    pub format: SourceFormat,
    pub delimiter: Option<String>,
    pub quote: Option<String>,
    pub encoding: Option<String>,
    #[serde(default = "yes")]
    pub header: bool,
    /// Physical lines to skip before the header (report titles some exports put on top).
    #[serde(default)]
    pub skip_lines: usize,
    pub decimal_separator: Option<String>,
    pub thousands_separator: Option<String>,
    pub date_format: Option<String>,
    pub datetime_format: Option<String>,
    /// XML: absolute path of the element that is one document.
    pub record: Option<String>,
    /// XML: path, relative to the record, of the elements that are its lines.
    pub lines: Option<String>,
    /// XML: namespace prefixes usable in paths.
    #[serde(default)]
    pub namespaces: IndexMap<String, String>,
    /// Fixed width: `[source.columns]` (every record type) and `[source.columns.H]`.
    #[serde(default)]
    pub columns: IndexMap<String, ColumnEntry>,
    /// CSV and fixed width: the column that says what a row is.
    pub record_type: Option<RecordTypeSpec>,
    /// `[source.trailer]`: the control totals of the file's last row.
    pub trailer: Option<TrailerSpec>,
    /// Workbooks (xlsx, xls, ods): the sheet's name; default the first sheet.
    pub sheet: Option<String>,
}

/// `InvoiceNo = { start = 2, width = 10 }`, or a record type's own table of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ColumnEntry {
    Column(ColumnSpec),
    Type(IndexMap<String, ColumnSpec>),
}

/// A fixed-width column: 1-based first character and width, in characters.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    pub start: i64,
    pub width: i64,
}

/// `record_type = { column = "RecType", header = "H", line = "L", trailer = "T" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordTypeSpec {
    pub column: ColumnRef,
    pub header: String,
    pub line: Option<String>,
    pub trailer: Option<String>,
}

/// `[source.trailer]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrailerSpec {
    pub count: Option<ColumnRef>,
    pub sum: Option<TrailerSumSpec>,
}

/// `sum = { column = "TotalAmount", of = "LineTotal" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrailerSumSpec {
    pub column: ColumnRef,
    pub of: ColumnRef,
}

/// One `[[skip]]`: `column` with `equals = [...]` or `matches = "REGEX"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipSpec {
    pub column: ColumnRef,
    pub equals: Option<Vec<String>>,
    pub matches: Option<String>,
}

impl Default for SourceSpec {
    fn default() -> Self {
        SourceSpec {
            format: SourceFormat::Csv,
            delimiter: None,
            quote: None,
            encoding: None,
            header: true,
            skip_lines: 0,
            decimal_separator: None,
            thousands_separator: None,
            date_format: None,
            datetime_format: None,
            record: None,
            lines: None,
            namespaces: IndexMap::new(),
            columns: IndexMap::new(),
            record_type: None,
            trailer: None,
            sheet: None,
        }
    }
}

fn yes() -> bool {
    true
}

fn default_lines() -> String {
    "lines".to_string()
}

/// `on_invalid`: what an invalid document does to its file (the whole file is refused,
/// or only that document is left out).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnInvalid {
    #[default]
    RejectFile,
    SkipDocument,
}

/// `[document]`: the key, where the lines go in the payload, and `on_invalid`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentSpec {
    /// Column names, or numbers in a file without a header row (`key = [2]`, as
    /// `from = 2`).
    #[serde(deserialize_with = "column_list")]
    pub key: Vec<String>,
    #[serde(default = "default_lines")]
    pub lines: String,
    #[serde(default)]
    pub on_invalid: OnInvalid,
    /// Writes the lines array as `[[WRAP, [line, ...]]]`: the shape of ORM-style APIs
    /// such as Tryton's (`lines_wrap = "create"`).
    pub lines_wrap: Option<String>,
    /// Writes the lines before the header fields (eConnect's schema wants line items
    /// first); by default they come after.
    #[serde(default)]
    pub lines_first: bool,
    /// What a document accepted before whose content changed is: a `conflict`, or an
    /// `update` sent with the ERP's id for it.
    #[serde(default)]
    pub on_change: OnChange,
    /// The file lists every record of its kind (a full export).
    #[serde(default)]
    pub snapshot: bool,
    /// With `snapshot`: what becomes of a document this mapping created that the
    /// snapshot no longer lists.
    #[serde(default)]
    pub on_missing: OnMissing,
    /// With `on_missing = "delete"`: how many deletes a snapshot may ask for, a number
    /// or a share (`"10%"`) of the documents this mapping has in the ERP; more and the
    /// file is refused whole (a truncated export must not wipe the ERP's list).
    pub max_deletes: Option<MaxDeletes>,
}

/// `[document] on_change`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnChange {
    /// Changed content of a document accepted before is a `conflict` error.
    #[default]
    Conflict,
    /// It is sent as an update.
    Update,
}

/// `[document] on_missing`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnMissing {
    /// Documents the snapshot no longer lists are left alone.
    #[default]
    Ignore,
    /// They are deleted in the ERP (or deactivated, with the target's `delete.body`).
    Delete,
}

/// `max_deletes = 25` or `max_deletes = "10%"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum MaxDeletes {
    Count(i64),
    Text(String),
}

/// `from = "Column"` or, in a file without a header row, `from = 3` (1-based).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ColumnRef {
    Name(String),
    Index(i64),
}

/// A list of columns, each a name or a number (`["InvoiceNo"]`, `[2]`), as text.
fn column_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let list: Vec<ColumnRef> = Deserialize::deserialize(d)?;
    Ok(list.iter().map(ColumnRef::as_string).collect())
}

impl ColumnRef {
    /// The column as the source knows it: its name, or its number as text.
    pub fn as_string(&self) -> String {
        match self {
            ColumnRef::Name(s) => s.clone(),
            ColumnRef::Index(i) => i.to_string(),
        }
    }
}

/// `type`: what a field's text is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Integer,
    Decimal,
    Date,
    Datetime,
    Boolean,
}

/// `case`: a field's text in upper or lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Case {
    Upper,
    Lower,
}

/// `allowed = ["A", "B"]` or `allowed = "lookup_name"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Allowed {
    List(Vec<String>),
    Lookup(String),
}

/// A scalar written in TOML: `min = 0`, `min = "0.01"`, `value = true`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl Scalar {
    /// The scalar as the text a source cell would hold.
    pub fn as_text(&self) -> String {
        match self {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Str(s) => s.clone(),
        }
    }
}

/// One field's table in `[header]` or `[lines]`: where its text comes from and the
/// steps it goes through.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    pub from: Option<ColumnRef>,
    pub value: Option<Scalar>,
    pub template: Option<String>,
    pub trim: Option<bool>,
    pub map: Option<IndexMap<String, String>>,
    pub default: Option<Scalar>,
    #[serde(default)]
    pub required: bool,
    #[serde(rename = "type")]
    pub field_type: Option<FieldType>,
    pub format: Option<String>,
    pub decimal_separator: Option<String>,
    pub thousands_separator: Option<String>,
    pub scale: Option<u32>,
    pub case: Option<Case>,
    pub max_length: Option<usize>,
    #[serde(default)]
    pub truncate: bool,
    pub pattern: Option<String>,
    /// With `scale`: what a value with more decimals becomes (rounded half away from
    /// zero, or a `type` error).
    pub rounding: Option<Rounding>,
    /// What `pattern` asks for in a finance user's words ("an IBAN: two letters, two
    /// digits, then up to 30 letters or digits"), shown instead of the expression.
    pub pattern_message: Option<String>,
    pub min: Option<Scalar>,
    pub max: Option<Scalar>,
    pub lookup: Option<String>,
    pub allowed: Option<Allowed>,
    #[serde(default)]
    pub json_number: bool,
    /// The ERP's id of that mapping's accepted document with this key (`ref =
    /// "crm-customers"`): the cross-reference that builds itself.
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    /// How the field is named in messages for finance users ("Terms code").
    pub label: Option<String>,
}

/// One `[lookups]` entry: a CSV file of keys, and of values for `lookup`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupSpec {
    pub file: String,
    pub key: String,
    pub value: Option<String>,
    pub delimiter: Option<String>,
    pub encoding: Option<String>,
    /// Compare keys without regard to letter case.
    #[serde(default)]
    pub ignore_case: bool,
}

/// The kinds of `[[checks]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    Sum,
}

/// One `[[checks]]` entry: the lines' field whose sum must equal a header field.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    pub kind: CheckKind,
    pub lines_field: String,
    pub equals: String,
    pub tolerance: Option<Scalar>,
}
