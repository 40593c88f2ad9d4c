//! Lookup tables: cross-references (source id -> ERP id) and lists of allowed codes,
//! loaded once per run from CSV files.

use super::spec::LookupSpec;
use crate::source::decode::{encoding_for_label, DecodeReader, EncodingError};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A loaded lookup file.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub name: String,
    /// The file as written in the mapping (used in messages: `ref/terms.csv`).
    pub display: String,
    pub path: PathBuf,
    pub has_value: bool,
    ignore_case: bool,
    entries: HashMap<String, String, FastHash>,
}

/// The lookup tables' hasher: their keys come from the configuration's files, so a
/// fast hash (FNV-1a) is safe and much cheaper than SipHash for the short codes looked
/// up once per field and row.
type FastHash = std::hash::BuildHasherDefault<Fnv>;

/// FNV-1a, the hasher of the lookup tables (see `FastHash`).
#[derive(Default)]
pub struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

impl Lookup {
    /// Loads the lookup's CSV file. The delimiter is sniffed from the header row unless
    /// given. Errors are plain sentences; the caller adds file and line of the mapping.
    pub fn load(name: &str, spec: &LookupSpec, path: &Path) -> Result<Lookup, String> {
        let encoding = match &spec.encoding {
            Some(l) => encoding_for_label(l).ok_or_else(|| format!("unknown encoding {l:?}"))?,
            None => encoding_rs::UTF_8,
        };
        let file = std::fs::File::open(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let mut bytes = Vec::new();
        DecodeReader::new(file, encoding)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        // UTF-8 passes the decoder unchecked: name the line of a bad byte here.
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let len = e.utf8_error().error_len().unwrap_or(1);
            let bytes = e.as_bytes();
            let err = EncodingError {
                encoding: encoding_rs::UTF_8.name(),
                line: crate::source::count_newlines(&bytes[..at]) + 1,
                bytes: bytes[at..(at + len).min(bytes.len())].to_vec(),
            };
            format!("cannot read {}: {err}", path.display())
        })?;
        let delimiter = match &spec.delimiter {
            Some(d) => {
                single_byte(d).ok_or_else(|| format!("delimiter {d:?} must be one character"))?
            }
            None => sniff_delimiter(&text),
        };
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .from_reader(text.as_bytes());
        let headers: Vec<String> = rdr
            .headers()
            .map_err(|e| format!("{} is not valid CSV: {e}", spec.file))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        let find = |col: &str| {
            headers
                .iter()
                .position(|h| h == col)
                .or_else(|| headers.iter().position(|h| h.eq_ignore_ascii_case(col)))
                .ok_or_else(|| {
                    format!(
                        "{} has no column {col:?} (its columns are {})",
                        spec.file,
                        headers
                            .iter()
                            .map(|h| format!("{h:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
        };
        let key_idx = find(&spec.key)?;
        let value_idx = match &spec.value {
            Some(v) => Some(find(v)?),
            None => None,
        };
        let mut entries: HashMap<String, String, FastHash> = HashMap::default();
        // the line each key was first seen on, to name both lines of a conflict
        let mut first_line: HashMap<String, u64, FastHash> = HashMap::default();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| format!("{} is not valid CSV: {e}", spec.file))?;
            let line = rec.position().map(|p| p.line()).unwrap_or(0);
            let Some(k) = rec.get(key_idx).map(str::trim) else {
                continue;
            };
            if k.is_empty() {
                continue;
            }
            let k = if spec.ignore_case {
                k.to_lowercase()
            } else {
                k.to_string()
            };
            let v = value_idx
                .and_then(|i| rec.get(i))
                .map(str::trim)
                .unwrap_or("")
                .to_string();
            if let Some(old) = entries.get(&k) {
                if *old != v {
                    let first = first_line.get(&k).copied().unwrap_or(0);
                    return Err(format!(
                        "{} lines {first} and {line}: key {k:?} appears twice with different values ({old:?} on line {first}, {v:?} on line {line})",
                        spec.file
                    ));
                }
            } else if !entries.contains_key(&k) {
                first_line.insert(k.clone(), line);
            }
            entries.insert(k, v);
        }
        Ok(Lookup {
            name: name.to_string(),
            display: spec.file.clone(),
            path: path.to_path_buf(),
            has_value: value_idx.is_some(),
            ignore_case: spec.ignore_case,
            entries,
        })
    }

    /// The value for a key (`None`: no entry).
    pub fn get(&self, key: &str) -> Option<&str> {
        if self.ignore_case {
            self.entries.get(&key.to_lowercase()).map(String::as_str)
        } else {
            self.entries.get(key).map(String::as_str)
        }
    }

    /// Whether `key` is in the table (without regard to case with `ignore_case`).
    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// How many keys the table holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table holds no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `";"` -> `b';'`; `"\t"` and `"tab"` -> tab.
pub fn single_byte(s: &str) -> Option<u8> {
    match s {
        "\\t" | "tab" | "\t" => Some(b'\t'),
        _ if s.len() == 1 && s.is_ascii() => Some(s.as_bytes()[0]),
        _ => None,
    }
}

/// Picks the delimiter of a small CSV file from its first line.
fn sniff_delimiter(text: &str) -> u8 {
    let first = text.lines().next().unwrap_or("");
    [b',', b';', b'\t', b'|']
        .into_iter()
        .max_by_key(|&d| first.bytes().filter(|&b| b == d).count())
        .filter(|&d| first.as_bytes().contains(&d))
        .unwrap_or(b',')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(file: &str, key: &str, value: Option<&str>) -> LookupSpec {
        LookupSpec {
            file: file.into(),
            key: key.into(),
            value: value.map(Into::into),
            delimiter: None,
            encoding: None,
            ignore_case: false,
        }
    }

    #[test]
    fn loads_semicolon_file_and_finds_values() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        std::fs::write(
            &p,
            "\u{feff}crm_id;erp_id\nC1;CUST-0001\n C2 ; CUST-0002 \n",
        )
        .unwrap();
        let l = Lookup::load("customers", &spec("x.csv", "crm_id", Some("erp_id")), &p).unwrap();
        assert_eq!(l.get("C1"), Some("CUST-0001"));
        assert_eq!(l.get("C2"), Some("CUST-0002"));
        assert_eq!(l.get("C3"), None);
    }

    #[test]
    fn conflicting_duplicate_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        std::fs::write(&p, "k,v\na,1\na,2\n").unwrap();
        let err = Lookup::load("x", &spec("x.csv", "k", Some("v")), &p).unwrap_err();
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn missing_column_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        std::fs::write(&p, "code\nN30\n").unwrap();
        let err = Lookup::load("x", &spec("x.csv", "id", None), &p).unwrap_err();
        assert!(err.contains("no column \"id\""), "{err}");
    }
}
