//! Reading CSV files: lines, keys, grouping, the end of the input and bad bytes.

use super::*;
use crate::source::{CsvOptions, DocumentSource, SourceFormat, XmlOptions};

fn slots(header: &[&str], lines: &[&str], key: &[&str]) -> Slots {
    let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
    Slots {
        header: v(header),
        lines: v(lines),
        key: v(key),
        wants_lines: !lines.is_empty(),
    }
}

fn opts(delim: u8) -> SourceOptions {
    SourceOptions {
        format: SourceFormat::Csv,
        encoding: None,
        code_page: None,
        csv: CsvOptions {
            delimiter: delim,
            quote: b'"',
            header: true,
            skip_lines: 0,
        },
        xml: XmlOptions::default(),
        fixed: Default::default(),
        rows: Default::default(),
        sheet: Default::default(),
        json: Default::default(),
        budget: Budget::default(),
    }
}

fn read_all(text: &[u8], s: &Slots, g: Grouping) -> Result<Vec<RawDocument>, SourceError> {
    read_with(text, s, g, Budget::default())
}

fn read_with(
    text: &[u8],
    s: &Slots,
    g: Grouping,
    budget: Budget,
) -> Result<Vec<RawDocument>, SourceError> {
    let tap = Rc::new(RefCell::new(Tap::default()));
    let o = SourceOptions {
        budget,
        ..opts(b';')
    };
    let mut src = CsvSource::open(text, tap, &o, s, g).map_err(SourceError::Fatal)?;
    let mut out = Vec::new();
    while let Some(d) = src.next_document() {
        out.push(d?);
    }
    Ok(out)
}

#[test]
fn quoted_newline_moves_later_lines_down() {
    let text = b"No;Desc;Amt\r\n1;\"two\r\nlines\";5\r\n2;x;6\r\n";
    let s = slots(&["No"], &["Desc", "Amt"], &["No"]);
    let docs = read_all(text, &s, Grouping::Grouped).unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].line, 2);
    assert_eq!(docs[0].lines[0].get(0), Some("two\r\nlines"));
    assert_eq!(docs[1].line, 4);
}

#[test]
fn rows_sharing_a_key_are_one_document() {
    let text = b"No;Item\n1;a\n1;b\n2;c\n";
    let s = slots(&["No"], &["Item"], &["No"]);
    let docs = read_all(text, &s, Grouping::Grouped).unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].lines.len(), 2);
    assert_eq!(docs[0].rows, 2);
}

#[test]
fn a_key_that_comes_back_asks_for_ungrouped_mode() {
    let text = b"No;Item\n1;a\n2;b\n1;c\n";
    let s = slots(&["No"], &["Item"], &["No"]);
    assert!(matches!(
        read_all(text, &s, Grouping::Grouped),
        Err(SourceError::Ungrouped)
    ));
    let docs = read_all(text, &s, Grouping::Ungrouped).unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].lines.len(), 2);
    assert_eq!(docs[0].lines[1].line, 4);
}

#[test]
fn a_small_budget_spills_and_reads_the_same_documents() {
    // keys 0..300, each on rows far apart: a key comes back long after the key window
    let mut text = b"No;Item\n".to_vec();
    for round in 0..3 {
        for k in 0..300 {
            text.extend_from_slice(format!("{k};item {round}\n").as_bytes());
        }
    }
    let s = slots(&["No"], &["Item"], &["No"]);
    let small = Budget {
        sort_bytes: 512,
        key_window: 4,
    };
    // found by the key log's runs at the end of the file, not in its window
    assert!(matches!(
        read_with(&text, &s, Grouping::Grouped, small),
        Err(SourceError::Ungrouped)
    ));
    let spilled = read_with(&text, &s, Grouping::Ungrouped, small).unwrap();
    let in_memory = read_all(&text, &s, Grouping::Ungrouped).unwrap();
    assert_eq!(format!("{spilled:?}"), format!("{in_memory:?}"));
    assert_eq!(spilled.len(), 300);
    assert_eq!(spilled[7].lines.len(), 3);
    assert_eq!(spilled[7].lines[2].line, 2 + 600 + 7);
}

#[test]
fn blank_and_delimiter_only_lines_are_skipped() {
    let text = b"No;Item\n1;a\n\n;\n  \n";
    let s = slots(&["No"], &["Item"], &["No"]);
    let docs = read_all(text, &s, Grouping::Grouped).unwrap();
    assert_eq!(docs.len(), 1);
}

#[test]
fn differing_header_value_is_a_duplicate() {
    let text = b"No;Cust;Item\n1;C1;a\n1;C2;b\n1;;c\n";
    let s = slots(&["Cust"], &["Item"], &["No"]);
    let docs = read_all(text, &s, Grouping::Grouped).unwrap();
    assert_eq!(docs[0].problems.len(), 1);
    let p = &docs[0].problems[0];
    assert_eq!(p.code, Code::Duplicate);
    assert_eq!(p.line, Some(3));
    assert_eq!(p.value.as_deref(), Some("C2"));
}

#[test]
fn invalid_utf8_names_line_and_column() {
    let text = b"No;Name\n1;ok\n2;\xCE\xCE\xCE\n";
    let s = slots(&["Name"], &[], &["No"]);
    let err = read_all(text, &s, Grouping::Grouped).unwrap_err();
    let SourceError::Fatal(p) = err else { panic!() };
    assert_eq!(p.code, Code::Encoding);
    assert_eq!(p.line, Some(3));
    assert_eq!(p.column.as_deref(), Some("Name"));
}

#[test]
fn a_quote_open_at_the_end_is_malformed_on_its_starting_line() {
    let s = slots(&["Name"], &[], &["No"]);
    for text in [
        &b"No;Name\n1;ok\n\n2;\"cut\noff"[..],
        b"No;Name\n1;ok\n\n2;\"cut\noff\n",
        b"No;Name\r\n1;ok\r\n\r\n2;\"cut\r\n",
    ] {
        let err = read_all(text, &s, Grouping::Grouped).unwrap_err();
        let SourceError::Fatal(p) = err else { panic!() };
        assert_eq!((p.code, p.line), (Code::Malformed, Some(4)), "{text:?}");
    }
    // a closed quote at the very end is fine, with or without the last newline
    for text in [&b"No;Name\n1;\"a\nb\""[..], b"No;Name\n1;\"a\nb\"\n\n"] {
        let docs = read_all(text, &s, Grouping::Grouped).unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].header.get(0), Some("a\nb"));
    }
}

/// Each record of `text` as the reader under [`CsvSource`] sees it: its fields and
/// whether it holds the end of the input (a quote left open).
fn records(text: &[u8]) -> Vec<(Vec<Vec<u8>>, bool)> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(b';')
        .has_headers(false)
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_reader(EndWithNewline::new(BufReader::new(DecodeReader::new(
            TapReader::new(text, Rc::new(RefCell::new(Tap::default()))),
            encoding_rs::UTF_8,
        ))));
    let mut out = Vec::new();
    let mut r = csv::ByteRecord::new();
    while rdr.read_byte_record(&mut r).unwrap() {
        out.push((r.iter().map(<[u8]>::to_vec).collect(), unclosed_quote(&rdr)));
    }
    out
}

#[test]
fn the_end_of_the_input_is_known_by_position_not_by_content() {
    // the record erpdrop once appended to find the end, as a row of the file
    let old = "\0erpdrop:end-of-file\0";
    for text in [
        format!("a;b\n{old}\nc;d\n"),
        format!("a;b\n\"{old}\"\nc;d"),
        format!("a;b\n\"x{old}\n\"\n\n"),
        format!("a;b\n{old}"),
    ] {
        let recs = records(text.as_bytes());
        assert!(recs.iter().all(|(_, open)| !open), "{text:?}: {recs:?}");
        assert!(recs.len() >= 2, "{text:?}: {recs:?}");
        assert_eq!(recs[0].0, vec![b"a".to_vec(), b"b".to_vec()]);
    }
    assert_eq!(records(format!("a;b\n{old}\nc;d\n").as_bytes()).len(), 3);
    // a quote left open holds the end, with or without the last newline
    for text in ["a;b\nc;\"d\n", "a;b\nc;\"d", "a;b\r\nc;\"d\r\ne\r\n"] {
        let recs = records(text.as_bytes());
        assert_eq!(recs.len(), 2, "{text:?}");
        assert!(!recs[0].1 && recs[1].1, "{text:?}: {recs:?}");
    }
    assert!(records(b"").is_empty());
    assert!(records(b"\n\n").is_empty());
}

#[test]
fn a_nul_far_into_the_file_names_its_row_in_either_mode() {
    let mut text = b"No;Item\n".to_vec();
    for i in 0..40_000 {
        text.extend_from_slice(format!("{};item {i}\n", i / 3).as_bytes());
    }
    text.extend_from_slice(b"9;a\xC3\xA9\0b\n1;x\n");
    let s = slots(&["No"], &["Item"], &["No"]);
    for g in [Grouping::Grouped, Grouping::Ungrouped] {
        let Err(SourceError::Fatal(p)) = read_all(&text, &s, g) else {
            panic!("{g:?}: no error")
        };
        assert_eq!(
            (p.code, p.line, p.column.as_deref(), p.value.as_deref()),
            (Code::Encoding, Some(40_002), Some("Item"), Some("0x00")),
            "{g:?}"
        );
    }
}

#[test]
fn missing_column_is_named() {
    let text = b"No;Name\n1;x\n";
    let s = slots(&["Total"], &[], &["No"]);
    let err = read_all(text, &s, Grouping::Grouped).unwrap_err();
    let SourceError::Fatal(p) = err else { panic!() };
    assert_eq!(p.code, Code::MissingColumn);
    assert!(p.message().contains("\"Total\""), "{}", p.message());
}
