//! How a mapping's files are read: the format and its settings, the encoding, and how much
//! memory a source may take before it spills to temporary files.
//!
//! The mapping compiles these from its `[source]` table; the sources read nothing else of
//! the mapping (and nothing of the environment).

use encoding_rs::Encoding;
use indexmap::IndexMap;
use serde::Deserialize;

/// The format of a mapping's files (`source.format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    #[default]
    Csv,
    Xml,
    /// Fixed-width text: columns by position (`[source.columns]`).
    Fixed,
    /// An Excel workbook (Office Open XML), read as a stream of rows.
    Xlsx,
    /// An Excel 97-2003 workbook (BIFF), read whole (at most 65,536 rows).
    Xls,
    /// An OpenDocument spreadsheet, read whole.
    Ods,
    /// JSON: one value with an array of records, or one record per line.
    Json,
}

impl SourceFormat {
    /// A workbook: xlsx, xls or ods.
    pub fn is_sheet(self) -> bool {
        matches!(
            self,
            SourceFormat::Xlsx | SourceFormat::Xls | SourceFormat::Ods
        )
    }

    /// The name as written in a mapping (`format = "xlsx"`).
    pub fn name(self) -> &'static str {
        match self {
            SourceFormat::Csv => "csv",
            SourceFormat::Xml => "xml",
            SourceFormat::Fixed => "fixed",
            SourceFormat::Xlsx => "xlsx",
            SourceFormat::Xls => "xls",
            SourceFormat::Ods => "ods",
            SourceFormat::Json => "json",
        }
    }
}

/// Everything a source needs to read a file.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    pub format: SourceFormat,
    /// `source.encoding` when the mapping sets it. A byte-order mark still wins; without
    /// one, an XML file's own declaration counts only when this is `None`.
    pub encoding: Option<&'static Encoding>,
    /// A DOS code page that encoding_rs lacks (`encoding = "cp437"`; `encoding` is then
    /// UTF-8): CSV and fixed width decode it.
    pub code_page: Option<crate::source::decode::CodePage>,
    pub csv: CsvOptions,
    pub xml: XmlOptions,
    /// Fixed width: where each column stands.
    pub fixed: FixedOptions,
    /// Record types, skipped rows and the trailer: the layer over the rows of a
    /// row-shaped file ([`rows`](crate::source::rows)).
    pub rows: RowRules,
    pub sheet: SheetOptions,
    pub json: JsonOptions,
    pub budget: Budget,
}

/// A fixed-width column: 0-based first character and width, in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedColumn {
    pub start: usize,
    pub width: usize,
}

/// How to read a fixed-width file: the columns every record type has, and those of
/// each record type (`[source.columns.H]`), by name.
#[derive(Debug, Clone, Default)]
pub struct FixedOptions {
    pub columns: IndexMap<String, FixedColumn>,
    pub types: IndexMap<String, IndexMap<String, FixedColumn>>,
}

/// What a row is, by its record type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowKind {
    /// A file without record types: every row is data.
    Data,
    Header,
    Line,
    Trailer,
}

/// `record_type = { column, header, line, trailer }`: the column that holds a row's
/// record type, and the code of each type.
#[derive(Debug, Clone)]
pub struct RecordTypes {
    pub column: String,
    pub header: String,
    pub line: Option<String>,
    pub trailer: Option<String>,
}

impl RecordTypes {
    /// The kind of a row whose record-type column holds `code` (trimmed).
    pub fn kind_of(&self, code: &str) -> Option<RowKind> {
        if code == self.header {
            Some(RowKind::Header)
        } else if self.line.as_deref() == Some(code) {
            Some(RowKind::Line)
        } else if self.trailer.as_deref() == Some(code) {
            Some(RowKind::Trailer)
        } else {
            None
        }
    }

    /// The code of a kind of row.
    pub fn code(&self, kind: RowKind) -> Option<&str> {
        match kind {
            RowKind::Header => Some(&self.header),
            RowKind::Line => self.line.as_deref(),
            RowKind::Trailer => self.trailer.as_deref(),
            RowKind::Data => None,
        }
    }
}

/// One `[[skip]]`: rows whose `column` equals one of `equals` or matches `matches`
/// (anchored) make no document.
#[derive(Debug, Clone)]
pub struct SkipRule {
    pub column: String,
    pub equals: Vec<String>,
    pub matches: Option<regex::Regex>,
}

impl SkipRule {
    /// Whether a row whose column holds `value` (trimmed) is skipped.
    pub fn skips(&self, value: &str) -> bool {
        self.equals.iter().any(|e| e == value)
            || self.matches.as_ref().is_some_and(|r| r.is_match(value))
    }
}

/// `[source.trailer]`: the columns of the trailer row that state how many data rows the
/// file holds and what a column of them adds up to.
#[derive(Debug, Clone, Default)]
pub struct TrailerRule {
    pub count: Option<String>,
    /// (the trailer's column, the data rows' column it sums)
    pub sum: Option<(String, String)>,
}

/// The rules over the rows of a row-shaped file (CSV, fixed width).
#[derive(Debug, Clone)]
pub struct RowRules {
    pub record_type: Option<RecordTypes>,
    pub skip: Vec<SkipRule>,
    pub trailer: Option<TrailerRule>,
    /// How the trailer's sums are written (the mapping's `decimal_separator`).
    pub decimal: char,
    pub thousands: Option<char>,
}

impl Default for RowRules {
    fn default() -> RowRules {
        RowRules {
            record_type: None,
            skip: Vec::new(),
            trailer: None,
            decimal: '.',
            thousands: None,
        }
    }
}

impl RowRules {
    /// Whether any rule is set: a CSV file is then read through the rows layer.
    pub fn any(&self) -> bool {
        self.record_type.is_some() || !self.skip.is_empty() || self.trailer.is_some()
    }
}

/// How to read a workbook (xlsx, xls, ods); `header` and `skip_lines` come from
/// [`CsvOptions`], as for CSV.
#[derive(Debug, Clone, Default)]
pub struct SheetOptions {
    /// The sheet's name; `None`: the first sheet.
    pub sheet: Option<String>,
}

/// How to read JSON.
#[derive(Debug, Clone, Default)]
pub struct JsonOptions {
    /// A JSON pointer to the array of records (`/invoices`); `None`: one record per line.
    pub record: Option<String>,
    /// The member of a record that holds its lines (a path: `lines`, `body/items`).
    pub lines: Option<String>,
}

/// How to read a CSV file.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    pub delimiter: u8,
    pub quote: u8,
    /// The first row (after `skip_lines`) names the columns.
    pub header: bool,
    /// Physical lines to skip before the header (report titles some exports put on top).
    pub skip_lines: usize,
}

/// How to read an XML file: the paths that name its documents and their lines.
#[derive(Debug, Clone, Default)]
pub struct XmlOptions {
    /// The path of the element that is one document (`/Export/Invoice`).
    pub record: Option<String>,
    /// The path of its line elements, relative to the record (`Lines/Line`).
    pub lines: Option<String>,
    /// Namespace prefixes usable in paths, with their URIs.
    pub namespaces: IndexMap<String, String>,
}

/// How much a source keeps in memory before it writes to temporary files: memory stays
/// flat whatever the file's size. The defaults are for production; tests shrink them so
/// that small files spill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Bytes for each of the two sorts of a CSV file that is not grouped by key.
    pub sort_bytes: usize,
    /// Document keys kept in memory to find a repeated one at once (see
    /// [`KeyLog`](crate::source::keys::KeyLog)); older keys go to a temporary file.
    pub key_window: usize,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            sort_bytes: 8 << 20,
            key_window: 48 * 1024,
        }
    }
}
