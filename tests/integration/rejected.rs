//! After a failure, the rejected rows (issue 16): `STEM.rejected.EXT` beside the reports
//! of a failed file holds the source rows of its failed documents as read, plus their
//! problems; fixed and dropped back into the inbox, only those documents go.

use crate::util::{TestDir, INVOICE_MAPPING};

/// The payloads in the outbox.
fn payloads(t: &TestDir) -> Vec<String> {
    t.ls("drop/outbox")
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .collect()
}

fn cp1252(text: &str) -> Vec<u8> {
    let (b, _, bad) = encoding_rs::WINDOWS_1252.encode(text);
    assert!(!bad);
    b.into_owned()
}

fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn skip_document_mapping(extra_source: &str) -> String {
    INVOICE_MAPPING
        .replace(
            "delimiter = \";\"",
            &format!("delimiter = \";\"\n{extra_source}"),
        )
        .replace(
            "key = [\"No\"]",
            "key = [\"No\"]\non_invalid = \"skip-document\"",
        )
}

#[test]
fn csv_rejected_rows_keep_the_files_bytes_and_come_back_fixed() {
    let t = TestDir::new();
    t.invoice_setup(&skip_document_mapping("encoding = \"windows-1252\""));
    // INV2 has two lines far apart (the file is not grouped by key); a quoted value
    // spans two lines; CRLF line ends; "é" and friends are single windows-1252 bytes
    let rows = [
        "No;Date;Cust;Terms;Total;Item;Amount",
        "INV1;20.11.2026;C1;N30;1,50;Café;1,50",
        "INV2;20.11.2026;C1;XX;3,00;\"Crème;\r\nbrûlée\";1,50",
        "INV3;20.11.2026;C1;N30;1,50;Thé;1,50",
        "INV2;20.11.2026;C1;XX;3,00;Brûlé;1,50",
        "INV4;20.11.2026;C9;N30;1,50;Pâté;1,50",
        "INV5;20.11.2026;C2;N30;1,50;Eau;1,50",
    ];
    let file = cp1252(&(rows.join("\r\n") + "\r\n"));
    t.write("drop/inbox/INV_1.csv", &file);
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(payloads(&t).len(), 3, "INV1, INV3, INV5 went");
    assert!(t.exists("drop/failed/INV_1.csv.errors.csv"));

    let rejected = std::fs::read(t.join("drop/failed/INV_1.rejected.csv")).unwrap();
    let lines: Vec<&[u8]> = rejected.split(|&b| b == b'\n').collect();
    // header, INV2 (two physical lines), INV2 again, INV4, and the end after the last \n
    assert_eq!(lines.len(), 6, "{}", String::from_utf8_lossy(&rejected));
    assert_eq!(
        lines[0],
        cp1252("No;Date;Cust;Terms;Total;Item;Amount;erpdrop_error\r")
    );
    assert_eq!(lines[1], cp1252("INV2;20.11.2026;C1;XX;3,00;\"Crème;\r"));
    let own = |i: usize, row: &str| {
        let l = lines[i];
        let mine = cp1252(&format!("{row};"));
        assert!(l.starts_with(&mine), "{}", String::from_utf8_lossy(l));
        assert!(l.ends_with(b"\r"), "the file's own CRLF");
        String::from_utf8_lossy(&l[mine.len()..l.len() - 1]).into_owned()
    };
    let e1 = own(2, "brûlée\";1,50");
    let e2 = own(3, "INV2;20.11.2026;C1;XX;3,00;Brûlé;1,50");
    let e4 = own(4, "INV4;20.11.2026;C9;N30;1,50;Pâté;1,50");
    assert_eq!(e1, e2, "both rows of INV2 carry its problems");
    assert!(e1.contains("XX"), "{e1}");
    assert!(e4.contains("C9"), "{e4}");
    assert_eq!(lines[5], b"");

    // the user fixes the two documents in the rejected file and drops it back
    let fixed = replace(&replace(&rejected, b";XX;", b";N30;"), b";C9;", b";C1;");
    t.write("drop/inbox/INV_1.rejected.csv", &fixed);
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(payloads(&t).len(), 5, "only INV2 and INV4 were sent");
    assert!(t.ls("drop/inbox").is_empty());
    assert!(!t.exists("drop/failed/INV_1.rejected.rejected.csv"));
    let inv2 = payloads(&t)
        .into_iter()
        .find(|p| p.contains("INV2"))
        .expect("INV2 was sent");
    let doc = t.read_json(&format!("drop/outbox/{inv2}"));
    assert_eq!(doc["lines"][0]["item"], "Crème;\r\nbrûlée", "{doc}");
    assert_eq!(doc["lines"][1]["item"], "Brûlé");
}

#[test]
fn reject_file_lists_the_documents_held_back_too() {
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    let file = "No;Date;Cust;Terms;Total;Item;Amount\n\
                INV1;20.11.2026;C1;N30;1,50;A;1,50\n\
                INV2;20.11.2026;C1;XX;1,50;B;1,50\n\
                INV3;20.11.2026;C1;N30;1,50;C;1,50\n";
    t.write("drop/inbox/INV_1.csv", file);
    assert_eq!(t.run(&["run"]).code, 1);
    assert!(payloads(&t).is_empty(), "reject-file: nothing went");
    let rejected = t.read("drop/failed/INV_1.rejected.csv");
    let rows: Vec<&str> = rejected.lines().collect();
    assert_eq!(rows.len(), 4, "{rejected}");
    assert!(
        rows[1].starts_with("INV1;") && rows[1].contains("Not sent"),
        "{rejected}"
    );
    assert!(
        rows[2].starts_with("INV2;") && rows[2].contains("XX"),
        "{rejected}"
    );
    assert!(
        rows[3].starts_with("INV3;") && rows[3].contains("Not sent"),
        "{rejected}"
    );
    t.write(
        "drop/inbox/INV_1.rejected.csv",
        rejected.replace(";XX;", ";N30;"),
    );
    assert_eq!(t.run(&["run"]).code, 0);
    assert_eq!(
        payloads(&t).len(),
        3,
        "every document of the file went once"
    );
}

#[test]
fn a_rejected_file_that_fails_again_keeps_one_error_column() {
    let t = TestDir::new();
    t.invoice_setup(&skip_document_mapping(""));
    t.write(
        "drop/inbox/INV_1.csv",
        "No;Date;Cust;Terms;Total;Item;Amount\nINV1;20.11.2026;C1;XX;1,50;A;1,50\n",
    );
    assert_eq!(t.run(&["run"]).code, 1);
    let first = t.read("drop/failed/INV_1.rejected.csv");
    // dropped back unchanged, with a new mistake: still one erpdrop_error column
    t.write(
        "drop/inbox/INV_1.rejected.csv",
        first.replace(";C1;", ";C9;"),
    );
    assert_eq!(t.run(&["run"]).code, 1);
    // its name was taken by the first rejected rows: it was stored with a suffix
    let again = t.read("drop/failed/INV_1.rejected.1.rejected.csv");
    let rows: Vec<&str> = again.lines().collect();
    assert_eq!(
        rows[0],
        "No;Date;Cust;Terms;Total;Item;Amount;erpdrop_error"
    );
    assert_eq!(rows[1].split(';').count(), 8, "{again}");
    assert!(rows[1].contains("C9"), "{again}");
}

#[test]
fn a_rejected_file_moved_back_that_fails_again_is_no_sidecar_of_the_first() {
    let t = TestDir::new();
    t.invoice_setup(&skip_document_mapping(""));
    t.write(
        "drop/inbox/INV_1.csv",
        "No;Date;Cust;Terms;Total;Item;Amount\n\
         INV1;20.11.2026;C1;XX;1,50;A;1,50\n\
         INV2;20.11.2026;C1;YY;1,50;B;1,50\n",
    );
    assert_eq!(t.run(&["run"]).code, 1);
    // moved (not copied) into the inbox, one of its two mistakes fixed
    let first = t.read("drop/failed/INV_1.rejected.csv");
    std::fs::remove_file(t.join("drop/failed/INV_1.rejected.csv")).unwrap();
    t.write(
        "drop/inbox/INV_1.rejected.csv",
        first.replace(";XX;", ";N30;"),
    );
    assert_eq!(t.run(&["run"]).code, 1);
    assert_eq!(payloads(&t).len(), 1, "INV1 went");
    // stored under a name that is no rejected rows of INV_1.csv
    assert!(!t.exists("drop/failed/INV_1.rejected.csv"));
    assert!(t.exists("drop/failed/INV_1.rejected.1.csv.errors.json"));
    assert!(t.exists("drop/failed/INV_1.rejected.1.rejected.csv"));
    let st = t.run(&["status", "--json"]).json();
    let mut failed: Vec<&str> = st["failed_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    failed.sort_unstable();
    assert_eq!(failed, ["INV_1.csv", "INV_1.rejected.1.csv"]);
    // --all takes both files, and neither's rejected rows as a file of its own
    assert_eq!(t.run(&["reprocess", "--all"]).code, 1);
    let history = t.ls("drop/failed/.history");
    let old = t.ls(&format!("drop/failed/.history/{}", history[0]));
    assert!(
        old.contains(&"INV_1.rejected.1.rejected.csv".to_string())
            && !old.contains(&"INV_1.rejected.1.csv".to_string()),
        "{old:?}"
    );
    assert!(t.exists("drop/failed/INV_1.rejected.1.csv"), "failed again");
}

#[test]
fn a_document_with_many_problems_lists_five_on_each_row_and_comes_back_fixed() {
    let t = TestDir::new();
    t.invoice_setup(&skip_document_mapping(""));
    // INV2's eight lines each lack their item: eight problems on each of its rows
    let mut rows = vec![
        "No;Date;Cust;Terms;Total;Item;Amount".to_string(),
        "INV1;20.11.2026;C1;N30;1,00;A;1,00".to_string(),
    ];
    for _ in 0..8 {
        rows.push("INV2;20.11.2026;C1;N30;8,00;;1,00".to_string());
    }
    rows.push("INV3;20.11.2026;C1;N30;1,00;C;1,00".to_string());
    t.write("drop/inbox/INV_1.csv", rows.join("\n") + "\n");
    assert_eq!(t.run(&["run"]).code, 1);
    assert_eq!(payloads(&t).len(), 2);
    let report = t.read("drop/failed/INV_1.csv.errors.csv");
    assert_eq!(
        report.lines().count(),
        9,
        "the report has all eight: {report}"
    );
    let rejected = t.read("drop/failed/INV_1.rejected.csv");
    let lines: Vec<&str> = rejected.lines().collect();
    assert_eq!(lines.len(), 9, "{rejected}");
    for row in &lines[1..] {
        let error = row.rsplit(';').next().unwrap();
        assert_eq!(error.matches(" | ").count(), 5, "{row}");
        assert!(
            error.ends_with("and 3 more problems: the file's errors.csv lists them all"),
            "{row}"
        );
    }
    t.write(
        "drop/inbox/INV_1.rejected.csv",
        rejected.replace(";8,00;;1,00;", ";8,00;B;1,00;"),
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let sent = payloads(&t);
    assert_eq!(sent.len(), 3, "INV2 went: {sent:?}");
    let inv2 = sent.iter().find(|p| p.contains("INV2")).expect("INV2");
    let doc = t.read_json(&format!("drop/outbox/{inv2}"));
    assert_eq!(doc["lines"].as_array().unwrap().len(), 8);
}

#[test]
fn a_file_unreadable_as_a_whole_gets_no_rejected_rows() {
    let t = TestDir::new();
    t.invoice_setup(&skip_document_mapping(""));
    // no such column as the mapping reads: a problem with the whole file
    t.write("drop/inbox/INV_1.csv", "Nothing;Here\n1;2\n");
    assert_eq!(t.run(&["run"]).code, 1);
    assert!(t.exists("drop/failed/INV_1.csv.errors.json"));
    assert!(!t.exists("drop/failed/INV_1.rejected.csv"));
}

#[test]
fn reprocess_keeps_the_rejected_rows_with_the_old_reports() {
    let t = TestDir::new();
    t.invoice_setup(&skip_document_mapping(""));
    t.write(
        "drop/inbox/INV_1.csv",
        "No;Date;Cust;Terms;Total;Item;Amount\nINV1;20.11.2026;C1;XX;1,50;A;1,50\n",
    );
    assert_eq!(t.run(&["run"]).code, 1);
    assert!(t.exists("drop/failed/INV_1.rejected.csv"));
    // status lists the file once: its rejected rows are no failed file of their own
    let st = t.run(&["status", "--json"]).json();
    let failed: Vec<&str> = st["failed_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["INV_1.csv"]);
    // --all takes the file, not its rejected rows as a file of their own
    let out = t.run(&["reprocess", "--all"]);
    assert_eq!(out.code, 1, "{out:?}");
    let history = t.ls("drop/failed/.history");
    assert_eq!(history.len(), 1);
    let old = t.ls(&format!("drop/failed/.history/{}", history[0]));
    assert!(old.contains(&"INV_1.rejected.csv".to_string()), "{old:?}");
    assert!(t.exists("drop/failed/INV_1.rejected.csv"), "written again");
    assert!(!t.exists("drop/failed/INV_1.rejected.rejected.csv"));
}

const XML_MAPPING: &str = r#"name = "xinv"
match = ["XINV_*.xml"]
document_type = "sales_invoice"

[source]
format = "xml"
record = "/e:Export/e:Batch/e:Invoice"
lines = "e:Line"
namespaces = { e = "urn:export" }

[document]
key = ["@no"]
on_invalid = "skip-document"

[header]
number = { from = "@no", required = true }
terms  = { from = "e:Terms", allowed = "terms" }

[lines]
item = { from = "@item", required = true }

[lookups]
terms = { file = "ref/terms.csv", key = "code" }
"#;

#[test]
fn xml_rejected_records_keep_their_ancestors_and_come_back_fixed() {
    let t = TestDir::new();
    t.invoice_setup(XML_MAPPING);
    let xml = "<?xml version=\"1.0\" encoding=\"windows-1252\"?>\r\n\
<Export xmlns=\"urn:export\" version=\"2\">\r\n\
 <Batch id=\"b1\">\r\n\
  <Invoice no=\"X1\"><Terms>N30</Terms><Line item=\"Café\"/></Invoice>\r\n\
  <Invoice no=\"X2\"><Terms>XX</Terms><Line item=\"Thé\"/><Line item=\"Pâté\"/></Invoice>\r\n\
 </Batch>\r\n\
 <Batch id=\"b2\">\r\n\
  <Invoice no=\"X3\"><Terms>N30</Terms><Line item=\"Eau\"/></Invoice>\r\n\
  <Invoice no=\"X4\"><Terms>F--</Terms><Line item=\"Crème\"/></Invoice>\r\n\
 </Batch>\r\n\
</Export>\r\n";
    t.write("drop/inbox/XINV_1.xml", cp1252(xml));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(payloads(&t).len(), 2);
    let raw = std::fs::read(t.join("drop/failed/XINV_1.rejected.xml"))
        .unwrap_or_else(|e| panic!("{e}: {out:?}"));
    let (text, _, bad) = encoding_rs::WINDOWS_1252.decode(&raw);
    assert!(
        !bad && std::str::from_utf8(&raw).is_err(),
        "windows-1252 bytes"
    );
    assert!(
        text.starts_with("<?xml version=\"1.0\" encoding=\"windows-1252\"?>"),
        "{text}"
    );
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle} in {text}"))
    };
    assert!(at("<Export xmlns=\"urn:export\" version=\"2\">") < at("<Batch id=\"b1\">"));
    assert!(at("<Batch id=\"b1\">") < at("<!-- erpdrop_error:"));
    assert!(at("<!-- erpdrop_error:") < at("<Invoice no=\"X2\"><Terms>XX</Terms><Line item=\"Thé\"/><Line item=\"Pâté\"/></Invoice>"));
    assert!(at("<Batch id=\"b2\">") < at("<Invoice no=\"X4\">"));
    assert!(!text.contains("X1") && !text.contains("X3"), "{text}");
    // the problem of X4 quotes "F--": no "--" inside a comment
    for c in text.split("<!--").skip(1) {
        let body = c.split("-->").next().unwrap();
        assert!(!body.contains("--"), "{body}");
    }
    assert_eq!(text.matches("<!-- erpdrop_error:").count(), 2);
    assert!(text.trim_end().ends_with("</Export>"), "{text}");

    let fixed = text
        .replace("<Terms>XX</Terms>", "<Terms>N30</Terms>")
        .replace("<Terms>F--</Terms>", "<Terms>F48</Terms>");
    t.write("drop/inbox/XINV_1.rejected.xml", cp1252(&fixed));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(payloads(&t).len(), 4, "only X2 and X4 were sent");
    let x2 = payloads(&t).into_iter().find(|p| p.contains("X2")).unwrap();
    let doc = t.read_json(&format!("drop/outbox/{x2}"));
    assert_eq!(doc["lines"][1]["item"], "Pâté");
}

#[test]
fn a_rejected_name_the_globs_do_not_take_is_warned_of() {
    let t = TestDir::new();
    t.invoice_setup(&skip_document_mapping("").replace("INV_*.csv", "INV_????.csv"));
    t.write(
        "drop/inbox/INV_0001.csv",
        "No;Date;Cust;Terms;Total;Item;Amount\nINV1;20.11.2026;C1;XX;1,50;A;1,50\n",
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(t.exists("drop/failed/INV_0001.rejected.csv"));
    assert!(
        out.stderr.contains("does not match the mapping's globs"),
        "{}",
        out.stderr
    );
    // a name the globs take is not warned of
    let t = TestDir::new();
    t.invoice_setup(&skip_document_mapping(""));
    t.write(
        "drop/inbox/INV_0001.csv",
        "No;Date;Cust;Terms;Total;Item;Amount\nINV1;20.11.2026;C1;XX;1,50;A;1,50\n",
    );
    let out = t.run(&["run"]);
    assert!(!out.stderr.contains("globs"), "{}", out.stderr);
}

#[test]
fn an_erps_message_with_control_characters_does_not_break_the_round_trip() {
    use crate::util::erp::{Behaviour, FakeErp};
    let erp = FakeErp::start(Behaviour {
        reject: ["INV000001".to_string()].into(),
        reject_message: Some("terms\u{0}unknown\r\nsee the set-up".into()),
        ..Behaviour::default()
    });
    let t = TestDir::new();
    t.invoice_setup(crate::util::INVOICE_MAPPING);
    t.write(
        "erpdrop.toml",
        format!(
            "[folders]\nroot = \"drop\"\n[scan]\nsettle_seconds = 0\n[target]\nkind = \"http\"\nurl = \"{}/api/{{document}}\"\nid_pointer = \"/id\"\nretry = {{ attempts = 1, backoff_ms = 10 }}\n",
            erp.base()
        ),
    );
    t.write("drop/inbox/INV_1.csv", crate::util::invoices_csv(3, 1));
    assert_eq!(t.run(&["run"]).code, 1);
    let rows = std::fs::read(t.join("drop/failed/INV_1.rejected.csv")).unwrap();
    assert!(!rows.contains(&0), "no NUL in the rejected rows");
    let text = String::from_utf8_lossy(&rows);
    assert!(
        text.contains("terms\\x00unknown\\r\\nsee the set-up"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 2, "the header and one row: {text}");
    // the set-up is fixed; the rejected rows come back and go through
    erp.set(|b| b.reject.clear());
    std::fs::copy(
        t.join("drop/failed/INV_1.rejected.csv"),
        t.join("drop/inbox/INV_1.rejected.csv"),
    )
    .unwrap();
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(erp.created(), (3, 1));
}

/// The workbook mapping of the rejected-rows tests: title rows, a sheet by name, a date
/// cell, a boolean, numbers; a bad document is left out, the others go.
const SHEET_MAPPING: &str = r#"name = "sheet-invoices"
match = ["INV_*.xlsx", "INV_*.xls", "INV_*.ods"]
document_type = "sales_invoice"

[source]
format = "xlsx"
sheet = "Invoices"
skip_lines = 2
date_format = "%d.%m.%Y"

[document]
key = ["InvoiceNo"]
on_invalid = "skip-document"

[header]
number = { from = "InvoiceNo", required = true }
date   = { from = "Date", type = "date" }
paid   = { from = "Paid", type = "boolean" }

[lines]
item     = { from = "Item", required = true }
quantity = { from = "Qty", type = "integer" }
price    = { from = "Price", type = "decimal" }
"#;

/// The rows of a workbook's first sheet as the test reads them back, from A1 on.
fn sheet_rows(bytes: &[u8]) -> (Vec<String>, Vec<Vec<calamine::Data>>) {
    use calamine::{Reader, Xlsx};
    let mut wb = Xlsx::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let names = wb.sheet_names();
    let range = wb.worksheet_range(&names[0]).unwrap();
    // from A1 on, whatever the first cell
    let (top, left) = range.start().unwrap();
    let mut rows = vec![Vec::new(); top as usize];
    for r in range.rows() {
        let mut row = vec![calamine::Data::Empty; left as usize];
        row.extend(r.iter().cloned());
        rows.push(row);
    }
    (names, rows)
}

/// Writes rows read back from a workbook into a new one, each cell by its kind, as a
/// spreadsheet saves a file a user edited; `fix` changes a cell's value.
fn resave(
    name: &str,
    rows: &[Vec<calamine::Data>],
    fix: &dyn Fn(u32, u16, &calamine::Data) -> Option<calamine::Data>,
) -> Vec<u8> {
    use calamine::Data;
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name(name).unwrap();
    let date = Format::new().set_num_format("dd.mm.yyyy");
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let (r, c) = (r as u32, c as u16);
            let cell = fix(r, c, cell).unwrap_or_else(|| cell.clone());
            match cell {
                Data::Empty => {}
                Data::String(s) => {
                    ws.write_string(r, c, s).unwrap();
                }
                Data::Float(f) => {
                    ws.write_number(r, c, f).unwrap();
                }
                Data::Bool(b) => {
                    ws.write_boolean(r, c, b).unwrap();
                }
                Data::DateTime(d) => {
                    let (y, m, d, ..) = d.to_ymd_hms_milli();
                    let d = ExcelDateTime::from_ymd(y, m, d).unwrap();
                    ws.write_datetime_with_format(r, c, &d, &date).unwrap();
                }
                other => panic!("a cell the test does not resave: {other:?}"),
            }
        }
    }
    wb.save_to_buffer().unwrap()
}

/// Runs the fixed rejected workbook dropped back (INV-2 and INV-4 of the five invoices
/// of a workbook test): it goes through whole, only those two are sent, and INV-2's
/// date cell is a date again. Their payloads.
fn fixed_workbook_went(t: &TestDir) -> (serde_json::Value, serde_json::Value) {
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(payloads(t).len(), 5, "only INV-2 and INV-4 were sent");
    assert!(t.ls("drop/inbox").is_empty());
    let doc = |no: &str| {
        let p = payloads(t)
            .into_iter()
            .find(|p| p.contains(no))
            .expect("sent");
        t.read_json(&format!("drop/outbox/{p}"))
    };
    let inv2 = doc("INV-2");
    assert_eq!(
        inv2["date"], "2026-11-20",
        "the date cell read back as a date"
    );
    assert_eq!(inv2["paid"], false);
    (inv2, doc("INV-4"))
}

#[test]
fn xlsx_rejected_rows_keep_the_cells_kinds_and_come_back_fixed() {
    use calamine::Data;
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let t = TestDir::new();
    t.mapping_setup(SHEET_MAPPING);
    let mut wb = Workbook::new();
    wb.add_worksheet()
        .set_name("Summary")
        .unwrap()
        .write_string(0, 0, "Not the data")
        .unwrap();
    let ws = wb.add_worksheet();
    ws.set_name("Invoices").unwrap();
    ws.write_string(0, 0, "Sales invoices, November 2026")
        .unwrap();
    ws.write_string(1, 0, "Printed 01.12.2026").unwrap();
    for (c, h) in ["InvoiceNo", "Date", "Paid", "Item", "Qty", "Price"]
        .iter()
        .enumerate()
    {
        ws.write_string(2, c as u16, *h).unwrap();
    }
    let day = ExcelDateTime::from_ymd(2026, 11, 20).unwrap();
    let fmt = Format::new().set_num_format("dd.mm.yyyy");
    // INV-2 is bad (a quantity "x"), with a second row far from its first (the sheet is
    // not grouped by key); INV-4 is bad (a day that does not exist, as text)
    // (number, date as text or "" for the date cell, paid, item, quantity, price)
    let rows = [
        ("INV-1", "", true, "A-1", "12", 0.1),
        ("INV-2", "", false, "B-1", "x", 1234.5),
        ("INV-3", "", true, "C-1", "1", 2.5),
        ("INV-2", "", false, "B-2", "2", 0.3),
        ("INV-4", "32.11.2026", true, "D-1", "3", 7.0),
        ("INV-5", "", true, "E-1", "4", 1.0),
    ];
    for (i, (no, text_date, paid, item, qty, price)) in rows.iter().enumerate() {
        let r = 3 + i as u32;
        ws.write_string(r, 0, *no).unwrap();
        if text_date.is_empty() {
            ws.write_datetime_with_format(r, 1, &day, &fmt).unwrap();
        } else {
            ws.write_string(r, 1, *text_date).unwrap();
        }
        ws.write_boolean(r, 2, *paid).unwrap();
        ws.write_string(r, 3, *item).unwrap();
        match qty.parse::<f64>() {
            Ok(q) => ws.write_number(r, 4, q).map(|_| ()).unwrap(),
            Err(_) => ws.write_string(r, 4, *qty).map(|_| ()).unwrap(),
        }
        ws.write_number(r, 5, *price).unwrap();
    }
    t.write("drop/inbox/INV_1.xlsx", wb.save_to_buffer().unwrap());
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(payloads(&t).len(), 3, "INV-1, INV-3, INV-5 went");

    let rejected = std::fs::read(t.join("drop/failed/INV_1.rejected.xlsx")).unwrap();
    let (names, got) = sheet_rows(&rejected);
    assert_eq!(names, ["Invoices"], "the sheet that was read, alone");
    assert_eq!(
        got.len(),
        6,
        "2 titles, the header, INV-2 twice, INV-4: {got:?}"
    );
    assert_eq!(
        got[0][0],
        Data::String("Sales invoices, November 2026".into())
    );
    assert_eq!(got[1][0], Data::String("Printed 01.12.2026".into()));
    let header: Vec<String> = got[2].iter().map(|c| c.to_string()).collect();
    assert_eq!(
        header,
        [
            "InvoiceNo",
            "Date",
            "Paid",
            "Item",
            "Qty",
            "Price",
            "erpdrop_error"
        ]
    );
    let col = |r: usize, c: usize| got[r][c].clone();
    assert_eq!(col(3, 0), Data::String("INV-2".into()));
    assert_eq!(col(4, 0), Data::String("INV-2".into()));
    assert_eq!(col(5, 0), Data::String("INV-4".into()));
    match col(3, 1) {
        Data::DateTime(d) => {
            let (y, m, day, ..) = d.to_ymd_hms_milli();
            assert_eq!((y, m, day), (2026, 11, 20));
        }
        other => panic!("a date cell stays a date cell: {other:?}"),
    }
    assert_eq!(col(3, 2), Data::Bool(false));
    assert_eq!(col(3, 4), Data::String("x".into()));
    assert_eq!(col(3, 5), Data::Float(1234.5));
    assert_eq!(col(4, 4), Data::Float(2.0));
    assert_eq!(col(5, 1), Data::String("32.11.2026".into()));
    let e2 = col(3, 6).to_string();
    assert_eq!(
        e2,
        col(4, 6).to_string(),
        "both rows of INV-2 carry its problems"
    );
    assert!(e2.contains("Qty") || e2.contains("\"x\""), "{e2}");
    assert!(
        col(5, 6).to_string().contains("32.11.2026"),
        "{:?}",
        col(5, 6)
    );

    // the user fixes the two documents in the rejected workbook and drops it back
    let fixed = resave("Invoices", &got, &|r, c, _| match (r, c) {
        (3, 4) => Some(Data::Float(5.0)),
        (5, 1) => Some(Data::String("30.11.2026".into())),
        _ => None,
    });
    t.write("drop/inbox/INV_1.rejected.xlsx", fixed);
    let (inv2, inv4) = fixed_workbook_went(&t);
    assert_eq!(inv2["lines"][0]["quantity"], 5);
    assert_eq!(inv2["lines"][0]["price"], "1234.5");
    assert_eq!(inv2["lines"][1]["item"], "B-2");
    assert_eq!(inv2["lines"][1]["price"], "0.3");
    assert_eq!(inv4["date"], "2026-11-30");
}

#[test]
fn a_rejected_workbook_that_fails_again_keeps_one_error_column() {
    let t = TestDir::new();
    t.mapping_setup(SHEET_MAPPING);
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("Invoices").unwrap();
    ws.write_string(0, 0, "Title").unwrap();
    for (c, h) in ["InvoiceNo", "Date", "Paid", "Item", "Qty", "Price"]
        .iter()
        .enumerate()
    {
        ws.write_string(2, c as u16, *h).unwrap();
    }
    ws.write_string(3, 0, "INV-9").unwrap();
    ws.write_string(3, 3, "Z").unwrap();
    ws.write_string(3, 4, "many").unwrap();
    t.write("drop/inbox/INV_1.xlsx", wb.save_to_buffer().unwrap());
    assert_eq!(t.run(&["run"]).code, 1);
    let first = std::fs::read(t.join("drop/failed/INV_1.rejected.xlsx")).unwrap();
    // dropped back unchanged: it fails again, still with one erpdrop_error column
    t.write("drop/inbox/INV_1.rejected.xlsx", &first);
    assert_eq!(t.run(&["run"]).code, 1);
    let again = std::fs::read(t.join("drop/failed/INV_1.rejected.1.rejected.xlsx")).unwrap();
    let (_, rows) = sheet_rows(&again);
    let header: Vec<String> = rows[2].iter().map(|c| c.to_string()).collect();
    assert_eq!(
        header,
        [
            "InvoiceNo",
            "Date",
            "Paid",
            "Item",
            "Qty",
            "Price",
            "erpdrop_error"
        ]
    );
    assert_eq!(rows[3].len(), 7, "{rows:?}");
    assert!(rows[3][6].to_string().contains("many"), "{rows:?}");
    assert_eq!(rows[0][0], calamine::Data::String("Title".into()));
}

/// The rows of the sheet of an xls file as the test reads them back (calamine, as
/// erpdrop reads it): names, and the rows from A1 on, without their trailing empty cells.
fn xls_rows(bytes: &[u8]) -> SheetRows {
    use calamine::{Reader, Xls};
    let mut wb = Xls::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let names = wb.sheet_names();
    let range = wb.worksheet_range(&names[0]).unwrap();
    let (top, left) = range.start().unwrap();
    let mut rows = vec![Vec::new(); top as usize];
    for r in range.rows() {
        let mut row = vec![calamine::Data::Empty; left as usize];
        row.extend(r.iter().cloned());
        while row.last() == Some(&calamine::Data::Empty) {
            row.pop();
        }
        rows.push(row);
    }
    (names, rows)
}

/// The `Workbook` stream of an xls file (an OLE compound file).
fn xls_stream(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut doc = cfb::CompoundFile::open(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut s = Vec::new();
    doc.open_stream("/Workbook")
        .unwrap()
        .read_to_end(&mut s)
        .unwrap();
    s
}

/// The xls file with a text of its shared strings replaced by another of the same
/// length, as a user who retypes a cell: the rest of the file as it was.
fn xls_retyped(bytes: &[u8], edits: &[(&str, &str)]) -> Vec<u8> {
    use std::io::{Seek, Write};
    let mut stream = xls_stream(bytes);
    for (from, to) in edits {
        // the string as the SST holds it: its length, flags (16-bit), UTF-16LE
        let enc = |s: &str| {
            let u: Vec<u16> = s.encode_utf16().collect();
            let mut b = (u.len() as u16).to_le_bytes().to_vec();
            b.push(1);
            b.extend(u.iter().flat_map(|u| u.to_le_bytes()));
            b
        };
        let (from, to) = (enc(from), enc(to));
        assert_eq!(from.len(), to.len());
        let at: Vec<usize> = (0..=stream.len() - from.len())
            .filter(|&i| stream[i..i + from.len()] == from[..])
            .collect();
        assert_eq!(at.len(), 1, "{from:?} once in the stream");
        stream[at[0]..at[0] + to.len()].copy_from_slice(&to);
    }
    let mut cur = std::io::Cursor::new(bytes.to_vec());
    {
        let mut doc = cfb::CompoundFile::open(&mut cur).unwrap();
        let mut s = doc.open_stream("/Workbook").unwrap();
        s.rewind().unwrap();
        s.write_all(&stream).unwrap();
        s.flush().unwrap();
    }
    cur.into_inner()
}

fn xls_1c_invoices() -> Vec<u8> {
    // written by scripts/gen-sheet-fixtures with xlwt: the rows of `ods_invoices`, in
    // Cyrillic, with long notes
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/sheets/xls-1c/INV_1.xls"
    ))
    .unwrap()
}

#[test]
fn xls_rejected_rows_keep_the_cells_kinds_and_come_back_fixed() {
    use calamine::Data;
    let t = TestDir::new();
    t.mapping_setup(&SHEET_MAPPING.replace("format = \"xlsx\"", "format = \"xls\""));
    t.write("drop/inbox/INV_1.xls", xls_1c_invoices());
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(payloads(&t).len(), 3, "INV-1, INV-3, INV-5 went");

    let rejected = std::fs::read(t.join("drop/failed/INV_1.rejected.xls")).unwrap();
    assert_eq!(
        rejected[..8],
        [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1],
        "OLE"
    );
    // the failed rows' notes (2 x 3,104 characters in UTF-16) take an SST and a CONTINUE
    let stream = xls_stream(&rejected);
    let sst = (0..stream.len() - 4)
        .find(|&i| stream[i..i + 2] == [0xFC, 0x00] && stream[i + 2..i + 4] == [0x20, 0x20])
        .expect("an SST record of 8,224 bytes");
    assert_eq!(
        stream[sst + 8228..sst + 8230],
        [0x3C, 0x00],
        "then a CONTINUE"
    );
    let (names, got) = xls_rows(&rejected);
    assert_eq!(names, ["Invoices"], "the sheet that was read, alone");
    assert_eq!(
        got.len(),
        6,
        "title, blank, header, INV-2 twice, INV-4: {got:?}"
    );
    assert_eq!(
        got[0],
        [Data::String(
            "Реализация товаров и услуг, ноябрь 2026".into()
        )]
    );
    assert!(got[1].is_empty(), "{got:?}");
    let header: Vec<String> = got[2].iter().map(|c| c.to_string()).collect();
    assert_eq!(
        header,
        [
            "InvoiceNo",
            "Date",
            "Paid",
            "Item",
            "Qty",
            "Price",
            "Note",
            "erpdrop_error"
        ]
    );
    let col = |r: usize, c: usize| got[r][c].clone();
    assert_eq!(col(3, 0), Data::String("INV-2".into()));
    let Data::DateTime(when) = col(3, 1) else {
        panic!("a date cell: {:?}", col(3, 1))
    };
    assert_eq!(when.to_ymd_hms_milli(), (2026, 11, 20, 9, 30, 0, 0));
    assert_eq!(col(3, 2), Data::Bool(false));
    assert_eq!(col(3, 3), Data::String("Гайка М8".into()));
    assert_eq!(col(3, 4), Data::String("x".into()));
    assert_eq!(col(3, 5), Data::Float(1234.5));
    let note = col(3, 6).to_string();
    assert!(note.starts_with("1. Примечание к строке: съешь"), "{note}");
    assert_eq!(note.chars().count(), 3104);
    assert_eq!(col(4, 3), Data::String("Винт".into()));
    assert_eq!(col(4, 4), Data::Float(2.0));
    assert_eq!(col(4, 5), Data::Float(0.1), "0.1 stays 0.1");
    assert!(col(4, 6).to_string().starts_with("2. Примечание"));
    assert_eq!(col(5, 0), Data::String("INV-4".into()));
    assert_eq!(col(5, 1), Data::String("32.11.2026".into()));
    assert_eq!(col(5, 2), Data::Bool(true));
    assert_eq!(col(5, 5), Data::Float(7.0));
    assert_eq!(
        got[5].len(),
        8,
        "no note: the error in its own column: {:?}",
        got[5]
    );
    let e2 = col(3, 7).to_string();
    assert_eq!(
        e2,
        col(4, 7).to_string(),
        "both rows of INV-2 carry its problems"
    );
    assert!(e2.contains("\"x\""), "{e2}");
    assert!(
        col(5, 7).to_string().contains("32.11.2026"),
        "{:?}",
        col(5, 7)
    );

    // the user retypes the two cells in the rejected workbook and drops it back
    let fixed = xls_retyped(&rejected, &[("x", "5"), ("32.11.2026", "30.11.2026")]);
    t.write("drop/inbox/INV_1.rejected.xls", fixed);
    let (inv2, inv4) = fixed_workbook_went(&t);
    assert_eq!(inv2["lines"][0]["item"], "Гайка М8");
    assert_eq!(inv2["lines"][0]["quantity"], 5);
    assert_eq!(inv2["lines"][0]["price"], "1234.5");
    assert_eq!(inv2["lines"][1]["item"], "Винт");
    assert_eq!(inv2["lines"][1]["price"], "0.1");
    assert_eq!(inv4["date"], "2026-11-30");
    assert_eq!(inv4["paid"], true);
}

/// A workbook's sheet names and the first sheet's rows, as calamine reads them.
type SheetRows = (Vec<String>, Vec<Vec<calamine::Data>>);
/// A rejected workbook dropped back as erpdrop wrote it fails again with the same cells
/// and one `erpdrop_error` column (at `error_col`, past the sheet's own), not a second:
/// `format` the workbook's, `rows_of` its reader.
fn a_rejected_book_fails_again_with_one_error_column(
    format: &str,
    book: Vec<u8>,
    rows_of: fn(&[u8]) -> SheetRows,
    error_col: usize,
) {
    let t = TestDir::new();
    t.mapping_setup(&SHEET_MAPPING.replace("format = \"xlsx\"", &format!("format = \"{format}\"")));
    t.write(&format!("drop/inbox/INV_1.{format}"), book);
    assert_eq!(t.run(&["run"]).code, 1);
    let first = std::fs::read(t.join(&format!("drop/failed/INV_1.rejected.{format}"))).unwrap();
    t.write(&format!("drop/inbox/INV_1.rejected.{format}"), &first);
    assert_eq!(t.run(&["run"]).code, 1);
    let again =
        std::fs::read(t.join(&format!("drop/failed/INV_1.rejected.1.rejected.{format}"))).unwrap();
    let (first_names, first_rows) = rows_of(&first);
    let (names, rows) = rows_of(&again);
    assert_eq!(names, first_names);
    assert_eq!(rows.len(), 6, "{rows:?}");
    for (r, row) in rows.iter().enumerate() {
        // the same cells; the messages name the rows of the file they were read from
        let upto = if r >= 3 { error_col } else { row.len() };
        assert_eq!(row[..upto], first_rows[r][..upto], "row {r}");
        assert!(row.len() <= error_col + 1, "{row:?}");
    }
    assert_eq!(
        rows[2][error_col],
        calamine::Data::String("erpdrop_error".into())
    );
    assert!(
        rows[3][error_col].to_string().contains("\"x\""),
        "{:?}",
        rows[3]
    );
}

#[test]
fn an_xls_rejected_file_that_fails_again_keeps_one_error_column() {
    a_rejected_book_fails_again_with_one_error_column("xls", xls_1c_invoices(), xls_rows, 7);
}

#[test]
fn an_xls_sheet_with_no_column_left_for_the_error_gets_no_rejected_file() {
    // every column A to IV taken: erpdrop_error would be the 257th, which xls lacks
    let t = TestDir::new();
    t.mapping_setup(&SHEET_MAPPING.replace("format = \"xlsx\"", "format = \"xls\""));
    t.write(
        "drop/inbox/INV_wide.xls",
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/sheets/xls-1c/INV_wide.xls"
        ))
        .unwrap(),
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(payloads(&t).len(), 1, "INV-1 went");
    let failed = t.ls("drop/failed");
    assert!(
        failed.iter().any(|f| f.ends_with(".errors.csv")),
        "{failed:?}"
    );
    assert!(
        !failed.iter().any(|f| f.contains(".rejected.")),
        "{failed:?}"
    );
    assert!(
        out.stderr.contains("no rejected rows file") && out.stderr.contains("column IV"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_xls_fixture_gets_its_rejected_rows_in_xls() {
    // the register of fixtures/sheets/xls (xlwt, DD/MM/YYYY dates, #,##0.00 amounts), its
    // amounts made integers: INV-7001's 0.1 and 1234.5 fail, and INV-7002's 99.99
    let t = TestDir::new();
    t.copy_from_repo("fixtures/sheets/xls");
    for e in std::fs::read_dir(t.join("mappings")).unwrap() {
        let p = e.unwrap().path();
        let m = std::fs::read_to_string(&p).unwrap();
        let (from, to) = ("type = \"decimal\" }", "type = \"integer\" }");
        assert!(m.contains(from), "{m}");
        let m = m.replace(from, to).replace(
            "[document]\n",
            "[document]\non_invalid = \"skip-document\"\n",
        );
        std::fs::write(&p, m).unwrap();
    }
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    let failed = t.ls("drop/failed");
    let name = failed
        .iter()
        .find(|f| f.contains(".rejected."))
        .unwrap_or_else(|| panic!("{failed:?}"));
    assert!(name.ends_with(".xls"), "{name}");
    let (names, rows) = xls_rows(&std::fs::read(t.join(&format!("drop/failed/{name}"))).unwrap());
    assert_eq!(names, ["Invoices"]);
    assert_eq!(rows.len(), 6, "title, blank, header, three rows: {rows:?}");
    assert_eq!(rows[3][5], calamine::Data::Float(0.1));
    assert_eq!(rows[4][5], calamine::Data::Float(1234.5));
    assert_eq!(rows[5][5], calamine::Data::Float(99.99));
    let calamine::Data::DateTime(d) = &rows[3][1] else {
        panic!("{rows:?}")
    };
    assert_eq!(d.to_ymd_hms_milli(), (2026, 11, 20, 0, 0, 0, 0));
    assert_eq!(rows[2][6], calamine::Data::String("erpdrop_error".into()));
}

/// The sheets of an ods file as the test reads them back: names, and the rows of the
/// first from A1 on.
fn ods_rows(bytes: &[u8]) -> SheetRows {
    use calamine::{Ods, Reader};
    let mut wb = Ods::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let names = wb.sheet_names();
    let range = wb.worksheet_range(&names[0]).unwrap();
    let (top, left) = range.start().unwrap();
    let mut rows = vec![Vec::new(); top as usize];
    for r in range.rows() {
        let mut row = vec![calamine::Data::Empty; left as usize];
        row.extend(r.iter().cloned());
        while row.last() == Some(&calamine::Data::Empty) {
            row.pop();
        }
        rows.push(row);
    }
    (names, rows)
}

/// An ods cell as LibreOffice Calc writes it (the value in the text for a string).
pub(crate) fn ods_cell(d: &calamine::Data) -> String {
    use calamine::Data;
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    match d {
        Data::Empty => "<table:table-cell/>".into(),
        Data::String(s) => format!(
            "<table:table-cell office:value-type=\"string\" calcext:value-type=\"string\"><text:p>{}</text:p></table:table-cell>",
            esc(s)
        ),
        Data::Float(f) => format!(
            "<table:table-cell office:value-type=\"float\" office:value=\"{f}\" calcext:value-type=\"float\"><text:p>{}</text:p></table:table-cell>",
            f.to_string().replace('.', ",")
        ),
        Data::Bool(b) => format!(
            "<table:table-cell office:value-type=\"boolean\" office:boolean-value=\"{b}\" calcext:value-type=\"boolean\"><text:p>{}</text:p></table:table-cell>",
            if *b { "WAHR" } else { "FALSCH" }
        ),
        Data::DateTimeIso(s) => format!(
            "<table:table-cell office:value-type=\"date\" office:date-value=\"{s}\" calcext:value-type=\"date\"><text:p>{s}</text:p></table:table-cell>"
        ),
        other => panic!("a cell the test does not write: {other:?}"),
    }
}

/// An ods package of sheets whose rows are cells' XML, as Calc saves one: the million
/// empty rows it declares below the data included.
pub(crate) fn ods_book(sheets: &[(&str, Vec<Vec<String>>)]) -> Vec<u8> {
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    let mut content = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:calcext="urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0" xmlns:of="urn:oasis:names:tc:opendocument:xmlns:of:1.2" office:version="1.3"><office:body><office:spreadsheet>"#,
    );
    for (name, rows) in sheets {
        content.push_str(&format!(
            "<table:table table:name=\"{name}\"><table:table-column table:number-columns-repeated=\"8\"/>"
        ));
        for row in rows {
            content.push_str("<table:table-row>");
            if row.is_empty() {
                content.push_str("<table:table-cell table:number-columns-repeated=\"8\"/>");
            }
            for c in row {
                content.push_str(c);
            }
            content.push_str("</table:table-row>\n");
        }
        content.push_str("<table:table-row table:number-rows-repeated=\"1048000\"><table:table-cell table:number-columns-repeated=\"8\"/></table:table-row></table:table>");
    }
    content.push_str("</office:spreadsheet></office:body></office:document-content>");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("mimetype", stored).unwrap();
    zip.write_all(b"application/vnd.oasis.opendocument.spreadsheet")
        .unwrap();
    zip.start_file("content.xml", SimpleFileOptions::default())
        .unwrap();
    zip.write_all(content.as_bytes()).unwrap();
    zip.start_file("META-INF/manifest.xml", SimpleFileOptions::default())
        .unwrap();
    zip.write_all(
        br#"<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#,
    )
    .unwrap();
    zip.finish().unwrap().into_inner()
}

/// The invoices of the ods tests: a merged title row, a blank row, the header; INV-2 is
/// bad (a quantity "x") with a second row far from its first, INV-4 is bad (a day that
/// does not exist, as text); a price shown as "0,10 €" and a formula's saved value.
fn ods_invoices() -> Vec<u8> {
    use calamine::Data;
    let s = |v: &str| ods_cell(&Data::String(v.into()));
    let date = |iso: &str| ods_cell(&Data::DateTimeIso(iso.into()));
    let f = |v: f64| ods_cell(&Data::Float(v));
    let b = |v: bool| ods_cell(&Data::Bool(v));
    let mut rows = vec![
        vec![
            "<table:table-cell table:number-columns-spanned=\"6\" office:value-type=\"string\"><text:p>Sales invoices, November 2026</text:p></table:table-cell><table:covered-table-cell table:number-columns-repeated=\"5\"/>".to_string(),
        ],
        vec![],
        ["InvoiceNo", "Date", "Paid", "Item", "Qty", "Price"]
            .iter()
            .map(|h| s(h))
            .collect(),
    ];
    rows.push(vec![
        s("INV-1"),
        date("2026-11-20"),
        b(true),
        s("A-1"),
        f(12.0),
        "<table:table-cell office:value-type=\"currency\" office:currency=\"EUR\" office:value=\"0.1\"><text:p>0,10 €</text:p></table:table-cell>".into(),
    ]);
    rows.push(vec![
        s("INV-2"),
        date("2026-11-20T09:30:00"),
        b(false),
        s("B-1"),
        s("x"),
        "<table:table-cell table:formula=\"of:=1234.5\" office:value-type=\"float\" office:value=\"1234.5\"><text:p>1.234,50</text:p></table:table-cell>".into(),
    ]);
    rows.push(vec![
        s("INV-3"),
        date("2026-11-20"),
        b(true),
        s("C-1"),
        f(1.0),
        f(2.5),
    ]);
    rows.push(vec![
        s("INV-2"),
        date("2026-11-20T09:30:00"),
        b(false),
        s("B-2"),
        f(2.0),
        f(0.1),
    ]);
    rows.push(vec![
        s("INV-4"),
        s("32.11.2026"),
        b(true),
        s("D-1"),
        f(3.0),
        f(7.0),
    ]);
    rows.push(vec![
        s("INV-5"),
        date("2026-11-20"),
        b(true),
        s("E-1"),
        f(4.0),
        f(1.0),
    ]);
    ods_book(&[
        ("Summary", vec![vec![s("Not the data")]]),
        ("Invoices", rows),
    ])
}

#[test]
fn ods_rejected_rows_keep_the_cells_kinds_and_come_back_fixed() {
    use calamine::Data;
    let t = TestDir::new();
    t.mapping_setup(&SHEET_MAPPING.replace("format = \"xlsx\"", "format = \"ods\""));
    t.write("drop/inbox/INV_1.ods", ods_invoices());
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(payloads(&t).len(), 3, "INV-1, INV-3, INV-5 went");

    let rejected = std::fs::read(t.join("drop/failed/INV_1.rejected.ods")).unwrap();
    // the package as ODF wants it: mimetype first, stored, no extra field
    assert_eq!(&rejected[30..38], b"mimetype");
    assert_eq!(u16::from_le_bytes([rejected[8], rejected[9]]), 0, "stored");
    assert_eq!(u16::from_le_bytes([rejected[28], rejected[29]]), 0);
    let (names, got) = ods_rows(&rejected);
    assert_eq!(names, ["Invoices"], "the sheet that was read, alone");
    assert_eq!(
        got.len(),
        6,
        "title, blank, header, INV-2 twice, INV-4: {got:?}"
    );
    assert_eq!(
        got[0],
        [Data::String("Sales invoices, November 2026".into())]
    );
    assert!(got[1].is_empty(), "{got:?}");
    let header: Vec<String> = got[2].iter().map(|c| c.to_string()).collect();
    assert_eq!(
        header,
        [
            "InvoiceNo",
            "Date",
            "Paid",
            "Item",
            "Qty",
            "Price",
            "erpdrop_error"
        ]
    );
    let col = |r: usize, c: usize| got[r][c].clone();
    assert_eq!(col(3, 0), Data::String("INV-2".into()));
    assert_eq!(col(3, 1), Data::DateTimeIso("2026-11-20T09:30:00".into()));
    assert_eq!(col(3, 2), Data::Bool(false));
    assert_eq!(col(3, 4), Data::String("x".into()));
    assert_eq!(col(3, 5), Data::Float(1234.5), "the formula's value");
    assert_eq!(col(4, 3), Data::String("B-2".into()));
    assert_eq!(col(4, 4), Data::Float(2.0));
    assert_eq!(col(4, 5), Data::Float(0.1), "0.1 stays 0.1");
    assert_eq!(col(5, 0), Data::String("INV-4".into()));
    assert_eq!(col(5, 1), Data::String("32.11.2026".into()));
    let e2 = col(3, 6).to_string();
    assert_eq!(
        e2,
        col(4, 6).to_string(),
        "both rows of INV-2 carry its problems"
    );
    assert!(e2.contains("Qty") || e2.contains("\"x\""), "{e2}");
    assert!(
        col(5, 6).to_string().contains("32.11.2026"),
        "{:?}",
        col(5, 6)
    );

    // the user fixes the two documents in the rejected sheet and saves it (as Calc does)
    let fixed: Vec<Vec<String>> = got
        .iter()
        .enumerate()
        .map(|(r, row)| {
            row.iter()
                .enumerate()
                .map(|(c, d)| match (r, c) {
                    (3, 4) => ods_cell(&Data::Float(5.0)),
                    (5, 1) => ods_cell(&Data::String("30.11.2026".into())),
                    _ => ods_cell(d),
                })
                .collect()
        })
        .collect();
    t.write(
        "drop/inbox/INV_1.rejected.ods",
        ods_book(&[("Invoices", fixed)]),
    );
    let (inv2, inv4) = fixed_workbook_went(&t);
    assert_eq!(inv2["lines"][0]["quantity"], 5);
    assert_eq!(inv2["lines"][0]["price"], "1234.5");
    assert_eq!(inv2["lines"][1]["item"], "B-2");
    assert_eq!(inv2["lines"][1]["price"], "0.1");
    assert_eq!(inv4["date"], "2026-11-30");
}

#[test]
fn an_ods_rejected_file_that_fails_again_keeps_one_error_column() {
    a_rejected_book_fails_again_with_one_error_column("ods", ods_invoices(), ods_rows, 6);
}

#[test]
fn a_calc_ods_file_gets_its_rejected_rows_in_ods() {
    // the fixture as LibreOffice Calc saves it: merged title, dates with and without a
    // time, amounts as currency, a formula, a second sheet
    let t = TestDir::new();
    t.copy_from_repo("fixtures/sheets/ods");
    for e in std::fs::read_dir(t.join("mappings")).unwrap() {
        let p = e.unwrap().path();
        let m = std::fs::read_to_string(&p).unwrap();
        let (from, to) = ("type = \"decimal\", scale = 2", "type = \"integer\"");
        assert!(m.contains(from), "{m}");
        let m = m.replace(from, to).replace(
            "[document]\n",
            "[document]\non_invalid = \"skip-document\"\n",
        );
        std::fs::write(&p, m).unwrap();
    }
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    let failed = t.ls("drop/failed");
    assert!(
        failed.iter().any(|f| f.ends_with(".errors.csv")),
        "{failed:?}"
    );
    let rejected = std::fs::read(t.join("drop/failed/Rechnungen_2026-11.rejected.ods")).unwrap();
    let (names, rows) = ods_rows(&rejected);
    assert_eq!(names, ["Rechnungen"]);
    let header: Vec<String> = rows[2].iter().map(|c| c.to_string()).collect();
    assert_eq!(
        header,
        [
            "Rechnung",
            "Datum",
            "Kunde",
            "Artikel",
            "Menge",
            "Betrag",
            "erpdrop_error"
        ]
    );
    assert_eq!(
        rows[0][0],
        calamine::Data::String("Ausgangsrechnungen November 2026".into())
    );
    // RE-2026-0815's amounts (0.10 and 1234.50) are no integers: its two rows
    assert_eq!(rows[3][0], calamine::Data::String("RE-2026-0815".into()));
    assert_eq!(rows[3][1], calamine::Data::DateTimeIso("2026-11-20".into()));
    assert_eq!(rows[3][5], calamine::Data::Float(0.1));
    assert_eq!(rows[4][5], calamine::Data::Float(1234.5));
    assert_eq!(rows[3][2], calamine::Data::String("Müller GmbH".into()));
    assert!(rows.iter().skip(3).all(|r| r[0] == rows[3][0]), "{rows:?}");
}

#[test]
fn rejected_workbook_cells_keep_error_cells_and_times_as_they_were() {
    use calamine::Data;
    use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook};
    let t = TestDir::new();
    t.mapping_setup(&SHEET_MAPPING.replace(
        "price    = { from = \"Price\", type = \"decimal\" }",
        "price    = { from = \"Price\", type = \"decimal\" }\nat       = { from = \"At\" }",
    ));
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("Invoices").unwrap();
    for (c, h) in ["InvoiceNo", "Date", "Paid", "Item", "Qty", "Price", "At"]
        .iter()
        .enumerate()
    {
        ws.write_string(2, c as u16, *h).unwrap();
    }
    let when = ExcelDateTime::from_ymd(2026, 11, 20)
        .unwrap()
        .and_hms(13, 45, 0)
        .unwrap();
    let time = ExcelDateTime::from_hms(8, 30, 0).unwrap();
    ws.write_string(3, 0, "INV-7").unwrap();
    ws.write_datetime_with_format(
        3,
        1,
        &when,
        &Format::new().set_num_format("dd.mm.yyyy hh:mm"),
    )
    .unwrap();
    ws.write_string(3, 3, "A").unwrap();
    ws.write_formula(3, 5, Formula::new("=NA()").set_result("#N/A"))
        .unwrap();
    ws.write_datetime_with_format(3, 6, &time, &Format::new().set_num_format("hh:mm"))
        .unwrap();
    t.write("drop/inbox/INV_1.xlsx", wb.save_to_buffer().unwrap());
    assert_eq!(t.run(&["run"]).code, 1);
    let rejected = std::fs::read(t.join("drop/failed/INV_1.rejected.xlsx")).unwrap();
    let (_, rows) = sheet_rows(&rejected);
    let row = &rows[3];
    match &row[1] {
        Data::DateTime(d) => assert_eq!(d.to_ymd_hms_milli(), (2026, 11, 20, 13, 45, 0, 0)),
        other => panic!("a date and time cell stays one: {other:?}"),
    }
    assert_eq!(row[5], Data::Error(calamine::CellErrorType::NA), "{row:?}");
    match &row[6] {
        Data::DateTime(d) => assert!((d.as_f64() - 8.5 / 24.0).abs() < 1e-9, "{d:?}"),
        other => panic!("a time cell stays one: {other:?}"),
    }
    assert!(row[7].to_string().contains("#N/A"), "{row:?}");
    // dropped back as it is, it reads as the first did: the same problem, no other
    t.write("drop/inbox/INV_1.rejected.xlsx", &rejected);
    assert_eq!(t.run(&["run"]).code, 1);
    let again = std::fs::read(t.join("drop/failed/INV_1.rejected.1.rejected.xlsx")).unwrap();
    let (_, rows2) = sheet_rows(&again);
    assert_eq!(rows2[3][7], row[7], "the same problem");
    assert!(payloads(&t).is_empty());
}

/// Invoices in fixed width with record types: an H line and its L lines per invoice.
const FIXED_HL: &str = r#"name = "fixed-invoices"
match = ["INV_*.txt"]
document_type = "sales_invoice"

[source]
format = "fixed"
encoding = "windows-1251"
record_type = { column = "RecType", header = "H", line = "L" }

[source.columns]
RecType = { start = 1, width = 1 }

[source.columns.H]
InvoiceNo = { start = 2, width = 10 }
Customer  = { start = 12, width = 8 }
Status    = { start = 20, width = 9 }

[source.columns.L]
Item      = { start = 2, width = 10 }
LineTotal = { start = 12, width = 10 }

[document]
key = ["InvoiceNo"]
on_invalid = "skip-document"

[header]
number   = { from = "InvoiceNo", required = true }
customer = { from = "Customer", required = true }

[lines]
item   = { from = "Item", required = true }
amount = { from = "LineTotal", type = "decimal", scale = 2 }
"#;

fn h(no: &str, cust: &str) -> String {
    format!("H{no:<10}{cust:<8}{:<9}", "OPEN")
}

fn l(item: &str, total: &str) -> String {
    format!("L{item:<10}{total:>10}")
}

fn cp1251(text: &str) -> Vec<u8> {
    let (b, _, bad) = encoding_rs::WINDOWS_1251.encode(text);
    assert!(!bad);
    b.into_owned()
}

#[test]
fn fixed_width_rejected_lines_keep_their_bytes_and_come_back_fixed() {
    let t = TestDir::new();
    t.mapping_setup(FIXED_HL);
    // INV2 and INV4 lack their customer; Cyrillic items are single windows-1251 bytes;
    // CRLF line ends, a blank line, a last line without its line end
    let lines = [
        h("INV1", "C1"),
        l("Чай", "1.50"),
        h("INV2", ""),
        l("Кофе", "2.00"),
        l("Сахар", "0.50"),
        String::new(),
        h("INV3", "C1"),
        l("Мёд", "3.00"),
        h("INV4", ""),
        l("Соль", "0.10"),
    ];
    t.write("drop/inbox/INV_1.txt", cp1251(&lines.join("\r\n")));
    assert_eq!(t.run(&["run"]).code, 1);
    assert_eq!(payloads(&t).len(), 2, "INV1 and INV3 went");
    let rejected = std::fs::read(t.join("drop/failed/INV_1.rejected.txt")).unwrap();
    let (text, _, bad) = encoding_rs::WINDOWS_1251.decode(&rejected);
    assert!(!bad);
    let rows: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(rows.len(), 6, "five lines, each ending CRLF: {text:?}");
    assert_eq!(rows[5], "");
    let originals = [&lines[2], &lines[3], &lines[4], &lines[8], &lines[9]];
    for (row, original) in rows.iter().zip(originals) {
        // the line as it was, then the message after the last column of its layout
        let rest = row.strip_prefix(original.as_str()).expect(row);
        assert!(rest.starts_with("  erpdrop_error: "), "{row:?}");
    }
    assert!(rows[0].contains("Customer is missing"), "{}", rows[0]);
    assert!(
        rejected.windows(4).any(|w| w == cp1251("Кофе").as_slice()),
        "the file's encoding is kept"
    );
    let fixed = text
        .replace(&h("INV2", ""), &h("INV2", "C2"))
        .replace(&h("INV4", ""), &h("INV4", "C4"));
    t.write("drop/inbox/INV_1.rejected.txt", cp1251(&fixed));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let sent = payloads(&t);
    assert_eq!(sent.len(), 4, "only INV2 and INV4 went again: {sent:?}");
    let docs: Vec<serde_json::Value> = sent
        .iter()
        .map(|n| t.read_json(&format!("drop/outbox/{n}")))
        .collect();
    let inv2 = docs
        .iter()
        .find(|d| d["number"] == "INV2")
        .expect("INV2 sent");
    assert_eq!(inv2["customer"], "C2");
    assert_eq!(inv2["lines"].as_array().unwrap().len(), 2);
    assert_eq!(inv2["lines"][0]["item"], "Кофе");
    assert_eq!(inv2["lines"][1]["amount"], "0.50");
}

#[test]
fn a_fixed_width_rejected_file_that_fails_again_keeps_one_message() {
    let t = TestDir::new();
    t.mapping_setup(FIXED_HL);
    let file = [h("INV1", ""), l("Tea", "1.50")].join("\n") + "\n";
    t.write("drop/inbox/INV_1.txt", &file);
    assert_eq!(t.run(&["run"]).code, 1);
    let first = t.read("drop/failed/INV_1.rejected.txt");
    t.write("drop/inbox/INV_1.rejected.txt", &first);
    assert_eq!(t.run(&["run"]).code, 1);
    let again = t.read("drop/failed/INV_1.rejected.1.rejected.txt");
    assert_eq!(again, first, "the message replaced, not added twice");
    assert_eq!(again.matches("erpdrop_error").count(), 2);
}

#[test]
fn a_failed_fixed_width_line_shorter_than_its_columns_gets_no_rejected_file() {
    // a message after the short line would be read as its last column
    let t = TestDir::new();
    t.mapping_setup(FIXED_HL);
    let file = [h("INV1", "C1"), "LTea   ".to_string()].join("\n") + "\n";
    t.write("drop/inbox/INV_1.txt", &file);
    assert_eq!(t.run(&["run"]).code, 1);
    let failed = t.ls("drop/failed");
    assert!(
        failed.contains(&"INV_1.txt.errors.csv".to_string()),
        "{failed:?}"
    );
    assert!(
        !failed.iter().any(|f| f.contains(".rejected.")),
        "{failed:?}"
    );
}

/// Invoices as JSON lines.
const NDJSON: &str = r#"name = "json-invoices"
match = ["*.ndjson"]
document_type = "sales_invoice"

[source]
format = "json"
lines = "lines"

[document]
key = ["number"]
on_invalid = "skip-document"

[header]
number   = { from = "number", required = true }
customer = { from = "customer/id", required = true }
note     = { from = "note" }

[lines]
sku    = { from = "sku", required = true }
amount = { from = "amount", type = "decimal" }
"#;

#[test]
fn json_lines_rejected_records_get_an_error_member_and_come_back_fixed() {
    let t = TestDir::new();
    t.mapping_setup(NDJSON);
    // INV-2 and INV-4 lack their customer; INV-4 spans two lines; a string holds braces
    let records = [
        r#"{"number": "INV-1", "customer": {"id": "C1"}, "lines": [{"sku": "A", "amount": 1.10}]}"#,
        r#"{"number": "INV-2", "customer": {}, "note": "Crème {brûlée} \"x\"", "lines": [{"sku": "B", "amount": 0.30}]}"#,
        r#"{"number": "INV-3", "customer": {"id": "C3"}, "lines": []}"#,
        "{\"number\": \"INV-4\", \"customer\": {},\r\n  \"lines\": [{\"sku\": \"D\", \"amount\": 4}] }",
        r#"{"number": "INV-5", "customer": {"id": "C5"}, "lines": []}"#,
    ];
    t.write("drop/inbox/orders.ndjson", records.join("\r\n") + "\r\n");
    assert_eq!(t.run(&["run"]).code, 1);
    assert_eq!(payloads(&t).len(), 3);
    let rejected = t.read("drop/failed/orders.rejected.ndjson");
    let mut rows: Vec<&str> = rejected.split("\r\n").collect();
    assert_eq!(rows.pop(), Some(""), "{rejected:?}");
    assert_eq!(
        rows.len(),
        3,
        "INV-4 keeps its own line break: {rejected:?}"
    );
    let inv2: serde_json::Value = serde_json::from_str(rows[0]).unwrap();
    assert_eq!(inv2["note"], "Crème {brûlée} \"x\"");
    assert!(inv2["erpdrop_error"].as_str().unwrap().contains("customer"));
    assert!(
        rows[0].starts_with(&records[1][..records[1].len() - 1]),
        "{}",
        rows[0]
    );
    let inv4: serde_json::Value =
        serde_json::from_str(&format!("{}\n{}", rows[1], rows[2])).unwrap();
    assert_eq!(inv4["number"], "INV-4");
    assert!(inv4["erpdrop_error"].is_string());
    t.write(
        "drop/inbox/orders.rejected.ndjson",
        rejected.replace(r#""customer": {}"#, r#""customer": {"id": "C9"}"#),
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let sent = payloads(&t);
    assert_eq!(sent.len(), 5, "only INV-2 and INV-4 went again: {sent:?}");
    let docs: Vec<serde_json::Value> = sent
        .iter()
        .map(|n| t.read_json(&format!("drop/outbox/{n}")))
        .collect();
    let inv4 = docs.iter().find(|d| d["number"] == "INV-4").expect("INV-4");
    assert_eq!(inv4["customer"], "C9");
    assert_eq!(inv4["lines"][0]["amount"], "4");
}

#[test]
fn a_json_lines_rejected_file_that_fails_again_keeps_one_error_member() {
    let t = TestDir::new();
    t.mapping_setup(NDJSON);
    t.write(
        "drop/inbox/o.ndjson",
        "{\"number\": \"INV-1\", \"customer\": {}, \"lines\": []}\n",
    );
    assert_eq!(t.run(&["run"]).code, 1);
    let first = t.read("drop/failed/o.rejected.ndjson");
    t.write("drop/inbox/o.rejected.ndjson", &first);
    assert_eq!(t.run(&["run"]).code, 1);
    let again = t.read("drop/failed/o.rejected.1.rejected.ndjson");
    assert_eq!(again, first);
    assert_eq!(again.matches("erpdrop_error").count(), 1);
}

/// JSON records in an array under a pointer (`record`), with a `[[skip]]` rule.
fn pointer_mapping(source: &str) -> String {
    NDJSON
        .replace("*.ndjson", "*.json")
        .replace("lines = \"lines\"", &format!("lines = \"lines\"\n{source}"))
        + "\n[[skip]]\ncolumn = \"status\"\nequals = [\"VOID\"]\n"
}

/// The text without the `, "erpdrop_error": "..."` members erpdrop added, and the
/// messages they held.
fn without_errors(text: &str) -> (String, Vec<String>) {
    let (mut out, mut messages, mut rest) = (String::new(), Vec::new(), text);
    while let Some(at) = rest.find(", \"erpdrop_error\": \"") {
        out.push_str(&rest[..at]);
        let value = &rest[at + 19..];
        let mut end = 1;
        let b = value.as_bytes();
        while b[end] != b'"' {
            end += if b[end] == b'\\' { 2 } else { 1 };
        }
        messages.push(serde_json::from_str(&value[..=end]).unwrap());
        rest = &value[end + 1..];
    }
    out.push_str(rest);
    (out, messages)
}

#[test]
fn json_records_under_a_pointer_keep_what_surrounds_them_and_come_back_fixed() {
    let t = TestDir::new();
    t.mapping_setup(&pointer_mapping(
        "record = \"/data/invoices\"\nencoding = \"windows-1252\"",
    ));
    // INV-2 and INV-4 lack their customer, and so does the VOID record that [[skip]]
    // leaves out: it is counted, not copied
    let file = r#"{
  "batch": {"id": 7, "total": 1.50},
  "data": {
    "source": "café",
    "invoices": [
      {
        "number": "INV-1",
        "customer": {"id": "C1"},
        "lines": [{"sku": "A", "amount": 1.10}]
      },
      {
        "number": "INV-2",
        "customer": {},
        "note": "Crème ] , {",
        "lines": [{"sku": "B", "amount": 0.300}]
      },
      {"number": "TEST-1", "status": "VOID", "customer": {}, "lines": []},
      {
        "number": "INV-3",
        "customer": {"id": "C3"},
        "lines": []
      },
      {
        "number":"INV-4", "lines" : [ {"sku": "D", "amount": 4.000} ],
        "customer": {}
      }
    ],
    "count": 5
  },
  "end": true
}
"#;
    t.write("drop/inbox/o.json", cp1252(file));
    assert_eq!(t.run(&["run"]).code, 1);
    assert_eq!(payloads(&t).len(), 2, "INV-1 and INV-3 went");
    let bytes = std::fs::read(t.join("drop/failed/o.rejected.json")).unwrap();
    let (text, _, bad) = encoding_rs::WINDOWS_1252.decode(&bytes);
    assert!(!bad && !bytes.starts_with(&[0xEF]), "windows-1252, no BOM");
    let (rest, messages) = without_errors(&text);
    assert_eq!(
        rest,
        r#"{
  "batch": {"id": 7, "total": 1.50},
  "data": {
    "source": "café",
    "invoices": [
      {
        "number": "INV-2",
        "customer": {},
        "note": "Crème ] , {",
        "lines": [{"sku": "B", "amount": 0.300}]},
      {
        "number":"INV-4", "lines" : [ {"sku": "D", "amount": 4.000} ],
        "customer": {}}
    ],
    "count": 5
  },
  "end": true
}
"#
    );
    assert_eq!(messages.len(), 2);
    assert!(
        messages.iter().all(|m| m.contains("customer")),
        "{messages:?}"
    );
    let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(parsed["data"]["invoices"][1]["number"], "INV-4");

    let fixed = text.replace(r#""customer": {}"#, r#""customer": {"id": "C9"}"#);
    t.write("drop/inbox/o.rejected.json", cp1252(&fixed));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let sent = payloads(&t);
    assert_eq!(sent.len(), 4, "only INV-2 and INV-4 went again: {sent:?}");
    let docs: Vec<serde_json::Value> = sent
        .iter()
        .map(|n| t.read_json(&format!("drop/outbox/{n}")))
        .collect();
    for n in ["INV-2", "INV-4"] {
        let d = docs.iter().find(|d| d["number"] == n).expect(n);
        assert_eq!(d["customer"], "C9");
    }
}

#[test]
fn minified_json_records_are_told_apart_by_their_order() {
    let t = TestDir::new();
    t.mapping_setup(&pointer_mapping("record = \"\"\nencoding = \"utf-16\""));
    // one line, UTF-16 with its byte-order mark; INV-2 lacks its customer, the third
    // record its number (a problem of line 1, which every record is on)
    let file = r#"[{"number":"INV-1","customer":{"id":"C1"},"lines":[]},{"number":"INV-2","customer":{},"lines":[]},{"customer":{"id":"C3"},"lines":[]},{"number":"INV-4","status":"VOID","lines":[]},{"number":"INV-5","customer":{"id":"C5"},"lines":[]}]"#;
    let utf16 = |s: &str| -> Vec<u8> {
        let mut b = vec![0xFF, 0xFE];
        b.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
        b
    };
    t.write("drop/inbox/m.json", utf16(file));
    assert_eq!(t.run(&["run"]).code, 1);
    assert_eq!(payloads(&t).len(), 2, "INV-1 and INV-5 went");
    let bytes = std::fs::read(t.join("drop/failed/m.rejected.json")).unwrap();
    assert_eq!(&bytes[..2], &[0xFF, 0xFE]);
    let units: Vec<u16> = bytes[2..]
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let text = String::from_utf16(&units).unwrap();
    let (rest, messages) = without_errors(&text);
    assert_eq!(
        rest,
        r#"[{"number":"INV-2","customer":{},"lines":[]},{"customer":{"id":"C3"},"lines":[]}]"#
    );
    assert!(messages[0].contains("customer"), "{messages:?}");
    assert!(messages[1].contains("number"), "{messages:?}");

    let fixed = text
        .replace(r#""customer":{}"#, r#""customer":{"id":"C2"}"#)
        .replace(r#"{"customer""#, r#"{"number":"INV-3","customer""#);
    t.write("drop/inbox/m.rejected.json", utf16(&fixed));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(payloads(&t).len(), 4, "INV-2 and INV-3 went");
}

#[test]
fn a_json_record_under_a_pointer_keeps_one_error_member() {
    let t = TestDir::new();
    t.mapping_setup(&pointer_mapping("record = \"/invoices\""));
    t.write(
        "drop/inbox/o.json",
        r#"{"invoices": [{"number": "INV-1", "erpdrop_error": "old", "customer": {}, "lines": []}], "n": 1}"#,
    );
    assert_eq!(t.run(&["run"]).code, 1);
    let first = t.read("drop/failed/o.rejected.json");
    assert_eq!(first.matches("erpdrop_error").count(), 1, "{first}");
    assert!(!first.contains("old"), "{first}");
    assert!(first.ends_with("], \"n\": 1}"), "{first}");
    t.write("drop/inbox/o.rejected.json", &first);
    assert_eq!(t.run(&["run"]).code, 1);
    let again = t.read("drop/failed/o.rejected.1.rejected.json");
    assert_eq!(again, first);
}

#[test]
fn json_records_without_a_key_on_one_line_each_get_their_own_problems() {
    let t = TestDir::new();
    t.mapping_setup(&pointer_mapping("record = \"\""));
    // both lack their number; only the second lacks its customer too (a problem the
    // report gives line 1, as it gives the first record's)
    t.write(
        "drop/inbox/k.json",
        r#"[{"customer":{"id":"C1"},"lines":[]},{"number":"INV-2","customer":{"id":"C2"},"lines":[]},{"note":"x","lines":[]}]"#,
    );
    assert_eq!(t.run(&["run"]).code, 1);
    let text = t.read("drop/failed/k.rejected.json");
    let (rest, messages) = without_errors(&text);
    assert_eq!(
        rest,
        r#"[{"customer":{"id":"C1"},"lines":[]},{"note":"x","lines":[]}]"#
    );
    assert!(
        messages.iter().all(|m| m.contains("number")),
        "{messages:?}"
    );
    assert!(!messages[0].contains("customer"), "{messages:?}");
}

#[test]
fn a_failed_json_record_that_is_no_object_gets_no_rejected_file() {
    let t = TestDir::new();
    t.mapping_setup(&pointer_mapping("record = \"/invoices\""));
    t.write(
        "drop/inbox/n.json",
        r#"{"invoices": [{"number": "INV-1", "customer": {}, "lines": []}, 5]}"#,
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1);
    // the file was tried, and refused for the record that is no object
    assert!(out.stderr.contains("not a JSON object"), "{out:?}");
    let failed = t.ls("drop/failed");
    assert!(
        failed.contains(&"n.json.errors.csv".to_string()),
        "{failed:?}"
    );
    assert!(
        !failed.iter().any(|f| f.contains(".rejected.")),
        "{failed:?}"
    );
}

// ------------------------------------------------- rejected rows with [source.trailer]

/// The rejected file's rows of the failed run of `file`, fixed and dropped back: the
/// second run must pass its trailer check and send only the fixed documents.
fn drop_back(t: &TestDir, name: &str, fixed: impl AsRef<[u8]>, sent: usize) {
    t.write(&format!("drop/inbox/{name}"), fixed);
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        !t.exists(&format!("drop/failed/{name}.errors.csv")),
        "not incomplete: {:?}",
        t.ls("drop/failed")
    );
    assert_eq!(payloads(t).len(), sent, "{:?}", payloads(t));
}

#[test]
fn a_csv_rejected_file_ends_with_its_trailer_restated_for_its_rows() {
    let t = TestDir::new();
    t.invoice_setup(&skip_document_mapping("").replace(
        "[document]",
        "[source.trailer]\ncount = \"Cust\"\nsum = { column = \"Amount\", of = \"Amount\" }\n\n[document]",
    ));
    // the trailer is the last row: 6 data rows, quoted and zero-padded, 8,50 in all
    let rows = [
        "No;Date;Cust;Terms;Total;Item;Amount",
        "INV1;20.11.2026;C1;N30;1,50;A;1,50",
        "INV2;20.11.2026;C1;XX;3,00;B;1,25",
        "INV2;20.11.2026;C1;XX;3,00;D;1,75",
        "INV3;20.11.2026;C1;N30;1,50;C;1,50",
        "INV4;20.11.2026;C9;N30;2,00;E;2,00",
        "INV5;20.11.2026;C2;N30;0,50;F;0,50",
        "T;;\"0006\";;;;\"8,50\"",
    ];
    t.write("drop/inbox/INV_1.csv", rows.join("\r\n") + "\r\n");
    assert_eq!(t.run(&["run"]).code, 1);
    assert_eq!(payloads(&t).len(), 3);
    let rejected = t.read("drop/failed/INV_1.rejected.csv");
    let lines: Vec<&str> = rejected.split("\r\n").collect();
    assert_eq!(lines.len(), 6, "{rejected}");
    assert!(lines[3].starts_with("INV4;"), "{rejected}");
    // three data rows, 1,25 + 1,75 + 2,00; an empty erpdrop_error keeps the columns
    assert_eq!(lines[4], "T;;\"0003\";;;;\"5,00\";");
    assert_eq!(lines[5], "");
    let fixed = rejected.replace(";XX;", ";N30;").replace(";C9;", ";C1;");
    drop_back(&t, "INV_1.rejected.csv", fixed, 5);
}

#[test]
fn a_csv_rejected_file_with_record_types_restates_its_trailer_and_fails_again_alike() {
    let t = TestDir::new();
    t.mapping_setup(
        r#"name = "billing"
match = ["BILL_*"]
document_type = "sales_invoice"

[source]
delimiter = ";"
record_type = { column = "RecType", header = "H", line = "L", trailer = "T" }

[source.trailer]
count = "RecordCount"
sum = { column = "TotalAmount", of = "LineTotal" }

[document]
key = ["InvoiceNo"]
on_invalid = "skip-document"

[header]
number   = { from = "InvoiceNo", required = true }
customer = { from = "Customer", required = true }

[lines]
item   = { from = "Item", required = true }
amount = { from = "LineTotal", type = "decimal", scale = 2 }
"#,
    );
    let text = "RecType;InvoiceNo;Customer;Status;Item;LineTotal;RecordCount;TotalAmount\n\
                H;INV-1;C1;OPEN;;;;\n\
                L;;;;WIDGET;10.00;;\n\
                H;INV-2;;OPEN;;;;\n\
                L;;;;GADGET;2.50;;\n\
                L;;;;NUT;0.25;;\n\
                H;INV-3;;OPEN;;;;\n\
                L;;;;BOLT;0.99;;\n\
                T;;;;;;7;13.74\n";
    t.write("drop/inbox/BILL_1.csv", text);
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        payloads(&t).len(),
        1,
        "{out:?} {}",
        t.read("drop/failed/BILL_1.csv.errors.csv")
    );
    let rejected = t.read("drop/failed/BILL_1.rejected.csv");
    let lines: Vec<&str> = rejected.lines().collect();
    assert_eq!(lines.len(), 7, "{rejected}");
    // header and line rows are counted, the column-name row and the trailer not
    assert_eq!(lines[6], "T;;;;;;5;3.74;");
    // failed again as it is: one error column, the same trailer
    t.write("drop/inbox/BILL_1.rejected.csv", &rejected);
    assert_eq!(t.run(&["run"]).code, 1);
    let again = t.read("drop/failed/BILL_1.rejected.1.rejected.csv");
    let again: Vec<&str> = again.lines().collect();
    assert_eq!(again.len(), 7);
    assert_eq!(again[0], lines[0]);
    assert_eq!(again[6], lines[6], "its trailer passed as it is");
    let fixed = rejected
        .replace("H;INV-2;;", "H;INV-2;C2;")
        .replace("H;INV-3;;", "H;INV-3;C3;");
    drop_back(&t, "BILL_2.csv", fixed, 3);
}

/// [`FIXED_HL`] with a trailer row `T` that counts the rows and adds up their lines.
fn fixed_hlt() -> String {
    FIXED_HL
        .replace(
            "line = \"L\" }",
            "line = \"L\", trailer = \"T\" }\n\n[source.trailer]\ncount = \"RecordCount\"\nsum = { column = \"TotalAmount\", of = \"LineTotal\" }",
        )
        .replace(
            "[document]",
            "[source.columns.T]\nRecordCount = { start = 2, width = 6 }\nTotalAmount = { start = 8, width = 14 }\n\n[document]",
        )
}

#[test]
fn a_fixed_width_rejected_file_ends_with_its_trailer_restated_within_its_columns() {
    let t = TestDir::new();
    t.mapping_setup(&fixed_hlt());
    let trailer = format!("T{:06}{:>14}   ", 7, "1234.45");
    let lines = [
        h("INV1", "C1"),
        l("Tea", "1.50"),
        h("INV2", ""),
        l("Coffee", "1200.00"),
        l("Sugar", "0.50"),
        h("INV3", ""),
        l("Honey", "32.45"),
        trailer.clone(),
    ];
    t.write("drop/inbox/INV_1.txt", lines.join("\r\n") + "\r\n");
    assert_eq!(t.run(&["run"]).code, 1);
    assert_eq!(payloads(&t).len(), 1);
    let rejected = t.read("drop/failed/INV_1.rejected.txt");
    let rows: Vec<&str> = rejected.split("\r\n").collect();
    assert_eq!(rows.len(), 7, "{rejected:?}");
    // five rows and 1232.95, zero-padded and right-aligned as they were; the line's
    // length and its text after the columns stay
    assert_eq!(rows[5], format!("T{:06}{:>14}   ", 5, "1232.95"));
    assert_eq!(rows[5].len(), trailer.len());
    let fixed = rejected
        .replace(&h("INV2", ""), &h("INV2", "C2"))
        .replace(&h("INV3", ""), &h("INV3", "C3"));
    drop_back(&t, "INV_1.rejected.txt", fixed, 3);
}

#[test]
fn a_fixed_width_rejected_file_without_record_types_restates_its_last_line() {
    let t = TestDir::new();
    t.mapping_setup(
        r#"name = "flat"
match = ["INV_*.txt"]
document_type = "sales_invoice"

[source]
format = "fixed"
decimal_separator = ","

[source.columns]
No     = { start = 1, width = 6 }
Cust   = { start = 7, width = 4 }
Amount = { start = 11, width = 8 }

[source.trailer]
count = "Cust"
sum = { column = "Amount", of = "Amount" }

[document]
key = ["No"]
on_invalid = "skip-document"

[header]
number   = { from = "No", required = true }
customer = { from = "Cust", required = true }

[lines]
amount = { from = "Amount", type = "decimal", scale = 2 }
"#,
    );
    let row = |no: &str, cust: &str, amount: &str| format!("{no:<6}{cust:<4}{amount:<8}");
    let text = [
        row("INV1", "C1", "1,50"),
        row("INV2", "", "2,25"),
        row("INV3", "C3", "3,00"),
        row("INV4", "", "0,75"),
        row("TOTAL", "4", "7,50"),
    ]
    .join("\n");
    t.write("drop/inbox/INV_1.txt", text);
    assert_eq!(t.run(&["run"]).code, 1);
    assert_eq!(payloads(&t).len(), 2);
    let rejected = t.read("drop/failed/INV_1.rejected.txt");
    let rows: Vec<&str> = rejected.split('\n').collect();
    assert_eq!(rows.len(), 3, "{rejected:?}");
    // left-aligned as the original, in the mapping's decimal separator; no line end
    // after the last line, as in the original
    assert_eq!(rows[2], row("TOTAL", "2", "3,00"));
    let fixed = rejected
        .replace(&row("INV2", "", "2,25"), &row("INV2", "C2", "2,25"))
        .replace(&row("INV4", "", "0,75"), &row("INV4", "C4", "0,75"));
    drop_back(&t, "INV_1.rejected.txt", fixed, 4);
}

#[test]
fn a_trailer_value_wider_than_its_column_gets_no_rejected_file_and_a_warning() {
    // 1,5 + 1,5 = 3 in a column one character wide: the rejected rows' 1,5 is wider
    let t = TestDir::new();
    t.mapping_setup(
        r#"name = "flat"
match = ["INV_*.txt"]
document_type = "sales_invoice"

[source]
format = "fixed"
decimal_separator = ","

[source.columns]
No     = { start = 1, width = 6 }
Cust   = { start = 7, width = 1 }
Amount = { start = 8, width = 3 }

[source.trailer]
sum = { column = "Cust", of = "Amount" }

[document]
key = ["No"]
on_invalid = "skip-document"

[header]
number   = { from = "No", required = true }
customer = { from = "Cust", required = true }
"#,
    );
    let text = "INV1  C1,5\nINV2   1,5\nTOTAL 3\n";
    t.write("drop/inbox/INV_1.txt", text);
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(payloads(&t).len(), 1);
    let failed = t.ls("drop/failed");
    assert!(
        failed.contains(&"INV_1.txt.errors.csv".to_string()),
        "{failed:?}"
    );
    assert!(
        !failed.iter().any(|f| f.contains(".rejected.")),
        "{failed:?}"
    );
    assert!(
        out.stderr.contains("does not fit its column"),
        "{}",
        out.stderr
    );
}

// ------------------------------------------------------------ code pages (CP437)

fn cp437(text: &str) -> Vec<u8> {
    let upper = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";
    text.chars()
        .map(|c| {
            if c.is_ascii() {
                c as u8
            } else {
                0x80 + upper
                    .chars()
                    .position(|u| u == c)
                    .expect("a CP437 character") as u8
            }
        })
        .collect()
}

#[test]
fn fixed_width_rejected_lines_in_cp437_keep_its_bytes_and_come_back_fixed() {
    let t = TestDir::new();
    t.mapping_setup(&FIXED_HL.replace("windows-1251", "cp437"));
    let lines = [
        h("INV1", "C1"),
        l("Thé", "1.50"),
        h("INV2", ""),
        l("Müller╔═╗", "2.00"),
        h("INV3", ""),
        l("Ñoño ░▒▓", "0.10"),
    ];
    let file = cp437(&(lines.join("\r\n") + "\r\n"));
    assert!(file.contains(&0xC9) && file.contains(&0x81));
    t.write("drop/inbox/INV_1.txt", &file);
    assert_eq!(t.run(&["run"]).code, 1);
    assert_eq!(payloads(&t).len(), 1);
    let rejected = std::fs::read(t.join("drop/failed/INV_1.rejected.txt")).unwrap();
    let rows: Vec<&[u8]> = rejected.split(|&b| b == b'\n').collect();
    assert_eq!(rows.len(), 5, "{}", String::from_utf8_lossy(&rejected));
    // the lines' own bytes, then the message
    assert!(rows[1].starts_with(&cp437(&lines[3])), "{:?}", rows[1]);
    assert!(rows[3].starts_with(&cp437(&lines[5])), "{:?}", rows[3]);
    let fixed = replace(
        &replace(&rejected, &cp437(&h("INV2", "")), &cp437(&h("INV2", "C2"))),
        &cp437(&h("INV3", "")),
        &cp437(&h("INV3", "C3")),
    );
    t.write("drop/inbox/INV_1.rejected.txt", fixed);
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let docs: Vec<serde_json::Value> = payloads(&t)
        .iter()
        .map(|n| t.read_json(&format!("drop/outbox/{n}")))
        .collect();
    assert_eq!(docs.len(), 3, "only INV2 and INV3 went again");
    let inv2 = docs.iter().find(|d| d["number"] == "INV2").expect("INV2");
    assert_eq!(inv2["lines"][0]["item"], "Müller╔═╗");
    let inv3 = docs.iter().find(|d| d["number"] == "INV3").expect("INV3");
    assert_eq!(inv3["lines"][0]["item"], "Ñoño ░▒▓");
}

#[test]
fn json_lines_rejected_records_in_cp437_keep_its_bytes_and_come_back_fixed() {
    let t = TestDir::new();
    t.mapping_setup(&NDJSON.replace(
        "format = \"json\"",
        "format = \"json\"\nencoding = \"cp437\"",
    ));
    let records = [
        r#"{"number": "INV-1", "customer": {"id": "C1"}, "lines": [{"sku": "Café", "amount": 1}]}"#,
        r#"{"number": "INV-2", "customer": {}, "note": "╔═╗ Straße", "lines": [{"sku": "Müller", "amount": 2}]}"#,
        r#"{"number": "INV-3", "customer": {}, "lines": [{"sku": "Ñoño", "amount": 3}]}"#,
    ];
    t.write("drop/inbox/o.ndjson", cp437(&(records.join("\n") + "\n")));
    assert_eq!(t.run(&["run"]).code, 1);
    assert_eq!(payloads(&t).len(), 1);
    let rejected = std::fs::read(t.join("drop/failed/o.rejected.ndjson")).unwrap();
    let rows: Vec<&[u8]> = rejected.split(|&b| b == b'\n').collect();
    assert_eq!(rows.len(), 3, "{}", String::from_utf8_lossy(&rejected));
    let own = &records[1][..records[1].len() - 1];
    assert!(rows[0].starts_with(&cp437(own)), "{:?}", rows[0]);
    let fixed = replace(
        &rejected,
        br#""customer": {}"#,
        br#""customer": {"id": "C9"}"#,
    );
    t.write("drop/inbox/o.rejected.ndjson", fixed);
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let docs: Vec<serde_json::Value> = payloads(&t)
        .iter()
        .map(|n| t.read_json(&format!("drop/outbox/{n}")))
        .collect();
    assert_eq!(docs.len(), 3, "only INV-2 and INV-3 went again");
    let inv2 = docs.iter().find(|d| d["number"] == "INV-2").expect("INV-2");
    assert_eq!(inv2["note"], "╔═╗ Straße");
    assert_eq!(inv2["lines"][0]["sku"], "Müller");
}

#[test]
fn csv_rejected_rows_in_cp437_keep_its_bytes() {
    let t = TestDir::new();
    t.invoice_setup(&skip_document_mapping("encoding = \"cp437\""));
    let rows = [
        "No;Date;Cust;Terms;Total;Item;Amount",
        "INV1;20.11.2026;C1;N30;1,50;Café;1,50",
        "INV2;20.11.2026;C9;N30;1,50;Müller ╔═╗;1,50",
    ];
    t.write("drop/inbox/INV_1.csv", cp437(&(rows.join("\n") + "\n")));
    assert_eq!(t.run(&["run"]).code, 1);
    let rejected = std::fs::read(t.join("drop/failed/INV_1.rejected.csv")).unwrap();
    let lines: Vec<&[u8]> = rejected.split(|&b| b == b'\n').collect();
    assert_eq!(lines.len(), 3, "{}", String::from_utf8_lossy(&rejected));
    assert!(lines[1].starts_with(&cp437(&format!("{};", rows[2]))));
    let fixed = replace(&rejected, b";C9;", b";C1;");
    t.write("drop/inbox/INV_1.rejected.csv", fixed);
    assert_eq!(t.run(&["run"]).code, 0);
    let sent = payloads(&t);
    let inv2 = sent.iter().find(|p| p.contains("INV2")).expect("INV2 sent");
    let doc = t.read_json(&format!("drop/outbox/{inv2}"));
    assert_eq!(doc["lines"][0]["item"], "Müller ╔═╗");
}

#[test]
fn with_reject_file_the_trailer_counts_the_held_back_rows_too() {
    let t = TestDir::new();
    t.invoice_setup(&INVOICE_MAPPING.replace(
        "[document]",
        "[source.trailer]\ncount = \"Cust\"\n\n[document]",
    ));
    let rows = [
        "No;Date;Cust;Terms;Total;Item;Amount",
        "INV1;20.11.2026;C1;N30;1,50;A;1,50",
        "INV2;20.11.2026;C9;N30;1,50;B;1,50",
        "INV3;20.11.2026;C1;N30;1,50;C;1,50",
        "TOTAL;;3;;;;",
    ];
    t.write("drop/inbox/INV_1.csv", rows.join("\n") + "\n");
    assert_eq!(t.run(&["run"]).code, 1);
    assert!(payloads(&t).is_empty(), "nothing sent: reject-file");
    let rejected = t.read("drop/failed/INV_1.rejected.csv");
    let lines: Vec<&str> = rejected.lines().collect();
    assert_eq!(lines.len(), 5, "{rejected}");
    assert!(lines[1].contains("Not sent"), "{rejected}");
    assert_eq!(lines[4], "TOTAL;;3;;;;;");
    drop_back(
        &t,
        "INV_1.rejected.csv",
        rejected.replace(";C9;", ";C2;"),
        3,
    );
}

// ------------------------------------- rejected workbooks with [source.trailer]

/// A trailer cell of the workbook tests: a number cell, or text as the file writes it.
#[derive(Clone, Copy, Debug)]
enum TrailerCell {
    Number,
    Text(&'static str),
}

/// The trailer of a workbook test: a count of the data rows in column `Rows` and/or
/// the sum of `Price` in column `Amount`, each a number cell or text.
#[derive(Clone, Copy, Debug)]
struct SheetTrailer {
    count: Option<TrailerCell>,
    sum: Option<TrailerCell>,
}

impl SheetTrailer {
    fn mapping(&self, format: &str) -> String {
        let mut rule = String::from("[source.trailer]\n");
        if self.count.is_some() {
            rule.push_str("count = \"Rows\"\n");
        }
        if self.sum.is_some() {
            rule.push_str("sum = { column = \"Amount\", of = \"Price\" }\n");
        }
        SHEET_MAPPING
            .replace("format = \"xlsx\"", &format!("format = \"{format}\""))
            .replace("[document]", &format!("{rule}\n[document]"))
    }
}

/// The rows of the workbook trailer tests, from A1 on: two titles, the header, six data
/// rows (INV-2's two rows are bad, a quantity "x", and INV-4's, a day that does not
/// exist), then the totals row: 6 rows, the prices adding up to 1245.4.
fn trailer_sheet(trailer: SheetTrailer) -> Vec<Vec<calamine::Data>> {
    use calamine::Data;
    let s = |v: &str| Data::String(v.into());
    let mut rows = vec![
        vec![s("Sales invoices, November 2026")],
        vec![s("Printed 01.12.2026")],
        [
            "InvoiceNo",
            "Date",
            "Paid",
            "Item",
            "Qty",
            "Price",
            "Rows",
            "Amount",
        ]
        .iter()
        .map(|h| s(h))
        .collect(),
    ];
    // (number, date as text or "" for a date cell, paid, item, quantity, price)
    let data = [
        ("INV-1", "", true, "A-1", "12", 0.1),
        ("INV-2", "", false, "B-1", "x", 1234.5),
        ("INV-2", "", false, "B-2", "2", 0.3),
        ("INV-3", "", true, "C-1", "1", 2.5),
        ("INV-4", "32.11.2026", true, "D-1", "3", 7.0),
        ("INV-5", "", true, "E-1", "4", 1.0),
    ];
    for (no, text_date, paid, item, qty, price) in data {
        rows.push(vec![
            s(no),
            if text_date.is_empty() {
                Data::DateTimeIso("2026-11-20".into())
            } else {
                s(text_date)
            },
            Data::Bool(paid),
            s(item),
            qty.parse::<f64>().map_or_else(|_| s(qty), Data::Float),
            Data::Float(price),
        ]);
    }
    let cell = |c: Option<TrailerCell>, n: f64| match c {
        None => Data::Empty,
        Some(TrailerCell::Number) => Data::Float(n),
        Some(TrailerCell::Text(t)) => s(t),
    };
    let mut last = vec![s("TOTAL"), Data::Empty, Data::Empty, s("all")];
    last.extend([Data::Empty, Data::Empty]);
    last.push(cell(trailer.count, 6.0));
    last.push(cell(trailer.sum, 1245.4));
    while last.last() == Some(&Data::Empty) {
        last.pop();
    }
    rows.push(last);
    rows
}

/// The cells of the workbook trailer tests' sheet as an xlsx file (a date cell shown
/// `dd.mm.yyyy`).
fn trailer_xlsx(rows: &[Vec<calamine::Data>]) -> Vec<u8> {
    use calamine::Data;
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("Invoices").unwrap();
    let date = Format::new().set_num_format("dd.mm.yyyy");
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let (r, c) = (r as u32, c as u16);
            match cell {
                Data::Empty => {}
                Data::String(s) => {
                    ws.write_string(r, c, s).unwrap();
                }
                Data::Float(f) => {
                    ws.write_number(r, c, *f).unwrap();
                }
                Data::Bool(b) => {
                    ws.write_boolean(r, c, *b).unwrap();
                }
                Data::DateTimeIso(_) => {
                    let d = ExcelDateTime::from_ymd(2026, 11, 20).unwrap();
                    ws.write_datetime_with_format(r, c, &d, &date).unwrap();
                }
                other => panic!("a cell the test does not write: {other:?}"),
            }
        }
    }
    wb.save_to_buffer().unwrap()
}

fn trailer_ods(rows: &[Vec<calamine::Data>]) -> Vec<u8> {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(ods_cell).collect())
        .collect();
    ods_book(&[("Invoices", cells)])
}

/// How a test reads a workbook back: its sheet names and the first sheet's rows.
type SheetReader = fn(&[u8]) -> (Vec<String>, Vec<Vec<calamine::Data>>);

/// A workbook with a totals row fails document by document: its rejected workbook
/// ends with the totals row, its count and sum restated for the three rows written
/// (a number cell a number, a text cell text as the original wrote it), its other cells
/// as read; fixed and dropped back, it passes the trailer check and only INV-2 and INV-4
/// go. `german`: the mapping's separators are a German export's (`1.234,50`), which
/// its number cells ignore and its text trailer cell is written in.
fn sheet_trailer_round_trip(format: &str, trailer: SheetTrailer, german: bool) {
    use calamine::Data;
    let t = TestDir::new();
    let mut mapping = trailer.mapping(format);
    if german {
        mapping = mapping.replace(
            "date_format = \"%d.%m.%Y\"",
            "date_format = \"%d.%m.%Y\"\ndecimal_separator = \",\"\nthousands_separator = \".\"",
        );
    }
    t.mapping_setup(&mapping);
    let rows = trailer_sheet(trailer);
    let (book, read) = match format {
        "xlsx" => (trailer_xlsx(&rows), sheet_rows as SheetReader),
        _ => (trailer_ods(&rows), ods_rows as SheetReader),
    };
    t.write(&format!("drop/inbox/INV_1.{format}"), book);
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{trailer:?} {out:?}");
    assert_eq!(payloads(&t).len(), 3, "INV-1, INV-3, INV-5 went: {out:?}");

    let name = format!("INV_1.rejected.{format}");
    let rejected = std::fs::read(t.join(&format!("drop/failed/{name}")))
        .unwrap_or_else(|e| panic!("{trailer:?}: {e}: {:?}", t.ls("drop/failed")));
    let (_, mut got) = read(&rejected);
    for row in got.iter_mut() {
        while row.last() == Some(&Data::Empty) {
            row.pop();
        }
    }
    assert_eq!(
        got.len(),
        7,
        "titles, header, INV-2 twice, INV-4, totals: {got:?}"
    );
    assert_eq!(got[2].last(), Some(&Data::String("erpdrop_error".into())));
    assert_eq!(got[2].len(), 9, "{got:?}");
    assert_eq!(got[3][0], Data::String("INV-2".into()));
    assert_eq!(got[5][0], Data::String("INV-4".into()));
    let totals = &got[6];
    assert_eq!(totals[0], Data::String("TOTAL".into()), "{totals:?}");
    assert_eq!(totals[3], Data::String("all".into()), "{totals:?}");
    assert!(
        totals.len() <= 8,
        "no erpdrop_error on the totals row: {totals:?}"
    );
    let want = |c: Option<TrailerCell>, n: f64, text: &str| match c {
        None => Data::Empty,
        Some(TrailerCell::Number) => Data::Float(n),
        Some(TrailerCell::Text(_)) => Data::String(text.into()),
    };
    let cell = |i: usize| totals.get(i).cloned().unwrap_or(Data::Empty);
    // 3 rows; 1234.5 + 0.3 + 7
    assert_eq!(cell(6), want(trailer.count, 3.0, "0003"), "{totals:?}");
    let sum_text = if german { "1.241,80" } else { "1241.80" };
    assert_eq!(cell(7), want(trailer.sum, 1241.8, sum_text), "{totals:?}");

    // the user fixes the two documents and saves the file
    let fix = |r: usize, c: usize, d: &Data| match (r, c) {
        (3, 4) => Data::Float(5.0),
        (5, 1) => Data::String("30.11.2026".into()),
        _ => d.clone(),
    };
    let fixed: Vec<Vec<Data>> = got
        .iter()
        .enumerate()
        .map(|(r, row)| row.iter().enumerate().map(|(c, d)| fix(r, c, d)).collect())
        .collect();
    let fixed = match format {
        "xlsx" => resave("Invoices", &fixed, &|_, _, _| None),
        _ => trailer_ods(&fixed),
    };
    drop_back(&t, &name, fixed, 5);
    let inv2 = payloads(&t)
        .into_iter()
        .find(|p| p.contains("INV-2"))
        .expect("INV-2 sent");
    let inv2 = t.read_json(&format!("drop/outbox/{inv2}"));
    assert_eq!(inv2["lines"][0]["quantity"], 5);
    assert_eq!(inv2["lines"][1]["price"], "0.3");
}

#[test]
fn an_xlsx_rejected_workbook_ends_with_its_totals_row_restated() {
    use TrailerCell::{Number, Text};
    for trailer in [
        SheetTrailer {
            count: Some(Number),
            sum: None,
        },
        SheetTrailer {
            count: None,
            sum: Some(Text("1245.40")),
        },
        SheetTrailer {
            count: Some(Text("0006")),
            sum: Some(Number),
        },
    ] {
        sheet_trailer_round_trip("xlsx", trailer, false);
    }
}

#[test]
fn an_ods_rejected_workbook_ends_with_its_totals_row_restated() {
    use TrailerCell::{Number, Text};
    for trailer in [
        SheetTrailer {
            count: Some(Text("0006")),
            sum: None,
        },
        SheetTrailer {
            count: None,
            sum: Some(Number),
        },
        SheetTrailer {
            count: Some(Number),
            sum: Some(Text("1245.40")),
        },
    ] {
        sheet_trailer_round_trip("ods", trailer, false);
    }
}

#[test]
fn a_german_rejected_workbook_adds_up_its_number_cells_whatever_the_separators() {
    use TrailerCell::{Number, Text};
    // the prices are number cells; the totals cell a number, or text in the separators
    for format in ["xlsx", "ods"] {
        for trailer in [
            SheetTrailer {
                count: Some(Number),
                sum: Some(Number),
            },
            SheetTrailer {
                count: None,
                sum: Some(Text("1.245,40")),
            },
        ] {
            sheet_trailer_round_trip(format, trailer, true);
        }
    }
}

#[test]
fn a_rejected_workbook_with_text_amounts_restates_them_in_its_separators_and_fails_again_alike() {
    use calamine::Data;
    let t = TestDir::new();
    let trailer = SheetTrailer {
        count: Some(TrailerCell::Number),
        sum: Some(TrailerCell::Text("1.245,40")),
    };
    t.mapping_setup(&trailer.mapping("xlsx").replace(
        "date_format = \"%d.%m.%Y\"",
        "date_format = \"%d.%m.%Y\"\ndecimal_separator = \",\"\nthousands_separator = \".\"",
    ));
    // the prices as text, as a German export writes them
    let mut rows = trailer_sheet(trailer);
    for row in rows[3..9].iter_mut() {
        let Data::Float(f) = row[5] else {
            panic!("{row:?}")
        };
        let text = match f {
            1234.5 => "1.234,50".to_string(),
            f => format!("{f:.2}").replace('.', ","),
        };
        row[5] = Data::String(text);
    }
    t.write("drop/inbox/INV_1.xlsx", trailer_xlsx(&rows));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(payloads(&t).len(), 3, "{out:?}");
    let first = std::fs::read(t.join("drop/failed/INV_1.rejected.xlsx")).unwrap();
    let (_, got) = sheet_rows(&first);
    assert_eq!(got.len(), 7, "{got:?}");
    // 1.234,50 + 0,30 + 7,00, grouped as the original was
    assert_eq!(got[6][6], Data::Float(3.0), "{:?}", got[6]);
    assert_eq!(got[6][7], Data::String("1.241,80".into()), "{:?}", got[6]);

    // dropped back unchanged: it fails again, with one erpdrop_error column and the same
    // totals row
    t.write("drop/inbox/INV_1.rejected.xlsx", &first);
    assert_eq!(t.run(&["run"]).code, 1);
    let again = std::fs::read(t.join("drop/failed/INV_1.rejected.1.rejected.xlsx")).unwrap();
    let (_, again) = sheet_rows(&again);
    assert_eq!(again.len(), 7, "{again:?}");
    assert_eq!(again[2], got[2], "one erpdrop_error column");
    let upto8 = |r: &Vec<Data>| r.iter().take(8).cloned().collect::<Vec<_>>();
    assert_eq!(upto8(&again[6]), upto8(&got[6]));
    assert!(
        again[6].iter().skip(8).all(|c| *c == Data::Empty),
        "{:?}",
        again[6]
    );

    // fixed, it goes
    let fixed = resave("Invoices", &again, &|r, c, _| match (r, c) {
        (3, 4) => Some(Data::Float(5.0)),
        (5, 1) => Some(Data::String("30.11.2026".into())),
        _ => None,
    });
    drop_back(&t, "INV_1.rejected.1.rejected.xlsx", fixed, 5);
}

#[test]
fn an_xls_rejected_workbook_ends_with_its_totals_row_restated() {
    // the sheet of `trailer_sheet` written by xlwt: the count a number cell, the sum text
    use calamine::Data;
    let trailer = SheetTrailer {
        count: Some(TrailerCell::Number),
        sum: Some(TrailerCell::Text("1245.40")),
    };
    let t = TestDir::new();
    t.mapping_setup(&trailer.mapping("xls"));
    t.write(
        "drop/inbox/INV_1.xls",
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/sheets/xls-1c/INV_total.xls"
        ))
        .unwrap(),
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(payloads(&t).len(), 3, "INV-1, INV-3, INV-5 went: {out:?}");
    let rejected = std::fs::read(t.join("drop/failed/INV_1.rejected.xls"))
        .unwrap_or_else(|e| panic!("{e}: {:?}", t.ls("drop/failed")));
    let (_, got) = xls_rows(&rejected);
    assert_eq!(
        got.len(),
        7,
        "titles, header, INV-2 twice, INV-4, totals: {got:?}"
    );
    assert_eq!(got[2].last(), Some(&Data::String("erpdrop_error".into())));
    let totals = &got[6];
    assert_eq!(totals[0], Data::String("TOTAL".into()), "{totals:?}");
    assert!(
        totals.len() <= 8,
        "no erpdrop_error on the totals row: {totals:?}"
    );
    // 3 rows; 1234.5 + 0.3 + 7
    assert_eq!(totals[6], Data::Float(3.0), "{totals:?}");
    assert_eq!(totals[7], Data::String("1241.80".into()), "{totals:?}");

    // the user retypes the two cells and drops the file back: it passes its trailer
    let fixed = xls_retyped(&rejected, &[("x", "5"), ("32.11.2026", "30.11.2026")]);
    drop_back(&t, "INV_1.rejected.xls", fixed, 5);
    let inv2 = payloads(&t)
        .into_iter()
        .find(|p| p.contains("INV-2"))
        .expect("INV-2 sent");
    let inv2 = t.read_json(&format!("drop/outbox/{inv2}"));
    assert_eq!(inv2["lines"][0]["quantity"], 5);
    assert_eq!(inv2["lines"][1]["price"], "0.3");
}

#[test]
fn a_workbook_sum_no_number_cell_holds_exactly_gets_no_rejected_file_and_a_warning() {
    use calamine::Data;
    let t = TestDir::new();
    let trailer = SheetTrailer {
        count: None,
        sum: Some(TrailerCell::Number),
    };
    t.mapping_setup(&trailer.mapping("ods"));
    // INV-2 and INV-4 fail: 100000000000000 + 0.001 has 18 significant digits, more
    // than a number cell reads back; the whole file adds up to 100000000000000
    let mut rows = trailer_sheet(trailer);
    for (r, price) in [
        (4, 100000000000000.0),
        (5, 0.0),
        (6, -0.001),
        (7, 0.001),
        (8, 0.0),
    ] {
        rows[r][5] = Data::Float(price);
    }
    rows[3][5] = Data::Float(0.0);
    rows[9][7] = Data::Float(100000000000000.0);
    t.write("drop/inbox/INV_1.ods", trailer_ods(&rows));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(payloads(&t).len(), 3, "the file passed its check: {out:?}");
    let failed = t.ls("drop/failed");
    assert!(
        failed.contains(&"INV_1.ods.errors.csv".to_string()),
        "{failed:?}"
    );
    assert!(
        !failed.iter().any(|f| f.contains(".rejected.")),
        "{failed:?}"
    );
    assert!(
        out.stderr.contains("is not exactly a number a cell holds"),
        "{}",
        out.stderr
    );
}

// ------------------------------------------- fixed width with title lines (skip_lines)

#[test]
fn a_fixed_width_rejected_file_keeps_its_title_lines_and_comes_back_fixed() {
    let t = TestDir::new();
    t.mapping_setup(&fixed_hlt().replace(
        "format = \"fixed\"\n",
        "format = \"fixed\"\nskip_lines = 2\n",
    ));
    // two title lines in the file's encoding (windows-1251), CRLF, then H/L records
    // and the trailer: 7 rows, 1234.45
    let title = "ВЫПИСКА СЧЕТОВ 2026-11-30";
    let ruler = "----+----1----+----2";
    let lines = [
        title.to_string(),
        ruler.to_string(),
        h("INV1", "C1"),
        l("Чай", "1.50"),
        h("INV2", ""),
        l("Кофе", "1200.00"),
        l("Сахар", "0.50"),
        h("INV3", ""),
        l("Мёд", "32.45"),
        format!("T{:06}{:>14}", 7, "1234.45"),
    ];
    t.write(
        "drop/inbox/INV_1.txt",
        cp1251(&(lines.join("\r\n") + "\r\n")),
    );
    assert_eq!(t.run(&["run"]).code, 1);
    assert_eq!(payloads(&t).len(), 1, "INV1 went");
    let report = t.read_json("drop/failed/INV_1.txt.errors.json");
    let at: Vec<u64> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(at, [5, 8], "the file's own lines: {report:#}");
    let rejected = std::fs::read(t.join("drop/failed/INV_1.rejected.txt")).unwrap();
    let (text, _, bad) = encoding_rs::WINDOWS_1251.decode(&rejected);
    assert!(!bad);
    let rows: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(rows.len(), 9, "{text:?}");
    // the titles first, as they were, then the failed lines, then the trailer of the
    // five rows sent back (not counting the titles)
    assert_eq!(rows[..2], [title, ruler]);
    assert!(rows[2].starts_with(&h("INV2", "")), "{}", rows[2]);
    assert!(rows[2].contains("erpdrop_error: "), "{}", rows[2]);
    assert!(rows[5].starts_with(&h("INV3", "")), "{}", rows[5]);
    assert_eq!(rows[7], format!("T{:06}{:>14}", 5, "1232.95"));
    assert_eq!(rows[8], "");
    // dropped back as it is, it fails at the same lines of its own
    t.write("drop/inbox/INV_1.rejected.txt", &rejected);
    assert_eq!(t.run(&["run"]).code, 1);
    let report = t
        .ls("drop/failed")
        .into_iter()
        .find(|n| n.starts_with("INV_1.rejected.") && n.ends_with(".errors.json"))
        .expect("the second report");
    let again = t.read_json(&format!("drop/failed/{report}"));
    let again: Vec<u64> = again["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(again, [3, 6], "{again:?}");
    assert_eq!(payloads(&t).len(), 1);
    // fixed, only INV2 and INV3 go
    let fixed = text
        .replace(&h("INV2", ""), &h("INV2", "C2"))
        .replace(&h("INV3", ""), &h("INV3", "C3"));
    drop_back(&t, "INV_2.rejected.txt", cp1251(&fixed), 3);
    let docs: Vec<serde_json::Value> = payloads(&t)
        .iter()
        .map(|n| t.read_json(&format!("drop/outbox/{n}")))
        .collect();
    let inv2 = docs.iter().find(|d| d["number"] == "INV2").expect("INV2");
    assert_eq!(inv2["lines"][0]["item"], "Кофе");
    assert_eq!(inv2["lines"].as_array().unwrap().len(), 2);
}

#[test]
fn json_records_under_a_pointer_in_cp437_keep_its_bytes_and_come_back_fixed() {
    let t = TestDir::new();
    t.mapping_setup(&pointer_mapping(
        "record = \"/invoices\"\nencoding = \"cp437\"",
    ));
    let file = r#"{"source": "Café ╔═╗", "invoices": [
  {"number": "INV-1", "customer": {"id": "C1"}, "lines": [{"sku": "Thé", "amount": 1}]},
  {"number": "INV-2", "customer": {}, "note": "Straße ░▒▓", "lines": [{"sku": "Müller", "amount": 2}]},
  {"number": "INV-3", "customer": {}, "lines": [{"sku": "Ñoño", "amount": 3}]}
]}
"#;
    t.write("drop/inbox/o.json", cp437(file));
    assert_eq!(t.run(&["run"]).code, 1);
    assert_eq!(payloads(&t).len(), 1);
    let rejected = std::fs::read(t.join("drop/failed/o.rejected.json")).unwrap();
    // the file's own code page: what surrounds the records and the records' text
    assert!(
        rejected.starts_with(&cp437(r#"{"source": "Café ╔═╗", "invoices": ["#)),
        "{}",
        String::from_utf8_lossy(&rejected)
    );
    let inv2 = r#"{"number": "INV-2", "customer": {}, "note": "Straße ░▒▓", "lines": [{"sku": "Müller", "amount": 2}]"#;
    let inv2 = cp437(inv2);
    assert!(
        rejected.windows(inv2.len()).any(|w| w == inv2.as_slice()),
        "{}",
        String::from_utf8_lossy(&rejected)
    );
    let fixed = replace(
        &rejected,
        br#""customer": {}"#,
        br#""customer": {"id": "C9"}"#,
    );
    t.write("drop/inbox/o.rejected.json", fixed);
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let docs: Vec<serde_json::Value> = payloads(&t)
        .iter()
        .map(|n| t.read_json(&format!("drop/outbox/{n}")))
        .collect();
    assert_eq!(docs.len(), 3, "only INV-2 and INV-3 went again");
    let inv2 = docs.iter().find(|d| d["number"] == "INV-2").expect("INV-2");
    assert_eq!(inv2["note"], "Straße ░▒▓");
    assert_eq!(inv2["lines"][0]["sku"], "Müller");
    let inv3 = docs.iter().find(|d| d["number"] == "INV-3").expect("INV-3");
    assert_eq!(inv3["lines"][0]["sku"], "Ñoño");
}

/// A CSV file without a header row, record types by position: header rows are shorter
/// than line rows, and the header reads a column (4) that its rows leave out.
const HEADERLESS_MAPPING: &str = r#"name = "inv"
match = ["INV_*.csv"]
document_type = "sales_invoice"

[source]
delimiter = ";"
header = false
record_type = { column = 1, header = "H", line = "L", trailer = "T" }

[source.trailer]
count = 2

[document]
key = ["2"]
on_invalid = "skip-document"

[header]
number = { from = 2, required = true }
note   = { from = 4 }

[lines]
item   = { from = 2, allowed = ["SETUP", "SUB"] }
amount = { from = 3, type = "decimal" }
"#;

#[test]
fn headerless_csv_messages_stand_past_every_column_read_and_are_replaced_when_it_fails_again() {
    let t = TestDir::new();
    t.invoice_setup(HEADERLESS_MAPPING);
    t.write(
        "drop/inbox/INV_1.csv",
        "H;A;x\nL;SETUP;1\nH;B;y\nL;NOPE;2\nT;4\n",
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    let rejected = t.read("drop/failed/INV_1.rejected.csv");
    // the message is not in column 4, which the header reads as `note`
    let lines: Vec<&str> = rejected.lines().collect();
    assert_eq!(lines.len(), 3, "{rejected}");
    assert!(
        lines[0].starts_with("H;B;y;;\"erpdrop_error: Item code"),
        "{rejected}"
    );
    assert!(
        lines[1].starts_with("L;NOPE;2;;\"erpdrop_error: Item code"),
        "{rejected}"
    );
    assert_eq!(lines[2], "T;2", "{rejected}");

    // dropped back unchanged, it fails again: the message is replaced, not added twice
    t.write("drop/inbox/INV_2.csv", &rejected);
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    let again = t.read("drop/failed/INV_2.rejected.csv");
    let lines: Vec<&str> = again.lines().collect();
    assert_eq!(lines.len(), 3, "{again}");
    for l in &lines[..2] {
        assert_eq!(l.matches("erpdrop_error").count(), 1, "{again}");
        assert_eq!(l.split(';').count(), 5, "{again}");
    }
    assert_eq!(lines[2], "T;2", "{again}");

    // fixed, it goes, and the message is no value of the document
    t.write("drop/inbox/INV_3.csv", again.replace("L;NOPE;", "L;SETUP;"));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let doc: serde_json::Value =
        serde_json::from_str(&t.read("drop/outbox/sales_invoice-B.json")).unwrap();
    assert_eq!(doc["note"], serde_json::Value::Null, "{doc}");
}

#[test]
fn headerless_workbook_messages_stand_past_every_column_read_and_are_replaced_when_it_fails_again()
{
    let t = TestDir::new();
    // columns by number; the header reads C (`note`), which no cell of the sheet holds
    t.mapping_setup(
        r#"name = "inv"
match = ["INV_*.xlsx"]
document_type = "sales_invoice"

[source]
format = "xlsx"
header = false

[document]
key = ["1"]
on_invalid = "skip-document"

[header]
number = { from = 1, required = true }
note   = { from = 3 }

[lines]
amount = { from = 2, type = "decimal" }
"#,
    );
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    ws.write_string(0, 0, "A").unwrap();
    ws.write_number(0, 1, 1.5).unwrap();
    ws.write_string(1, 0, "B").unwrap();
    ws.write_string(1, 1, "many").unwrap();
    t.write("drop/inbox/INV_1.xlsx", wb.save_to_buffer().unwrap());
    assert_eq!(t.run(&["run"]).code, 1);
    let first = std::fs::read(t.join("drop/failed/INV_1.rejected.xlsx")).unwrap();
    let (_, rows) = sheet_rows(&first);
    assert_eq!(rows.len(), 1, "{rows:?}");
    // not in C, which the mapping reads as `note`
    assert_eq!(rows[0].len(), 4, "{rows:?}");
    assert_eq!(rows[0][2], calamine::Data::Empty, "{rows:?}");
    assert!(
        rows[0][3].to_string().starts_with("erpdrop_error: "),
        "{rows:?}"
    );

    // dropped back unchanged, it fails again: still one message, in D
    t.write("drop/inbox/INV_2.xlsx", &first);
    assert_eq!(t.run(&["run"]).code, 1);
    let again = std::fs::read(t.join("drop/failed/INV_2.rejected.xlsx")).unwrap();
    let (_, rows) = sheet_rows(&again);
    assert_eq!(rows[0].len(), 4, "{rows:?}");
    assert!(
        rows[0][3].to_string().starts_with("erpdrop_error: "),
        "{rows:?}"
    );

    // fixed, it goes, and the message is no value of the document
    let fixed = resave("Sheet1", &rows, &|_, c, _| {
        (c == 1).then_some(calamine::Data::Float(2.0))
    });
    t.write("drop/inbox/INV_3.xlsx", fixed);
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let doc: serde_json::Value =
        serde_json::from_str(&t.read("drop/outbox/sales_invoice-B.json")).unwrap();
    assert_eq!(doc["note"], serde_json::Value::Null, "{doc}");
}

#[test]
fn a_headerless_rejected_workbook_saved_wider_than_its_cells_still_keeps_one_message() {
    let t = TestDir::new();
    t.mapping_setup(
        r#"name = "inv"
match = ["INV_*.xlsx"]
document_type = "sales_invoice"

[source]
format = "xlsx"
header = false

[document]
key = ["1"]

[header]
number = { from = 1, required = true }
amount = { from = 2, type = "decimal" }
"#,
    );
    // as a spreadsheet saves the rejected rows a user opened: the message in C, and
    // formatting on blank cells out to H, which the sheet's dimensions count
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    ws.write_string(0, 0, "B").unwrap();
    ws.write_string(0, 1, "many").unwrap();
    ws.write_string(0, 2, "erpdrop_error: Amount \"many\" is not a number")
        .unwrap();
    let bold = rust_xlsxwriter::Format::new().set_bold();
    ws.write_blank(0, 7, &bold).unwrap();
    t.write("drop/inbox/INV_1.xlsx", wb.save_to_buffer().unwrap());
    assert_eq!(t.run(&["run"]).code, 1);
    let again = std::fs::read(t.join("drop/failed/INV_1.rejected.xlsx")).unwrap();
    let (_, rows) = sheet_rows(&again);
    let texts: Vec<String> = rows[0].iter().map(|c| c.to_string()).collect();
    assert_eq!(
        texts.iter().filter(|c| c.contains("erpdrop_error")).count(),
        1,
        "{rows:?}"
    );
    assert!(texts[2].starts_with("erpdrop_error: Amount"), "{rows:?}");
}
