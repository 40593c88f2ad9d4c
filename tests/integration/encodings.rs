//! Reading files: encodings (UTF-8 with and without BOM, UTF-16 LE/BE, Windows-1251,
//! Windows-1252, ISO-8859-1), bytes that are not valid in the declared encoding, CSV
//! delimiters, quoting, line endings, blank lines, physical line numbers, and the
//! whole-file problems (`encoding`, `malformed`, `missing_column`, `empty`). The
//! Excel, 1C and UTF-16 fixtures are validated end to end.
use crate::util::TestDir;
use serde_json::{json, Value};

/// A mapping `f` for `F_*` files with the given [source] lines: key `No`, header
/// `name` (from Name) and `amount` (decimal), lines `item` (from Item, required).
fn mapping(source: &str) -> String {
    format!(
        r#"name = "f"
match = ["F_*"]
document_type = "doc"

[source]
{source}

[document]
key = ["No"]

[header]
name   = {{ from = "Name" }}
amount = {{ from = "Amount", type = "decimal" }}

[lines]
item = {{ from = "Item", required = true }}
"#
    )
}

fn setup(source: &str) -> TestDir {
    let t = TestDir::new();
    t.mapping_setup(&mapping(source));
    t
}

fn utf16le(s: &str, bom: bool) -> Vec<u8> {
    let mut v = if bom { vec![0xFF, 0xFE] } else { vec![] };
    for u in s.encode_utf16() {
        v.extend_from_slice(&u.to_le_bytes());
    }
    v
}

fn utf16be(s: &str) -> Vec<u8> {
    let mut v = vec![0xFE, 0xFF];
    for u in s.encode_utf16() {
        v.extend_from_slice(&u.to_be_bytes());
    }
    v
}

const TEXT: &str = "No,Name,Amount,Item\r\n1,Müller Straße,\"1,5\",a\r\n2,Ромашка,2,b\r\n";

// ---------------------------------------------------------------- encodings

#[test]
fn utf8_with_and_without_bom() {
    let t = setup("decimal_separator = \",\"");
    for bytes in [
        TEXT.as_bytes().to_vec(),
        [b"\xEF\xBB\xBF", TEXT.as_bytes()].concat(),
    ] {
        let c = t.check_file("F_1.csv", &bytes);
        assert_eq!(c.out.code, 0, "{:#?}", c.errors);
        assert_eq!(c.doc("doc-1.json")["name"], "Müller Straße");
        assert_eq!(c.doc("doc-1.json")["amount"], "1.5");
        assert_eq!(c.doc("doc-2.json")["name"], "Ромашка");
    }
}

#[test]
fn utf16_little_and_big_endian() {
    // the BOM says which, whatever the mapping declares
    for source in ["", "encoding = \"utf-16\"", "encoding = \"windows-1251\""] {
        let t = setup(&format!("decimal_separator = \",\"\n{source}"));
        for bytes in [utf16le(TEXT, true), utf16be(TEXT)] {
            let c = t.check_file("F_1.txt", &bytes);
            assert_eq!(c.out.code, 0, "{source}: {:#?}", c.errors);
            assert_eq!(c.doc("doc-1.json")["name"], "Müller Straße");
            assert_eq!(c.doc("doc-2.json")["name"], "Ромашка");
        }
    }
    // without a BOM, `utf-16` means little-endian; utf-16be can be named
    let t = setup("decimal_separator = \",\"\nencoding = \"utf-16\"");
    let c = t.check_file("F_1.txt", utf16le(TEXT, false));
    assert_eq!(c.doc("doc-2.json")["name"], "Ромашка");
    let t = setup("decimal_separator = \",\"\nencoding = \"utf-16be\"");
    let c = t.check_file("F_1.txt", &utf16be(TEXT)[2..]);
    assert_eq!(c.doc("doc-2.json")["name"], "Ромашка");
}

#[test]
fn windows_1251() {
    let text = "No;Name;Amount;Item\r\n1;ООО \"Ромашка\" №5 — ёлки;1 234,50;Бумага\r\n";
    let (bytes, _, bad) = encoding_rs::WINDOWS_1251.encode(text);
    assert!(!bad);
    for label in ["windows-1251", "cp1251", "CP1251"] {
        let t = setup(&format!(
            "delimiter = \";\"\nencoding = \"{label}\"\ndecimal_separator = \",\"\nthousands_separator = \" \"\nquote = \"'\""
        ));
        let c = t.check_file("F_1.csv", &bytes);
        assert_eq!(c.out.code, 0, "{:#?}", c.errors);
        let d = c.doc("doc-1.json");
        assert_eq!(d["name"], "ООО \"Ромашка\" №5 — ёлки");
        assert_eq!(d["amount"], "1234.50");
        assert_eq!(d["lines"][0]["item"], "Бумага");
    }
}

#[test]
fn windows_1252_and_iso_8859_1() {
    let text = "No;Name;Amount;Item\n1;Café Œuvre – “quoted” €;5;naïve\n";
    let (bytes, _, bad) = encoding_rs::WINDOWS_1252.encode(text);
    assert!(!bad);
    for label in ["windows-1252", "cp1252"] {
        let t = setup(&format!("delimiter = \";\"\nencoding = \"{label}\""));
        let c = t.check_file("F_1.csv", &bytes);
        assert_eq!(c.doc("doc-1.json")["name"], "Café Œuvre – “quoted” €");
    }
    // ISO-8859-1: every byte is its own code point (Æ ø å ß ÿ)
    let bytes = b"No;Name;Amount;Item\n1;\xC6r\xF8sk\xF8bing \xE5 \xDF \xFF;5;x\n";
    for label in ["iso-8859-1", "latin1", "ISO_8859-1"] {
        let t = setup(&format!("delimiter = \";\"\nencoding = \"{label}\""));
        let c = t.check_file("F_1.csv", bytes);
        assert_eq!(c.doc("doc-1.json")["name"], "Ærøskøbing å ß ÿ", "{label}");
    }
}

// ---------------------------------------------------------------- bad bytes

/// The only problem of a file, which must be a whole-file `read` problem.
fn file_problem(t: &TestDir, name: &str, bytes: impl AsRef<[u8]>) -> Value {
    let c = t.check_file(name, bytes);
    assert_eq!(c.out.code, 1, "{c:#?}");
    assert!(c.emitted.is_empty(), "an unusable file emitted documents");
    assert_eq!(c.report["outcome"], "invalid");
    let e = c.only_error().clone();
    assert_eq!(e["stage"], "read");
    assert!(e.get("document").is_none(), "{e}");
    e
}

#[test]
fn a_windows_1251_file_read_as_utf8_names_line_and_column() {
    let t = setup("delimiter = \";\"");
    let mut bytes = b"No;Name;Amount;Item\n1;ok;1;a\n2;".to_vec();
    bytes.extend(encoding_rs::WINDOWS_1251.encode("ООО Ромашка").0.iter());
    bytes.extend(b";2;b\n");
    let e = file_problem(&t, "F_1.csv", &bytes);
    assert_eq!(
        e,
        json!({"stage": "read", "line": 3, "column": "Name", "value": "0xCE", "code": "encoding",
               "message": "The byte 0xCE is not valid UTF-8: the file is in another encoding (set source.encoding in the mapping, e.g. \"windows-1251\") or is not a text file (line 3, column Name)"})
    );
}

#[test]
fn a_bad_utf8_byte_inside_a_multi_line_value_names_its_own_line() {
    let t = setup("delimiter = \";\"");
    let e = file_problem(
        &t,
        "F_1.csv",
        b"No;Name;Amount;Item\n1;\"first\nsecond \xFF\nthird\";1;a\n",
    );
    assert_eq!(
        (e["line"].as_u64(), e["column"].as_str()),
        (Some(3), Some("Name"))
    );
    // in the header row
    let e = file_problem(&t, "F_2.csv", b"No;N\xE4me;Amount;Item\n1;x;1;a\n");
    assert_eq!(e["line"], 1);
    assert_eq!(e["column"], "header column 2");
}

#[test]
fn undefined_bytes_of_single_byte_encodings_are_errors_not_control_characters() {
    // 0x98 is not a character in Windows-1251, nor 0x81 in Windows-1252
    let t = setup("delimiter = \";\"\nencoding = \"windows-1251\"");
    let e = file_problem(
        &t,
        "F_1.csv",
        b"No;Name;Amount;Item\r\n1;\xCE\xCE\xCE;1;a\r\n2;\x98;1;a\r\n",
    );
    assert_eq!(
        e,
        json!({"stage": "read", "line": 3, "value": "0x98", "code": "encoding",
               "message": "The byte 0x98 is not valid windows-1251: the file is in another encoding (check source.encoding in the mapping) (line 3)"})
    );
    let t = setup("delimiter = \";\"\nencoding = \"windows-1252\"");
    let e = file_problem(&t, "F_1.csv", b"No;Name;Amount;Item\n\n1;x;1;a\x81\n");
    assert_eq!(
        (e["code"].as_str(), e["line"].as_u64()),
        (Some("encoding"), Some(3))
    );
}

#[test]
fn broken_utf16_names_the_line() {
    let t = setup("delimiter = \";\"\nencoding = \"utf-16\"");
    // a lone high surrogate on line 4 (a quoted newline is still a line)
    let mut bytes = utf16le("No;Name;Amount;Item\r\n1;\"x\r\ny\";1;a\r\n2;", true);
    bytes.extend_from_slice(&0xD800u16.to_le_bytes());
    bytes.extend(utf16le("z;1;a\r\n", false));
    let e = file_problem(&t, "F_1.txt", &bytes);
    assert_eq!(e["code"], "encoding");
    assert_eq!(e["line"], 4);
    assert_eq!(
        e["message"],
        "The bytes 0x00 0xD8 are not valid UTF-16LE: the file is in another encoding (check source.encoding in the mapping) (line 4)"
    );
    // a file cut in the middle of a character
    let mut bytes = utf16le("No;Name;Amount;Item\r\n1;x;1;a\r\n", true);
    bytes.push(b'2');
    let e = file_problem(&t, "F_2.txt", &bytes);
    assert_eq!(
        (e["code"].as_str(), e["line"].as_u64()),
        (Some("encoding"), Some(3))
    );
}

#[test]
fn strange_bytes_never_panic() {
    let t = setup("delimiter = \";\"\nencoding = \"windows-1251\"");
    let t8 = setup("delimiter = \";\"");
    let cases: Vec<Vec<u8>> = vec![
        b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00".to_vec(),
        vec![0u8; 100],
        (0u8..=255).collect(),
        b"No;Name;Amount;Item\n1;\x00\x00;1;a".to_vec(),
        b"\xFF\xFE\x00".to_vec(),
        b"\xEF\xBB".to_vec(),
        b"No;Name;Amount;Item\r\r\r".to_vec(),
        b"\"".to_vec(),
        b"No;Name;Amount;Item\n\"".to_vec(),
    ];
    for bytes in &cases {
        for dir in [&t, &t8] {
            let c = dir.check_file("F_x.csv", bytes);
            assert!(c.out.code == 0 || c.out.code == 1, "{bytes:?}: {:?}", c.out);
            assert!(!c.out.stderr.contains("panicked"), "{:?}", c.out);
        }
    }
}

// ---------------------------------------------------------------- CSV shape

#[test]
fn any_single_byte_delimiter_with_quoting() {
    for (label, d) in [
        (",", ','),
        (";", ';'),
        ("\\t", '\t'),
        ("tab", '\t'),
        ("|", '|'),
        ("^", '^'),
        ("~", '~'),
    ] {
        let t = setup(&format!("delimiter = \"{label}\""));
        let text =
            format!("No{d}Name{d}Amount{d}Item\n1{d}\"a{d}b \"\"c\"\"\nd\"{d}1.5{d}\"x{d}y\"\n");
        let c = t.check_file("F_1.csv", text);
        assert_eq!(c.out.code, 0, "{label}: {:#?}", c.errors);
        let doc = c.doc("doc-1.json");
        assert_eq!(doc["name"], format!("a{d}b \"c\"\nd"), "{label}");
        assert_eq!(doc["lines"][0]["item"], format!("x{d}y"));
    }
    // another quote character
    let t = setup("delimiter = \";\"\nquote = \"'\"");
    let c = t.check_file(
        "F_1.csv",
        "No;Name;Amount;Item\n1;'O''Brien; \"Tools\"';1;a\n",
    );
    assert_eq!(c.doc("doc-1.json")["name"], "O'Brien; \"Tools\"");
}

#[test]
fn crlf_lf_trailing_blank_lines_and_a_missing_last_newline_read_the_same() {
    let t = setup("");
    let base = "No,Name,Amount,Item\n1,A,1,a\n1,A,1,b\n2,B,2,c\n";
    let variants = [
        base.to_string(),
        base.replace('\n', "\r\n"),
        base.trim_end().to_string(),
        base.replace('\n', "\r\n").trim_end().to_string(),
        format!("{base}\n\n\n"),
        format!(
            "{}\r\n,,,\r\n,,,\r\n\r\n",
            base.replace('\n', "\r\n").trim_end()
        ),
        format!("\u{feff}{}", base.replace('\n', "\r\n")),
    ];
    let expected = t.check_file("F_1.csv", base).emitted;
    assert_eq!(expected.len(), 2);
    for v in &variants {
        let c = t.check_file("F_1.csv", v);
        assert_eq!(c.out.code, 0, "{v:?}: {:#?}", c.errors);
        assert_eq!(c.emitted, expected, "{v:?}");
        assert_eq!(c.report["counts"]["rows"], 3);
    }
    // a CR at the end of the last value is a line ending, not data; inside quotes the
    // CRLF of a multi-line value is kept
    let c = t.check_file("F_1.csv", "No,Name,Amount,Item\r\n1,\"x\r\ny\",1,a\r\n");
    assert_eq!(c.doc("doc-1.json")["lines"][0]["item"], "a");
    assert_eq!(c.doc("doc-1.json")["name"], "x\r\ny");
}

#[test]
fn lines_are_physical_lines_counting_quoted_newlines_and_blank_lines() {
    let t = setup("delimiter = \";\"");
    let text = "No;Name;Amount;Item\n\
                \n\
                1;\"two\nlines\";1;a\n\
                \n\
                2;\"three\r\nline\nvalue\";1;\n\
                1;;1;\n\
                3;y;oops;b\n";
    let c = t.check_file("F_1.csv", text);
    let got: Vec<(String, u64, String)> = c
        .errors
        .iter()
        .map(|e| {
            (
                e["document"].as_str().unwrap().to_string(),
                e["line"].as_u64().unwrap(),
                e["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // document 1 starts on line 3 (after a blank line), document 2 on line 6 (after a
    // two-line value and a blank line); document 1's second row is on line 9 (key 1
    // comes back after key 2: rows of one key need not be adjacent)
    assert_eq!(
        got,
        vec![
            ("1".into(), 9, "required".into()),
            ("2".into(), 6, "required".into()),
            ("3".into(), 10, "type".into()),
        ]
    );
    assert_eq!(
        c.errors[0]["message"],
        "Item is missing (line 9, column Item)"
    );
    // title lines above the header (skip_lines) count too
    let t = setup("delimiter = \";\"\nskip_lines = 2");
    let c = t.check_file(
        "F_1.csv",
        "Sales export\nPrinted 25.11.2026\nNo;Name;Amount;Item\n1;x;1;a\n2;y;z;b\n",
    );
    assert_eq!(c.only_error()["line"], 5);
}

#[test]
fn a_row_with_too_few_or_too_many_fields_is_malformed() {
    let t = setup("delimiter = \";\"");
    let c = t.check_file(
        "F_1.csv",
        "No;Name;Amount;Item\n1;x;1;a\n2;x;1\n3;x;1;a;extra\n",
    );
    assert_eq!(c.out.code, 1);
    assert_eq!(
        c.errors[0],
        json!({"stage": "read", "document": "2", "line": 3, "value": "3", "code": "malformed",
               "message": "This row has 3 fields but the header has 4: a delimiter inside an unquoted value, or a missing one (line 3)"})
    );
    // the short row also lacks its Item; the long row is malformed on line 4
    assert_eq!(c.codes(), vec!["malformed", "required", "malformed"]);
    assert_eq!(c.errors[2]["line"], 4);
}

#[test]
fn a_quote_left_open_is_malformed_on_the_line_where_its_row_starts() {
    let t = setup("delimiter = \";\"");
    // with the last newline or without; the open value would otherwise pass silently
    for text in [
        "No;Name;Amount;Item\n1;x;1;a\n\n2;x;1;\"cut\noff\n",
        "No;Name;Amount;Item\n1;x;1;a\n\n2;x;1;\"cut\noff",
    ] {
        let e = file_problem(&t, "F_1.csv", text);
        assert_eq!(
            e,
            json!({"stage": "read", "line": 4, "code": "malformed",
                   "message": "A quoted value that starts in this row is not closed before the end of the file: the file is cut off, or a quote character inside a value is not doubled (line 4)"})
        );
    }
}

#[test]
fn a_column_the_mapping_needs_is_missing() {
    let t = setup("delimiter = \";\"");
    let e = file_problem(&t, "F_1.csv", "No;Name;Qty;Item\n1;x;1;a\n");
    assert_eq!(
        e,
        json!({"stage": "read", "line": 1, "value": "Amount", "code": "missing_column", "field": "header.amount",
               "message": "The header row has no column \"Amount\", which ./mappings/m.toml reads in header.amount (line 13) (if the file's column is right, fix the mapping); its columns are \"No\", \"Name\", \"Qty\", \"Item\""})
    );
    // header names match without regard to case or surrounding blanks
    let c = t.check_file("F_2.csv", "NO ; name;AMOUNT; Item\n1;x;1;a\n");
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
}

#[test]
fn files_without_a_header_row_use_column_numbers() {
    let t = TestDir::new();
    t.mapping_setup(
        r#"name = "f"
match = ["F_*"]
document_type = "doc"
[source]
delimiter = ";"
header = false
[document]
key = ["1"]
[header]
number = { from = 1 }
name = { from = 3 }
"#,
    );
    let c = t.check_file("F_1.csv", "A1;ignored;Ann\nA2;;Bob\n");
    assert_eq!(c.doc("doc-A1.json"), json!({"number": "A1", "name": "Ann"}));
    assert_eq!(c.doc("doc-A2.json")["name"], "Bob");
}

#[test]
fn empty_files() {
    let t = setup("delimiter = \";\"");
    for bytes in [&b""[..], b"\n\n\r\n", b"\xEF\xBB\xBF", b"\xFF\xFE", b"  \n"] {
        let e = file_problem(&t, "F_1.csv", bytes);
        assert_eq!(
            e,
            json!({"stage": "read", "code": "empty", "message": "The file is empty: there is no header row"}),
            "{bytes:?}"
        );
    }
    // a header and no rows is a valid file with nothing in it
    let c = t.check_file("F_1.csv", "No;Name;Amount;Item\r\n\r\n");
    assert_eq!(c.out.code, 0);
    assert_eq!(c.report["counts"]["documents"], 0);
    assert_eq!(c.report["outcome"], "valid");
}

// ---------------------------------------------------------------- fixtures

#[test]
fn excel_csv_utf8_fixture() {
    let t = TestDir::new();
    t.copy_from_repo("fixtures/excel");
    let out = t.run(&["validate", "--emit", "em"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("3 rows, 2 documents, 2 valid, 0 invalid"),
        "{}",
        out.stdout
    );
    let so = t.read_json("em/sales_order-SO-1001.json");
    assert_eq!(
        so,
        json!({
            "number": "SO-1001",
            "date": "2026-11-25",
            "customer": "ACME",
            "ship_to": "ACME Corp.\n12 Main St, Springfield",
            "total": "2524.00",
            "lines": [
                {"item": "WID-1", "description": "Widget, large", "quantity": 2, "unit_price": "1249.50", "amount": "2499.00"},
                {"item": "SHIP", "description": "Shipping \"express\"", "quantity": 1, "unit_price": "25.00", "amount": "25.00"},
            ]
        })
    );
    assert_eq!(
        t.read_json("em/sales_order-SO-1002.json")["lines"][0]["description"],
        "12\" pipe, steel"
    );

    // the multi-line ShipTo moves SO-1002 to line 6
    let bytes = std::fs::read(t.join("drop/inbox/SalesOrders_2026-11.csv")).unwrap();
    let text = String::from_utf8(bytes).unwrap().replace(
        "PIPE-12,\"12\"\" pipe, steel\",10",
        "PIPE-12,\"12\"\" pipe, steel\",0",
    );
    t.write("drop/inbox/SalesOrders_2026-11.csv", text);
    let out = t.run(&["validate", "--report", "rep"]);
    assert_eq!(out.code, 1);
    let r = t.read_json("rep/SalesOrders_2026-11.csv.errors.json");
    assert_eq!(
        r["errors"],
        json!([{"stage": "validate", "document": "SO-1002", "line": 6, "column": "Qty", "field": "quantity",
                "value": "0", "code": "min", "message": "Quantity 0 is less than the minimum 1 (line 6, column Qty)"}])
    );
}

#[test]
fn one_c_windows_1251_fixture() {
    let t = TestDir::new();
    t.copy_from_repo("fixtures/1c");
    let out = t.run(&["validate", "--emit", "em"]);
    assert_eq!(out.code, 0, "{out:?}");
    let a = t.read_json("em/sales_invoice-ТД00-000123.json");
    assert_eq!(a["customer"], "K-00017");
    assert_eq!(a["customer_name"], "ООО \"Ромашка\"");
    assert_eq!(a["date"], "2026-11-25");
    assert_eq!(a["total"], "3850.00");
    assert_eq!(a["currency"], "RUB");
    assert_eq!(
        a["lines"],
        json!([
            {"item": "BUM-A4", "name": "Бумага офисная А4, 500 л.", "quantity": "10", "price": "350.00", "amount": "3500.00", "vat": {"code": "VAT20", "amount": "700.00"}},
            {"item": "PEN-B", "name": "Ручка шариковая синяя", "quantity": "100", "price": "3.50", "amount": "350.00", "vat": {"code": "VAT20", "amount": "70.00"}},
        ])
    );
    let b = t.read_json("em/sales_invoice-ТД00-000124.json");
    assert_eq!(b["customer_name"], "ИП Ёлкин Пётр Семёнович");
    assert_eq!(b["date"], "2026-11-26");
    // 1 234 567,89 with non-breaking spaces
    assert_eq!(b["total"], "1234567.89");
    assert_eq!(
        b["lines"][0]["name"],
        "Услуги по договору № 5 «Сопровождение»"
    );
    assert_eq!(
        b["lines"][0]["vat"],
        json!({"code": "NOVAT", "amount": "0.00"})
    );

    // a counterparty that is not in the (Windows-1251) cross-reference: a Cyrillic
    // message in the report, in UTF-8
    let path = t.join("drop/inbox/realizacii_20261126.csv");
    let bytes = std::fs::read(&path).unwrap();
    let (text, _, _) = encoding_rs::WINDOWS_1251.decode(&bytes);
    let text = text.replace("500100732259", "500100000000");
    std::fs::write(&path, encoding_rs::WINDOWS_1251.encode(&text).0).unwrap();
    let out = t.run(&["validate", "--report", "rep"]);
    assert_eq!(out.code, 1);
    let e = &t.read_json("rep/realizacii_20261126.csv.errors.json")["errors"][0];
    assert_eq!(
        e["message"],
        "ИНН контрагента \"500100000000\" has no entry in xref/kontragenty.csv (line 4, column ИНН)"
    );
    let csv = t.read("rep/realizacii_20261126.csv.errors.csv");
    assert!(
        csv.contains("ТД00-000124;4;ИНН;customer;500100000000;lookup"),
        "{csv}"
    );
}

#[test]
fn excel_unicode_text_utf16_fixture() {
    let t = TestDir::new();
    t.copy_from_repo("fixtures/utf16");
    let out = t.run(&["validate", "--emit", "em"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        t.read_json("em/customer-C-001.json"),
        json!({
            "id": "C-001",
            "name": "Müller & Söhne GmbH",
            "address": {"street": "Hauptstraße 5", "city": "München", "country": "DE"},
            "credit_limit": 12500.00,
            "active": true,
            "customer_since": "2026-11-25"
        })
    );
    let c2 = t.read_json("em/customer-C-002.json");
    assert_eq!(c2["name"], "株式会社サンプル");
    assert_eq!(c2["address"]["street"], "1-2-3 Chiyoda\nSuite 5");
    assert_eq!(c2["customer_since"], "2020-01-05");
    // json_number: the number as written, never through a float
    let raw = t.read("em/customer-C-002.json");
    assert!(raw.contains("\"credit_limit\": 1000000.00,"), "{raw}");
    assert_eq!(
        t.read_json("em/customer-C-003.json")["name"],
        "O'Brien \"Tools\" Ltd"
    );
    assert!(t
        .read("em/customer-C-003.json")
        .contains("\"credit_limit\": 0.00,"));
}
