use super::parse_amount;
use rust_decimal::Decimal;
use std::str::FromStr;

#[test]
fn amounts_are_exact_with_the_mappings_separators() {
    let d = |s: &str| Decimal::from_str(s).unwrap();
    assert_eq!(parse_amount("1234.56", '.', None), Some(d("1234.56")));
    assert_eq!(
        parse_amount(" 1.234,56 ", ',', Some('.')),
        Some(d("1234.56"))
    );
    assert_eq!(parse_amount("125.00-", '.', None), Some(d("-125.00")));
    assert_eq!(parse_amount("-0.10", '.', None), Some(d("-0.10")));
    // 0.1 + 0.2 is 0.3, not binary floating point noise
    let sum = parse_amount("0.1", '.', None).unwrap() + parse_amount("0.2", '.', None).unwrap();
    assert_eq!(sum, d("0.3"));
    for bad in ["", "abc", "1e5", "--1", "1.2.3"] {
        assert_eq!(parse_amount(bad, '.', None), None, "{bad}");
    }
}

use super::{RowDocuments, RowReader};
use crate::problem::{Code, Problem};
use crate::source::{
    Budget, DocumentSource, RawDocument, RecordTypes, RowKind, RowRules, SkipRule, Slots,
    SourceError, TrailerRule,
};

/// Rows of named cells, as a spreadsheet or JSON-lines reader would give them.
struct Cells {
    columns: Vec<&'static str>,
    rows: Vec<Vec<&'static str>>,
    at: usize,
}

impl RowReader for Cells {
    fn next_row(&mut self) -> Result<bool, SourceError> {
        self.at += 1;
        Ok(self.at <= self.rows.len())
    }
    fn line(&self) -> u64 {
        self.at as u64 + 1
    }
    fn resolve(&self, name: &str, _kind: Option<RowKind>) -> Result<usize, String> {
        self.columns
            .iter()
            .position(|c| *c == name)
            .ok_or_else(|| format!("no column {name:?}"))
    }
    fn value(&self, col: usize) -> Result<&str, Problem> {
        Ok(self.rows[self.at - 1].get(col).copied().unwrap_or(""))
    }
    fn column_name(&self, col: usize) -> String {
        self.columns[col].to_string()
    }
    fn bytes_read(&self) -> u64 {
        0
    }
}

fn read(
    rows: Vec<Vec<&'static str>>,
    rules: &RowRules,
) -> (Vec<RawDocument>, Option<Problem>, u64) {
    let cells = Cells {
        columns: vec!["T", "No", "Status", "Item", "Amount"],
        rows,
        at: 0,
    };
    let slots = Slots {
        header: vec!["No".into()],
        lines: vec!["Item".into(), "Amount".into()],
        key: vec!["No".into()],
        wants_lines: true,
    };
    let mut src = RowDocuments::open(cells, &slots, rules, Budget::default()).unwrap();
    let (mut docs, mut fatal) = (Vec::new(), None);
    while let Some(d) = src.next_document() {
        match d {
            Ok(d) => docs.push(d),
            Err(SourceError::Fatal(p)) => fatal = Some(p),
            Err(e) => panic!("{e:?}"),
        }
    }
    (docs, fatal, src.skipped())
}

fn hlt() -> RowRules {
    RowRules {
        record_type: Some(RecordTypes {
            column: "T".into(),
            header: "H".into(),
            line: Some("L".into()),
            trailer: Some("T".into()),
        }),
        skip: vec![SkipRule {
            column: "Status".into(),
            equals: vec!["VOID".into()],
            matches: None,
        }],
        trailer: Some(TrailerRule {
            count: Some("Item".into()),
            sum: Some(("Amount".into(), "Amount".into())),
        }),
        ..RowRules::default()
    }
}

#[test]
fn any_row_reader_gets_record_types_skips_and_the_trailer() {
    let rows = vec![
        vec!["H", "A", "OPEN"],
        vec!["L", "", "", "x", "1.10"],
        vec!["L", "", "", "y", "2.20"],
        vec!["H", "B", "VOID"],
        vec!["L", "", "", "z", "0.01"],
        vec!["H", "C", "OPEN"],
        vec!["T", "", "", "6", "3.31"],
    ];
    let (docs, fatal, skipped) = read(rows.clone(), &hlt());
    assert!(fatal.is_none(), "{fatal:?}");
    let keys: Vec<String> = docs.iter().map(RawDocument::key_display).collect();
    assert_eq!(keys, ["A", "C"]);
    assert_eq!(docs[0].lines.len(), 2);
    assert_eq!(docs[0].lines[1].get(1), Some("2.20"));
    assert_eq!(docs[0].rows, 3);
    assert!(docs[1].lines.is_empty());
    assert_eq!(skipped, 2);

    // one cent off: every document is still read, then the file is incomplete
    let mut off = rows;
    off[6] = vec!["T", "", "", "6", "3.30"];
    let (docs, fatal, _) = read(off, &hlt());
    assert_eq!(docs.len(), 2);
    let p = fatal.expect("incomplete");
    assert_eq!(p.code, Code::Incomplete);
    assert_eq!(p.line, Some(8));
    assert_eq!(p.column.as_deref(), Some("Amount"));
}

#[test]
fn without_a_trailer_row_the_file_is_incomplete() {
    let rows = vec![vec!["H", "A", "OPEN"], vec!["L", "", "", "x", "1.10"]];
    let (_, fatal, _) = read(rows, &hlt());
    let p = fatal.expect("incomplete");
    assert_eq!(p.code, Code::Incomplete);
    assert!(p.text.contains("no trailer row"), "{}", p.text);
}
