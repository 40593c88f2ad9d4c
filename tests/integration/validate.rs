//! `erpdrop validate [PATH...]` and `erpdrop run --dry-run`: what they check, what they
//! print and write (`--report`, `--emit`, `--json`), exit codes 0/1/2, that they touch
//! nothing, how rows become documents, both `on_invalid` modes, XML payloads, the
//! billing fixture and the Dynamics GP eConnect example.
use crate::util::{TestDir, INVOICE_HEADER, INVOICE_MAPPING};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const GOOD: &str = "A1;20.11.2026;C1;N30;10,00;ITEM-1;4,00\nA1;20.11.2026;C1;N30;10,00;ITEM-2;6,00\nA2;21.11.2026;C2;F48;1,50;ITEM-3;1,50\n";
/// A2 has no item: one invalid document of two.
const HALF_BAD: &str = "A1;20.11.2026;C1;N30;10,00;ITEM-1;10,00\nA2;21.11.2026;C2;F48;1,50;;1,50\n";

fn setup(mapping: &str) -> TestDir {
    let t = TestDir::new();
    t.invoice_setup(mapping);
    t
}

fn inbox(t: &TestDir, name: &str, rows: &str) {
    t.write(
        &format!("drop/inbox/{name}"),
        format!("{INVOICE_HEADER}{rows}"),
    );
}

/// Everything under the drop root: (path, bytes), sorted.
fn snapshot(t: &TestDir) -> Vec<(String, Vec<u8>, std::time::SystemTime)> {
    let mut v: Vec<_> = walkdir::WalkDir::new(t.join("drop"))
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| {
            let md = e.metadata().unwrap();
            let bytes = if md.is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            (
                e.path().display().to_string(),
                bytes,
                md.modified().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------- exit codes, output

#[test]
fn all_valid_is_exit_0_with_a_summary_per_file() {
    let t = setup(INVOICE_MAPPING);
    inbox(&t, "INV_1.csv", GOOD);
    inbox(&t, "INV_2.csv", "B1;20.11.2026;C1;N30;1,00;X;1,00\n");
    let out = t.run(&["validate"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout,
        "valid: INV_1.csv (inv): 3 rows, 2 documents, 2 valid, 0 invalid\n\
         valid: INV_2.csv (inv): 1 rows, 1 documents, 1 valid, 0 invalid\n\
         2 files: 2 valid, 0 invalid; 3 documents, 0 invalid\n"
    );
}

#[test]
fn invalid_data_is_exit_1_and_the_summary_shows_the_first_problems() {
    let t = setup(INVOICE_MAPPING);
    let mut rows = String::new();
    for n in 0..8 {
        rows.push_str(&format!("B{n};20.11.2026;C9;N30;1,00;X;1,00\n"));
    }
    inbox(&t, "INV_1.csv", &rows);
    inbox(&t, "INV_2.csv", GOOD);
    let out = t.run(&["validate"]);
    assert_eq!(out.code, 1, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "invalid: INV_1.csv (inv): 8 rows, 8 documents, 0 valid, 8 invalid"
    );
    assert_eq!(
        lines[1],
        "  B0: Customer code \"C9\" has no entry in xref/customers.csv (line 2, column Cust) [lookup]"
    );
    assert_eq!(
        lines[6],
        "  ... and 3 more problems (no report was written: `--report DIR` writes them all)"
    );
    assert_eq!(
        lines[7],
        "valid: INV_2.csv (inv): 3 rows, 2 documents, 2 valid, 0 invalid"
    );
    assert_eq!(
        lines[8],
        "2 files: 1 valid, 1 invalid; 10 documents, 8 invalid"
    );
}

#[test]
fn the_summary_names_the_report_where_one_was_written() {
    let t = setup(INVOICE_MAPPING);
    let mut rows = String::new();
    for n in 0..8 {
        rows.push_str(&format!("B{n};20.11.2026;C9;N30;1,00;X;1,00\n"));
    }
    inbox(&t, "INV_1.csv", &rows);
    inbox(&t, "INV_2.csv", "B9;20.11.2026;C9;N30;1,00;X;1,00\n");
    let out = t.run(&["validate", "--report", "rep"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(t.exists("rep/INV_1.csv.errors.csv"));
    let said = |line: &str| out.stdout.lines().any(|l| l == line);
    assert!(
        said("  ... and 3 more problems, all in rep/INV_1.csv.errors.csv"),
        "{}",
        out.stdout
    );
    // a file whose few problems are all shown still says where its report is
    assert!(said("  report: rep/INV_2.csv.errors.csv"), "{}", out.stdout);
    // a real run: the failed file's report in failed/
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout
            .contains("  ... and 3 more problems, all in ./drop/failed/INV_1.csv.errors.csv\n"),
        "{}",
        out.stdout
    );
    assert!(t.exists("drop/failed/INV_1.csv.errors.csv"));
}

#[test]
fn nothing_to_check_is_exit_0() {
    let t = setup(INVOICE_MAPPING);
    let out = t.run(&["validate"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "nothing to check\n"));
    // files no mapping takes are left alone
    t.write("drop/inbox/readme.txt", "not an export");
    let out = t.run(&["validate"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "nothing to check\n"));
}

#[test]
fn usage_errors_are_exit_2() {
    let t = setup(INVOICE_MAPPING);
    inbox(&t, "INV_1.csv", GOOD);
    for (args, msg) in [
        (vec!["validate", "nowhere/INV_1.csv"], "nowhere/INV_1.csv: "),
        (
            vec!["validate", "erpdrop.toml"],
            "erpdrop.toml: no mapping matches this file name (patterns: INV_*.csv); name one with --mapping",
        ),
        (
            vec!["validate", "--mapping", "nope"],
            "there is no mapping named \"nope\" (mappings: inv)",
        ),
        (vec!["validate", "--frobnicate"], "--frobnicate"),
    ] {
        let out = t.run(&args);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(out.stderr.contains(msg), "{args:?}: {}", out.stderr);
    }
}

// ---------------------------------------------------------------- touches nothing

#[test]
fn validate_and_dry_run_touch_nothing() {
    let t = setup(INVOICE_MAPPING);
    inbox(&t, "INV_1.csv", GOOD);
    inbox(&t, "INV_2.csv", HALF_BAD);
    t.write("drop/inbox/INV_3.csv.part", "partial");
    // an old mtime, so that a file is "ready" by any measure
    crate::util::age(&t.join("drop/inbox/INV_1.csv"), 3600);
    let before = snapshot(&t);
    for args in [
        vec!["validate"],
        vec!["validate", "drop/inbox"],
        vec!["validate", "drop/inbox/INV_2.csv"],
        vec!["run", "--dry-run"],
        vec!["run", "--dry-run", "--report", "rep", "--emit", "em"],
        vec!["validate", "--json", "--report", "rep2", "--emit", "em2"],
    ] {
        let out = t.run(&args);
        assert_eq!(out.code, 1, "{args:?}: {out:?}");
        assert_eq!(snapshot(&t), before, "{args:?} changed the drop folder");
    }
    assert_eq!(t.ls("drop"), vec!["inbox"]);
    assert_eq!(
        t.ls("rep"),
        vec![
            "INV_1.csv.errors.csv",
            "INV_1.csv.errors.json",
            "INV_2.csv.errors.csv",
            "INV_2.csv.errors.json"
        ]
    );
}

#[test]
fn paths_can_be_files_and_folders() {
    let t = setup(INVOICE_MAPPING);
    inbox(&t, "INV_1.csv", GOOD);
    t.write(
        "drop/failed/INV_9.csv",
        format!("{INVOICE_HEADER}{HALF_BAD}"),
    );
    t.write("drop/failed/INV_9.csv.errors.json", "{}");
    t.write("drop/failed/INV_9.csv.errors.csv", "");
    t.write("drop/failed/notes.txt", "x");
    // a folder: its files that a mapping takes (reports and others are skipped)
    let out = t.run(&["validate", "drop/failed"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.starts_with("invalid: INV_9.csv (inv): 2 rows"),
        "{}",
        out.stdout
    );
    assert!(out
        .stdout
        .ends_with("1 files: 0 valid, 1 invalid; 2 documents, 1 invalid\n"));
    // files and folders together; the inbox is not read when paths are given
    let out = t.run(&["validate", "drop/failed/INV_9.csv", "drop/inbox"]);
    assert!(out.stdout.contains("INV_9.csv") && out.stdout.contains("INV_1.csv"));
    let out = t.run(&["validate", "drop/inbox/INV_1.csv"]);
    assert_eq!(out.code, 0);
    // --mapping takes a file whatever its name
    t.write("elsewhere/export.txt", format!("{INVOICE_HEADER}{GOOD}"));
    let out = t.run(&["validate", "--mapping", "inv", "elsewhere/export.txt"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out
        .stdout
        .starts_with("valid: export.txt (inv): 3 rows, 2 documents"));
}

// ---------------------------------------------------------------- --report, --emit, --json

#[test]
fn report_files_have_the_keys_of_spec() {
    let t = setup(INVOICE_MAPPING);
    let body = format!("{INVOICE_HEADER}A1;20.11.2026;C1;N30;10,00;ITEM-1;10,00\nA2;21.11.2026;C2;XX;1,50;\"a, \"\"b\"\"\nc\";1,50\nA3;bad;C1;N30;1,00;ITEM;1,00\n");
    t.write("drop/inbox/INV_1.csv", &body);
    let out = t.run(&["validate", "--report", "rep"]);
    assert_eq!(out.code, 1);
    let r = t.read_json("rep/INV_1.csv.errors.json");
    let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    for k in [
        "file", "sha256", "mapping", "run_id", "started", "finished", "outcome", "counts", "errors",
    ] {
        assert!(keys.contains(&k), "{k} missing: {keys:?}");
    }
    assert_eq!(r["file"], "INV_1.csv");
    assert_eq!(r["sha256"], hex::encode(Sha256::digest(body.as_bytes())));
    assert_eq!(r["mapping"], "inv");
    assert_eq!(r["outcome"], "invalid");
    assert!(r["started"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        r["counts"],
        // in a dry run, created/updated/deleted say what would be
        json!({"rows": 3, "documents": 3, "accepted": 0, "rejected": 0, "invalid": 2, "already_imported": 0, "held_back": 1,
               "created": 0, "updated": 0, "deleted": 0, "unchanged": 0, "skipped": 0})
    );
    assert_eq!(
        r["errors"],
        json!([
            {"stage": "validate", "document": "A2", "line": 3, "column": "Terms", "field": "terms", "value": "XX",
             "code": "not_allowed", "message": "Terms code \"XX\" is not in ref/terms.csv (line 3, column Terms)"},
            {"stage": "map", "document": "A3", "line": 5, "column": "Date", "field": "date", "value": "bad",
             "code": "type", "message": "Date \"bad\" is not a valid date in the form DD.MM.YYYY (line 5, column Date)"},
        ])
    );
    // the CSV: BOM, SPEC's columns, one row per error with the same values, delimited
    // as the mapping's source (";"), then the valid document the file held back
    let csv_bytes = std::fs::read(t.join("rep/INV_1.csv.errors.csv")).unwrap();
    assert!(
        csv_bytes.starts_with(
            b"\xEF\xBB\xBFstage;document;line;column;field;value;code;message;status\r\n"
        ) || csv_bytes.starts_with(
            b"\xEF\xBB\xBFstage;document;line;column;field;value;code;message;status\n"
        )
    );
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_reader(&csv_bytes[3..]);
    let rows: Vec<Vec<String>> = rdr
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    assert_eq!(
        rows,
        vec![
            vec![
                "validate",
                "A2",
                "3",
                "Terms",
                "terms",
                "XX",
                "not_allowed",
                "Terms code \"XX\" is not in ref/terms.csv (line 3, column Terms)",
                ""
            ],
            vec![
                "map",
                "A3",
                "5",
                "Date",
                "date",
                "bad",
                "type",
                "Date \"bad\" is not a valid date in the form DD.MM.YYYY (line 5, column Date)",
                ""
            ],
            vec![
                "submit",
                "",
                "",
                "",
                "",
                "",
                "held_back",
                "1 valid document would not be submitted because the file has invalid ones (on_invalid = \"reject-file\"): fix those before the real run",
                ""
            ],
        ]
    );
    // a valid file gets a report too, with no errors
    t.write("drop/inbox/INV_1.csv", format!("{INVOICE_HEADER}{GOOD}"));
    let out = t.run(&["validate", "--report", "rep"]);
    assert_eq!(out.code, 0);
    let r = t.read_json("rep/INV_1.csv.errors.json");
    assert_eq!(
        (r["outcome"].as_str(), r["errors"].as_array().map(Vec::len)),
        (Some("valid"), Some(0))
    );
    assert_eq!(
        t.read("rep/INV_1.csv.errors.csv").trim_end(),
        "\u{feff}stage;document;line;column;field;value;code;message;status"
    );
}

#[test]
fn the_error_csv_opens_in_excel_as_columns_and_runs_no_formula() {
    // [report] delimiter sets it; a value that Excel would run as a formula is text
    let t =
        setup(&INVOICE_MAPPING.replace("[lookups]", "[report]\ndelimiter = \"\\t\"\n\n[lookups]"));
    inbox(
        &t,
        "INV_1.csv",
        "=HYPERLINK(\"http://x\");20.11.2026;C1;N30;1,00;X;1,00\n@SUM(A1);20.11.2026;C1;N30;-1,00;X;-1,00\nB3;20.11.2026;C1;+cmd;1,00;X;1,00\n",
    );
    let out = t.run(&["validate", "--report", "rep"]);
    assert_eq!(out.code, 1, "{out:?}");
    let csv = t.read("rep/INV_1.csv.errors.csv");
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .from_reader(csv.trim_start_matches('\u{feff}').as_bytes());
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    let cells: Vec<String> = rows
        .iter()
        .flat_map(|r| r.iter().map(str::to_string))
        .collect();
    for c in &cells {
        assert!(
            !(c.starts_with(['=', '@', '+']) || (c.starts_with('-') && c.parse::<f64>().is_err())),
            "a cell Excel would run: {c:?} in {csv}"
        );
    }
    assert!(
        cells.iter().any(|c| c == "'=HYPERLINK(\"http://x\")"),
        "{csv}"
    );
    assert!(cells.iter().any(|c| c == "'+cmd"), "{csv}");
    // the JSON report keeps the values as they were
    let json = t.read_json("rep/INV_1.csv.errors.json");
    assert!(json.to_string().contains("\"=HYPERLINK"), "{json}");
    // a bad delimiter is a config error at its key
    let t =
        setup(&INVOICE_MAPPING.replace("[lookups]", "[report]\ndelimiter = \";;\"\n\n[lookups]"));
    let out = t.run(&["check"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("report.delimiter"), "{}", out.stderr);
}

#[test]
fn pattern_message_speaks_to_finance_instead_of_the_expression() {
    let t = setup(&INVOICE_MAPPING.replace(
        "number   = { from = \"No\", required = true, max_length = 10 }",
        "number   = { from = \"No\", required = true, max_length = 10, pattern = '[A-Z]{2}\\d{4}', pattern_message = \"an invoice number: two capital letters and four digits (AB1234)\" }",
    ));
    inbox(&t, "INV_1.csv", "b12;20.11.2026;C1;N30;1,00;X;1,00\n");
    let out = t.run(&["validate", "--json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let e = &out.json()["files"][0]["errors"][0];
    assert_eq!(e["code"], "pattern");
    assert_eq!(
        e["message"],
        "Number \"b12\" is not an invoice number: two capital letters and four digits (AB1234) (line 2, column No)"
    );
    // without a pattern it means nothing: a config error
    let t = setup(&INVOICE_MAPPING.replace(
        "number   = { from = \"No\", required = true, max_length = 10 }",
        "number   = { from = \"No\", pattern_message = \"x\" }",
    ));
    let out = t.run(&["check"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("header.number.pattern_message"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_file_problem_is_one_read_row_with_no_document() {
    let t = setup(INVOICE_MAPPING);
    t.write(
        "drop/inbox/INV_1.csv",
        b"No;Date;Cust;Terms;Total;Item;Amount\nA1;20.11.2026;C1;N30;1,00;X;1,00\nA2;20.11.2026;C1;N30;1,00;X;1,00\nA3;20.11.2026;C1;N30;1,00;\xC0\xC1;1,00\n",
    );
    let out = t.run(&["validate", "--report", "rep", "--json"]);
    assert_eq!(out.code, 1);
    let r = t.read_json("rep/INV_1.csv.errors.json");
    assert_eq!(r["errors"].as_array().unwrap().len(), 1);
    assert_eq!(r["errors"][0]["stage"], "read");
    assert_eq!(r["errors"][0]["code"], "encoding");
    assert!(r["errors"][0].get("document").is_none());
    assert_eq!(r["errors"][0]["line"], 4);
    // nothing of an unusable file counts as valid (A1 was read before the bad row)
    assert_eq!(r["counts"]["documents"], 1);
    assert_eq!(r["counts"]["invalid"], 1);
    let s = out.json();
    assert_eq!(
        s["files"][0]["counts"]["invalid"],
        s["files"][0]["counts"]["documents"]
    );
    assert_eq!(s["totals"]["files_failed"], 1);
}

#[test]
fn emit_writes_one_json_payload_per_document() {
    let t = setup(INVOICE_MAPPING);
    inbox(&t, "INV_1.csv", GOOD);
    let out = t.run(&["validate", "--emit", "em"]);
    assert_eq!(out.code, 0);
    assert_eq!(
        t.ls("em"),
        vec!["sales_invoice-A1.json", "sales_invoice-A2.json"]
    );
    assert_eq!(
        t.read_json("em/sales_invoice-A1.json"),
        json!({"number": "A1", "date": "2026-11-20", "customer": "CUST-1", "terms": "N30", "total": "10.00",
               "lines": [{"item": "ITEM-1", "amount": "4.00"}, {"item": "ITEM-2", "amount": "6.00"}]})
    );
    // the payload text keeps decimals as strings in their scale, fields in mapping order
    let text = t.read("em/sales_invoice-A2.json");
    assert!(
        text.starts_with("{\n  \"number\": \"A2\",\n  \"date\": \"2026-11-21\","),
        "{text}"
    );
    assert!(text.contains("\"total\": \"1.50\""));
}

#[test]
fn json_summary() {
    let t = setup(INVOICE_MAPPING);
    inbox(&t, "INV_1.csv", GOOD);
    inbox(&t, "INV_2.csv", HALF_BAD);
    let out = t.run(&["validate", "--json"]);
    assert_eq!(out.code, 1);
    let s = out.json();
    assert_eq!(s["command"], "validate");
    assert_eq!(s["dry_run"], true);
    assert_eq!(s["exit_code"], 1);
    assert_eq!(s["files"].as_array().unwrap().len(), 2);
    assert_eq!(s["files"][1]["file"], "INV_2.csv");
    assert_eq!(s["files"][1]["outcome"], "invalid");
    assert_eq!(s["files"][1]["errors"][0]["code"], "required");
    assert_eq!(
        s["totals"],
        json!({"files": 2, "files_ok": 1, "files_failed": 1, "files_waiting": 0, "rows": 5,
               "documents": 4, "accepted": 0, "rejected": 0, "invalid": 1, "already_imported": 0, "held_back": 1,
               "created": 2, "updated": 0, "deleted": 0, "unchanged": 0, "skipped": 0})
    );
    let out = t.run(&["run", "--dry-run", "--json"]);
    assert_eq!(out.code, 1);
    assert_eq!(out.json()["command"], "run");
    assert_eq!(out.json()["dry_run"], true);
}

// ---------------------------------------------------------------- documents

#[test]
fn rows_of_one_key_form_one_document_even_when_not_adjacent() {
    let t = setup(INVOICE_MAPPING);
    inbox(
        &t,
        "INV_1.csv",
        "A1;20.11.2026;C1;N30;10,00;L1;1,00\nA2;21.11.2026;C2;F48;5,00;M1;5,00\nA1;;;;;L2;2,00\nA3;22.11.2026;C1;N30;0,00;N1;0,00\nA1;20.11.2026;C1;N30;10,00;L3;7,00\n",
    );
    let out = t.run(&["validate", "--emit", "em", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let s = out.json();
    assert_eq!(s["files"][0]["counts"]["rows"], 5);
    assert_eq!(s["files"][0]["counts"]["documents"], 3);
    // header from the first row; lines in file order
    let a1 = t.read_json("em/sales_invoice-A1.json");
    assert_eq!(a1["customer"], "CUST-1");
    assert_eq!(a1["total"], "10.00");
    let items: Vec<&str> = a1["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["item"].as_str().unwrap())
        .collect();
    assert_eq!(items, vec!["L1", "L2", "L3"]);
    assert_eq!(
        t.read_json("em/sales_invoice-A2.json")["lines"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // an error in a later, non-adjacent row names its own line
    t.write(
        "drop/inbox/INV_1.csv",
        format!("{INVOICE_HEADER}A1;20.11.2026;C1;N30;3,00;L1;1,00\nA2;21.11.2026;C2;F48;5,00;M1;5,00\nA1;20.11.2026;C1;N30;3,00;;2,00\n"),
    );
    let out = t.run(&["validate", "--json"]);
    let e = &out.json()["files"][0]["errors"][0];
    assert_eq!(
        (
            e["document"].as_str(),
            e["line"].as_u64(),
            e["code"].as_str()
        ),
        (Some("A1"), Some(4), Some("required"))
    );
}

#[test]
fn reject_file_emits_nothing_from_a_file_with_an_invalid_document() {
    let t = setup(INVOICE_MAPPING);
    inbox(&t, "INV_1.csv", GOOD);
    inbox(
        &t,
        "INV_2.csv",
        &HALF_BAD.replace("A1", "B1").replace("A2", "B2"),
    );
    let out = t.run(&["validate", "--emit", "em"]);
    assert_eq!(out.code, 1);
    // INV_1 is fine on its own; nothing of INV_2, not even its valid B1
    assert_eq!(
        t.ls("em"),
        vec!["sales_invoice-A1.json", "sales_invoice-A2.json"]
    );
    assert!(out
        .stdout
        .contains("invalid: INV_2.csv (inv): 2 rows, 2 documents, 1 valid, 1 invalid"));
}

#[test]
fn skip_document_emits_the_valid_documents() {
    let t = setup(&INVOICE_MAPPING.replace(
        "key = [\"No\"]",
        "key = [\"No\"]\non_invalid = \"skip-document\"",
    ));
    inbox(&t, "INV_2.csv", HALF_BAD);
    let out = t.run(&["validate", "--emit", "em", "--report", "rep"]);
    // still exit 1: a document is invalid
    assert_eq!(out.code, 1);
    assert_eq!(t.ls("em"), vec!["sales_invoice-A1.json"]);
    assert_eq!(
        t.read_json("rep/INV_2.csv.errors.json")["errors"][0]["document"],
        "A2"
    );
    // a file that cannot be read emits nothing, whatever the mode
    t.write(
        "drop/inbox/INV_2.csv",
        format!("{INVOICE_HEADER}{}\"open", HALF_BAD),
    );
    let _ = std::fs::remove_dir_all(t.join("em"));
    let out = t.run(&["run", "--dry-run", "--emit", "em"]);
    assert_eq!(out.code, 1);
    assert!(t.ls("em").is_empty());
}

// ---------------------------------------------------------------- XML payloads

#[test]
fn xml_payloads_are_elements_named_after_the_fields() {
    let t = TestDir::new();
    t.write(
        "erpdrop.toml",
        "mappings = [\"mappings/*.toml\"]\n[scan]\nsettle_seconds = 0\n[target]\nformat = \"xml\"\n",
    );
    t.write(
        "mappings/m.toml",
        r#"name = "x"
match = ["X_*.csv"]
document_type = "SalesInvoice"
[source]
delimiter = ";"
[document]
key = ["No"]
lines = "Items.Item"
[header]
Number = { from = "No" }
"Customer.Name" = { from = "Name" }
"Customer.Code" = { value = "C-1" }
Paid = { from = "Paid", type = "boolean" }
Note = { from = "Note" }
Total = { from = "Total", type = "decimal", scale = 2 }
[lines]
Sku = { from = "Sku" }
Qty = { from = "Qty", type = "integer" }
"#,
    );
    t.write(
        "drop/inbox/X_1.csv",
        "No;Name;Paid;Note;Total;Sku;Qty\nS1;Smith & Sons <\"UK\">;yes;;12.5;A-1;2\nS1;;;;;B&2;1\n",
    );
    let out = t.run(&["validate", "--emit", "em"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(t.ls("em"), vec!["SalesInvoice-S1.xml"]);
    assert_eq!(
        t.read("em/SalesInvoice-S1.xml"),
        r#"<?xml version="1.0" encoding="utf-8"?>
<SalesInvoice>
  <Number>S1</Number>
  <Customer>
    <Name>Smith &amp; Sons &lt;&quot;UK&quot;&gt;</Name>
    <Code>C-1</Code>
  </Customer>
  <Paid>true</Paid>
  <Total>12.50</Total>
  <Items>
    <Item>
      <Sku>A-1</Sku>
      <Qty>2</Qty>
    </Item>
    <Item>
      <Sku>B&amp;2</Sku>
      <Qty>1</Qty>
    </Item>
  </Items>
</SalesInvoice>
"#
    );
}

#[test]
fn econnect_example_emits_gp_sales_invoices() {
    let t = TestDir::new();
    t.copy_from_repo("examples/econnect");
    let check = t.run(&["check"]);
    assert_eq!(check.code, 0, "{check:?}");
    let out = t.run(&["validate", "--emit", "em"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        t.ls("em"),
        vec!["eConnect-INV2026-1001.xml", "eConnect-INV2026-1002.xml"]
    );
    let xml = t.read("em/eConnect-INV2026-1001.xml");
    let batch = xml
        .lines()
        .find(|l| l.contains("<BACHNUMB>"))
        .unwrap()
        .trim()
        .to_string();
    assert!(
        batch.starts_with("<BACHNUMB>ERPDROP20")
            && batch.len() == "<BACHNUMB></BACHNUMB>".len() + 15,
        "{batch}"
    );
    let line = |item: &str, desc: &str, qty: &str, price: &str, ext: &str| {
        format!(
            "      <taSopLineIvcInsert>
        <SOPTYPE>3</SOPTYPE>
        <SOPNUMBE>INV2026-1001</SOPNUMBE>
        <CUSTNMBR>AARONFIT0001</CUSTNMBR>
        <DOCDATE>2026-11-25</DOCDATE>
        <ITEMNMBR>{item}</ITEMNMBR>
        <ITEMDESC>{desc}</ITEMDESC>
        <QUANTITY>{qty}</QUANTITY>
        <UNITPRCE>{price}</UNITPRCE>
        <XTNDPRCE>{ext}</XTNDPRCE>
      </taSopLineIvcInsert>"
        )
    };
    // the line items come before the header, as eConnect's schema orders them
    let expected = format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<eConnect>
  <SOPTransactionType>
    <taSopLineIvcInsert_Items>
{}
{}
{}
    </taSopLineIvcInsert_Items>
    <taSopHdrIvcInsert>
      <SOPTYPE>3</SOPTYPE>
      <DOCID>STDINV</DOCID>
      <SOPNUMBE>INV2026-1001</SOPNUMBE>
      <DOCDATE>2026-11-25</DOCDATE>
      <CUSTNMBR>AARONFIT0001</CUSTNMBR>
      <SUBTOTAL>379.85</SUBTOTAL>
      <DOCAMNT>379.85</DOCAMNT>
      {batch}
    </taSopHdrIvcInsert>
  </SOPTransactionType>
</eConnect>
"#,
        line(
            "100XLG",
            "Green phone, 10 lines",
            "1.00000",
            "299.95",
            "299.95"
        ),
        line(
            "ACCS-CRD-12WH",
            "Phone cord 12ft white",
            "5.00000",
            "3.98",
            "19.90"
        ),
        line(
            "SVC-INSTALL",
            "On-site installation &amp; setup",
            "1.00000",
            "60.00",
            "60.00"
        ),
    );
    assert_eq!(xml, expected);
    let two = t.read("em/eConnect-INV2026-1002.xml");
    assert_eq!(two.matches("<taSopLineIvcInsert>").count(), 1);
    assert!(two.contains("<CUSTNMBR>ADAMPARKS0001</CUSTNMBR>"));

    // an unknown item number and a subtotal that does not add up
    let path = "drop/inbox/SOP_2026-11-26.csv";
    let csv = t
        .read(path)
        .replace(",11.94,ACCS-CRD-12WH,", ",12.94,ACCS-CRD-99,");
    t.write(path, csv);
    let out = t.run(&["validate", "--report", "rep"]);
    assert_eq!(out.code, 1);
    let r = t.read_json("rep/SOP_2026-11-26.csv.errors.json");
    let messages: Vec<&str> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        vec![
            "Item number \"ACCS-CRD-99\" is not in ref/items.csv (line 5, column Item)",
            "Subtotal is 12.94 but the lines' extended price adds up to 11.94 (difference 1.00) (line 5, column Subtotal)",
        ]
    );
}

// ---------------------------------------------------------------- billing fixture

#[test]
fn billing_fixture_one_row_per_invoice_line() {
    let t = TestDir::new();
    t.copy_from_repo("fixtures/billing");
    let out = t.run(&["validate", "--emit", "em"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("4 rows, 3 documents, 3 valid, 0 invalid"),
        "{}",
        out.stdout
    );
    assert_eq!(
        t.read_json("em/sales_invoice-INV-2026-0101.json"),
        json!({
            "number": "INV-2026-0101",
            "issued_at": "2026-11-01T09:30:00",
            "due_date": "2026-12-01",
            "customer": "C00042",
            "currency": "USD",
            "paid": true,
            "total": "126.00",
            "source": "invoice_lines_2026-11-02.csv:2",
            "lines": [
                {"external_id": "il_001", "description": "Pro plan (Nov 2026)", "quantity": 1, "unit_price": "99.00", "amount": "99.00", "tax_code": "TX-STD"},
                {"external_id": "il_003", "description": "Extra storage 10 GB", "quantity": 3, "unit_price": "9.00", "amount": "27.00", "tax_code": "TX-STD"},
            ]
        })
    );
    let credit = t.read_json("em/sales_invoice-INV-2026-0103.json");
    assert_eq!(credit["total"], "-15.50");
    assert_eq!(credit["lines"][0]["description"], "Credit: service outa");
    assert_eq!(
        t.read_json("em/sales_invoice-INV-2026-0102.json")["paid"],
        false
    );

    // skip-document: a broken invoice is left out, the others are still emitted
    let path = "drop/inbox/invoice_lines_2026-11-02.csv";
    t.write(path, t.read(path).replace("cus_Q8f2,eur", "cus_Q8f2,chf"));
    let _ = std::fs::remove_dir_all(t.join("em"));
    let out = t.run(&["validate", "--emit", "em", "--json"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        t.ls("em"),
        vec![
            "sales_invoice-INV-2026-0101.json",
            "sales_invoice-INV-2026-0103.json"
        ]
    );
    let e: &Value = &out.json()["files"][0]["errors"][0];
    assert_eq!(
        e["message"],
        "Currency code \"CHF\" is not one of USD, EUR, GBP (line 3, column currency)"
    );
}
