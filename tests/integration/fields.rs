//! The field pipeline of SPEC, step by step and in its order: from/value/template, trim,
//! map, default, required, type (string, integer, decimal, date, datetime, boolean),
//! case, max_length/truncate, pattern, min/max, lookup, allowed; dotted names; checks;
//! and every error code a field or document can produce, with its message.
use crate::util::{TestDir, INVOICE_HEADER, INVOICE_MAPPING};
use serde_json::{json, Value};

/// A mapping `f` for `F_*.csv`: `;`, key `No`, the given [source] lines, [header] and
/// [lines] bodies, and anything after (lookups, checks).
fn mapping(source: &str, header: &str, lines: &str, extra: &str) -> String {
    format!(
        "name = \"f\"\nmatch = [\"F_*.csv\"]\ndocument_type = \"doc\"\n\n[source]\ndelimiter = \";\"\n{source}\n\n[document]\nkey = [\"No\"]\n\n[header]\n{header}\n\n[lines]\n{lines}\n\n{extra}\n"
    )
}

/// A test folder with a header-only mapping.
fn header_only(source: &str, header: &str) -> TestDir {
    let t = TestDir::new();
    t.mapping_setup(&mapping(source, header, "", ""));
    t
}

/// The value of header field `v` for each cell, one document per cell (keys 1, 2...).
fn values(t: &TestDir, cells: &[&str]) -> Vec<Value> {
    values_of(t, "v", cells)
}

/// The value of header field `field` for each cell, one document per cell.
fn values_of(t: &TestDir, field: &str, cells: &[&str]) -> Vec<Value> {
    let mut csv = String::from("No;V\n");
    for (i, c) in cells.iter().enumerate() {
        csv.push_str(&format!("{};{c}\n", i + 1));
    }
    let c = t.check_file("F_1.csv", csv);
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    (1..=cells.len())
        .map(|i| {
            let d = c.doc(&format!("doc-{i}.json"));
            d.get(field)
                .unwrap_or_else(|| panic!("no {field} in {d}"))
                .clone()
        })
        .collect()
}

/// The only error of a one-row file with `V` = `cell`.
fn error_for(t: &TestDir, cell: &str) -> Value {
    let c = t.check_file("F_1.csv", format!("No;V\nA1;{cell}\n"));
    assert_eq!(c.out.code, 1, "{c:#?}");
    assert!(c.emitted.is_empty(), "an invalid document was emitted");
    c.only_error().clone()
}

// ---------------------------------------------------------------- sources

#[test]
fn from_value_and_template() {
    let t = header_only(
        "",
        r#"number = { from = "No" }
by_index = { from = 2 }
kind = { value = "INV" }
count = { value = 3 }
ratio = { value = 1.5 }
flag = { value = true }
note = { template = "{V} from {_file}, line {_line}, run {_run} {{literal}}" }"#,
    );
    let c = t.check_file("F_1.csv", "No;V\n\nA1; x y \n");
    assert_eq!(c.out.code, 0, "{c:#?}");
    let d = c.doc("doc-A1.json");
    let run = c.report["run_id"].as_str().unwrap();
    assert_eq!(
        d,
        json!({
            "number": "A1",
            "by_index": "x y",
            "kind": "INV",
            "count": 3,
            "ratio": "1.5",
            "flag": true,
            "note": format!("x y from F_1.csv, line 3, run {run} {{literal}}"),
        })
    );
}

#[test]
fn trim_is_on_by_default() {
    let t = header_only(
        "",
        "v = { from = \"V\" }\nraw = { from = \"V\", trim = false }",
    );
    let c = t.check_file("F_1.csv", "No;V\n1;  padded\t \n");
    let d = c.doc("doc-1.json");
    assert_eq!(d["v"], "padded");
    assert_eq!(d["raw"], "  padded\t ");
}

#[test]
fn map_then_default_then_required() {
    let t = header_only(
        "",
        r#"v = { from = "V", map = { "48 Month Repayment Plan" = "F48", "-" = "", "NONE" = "N30" }, default = "DUE", required = true }"#,
    );
    // trim comes before map; map can empty a value, then the default fills it
    assert_eq!(
        values(&t, &["  48 Month Repayment Plan ", "-", "", "NONE", "N60"]),
        vec!["F48", "DUE", "DUE", "N30", "N60"]
    );
    // a value not in the map passes unchanged; map keys are exact
    assert_eq!(
        values(&t, &["48 month repayment plan"]),
        vec!["48 month repayment plan"]
    );
}

#[test]
fn required_and_optional_empty_values() {
    let t = header_only(
        "",
        "v = { from = \"V\", required = true, label = \"Customer PO\" }\nopt = { from = \"V\" }",
    );
    let e = error_for(&t, "   ");
    assert_eq!(
        e,
        json!({"stage": "validate", "document": "A1", "line": 2, "column": "V", "field": "v",
               "value": "", "code": "required", "message": "Customer PO is missing (line 2, column V)"})
    );
    // an empty optional field is null in the payload
    let t = header_only("", "v = { from = \"V\" }");
    assert_eq!(values(&t, &[""]), vec![Value::Null]);
}

// ---------------------------------------------------------------- types

#[test]
fn integers() {
    let t = header_only(
        "thousands_separator = \" \"",
        "v = { from = \"V\", type = \"integer\" }",
    );
    assert_eq!(
        values(
            &t,
            &["42", "-7", "+3", "1 000", "1\u{a0}000 000", "12.00", "007"]
        ),
        vec![
            json!(42),
            json!(-7),
            json!(3),
            json!(1000),
            json!(1000000),
            json!(12),
            json!(7)
        ]
    );
    let t = header_only("", "qty = { from = \"V\", type = \"integer\" }");
    for bad in ["1.5", "ten", "1e3", "9223372036854775808"] {
        let e = error_for(&t, bad);
        assert_eq!(e["code"], "type", "{bad}");
        assert_eq!(e["stage"], "map");
        assert_eq!(
            e["message"],
            format!("Qty \"{bad}\" is not a whole number (line 2, column V)")
        );
    }
}

#[test]
fn decimals_with_separators_are_exact_strings() {
    let t = header_only(
        "decimal_separator = \",\"\nthousands_separator = \".\"",
        "v = { from = \"V\", type = \"decimal\" }",
    );
    assert_eq!(
        values(
            &t,
            &[
                "1.234.567,89",
                "0,1",
                "-0,50",
                "(12,50)",
                "12,50-",
                "+3",
                "1234567890123456789,123456789",
                "1,10",
            ]
        ),
        vec![
            "1234567.89",
            "0.1",
            "-0.50",
            "-12.50",
            "-12.50",
            "3",
            "1234567890123456789.123456789",
            "1.10"
        ]
    );
    // per-field separators override [source]
    let t = header_only(
        "decimal_separator = \",\"",
        "v = { from = \"V\", type = \"decimal\", decimal_separator = \".\", thousands_separator = \",\" }",
    );
    assert_eq!(values(&t, &["1,249.50", "0.005"]), vec!["1249.50", "0.005"]);
    // space grouping accepts the non-breaking spaces spreadsheets write
    let t = header_only(
        "decimal_separator = \",\"\nthousands_separator = \" \"",
        "v = { from = \"V\", type = \"decimal\" }",
    );
    assert_eq!(
        values(&t, &["1 249,00", "1\u{a0}249,00", "1\u{202f}249,00"]),
        vec!["1249.00", "1249.00", "1249.00"]
    );
}

#[test]
fn decimal_type_errors_say_which_separators_were_expected() {
    let t = header_only(
        "decimal_separator = \",\"",
        "total = { from = \"V\", type = \"decimal\" }",
    );
    for bad in ["1.249,00", "12,5,0", "1E+05", "USD 12", "12.50", "--1"] {
        let e = error_for(&t, bad);
        assert_eq!(
            (e["code"].as_str(), e["stage"].as_str()),
            (Some("type"), Some("map"))
        );
        assert_eq!(
            e["message"],
            format!("Total \"{bad}\" is not a number (decimal separator \",\") (line 2, column V)")
        );
    }
    let t = header_only(
        "thousands_separator = \",\"",
        "total = { from = \"V\", type = \"decimal\" }",
    );
    // a decimal comma in a file read with thousands_separator = "," is not 15 or 1234
    for bad in ["1,5", "12,34", "1,2345.00"] {
        assert_eq!(error_for(&t, bad)["code"], "type", "{bad}");
    }
    assert_eq!(
        values_of(&t, "total", &["1,234", "12,345,678.9", "1,23,456.00"]),
        vec!["1234", "12345678.9", "123456.00"]
    );
    assert_eq!(
        error_for(&t, "1.249,00")["message"],
        "Total \"1.249,00\" is not a number (decimal separator \".\", thousands separator \",\") (line 2, column V)"
    );
}

#[test]
fn scale_rounds_half_away_from_zero_and_pads() {
    let t = header_only("", "v = { from = \"V\", type = \"decimal\", scale = 2 }");
    assert_eq!(
        values(
            &t,
            &[
                "2.345",
                "-2.345",
                "2.344",
                "2.3449999",
                "7",
                "0.005",
                "-0.005",
                "0.004",
                "1.1"
            ]
        ),
        vec!["2.35", "-2.35", "2.34", "2.34", "7.00", "0.01", "-0.01", "0.00", "1.10"]
    );
    let t = header_only("", "v = { from = \"V\", type = \"decimal\", scale = 0 }");
    assert_eq!(values(&t, &["2.5", "-2.5", "3.49"]), vec!["3", "-3", "3"]);
}

#[test]
fn rounding_error_refuses_more_decimals_than_the_scale() {
    let t = header_only(
        "decimal_separator = \",\"",
        "amount = { from = \"V\", type = \"decimal\", scale = 2, rounding = \"error\" }",
    );
    // as many decimals as the scale, fewer, or trailing zeros beyond it: taken
    assert_eq!(
        values_of(&t, "amount", &["12,34", "12,3", "12", "12,340", "-0,50"]),
        vec!["12.34", "12.30", "12.00", "12.34", "-0.50"]
    );
    let e = error_for(&t, "12,345");
    assert_eq!(e["code"], "type");
    assert_eq!(
        e["message"],
        "Amount \"12,345\" has 3 decimals, more than the 2 of its scale (rounding = \"error\": it is not rounded silently) (line 2, column V)"
    );
    // the default still rounds, and says nothing
    let t = header_only(
        "decimal_separator = \",\"",
        "amount = { from = \"V\", type = \"decimal\", scale = 2, rounding = \"half-away-from-zero\" }",
    );
    assert_eq!(values_of(&t, "amount", &["12,345"]), vec!["12.35"]);
    // rounding without a scale means nothing: a config error at its key
    let t = TestDir::new();
    t.mapping_setup(&mapping(
        "",
        "amount = { from = \"V\", type = \"decimal\", rounding = \"error\" }",
        "",
        "",
    ));
    let out = t.run(&["check"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("header.amount.rounding"),
        "{}",
        out.stderr
    );
}

#[test]
fn json_number_writes_a_bare_number_in_its_scale() {
    let t = header_only(
        "",
        "v = { from = \"V\", type = \"decimal\", scale = 2, json_number = true }",
    );
    let c = t.check_file("F_1.csv", "No;V\n1;0.1\n2;12345678901234567.891\n");
    // the payload text, not a float's: 0.10 and every digit of the big number
    assert!(
        c.emitted["doc-1.json"].contains("\"v\": 0.10\n"),
        "{}",
        c.emitted["doc-1.json"]
    );
    assert!(c.emitted["doc-2.json"].contains("\"v\": 12345678901234567.89\n"));
}

#[test]
fn dates_are_written_iso() {
    let t = header_only(
        "date_format = \"%d.%m.%Y\"",
        "v = { from = \"V\", type = \"date\" }\nus = { from = \"V\", type = \"date\", format = \"%d.%m.%Y\" }",
    );
    assert_eq!(
        values(&t, &["25.11.2026", "01.01.2000", "29.02.2028", "5.1.2026"]),
        vec!["2026-11-25", "2000-01-01", "2028-02-29", "2026-01-05"]
    );
    // the default format is ISO
    let t = header_only("", "v = { from = \"V\", type = \"date\" }");
    assert_eq!(values(&t, &["2026-11-25"]), vec!["2026-11-25"]);
    // a format with a time reads dates that carry one (1C: "25.11.2026 0:00:00")
    let t = header_only(
        "",
        "v = { from = \"V\", type = \"date\", format = \"%d.%m.%Y %H:%M:%S\" }",
    );
    assert_eq!(values(&t, &["25.11.2026 0:00:00"]), vec!["2026-11-25"]);
    // month names
    let t = header_only(
        "",
        "v = { from = \"V\", type = \"date\", format = \"%d-%b-%Y\" }",
    );
    assert_eq!(values(&t, &["05-Jan-2026"]), vec!["2026-01-05"]);
}

#[test]
fn date_type_errors_show_the_expected_form() {
    let t = header_only(
        "date_format = \"%d.%m.%Y\"",
        "date = { from = \"V\", type = \"date\" }",
    );
    for bad in ["31.02.2026", "2026-11-25", "25.11.26x", "yesterday"] {
        let e = error_for(&t, bad);
        assert_eq!(e["code"], "type");
        assert_eq!(
            e["message"],
            format!("Date \"{bad}\" is not a valid date in the form DD.MM.YYYY (line 2, column V)")
        );
    }
}

#[test]
fn a_four_digit_year_format_refuses_short_years_and_implausible_years_need_min_max() {
    let t = header_only(
        "date_format = \"%d.%m.%Y\"",
        "date = { from = \"V\", type = \"date\" }",
    );
    // chrono alone reads these as the years 26 and 0
    for bad in ["31.12.26", "31.12.0", "1.1.999"] {
        let e = error_for(&t, bad);
        assert_eq!(e["code"], "type", "{bad}: {e}");
        assert_eq!(
            e["message"],
            format!("Date \"{bad}\" is not a valid date in the form DD.MM.YYYY (line 2, column V)")
        );
    }
    // four digits, but a year no export means without saying so
    for (bad, year) in [
        ("31.12.0026", "0026"),
        ("01.01.1899", "1899"),
        ("01.01.2201", "2201"),
    ] {
        let e = error_for(&t, bad);
        assert_eq!(e["code"], "type", "{bad}: {e}");
        let msg = e["message"].as_str().unwrap();
        assert!(
            msg.contains(&format!("is in the year {}", year.trim_start_matches('0')))
                && msg.contains("outside 1900-2200")
                && msg.contains("min and max"),
            "{msg}"
        );
    }
    assert_eq!(
        values_of(&t, "date", &["01.01.1900", "31.12.2200", "5.1.2026"]),
        vec!["1900-01-01", "2200-12-31", "2026-01-05"]
    );
    // a two-digit year format keeps reading two digits
    let t = header_only(
        "date_format = \"%d.%m.%y\"",
        "date = { from = \"V\", type = \"date\" }",
    );
    assert_eq!(values_of(&t, "date", &["31.12.26"]), vec!["2026-12-31"]);
    // min/max decide for themselves: an archive of 1850 is allowed
    let t = header_only(
        "date_format = \"%d.%m.%Y\"",
        "date = { from = \"V\", type = \"date\", min = \"1800-01-01\" }",
    );
    assert_eq!(values_of(&t, "date", &["01.01.1850"]), vec!["1850-01-01"]);
    // and a date and time the same
    let t = header_only("", "v = { from = \"V\", type = \"datetime\" }");
    assert_eq!(error_for(&t, "0026-11-25T10:00:00")["code"], "type");
}

#[test]
fn datetimes() {
    let t = header_only("", "v = { from = \"V\", type = \"datetime\" }");
    assert_eq!(
        values(
            &t,
            &[
                "2026-11-25T10:15:30",
                "2026-11-25 10:15:30.250",
                "2026-11-25 10:15",
                "2026-11-25T10:15"
            ]
        ),
        vec![
            "2026-11-25T10:15:30",
            "2026-11-25T10:15:30.250",
            "2026-11-25T10:15:00",
            "2026-11-25T10:15:00"
        ]
    );
    let t = header_only(
        "datetime_format = \"%d/%m/%Y %H:%M:%S %z\"",
        "v = { from = \"V\", type = \"datetime\" }",
    );
    assert_eq!(
        values(
            &t,
            &["25/11/2026 10:00:00 +0300", "25/11/2026 23:59:59 -0000"]
        ),
        vec!["2026-11-25T10:00:00+03:00", "2026-11-25T23:59:59Z"]
    );
    let t = header_only("", "posted = { from = \"V\", type = \"datetime\" }");
    assert_eq!(
        error_for(&t, "2026-11-25")["message"],
        "Posted \"2026-11-25\" is not a valid date and time in the form YYYY-MM-DDThh:mm:ss.fff or YYYY-MM-DD hh:mm:ss.fff or YYYY-MM-DDThh:mm or YYYY-MM-DD hh:mm (line 2, column V)"
    );
}

#[test]
fn booleans_in_the_words_exports_use() {
    let t = header_only("", "v = { from = \"V\", type = \"boolean\" }");
    let yes = [
        "true", "TRUE", "t", "yes", "Y", "1", "on", "x", "X", "да", "Ja", "oui", "si",
    ];
    let no = ["false", "F", "no", "n", "0", "off", "НЕТ", "nein", "non"];
    let cells: Vec<&str> = yes.iter().chain(no.iter()).copied().collect();
    let expected: Vec<Value> = yes
        .iter()
        .map(|_| json!(true))
        .chain(no.iter().map(|_| json!(false)))
        .collect();
    assert_eq!(values(&t, &cells), expected);
    let t = header_only("", "paid = { from = \"V\", type = \"boolean\" }");
    let e = error_for(&t, "maybe");
    assert_eq!(e["code"], "type");
    assert_eq!(
        e["message"],
        "Paid \"maybe\" is not yes or no (true/false, 1/0) (line 2, column V)"
    );
}

// ---------------------------------------------------------------- after the type

#[test]
fn case_then_max_length_then_pattern() {
    let t = header_only(
        "",
        r#"up = { from = "V", case = "upper" }
low = { from = "V", case = "lower" }
currency = { from = "V", case = "upper", max_length = 3, pattern = "[A-Z]{3}" }"#,
    );
    // the pattern sees the upper-cased value
    let c = t.check_file("F_1.csv", "No;V\n1;usd\n");
    let d = c.doc("doc-1.json");
    assert_eq!(
        (d["up"].as_str(), d["low"].as_str(), d["currency"].as_str()),
        (Some("USD"), Some("usd"), Some("USD"))
    );
    // max_length comes before the pattern: one error, max_length
    let c = t.check_file("F_1.csv", "No;V\n1;eur1\n");
    assert_eq!(c.codes(), vec!["max_length"]);
    let c = t.check_file("F_1.csv", "No;V\n1;e1r\n");
    assert_eq!(c.codes(), vec!["pattern"]);
    // Cyrillic and German change case too
    let t = header_only(
        "",
        "up = { from = \"V\", case = \"upper\" }\nlow = { from = \"V\", case = \"lower\" }",
    );
    let c = t.check_file("F_1.csv", "No;V\n2;Ромашка Straße\n");
    assert_eq!(c.doc("doc-2.json")["up"], "РОМАШКА STRASSE");
    assert_eq!(c.doc("doc-2.json")["low"], "ромашка straße");
}

#[test]
fn max_length_counts_characters_and_truncate_cuts() {
    let t = header_only("", "v = { from = \"V\", max_length = 7, truncate = true }");
    assert_eq!(
        values(&t, &["Ромашка и Ко", "1234567", "ab"]),
        vec!["Ромашка", "1234567", "ab"]
    );
    let t = header_only("", "number = { from = \"V\", max_length = 7 }");
    assert_eq!(values_of(&t, "number", &["Ромашка"]), vec!["Ромашка"]);
    let e = error_for(&t, "INV-2026-0001");
    assert_eq!(
        e,
        json!({"stage": "validate", "document": "A1", "line": 2, "column": "V", "field": "number",
               "value": "INV-2026-0001", "code": "max_length",
               "message": "Number \"INV-2026-0001\" is 13 characters long; at most 7 are allowed (line 2, column V)"})
    );
    // truncating comes before the pattern is checked
    let t = header_only(
        "",
        "v = { from = \"V\", max_length = 3, truncate = true, pattern = \"[a-z]+\" }",
    );
    assert_eq!(values(&t, &["abcd1"]), vec!["abc"]);
}

#[test]
fn pattern_must_match_the_whole_value() {
    let t = header_only(
        "",
        "account = { from = \"V\", pattern = \"[0-9]{4}-[0-9]{2}\", label = \"GL account\" }",
    );
    assert_eq!(values_of(&t, "account", &["4000-00"]), vec!["4000-00"]);
    for bad in ["x4000-00", "4000-001", "4000"] {
        let e = error_for(&t, bad);
        assert_eq!(e["code"], "pattern");
        assert_eq!(e["stage"], "validate");
        assert_eq!(
            e["message"],
            format!("GL account \"{bad}\" does not have the expected form [0-9]{{4}}-[0-9]{{2}} (line 2, column V)")
        );
    }
}

#[test]
fn min_and_max_compare_typed_values() {
    let t = header_only(
        "",
        "quantity = { from = \"V\", type = \"decimal\", min = \"0.001\", max = 1000 }",
    );
    // numeric, not text order: "9" < "10"
    assert_eq!(
        values_of(&t, "quantity", &["0.001", "9", "10", "1000.000"]),
        vec!["0.001", "9", "10", "1000.000"]
    );
    let e = error_for(&t, "0");
    assert_eq!(
        e,
        json!({"stage": "validate", "document": "A1", "line": 2, "column": "V", "field": "quantity",
               "value": "0", "code": "min", "message": "Quantity 0 is less than the minimum 0.001 (line 2, column V)"})
    );
    let e = error_for(&t, "1000.01");
    assert_eq!(e["code"], "max");
    assert_eq!(
        e["message"],
        "Quantity 1000.01 is more than the maximum 1000 (line 2, column V)"
    );
    let t = header_only(
        "",
        "count = { from = \"V\", type = \"integer\", min = 1, max = \"99\" }",
    );
    assert_eq!(error_for(&t, "100")["code"], "max");
    assert_eq!(error_for(&t, "-1")["code"], "min");
    let t = header_only(
        "date_format = \"%d.%m.%Y\"",
        "date = { from = \"V\", type = \"date\", min = \"2026-01-01\", max = \"2026-12-31\" }",
    );
    assert_eq!(
        values_of(&t, "date", &["01.01.2026", "31.12.2026"]),
        vec!["2026-01-01", "2026-12-31"]
    );
    assert_eq!(
        error_for(&t, "31.12.2025")["message"],
        "Date 2025-12-31 is less than the minimum 2026-01-01 (line 2, column V)"
    );
    assert_eq!(error_for(&t, "01.01.2027")["code"], "max");
}

/// A header-only mapping with lookups `customers` (key -> value) and `terms` (keys).
fn with_lookups(t: &TestDir, header: &str) {
    t.mapping_setup(&mapping(
        "",
        header,
        "",
        r#"[lookups]
customers = { file = "xref/customers.csv", key = "crm_id", value = "erp_id" }
customers_ci = { file = "xref/customers.csv", key = "crm_id", value = "erp_id", ignore_case = true }
terms = { file = "ref/terms.csv", key = "code" }
erp_customers = { file = "ref/erp_customers.csv", key = "id" }"#,
    ));
    t.write(
        "xref/customers.csv",
        "crm_id;erp_id;name\nC-1;CUST-0001;A\n C-2 ; CUST-0002 ;B\nC-3;CUST-0003;C\n",
    );
    t.write(
        "ref/terms.csv",
        "\u{feff}code,description\nN30,Net 30\nDUE,Due\n",
    );
    t.write("ref/erp_customers.csv", "id\nCUST-0001\nCUST-0002\n");
}

#[test]
fn lookup_replaces_the_value_and_a_missing_entry_is_an_error() {
    let t = TestDir::new();
    with_lookups(&t, "customer = { from = \"V\", lookup = \"customers\" }");
    // keys and values are trimmed in the lookup file; lookups are exact about case
    assert_eq!(
        values_of(&t, "customer", &["C-1", "C-2"]),
        vec!["CUST-0001", "CUST-0002"]
    );
    let e = error_for(&t, "c-1");
    assert_eq!(
        e,
        json!({"stage": "map", "document": "A1", "line": 2, "column": "V", "field": "customer",
               "value": "c-1", "code": "lookup",
               "message": "Customer code \"c-1\" has no entry in xref/customers.csv (line 2, column V)"})
    );
    // ignore_case = true
    let t = TestDir::new();
    with_lookups(&t, "customer = { from = \"V\", lookup = \"customers_ci\" }");
    assert_eq!(values_of(&t, "customer", &["c-1"]), vec!["CUST-0001"]);
}

#[test]
fn allowed_checks_after_lookup_against_a_list_or_a_lookups_keys() {
    let t = TestDir::new();
    with_lookups(
        &t,
        r#"customer = { from = "V", lookup = "customers", allowed = "erp_customers" }"#,
    );
    // C-3 maps to CUST-0003, which the ERP list does not have
    assert_eq!(values_of(&t, "customer", &["C-1"]), vec!["CUST-0001"]);
    let e = error_for(&t, "C-3");
    assert_eq!(e["code"], "not_allowed");
    assert_eq!(e["value"], "CUST-0003");
    assert_eq!(
        e["message"],
        "Customer code \"CUST-0003\" is not in ref/erp_customers.csv (line 2, column V)"
    );
    let t = header_only(
        "",
        "status = { from = \"V\", case = \"upper\", allowed = [\"OPEN\", \"PAID\"] }\naccount_no = { value = \"1\", allowed = [\"1\"] }",
    );
    assert_eq!(values_of(&t, "status", &["paid"]), vec!["PAID"]);
    let e = error_for(&t, "void");
    assert_eq!(
        e,
        json!({"stage": "validate", "document": "A1", "line": 2, "column": "V", "field": "status",
               "value": "VOID", "code": "not_allowed",
               "message": "Status code \"VOID\" is not one of OPEN, PAID (line 2, column V)"})
    );
}

#[test]
fn the_terms_message_of_spec_word_for_word() {
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    t.write(
        "ref/terms.csv",
        "code,description\nN30,Net 30\nDUE,Due on receipt\n",
    );
    let mut csv = String::from(INVOICE_HEADER);
    for n in 2..137 {
        csv.push_str(&format!("R{n};20.11.2026;C1;N30;1,00;ITEM;1,00\n"));
    }
    csv.push_str("INV0042;20.11.2026;C2;F48;1,00;ITEM;1,00\n");
    let c = t.check_file("INV_0042.csv", csv);
    assert_eq!(c.out.code, 1);
    assert_eq!(
        c.only_error(),
        &json!({"stage": "validate", "document": "INV0042", "line": 137, "column": "Terms", "field": "terms",
                "value": "F48", "code": "not_allowed",
                "message": "Terms code \"F48\" is not in ref/terms.csv (line 137, column Terms)"})
    );
    assert!(
        c.out.stdout.contains("  INV0042: Terms code \"F48\" is not in ref/terms.csv (line 137, column Terms) [not_allowed]"),
        "{}",
        c.out.stdout
    );
}

#[test]
fn labels_name_fields_in_messages() {
    // default: the field name's last dotted part, capitalised, underscores as spaces
    // (`bank.iban` is "Iban", not "Bank iban"); codes,
    // numbers and accounts are not called "code" twice
    let t = TestDir::new();
    with_lookups(
        &t,
        r#"terms_code = { from = "V", allowed = "terms" }
"bank.iban" = { from = "V", allowed = "terms" }
terms = { from = "V", allowed = "terms", label = "Payment terms" }"#,
    );
    let c = t.check_file("F_1.csv", "No;V\nA1;F48\n");
    let messages: Vec<&str> = c
        .errors
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        vec![
            "Terms code \"F48\" is not in ref/terms.csv (line 2, column V)",
            "Iban code \"F48\" is not in ref/terms.csv (line 2, column V)",
            "Payment terms code \"F48\" is not in ref/terms.csv (line 2, column V)",
        ]
    );
}

#[test]
fn every_failing_field_is_reported_and_one_failure_stops_that_field() {
    let t = header_only(
        "",
        r#"a = { from = "V", required = true }
b = { from = "V", type = "integer", min = 5 }
c = { from = "V", max_length = 1, pattern = "[0-9]" }"#,
    );
    let c = t.check_file("F_1.csv", "No;V\nA1;abc\n");
    // b fails at its type step (not also at min), c at max_length (not also at pattern)
    assert_eq!(c.codes(), vec!["type", "max_length"]);
}

#[test]
fn dotted_names_make_nested_objects() {
    let t = TestDir::new();
    t.mapping_setup(&mapping(
        "",
        r#""customer.id" = { from = "V" }
"customer.address.city" = { value = "Springfield" }
number = { from = "No" }
"customer.name" = { value = "ACME" }"#,
        r#""item.code" = { from = "V" }
"item.qty" = { value = 1 }"#,
        "",
    ));
    let c = t.check_file("F_1.csv", "No;V\n1;C-1\n");
    assert_eq!(
        c.doc("doc-1.json"),
        json!({
            "customer": {"id": "C-1", "address": {"city": "Springfield"}, "name": "ACME"},
            "number": "1",
            "lines": [{"item": {"code": "C-1", "qty": 1}}],
        })
    );
    // key order in the payload is the order of the mapping
    let text = &c.emitted["doc-1.json"];
    let pos = |s: &str| text.find(s).unwrap();
    assert!(pos("\"customer\"") < pos("\"number\"") && pos("\"number\"") < pos("\"lines\""));
    assert!(pos("\"address\"") < pos("\"name\""));
}

// ---------------------------------------------------------------- documents

/// A mapping with header `total` and lines `amount`, a sum check with `tolerance`.
fn sum_mapping(tolerance: &str) -> String {
    mapping(
        "",
        "total = { from = \"Total\", type = \"decimal\", scale = 2 }",
        "amount = { from = \"Amount\", type = \"decimal\" }",
        &format!(
            "[[checks]]\nkind = \"sum\"\nlines_field = \"amount\"\nequals = \"total\"\n{tolerance}"
        ),
    )
}

#[test]
fn sum_check_is_exact_and_honours_the_tolerance() {
    let t = TestDir::new();
    t.mapping_setup(&sum_mapping(""));
    // 0.1 + 0.2 is 0.3 exactly (in binary floating point it is not)
    let c = t.check_file(
        "F_1.csv",
        "No;Total;Amount\n1;0.30;0.1\n1;0.30;0.2\n2;-1.00;-0.5\n2;-1.00;\n2;-1.00;-0.5\n",
    );
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    let c = t.check_file("F_1.csv", "No;Total;Amount\n1;10.00;4\n1;10.00;6.005\n");
    assert_eq!(
        c.only_error(),
        &json!({"stage": "validate", "document": "1", "line": 2, "column": "Total", "field": "total",
                "value": "10.00", "code": "sum",
                "message": "Total is 10.000 but the lines' amount adds up to 10.005 (difference 0.005) (line 2, column Total)"})
    );
    // a difference up to the tolerance passes; beyond it fails
    let t = TestDir::new();
    t.mapping_setup(&sum_mapping("tolerance = \"0.01\""));
    let c = t.check_file(
        "F_1.csv",
        "No;Total;Amount\n1;10.00;4.99\n1;10.00;5.00\n2;10.00;4.98\n2;10.00;5\n",
    );
    assert_eq!(c.codes(), vec!["sum"]);
    assert_eq!(c.errors[0]["document"], "2");
    assert!(c.emitted.is_empty());
    // a line that failed its own checks does not produce a second, sum error
    let c = t.check_file("F_1.csv", "No;Total;Amount\n1;10.00;x\n1;10.00;5\n");
    assert_eq!(c.codes(), vec!["type"]);
}

#[test]
fn a_key_seen_again_with_other_header_values_is_a_duplicate() {
    let t = TestDir::new();
    t.mapping_setup(&mapping(
        "",
        "customer = { from = \"Cust\" }\ndate = { from = \"Date\" }",
        "item = { from = \"Item\" }",
        "",
    ));
    let c = t.check_file(
        "F_1.csv",
        "No;Cust;Date;Item\nA1;C1;2026-11-01;a\nA2;C2;2026-11-01;b\nA1;;2026-11-01;c\nA1;C9;2026-11-02;d\n",
    );
    assert_eq!(c.out.code, 1);
    // an empty repeat is fine; C9 on line 5 is not (the first difference is reported)
    assert_eq!(
        c.only_error(),
        &json!({"stage": "validate", "document": "A1", "line": 5, "column": "Cust", "value": "C9",
                "code": "duplicate",
                "message": "Document A1 appears again with Cust \"C9\" but its first row (line 2) has \"C1\" (line 5, column Cust)"})
    );
    // reject-file: nothing from this file, not even A2
    assert!(c.emitted.is_empty());
}

#[test]
fn header_fields_come_from_the_first_row_and_each_row_is_a_line() {
    let t = TestDir::new();
    t.mapping_setup(&mapping(
        "",
        "customer = { from = \"Cust\" }\nfirst_line = { template = \"{_line}\" }",
        "item = { from = \"Item\" }\nline = { template = \"{_line}\" }",
        "",
    ));
    let c = t.check_file("F_1.csv", "No;Cust;Item\nA1;C1;a\nA1;;b\nA1;C1;c\n");
    assert_eq!(
        c.doc("doc-A1.json"),
        json!({"customer": "C1", "first_line": "2",
               "lines": [{"item": "a", "line": "2"}, {"item": "b", "line": "3"}, {"item": "c", "line": "4"}]})
    );
    assert_eq!(c.report["counts"]["rows"], 3);
    assert_eq!(c.report["counts"]["documents"], 1);
}

#[test]
fn lines_first_puts_the_lines_before_the_header_fields() {
    // by default the lines come after every header field; `lines_first = true` puts
    // them first, e.g. for a schema that wants the items before the header (eConnect)
    let m = |doc_extra: &str, header_extra: &str| {
        format!(
            "name = \"f\"\nmatch = [\"F_*.csv\"]\ndocument_type = \"doc\"\n[source]\ndelimiter = \";\"\n[document]\nkey = [\"No\"]\nlines = \"tx.items.item\"\n{doc_extra}[header]\n{header_extra}\"tx.head.no\" = {{ from = \"No\" }}\n[lines]\nv = {{ from = \"V\" }}\n"
        )
    };
    let t = TestDir::new();
    t.mapping_setup(&m("", ""));
    let c = t.check_file("F_1.csv", "No;V\n1;a\n1;b\n");
    let text = &c.emitted["doc-1.json"];
    assert!(text.find("\"head\"").unwrap() < text.find("\"items\"").unwrap());
    t.mapping_setup(&m("lines_first = true\n", ""));
    let c = t.check_file("F_1.csv", "No;V\n1;a\n1;b\n");
    let text = &c.emitted["doc-1.json"];
    assert!(text.find("\"items\"").unwrap() < text.find("\"head\"").unwrap());
    assert_eq!(
        c.doc("doc-1.json"),
        json!({"tx": {"items": {"item": [{"v": "a"}, {"v": "b"}]}, "head": {"no": "1"}}})
    );
    // a header field where the lines go would lose one of them: a config error
    t.mapping_setup(&m("", "\"tx.items\" = { value = \"x\" }\n"));
    let out = t.run(&["check"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("would be written to the same place in the payload (tx.items)"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_row_without_its_key_is_its_own_invalid_document() {
    let t = header_only("", "number = { from = \"No\" }\nv = { from = \"V\" }");
    let c = t.check_file("F_1.csv", "No;V\nA1;x\n  ;y\nA2;z\n");
    assert_eq!(c.report["counts"]["documents"], 3);
    assert_eq!(
        c.only_error(),
        &json!({"stage": "map", "line": 3, "column": "No", "value": "", "code": "required",
                "message": "The row has no document key: column No is empty (line 3, column No)"})
    );
}

#[test]
fn a_value_and_a_nested_field_under_it_are_a_config_error() {
    let t = TestDir::new();
    t.mapping_setup(&mapping(
        "",
        "number = { from = \"No\" }\ncustomer = { from = \"C\" }\n\"customer.tax_id\" = { from = \"T\" }",
        "",
        "",
    ));
    let out = t.run(&["check"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("header.customer.tax_id and header.customer"),
        "{}",
        out.stderr
    );
}

#[test]
fn line_fields_made_only_of_constants_still_make_one_line_per_row() {
    let t = TestDir::new();
    t.mapping_setup(&mapping(
        "",
        "number = { from = \"No\" }",
        "kind = { value = \"service\" }",
        "",
    ));
    let c = t.check_file("F_1.csv", "No;V\n1;a\n1;b\n2;c\n");
    assert_eq!(
        c.doc("doc-1.json"),
        json!({"number": "1", "lines": [{"kind": "service"}, {"kind": "service"}]})
    );
}
