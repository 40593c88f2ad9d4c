//! XML sources (issue #4), through the real binary: realistic exports in
//! `fixtures/xml/`, their payloads and error reports, hostile and broken files, a large
//! generated export.

use crate::util::TestDir;
use serde_json::Value;
use std::io::Write;

/// The 1-based line of the first occurrence of `needle`.
fn line_of(text: &str, needle: &str) -> u64 {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} is not in the text"));
    text[..at].matches('\n').count() as u64 + 1
}

/// The 1-based character column of the first occurrence of `needle` on its line.
fn column_of(text: &str, needle: &str) -> usize {
    let at = text.find(needle).unwrap();
    text[..at].rsplit('\n').next().unwrap().chars().count() + 1
}

fn errors(report: &Value) -> &Vec<Value> {
    report["errors"].as_array().expect("an errors array")
}

/// The one error row with this code.
fn error_with<'a>(report: &'a Value, code: &str) -> &'a Value {
    let rows: Vec<&Value> = errors(report)
        .iter()
        .filter(|e| e["code"] == code)
        .collect();
    assert_eq!(rows.len(), 1, "one {code} row expected in {report:#}");
    rows[0]
}

const CML: &str = "drop/inbox/orders_2026-11-25.xml";
const INV: &str = "drop/inbox/InvoiceExport_2026-11-20.xml";
const SOP: &str = "drop/inbox/SOP_2026-11-26.xml";

fn cml_text(t: &TestDir) -> String {
    let bytes = std::fs::read(t.join(CML)).unwrap();
    let (text, _, bad) = encoding_rs::WINDOWS_1251.decode(&bytes);
    assert!(!bad);
    text.into_owned()
}

fn write_1251(t: &TestDir, rel: &str, text: &str) {
    let (bytes, _, bad) = encoding_rs::WINDOWS_1251.encode(text);
    assert!(!bad);
    t.write(rel, bytes);
}

#[test]
fn commerceml_orders_in_windows_1251_validate_and_emit() {
    let t = TestDir::new();
    t.copy_from_repo("fixtures/xml/commerceml");
    // the fixture really is Windows-1251: the declaration says so and the bytes are not UTF-8
    let raw = std::fs::read(t.join(CML)).unwrap();
    assert!(raw.starts_with(b"<?xml version=\"1.0\" encoding=\"windows-1251\"?>\r\n"));
    assert!(std::str::from_utf8(&raw).is_err());

    let out = t.run(&["validate", "--emit", "emit", "--report", "rep"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("2 rows, 2 documents, 2 valid, 0 invalid"),
        "{}",
        out.stdout
    );
    let doc = t.read_json("emit/sales_order-ЗК-1041.json");
    assert_eq!(doc["number"], "ЗК-1041");
    assert_eq!(doc["date"], "2026-11-25");
    assert_eq!(doc["customer"]["id"], "K-00017");
    assert_eq!(doc["customer"]["name"], "ООО \"Ромашка\"");
    assert_eq!(doc["currency"], "RUB");
    assert_eq!(
        doc["total"], "4380.00",
        "the document's Сумма, not a line's"
    );
    assert_eq!(doc["comment"], "Доставка до 18:00, позвонить за час");
    let lines = doc["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["item"], "ЧШ-001");
    assert_eq!(
        lines[0]["name"], "Чайник электрический",
        "not the VAT's Наименование"
    );
    assert_eq!(lines[0]["unit"], "PCE");
    assert_eq!(lines[0]["unit_code"], "796");
    assert_eq!(lines[0]["vat"]["rate"], 20);
    assert_eq!(lines[1]["quantity"], "6");
    assert_eq!(lines[1]["amount"], "1890.00");
    let doc = t.read_json("emit/sales_order-ЗК-1042.json");
    assert_eq!(doc["comment"], Value::Null);
    assert_eq!(doc["lines"][1]["name"], "Поднос деревянный \"Хохлома\"");
    assert_eq!(doc["lines"][1]["vat"]["rate"], 10);

    let rep = t.read_json("rep/orders_2026-11-25.xml.errors.json");
    assert_eq!(rep["outcome"], "valid");
    assert_eq!(rep["counts"]["documents"], 2);
    assert_eq!(rep["counts"]["rows"], 2, "XML counts one row per record");
    assert!(errors(&rep).is_empty());
}

#[test]
fn commerceml_errors_name_the_line_path_and_value() {
    let t = TestDir::new();
    t.copy_from_repo("fixtures/xml/commerceml");
    let text = cml_text(&t)
        .replace(
            "<Количество>6</Количество>",
            "<Количество>шесть</Количество>",
        )
        .replace("<Артикул>СК-10</Артикул>", "<Артикул>СК-99</Артикул>");
    write_1251(&t, CML, &text);
    let out = t.run(&["validate", "--report", "rep"]);
    assert_eq!(out.code, 1, "{out:?}");

    let rep = t.read_json("rep/orders_2026-11-25.xml.errors.json");
    assert_eq!(rep["outcome"], "invalid");
    assert_eq!(rep["counts"]["invalid"], 2);
    let e = error_with(&rep, "type");
    assert_eq!(e["stage"], "map");
    assert_eq!(e["document"], "ЗК-1041");
    assert_eq!(e["line"], line_of(&text, "<Количество>шесть"));
    assert_eq!(e["column"], "Количество");
    assert_eq!(e["field"], "quantity");
    assert_eq!(e["value"], "шесть");
    let e = error_with(&rep, "not_allowed");
    assert_eq!(e["document"], "ЗК-1042");
    assert_eq!(e["line"], line_of(&text, "<Артикул>СК-99"));
    assert_eq!(e["column"], "Артикул");
    assert_eq!(e["value"], "СК-99");
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.ends_with(&format!(
            "(line {}, column Артикул)",
            line_of(&text, "<Артикул>СК-99")
        )),
        "{msg}"
    );
    // the spreadsheet report carries the same rows, in UTF-8
    let csv = t.read("rep/orders_2026-11-25.xml.errors.csv");
    assert!(csv.contains("шесть"), "{csv}");
}

#[test]
fn invoice_export_with_nested_lines_and_attributes() {
    let t = TestDir::new();
    t.copy_from_repo("fixtures/xml/invoices");
    let text = t.read(INV);
    let out = t.run(&["validate", "--emit", "emit"]);
    assert_eq!(out.code, 0, "{out:?}");
    // the <CreditNote> between the invoices is not a record
    assert!(
        out.stdout.contains("3 documents, 3 valid"),
        "{}",
        out.stdout
    );
    assert_eq!(
        t.ls("emit"),
        vec![
            "sales_invoice-INV-2026-0101.json",
            "sales_invoice-INV-2026-0102.json",
            "sales_invoice-INV-2026-0103.json"
        ]
    );

    let a = t.read_json("emit/sales_invoice-INV-2026-0101.json");
    assert_eq!(a["number"], "INV-2026-0101");
    assert_eq!(a["status"], "issued");
    assert_eq!(a["currency"], "USD");
    assert_eq!(a["customer"]["id"], "CUST-0001");
    assert_eq!(a["customer"]["name"], "Northwind Traders & Co.");
    assert_eq!(a["customer"]["tax_id"], "12-3456789");
    assert_eq!(a["customer"]["country"], "US");
    assert_eq!(a["terms"], "N30");
    assert_eq!(a["po_number"], "PO-88121");
    assert_eq!(a["total"], "649.00");
    assert_eq!(
        a["note"],
        format!(
            "BillingPro batch import, InvoiceExport_2026-11-20.xml line {}",
            line_of(&text, "<Invoice id=\"INV-2026-0101\"")
        )
    );
    let lines = a["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["line_no"], 1);
    assert_eq!(lines[0]["item"], "SUB-PRO-M");
    assert_eq!(lines[0]["description"], "Pro plan <monthly>, Nov 2026");
    assert_eq!(lines[0]["uom"], "EA");
    assert_eq!(lines[0]["unit_price"], "499.0000");
    assert_eq!(lines[1]["description"], "Additional seats — 5 users");
    assert_eq!(lines[1]["uom"], "SEAT");
    assert_eq!(lines[1]["amount"], "150.00");

    let b = t.read_json("emit/sales_invoice-INV-2026-0102.json");
    assert_eq!(b["customer"]["name"], "Brauerei Müller GmbH");
    assert_eq!(b["terms"], "N15", "from an empty element's attribute");
    assert_eq!(b["po_number"], Value::Null, "xsi:nil, no text");
    assert_eq!(b["lines"][1]["uom"], "EA", "no unit attribute: the default");
    assert_eq!(b["lines"][1]["account"], "4100-SERV");
    let c = t.read_json("emit/sales_invoice-INV-2026-0103.json");
    assert_eq!(c["due_date"], Value::Null);
    assert_eq!(c["customer"]["tax_id"], Value::Null);
    assert_eq!(c["lines"][0]["quantity"], "0.5");
}

#[test]
fn invoice_export_errors_have_lines_paths_and_values() {
    let t = TestDir::new();
    t.copy_from_repo("fixtures/xml/invoices");
    let text = t
        .read(INV)
        .replace("sku=\"SETUP\"", "sku=\"SETUP-X\"")
        .replace(
            "<Invoice id=\"INV-2026-0103\"",
            "<Invoice id=\"INV-2026-0101\"",
        )
        .replace("net=\"649.00\"", "net=\"650.00\"")
        .replace("accountId=\"C1002\"", "accountId=\"C9999\"");
    t.write(INV, &text);
    let out = t.run(&["validate", "--report", "rep", "--emit", "emit"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(t.ls("emit").is_empty(), "reject-file: nothing emitted");

    let rep = t.read_json("rep/InvoiceExport_2026-11-20.xml.errors.json");
    assert_eq!(rep["counts"]["documents"], 3);
    assert_eq!(rep["counts"]["invalid"], 3);

    let e = error_with(&rep, "not_allowed");
    assert_eq!(e["document"], "INV-2026-0102");
    assert_eq!(e["line"], line_of(&text, "sku=\"SETUP-X\""));
    assert_eq!(e["column"], "@sku");
    assert_eq!(e["field"], "item");
    assert_eq!(e["value"], "SETUP-X");

    let e = error_with(&rep, "lookup");
    assert_eq!(e["document"], "INV-2026-0102");
    assert_eq!(e["line"], line_of(&text, "accountId=\"C9999\""));
    assert_eq!(e["column"], "Header/Customer/@accountId");
    assert_eq!(e["value"], "C9999");

    let e = error_with(&rep, "sum");
    assert_eq!(e["document"], "INV-2026-0101");
    assert_eq!(e["line"], line_of(&text, "net=\"650.00\""));
    assert_eq!(e["column"], "Totals/@net");
    assert_eq!(e["value"], "650.00");

    // the third invoice repeats the first one's id
    let e = error_with(&rep, "duplicate");
    assert_eq!(e["stage"], "validate");
    assert_eq!(e["document"], "INV-2026-0101");
    let first = line_of(&text, "<Invoice id=\"INV-2026-0101\"");
    let second = text[..text.rfind("<Invoice id=\"INV-2026-0101\"").unwrap()]
        .matches('\n')
        .count() as u64
        + 1;
    assert!(second > first);
    assert_eq!(e["line"], second);
    assert_eq!(e["column"], "@id");
    assert_eq!(e["value"], "INV-2026-0101");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains(&format!("line {first}")),
        "{e}"
    );
}

#[test]
fn econnect_documents_with_lines_before_the_header() {
    let t = TestDir::new();
    t.copy_from_repo("fixtures/xml/econnect");
    let out = t.run(&["validate", "--emit", "emit"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("2 documents, 2 valid"),
        "{}",
        out.stdout
    );
    let a = t.read_json("emit/sales_invoice-STDINV2261.json");
    assert_eq!(a["sop_type"], 3);
    assert_eq!(a["customer"], "AARONFIT0001");
    assert_eq!(a["po_number"], "PO-7781");
    assert_eq!(a["subtotal"], "149.75");
    let text = t.read(SOP);
    assert_eq!(
        a["reference"],
        format!(
            "GP STDINV STDINV2261, line {}",
            line_of(&text, "<SOPTransactionType>")
        )
    );
    let lines = a["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["description"], "Phone Cord - 12' White");
    assert_eq!(lines[1]["uom"], "Each", "no UOFM: the default");
    let b = t.read_json("emit/sales_invoice-STDINV2262.json");
    assert_eq!(b["customer"], "ASSOCIAT0001");
    assert_eq!(b["po_number"], Value::Null);
    assert_eq!(b["lines"][0]["unit_price"], "1.50000");
    assert_eq!(b["lines"][1]["sop_number"], "STDINV2262");

    // a line whose amount does not add up is reported at the header's SUBTOTAL
    let text = t
        .read(SOP)
        .replace("<XTNDPRCE>150.00</XTNDPRCE>", "<XTNDPRCE>15O.00</XTNDPRCE>");
    t.write(SOP, &text);
    let out = t.run(&["validate", "--report", "rep"]);
    assert_eq!(out.code, 1, "{out:?}");
    let rep = t.read_json("rep/SOP_2026-11-26.xml.errors.json");
    let e = error_with(&rep, "type");
    assert_eq!(e["document"], "STDINV2262");
    assert_eq!(e["line"], line_of(&text, "15O.00"));
    assert_eq!(e["column"], "XTNDPRCE");
    assert_eq!(e["value"], "15O.00");
}

/// Validates one broken copy of the invoice export; returns its single error row.
fn read_error(text: &[u8]) -> Value {
    let t = TestDir::new();
    t.copy_from_repo("fixtures/xml/invoices");
    t.write(INV, text);
    let out = t.run(&["validate", "--report", "rep"]);
    assert_eq!(out.code, 1, "{out:?}");
    let rep = t.read_json("rep/InvoiceExport_2026-11-20.xml.errors.json");
    assert_eq!(rep["outcome"], "invalid");
    let rows = errors(&rep);
    assert_eq!(rows.len(), 1, "{rep:#}");
    let e = rows[0].clone();
    assert_eq!(e["stage"], "read", "{e}");
    assert!(
        e.get("document").is_none(),
        "a file problem has no document: {e}"
    );
    e
}

fn fixture_invoices() -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/xml/invoices")
            .join(INV),
    )
    .unwrap()
}

#[test]
fn malformed_files_are_one_read_error_with_the_line() {
    let good = fixture_invoices();

    // a misspelt end tag
    let text = good.replacen("</City>", "</Town>", 1);
    let e = read_error(text.as_bytes());
    assert_eq!(e["code"], "malformed");
    assert_eq!(e["line"], line_of(&text, "</Town>"));
    assert_eq!(e["value"], "</Town>");
    assert_eq!(
        e["column"],
        "/InvoiceExport/Batch/Invoice/Header/Customer/BillTo/City"
    );
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("</Town> does not close <City>"), "{msg}");
    let at = format!(
        "(line {}, character {})",
        line_of(&text, "</Town>"),
        column_of(&text, "</Town>")
    );
    assert!(msg.ends_with(&at), "{msg}");

    // a file cut short: the innermost open element is named, with its line
    let cut = &good[..good.find("<GLAccount>4100-SERV").unwrap()];
    let e = read_error(cut.as_bytes());
    assert_eq!(e["code"], "malformed");
    assert_eq!(
        e["line"],
        line_of(&good, "<Line number=\"2\" sku=\"SETUP\"")
    );
    assert_eq!(e["value"], "<Line>");
    assert!(
        e["message"].as_str().unwrap().contains("never closed"),
        "{e}"
    );

    // a bare ampersand
    let text = good.replacen("&amp; Co.", "& Co.", 1);
    let e = read_error(text.as_bytes());
    assert_eq!(e["code"], "malformed");
    assert_eq!(e["line"], line_of(&text, "& Co."));
    assert!(e["message"].as_str().unwrap().contains("&amp;"), "{e}");

    // an HTML entity that XML does not know
    let text = good.replacen("Team plan, 12 months", "Team&nbsp;plan", 1);
    let e = read_error(text.as_bytes());
    assert_eq!(e["code"], "malformed");
    assert_eq!(e["line"], line_of(&text, "Team&nbsp;plan"));
    assert_eq!(e["value"], "&nbsp;");

    // an attribute without quotes
    let text = good.replacen("number=\"2\"", "number=2", 1);
    let e = read_error(text.as_bytes());
    assert_eq!(e["code"], "malformed");
    assert_eq!(e["line"], line_of(&text, "number=2"));
}

#[test]
fn billion_laughs_is_an_error_not_a_hang() {
    // expanded, &lol9; would be 10^9 "lol"s
    let mut text = String::from(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE InvoiceExport [\n  <!ENTITY lol \"lol\">\n",
    );
    for i in 1..=9 {
        let prev = if i == 1 {
            "lol".to_string()
        } else {
            format!("lol{}", i - 1)
        };
        text.push_str(&format!(
            "  <!ENTITY lol{i} \"{}\">\n",
            format!("&{prev};").repeat(10)
        ));
    }
    text.push_str("]>\n");
    text.push_str(
        &fixture_invoices()
            .replacen("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", "", 1)
            .replacen("Northwind Traders &amp; Co.", "&lol9;", 1),
    );
    let started = std::time::Instant::now();
    let e = read_error(text.as_bytes());
    assert_eq!(e["code"], "malformed");
    assert_eq!(e["line"], 2);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("DTDs and entity declarations are not allowed"),
        "{e}"
    );
    // not a hang: the file is refused at its DOCTYPE (generous bound for slow machines)
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn deep_nesting_is_refused() {
    let depth = 100_000;
    let text = format!(
        "<?xml version=\"1.0\"?>\n<InvoiceExport>\n{}{}</InvoiceExport>\n",
        "<a>".repeat(depth),
        "</a>".repeat(depth)
    );
    let e = read_error(text.as_bytes());
    assert_eq!(e["code"], "malformed");
    assert_eq!(e["line"], 3);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("nested more than 256 deep"),
        "{e}"
    );
}

#[test]
fn a_record_path_that_does_not_fit_is_reported() {
    let good = fixture_invoices();
    let text = good
        .replace("<Batch ", "<Run ")
        .replace("</Batch>", "</Run>");
    let e = read_error(text.as_bytes());
    assert_eq!(e["code"], "missing_column");
    assert_eq!(e["column"], "/b:InvoiceExport/b:Batch/b:Invoice");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("the file has /b:InvoiceExport but no <b:Batch>"),
        "{e}"
    );
    // elements in another namespace do not match the mapping's b: prefix
    let text = good.replace("urn:example:billing:export:v3", "urn:example:other");
    let e = read_error(text.as_bytes());
    assert_eq!(e["code"], "missing_column");
}

#[test]
fn encoding_comes_from_the_declaration_unless_the_mapping_says() {
    let t = TestDir::new();
    t.copy_from_repo("fixtures/xml/commerceml");
    // Windows-1251 bytes declared as UTF-8
    let text = cml_text(&t).replacen("encoding=\"windows-1251\"", "encoding=\"UTF-8\"", 1);
    write_1251(&t, CML, &text);
    let out = t.run(&["validate", "--report", "rep"]);
    assert_eq!(out.code, 1, "{out:?}");
    let rep = t.read_json("rep/orders_2026-11-25.xml.errors.json");
    let rows = errors(&rep);
    assert_eq!(rows.len(), 1, "{rep:#}");
    assert_eq!(rows[0]["code"], "encoding");
    assert_eq!(rows[0]["stage"], "read");
    assert_eq!(rows[0]["line"], 2);
    assert_eq!(rows[0]["value"], "0xCA", "К in Windows-1251");
    assert!(
        rows[0]["message"]
            .as_str()
            .unwrap()
            .contains("not valid UTF-8"),
        "{rows:?}"
    );

    // source.encoding in the mapping overrides the declaration
    let mapping = t.read("mappings/orders.toml").replace(
        "format = \"xml\"\n",
        "format = \"xml\"\nencoding = \"windows-1251\"\n",
    );
    t.write("mappings/orders.toml", mapping);
    let out = t.run(&["validate", "--emit", "emit"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        t.read_json("emit/sales_order-ЗК-1041.json")["customer"]["name"],
        "ООО \"Ромашка\""
    );
}

#[test]
fn utf16_export_reads_like_utf8() {
    let t = TestDir::new();
    t.copy_from_repo("fixtures/xml/invoices");
    let text = fixture_invoices().replacen("encoding=\"UTF-8\"", "encoding=\"UTF-16\"", 1);
    let mut bytes = vec![0xFF, 0xFE];
    for u in text.replace('\n', "\r\n").encode_utf16() {
        bytes.extend_from_slice(&u.to_le_bytes());
    }
    t.write(INV, &bytes);
    let out = t.run(&["validate", "--emit", "emit"]);
    assert_eq!(out.code, 0, "{out:?}");
    let b = t.read_json("emit/sales_invoice-INV-2026-0102.json");
    assert_eq!(b["customer"]["name"], "Brauerei Müller GmbH");
    assert_eq!(
        b["note"],
        format!(
            "BillingPro batch import, InvoiceExport_2026-11-20.xml line {}",
            line_of(&text, "<Invoice id=\"INV-2026-0102\"")
        )
    );
}

#[test]
fn a_large_generated_export_validates() {
    // Large enough for many read buffers and hand-overs between the threads; with a
    // small key window, older keys go to temporary runs that are merged at the end, as
    // in a large export. Load and memory on large files: scripts/bench.
    let t = TestDir::new();
    t.copy_from_repo("fixtures/xml/invoices");
    std::fs::remove_file(t.join(INV)).unwrap();
    let records = 3_000;
    let path = t.join("drop/inbox/InvoiceExport_big.xml");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>").unwrap();
    writeln!(w, "<InvoiceExport xmlns=\"urn:example:billing:export:v3\">").unwrap();
    writeln!(w, "<Batch id=\"B-1\">").unwrap();
    for n in 1..=records {
        write!(
            w,
            "<Invoice id=\"G-{n:06}\" status=\"issued\" currency=\"USD\">\n\
             <Header><InvoiceDate>2026-11-20</InvoiceDate><Customer accountId=\"C100{c}\"><Name>Customer {n}</Name></Customer><Terms code=\"N30\"/></Header>\n\
             <Lines>\n\
             <Line number=\"1\" sku=\"SUB-PRO-M\"><Description>Plan</Description><Quantity unit=\"EA\">1</Quantity><UnitPrice>499.00</UnitPrice><Amount>499.00</Amount><GLAccount>4000-SUBS</GLAccount></Line>\n\
             <Line number=\"2\" sku=\"SEAT-ADD\"><Description>Seats</Description><Quantity unit=\"SEAT\">{s}</Quantity><UnitPrice>30.00</UnitPrice><Amount>{a}.00</Amount><GLAccount>4000-SUBS</GLAccount></Line>\n\
             </Lines>\n\
             <Totals net=\"{t}.00\"/>\n\
             </Invoice>\n",
            c = n % 3 + 1,
            s = n % 7,
            a = (n % 7) * 30,
            t = 499 + (n % 7) * 30,
        )
        .unwrap();
    }
    writeln!(w, "</Batch>\n</InvoiceExport>").unwrap();
    w.flush().unwrap();
    drop(w);
    assert!(std::fs::metadata(&path).unwrap().len() > 1_500_000);

    for window in [None, Some("1000")] {
        let mut c = t.cmd();
        if let Some(w) = window {
            c.env("ERPDROP_KEY_WINDOW", w);
        }
        let o = c.args(["validate", "--json"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "key window {window:?}: {stderr}");
        let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
        let file = &summary["files"][0];
        assert_eq!(file["counts"]["documents"], records, "{window:?}");
        assert_eq!(file["counts"]["invalid"], 0, "{window:?}");
        assert_eq!(file["outcome"], "valid", "{window:?}");
    }
}

#[test]
fn check_reports_a_bad_xml_path_before_any_file_arrives() {
    let t = TestDir::new();
    t.write("erpdrop.toml", "[scan]\nsettle_seconds = 0\n");
    t.write(
        "mappings/x.toml",
        "name = \"x\"\nmatch = [\"*.xml\"]\ndocument_type = \"d\"\n[source]\nformat = \"xml\"\nrecord = \"/Export/Invoice\"\n[document]\nkey = [\"@id\"]\n[header]\nnumber = { from = \"Lines/Line[2]\" }\n",
    );
    let out = t.run(&["check"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("mappings/x.toml"), "{}", out.stderr);
    assert!(out.stderr.contains("Lines/Line[2]"), "{}", out.stderr);
}

/// What `validate --json --report --emit` says and writes, without run ids and times.
fn validate_outputs(t: &TestDir, env: &[(&str, &str)], file: &str) -> Vec<(String, String)> {
    let _ = std::fs::remove_dir_all(t.join("rep"));
    let _ = std::fs::remove_dir_all(t.join("out"));
    let mut cmd = t.cmd();
    cmd.args([
        "--json", "validate", "--report", "rep", "--emit", "out", file,
    ]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    let scrub = |s: &str| -> String {
        let re = regex::Regex::new(r#""(run_id|started|finished)": ?"[^"]*""#).unwrap();
        re.replace_all(s, r#""$1": "-""#).into_owned()
    };
    let mut all = vec![
        ("exit".to_string(), format!("{:?}", o.status.code())),
        (
            "stdout".to_string(),
            scrub(&String::from_utf8_lossy(&o.stdout)),
        ),
    ];
    for dir in ["rep", "out"] {
        for name in t.ls(dir) {
            let rel = format!("{dir}/{name}");
            all.push((rel.clone(), scrub(&t.read(&rel))));
        }
    }
    all
}

#[test]
fn reading_ahead_on_a_second_thread_changes_nothing() {
    // XML is parsed on a second thread while the first maps and validates; the
    // results must be those of one thread, whatever the file: errors, a second pass
    // for keys that repeat far apart, a file broken in the middle, many chunks
    let t = TestDir::new();
    t.copy_from_repo("fixtures/xml/invoices");
    let good = fixture_invoices();
    let mut big = String::new();
    let (head, rest) = good.split_at(good.find("<Invoice ").unwrap());
    let (records, tail) = rest.split_at(rest.rfind("</Invoice>").unwrap() + "</Invoice>".len());
    big.push_str(head);
    for i in 0..120 {
        big.push_str(&records.replace("id=\"", &format!("id=\"{i:03}-")));
    }
    big.push_str(tail);
    let broken = big[..big.len() * 2 / 3].to_string();
    let bad_values = big.replacen("<Quantity unit=\"EA\">", "<Quantity unit=\"EA\">x", 3);
    // the first invoice again at the end: a duplicate found late (a second pass when
    // the key window is small)
    let first = &records[..records.find("</Invoice>").unwrap() + "</Invoice>".len()];
    let repeated = big.replacen(
        tail,
        &format!("{}{tail}", first.replace("id=\"", "id=\"000-")),
        1,
    );
    let files = [
        ("good.xml", good.clone(), "valid"),
        ("big.xml", big.clone(), "valid"),
        ("broken.xml", broken, "malformed"),
        ("bad_values.xml", bad_values, "type"),
        ("repeated.xml", repeated, "duplicate"),
    ];
    for (name, text, expect) in &files {
        let rel = format!("drop/inbox/InvoiceExport_{name}");
        t.write(&rel, text);
        for window in [None, Some("4")] {
            let mut env = vec![];
            if let Some(w) = window {
                env.push(("ERPDROP_KEY_WINDOW", w));
            }
            let one = validate_outputs(
                &t,
                &[env.clone(), vec![("ERPDROP_READ_AHEAD", "0")]].concat(),
                &rel,
            );
            let two = validate_outputs(&t, &env, &rel);
            assert_eq!(one, two, "{name}, key window {window:?}");
            // and the case is the one meant
            let summary: Value = serde_json::from_str(&two[1].1).unwrap();
            let f = &summary["files"][0];
            if *expect == "valid" {
                assert_eq!(f["outcome"], "valid", "{name}: {f:#}");
                if *name == "big.xml" {
                    // many hand-overs between the threads
                    assert!(t.ls("out").len() > 3 * 64, "{}", t.ls("out").len());
                }
            } else {
                let rep = two
                    .iter()
                    .find(|(k, _)| k.ends_with(".errors.json"))
                    .unwrap();
                assert!(
                    rep.1.contains(&format!("\"code\": \"{expect}\"")),
                    "{name}: {}",
                    rep.1
                );
            }
        }
        std::fs::remove_file(t.join(&rel)).unwrap();
    }
}
