//! Record types (`record_type`: header, line and trailer rows, CSV and fixed width),
//! skipped rows (`[[skip]]`) and control totals (`[source.trailer]`): a billing export
//! of H/L/T records, VOID invoices, a file cut off before its trailer, a trailer that
//! disagrees by one cent.
use crate::util::TestDir;

/// An H/L/T billing export in fixed width: H = invoice, L = its lines, T = trailer.
const FIXED: &str = r#"name = "billing"
match = ["BILL_*"]
document_type = "sales_invoice"

[source]
format = "fixed"
record_type = { column = "RecType", header = "H", line = "L", trailer = "T" }

[source.columns]
RecType = { start = 1, width = 1 }

[source.columns.H]
InvoiceNo = { start = 2, width = 10 }
Customer  = { start = 12, width = 8 }
Status    = { start = 20, width = 9 }

[source.columns.L]
Item      = { start = 2, width = 10 }
LineTotal = { start = 12, width = 10 }

[source.columns.T]
RecordCount = { start = 2, width = 6 }
TotalAmount = { start = 8, width = 14 }

[document]
key = ["InvoiceNo"]

[header]
number   = { from = "InvoiceNo", required = true }
customer = { from = "Customer", required = true }

[lines]
item   = { from = "Item", required = true }
amount = { from = "LineTotal", type = "decimal", scale = 2 }
"#;

fn h(no: &str, cust: &str, status: &str) -> String {
    format!("H{no:<10}{cust:<8}{status:<9}")
}

fn l(item: &str, amount: &str) -> String {
    format!("L{item:<10}{amount:>10}")
}

fn t(count: u64, total: &str) -> String {
    format!("T{count:06}{total:>14}")
}

fn fixed(extra: &str) -> TestDir {
    let d = TestDir::new();
    d.mapping_setup(&format!("{FIXED}{extra}"));
    d
}

fn file(rows: &[String]) -> String {
    rows.join("\n") + "\n"
}

#[test]
fn fixed_width_header_rows_start_documents_and_line_rows_belong_to_them() {
    let d = fixed("");
    let text = file(&[
        h("INV-1", "C1", "OPEN"),
        l("WIDGET", "10.00"),
        l("GADGET", "2.50"),
        h("INV-2", "C2", "OPEN"),
        l("BOLT", "0.99"),
        t(5, "13.49"),
    ]);
    let c = d.check_file("BILL_1.txt", text);
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    let a = c.doc("sales_invoice-INV-1.json");
    assert_eq!(a["customer"], "C1");
    assert_eq!(a["lines"][0]["item"], "WIDGET");
    assert_eq!(a["lines"][0]["amount"], "10.00");
    assert_eq!(a["lines"][1]["amount"], "2.50");
    assert_eq!(a["lines"].as_array().unwrap().len(), 2);
    let b = c.doc("sales_invoice-INV-2.json");
    assert_eq!(b["lines"][0]["item"], "BOLT");
    assert_eq!(c.report["counts"]["documents"], 2);
    assert_eq!(c.report["counts"]["rows"], 5);
}

#[test]
fn an_unknown_record_type_is_malformed_with_line_column_and_value() {
    let d = fixed("");
    let text = file(&[
        h("INV-1", "C1", "OPEN"),
        l("WIDGET", "10.00"),
        "X junk".into(),
    ]);
    let c = d.check_file("BILL_2.txt", text);
    assert_eq!(c.out.code, 1);
    let e = c.only_error();
    assert_eq!(e["code"], "malformed");
    assert_eq!(e["line"], 3);
    assert_eq!(e["column"], "RecType");
    assert_eq!(e["value"], "X");
    assert!(c.emitted.is_empty());
}

#[test]
fn a_line_row_before_any_header_row_is_malformed() {
    let d = fixed("");
    let text = file(&[l("WIDGET", "10.00"), h("INV-1", "C1", "OPEN")]);
    let c = d.check_file("BILL_3.txt", text);
    assert_eq!(c.out.code, 1);
    let e = c.only_error();
    assert_eq!(e["code"], "malformed");
    assert_eq!(e["line"], 1);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("before any header row"),
        "{e}"
    );
}

#[test]
fn a_row_after_the_trailer_is_malformed() {
    let d = fixed("");
    let text = file(&[
        h("INV-1", "C1", "OPEN"),
        l("W", "1.00"),
        t(2, "1.00"),
        h("INV-2", "C1", "OPEN"),
    ]);
    let c = d.check_file("BILL_4.txt", text);
    assert_eq!(c.out.code, 1);
    let e = c.only_error();
    assert_eq!(e["code"], "malformed");
    assert_eq!(e["line"], 4);
    assert!(
        e["message"].as_str().unwrap().contains("after the trailer"),
        "{e}"
    );
    assert!(c.emitted.is_empty());
}

#[test]
fn record_types_may_reuse_positions_but_one_type_may_not_overlap() {
    // H and L both use characters 2 to 11: fine (FIXED itself). Within L: an error.
    let d = TestDir::new();
    d.mapping_setup(&FIXED.replace("LineTotal = { start = 12", "LineTotal = { start = 9"));
    let out = d.run(&["check"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("columns \"Item\" (characters 2 to 11) and \"LineTotal\" (characters 9 to 18) overlap in rows of record type \"L\""),
        "{}",
        out.stderr
    );
    let ok = TestDir::new();
    ok.mapping_setup(FIXED);
    assert_eq!(ok.run(&["check"]).code, 0);
}

/// The same export as CSV, with a column-name row for every type.
const CSV: &str = r#"name = "billing"
match = ["BILL_*"]
document_type = "sales_invoice"

[source]
delimiter = ";"
record_type = { column = "RecType", header = "H", line = "L", trailer = "T" }

[document]
key = ["InvoiceNo"]

[header]
number   = { from = "InvoiceNo", required = true }
customer = { from = "Customer", required = true }

[lines]
item   = { from = "Item", required = true }
amount = { from = "LineTotal", type = "decimal", scale = 2 }
"#;

#[test]
fn csv_with_a_column_name_row_for_every_record_type() {
    let d = TestDir::new();
    d.mapping_setup(CSV);
    let text = "RecType;InvoiceNo;Customer;Status;Item;LineTotal;RecordCount;TotalAmount\n\
                H;INV-1;C1;OPEN;;;;\n\
                L;;;;WIDGET;10.00;;\n\
                L;;;;GADGET;2.50;;\n\
                H;INV-2;C2;OPEN;;;;\n\
                L;;;;BOLT;0.99;;\n\
                T;;;;;;5;13.49\n";
    let c = d.check_file("BILL_5.csv", text);
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    let a = c.doc("sales_invoice-INV-1.json");
    assert_eq!(a["customer"], "C1");
    assert_eq!(a["lines"].as_array().unwrap().len(), 2);
    assert_eq!(a["lines"][1]["amount"], "2.50");
    assert_eq!(
        c.doc("sales_invoice-INV-2.json")["lines"][0]["item"],
        "BOLT"
    );
}

#[test]
fn csv_without_a_column_name_row_reads_positions_per_type() {
    let d = TestDir::new();
    let mapping = CSV
        .replace("delimiter = \";\"", "delimiter = \";\"\nheader = false")
        .replace("column = \"RecType\"", "column = 1")
        .replace("[\"InvoiceNo\"]", "[\"2\"]")
        .replace("from = \"InvoiceNo\"", "from = 2")
        .replace("from = \"Customer\"", "from = 3")
        .replace("from = \"Item\"", "from = 2")
        .replace("from = \"LineTotal\"", "from = 3");
    d.mapping_setup(&mapping);
    let text = "H;INV-1;C1\nL;WIDGET;10.00\nL;GADGET;2.50\nH;INV-2;C2\nL;BOLT;0.99\nT;5;13.49\n";
    let c = d.check_file("BILL_6.csv", text);
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    let a = c.doc("sales_invoice-INV-1.json");
    assert_eq!(a["customer"], "C1");
    assert_eq!(a["lines"][0]["item"], "WIDGET");
    assert_eq!(a["lines"][1]["amount"], "2.50");
    assert_eq!(
        c.doc("sales_invoice-INV-2.json")["lines"][0]["amount"],
        "0.99"
    );
}

#[test]
fn an_unknown_record_type_in_csv_names_its_column() {
    let d = TestDir::new();
    d.mapping_setup(CSV);
    let text = "RecType;InvoiceNo;Customer;Item;LineTotal\nH;INV-1;C1;;\nD;;;W;1.00\n";
    let c = d.check_file("BILL_7.csv", text);
    assert_eq!(c.out.code, 1);
    let e = c.only_error();
    assert_eq!(e["code"], "malformed");
    assert_eq!(e["line"], 3);
    assert_eq!(e["column"], "RecType");
    assert_eq!(e["value"], "D");
}

#[test]
fn check_refuses_a_type_table_no_record_type_has_and_a_line_type_without_fields() {
    let d = TestDir::new();
    d.mapping_setup(&FIXED.replace("[source.columns.T]", "[source.columns.X]"));
    let out = d.run(&["check"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("\"X\" is not one of the record types in source.record_type"),
        "{}",
        out.stderr
    );
    let d = TestDir::new();
    let no_lines = &FIXED[..FIXED.find("[lines]").unwrap()];
    d.mapping_setup(no_lines);
    let out = d.run(&["check"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("no field reads the line rows (record type \"L\")"),
        "{}",
        out.stderr
    );
    let d = TestDir::new();
    d.mapping_setup(&FIXED.replace("[source.columns.L]\nItem", "[source.columns.L]\nArticle"));
    let out = d.run(&["check"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("a [lines] field reads column \"Item\", which is not in [source.columns] or [source.columns.L]"),
        "{}",
        out.stderr
    );
}

// ---------------------------------------------------------------- [[skip]]

const SKIP_VOID: &str = r#"
[[skip]]
column = "Status"
equals = ["VOID", "CANCELLED"]
"#;

#[test]
fn a_void_header_row_skips_its_invoice_with_its_lines() {
    let d = fixed(SKIP_VOID);
    let text = file(&[
        h("INV-1", "C1", "OPEN"),
        l("WIDGET", "10.00"),
        h("INV-2", "C2", "VOID"),
        l("BOLT", "0.99"),
        l("NUT", "0.10"),
        h("INV-3", "C3", "CANCELLED"),
        h("INV-4", "C4", "OPEN"),
        l("GADGET", "2.50"),
    ]);
    let c = d.check_file("BILL_v.txt", text);
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    let names: Vec<&String> = c.emitted.keys().collect();
    assert_eq!(
        names,
        ["sales_invoice-INV-1.json", "sales_invoice-INV-4.json"]
    );
    assert_eq!(
        c.doc("sales_invoice-INV-4.json")["lines"][0]["item"],
        "GADGET"
    );
    assert_eq!(c.report["counts"]["documents"], 2);
    assert_eq!(c.report["counts"]["rows"], 4);
    // INV-2 with its two lines, INV-3
    assert_eq!(c.report["counts"]["skipped"], 4);
    assert!(c.out.stdout.contains("4 rows skipped"), "{}", c.out.stdout);
}

#[test]
fn csv_rows_matching_a_pattern_are_skipped_even_when_not_grouped() {
    let d = TestDir::new();
    d.mapping_setup(
        r#"name = "lines"
match = ["INV_*"]
document_type = "sales_invoice"

[document]
key = ["No"]

[header]
number = { from = "No" }

[lines]
item   = { from = "Item" }
amount = { from = "Amount", type = "decimal" }

[[skip]]
column = "Item"
matches = "TEST-[0-9]+"
"#,
    );
    // INV-1's rows are not together; TEST-1 is a test line, TEST-1X is not a match
    let text = "No,Item,Amount\nINV-1,A,1.00\nINV-2,TEST-7,5.00\nINV-2,B,2.00\nINV-1,TEST-1,9.00\nINV-1,TEST-1X,3.00\n";
    let c = d.check_file("INV_1.csv", text);
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    let a = c.doc("sales_invoice-INV-1.json");
    let items: Vec<&str> = a["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["item"].as_str().unwrap())
        .collect();
    assert_eq!(items, ["A", "TEST-1X"]);
    assert_eq!(
        c.doc("sales_invoice-INV-2.json")["lines"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(c.report["counts"]["skipped"], 2);
    assert_eq!(c.report["counts"]["rows"], 3);
}

#[test]
fn skipped_rows_are_counted_in_the_ledger_status_and_json_summaries() {
    let d = fixed(SKIP_VOID);
    let text = file(&[
        h("INV-1", "C1", "OPEN"),
        l("WIDGET", "10.00"),
        h("INV-2", "C2", "VOID"),
        l("BOLT", "0.99"),
    ]);
    d.write("drop/inbox/BILL_r.txt", text);
    let out = d.run(&["--json", "run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let j = out.json();
    assert_eq!(j["totals"]["skipped"], 2, "{j:#}");
    assert_eq!(j["files"][0]["counts"]["skipped"], 2, "{j:#}");
    let done = d.ls("drop/done");
    let report = d.read_json(&format!("drop/done/{}/BILL_r.txt.report.json", done[0]));
    assert_eq!(report["counts"]["skipped"], 2);
    let db = rusqlite::Connection::open(d.join("drop/.erpdrop/ledger.sqlite")).unwrap();
    let (f, r): (i64, i64) = db
        .query_row(
            "SELECT (SELECT skipped FROM files), (SELECT skipped FROM runs)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((f, r), (2, 2));
    let st = d.run(&["status"]);
    assert!(st.stdout.contains("2 rows skipped"), "{}", st.stdout);
    let st = d.run(&["status", "--json"]).json();
    assert_eq!(st["runs"][0]["skipped"], 2, "{st:#}");
}

#[test]
fn check_refuses_a_skip_with_both_or_neither_test_and_a_bad_pattern() {
    for (skip, expected) in [
        (
            "column = \"Status\"\nequals = [\"VOID\"]\nmatches = \"V.*\"",
            "either `equals`",
        ),
        ("column = \"Status\"", "either `equals`"),
        (
            "column = \"Status\"\nmatches = \"(VOID\"",
            "is not a valid regular expression",
        ),
        (
            "column = \"Colour\"\nequals = [\"RED\"]",
            "[[skip]] reads column \"Colour\", which no record type has",
        ),
    ] {
        let d = fixed(&format!("\n[[skip]]\n{skip}\n"));
        let out = d.run(&["check"]);
        assert_eq!(out.code, 2, "{skip}: {out:?}");
        assert!(
            out.stderr.contains("mappings/m.toml, line"),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains(expected), "{skip}: {}", out.stderr);
    }
}

// ---------------------------------------------------------------- [source.trailer]

const TRAILER: &str = r#"
[source.trailer]
count = "RecordCount"
sum = { column = "TotalAmount", of = "LineTotal" }
"#;

/// The fixed mapping with a trailer check (its tables come after `[source]`'s keys).
fn with_trailer(extra: &str) -> TestDir {
    let d = TestDir::new();
    let at = FIXED.find("[source.columns]").unwrap();
    d.mapping_setup(&format!(
        "{}{TRAILER}\n{}{extra}",
        &FIXED[..at],
        &FIXED[at..]
    ));
    d
}

fn billing() -> Vec<String> {
    vec![
        h("INV-1", "C1", "OPEN"),
        l("WIDGET", "10.00"),
        l("GADGET", "2.50"),
        h("INV-2", "C2", "OPEN"),
        l("BOLT", "0.99"),
    ]
}

#[test]
fn a_trailer_that_agrees_lets_the_file_through() {
    let d = with_trailer("");
    let mut rows = billing();
    rows.push(t(5, "13.49"));
    let c = d.check_file("BILL_t.txt", file(&rows));
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    assert_eq!(c.emitted.len(), 2);
}

/// `run` on one file: it must fail whole, with one `incomplete` row and nothing sent.
fn run_incomplete(d: &TestDir, name: &str, text: String) -> serde_json::Value {
    d.write(&format!("drop/inbox/{name}"), text);
    let out = d.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        d.ls("drop/failed").iter().filter(|n| *n == name).count(),
        1,
        "{:?}",
        d.ls("drop/failed")
    );
    assert!(
        d.ls("drop/outbox").is_empty(),
        "nothing submitted: {:?}",
        d.ls("drop/outbox")
    );
    let r = d.read_json(&format!("drop/failed/{name}.errors.json"));
    let errors = r["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let e = errors[0].clone();
    assert_eq!(e["stage"], "read");
    assert_eq!(e["code"], "incomplete");
    assert!(e.get("document").is_none(), "{e}");
    assert_eq!(r["counts"]["accepted"], 0);
    e
}

#[test]
fn a_trailer_sum_one_cent_off_fails_the_whole_file() {
    let d = with_trailer("");
    let mut rows = billing();
    rows.push(t(5, "13.48"));
    let e = run_incomplete(&d, "BILL_cent.txt", file(&rows));
    assert_eq!(e["line"], 6);
    assert_eq!(e["column"], "TotalAmount");
    assert_eq!(e["value"], "13.48");
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("LineTotal adds up to 13.48"), "{msg}");
    assert!(msg.contains("add up to 13.49"), "{msg}");
}

#[test]
fn a_trailer_count_that_disagrees_fails_the_whole_file() {
    let d = with_trailer("");
    let mut rows = billing();
    rows.remove(2); // a line lost on the way; the sum is checked too
    rows.push(t(5, "13.49"));
    let e = run_incomplete(&d, "BILL_count.txt", file(&rows));
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("The trailer says 5 rows (RecordCount) but the file holds 4"),
        "{msg}"
    );
    assert!(msg.contains("add up to 10.99"), "{msg}");
    assert_eq!(e["column"], "RecordCount");
}

#[test]
fn a_file_cut_off_before_its_trailer_is_incomplete() {
    let d = with_trailer("");
    let text = file(&billing());
    let e = run_incomplete(&d, "BILL_cut.txt", text);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("no trailer row (record type \"T\")"),
        "{e}"
    );
    // cut off in the middle of a line: its short line is the first thing wrong, but
    // nothing is submitted either way
    let d = with_trailer("");
    let mut text = file(&billing());
    text.truncate(text.len() - 6);
    d.write("drop/inbox/BILL_half.txt", text);
    assert_eq!(d.run(&["run"]).code, 1);
    assert!(d.ls("drop/outbox").is_empty());
    let codes = d.read("drop/failed/BILL_half.txt.errors.json");
    assert!(codes.contains("\"incomplete\""), "{codes}");
}

#[test]
fn skipped_rows_count_for_the_trailer() {
    let d = with_trailer(SKIP_VOID);
    let mut rows = billing();
    rows.push(h("INV-3", "C3", "VOID"));
    rows.push(l("NUT", "1.00"));
    rows.push(t(7, "14.49"));
    let c = d.check_file("BILL_sk.txt", file(&rows));
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    assert_eq!(c.emitted.len(), 2);
    assert_eq!(c.report["counts"]["skipped"], 2);
}

#[test]
fn without_record_types_the_last_row_is_the_trailer() {
    let d = TestDir::new();
    d.mapping_setup(
        r#"name = "lines"
match = ["INV_*"]
document_type = "sales_invoice"

[source]
delimiter = ";"
decimal_separator = ","

[source.trailer]
count = "No"
sum = { column = "Amount", of = "Amount" }

[document]
key = ["No"]

[header]
number = { from = "No" }

[lines]
item   = { from = "Item" }
amount = { from = "Amount", type = "decimal" }
"#,
    );
    let good = "No;Item;Amount\nINV-1;A;1,10\nINV-1;B;2,20\nINV-2;C;0,05\n3;;3,35\n";
    let c = d.check_file("INV_ok.csv", good);
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    assert_eq!(c.emitted.len(), 2);
    assert_eq!(c.report["counts"]["rows"], 3);
    // the totals row lost: the last invoice line is no trailer
    let cut = "No;Item;Amount\nINV-1;A;1,10\nINV-1;B;2,20\nINV-2;C;0,05\n";
    let c = d.check_file("INV_cut.csv", cut);
    assert_eq!(c.out.code, 1);
    let e = c.only_error();
    assert_eq!(e["code"], "incomplete");
    assert_eq!(e["line"], 4);
    assert!(
        e["message"].as_str().unwrap().contains("is not a trailer"),
        "{e}"
    );
    assert!(c.emitted.is_empty());
}

#[test]
fn check_refuses_a_trailer_with_record_types_but_no_trailer_type() {
    let d = TestDir::new();
    let at = FIXED.find("[source.columns]").unwrap();
    let m = format!("{}{TRAILER}\n{}", &FIXED[..at], &FIXED[at..])
        .replace(", trailer = \"T\"", "")
        .replace("[source.columns.T]", "[source.columns.H2]");
    d.mapping_setup(&m);
    let out = d.run(&["check"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("needs record_type.trailer"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_utility_billing_fixture_imports_and_one_cent_off_fails_it() {
    let d = TestDir::new();
    d.copy_from_repo("fixtures/hlt");
    let out = d.run(&["--json", "validate", "--emit", "em"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["totals"]["skipped"], 2);
    assert_eq!(
        d.ls("em"),
        [
            "sales_invoice-U-2026-10001.json",
            "sales_invoice-U-2026-10003.json"
        ]
    );
    let c = d.read_json("em/sales_invoice-U-2026-10003.json");
    assert_eq!(c["total"], "79.44");
    assert_eq!(c["lines"][2]["amount"], "-15.00");
    assert_eq!(c["lines"][0]["quantity"], "1204.250");
    // the same export with its trailer's total one cent off
    let name = "drop/inbox/BILLING_20261130.dat";
    let text = d.read(name).replace("205.15", "205.14");
    d.write(name, text);
    let out = d.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(d.ls("drop/outbox").is_empty());
    let r = d.read_json("drop/failed/BILLING_20261130.dat.errors.json");
    assert_eq!(r["errors"].as_array().unwrap().len(), 1);
    assert_eq!(r["errors"][0]["code"], "incomplete");
    assert_eq!(r["errors"][0]["line"], 11);
}

#[test]
fn a_large_file_with_a_wrong_trailer_submits_nothing() {
    // more documents than any batch or read-ahead holds: the verdict waits for the end
    let d = with_trailer("");
    let mut rows = Vec::new();
    for i in 0..3000 {
        rows.push(h(&format!("INV-{i}"), "C1", "OPEN"));
        rows.push(l("W", "1.00"));
    }
    rows.push(t(6000, "2999.99"));
    run_incomplete(&d, "BILL_big.txt", file(&rows));
}

#[test]
fn check_says_when_a_field_reads_another_record_types_column() {
    let d = TestDir::new();
    // a header field reading the line rows' LineTotal
    d.mapping_setup(&FIXED.replace(
        "customer = { from = \"Customer\", required = true }",
        "customer = { from = \"Customer\", required = true }\ntotal = { from = \"LineTotal\" }",
    ));
    let out = d.run(&["check"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("a [header] field reads column \"LineTotal\", which is not in [source.columns] or [source.columns.H] (it is in [source.columns.L], but header fields read the rows of their own record type)"),
        "{}",
        out.stderr
    );
}

#[test]
fn check_passes_the_fixtures_layouts() {
    for fixture in ["fixtures/hlt", "fixtures/bank"] {
        let d = TestDir::new();
        d.copy_from_repo(fixture);
        let out = d.run(&["check"]);
        assert_eq!(out.code, 0, "{fixture}: {out:?}");
    }
}

#[test]
fn a_skip_column_the_csv_header_lacks_is_a_missing_column() {
    let d = TestDir::new();
    d.mapping_setup(
        r#"name = "lines"
match = ["INV_*"]
document_type = "sales_invoice"

[document]
key = ["No"]

[header]
number = { from = "No" }

[[skip]]
column = "Status"
equals = ["VOID"]
"#,
    );
    let c = d.check_file("INV_s.csv", "No,State\nA,VOID\n");
    assert_eq!(c.out.code, 1);
    let e = c.only_error();
    assert_eq!(e["code"], "missing_column");
    assert_eq!(e["value"], "Status");
    assert!(e["message"].as_str().unwrap().contains("[[skip]]"), "{e}");
}

// ------------------------------------------------- skip_lines above typed records

/// A report's title lines: no record type of the mapping, so read as rows they fail.
fn titles() -> Vec<String> {
    vec![
        "BILLING EXPORT 2026-11-30".into(),
        "----+----1----+----2".into(),
    ]
}

#[test]
fn title_lines_above_typed_records_and_their_trailer_are_no_rows() {
    let d = with_trailer("");
    let at = "format = \"fixed\"\n";
    let mapping = d.read("mappings/m.toml");
    d.write(
        "mappings/m.toml",
        mapping.replace(at, &format!("{at}skip_lines = 2\n")),
    );
    // the trailer counts the 5 record rows, not the titles
    let mut rows = titles();
    rows.extend(billing());
    rows.push(t(5, "13.49"));
    let c = d.check_file("BILL_s.txt", file(&rows));
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    assert_eq!(c.emitted.len(), 2);
    assert_eq!(c.report["counts"]["rows"], 5);
    assert_eq!(
        c.doc("sales_invoice-INV-1.json")["lines"][1]["item"],
        "GADGET"
    );
    // a trailer one cent off is named at its own line, the file's 8th
    let last = rows.len() - 1;
    rows[last] = t(5, "13.48");
    let e = run_incomplete(&d, "BILL_s.txt", file(&rows));
    assert_eq!(e["line"], 8);
    assert_eq!(e["column"], "TotalAmount");
    // the titles alone: a title is never the trailer, so the file lacks its trailer
    let e = run_incomplete(&d, "BILL_t.txt", file(&titles()));
    assert!(e["message"].as_str().unwrap().contains("trailer"), "{e}");
}

#[test]
fn a_typed_record_under_title_lines_is_named_at_its_own_line() {
    let d = fixed("");
    let mapping = d.read("mappings/m.toml");
    d.write(
        "mappings/m.toml",
        mapping.replace(
            "format = \"fixed\"\n",
            "format = \"fixed\"\nskip_lines = 2\n",
        ),
    );
    let mut rows = titles();
    rows.extend([
        h("INV-1", "C1", "OPEN"),
        l("WIDGET", "10.00"),
        "X junk".into(),
    ]);
    let c = d.check_file("BILL_x.txt", file(&rows));
    let e = c.only_error();
    assert_eq!(e["code"], "malformed");
    assert_eq!(e["line"], 5);
    assert_eq!(e["value"], "X");
}

/// A CSV file without a column-name row, record types by position: the header row's
/// field 4 is the invoice's total, the line row's the line's amount; the trailer sums
/// the lines.
const POSITIONAL_HLT: &str = r#"name = "hlt"
match = ["HLT_*.csv"]
document_type = "sales_invoice"

[source]
delimiter = ";"
header = false
decimal_separator = ","
record_type = { column = 1, header = "H", line = "L", trailer = "T" }

[source.trailer]
count = 2
sum = { column = 3, of = 4 }

[document]
key = ["2"]
on_invalid = "skip-document"

[header]
number = { from = 2, required = true }
total  = { from = 4, type = "decimal" }

[lines]
item   = { from = 2, required = true }
amount = { from = 4, type = "decimal" }
"#;

#[test]
fn a_positional_trailer_sum_adds_the_line_rows_not_the_header_rows_at_that_position() {
    let t = TestDir::new();
    t.mapping_setup(POSITIONAL_HLT);
    // header totals 11,75 and 7,00 stand where the lines' amounts do: the trailer's
    // 18,75 is the lines' sum (with the headers, 37,50)
    t.write(
        "drop/inbox/HLT_1.csv",
        "H;I-1;C1;11,75\nL;A;x;10,50\nL;B;x;1,25\nH;I-2;C2;7,00\nL;C;x;7,00\nT;5;18,75\n",
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(t.ls("drop/outbox").len(), 2, "{out:?}");

    // a failed document's rejected rows restate the lines' sum: 7,00, not 14,00
    t.write(
        "drop/inbox/HLT_2.csv",
        "H;I-3;C1;1,00\nL;A;x;1,00\nH;I-4;C2;7,00\nL;;x;7,00\nT;4;8,00\n",
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    let rejected = t.read("drop/failed/HLT_2.rejected.csv");
    assert_eq!(rejected.lines().last(), Some("T;2;7,00"), "{rejected}");
}

#[test]
fn a_key_of_a_file_without_a_header_row_is_a_column_number_as_from_is() {
    let t = TestDir::new();
    t.mapping_setup(
        r#"name = "nh"
match = ["NH_*.csv"]
document_type = "sales_invoice"

[source]
header = false

[document]
key = [1]

[header]
number = { from = 1, required = true }

[lines]
amount = { from = 2, type = "decimal" }
"#,
    );
    t.write("drop/inbox/NH_1.csv", "A,1.5\nA,2\nB,3\n");
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let doc: serde_json::Value =
        serde_json::from_str(&t.read("drop/outbox/sales_invoice-A.json")).unwrap();
    assert_eq!(doc["lines"].as_array().map(Vec::len), Some(2), "{doc}");
}

#[test]
fn a_positional_trailer_that_disagrees_names_its_columns_by_number() {
    let t = TestDir::new();
    t.mapping_setup(POSITIONAL_HLT);
    t.write(
        "drop/inbox/HLT_1.csv",
        "H;I-1;C1;11,75\nL;A;x;10,50\nL;B;x;1,25\nT;4;11,00\n",
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    let report = t.read("drop/failed/HLT_1.csv.errors.csv");
    assert!(
        report.contains("The trailer says 4 rows (column 2) but the file holds 3; the trailer says column 4 adds up to 11.00 (column 3) but the file's rows add up to 11.75"),
        "{report}"
    );
}
