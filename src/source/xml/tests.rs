//! Reading XML files: records, lines, paths, namespaces, encodings and the problems of
//! files that are not well-formed.

use super::*;
use crate::problem::Stage;
use crate::source::{Budget, CsvOptions, SourceFormat, XmlOptions};
use indexmap::IndexMap;

fn opts(record: &str, lines: Option<&str>, ns: &[(&str, &str)]) -> SourceOptions {
    SourceOptions {
        format: SourceFormat::Xml,
        encoding: None,
        code_page: None,
        csv: CsvOptions {
            delimiter: b',',
            quote: b'"',
            header: true,
            skip_lines: 0,
        },
        xml: XmlOptions {
            record: Some(record.to_string()),
            lines: lines.map(str::to_string),
            namespaces: ns
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        },
        fixed: Default::default(),
        rows: Default::default(),
        sheet: Default::default(),
        json: Default::default(),
        budget: Budget::default(),
    }
}

fn slots(header: &[&str], lines: &[&str], key: &[&str]) -> Slots {
    let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
    Slots {
        header: v(header),
        lines: v(lines),
        key: v(key),
        wants_lines: !lines.is_empty(),
    }
}

fn read_with(bytes: &[u8], o: &SourceOptions, s: &Slots) -> Result<Vec<RawDocument>, Problem> {
    let tap = Rc::new(RefCell::new(Tap::default()));
    let mut src = XmlSource::open(bytes, tap, o, s)?;
    let mut out = Vec::new();
    while let Some(d) = src.next_document() {
        match d {
            Ok(d) => out.push(d),
            Err(SourceError::Fatal(p)) => return Err(p),
            Err(SourceError::Ungrouped) => panic!("XML is never regrouped"),
            Err(SourceError::Repeated(_)) => panic!("the test files are small"),
            Err(SourceError::Environment(e)) => panic!("a temporary file failed: {e}"),
        }
    }
    Ok(out)
}

fn read(
    bytes: &[u8],
    record: &str,
    lines: Option<&str>,
    s: &Slots,
) -> Result<Vec<RawDocument>, Problem> {
    read_with(bytes, &opts(record, lines, &[]), s)
}

const INVOICES: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Export created="2026-11-20">
  <Invoices>
<Invoice id="INV-1" type="sale">
  <Number>INV-1</Number>
  <Customer code="C1"><Name>Acme &amp; Sons</Name></Customer>
  <Lines>
    <Line no="1"><Item>A</Item><Qty>2</Qty></Line>
    <Line no="2">
      <Item>B</Item>
    </Line>
  </Lines>
</Invoice>
<Invoice id="INV-2">
  <Number><![CDATA[INV-]]>2</Number>
  <Lines/>
</Invoice>
  </Invoices>
</Export>
"#;

#[test]
fn records_lines_attributes_and_nested_paths() {
    let s = slots(
        &[
            "Number",
            "@type",
            "Customer/@code",
            "Customer/Name",
            "Missing",
        ],
        &["@no", "Item", "Qty"],
        &["@id"],
    );
    let docs = read(
        INVOICES.as_bytes(),
        "/Export/Invoices/Invoice",
        Some("Lines/Line"),
        &s,
    )
    .unwrap();
    assert_eq!(docs.len(), 2);
    let d = &docs[0];
    assert_eq!(d.key, vec!["INV-1"]);
    assert_eq!(d.line, 4);
    assert_eq!(d.rows, 1);
    assert_eq!(d.header.get(0), Some("INV-1"));
    assert_eq!(d.header.line_of(0), 5);
    assert_eq!(d.header.get(1), Some("sale"));
    assert_eq!(d.header.line_of(1), 4);
    assert_eq!(d.header.get(2), Some("C1"));
    assert_eq!(d.header.line_of(2), 6);
    assert_eq!(d.header.get(3), Some("Acme & Sons"));
    assert_eq!(d.header.get(4), None);
    assert_eq!(d.header.line_of(4), 4);
    assert_eq!(d.lines.len(), 2);
    assert_eq!(d.lines[0].line, 8);
    assert_eq!(d.lines[0].get(0), Some("1"));
    assert_eq!(d.lines[0].get(1), Some("A"));
    assert_eq!(d.lines[0].get(2), Some("2"));
    assert_eq!(d.lines[1].line, 9);
    assert_eq!(d.lines[1].get(1), Some("B"));
    assert_eq!(d.lines[1].line_of(1), 10);
    assert_eq!(d.lines[1].get(2), None);
    assert!(d.problems.is_empty());
    let d = &docs[1];
    assert_eq!(d.key, vec!["INV-2"]);
    assert_eq!(d.header.get(0), Some("INV-2"), "CDATA and text are joined");
    assert_eq!(d.header.get(1), None);
    assert!(d.lines.is_empty());
}

#[test]
fn first_match_wins_and_text_means_own_text() {
    let xml = b"<R><Doc>own<B>1</B>tail<B>2</B><C><![CDATA[x<y]]><!-- no --> z</C><E/></Doc></R>";
    let s = slots(&["B", "text()", ".", "C", "E", "B/text()"], &[], &["B"]);
    let docs = read(xml, "/R/Doc", None, &s).unwrap();
    let h = &docs[0].header;
    assert_eq!(h.get(0), Some("1"));
    assert_eq!(h.get(1), Some("owntail"));
    assert_eq!(h.get(2), Some("own1tail2x<y z"));
    assert_eq!(h.get(3), Some("x<y z"));
    assert_eq!(h.get(4), Some(""), "an empty element is present and empty");
    assert_eq!(h.get(5), Some("1"));
}

#[test]
fn a_value_being_collected_is_kept_when_others_are_found_inside_it() {
    // `.` is collected straight into the record's values until `B/@x`, `B` and the
    // lines' values are found inside it; each value stays whole
    let xml = b"<R><Doc>a<B x='7'>b</B>c<Ls><L>1<M>m</M></L><L>2</L></Ls>d</Doc></R>";
    let s = slots(&[".", "B/@x", "B", "Ls"], &[".", "M"], &["B/@x"]);
    let o = opts("/R/Doc", Some("Ls/L"), &[]);
    let docs = read_with(xml, &o, &s).unwrap();
    let h = &docs[0].header;
    assert_eq!(h.get(0), Some("abc1m2d"));
    assert_eq!(h.get(1), Some("7"));
    assert_eq!(h.get(2), Some("b"));
    assert_eq!(h.get(3), Some("1m2"));
    let lines: Vec<_> = docs[0].lines.iter().map(|l| (l.get(0), l.get(1))).collect();
    assert_eq!(lines, [(Some("1m"), Some("m")), (Some("2"), None)]);
    both_readers(xml, &o, &s);
}

#[test]
fn record_path_anywhere_and_wildcards() {
    let xml = b"<a><b><Doc k='1'/></b><c><Doc k='2'/></c></a>";
    let s = slots(&[], &[], &["@k"]);
    assert_eq!(read(xml, "//Doc", None, &s).unwrap().len(), 2);
    assert_eq!(read(xml, "Doc", None, &s).unwrap().len(), 2);
    assert_eq!(read(xml, "/a/*/Doc", None, &s).unwrap().len(), 2);
    let docs = read(xml, "/a/c/Doc", None, &s).unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].key, vec!["2"]);
}

#[test]
fn namespaces_by_declared_prefix_or_local_name() {
    let xml = br#"<x:Export xmlns:x="urn:export" xmlns:a="urn:amounts" xmlns="urn:default">
  <x:Doc a:id="7" id="plain">
<a:Amount>10</a:Amount>
<Amount>99</Amount>
<Note xmlns="urn:other">n</Note>
  </x:Doc>
</x:Export>"#;
    // The file uses prefixes x/a; the mapping calls the namespaces e/m.
    let o = opts(
        "/e:Export/e:Doc",
        None,
        &[
            ("e", "urn:export"),
            ("m", "urn:amounts"),
            ("d", "urn:default"),
            ("o", "urn:other"),
        ],
    );
    let s = slots(
        &[
            "m:Amount", "d:Amount", "Amount", "@m:id", "@id", "o:Note", "d:Note",
        ],
        &[],
        &["@id"],
    );
    let docs = read_with(xml, &o, &s).unwrap();
    assert_eq!(docs.len(), 1);
    let h = &docs[0].header;
    assert_eq!(h.get(0), Some("10"));
    assert_eq!(h.get(1), Some("99"));
    assert_eq!(h.get(2), Some("10"), "by local name: the first Amount");
    assert_eq!(h.get(3), Some("7"));
    assert_eq!(h.get(4), Some("plain"), "an unprefixed attribute wins");
    assert_eq!(h.get(5), Some("n"));
    assert_eq!(h.get(6), None);
    // by local name only, and by the file's own prefix when the mapping has none
    let s = slots(&["a:Amount"], &[], &["@x:nope"]);
    let docs = read(xml, "/Export/Doc", None, &s).unwrap();
    assert_eq!(docs[0].header.get(0), Some("10"));
    assert!(docs[0].key.is_empty());
}

#[test]
fn entities_line_ends_and_attribute_normalisation() {
    let xml = b"<R>\r\n<D a=\"x\r\ny&#10;z\">\r\n<T>one\r\ntwo &lt;&#x41;&gt;</T></D></R>";
    let s = slots(&["@a", "T"], &[], &["T"]);
    let docs = read(xml, "/R/D", None, &s).unwrap();
    assert_eq!(docs[0].line, 2);
    assert_eq!(docs[0].header.get(0), Some("x y\nz"));
    assert_eq!(docs[0].header.get(1), Some("one\ntwo <A>"));
    assert_eq!(
        docs[0].header.line_of(1),
        4,
        "the attribute value spans a line end"
    );
}

#[test]
fn a_start_tag_over_several_lines_has_the_line_of_its_start() {
    let xml = b"<R>\n\n<D\n  id=\"1\"\n>\n<N>v</N></D>\n<D id=\"2\"><N>w</N></D></R>";
    let s = slots(&["N"], &[], &["@id"]);
    let docs = read(xml, "/R/D", None, &s).unwrap();
    assert_eq!(docs[0].line, 3);
    assert_eq!(docs[0].header.line_of(0), 6);
    assert_eq!(docs[1].line, 7);
}

#[test]
fn missing_key_is_required_and_repeated_key_is_duplicate() {
    let xml = b"<R>\n<D><K>1</K></D>\n<D><K> </K></D>\n<D><K>1</K></D>\n</R>";
    let s = slots(&[], &[], &["K"]);
    let docs = read(xml, "/R/D", None, &s).unwrap();
    assert_eq!(docs.len(), 3);
    assert!(docs[0].problems.is_empty());
    let p = &docs[1].problems[0];
    assert_eq!(p.code, Code::Required);
    assert_eq!(p.line, Some(3));
    assert_eq!(p.column.as_deref(), Some("K"));
    assert!(docs[1].key.is_empty());
    let p = &docs[2].problems[0];
    assert_eq!(p.code, Code::Duplicate);
    assert_eq!(p.stage, Stage::Validate);
    assert_eq!(p.line, Some(4));
    assert_eq!(p.value.as_deref(), Some("1"));
    assert!(p.message().contains("line 2"), "{}", p.message());
}

fn fatal(xml: &[u8]) -> Problem {
    let s = slots(&["N"], &[], &["@id"]);
    read(xml, "/R/D", None, &s).expect_err("a fatal problem")
}

#[test]
fn mismatched_end_tag_is_malformed_with_line_and_character() {
    let p = fatal(b"<R>\n<D id=\"1\">\n  <N>1</Nx>\n</D></R>");
    assert_eq!(p.code, Code::Malformed);
    assert_eq!(p.stage, Stage::Read);
    assert_eq!(p.line, Some(3));
    assert_eq!(p.value.as_deref(), Some("</Nx>"));
    assert_eq!(p.column.as_deref(), Some("/R/D/N"));
    assert!(
        p.message().contains("line 3, character 7"),
        "{}",
        p.message()
    );
    assert!(p.message().contains("opened on line 3"), "{}", p.message());
}

#[test]
fn unclosed_elements_and_tags_are_malformed() {
    let p = fatal(b"<R>\n<D id=\"1\">\n<N>1</N>\n");
    assert_eq!(p.code, Code::Malformed);
    assert_eq!(p.line, Some(2), "the line of the unclosed element");
    assert_eq!(p.value.as_deref(), Some("<D>"));
    let p = fatal(b"<R>\n<D id=\"1\">\n<N>1</N\n");
    assert_eq!(p.code, Code::Malformed);
    assert_eq!(p.line, Some(3));
    assert!(p.message().contains("not closed"), "{}", p.message());
}

#[test]
fn unknown_and_broken_entities_are_malformed() {
    let p = fatal(b"<R>\n<D id=\"1\"><N>one\ntwo &nbsp; three</N></D></R>");
    assert_eq!(p.code, Code::Malformed);
    assert_eq!(p.line, Some(3));
    assert_eq!(p.value.as_deref(), Some("&nbsp;"));
    // not captured by the mapping: still checked
    let p = fatal(b"<R><D id=\"1\"><Other>AT&T</Other></D></R>");
    assert_eq!(p.code, Code::Malformed);
    assert!(p.message().contains("&amp;"), "{}", p.message());
    let p = fatal(b"<R><D id=\"1\" x=\"&bogus;\"/></R>");
    assert_eq!(p.value.as_deref(), Some("&bogus;"));
    let p = fatal(b"<R><D id=\"1\" x=noquotes/></R>");
    assert_eq!(p.code, Code::Malformed);
}

#[test]
fn text_outside_the_root_and_second_roots_are_malformed() {
    let p = fatal(b"No;Date;Total\n1;2;3\n");
    assert_eq!(p.code, Code::Malformed);
    assert!(p.message().contains("not an XML file"), "{}", p.message());
    let p = fatal(b"<R/>\n<R/>");
    assert_eq!(p.line, Some(2));
    let p = fatal(b"<R></R>\ntrailing");
    assert_eq!(p.line, Some(2));
}

#[test]
fn billion_laughs_is_refused_at_once() {
    let mut xml =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_string()
        } else {
            format!("lol{}", i - 1)
        };
        xml.push_str(&format!(
            " <!ENTITY lol{i} \"{}\">\n",
            format!("&{prev};").repeat(10)
        ));
    }
    xml.push_str("]>\n<R><D id=\"1\"><N>&lol9;</N></D></R>\n");
    let p = fatal(xml.as_bytes());
    assert_eq!(p.code, Code::Malformed);
    assert_eq!(p.line, Some(2));
    assert!(
        p.message()
            .contains("DTDs and entity declarations are not allowed"),
        "{}",
        p.message()
    );
    // an external DTD is never read; its entities are then unknown
    let p = fatal(
        b"<!DOCTYPE R SYSTEM \"http://example.com/r.dtd\">\n<R><D id=\"1\"><N>&ext;</N></D></R>",
    );
    assert_eq!(p.value.as_deref(), Some("&ext;"));
    let ok = read(
        b"<!DOCTYPE R SYSTEM \"r.dtd\"><R><D id=\"1\"/></R>",
        "/R/D",
        None,
        &slots(&[], &[], &["@id"]),
    );
    assert_eq!(ok.unwrap().len(), 1);
}

#[test]
fn nesting_deeper_than_the_limit_is_malformed() {
    let xml = format!(
        "<R>{}{}</R>",
        "<a>".repeat(MAX_DEPTH),
        "</a>".repeat(MAX_DEPTH)
    );
    let p = fatal(xml.as_bytes());
    assert_eq!(p.code, Code::Malformed);
    assert!(
        p.message().contains("nested more than 256"),
        "{}",
        p.message()
    );
    let xml = format!(
        "<R>{}{}</R>",
        "<a>".repeat(MAX_DEPTH - 1),
        "</a>".repeat(MAX_DEPTH - 1)
    );
    assert!(
        read(xml.as_bytes(), "/R/D", None, &slots(&[], &[], &["@id"]))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn encoding_from_the_declaration_or_the_mapping() {
    let text = "<?xml version=\"1.0\" encoding=\"windows-1251\"?>\n<R><D id=\"1\"><N>ООО «Ромашка»</N></D></R>";
    let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(text);
    let s = slots(&["N"], &[], &["@id"]);
    let docs = read(&bytes, "/R/D", None, &s).unwrap();
    assert_eq!(docs[0].header.get(0), Some("ООО «Ромашка»"));
    // the same bytes without a declaration, with encoding set in the mapping
    let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode("<R><D id=\"1\"><N>Ромашка</N></D></R>");
    let mut o = opts("/R/D", None, &[]);
    let p = read_with(&bytes, &o, &s).unwrap_err();
    assert_eq!(p.code, Code::Encoding);
    assert_eq!(p.line, Some(1));
    assert_eq!(p.column.as_deref(), Some("/R/D/N"));
    assert_eq!(p.value.as_deref(), Some("0xD0"));
    o.encoding = Some(encoding_rs::WINDOWS_1251);
    assert_eq!(
        read_with(&bytes, &o, &s).unwrap()[0].header.get(0),
        Some("Ромашка")
    );
}

#[test]
fn utf16_with_and_without_bom() {
    let text = "<?xml version=\"1.0\" encoding=\"UTF-16\"?>\n<R>\n<D id=\"1\"><N>Grüße</N></D></R>";
    let s = slots(&["N"], &[], &["@id"]);
    for bom in [true, false] {
        let mut bytes = if bom { vec![0xFF, 0xFE] } else { Vec::new() };
        for u in text.encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        let docs = read(&bytes, "/R/D", None, &s).unwrap();
        assert_eq!(docs[0].header.get(0), Some("Grüße"), "bom {bom}");
        assert_eq!(docs[0].line, 3);
    }
    let mut be = vec![0xFE, 0xFF];
    for u in text.encode_utf16() {
        be.extend_from_slice(&u.to_be_bytes());
    }
    assert_eq!(read(&be, "/R/D", None, &s).unwrap().len(), 1);
}

#[test]
fn a_byte_order_mark_wins_over_the_declaration() {
    let mut bytes = vec![0xEF, 0xBB, 0xBF];
    bytes.extend_from_slice(
        "<?xml version=\"1.0\" encoding=\"windows-1251\"?><R><D id=\"1\"><N>Ж</N></D></R>"
            .as_bytes(),
    );
    let s = slots(&["N"], &[], &["@id"]);
    let docs = read(&bytes, "/R/D", None, &s).unwrap();
    assert_eq!(docs[0].header.get(0), Some("Ж"));
}

#[test]
fn unknown_declared_encoding_is_an_encoding_problem() {
    let p = fatal(b"<?xml version=\"1.0\" encoding=\"klingon-8\"?><R/>");
    assert_eq!(p.code, Code::Encoding);
    assert_eq!(p.value.as_deref(), Some("klingon-8"));
}

#[test]
fn invalid_utf8_names_line_and_element() {
    let p = fatal(b"<R>\n<D id=\"1\">\n<N>ok</N>\n<Name>\xCE\xCE</Name></D></R>");
    assert_eq!(p.code, Code::Encoding);
    assert_eq!(p.line, Some(4));
    assert_eq!(p.column.as_deref(), Some("/R/D/Name"));
    assert_eq!(p.value.as_deref(), Some("0xCE"));
    // cut off in the middle of a character at the very end
    let p = fatal(b"<R><D id=\"1\"/></R>\n\xD0");
    assert_eq!(p.code, Code::Encoding);
    assert_eq!(p.line, Some(2));
}

#[test]
fn record_path_that_does_not_fit_the_file() {
    let s = slots(&[], &[], &["@id"]);
    let p = read(b"<Other><D/></Other>", "/R/D", None, &s).unwrap_err();
    assert_eq!(p.code, Code::MissingColumn);
    assert!(
        p.message().contains("the root element is <Other>"),
        "{}",
        p.message()
    );
    let p = read(b"<R><X/></R>", "/R/Invoices/D", None, &s).unwrap_err();
    assert!(
        p.message().contains("the file has /R but no <Invoices>"),
        "{}",
        p.message()
    );
    // the parent is there and empty: an empty export
    assert!(read(b"<R><Invoices/></R>", "/R/Invoices/D", None, &s)
        .unwrap()
        .is_empty());
    assert!(read(b"<R/>", "/R/D", None, &s).unwrap().is_empty());
    let p = read(b"  \n", "/R/D", None, &s).unwrap_err();
    assert_eq!(p.code, Code::Empty);
    let p = read(b"", "/R/D", None, &s).unwrap_err();
    assert_eq!(p.code, Code::Empty);
}

#[test]
fn bad_paths_are_named() {
    let ns = IndexMap::new();
    for bad in [
        "",
        "/A/B",
        "A//B",
        "@a/B",
        "text()/B",
        "A[1]",
        "..",
        "A/count(B)",
        "A B",
    ] {
        assert!(check_path(bad, false, &ns).is_err(), "{bad:?}");
    }
    for good in [
        "A",
        "@id",
        "A/@c",
        "c:A",
        "A/text()",
        "*",
        ".",
        "A/*/B",
        "Номер",
    ] {
        assert!(check_path(good, false, &ns).is_ok(), "{good:?}");
    }
    for bad in ["", "/", "/A/@x", "//", "/A/text()"] {
        assert!(check_path(bad, true, &ns).is_err(), "{bad:?}");
    }
    let s = slots(&["A//B"], &[], &["@id"]);
    let tap = Rc::new(RefCell::new(Tap::default()));
    let p = XmlSource::open(&b"<R/>"[..], tap, &opts("/R/D", None, &[]), &s)
        .err()
        .unwrap();
    assert_eq!(p.column.as_deref(), Some("A//B"));
    assert!(p.message().contains("empty step"), "{}", p.message());
}

/// Reads `bytes` with the plain reader and with the namespace-resolving one: the
/// documents (or the fatal problem) must be the same, to the line and character.
fn both_readers(bytes: &[u8], o: &SourceOptions, s: &Slots) -> String {
    let run = |resolve: bool| -> (bool, String) {
        let tap = Rc::new(RefCell::new(Tap::default()));
        let mut src = match XmlSource::open_with(bytes, tap, o, s, resolve) {
            Ok(src) => src,
            Err(p) => return (false, format!("{p:?}")),
        };
        assert_eq!(src.reader.is_plain(), !resolve);
        let mut out = String::new();
        while let Some(d) = src.next_document() {
            match d {
                Ok(d) => out.push_str(&format!("{d:?}\n")),
                Err(SourceError::Fatal(p)) => out.push_str(&format!("fatal {p:?}\n")),
                Err(_) => out.push_str("other\n"),
            }
        }
        (true, out)
    };
    let (plain, ns) = (run(false), run(true));
    assert_eq!(plain, ns, "the two readers differ");
    plain.1
}

#[test]
fn the_plain_reader_reads_as_the_resolving_one() {
    let invoices = slots(
        &[
            "Number",
            "@type",
            "Customer/@code",
            "Customer/Name",
            "Missing",
            ".",
        ],
        &["@no", "Item", "Qty", "text()"],
        &["@id"],
    );
    let o = opts("/Export/Invoices/Invoice", Some("Lines/Line"), &[]);
    let out = both_readers(INVOICES.as_bytes(), &o, &invoices);
    assert!(out.contains("Acme & Sons"), "{out}");
    let s = slots(&["N", "@a", "text()"], &[], &["@id"]);
    let o = opts("/R/D", None, &[]);
    let cases: Vec<&[u8]> = vec![
        // prefixes matched as written, and namespace declarations
        br#"<x:R xmlns:x="urn:x" xmlns="urn:d"><x:D id="1" x:a="2"><x:N>v</x:N></x:D><D id="2"><N>w</N></D></x:R>"#,
        // declarations quick-xml refuses (the resolving reader's errors)
        br#"<R><D id="1" xmlns:xml="urn:wrong"><N>v</N></D></R>"#,
        br#"<R><D id="1" xmlns:xml="http://www.w3.org/XML/1998/namespace"><N>v</N></D></R>"#,
        br#"<R><D id="1" xmlns:xmlns="urn:x"/></R>"#,
        br#"<R xmlns:p="http://www.w3.org/XML/1998/namespace"><D id="1"/></R>"#,
        br#"<R><D id="1"/><D id="2" xmlns:q="http://www.w3.org/2000/xmlns/"/></R>"#,
        b"<R>\n<D id=\"1\">\n  <N>1</Nx>\n</D></R>",
        b"<R>\n<D id=\"1\"><N>one\ntwo &nbsp; three</N></D></R>",
        b"<R><D id=\"1\" x=noquotes/></R>",
        b"<R>\r\n<D id=\"1\" a=\"x\r\ny&#10;z\">\r\n<N>one\r\ntwo &lt;&#x41;&gt;<![CDATA[a\r\nb]]></N></D></R>",
        b"<R>\n<D id=\"1\">\n<N>ok</N>\n<Name>\xCE\xCE</Name></D></R>",
        b"<R><D id=\"1\"/></R>\n\xD0",
        b"<R>\n<D id=\"1\">\n<N>1</N\n",
        b"<R/>\n<R/>",
        b"\xEF\xBB\xBF<R><D id=\"1\"><N>\xD0\x96</N></D></R>",
    ];
    for xml in cases {
        both_readers(xml, &o, &s);
    }
    let out = both_readers(br#"<R><D id="1" xmlns:xml="urn:wrong"/></R>"#, &o, &s);
    assert!(out.contains("a namespace declaration is wrong"), "{out}");
    // a path with a namespace URI needs the resolving reader
    let o = opts("/e:Export/e:Doc", None, &[("e", "urn:export")]);
    let tap = Rc::new(RefCell::new(Tap::default()));
    let src = XmlSource::open(&b"<x:Export xmlns:x='urn:export'/>"[..], tap, &o, &s).unwrap();
    assert!(!src.reader.is_plain());
    let o = opts("/R/D", None, &[("m", "urn:m")]);
    let tap = Rc::new(RefCell::new(Tap::default()));
    let src = XmlSource::open(&b"<R/>"[..], tap, &o, &slots(&["@m:id"], &[], &["@id"])).unwrap();
    assert!(!src.reader.is_plain(), "an attribute in a namespace");
    let tap = Rc::new(RefCell::new(Tap::default()));
    let src = XmlSource::open(&b"<R/>"[..], tap, &o, &s).unwrap();
    assert!(src.reader.is_plain());
}

/// Input that makes its records as they are read, counting the bytes handed out.
struct Generated {
    records: usize,
    made: usize,
    pending: Vec<u8>,
    pos: usize,
    closed: bool,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.pending.len() {
            self.pending.clear();
            self.pos = 0;
            if self.made == 0
                && self.pending.is_empty()
                && !self.closed
                && self.records > 0
                && self.made < self.records
            {
                self.pending
                    .extend_from_slice(b"<?xml version=\"1.0\"?>\n<Export>\n");
            }
            if self.made < self.records {
                for _ in 0..100.min(self.records - self.made) {
                    self.made += 1;
                    let n = self.made;
                    self.pending.extend_from_slice(
                        format!("  <Doc id=\"D{n}\"><Total>{n}.00</Total><Lines><L><Amt>{n}</Amt></L></Lines></Doc>\n").as_bytes(),
                    );
                }
            } else if !self.closed {
                self.closed = true;
                self.pending.extend_from_slice(b"</Export>\n");
            } else {
                return Ok(0);
            }
        }
        let n = (self.pending.len() - self.pos).min(buf.len());
        buf[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn the_file_is_streamed_not_loaded() {
    let records = 100_000; // about 8 MB of XML
    let input = Generated {
        records,
        made: 0,
        pending: Vec::new(),
        pos: 0,
        closed: false,
    };
    let tap = Rc::new(RefCell::new(Tap::default()));
    let o = opts("/Export/Doc", Some("Lines/L"), &[]);
    let s = slots(&["Total"], &["Amt"], &["@id"]);
    let mut src = XmlSource::open(input, tap, &o, &s).unwrap();
    let first = src.next_document().unwrap().unwrap();
    assert_eq!(first.key, vec!["D1"]);
    assert_eq!(first.line, 3);
    // only the first buffers were read, not the whole file
    assert!(src.bytes_read() < 1_000_000, "{}", src.bytes_read());
    let mut n = 1;
    let mut last = first;
    while let Some(d) = src.next_document() {
        last = d.unwrap();
        n += 1;
    }
    assert_eq!(n, records);
    assert_eq!(last.key, vec![format!("D{records}")]);
    assert_eq!(last.line, records as u64 + 2);
    assert_eq!(last.lines[0].get(0), Some(records.to_string().as_str()));
    assert!(src.bytes_read() > 7_000_000);
}

/// Hands out one byte per read, to split characters and tags everywhere.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0.is_empty() || buf.is_empty() {
            return Ok(0);
        }
        buf[0] = self.0[0];
        self.0 = &self.0[1..];
        Ok(1)
    }
}

#[test]
fn characters_split_across_reads_and_long_values() {
    let long = "Ж".repeat(100_000);
    let xml = format!("<R>\n<D id=\"1\"><N>{long}</N></D>\n<D id=\"2\"><N>€</N></D></R>");
    let s = slots(&["N"], &[], &["@id"]);
    let tap = Rc::new(RefCell::new(Tap::default()));
    let mut src =
        XmlSource::open(Trickle(xml.as_bytes()), tap, &opts("/R/D", None, &[]), &s).unwrap();
    let a = src.next_document().unwrap().unwrap();
    assert_eq!(a.header.get(0), Some(long.as_str()));
    let b = src.next_document().unwrap().unwrap();
    assert_eq!(b.header.get(0), Some("€"));
    assert_eq!(b.line, 3);
    assert!(src.next_document().is_none());
    assert_eq!(src.bytes_read(), xml.len() as u64);
}
