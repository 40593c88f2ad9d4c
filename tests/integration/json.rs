//! JSON sources (issue #15), through the real binary: newline-delimited records, one
//! value with an array of records under a pointer, exact numbers, lines, and the errors
//! of files that are not JSON or not shaped as the mapping says.

use crate::util::TestDir;
use serde_json::Value;

/// An invoices mapping for JSON; `source` is the rest of its `[source]` table.
fn mapping(source: &str) -> String {
    format!(
        r#"name = "json-invoices"
match = ["*.json", "*.jsonl", "*.ndjson"]
document_type = "sales_invoice"

[source]
format = "json"
lines = "lines"
{source}

[document]
key = ["number"]

[header]
number   = {{ from = "number", required = true }}
date     = {{ from = "date", type = "date" }}
customer = {{ from = "customer/id", required = true }}
big      = {{ from = "reference" }}
paid     = {{ from = "paid", type = "boolean" }}
currency = {{ from = "currency", default = "EUR" }}
total    = {{ from = "total", type = "decimal" }}

[lines]
sku    = {{ from = "sku", required = true }}
amount = {{ from = "amount", type = "decimal" }}

[[checks]]
kind = "sum"
lines_field = "amount"
equals = "total"
"#
    )
}

fn error_rows(c: &crate::util::Checked, doc: &str) -> Vec<Value> {
    c.errors
        .iter()
        .filter(|e| e["document"] == doc)
        .cloned()
        .collect()
}

#[test]
fn newline_delimited_records_map_with_exact_numbers() {
    let t = TestDir::new();
    t.mapping_setup(&mapping(""));
    let text = concat!(
        r#"{"number": "INV-1", "date": "2026-11-20", "customer": {"id": "C-17", "name": "Acme"}, "reference": 12345678901234567890, "paid": true, "currency": null, "total": 1234.6, "lines": [{"sku": "A", "amount": 0.1}, {"sku": "B", "amount": 1234.50}]}"#,
        "\n\n",
        r#"{"number": "INV-2", "customer": {"id": "C-18"}, "total": 0.3, "lines": [{"sku": "C", "amount": 0.1}, {"sku": "D", "amount": 0.2}]}"#,
        "\n",
    );
    let c = t.check_file("orders.ndjson", text);
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    assert!(
        c.out
            .stdout
            .contains("2 rows, 2 documents, 2 valid, 0 invalid"),
        "{}",
        c.out.stdout
    );
    let one = c.doc("sales_invoice-INV-1.json");
    assert_eq!(one["customer"], "C-17");
    assert_eq!(
        one["big"], "12345678901234567890",
        "a JSON number's own text"
    );
    assert_eq!(one["paid"], true);
    assert_eq!(
        one["currency"], "EUR",
        "null is no value: the default applies"
    );
    assert_eq!(one["total"], "1234.6");
    assert_eq!(one["lines"][0]["amount"], "0.1");
    assert_eq!(
        one["lines"][1]["amount"], "1234.50",
        "as written, never via f64"
    );
    let two = c.doc("sales_invoice-INV-2.json");
    assert_eq!(two["lines"][1]["amount"], "0.2");
}

#[test]
fn a_pointer_names_the_array_of_records_in_one_value() {
    let t = TestDir::new();
    t.mapping_setup(&mapping("record = \"/data/invoices\""));
    let text = r#"{
  "meta": {"exported": "2026-11-20T06:00:00Z", "invoices": "not these"},
  "data": {
    "count": 2,
    "invoices": [
      {
        "number": "INV-1",
        "customer": {"id": "C-17"},
        "total": 3,
        "lines": [
          {"sku": "A", "amount": 1},
          {"sku": "B", "amount": "two"}
        ]
      },
      {"number": "INV-2", "customer": {"id": "C-18"}, "total": 1, "lines": [{"sku": "C", "amount": 1}]}
    ]
  },
  "next": null
}
"#;
    let c = t.check_file("export.json", text);
    assert_eq!(c.out.code, 1);
    assert_eq!(c.report["counts"]["documents"], 2);
    let e = error_rows(&c, "INV-1");
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0]["code"], "type");
    assert_eq!(e[0]["line"], 12, "the line of the value");
    assert_eq!(e[0]["column"], "amount");
    assert_eq!(e[0]["value"], "two");
    assert!(error_rows(&c, "INV-2").is_empty());
}

#[test]
fn problems_name_the_line_where_the_record_starts() {
    let t = TestDir::new();
    t.mapping_setup(&mapping("record = \"\""));
    let text = "[\n  {\"number\": \"INV-1\", \"customer\": {\"id\": \"C\"}, \"lines\": []},\n  {\"number\": \"INV-2\",\n   \"lines\": []}\n]\n";
    let c = t.check_file("all.json", text);
    let e = c.only_error();
    assert_eq!(e["document"], "INV-2");
    assert_eq!(e["code"], "required");
    assert_eq!(e["line"], 3);
    assert_eq!(e["column"], "customer/id");
}

#[test]
fn malformed_json_is_one_error_with_line_and_character() {
    let t = TestDir::new();
    t.mapping_setup(&mapping("record = \"/invoices\""));
    let good = "{\"invoices\": [\n{\"number\": \"INV-1\", \"customer\": {\"id\": \"C\"}, \"lines\": []},\n";
    let cases: Vec<(&str, String, u64, &str)> = vec![
        (
            "cut.json",
            format!("{good}{{\"number\": \"INV-2\", \"cust"),
            3,
            "is not closed before the end of the file",
        ),
        (
            "comma.json",
            format!("{good}{{\"number\" \"INV-2\"}}]}}"),
            3,
            "Expected `:`",
        ),
        (
            "after.json",
            format!("{good}{{\"number\": \"INV-2\", \"customer\": {{\"id\": \"C\"}}}}]}}\n}}"),
            4,
            "more after the end",
        ),
        (
            "nul.json",
            format!("{good}{{\"number\": \"INV\u{0}2\"}}]}}"),
            3,
            "NUL",
        ),
        ("open.json", good.to_string(), 3, "cut off"),
    ];
    for (name, text, line, says) in cases {
        let c = t.check_file(name, &text);
        assert_eq!(c.out.code, 1, "{name}");
        let e = c.only_error();
        assert_eq!(e["stage"], "read", "{name}");
        assert_eq!(e["code"], "malformed", "{name}: {e:#?}");
        assert_eq!(e["line"], line, "{name}: {e:#?}");
        assert!(e["document"].is_null(), "{name}");
        let msg = e["message"].as_str().unwrap();
        assert!(
            msg.starts_with("The file is not valid JSON"),
            "{name}: {msg}"
        );
        assert!(msg.contains(says), "{name}: {msg}");
        assert!(msg.contains("character"), "{name}: {msg}");
        // nothing of a file that is not whole counts as valid
        assert_eq!(
            c.report["counts"]["documents"],
            c.report["counts"]["invalid"]
        );
    }
}

#[test]
fn a_pointer_that_matches_nothing_says_what_is_there() {
    let t = TestDir::new();
    t.mapping_setup(&mapping("record = \"/invoices\""));
    let c = t.check_file("wrong.json", "{\"data\": [], \"meta\": {}}");
    let e = c.only_error();
    assert_eq!(e["code"], "malformed");
    assert_eq!(
        e["message"],
        "The record pointer \"/invoices\" matches nothing in the file: the object at the top level (line 1) has no member \"invoices\"; its members are \"data\", \"meta\" (line 1, character 24)"
    );
    let c = t.check_file("object.json", "{\"invoices\": {\"number\": \"INV-1\"}}");
    let e = c.only_error();
    assert!(
        e["message"].as_str().unwrap().starts_with(
            "The record pointer \"/invoices\" names an object (line 1), not an array of records"
        ),
        "{e:#?}"
    );
    let c = t.check_file("number.json", "[42]");
    let e = c.only_error();
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("the file's top level is an array"),
        "{e:#?}"
    );
}

#[test]
fn records_and_values_of_the_wrong_shape_are_errors_of_their_record() {
    let t = TestDir::new();
    t.mapping_setup(
        &mapping("").replace("[document]", "[document]\non_invalid = \"skip-document\""),
    );
    let text = concat!(
        r#"{"number": "INV-1", "customer": 42, "lines": []}"#,
        "\n",
        r#"[{"number": "INV-2"}]"#,
        "\n",
        r#"{"number": "INV-3", "customer": {"id": {"erp": 1}}, "lines": [{"sku": "A"}, 7]}"#,
        "\n",
        r#"{"number": "INV-4", "customer": {"id": "C"}, "lines": {"sku": "A"}}"#,
        "\n",
        r#"{"number": "INV-1", "customer": {"id": "C"}, "lines": []}"#,
        "\n",
    );
    let c = t.check_file("shapes.ndjson", text);
    assert_eq!(c.out.code, 1);
    let e = error_rows(&c, "INV-1");
    let codes: Vec<&str> = e.iter().map(|e| e["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["type", "required", "duplicate"], "{e:#?}");
    assert_eq!(e[0]["message"], "customer is a number, not an object: customer/id cannot be read (line 1, column customer/id)");
    assert_eq!(e[2]["line"], 5);
    let not_object: Vec<&Value> = c.errors.iter().filter(|e| e["line"] == 2).collect();
    assert!(
        not_object[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("A record must be an object, but this one is an array: a file that is one array of records needs `record = \"\"`"),
        "{not_object:#?}"
    );
    let e = error_rows(&c, "INV-3");
    let msgs: Vec<&str> = e.iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("customer/id is an object, not a value")),
        "{msgs:#?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("Line 2 of the record (lines[1]) is a number, not an object")),
        "{msgs:#?}"
    );
    let e = error_rows(&c, "INV-4");
    assert_eq!(
        e[0]["message"],
        "lines is an object, not an array of lines (line 4, column lines)"
    );
}

#[test]
fn a_json_export_goes_through_a_run() {
    let t = TestDir::new();
    t.mapping_setup(&mapping("record = \"/invoices\""));
    t.write(
        "drop/inbox/inv.json",
        r#"{"invoices": [{"number": "INV-1", "customer": {"id": "C"}, "total": 0.1, "lines": [{"sku": "A", "amount": 0.1}]}]}"#,
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let sent = t.ls("drop/outbox");
    assert_eq!(sent.len(), 1);
    let doc: Value = serde_json::from_str(&t.read(&format!("drop/outbox/{}", sent[0]))).unwrap();
    assert_eq!(doc["total"], "0.1");
    let done = t.ls("drop/done");
    assert_eq!(done.len(), 1);
}

#[test]
fn a_key_that_comes_back_far_apart_is_a_duplicate_on_its_record() {
    let t = TestDir::new();
    t.mapping_setup(&mapping(""));
    let mut text = String::new();
    for i in 0..50 {
        text.push_str(&format!(
            "{{\"number\": \"INV-{i}\", \"customer\": {{\"id\": \"C\"}}, \"lines\": []}}\n"
        ));
    }
    text.push_str("{\"number\": \"INV-3\", \"customer\": {\"id\": \"C\"}, \"lines\": []}\n");
    t.write("in/far.ndjson", &text);
    // a key window of 4: the repeat is found only at the end, and the file read again
    let out = t
        .cmd()
        .env("ERPDROP_KEY_WINDOW", "4")
        .args(["validate", "in/far.ndjson", "--report", "rep"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report = t.read_json("rep/far.ndjson.errors.json");
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["code"], "duplicate");
    assert_eq!(errors[0]["line"], 51);
    assert_eq!(errors[0]["document"], "INV-3");
    assert!(errors[0]["message"]
        .as_str()
        .unwrap()
        .contains("the one on line 4"));
    assert_eq!(report["counts"]["documents"], 51);
}

#[test]
fn a_windows_1251_export_is_decoded_as_the_mapping_says() {
    let t = TestDir::new();
    t.mapping_setup(&mapping("encoding = \"windows-1251\""));
    let text = "{\"number\": \"ЗК-1\", \"customer\": {\"id\": \"ООО Ромашка\"}, \"lines\": [{\"sku\": \"Чай\", \"amount\": 10}]}\n";
    let (bytes, _, bad) = encoding_rs::WINDOWS_1251.encode(text);
    assert!(!bad);
    let c = t.check_file("k.ndjson", &bytes);
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    let doc = c.doc("sales_invoice-ЗК-1.json");
    assert_eq!(doc["customer"], "ООО Ромашка");
    // the same bytes read as UTF-8 are an encoding error, never replacement characters
    t.mapping_setup(&mapping(""));
    let c = t.check_file("k.ndjson", &bytes);
    let e = c.only_error();
    assert_eq!(e["code"], "encoding");
    assert_eq!(e["line"], 1);
}

#[test]
fn a_web_shop_order_export_validates_and_emits() {
    let t = TestDir::new();
    t.copy_from_repo("fixtures/json");
    let out = t.run(&["validate", "--emit", "emit"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("3 rows, 3 documents, 3 valid"),
        "{}",
        out.stdout
    );
    // `#` is not kept in a file name
    let doc = |n: &str| -> Value {
        let name = t
            .ls("emit")
            .into_iter()
            .find(|f| f.starts_with(&format!("sales_order-_{n}-")));
        t.read_json(&format!("emit/{}", name.expect("emitted")))
    };
    let one = doc("1001");
    assert_eq!(one["customer"], "anna.schmidt@example.de");
    assert_eq!(one["created"], "2026-11-20T08:15:02+01:00");
    assert_eq!(one["total"], "59.90");
    assert_eq!(one["lines"][1]["amount"], "20.00");
    let two = doc("1002");
    assert_eq!(two["country"], "FR");
    assert_eq!(two["total"], "0.10");
    assert_eq!(two["note"], "Geschenk – bitte ohne Rechnung");
    let three = doc("1003");
    assert_eq!(three["country"], "DE", "a null address: the default");
    assert_eq!(three["lines"][0]["quantity"], 3);
}

#[test]
fn a_skip_rule_leaves_records_out_and_a_trailer_is_refused() {
    let t = TestDir::new();
    t.mapping_setup(&format!(
        "{}\n[[skip]]\ncolumn = \"meta/state\"\nequals = [\"CANCELLED\"]\n",
        mapping("")
    ));
    let text = concat!(
        r#"{"number": "INV-1", "customer": {"id": "C"}, "meta": {"state": "OPEN"}, "total": 0.1, "lines": [{"sku": "A", "amount": 0.1}]}"#,
        "\n",
        r#"{"number": "INV-2", "customer": {"id": "C"}, "meta": {"state": "CANCELLED"}, "total": 9, "lines": [{"sku": "B", "amount": 1}]}"#,
        "\n",
        r#"{"number": "INV-3", "customer": {"id": "C"}, "total": 0.2, "lines": [{"sku": "C", "amount": 0.2}]}"#,
        "\n",
    );
    let c = t.check_file("orders.ndjson", text);
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    assert_eq!(c.report["counts"]["documents"], 2, "{}", c.report);
    assert_eq!(c.report["counts"]["skipped"], 1, "{}", c.report);
    assert!(
        c.emitted.keys().all(|n| !n.contains("INV-2")),
        "{:?}",
        c.emitted
    );
    // JSON records have no trailer row
    let t = TestDir::new();
    t.mapping_setup(&mapping("\n[source.trailer]\ncount = \"n\""));
    let check = t.run(&["check"]);
    assert_eq!(check.code, 2, "{check:?}");
    assert!(
        check.stderr.contains("key source.trailer")
            && check.stderr.contains("JSON records have no trailer row"),
        "{}",
        check.stderr
    );
}

/// A mapping whose separators are a German export's, for its amounts written as
/// strings (`"1.234,50"`), and whose fields also read JSON numbers.
const GERMAN: &str = r#"name = "json-german"
match = ["*.json", "*.ndjson"]
document_type = "sales_invoice"

[source]
format = "json"
lines = "lines"
decimal_separator = ","
thousands_separator = "."
RECORD

[document]
key = ["number"]

[header]
number = { from = "number", required = true }
total  = { from = "total", type = "decimal" }
units  = { from = "units", type = "integer" }
net    = { from = "net", type = "decimal", scale = 2, rounding = "error" }
label  = { from = "total" }

[lines]
sku    = { from = "sku", required = true }
amount = { from = "amount", type = "decimal" }
qty    = { from = "qty", type = "integer" }
"#;

/// The payloads in the outbox.
fn sent(t: &TestDir) -> Vec<String> {
    t.ls("drop/outbox")
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .collect()
}

/// The payload of document `number` in the outbox.
fn sent_doc(t: &TestDir, number: &str) -> Value {
    let name = sent(t)
        .into_iter()
        .find(|n| n.contains(number))
        .unwrap_or_else(|| panic!("{number} was not sent: {:?}", sent(t)));
    t.read_json(&format!("drop/outbox/{name}"))
}

/// Two records, numbers and German strings side by side, in the header and the lines.
fn german_records(first: u32) -> [String; 2] {
    let (a, b) = (first, first + 1);
    [
        format!(
            r#"{{"number": "INV-{a}", "total": 1234.5, "units": 12, "net": 0.1, "lines": [{{"sku": "A", "amount": 0.1, "qty": 12}}, {{"sku": "B", "amount": "1.234,50", "qty": "1.000"}}, {{"sku": "D", "amount": 1.250, "qty": 1.000}}]}}"#
        ),
        format!(
            r#"{{"number": "INV-{b}", "total": "1.234,50", "units": "1.000", "net": 12, "lines": [{{"sku": "C", "amount": 12, "qty": 1000}}]}}"#
        ),
    ]
}

#[test]
fn json_numbers_are_numbers_whatever_the_separators_of_strings() {
    let t = TestDir::new();
    t.mapping_setup(&GERMAN.replace("RECORD", ""));
    let [one, two] = german_records(1);
    t.write("drop/inbox/orders.ndjson", format!("{one}\n{two}\n"));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let doc = |n: &str| sent_doc(&t, n);
    let check = |one: Value, two: Value| {
        // JSON numbers: their decimal, never read with "," and "."
        assert_eq!(one["total"], "1234.5", "{one}");
        assert_eq!(one["units"], 12, "{one}");
        assert_eq!(one["net"], "0.10", "{one}");
        assert_eq!(
            one["label"], "1234.5",
            "a string field keeps the number's text"
        );
        assert_eq!(one["lines"][0]["amount"], "0.1", "{one}");
        assert_eq!(one["lines"][0]["qty"], 12, "{one}");
        // strings: the mapping's separators
        assert_eq!(one["lines"][1]["amount"], "1234.50", "{one}");
        assert_eq!(one["lines"][1]["qty"], 1000, "{one}");
        // a number with three decimals is no thousands group
        assert_eq!(one["lines"][2]["amount"], "1.250", "{one}");
        assert_eq!(one["lines"][2]["qty"], 1, "{one}");
        assert_eq!(two["total"], "1234.50", "{two}");
        assert_eq!(two["units"], 1000, "{two}");
        assert_eq!(two["net"], "12.00", "{two}");
        assert_eq!(two["label"], "1.234,50", "{two}");
        assert_eq!(two["lines"][0]["amount"], "12", "{two}");
        assert_eq!(two["lines"][0]["qty"], 1000, "{two}");
    };
    check(doc("INV-1"), doc("INV-2"));

    // the same under a `record` pointer, in one value
    let t = TestDir::new();
    t.mapping_setup(&GERMAN.replace("RECORD", "record = \"/data/invoices\""));
    let [one, two] = german_records(3);
    t.write(
        "drop/inbox/export.json",
        format!("{{\"data\": {{\"invoices\": [\n{one},\n{two}\n]}}}}\n"),
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    let doc = |n: &str| sent_doc(&t, n);
    check(doc("INV-3"), doc("INV-4"));
}

#[test]
fn a_german_exports_rejected_records_come_back_with_their_numbers() {
    let t = TestDir::new();
    t.mapping_setup(&GERMAN.replace("RECORD", "").replace(
        "key = [\"number\"]",
        "key = [\"number\"]\non_invalid = \"skip-document\"",
    ));
    // INV-2 and INV-4 have a line without its sku
    let records = [
        r#"{"number": "INV-1", "total": 0.1, "lines": [{"sku": "A", "amount": 0.1}]}"#,
        r#"{"number": "INV-2", "total": 1234.5, "units": 1.000, "lines": [{"amount": 1234.5, "qty": 12}]}"#,
        r#"{"number": "INV-3", "total": "1.234,50", "lines": [{"sku": "C", "amount": "1.234,50"}]}"#,
        r#"{"number": "INV-4", "total": "1.000", "lines": [{"amount": 0.1}, {"sku": "E", "amount": "1.000", "qty": "1.000"}]}"#,
        r#"{"number": "INV-5", "total": 12, "lines": [{"sku": "F", "amount": 12}]}"#,
    ];
    t.write("drop/inbox/orders.ndjson", records.join("\n") + "\n");
    assert_eq!(t.run(&["run"]).code, 1);
    let doc = |n: &str| sent_doc(&t, n);
    assert_eq!(sent(&t).len(), 3, "{:?}", sent(&t));
    assert_eq!(doc("INV-1")["total"], "0.1");
    assert_eq!(doc("INV-3")["lines"][0]["amount"], "1234.50");
    assert_eq!(doc("INV-5")["total"], "12");
    let rejected = t.read("drop/failed/orders.rejected.ndjson");
    assert_eq!(rejected.lines().count(), 2, "{rejected}");
    assert!(
        rejected.contains(r#""amount": 1234.5"#),
        "as written: {rejected}"
    );
    t.write(
        "drop/inbox/orders.rejected.ndjson",
        rejected
            .replace(r#"[{"amount": 1234.5"#, r#"[{"sku": "B", "amount": 1234.5"#)
            .replace(r#"[{"amount": 0.1}"#, r#"[{"sku": "D", "amount": 0.1}"#),
    );
    let out = t.run(&["run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(sent(&t).len(), 5, "only INV-2 and INV-4 went again");
    let two = doc("INV-2");
    assert_eq!(two["total"], "1234.5", "{two}");
    assert_eq!(two["units"], 1, "{two}");
    assert_eq!(two["lines"][0]["amount"], "1234.5", "{two}");
    assert_eq!(two["lines"][0]["qty"], 12, "{two}");
    let four = doc("INV-4");
    assert_eq!(four["total"], "1000", "{four}");
    assert_eq!(four["lines"][0]["amount"], "0.1", "{four}");
    assert_eq!(four["lines"][1]["amount"], "1000", "{four}");
    assert_eq!(four["lines"][1]["qty"], 1000, "{four}");
}
