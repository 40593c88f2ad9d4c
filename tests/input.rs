//! Hostile and damaged input (issue 11): no byte sequence in a file is taken for
//! something of erpdrop's own, characters a format forbids are errors with their line,
//! a CSV column the mapping reads is never ambiguous, XML that is not well-formed is
//! refused, and values and messages are bounded wherever they are stored.
mod util;
use serde_json::{json, Value};
use util::{TestDir, INVOICE_HEADER, INVOICE_MAPPING};

fn today() -> String {
    chrono::Local::now().format("%Y-%m-%d").to_string()
}

fn invoice_row(no: &str) -> String {
    format!("{no};20.11.2026;C1;N30;1,50;X;1,50\n")
}

fn errors(report: &Value) -> &Vec<Value> {
    report["errors"].as_array().expect("an errors array")
}

// ---------------------------------------------------------------- CSV: no end marker

#[test]
fn a_row_whose_text_was_the_end_of_file_marker_does_not_end_the_file() {
    // erpdrop used to append this record after the text to find a quote left open at
    // the end; a row with the same text ended the file there, and the rows after it were
    // never read (the file went to done/ with its first document only).
    let marker = "\0erpdrop:end-of-file\0";
    for (name, row) in [
        ("INV_1.csv", marker.to_string()),
        ("INV_2.csv", format!("\"{marker}\"")),
    ] {
        let t = TestDir::new();
        t.invoice_setup(INVOICE_MAPPING);
        let text = format!(
            "{INVOICE_HEADER}{}{row}\n{}",
            invoice_row("A1"),
            invoice_row("A3")
        );
        t.write(&format!("drop/inbox/{name}"), &text);
        let out = t.run(&["run"]);
        assert_eq!(out.code, 1, "{name}: {out:?}");
        assert!(
            t.ls(&format!("drop/done/{}", today())).is_empty(),
            "{name}: a file with a NUL byte is not done"
        );
        assert!(t.ls("drop/outbox").is_empty(), "{name}: nothing is posted");
        let rep = t.read_json(&format!("drop/failed/{name}.errors.json"));
        let rows = errors(&rep);
        assert_eq!(rows.len(), 1, "{rep:#}");
        assert_eq!(rows[0]["code"], "encoding", "{rep:#}");
        assert_eq!(rows[0]["line"], 3, "{rep:#}");
        assert_eq!(rows[0]["column"], "No", "{rep:#}");
        assert_eq!(rows[0]["value"], "0x00", "{rep:#}");
    }
}

#[test]
fn a_nul_byte_in_csv_text_is_an_encoding_error_with_its_line_and_column() {
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    // in a value, on the second physical line of a quoted multi-line value
    let text = format!(
        "{INVOICE_HEADER}{}A2;20.11.2026;C1;N30;1,50;\"first\nse\0cond\";1,50\n{}",
        invoice_row("A1"),
        invoice_row("A3")
    );
    let c = t.check_file("INV_1.csv", &text);
    assert_eq!(c.out.code, 1, "{c:#?}");
    assert!(c.emitted.is_empty());
    assert_eq!(
        c.only_error(),
        &json!({"stage": "read", "line": 4, "column": "Item", "value": "0x00", "code": "encoding",
                "message": "The byte 0x00 (NUL) is not text: the file is damaged, in another encoding (UTF-16 without a byte-order mark? set source.encoding in the mapping) or not a text file (line 4, column Item)"})
    );
    // in the header row
    let c = t.check_file("INV_2.csv", format!("No;Da\0te{}", &INVOICE_HEADER[7..]));
    let e = c.only_error();
    assert_eq!(
        (&e["code"], &e["line"], &e["column"]),
        (&json!("encoding"), &json!(1), &json!("header column 2"))
    );
    // a UTF-16 file read as UTF-8 says so at once, instead of reading as garbage
    let mut utf16 = Vec::new();
    for u in format!("{INVOICE_HEADER}{}", invoice_row("A1")).encode_utf16() {
        utf16.extend_from_slice(&u.to_le_bytes());
    }
    let c = t.check_file("INV_3.csv", &utf16);
    let e = c.only_error();
    assert_eq!((&e["code"], &e["line"]), (&json!("encoding"), &json!(1)));
}

#[test]
fn a_quote_left_open_at_the_end_is_still_malformed_at_its_row() {
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    for (name, tail) in [
        ("INV_1.csv", "A2;20.11.2026;C1;N30;1,50;\"cut\noff"),
        ("INV_2.csv", "A2;20.11.2026;C1;N30;1,50;\"cut\r\noff\r\n"),
    ] {
        let c = t.check_file(
            name,
            format!("{INVOICE_HEADER}{}\n{tail}", invoice_row("A1")),
        );
        let e = c.only_error();
        assert_eq!(
            (&e["code"], &e["line"]),
            (&json!("malformed"), &json!(4)),
            "{name}"
        );
    }
}

// ---------------------------------------------------------------- CSV: duplicate header names

#[test]
fn a_column_the_mapping_reads_that_the_header_names_twice_is_an_error_naming_both() {
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    // the first column used to win silently: C1 here, while the export meant C2
    let header = "No;Date;Cust;Terms;Total;Item;Amount;Cust\n";
    let c = t.check_file(
        "INV_1.csv",
        format!("{header}A1;20.11.2026;C1;N30;1,50;X;1,50;C2\n"),
    );
    assert_eq!(c.out.code, 1, "{c:#?}");
    assert!(c.emitted.is_empty());
    assert_eq!(
        c.only_error(),
        &json!({"stage": "read", "line": 1, "column": "Cust", "value": "Cust", "code": "duplicate",
                "message": "The header row names two columns \"Cust\" (columns 3 and 8) and the mapping reads \"Cust\": rename one in the export, or read it by number (from = 3 or from = 8) (line 1, column Cust)"})
    );
    // without regard to case, as names are matched
    let c = t.check_file(
        "INV_2.csv",
        "NO;Date;Cust;Terms;Total;Item;Amount;no\nA1;20.11.2026;C1;N30;1,50;X;1,50;A1\n",
    );
    let e = c.only_error();
    assert_eq!(
        (&e["code"], &e["column"]),
        (&json!("duplicate"), &json!("NO"))
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("The header row names two columns \"NO\" and \"no\" (columns 1 and 8) and the mapping reads \"No\""),
        "{e}"
    );
    // a run sends the file to failed/ and posts nothing
    t.write(
        "drop/inbox/INV_3.csv",
        format!("{header}A1;20.11.2026;C1;N30;1,50;X;1,50;C2\n"),
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(t.ls("drop/outbox").is_empty());
    assert!(t.exists("drop/failed/INV_3.csv.errors.json"));
}

#[test]
fn repeated_header_names_that_the_mapping_does_not_read_are_fine() {
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    // two blank trailing cells (a spreadsheet export), a repeated column nobody reads,
    // and an exact name that wins over one that differs in case only
    let c = t.check_file(
        "INV_1.csv",
        "No;Date;Cust;Terms;Total;Item;Amount;Note;Note;CUST;;\nA1;20.11.2026;C1;N30;1,50;X;1,50;a;b;C2;;\n",
    );
    assert_eq!(c.out.code, 0, "{c:#?}");
    assert_eq!(c.doc("sales_invoice-A1.json")["customer"], "CUST-1");
}
