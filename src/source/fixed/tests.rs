use super::*;
use crate::source::FixedOptions;
use indexmap::IndexMap;

fn reader<'a>(text: &'a [u8], enc: &'static encoding_rs::Encoding) -> FixedReader<&'a [u8]> {
    skipping(text, enc, 0)
}

fn skipping<'a>(
    text: &'a [u8],
    enc: &'static encoding_rs::Encoding,
    skip_lines: usize,
) -> FixedReader<&'a [u8]> {
    let mut columns = IndexMap::new();
    columns.insert("A".to_string(), FixedColumn { start: 0, width: 3 });
    columns.insert("B".to_string(), FixedColumn { start: 3, width: 4 });
    let opts = SourceOptions {
        format: crate::source::SourceFormat::Fixed,
        encoding: Some(enc),
        code_page: None,
        csv: crate::source::CsvOptions {
            delimiter: b',',
            quote: b'"',
            header: false,
            skip_lines,
        },
        xml: Default::default(),
        fixed: FixedOptions {
            columns,
            types: IndexMap::new(),
        },
        rows: Default::default(),
        sheet: Default::default(),
        json: Default::default(),
        budget: Default::default(),
    };
    FixedReader::open(text, Rc::default(), &opts)
}

#[test]
fn positions_are_characters_after_decoding() {
    // "Жук" is three characters, six bytes in UTF-8 and three in Windows-1251
    let (cp, _, _) = encoding_rs::WINDOWS_1251.encode("ЖукЁлка\n");
    for (bytes, enc) in [
        ("ЖукЁлка\n".as_bytes().to_vec(), encoding_rs::UTF_8),
        (cp.into_owned(), encoding_rs::WINDOWS_1251),
    ] {
        let mut r = reader(&bytes, enc);
        assert!(r.next_row().unwrap());
        let a = r.resolve("A", None).unwrap();
        let b = r.resolve("B", None).unwrap();
        assert_eq!(r.value(a).unwrap(), "Жук");
        assert_eq!(r.value(b).unwrap(), "Ёлка");
        assert!(!r.next_row().unwrap());
    }
}

#[test]
fn a_short_line_says_where_it_ends() {
    let mut r = reader(b"abcde\r\n", encoding_rs::UTF_8);
    assert!(r.next_row().unwrap());
    let b = r.resolve("B", None).unwrap();
    let p = r.value(b).unwrap_err();
    assert_eq!(p.line, Some(1));
    assert_eq!(p.value.as_deref(), Some("de"));
    assert!(p.text.contains("ends at character 5"), "{}", p.text);
    assert!(r.resolve("C", None).is_err());
}

#[test]
fn title_lines_are_skipped_unread_and_still_counted() {
    // a title with a NUL and a byte UTF-8 lacks, a blank line: two lines skipped
    let mut r = skipping(b"TITLE\xff\0\n\nabcdefg\n\nhijklmn", encoding_rs::UTF_8, 2);
    assert!(r.next_row().unwrap());
    assert_eq!(r.line(), 3);
    assert_eq!(r.value(r.resolve("A", None).unwrap()).unwrap(), "abc");
    assert!(r.next_row().unwrap());
    assert_eq!(
        r.line(),
        5,
        "blank lines after the titles are still no rows"
    );
    assert_eq!(r.value(r.resolve("B", None).unwrap()).unwrap(), "klmn");
    assert!(!r.next_row().unwrap());
    // fewer lines than skip_lines: no row, and reading on stays at the end
    for text in [&b""[..], b"TITLE", b"TITLE\r\n"] {
        let mut r = skipping(text, encoding_rs::UTF_8, 3);
        assert!(!r.next_row().unwrap(), "{text:?}");
        assert!(!r.next_row().unwrap(), "{text:?}");
    }
}
