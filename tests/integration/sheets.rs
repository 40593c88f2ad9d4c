//! Workbooks (issue #15): xlsx files written here with rust_xlsxwriter, and the ods and
//! xls fixtures of `fixtures/sheets/`, through the real binary: title rows, totals rows,
//! dates as cells and as text, numbers as the decimal the cell holds, formulas, error
//! cells, and files that are not workbooks.

use crate::util::TestDir;
use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook, Worksheet};
use serde_json::Value;

/// An invoices mapping for workbooks; `source` is the rest of its `[source]` table.
fn mapping(source: &str) -> String {
    format!(
        r#"name = "sheet-invoices"
match = ["*.xlsx", "*.ods", "*.xls"]
document_type = "sales_invoice"

[source]
date_format = "%d.%m.%Y"
{source}

[document]
key = ["InvoiceNo"]

[header]
number = {{ from = "InvoiceNo", required = true }}
date   = {{ from = "Date", type = "date" }}
paid   = {{ from = "Paid", type = "boolean" }}
total  = {{ from = "Total", type = "decimal", scale = 2 }}

[lines]
item     = {{ from = "Item", required = true }}
quantity = {{ from = "Qty", type = "integer" }}
price    = {{ from = "Price" }}
amount   = {{ from = "Amount", type = "decimal" }}

[[checks]]
kind = "sum"
lines_field = "amount"
equals = "total"
"#
    )
}

/// Fills a sheet.
type Fill<'a> = &'a dyn Fn(&mut Worksheet);

/// A workbook of one or more sheets, each filled by its function.
fn workbook(sheets: &[(&str, Fill)]) -> Vec<u8> {
    let mut wb = Workbook::new();
    for (name, fill) in sheets {
        let ws = wb.add_worksheet();
        ws.set_name(*name).unwrap();
        fill(ws);
    }
    wb.save_to_buffer().unwrap()
}

const HEADER: [&str; 7] = ["InvoiceNo", "Date", "Paid", "Total", "Item", "Qty", "Price"];

/// Row `r` (0-based) as the header: InvoiceNo..Price, then Amount in column H.
fn header(ws: &mut Worksheet, r: u32) {
    for (c, h) in HEADER.iter().enumerate() {
        ws.write_string(r, c as u16, *h).unwrap();
    }
    ws.write_string(r, 7, "Amount").unwrap();
}

/// The export of the tests: a merged title over two rows, a blank row, the header on
/// row 4, two invoices, a blank formatted row at the end.
fn export(ws: &mut Worksheet) {
    let bold = Format::new().set_bold();
    let date = Format::new().set_num_format("dd.mm.yyyy");
    let money = Format::new().set_num_format("#,##0.00");
    ws.merge_range(0, 0, 0, 7, "Sales invoices, November 2026", &bold)
        .unwrap();
    ws.write_string(1, 0, "Printed 01.12.2026").unwrap();
    // a row of blanks above the header, as a cleared cell leaves it
    ws.write_string(2, 2, "  ").unwrap();
    header(ws, 3);
    // INV-1: a date cell, two lines; the total is a formula with its cached value
    let day = ExcelDateTime::from_ymd(2026, 11, 20).unwrap();
    for (r, item, qty, price, amount) in
        [(4, "A-1", 12.0, 0.1, 1.2), (5, "B-2", 1.0, 1234.5, 1234.5)]
    {
        ws.write_string(r, 0, "INV-1").unwrap();
        ws.write_datetime_with_format(r, 1, &day, &date).unwrap();
        ws.write_boolean(r, 2, true).unwrap();
        ws.write_formula_with_format(
            r,
            3,
            Formula::new("=SUM(H5:H6)").set_result("1235.7"),
            &money,
        )
        .unwrap();
        ws.write_string(r, 4, item).unwrap();
        ws.write_number(r, 5, qty).unwrap();
        ws.write_number_with_format(r, 6, price, &money).unwrap();
        ws.write_number_with_format(r, 7, amount, &money).unwrap();
    }
    // INV-2: its date as text, as many exports write it
    ws.write_string(6, 0, "INV-2").unwrap();
    ws.write_string(6, 1, "21.11.2026").unwrap();
    ws.write_boolean(6, 2, false).unwrap();
    ws.write_number(6, 3, 0.3).unwrap();
    ws.write_string(6, 4, "C-3").unwrap();
    ws.write_number(6, 5, 3.0).unwrap();
    ws.write_number(6, 6, 0.1).unwrap();
    // 0.1 * 3 in binary floating point: 0.30000000000000004, as Excel would store it
    ws.write_number(6, 7, 0.1 * 3.0).unwrap();
    // formatted but empty rows below the data
    ws.write_blank(8, 0, &bold).unwrap();
    ws.write_blank(9, 3, &money).unwrap();
}

fn summary(ws: &mut Worksheet) {
    ws.write_string(0, 0, "This sheet is not the data").unwrap();
}

#[test]
fn an_excel_export_maps_dates_numbers_and_formulas_exactly() {
    let t = TestDir::new();
    t.mapping_setup(&mapping(
        "format = \"xlsx\"\nsheet = \"Invoices\"\nskip_lines = 2",
    ));
    let file = workbook(&[("Summary", &summary), ("Invoices", &export)]);
    let c = t.check_file("INV_2026-11.xlsx", &file);
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    assert!(
        c.out
            .stdout
            .contains("3 rows, 2 documents, 2 valid, 0 invalid"),
        "{}",
        c.out.stdout
    );
    let one = c.doc("sales_invoice-INV-1.json");
    assert_eq!(
        one["date"], "2026-11-20",
        "a date cell whatever date_format says"
    );
    assert_eq!(one["paid"], true);
    assert_eq!(one["total"], "1235.70", "the formula's cached value");
    let lines = one["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["quantity"], 12);
    assert_eq!(
        lines[0]["price"], "0.1",
        "the decimal the cell holds, not its display 0.10"
    );
    assert_eq!(lines[0]["amount"], "1.2");
    assert_eq!(lines[1]["price"], "1234.5");
    assert_eq!(lines[1]["amount"], "1234.5");
    let two = c.doc("sales_invoice-INV-2.json");
    assert_eq!(
        two["date"], "2026-11-21",
        "text parsed with date_format, as in CSV"
    );
    assert_eq!(two["paid"], false);
    assert_eq!(two["total"], "0.30");
    assert_eq!(two["lines"][0]["price"], "0.1");
    assert_eq!(
        two["lines"][0]["amount"], "0.3",
        "never 0.30000000000000004"
    );
    assert_eq!(c.report["counts"]["rows"], 3);
}

#[test]
fn a_problem_names_the_sheet_row_and_the_column_letter_with_its_header() {
    let t = TestDir::new();
    t.mapping_setup(&mapping("format = \"xlsx\""));
    let file = workbook(&[("Sheet1", &|ws: &mut Worksheet| {
        header(ws, 0);
        ws.write_string(1, 0, "INV-1").unwrap();
        ws.write_string(1, 4, "A-1").unwrap();
        ws.write_string(1, 7, "twelve").unwrap();
        ws.write_string(2, 0, "INV-2").unwrap();
        ws.write_string(2, 4, "B-2").unwrap();
        ws.write_formula(
            2,
            7,
            Formula::new("=VLOOKUP(E3,Prices!A:B,2,0)").set_result("#N/A"),
        )
        .unwrap();
        ws.write_string(3, 0, "INV-3").unwrap();
        ws.write_string(3, 1, "2026-13-45").unwrap();
        ws.write_string(3, 4, "C-3").unwrap();
    })]);
    let c = t.check_file("INV_bad.xlsx", &file);
    assert_eq!(c.out.code, 1, "{:?}", c.out);
    let by_doc =
        |d: &str| -> Vec<&Value> { c.errors.iter().filter(|e| e["document"] == d).collect() };
    let e = by_doc("INV-1");
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0]["code"], "type");
    assert_eq!(e[0]["line"], 2, "the sheet's row number");
    assert_eq!(e[0]["column"], "H (Amount)");
    assert_eq!(e[0]["value"], "twelve");
    assert!(
        e[0]["message"]
            .as_str()
            .unwrap()
            .contains("(line 2, column H (Amount))"),
        "{e:#?}"
    );
    let e = by_doc("INV-2");
    assert_eq!(e.len(), 1, "an error cell is not an empty amount: {e:#?}");
    assert_eq!(e[0]["code"], "type");
    assert_eq!(e[0]["line"], 3);
    assert_eq!(e[0]["column"], "H (Amount)");
    assert_eq!(e[0]["value"], "#N/A");
    assert!(
        e[0]["message"]
            .as_str()
            .unwrap()
            .contains("Cell H3 holds the error #N/A"),
        "{e:#?}"
    );
    let e = by_doc("INV-3");
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0]["column"], "B (Date)");
    assert_eq!(e[0]["line"], 4);
    assert_eq!(e[0]["value"], "2026-13-45");
}

#[test]
fn a_totals_row_under_the_data_is_reported_on_its_row() {
    let t = TestDir::new();
    t.mapping_setup(&mapping("format = \"xlsx\""));
    let file = workbook(&[("Sheet1", &|ws: &mut Worksheet| {
        header(ws, 0);
        for r in 1..3 {
            ws.write_string(r, 0, "INV-1").unwrap();
            ws.write_number(r, 3, 3.0).unwrap();
            ws.write_string(r, 4, "A").unwrap();
            ws.write_number(r, 7, 1.5).unwrap();
        }
        // a blank row, then the totals
        ws.write_string(4, 6, "Total").unwrap();
        ws.write_formula(4, 7, Formula::new("=SUM(H2:H3)").set_result("3"))
            .unwrap();
    })]);
    let c = t.check_file("INV_totals.xlsx", &file);
    assert_eq!(c.out.code, 1);
    assert_eq!(c.report["counts"]["documents"], 2);
    assert!(c.errors.iter().all(|e| e["line"] == 5), "{:#?}", c.errors);
    let e = &c.errors[0];
    assert_eq!(e["code"], "required");
    assert_eq!(e["column"], "A (InvoiceNo)");
    assert_eq!(
        e["message"],
        "The row has no document key: column A (InvoiceNo) is empty (line 5, column A (InvoiceNo))"
    );
}

#[test]
fn rows_of_one_invoice_apart_are_one_document() {
    let t = TestDir::new();
    t.mapping_setup(&mapping("format = \"xlsx\""));
    let file = workbook(&[("Sheet1", &|ws: &mut Worksheet| {
        header(ws, 0);
        for (r, no, item) in [(1, "INV-1", "A"), (2, "INV-2", "B"), (3, "INV-1", "C")] {
            ws.write_string(r, 0, no).unwrap();
            ws.write_string(r, 4, item).unwrap();
            ws.write_number(r, 7, 1.0).unwrap();
        }
        ws.write_number(1, 3, 2.0).unwrap();
        ws.write_number(2, 3, 1.0).unwrap();
    })]);
    let c = t.check_file("INV_apart.xlsx", &file);
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    let one = c.doc("sales_invoice-INV-1.json");
    let items: Vec<&str> = one["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["item"].as_str().unwrap())
        .collect();
    assert_eq!(items, ["A", "C"]);
    assert_eq!(c.report["counts"]["documents"], 2);
}

#[test]
fn a_sheet_without_a_header_row_reads_columns_by_number() {
    let t = TestDir::new();
    t.mapping_setup(
        r#"name = "noheader"
match = ["*.xlsx"]
document_type = "payment"
[source]
format = "xlsx"
header = false
skip_lines = 1
[document]
key = ["1"]
on_invalid = "skip-document"
[header]
number = { from = 1 }
amount = { from = 3, type = "decimal", scale = 2 }
"#,
    );
    let file = workbook(&[("Sheet1", &|ws: &mut Worksheet| {
        ws.write_string(0, 0, "Bank statement").unwrap();
        ws.write_string(1, 0, "P-1").unwrap();
        ws.write_number(1, 2, 99999.99).unwrap();
        ws.write_string(2, 0, "P-2").unwrap();
        ws.write_string(2, 2, "abc").unwrap();
    })]);
    let c = t.check_file("PAY.xlsx", &file);
    assert_eq!(c.out.code, 1);
    assert_eq!(c.doc("payment-P-1.json")["amount"], "99999.99");
    let e = c.only_error();
    assert_eq!(
        (e["line"].as_u64(), e["column"].as_str()),
        (Some(3), Some("C"))
    );
}

#[test]
fn inline_strings_of_a_streamed_writer_are_read() {
    let t = TestDir::new();
    t.mapping_setup(&mapping("format = \"xlsx\""));
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet_with_constant_memory().unwrap();
    header(ws, 0);
    ws.write_string(1, 0, "INV-9").unwrap();
    ws.write_number(1, 3, 5.0).unwrap();
    ws.write_string(1, 4, "Grüße, ООО").unwrap();
    ws.write_number(1, 7, 5.0).unwrap();
    let bytes = wb.save_to_buffer().unwrap();
    let c = t.check_file("INV_inline.xlsx", &bytes);
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    assert_eq!(
        c.doc("sales_invoice-INV-9.json")["lines"][0]["item"],
        "Grüße, ООО"
    );
}

#[test]
fn a_missing_sheet_names_the_sheets_there_are() {
    let t = TestDir::new();
    t.mapping_setup(&mapping("format = \"xlsx\"\nsheet = \"Invoices\""));
    let file = workbook(&[("Summary", &summary), ("Data", &summary)]);
    let c = t.check_file("INV_nosheet.xlsx", &file);
    let e = c.only_error();
    assert_eq!(e["stage"], "read");
    assert_eq!(e["code"], "missing_sheet");
    assert_eq!(
        e["message"],
        "The workbook has no sheet \"Invoices\"; its sheets are \"Summary\", \"Data\""
    );
}

#[test]
fn a_file_that_is_not_a_workbook_is_one_read_error() {
    let t = TestDir::new();
    t.mapping_setup(&mapping("format = \"xlsx\""));
    let good = workbook(&[("Sheet1", &export)]);
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "INV_csv.xlsx",
            b"InvoiceNo;Date\nINV-1;20.11.2026\n".to_vec(),
            "The file is not an xlsx workbook: it does not start as a zip archive does",
        ),
        (
            "INV_cut.xlsx",
            good[..good.len() / 2].to_vec(),
            "The xlsx workbook cannot be read: it is damaged or cut off",
        ),
        (
            "INV_empty.xlsx",
            Vec::new(),
            "The file is not an xlsx workbook: it is empty",
        ),
        (
            "INV_ole.xlsx",
            [
                &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1][..],
                &[0u8; 504],
            ]
            .concat(),
            "The file is not an xlsx workbook: it is an Excel 97-2003 file",
        ),
    ];
    for (name, bytes, start) in cases {
        let c = t.check_file(name, &bytes);
        assert_eq!(c.out.code, 1, "{name}");
        let e = c.only_error();
        assert_eq!(e["stage"], "read", "{name}");
        assert_eq!(e["code"], "malformed", "{name}");
        assert!(e["document"].is_null());
        let msg = e["message"].as_str().unwrap();
        assert!(msg.starts_with(start), "{name}: {msg}");
    }
}

#[test]
fn a_workbook_goes_through_a_run_to_the_outbox_and_done() {
    let t = TestDir::new();
    t.mapping_setup(&mapping(
        "format = \"xlsx\"\nsheet = \"Invoices\"\nskip_lines = 2",
    ));
    let file = workbook(&[("Summary", &summary), ("Invoices", &export)]);
    t.write("drop/inbox/INV_2026-11.xlsx", &file);
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(t.ls("drop/outbox").len(), 2, "{:?}", t.ls("drop/outbox"));
    let done = t.ls("drop/done");
    assert_eq!(done.len(), 1);
    let day = &done[0];
    assert!(t
        .ls(&format!("drop/done/{day}"))
        .contains(&"INV_2026-11.xlsx".to_string()));
    // the same file again: nothing is sent twice
    t.write("drop/inbox/INV_2026-11.xlsx", &file);
    let again = t.run(&["run", "--json"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(t.ls("drop/outbox").len(), 2);
}

#[test]
fn an_ods_spreadsheet_from_calc_validates_and_emits() {
    let t = TestDir::new();
    t.copy_from_repo("fixtures/sheets/ods");
    let out = t.run(&["validate", "--emit", "emit"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("3 rows, 2 documents, 2 valid"),
        "{}",
        out.stdout
    );
    let one = t.read_json("emit/sales_invoice-RE-2026-0815.json");
    assert_eq!(one["date"], "2026-11-20");
    assert_eq!(one["customer"], "Müller GmbH");
    assert_eq!(one["lines"][0]["quantity"], "1.5");
    assert_eq!(one["lines"][0]["amount"], "0.10");
    assert_eq!(one["lines"][1]["amount"], "1234.50");
    let two = t.read_json("emit/sales_invoice-RE-2026-0816.json");
    assert_eq!(two["date"], "2026-11-21", "the day of a date and time cell");
    assert_eq!(two["customer"], "Bäckerei Schmidt & Söhne");
    assert_eq!(
        two["lines"][0]["amount"], "240.00",
        "a formula's cached value"
    );
}

#[test]
fn an_xls_workbook_validates_and_emits() {
    let t = TestDir::new();
    t.copy_from_repo("fixtures/sheets/xls");
    let out = t.run(&["validate", "--emit", "emit"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("3 rows, 2 documents, 2 valid"),
        "{}",
        out.stdout
    );
    let one = t.read_json("emit/sales_invoice-INV-7001.json");
    assert_eq!(one["date"], "2026-11-20");
    assert_eq!(one["lines"][0]["quantity"], 12);
    assert_eq!(one["lines"][0]["amount"], "0.1");
    assert_eq!(one["lines"][1]["amount"], "1234.5");
    let two = t.read_json("emit/sales_invoice-INV-7002.json");
    assert_eq!(two["date"], "2026-11-23");
    assert_eq!(two["lines"][0]["amount"], "99.99");
}

#[test]
fn an_ungrouped_sheet_is_sorted_through_temporary_files_in_a_small_budget() {
    let t = TestDir::new();
    t.mapping_setup(&mapping("format = \"xlsx\""));
    // 300 invoices of 2 lines each, the second lines after all the first ones
    let file = workbook(&[("Sheet1", &|ws: &mut Worksheet| {
        header(ws, 0);
        for i in 0..600u32 {
            let no = format!("INV-{:03}", i % 300);
            ws.write_string(i + 1, 0, &no).unwrap();
            ws.write_number(i + 1, 3, 3.0).unwrap();
            ws.write_string(i + 1, 4, format!("ITEM-{i}")).unwrap();
            ws.write_number(i + 1, 7, if i < 300 { 1.0 } else { 2.0 })
                .unwrap();
        }
    })]);
    t.write("in/INV_apart.xlsx", &file);
    let out = t
        .cmd()
        .env("ERPDROP_SORT_MEMORY", "2048")
        .args(["validate", "in/INV_apart.xlsx", "--emit", "em"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(t.ls("em").len(), 300);
    let doc = t.read_json("em/sales_invoice-INV-007.json");
    let items: Vec<&str> = doc["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["item"].as_str().unwrap())
        .collect();
    assert_eq!(items, ["ITEM-7", "ITEM-307"]);
}

#[test]
fn a_workbook_with_a_password_is_one_read_error() {
    let t = TestDir::new();
    for (format, name) in [
        ("xlsx", "pass_protected.xlsx"),
        ("ods", "pass_protected.ods"),
    ] {
        t.mapping_setup(&mapping(&format!("format = \"{format}\"")));
        let bytes = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/sheets/protected")
                .join(name),
        )
        .unwrap();
        let c = t.check_file(name, &bytes);
        assert_eq!(c.out.code, 1, "{name}");
        let e = c.only_error();
        assert_eq!(e["stage"], "read", "{name}");
        assert_eq!(e["code"], "malformed", "{name}");
        assert_eq!(
            e["message"],
            "The workbook is protected by a password: erpdrop cannot read it; save it without a password",
            "{name}"
        );
    }
}

#[test]
fn a_date_cell_is_a_datetime_and_iso_text_for_other_fields() {
    let t = TestDir::new();
    t.mapping_setup(
        r#"name = "stamps"
match = ["*.xlsx"]
document_type = "event"
[source]
format = "xlsx"
datetime_format = "%d.%m.%Y %H:%M"
[document]
key = ["No"]
[header]
no    = { from = "No" }
at    = { from = "At", type = "datetime" }
text  = { from = "At" }
"#,
    );
    let file = workbook(&[("Sheet1", &|ws: &mut Worksheet| {
        let fmt = Format::new().set_num_format("dd/mm/yyyy hh:mm");
        ws.write_string(0, 0, "No").unwrap();
        ws.write_string(0, 1, "At").unwrap();
        ws.write_string(1, 0, "E-1").unwrap();
        let at = ExcelDateTime::from_ymd(2026, 11, 20)
            .unwrap()
            .and_hms(13, 45, 30)
            .unwrap();
        ws.write_datetime_with_format(1, 1, &at, &fmt).unwrap();
        ws.write_string(2, 0, "E-2").unwrap();
        ws.write_string(2, 1, "21.11.2026 08:05").unwrap();
    })]);
    let c = t.check_file("EV.xlsx", &file);
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    let one = c.doc("event-E-1.json");
    assert_eq!(
        one["at"], "2026-11-20T13:45:30",
        "whatever datetime_format says"
    );
    assert_eq!(one["text"], "2026-11-20T13:45:30");
    assert_eq!(c.doc("event-E-2.json")["at"], "2026-11-21T08:05:00");
}

/// An export with a title row, a VOID invoice and a totals row under the data whose
/// Amount is `total` (the sum of every invoice's amounts, the VOID one's included).
fn with_totals(total: f64) -> Vec<u8> {
    workbook(&[("Invoices", &move |ws: &mut Worksheet| {
        let date = Format::new().set_num_format("dd.mm.yyyy");
        let day = ExcelDateTime::from_ymd(2026, 11, 20).unwrap();
        ws.write_string(0, 0, "Invoices, November 2026").unwrap();
        header(ws, 1);
        ws.write_string(1, 8, "Status").unwrap();
        let rows: [(&str, f64, &str, f64, &str); 4] = [
            ("INV-1", 30.75, "A", 10.5, "OPEN"),
            ("INV-1", 30.75, "B", 20.25, "OPEN"),
            ("INV-2", 5.0, "C", 5.0, "VOID"),
            ("INV-3", 7.1, "D", 7.1, "OPEN"),
        ];
        for (i, (no, tot, item, amount, status)) in rows.into_iter().enumerate() {
            let r = 2 + i as u32;
            ws.write_string(r, 0, no).unwrap();
            ws.write_datetime_with_format(r, 1, &day, &date).unwrap();
            ws.write_number(r, 3, tot).unwrap();
            ws.write_string(r, 4, item).unwrap();
            ws.write_number(r, 7, amount).unwrap();
            ws.write_string(r, 8, status).unwrap();
        }
        ws.write_string(6, 6, "Total").unwrap();
        ws.write_number(6, 7, total).unwrap();
    })])
}

const TOTALS: &str = "format = \"xlsx\"\nskip_lines = 1\n\n[source.trailer]\nsum = { column = \"Amount\", of = \"Amount\" }\n\n[[skip]]\ncolumn = \"Status\"\nequals = [\"VOID\"]";

#[test]
fn a_void_row_is_skipped_and_the_totals_row_is_the_trailer() {
    let t = TestDir::new();
    t.mapping_setup(&mapping(TOTALS));
    let c = t.check_file("INV_totals.xlsx", with_totals(42.85));
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    assert_eq!(c.report["counts"]["documents"], 2, "{}", c.report);
    assert_eq!(c.report["counts"]["skipped"], 1, "{}", c.report);
    assert!(c.out.stdout.contains("1 rows skipped"), "{}", c.out.stdout);
    assert!(
        c.emitted.keys().all(|n| !n.contains("INV-2")),
        "{:?}",
        c.emitted
    );
    // read through the rows layer, a date cell is still a date whatever date_format says
    let one = c.doc("sales_invoice-INV-1.json");
    assert_eq!(one["date"], "2026-11-20");
    assert_eq!(one["lines"].as_array().unwrap().len(), 2);
    assert_eq!(c.doc("sales_invoice-INV-3.json")["total"], "7.10");

    // through a run: done, the two invoices sent
    t.write("drop/inbox/INV_totals.xlsx", with_totals(42.85));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(t.ls("drop/outbox").len(), 2, "{:?}", t.ls("drop/outbox"));
    assert_eq!(t.ls("drop/done").len(), 1);
}

#[test]
fn a_totals_row_one_cent_off_makes_the_workbook_incomplete() {
    let t = TestDir::new();
    t.mapping_setup(&mapping(TOTALS));
    t.write("drop/inbox/INV_cent.xlsx", with_totals(42.84));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        t.ls("drop/failed")
            .iter()
            .filter(|n| *n == "INV_cent.xlsx")
            .count(),
        1,
        "{:?}",
        t.ls("drop/failed")
    );
    assert!(
        t.ls("drop/outbox").is_empty(),
        "nothing submitted: {:?}",
        t.ls("drop/outbox")
    );
    let r = t.read_json("drop/failed/INV_cent.xlsx.errors.json");
    let errors = r["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["stage"], "read");
    assert_eq!(errors[0]["code"], "incomplete");
    let msg = errors[0]["message"].as_str().unwrap();
    assert!(msg.contains("42.84") && msg.contains("42.85"), "{msg}");
    assert_eq!(r["counts"]["accepted"], 0);
}

#[test]
fn a_void_row_is_skipped_in_a_sheet_sorted_by_key() {
    // [[skip]] alone: rows of one invoice apart are still sorted into one document
    let t = TestDir::new();
    t.mapping_setup(&mapping(
        "format = \"xlsx\"\n\n[[skip]]\ncolumn = \"Status\"\nequals = [\"VOID\"]",
    ));
    let file = workbook(&[("Sheet1", &|ws: &mut Worksheet| {
        header(ws, 0);
        ws.write_string(0, 8, "Status").unwrap();
        for (r, no, amount, status) in [
            (1, "INV-1", 1.0, "OPEN"),
            (2, "INV-2", 2.0, "VOID"),
            (3, "INV-1", 2.0, "OPEN"),
        ] {
            ws.write_string(r, 0, no).unwrap();
            ws.write_number(r, 3, 3.0).unwrap();
            ws.write_string(r, 4, "A").unwrap();
            ws.write_number(r, 7, amount).unwrap();
            ws.write_string(r, 8, status).unwrap();
        }
    })]);
    let c = t.check_file("INV_apart.xlsx", &file);
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    assert_eq!(c.report["counts"]["documents"], 1, "{}", c.report);
    assert_eq!(c.report["counts"]["skipped"], 1, "{}", c.report);
    assert_eq!(
        c.doc("sales_invoice-INV-1.json")["lines"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

// ------------------------- number cells whatever the separators of text (German Excel)

/// A mapping for a workbook exported from a German Excel: its text cells write
/// `1.234,50`; with `trailer`, the totals row under the data adds up Amount.
fn german_mapping(format: &str, trailer: bool) -> String {
    let trailer = match trailer {
        true => "\n[source.trailer]\nsum = { column = \"Amount\", of = \"Amount\" }\n",
        false => "",
    };
    format!(
        r#"name = "german-invoices"
match = ["*.xlsx", "*.ods"]
document_type = "sales_invoice"

[source]
format = "{format}"
decimal_separator = ","
thousands_separator = "."
{trailer}
[document]
key = ["InvoiceNo"]

[header]
number = {{ from = "InvoiceNo", required = true }}

[lines]
item     = {{ from = "Item", required = true }}
quantity = {{ from = "Qty", type = "integer" }}
amount   = {{ from = "Amount", type = "decimal" }}
"#
    )
}

/// The cells of the German workbook, from A1 on: the header, INV-1 with the number
/// cells 1234.5 and 0.1 (a quantity 12, a number too), INV-2 with text cells as a
/// German export writes them ("1.234,50"), then, where given, a totals row whose Amount
/// is `total`.
fn german_rows(total: Option<calamine::Data>) -> Vec<Vec<calamine::Data>> {
    use calamine::Data;
    let s = |v: &str| Data::String(v.into());
    let mut rows = vec![
        vec![s("InvoiceNo"), s("Item"), s("Qty"), s("Amount")],
        vec![s("INV-1"), s("A-1"), Data::Float(12.0), Data::Float(1234.5)],
        vec![s("INV-1"), s("B-1"), Data::Float(1.0), Data::Float(0.1)],
        vec![s("INV-2"), s("C-1"), s("1.000"), s("1.234,50")],
    ];
    if let Some(total) = total {
        rows.push(vec![s("TOTAL"), s("all"), Data::Empty, total]);
    }
    rows
}

fn german_book(format: &str, rows: &[Vec<calamine::Data>]) -> Vec<u8> {
    use calamine::Data;
    if format == "ods" {
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|row| row.iter().map(crate::rejected::ods_cell).collect())
            .collect();
        return crate::rejected::ods_book(&[("Rechnungen", cells)]);
    }
    // a number cell shown as a German Excel shows it (the format changes nothing)
    let money = Format::new().set_num_format("#,##0.00");
    workbook(&[("Rechnungen", &|ws: &mut Worksheet| {
        for (r, row) in rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                let (r, c) = (r as u32, c as u16);
                match cell {
                    Data::Empty => {}
                    Data::String(s) => {
                        ws.write_string(r, c, s).unwrap();
                    }
                    Data::Float(f) if c == 3 => {
                        ws.write_number_with_format(r, c, *f, &money).unwrap();
                    }
                    Data::Float(f) => {
                        ws.write_number(r, c, *f).unwrap();
                    }
                    other => panic!("a cell the test does not write: {other:?}"),
                }
            }
        }
    })])
}

/// The documents in the outbox, by invoice number.
fn outbox(t: &TestDir) -> std::collections::BTreeMap<String, Value> {
    t.ls("drop/outbox")
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .map(|n| {
            let doc = t.read_json(&format!("drop/outbox/{n}"));
            (doc["number"].as_str().unwrap_or_default().to_string(), doc)
        })
        .collect()
}

/// Runs the German workbook: INV-1's number cells are their numbers, INV-2's text
/// cells read with the mapping's separators.
/// `apart`: INV-2's row between INV-1's two, so that the sheet is sorted by key
/// (through the temporary files' encoding of its rows).
fn german_run(format: &str, trailer: bool, total: Option<calamine::Data>, apart: bool) {
    let t = TestDir::new();
    t.mapping_setup(&german_mapping(format, trailer));
    let name = format!("RE_2026-11.{format}");
    let mut rows = german_rows(total.clone());
    if apart {
        rows.swap(2, 3);
    }
    t.write(&format!("drop/inbox/{name}"), german_book(format, &rows));
    let out = t.run(&["run"]);
    let failed = t.ls("drop/failed");
    let report = failed
        .iter()
        .find(|n| n.ends_with(".errors.json"))
        .map(|n| t.read_json(&format!("drop/failed/{n}")));
    assert_eq!(out.code, 0, "{format} {total:?}: {out:?} {report:#?}");
    let docs = outbox(&t);
    assert_eq!(docs.len(), 2, "{format}: {:?}", docs.keys());
    let one = &docs["INV-1"]["lines"];
    assert_eq!(one[0]["amount"], "1234.5", "{format}: {one}");
    assert_eq!(one[0]["quantity"], 12, "{format}: {one}");
    assert_eq!(one[1]["amount"], "0.1", "{format}: {one}");
    assert_eq!(one[1]["quantity"], 1, "{format}: {one}");
    let two = &docs["INV-2"]["lines"];
    assert_eq!(two[0]["amount"], "1234.50", "{format}: {two}");
    assert_eq!(two[0]["quantity"], 1000, "{format}: {two}");
}

#[test]
fn number_cells_are_their_numbers_whatever_the_separators_of_text() {
    for format in ["xlsx", "ods"] {
        german_run(format, false, None, false);
        german_run(format, false, None, true);
    }
}

#[test]
fn a_totals_row_adds_up_number_cells_whatever_the_separators_of_text() {
    use calamine::Data;
    // 1234.5 + 0.1 + 1.234,50: a number cell, or text as the export writes it
    for format in ["xlsx", "ods"] {
        german_run(format, true, Some(Data::Float(2469.1)), false);
        german_run(format, true, Some(Data::String("2.469,10".into())), false);
    }
}

#[test]
fn a_totals_row_off_by_a_cent_still_fails_with_number_cells() {
    use calamine::Data;
    for format in ["xlsx", "ods"] {
        let t = TestDir::new();
        t.mapping_setup(&german_mapping(format, true));
        let name = format!("RE_2026-11.{format}");
        let rows = german_rows(Some(Data::Float(2469.11)));
        t.write(&format!("drop/inbox/{name}"), german_book(format, &rows));
        let out = t.run(&["run"]);
        assert_eq!(out.code, 1, "{format}: {out:?}");
        assert!(outbox(&t).is_empty(), "{format}: nothing submitted");
        let r = t.read_json(&format!("drop/failed/{name}.errors.json"));
        let errors = r["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{format}: {errors:#?}");
        assert_eq!(errors[0]["code"], "incomplete");
        let msg = errors[0]["message"].as_str().unwrap();
        assert!(msg.contains("2469.11") && msg.contains("2469.10"), "{msg}");
    }
}
