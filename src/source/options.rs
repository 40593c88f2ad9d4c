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
    pub csv: CsvOptions,
    pub xml: XmlOptions,
    pub sheet: SheetOptions,
    pub json: JsonOptions,
    pub budget: Budget,
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
