//! Memory stays flat whatever the file: the mechanisms that spill to temporary files
//! (the sort of an ungrouped CSV, the log of document keys, the log of problems) give
//! the same documents and the same reports as a file small enough to stay in memory.
//! `ERPDROP_SORT_MEMORY` and `ERPDROP_KEY_WINDOW` shrink the memory so that small test
//! files spill.

use crate::util::{TestDir, INVOICE_HEADER, INVOICE_MAPPING};
use std::collections::BTreeMap;

fn setup() -> TestDir {
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    t
}

/// Row `l` of invoice `i` (3 lines of 1,50 each; some items differ per line).
fn row(i: usize, l: usize) -> String {
    format!(
        "INV{i:06};20.11.2026;C{};N30;4,50;ITEM{l}-{};1,50\n",
        1 + i % 2,
        i % 7
    )
}

/// `validate FILE --report rep --emit em` with extra environment; the payloads by
/// name and the report.
fn validate(
    t: &TestDir,
    name: &str,
    env: &[(&str, &str)],
) -> (BTreeMap<String, String>, serde_json::Value) {
    let _ = std::fs::remove_dir_all(t.join("rep"));
    let _ = std::fs::remove_dir_all(t.join("em"));
    let mut c = t.cmd();
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c
        .args(["validate", name, "--report", "rep", "--emit", "em"])
        .output()
        .unwrap();
    let code = o.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 1,
        "{code}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let base = std::path::Path::new(name)
        .file_name()
        .unwrap()
        .to_string_lossy();
    let report = t.read_json(&format!("rep/{base}.errors.json"));
    let emitted = t
        .ls("em")
        .into_iter()
        .map(|n| {
            let text = t.read(&format!("em/{n}"));
            (n, text)
        })
        .collect();
    (emitted, report)
}

/// A sort budget small enough that the ungrouped files below (900 rows) spill to
/// dozens of temporary runs.
const SMALL_SORT: (&str, &str) = ("ERPDROP_SORT_MEMORY", "3277");

#[test]
fn an_ungrouped_file_sorted_through_temporary_files_gives_the_grouped_documents() {
    let t = setup();
    let n = 300;
    let mut grouped = String::from(INVOICE_HEADER);
    for i in 0..n {
        for l in 0..3 {
            grouped.push_str(&row(i, l));
        }
    }
    // every invoice's first line, then every second line, then every third: no two
    // rows of one invoice are adjacent, and each invoice's rows keep their order
    let mut ungrouped = String::from(INVOICE_HEADER);
    for l in 0..3 {
        for i in 0..n {
            ungrouped.push_str(&row(i, l));
        }
    }
    // a keyless row and a row with a header value that differs from its first row
    ungrouped.push_str(";20.11.2026;C1;N30;1,50;X;1,50\n");
    ungrouped.push_str("INV000005;21.11.2026;C2;N30;4,50;ITEM3;1,50\n");
    t.write("in/INV_grouped.csv", &grouped);
    t.write("in/INV_ungrouped.csv", &ungrouped);

    let (want, want_report) = validate(&t, "in/INV_grouped.csv", &[]);
    assert_eq!(want.len(), n);
    assert_eq!(want_report["errors"].as_array().unwrap().len(), 0);

    for env in [&[SMALL_SORT][..], &[]] {
        let (got, report) = validate(&t, "in/INV_ungrouped.csv", env);
        let counts = &report["counts"];
        assert_eq!(counts["rows"], 3 * n as u64 + 2, "{env:?}");
        assert_eq!(counts["documents"], n as u64 + 1, "{env:?}");
        assert_eq!(counts["invalid"], 2, "{env:?}");
        // the invalid file emits nothing (reject-file): compare the documents through a
        // file without the two bad rows below; here, the problems
        let errors = report["errors"].as_array().unwrap();
        let codes: Vec<&str> = errors.iter().map(|e| e["code"].as_str().unwrap()).collect();
        // documents come in the order of their first rows: INV000005 (line 7) before
        // the keyless row (line 3n + 2, no key and so no number)
        assert_eq!(
            codes,
            ["duplicate", "sum", "required", "required"],
            "{errors:#?}"
        );
        assert_eq!(errors[0]["document"], "INV000005");
        assert_eq!(errors[0]["line"], 3 * n as u64 + 3);
        assert_eq!(errors[0]["column"], "Date");
        assert_eq!(errors[1]["line"], 7);
        assert_eq!(errors[2]["line"], 3 * n as u64 + 2);
        assert_eq!(errors[3]["field"], "number");
        assert!(got.is_empty());
    }

    // without the two bad rows the ungrouped file is valid and gives the very same
    // payloads as the grouped one, sorted through temporary files or not
    let clean: String = ungrouped
        .lines()
        .take(3 * n + 1)
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    t.write("in/INV_clean.csv", &clean);
    for env in [&[SMALL_SORT][..], &[]] {
        let (got, report) = validate(&t, "in/INV_clean.csv", env);
        assert_eq!(report["counts"]["rows"], 3 * n as u64);
        assert_eq!(report["errors"].as_array().unwrap().len(), 0, "{report:#}");
        assert_eq!(got, want, "{env:?}");
    }
}

#[test]
fn a_key_that_comes_back_long_after_is_found_when_the_file_ends() {
    let t = setup();
    let n = 400;
    let mut csv = String::from(INVOICE_HEADER);
    for i in 0..n {
        for l in 0..3 {
            csv.push_str(&row(i, l));
        }
    }
    // INV000000 gets a fourth line at the very end: its total no longer adds up
    csv.push_str(&row(0, 3));
    t.write("in/INV_back.csv", &csv);
    for env in [&[("ERPDROP_KEY_WINDOW", "16")][..], &[]] {
        let (_, report) = validate(&t, "in/INV_back.csv", env);
        assert_eq!(report["counts"]["documents"], n as u64, "{env:?}");
        let errors = report["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{env:?}: {errors:#?}");
        assert_eq!(errors[0]["code"], "sum");
        assert_eq!(errors[0]["document"], "INV000000");
    }
}

#[test]
fn an_xml_key_repeated_far_apart_is_a_duplicate_naming_the_first() {
    let t = TestDir::new();
    t.mapping_setup(
        r#"name = "x"
match = ["*.xml"]
document_type = "d"
[source]
format = "xml"
record = "/R/D"
[document]
key = ["@id"]
[header]
id = { from = "@id" }
"#,
    );
    let mut xml = String::from("<R>\n");
    for i in 0..300 {
        xml.push_str(&format!("<D id=\"K{i}\"/>\n"));
    }
    xml.push_str("<D id=\"K7\"/>\n<D id=\"K299\"/>\n</R>\n");
    t.write("in/a.xml", &xml);
    for env in [&[("ERPDROP_KEY_WINDOW", "16")][..], &[]] {
        let (_, report) = validate(&t, "in/a.xml", env);
        let errors = report["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 2, "{env:?}: {errors:#?}");
        assert_eq!(errors[0]["code"], "duplicate");
        assert_eq!(errors[0]["document"], "K7");
        assert_eq!(errors[0]["line"], 302);
        assert_eq!(
            errors[0]["message"],
            "Document K7 appears twice in the file: this <D> has the same key as the one on line 9 (line 302, column @id)"
        );
        assert_eq!(errors[1]["document"], "K299");
        assert_eq!(errors[1]["line"], 303);
        assert!(errors[1]["message"]
            .as_str()
            .unwrap()
            .contains("the one on line 301"));
        assert_eq!(report["counts"]["documents"], 302);
        assert_eq!(report["counts"]["invalid"], 2);
    }
}

#[test]
fn a_file_where_every_row_fails_has_every_problem_in_its_reports() {
    let t = setup();
    let n = 2500; // more than the problems kept in memory
    let mut csv = String::from(INVOICE_HEADER);
    for i in 0..n {
        csv.push_str(&format!("INV{i:06};20.11.2026;C1;N30;1,50;ITEM;x{i}\n"));
    }
    t.write("in/INV_bad.csv", &csv);
    let (emitted, report) = validate(&t, "in/INV_bad.csv", &[]);
    assert!(emitted.is_empty());
    assert_eq!(report["counts"]["invalid"], n as u64);
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), n);
    for (i, e) in errors.iter().enumerate() {
        let line = i + 2;
        let want = serde_json::json!({
            "stage": "map",
            "document": format!("INV{i:06}"),
            "line": line,
            "column": "Amount",
            "field": "amount",
            "value": format!("x{i}"),
            "code": "type",
            "message": format!(
                "Amount \"x{i}\" is not a number (decimal separator \",\") (line {line}, column Amount)"
            ),
        });
        assert_eq!(*e, want);
    }
    // the CSV report has the same rows in the same order
    let text = t.read("rep/INV_bad.csv.errors.csv");
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), n);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(&r[1], format!("INV{i:06}"));
        assert_eq!(&r[2], (i + 2).to_string());
        assert_eq!(&r[6], "type");
        assert_eq!(&r[7], errors[i]["message"].as_str().unwrap());
    }
    // the --json summary streams them too; the text summary shows the first five
    let out = t.run(&["validate", "in/INV_bad.csv", "--json"]);
    assert_eq!(out.code, 1);
    let summary = out.json();
    assert_eq!(summary["files"][0]["errors"].as_array().unwrap(), errors);
    let text = t.run(&["validate", "in/INV_bad.csv"]);
    assert!(
        text.stdout
            .contains(&format!("... and {} more problems", n - 5)),
        "{}",
        text.stdout
    );

    // a run: the file goes to failed/ with the same rows, and every document is in the
    // ledger as invalid
    std::fs::copy(t.join("in/INV_bad.csv"), t.join("drop/inbox/INV_bad.csv")).unwrap();
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    let failed = t.read_json("drop/failed/INV_bad.csv.errors.json");
    assert_eq!(failed["errors"].as_array().unwrap(), errors);
    let st = t.run(&["status", "--failed", "--json"]);
    assert!(
        st.stdout.contains(&format!("INV{:06}", n - 1)),
        "{}",
        st.stdout
    );
}
