//! Configuration errors: erpdrop.toml, mapping files and lookup files. Every problem is
//! exit code 2 and names the file, the line and the key; `erpdrop check` lists them all
//! and loads every lookup; nothing is touched.
use crate::util::{TestDir, INVOICE_HEADER, INVOICE_MAPPING};

/// INVOICE_MAPPING with one piece of text replaced (which must be there).
fn mapping_with(from: &str, to: &str) -> String {
    assert!(
        INVOICE_MAPPING.contains(from),
        "{from:?} not in the mapping"
    );
    INVOICE_MAPPING.replacen(from, to, 1)
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not found"))
        + 1
}

/// Runs `check` and `validate`, both must fail with exit 2; returns check's stderr.
fn config_error(t: &TestDir) -> String {
    let check = t.run(&["check"]);
    assert_eq!(check.code, 2, "check: {check:?}");
    assert!(check.stdout.is_empty(), "{check:?}");
    let validate = t.run(&["validate", "--report", "rep", "--emit", "em"]);
    assert_eq!(validate.code, 2, "validate: {validate:?}");
    assert_eq!(validate.stderr, check.stderr);
    // nothing was touched or written
    assert!(!t.exists("rep") && !t.exists("em"), "outputs written");
    assert!(!t.exists("drop/.erpdrop") && !t.exists("drop/failed"));
    check.stderr
}

/// A setup whose mapping is INVOICE_MAPPING with one replacement; returns the mapping.
fn broken(t: &TestDir, from: &str, to: &str) -> String {
    let m = mapping_with(from, to);
    t.invoice_setup(&m);
    t.write(
        "drop/inbox/INV_1.csv",
        "No;Date;Cust;Terms;Total;Item;Amount\n1;01.02.2026;C1;N30;1,00;x;1,00\n",
    );
    m
}

#[test]
fn a_misspelt_type_names_file_line_and_key() {
    let t = TestDir::new();
    let m = broken(
        &t,
        r#"type = "decimal", scale = 2 }"#,
        r#"type = "decimall", scale = 2 }"#,
    );
    let err = config_error(&t);
    let line = line_of(&m, "decimall");
    assert_eq!(
        err.trim_end(),
        format!(
            "error: ./mappings/inv.toml, line {line}, key header.total.type: unknown variant \"decimall\", expected one of \"string\", \"integer\", \"decimal\", \"date\", \"datetime\", \"boolean\""
        )
    );
    // the inbox is as it was
    assert_eq!(t.ls("drop/inbox"), vec!["INV_1.csv"]);
}

#[test]
fn an_unknown_key_in_a_field_is_an_error_not_ignored() {
    let t = TestDir::new();
    let m = broken(
        &t,
        "required = true, max_length = 10",
        "requird = true, max_length = 10",
    );
    let err = config_error(&t);
    let line = line_of(&m, "requird");
    assert!(
        err.contains(&format!(
            "mappings/inv.toml, line {line}, key header.number.requird: unknown field \"requird\", expected one of"
        )),
        "{err}"
    );
    assert!(!err.contains("must be quoted"), "{err}");
}

#[test]
fn an_unquoted_dotted_field_name_gets_a_hint() {
    let t = TestDir::new();
    let m = broken(
        &t,
        "total    = {",
        "ship.city = { from = \"Cust\" }\ntotal    = {",
    );
    let err = config_error(&t);
    let line = line_of(&m, "ship.city");
    assert!(
        err.contains(&format!(
            "line {line}, key header.ship.city: unknown field \"city\""
        )),
        "{err}"
    );
    assert!(
        err.contains("a field name with dots must be quoted: \"ship.city\" = { ... }"),
        "{err}"
    );
    // deeper: the whole name is suggested
    let t = TestDir::new();
    broken(
        &t,
        "amount = {",
        "vat.rate.code = { value = \"S\" }\namount = {",
    );
    assert!(
        config_error(&t).contains("key lines.vat.rate: unknown field \"rate\"")
            && config_error(&t).contains("quoted: \"vat.rate.code\" = { ... }")
    );
    // a quoted dotted name with a misspelt option is just that
    let t = TestDir::new();
    broken(
        &t,
        "amount = {",
        "\"vat.rate\" = { frm = \"Amount\" }\namount = {",
    );
    let err = config_error(&t);
    assert!(err.contains("unknown field \"frm\""), "{err}");
    assert!(!err.contains("must be quoted"), "{err}");
}

#[test]
fn wrong_value_types_name_the_key() {
    let t = TestDir::new();
    let m = broken(&t, "max_length = 10", "max_length = \"ten\"");
    let err = config_error(&t);
    assert!(
        err.contains(&format!(
            "line {}, key header.number.max_length: invalid type: string \"ten\", expected usize",
            line_of(&m, "\"ten\"")
        )),
        "{err}"
    );

    let t = TestDir::new();
    broken(&t, "name = \"inv\"", "name = \"inv\"");
    t.write(
        "erpdrop.toml",
        "mappings = [\"mappings/*.toml\"]\n[scan]\nsettle_seconds = \"5\"\n",
    );
    let err = config_error(&t);
    assert_eq!(
        err.trim_end(),
        "error: erpdrop.toml, line 3, key scan.settle_seconds: invalid type: string \"5\", expected u64"
    );
}

#[test]
fn unknown_keys_and_values_in_erpdrop_toml() {
    let t = TestDir::new();
    broken(&t, "name = \"inv\"", "name = \"inv\"");
    t.write(
        "erpdrop.toml",
        "mappings = [\"mappings/*.toml\"]\n[scan]\nsettle_seconds = 0\nsettle = 1\n",
    );
    assert_eq!(
        config_error(&t).trim_end(),
        "error: erpdrop.toml, line 4, key scan.settle: unknown field \"settle\", expected \"settle_seconds\" or \"ready_marker\""
    );
    t.write(
        "erpdrop.toml",
        "mappings = [\"mappings/*.toml\"]\n\n[target]\nformat = \"yaml\"\n",
    );
    let err = config_error(&t);
    assert!(
        err.contains("erpdrop.toml, line 4, key target.format: unknown variant \"yaml\""),
        "{err}"
    );
    t.write("erpdrop.toml", "mappings = [\"mappings/*.toml\"\n");
    let err = config_error(&t);
    assert!(err.starts_with("error: erpdrop.toml, line "), "{err}");
    assert_eq!(err.lines().count(), 1, "one line per problem: {err}");
    t.write("erpdrop.toml", "mappings = [\"maps/*.toml\"]\n");
    assert_eq!(
        config_error(&t).trim_end(),
        "error: erpdrop.toml, line 1, key mappings[0]: no mapping file matches \"maps/*.toml\""
    );
}

#[test]
fn a_lookup_name_that_does_not_exist() {
    let t = TestDir::new();
    let m = broken(&t, "lookup = \"customers\"", "lookup = \"customerz\"");
    assert_eq!(
        config_error(&t).trim_end(),
        format!(
            "error: ./mappings/inv.toml, line {}, key header.customer.lookup: there is no lookup named \"customerz\" in [lookups] (known: customers, terms)",
            line_of(&m, "customerz")
        )
    );
    let t = TestDir::new();
    let m = broken(&t, "allowed = \"terms\"", "allowed = \"term\"");
    assert!(config_error(&t).contains(&format!(
        "line {}, key header.terms.allowed: there is no lookup named \"term\"",
        line_of(&m, "\"term\"")
    )));
}

#[test]
fn a_lookup_without_a_value_column_cannot_replace() {
    let t = TestDir::new();
    broken(&t, "lookup = \"customers\"", "lookup = \"terms\"");
    let err = config_error(&t);
    assert!(
        err.contains("key header.customer.lookup: lookup \"terms\" has no `value` column, so it cannot replace a value (use `allowed = \"terms\"` to only check)"),
        "{err}"
    );
}

#[test]
fn a_bad_regular_expression() {
    let t = TestDir::new();
    let m = broken(
        &t,
        "max_length = 10",
        "max_length = 10, pattern = \"([A-Z\"",
    );
    assert_eq!(
        config_error(&t).trim_end(),
        format!(
            "error: ./mappings/inv.toml, line {}, key header.number.pattern: \"([A-Z\" is not a valid regular expression: unclosed character class",
            line_of(&m, "pattern")
        )
    );
}

#[test]
fn date_formats_chrono_rejects_or_that_cannot_read_a_date() {
    let t = TestDir::new();
    let m = broken(
        &t,
        "type = \"date\" }",
        "type = \"date\", format = \"%d.%m.%Q\" }",
    );
    assert_eq!(
        config_error(&t).trim_end(),
        format!(
            "error: ./mappings/inv.toml, line {}, key header.date.format: \"%d.%m.%Q\" is not a valid date format (chrono strftime syntax, e.g. \"%d.%m.%Y\")",
            line_of(&m, "%Q")
        )
    );
    let t = TestDir::new();
    broken(
        &t,
        "type = \"date\" }",
        "type = \"date\", format = \"%d.%m\" }",
    );
    assert!(config_error(&t).contains(
        "key header.date.format: \"%d.%m\" cannot read a full date: it needs day, month and year"
    ));
    let t = TestDir::new();
    let m = broken(
        &t,
        "date_format = \"%d.%m.%Y\"",
        "date_format = \"%d.%m.%Y%\"",
    );
    assert!(config_error(&t).contains(&format!(
        "line {}, key source.date_format: \"%d.%m.%Y%\" is not a valid date format",
        line_of(&m, "date_format")
    )));
}

#[test]
fn bad_source_options() {
    for (from, to, key, msg) in [
        (
            "delimiter = \";\"",
            "delimiter = \";;\"",
            "source.delimiter",
            "delimiter \";;\" must be a single one-byte character",
        ),
        (
            "delimiter = \";\"",
            "delimiter = \";\"\nencoding = \"klingon\"",
            "source.encoding",
            "unknown encoding \"klingon\" (e.g. utf-8, utf-16, windows-1251, windows-1252, iso-8859-1, cp437)",
        ),
        (
            "decimal_separator = \",\"",
            "decimal_separator = \",,\"",
            "source.decimal_separator",
            "\",,\" must be a single character",
        ),
        (
            "key = [\"No\"]",
            "key = [\"No\"]\non_invalid = \"skip\"",
            "document.on_invalid",
            "unknown variant \"skip\", expected \"reject-file\" or \"skip-document\"",
        ),
        (
            "key = [\"No\"]",
            "key = []",
            "document.key",
            "`key` needs at least one column",
        ),
    ] {
        let t = TestDir::new();
        let m = broken(&t, from, to);
        let line = line_of(&m, to.lines().last().unwrap());
        let err = config_error(&t);
        assert!(
            err.contains(&format!("line {line}, key {key}: {msg}")),
            "{to}: {err}"
        );
    }
}

#[test]
fn bad_field_definitions() {
    for (from, to, key, msg) in [
        (
            "item   = { from = \"Item\", required = true }",
            "item   = { from = \"Item\", value = \"x\" }",
            "lines.item.from",
            "a field takes exactly one of `from`, `value` or `template`",
        ),
        (
            "item   = { from = \"Item\", required = true }",
            "item   = { from = \"Item\", scale = 2 }",
            "lines.item.scale",
            "`scale` needs type = \"decimal\"",
        ),
        (
            "item   = { from = \"Item\", required = true }",
            "item   = { from = \"Item\", min = 1 }",
            "lines.item.min",
            "`min` needs type integer, decimal, date or datetime",
        ),
        (
            "item   = { from = \"Item\", required = true }",
            "item   = { from = \"Item\", truncate = true }",
            "lines.item.truncate",
            "`truncate` needs `max_length`",
        ),
        (
            "item   = { from = \"Item\", required = true }",
            "item   = { template = \"{Item} {_nope}\" }",
            "lines.item.template",
            "unknown built-in {_nope} (there are {_file}, {_line}, {_run})",
        ),
        (
            "amount = { from = \"Amount\", type = \"decimal\", scale = 2 }",
            "amount = { from = \"Amount\", type = \"decimal\", scale = 2, min = \"zero\" }",
            "lines.amount.min",
            "\"zero\" is not a valid min for this field's type",
        ),
        (
            "amount = { from = \"Amount\", type = \"decimal\", scale = 2 }",
            "amount = { from = \"Amount\", type = \"decimal\", case = \"title\" }",
            "lines.amount.case",
            "unknown variant \"title\", expected \"upper\" or \"lower\"",
        ),
    ] {
        let t = TestDir::new();
        let m = broken(&t, from, to);
        let line = line_of(&m, to);
        let err = config_error(&t);
        assert!(
            err.contains(&format!("line {line}, key {key}: ")) && err.contains(msg),
            "{to}: {err}"
        );
    }
}

#[test]
fn a_sum_check_must_name_numeric_fields() {
    let t = TestDir::new();
    let m = broken(&t, "lines_field = \"amount\"", "lines_field = \"amt\"");
    assert!(config_error(&t).contains(&format!(
        "line {}, key checks.0.lines_field: there is no field \"amt\" in [lines]",
        line_of(&m, "\"amt\"")
    )));
    let t = TestDir::new();
    broken(&t, "equals = \"total\"", "equals = \"terms\"");
    assert!(config_error(&t)
        .contains("key checks.0.equals: header field \"terms\" must have type decimal or integer"));
    let t = TestDir::new();
    broken(&t, "tolerance = \"0.01\"", "tolerance = \"-1\"");
    assert!(config_error(&t)
        .contains("key checks.0.tolerance: tolerance \"-1\" must be a number of 0 or more"));
}

#[test]
fn lookup_files_are_loaded_and_their_problems_named() {
    // a missing file: one error on the lookup, none on the fields that use it
    let t = TestDir::new();
    let m = broken(&t, "ref/terms.csv", "ref/termz.csv");
    let err = config_error(&t);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "error: ./mappings/inv.toml, line {}, key lookups.terms.file: lookup file \"ref/termz.csv\" not found: neither ./ref/termz.csv (beside the config) nor ./mappings/ref/termz.csv (beside the mapping) exists",
            line_of(&m, "termz")
        )),
        "{err}"
    );

    // a column that is not in the file
    let t = TestDir::new();
    broken(&t, "key = \"crm_id\"", "key = \"crm\"");
    assert!(config_error(&t).contains(
        "key lookups.customers.file: xref/customers.csv has no column \"crm\" (its columns are \"crm_id\", \"erp_id\")"
    ));

    // one key with two values
    let t = TestDir::new();
    broken(&t, "name = \"inv\"", "name = \"inv\"");
    t.write(
        "xref/customers.csv",
        "crm_id;erp_id\nC1;CUST-1\nC2;CUST-2\nC1;CUST-9\n",
    );
    assert!(config_error(&t).contains(
        "xref/customers.csv lines 2 and 4: key \"C1\" appears twice with different values (\"CUST-1\" on line 2, \"CUST-9\" on line 4)"
    ));

    // bytes that are not in the lookup's encoding
    let t = TestDir::new();
    broken(&t, "name = \"inv\"", "name = \"inv\"");
    t.write("xref/customers.csv", b"crm_id;erp_id\nC1;\xCE\xCE\xCE\n");
    let err = config_error(&t);
    assert!(
        err.contains("key lookups.customers.file: cannot read"),
        "{err}"
    );
    assert!(err.contains("on line 2 are not valid UTF-8"), "{err}");
}

#[test]
fn check_lists_every_problem_at_once() {
    let t = TestDir::new();
    let m = mapping_with(
        "type = \"decimal\", scale = 2 }",
        "type = \"decimal\", scale = 2, pattern = \"(\" }",
    )
    .replacen("lookup = \"customers\"", "lookup = \"nobody\"", 1)
    .replacen("ref/terms.csv", "ref/none.csv", 1);
    t.invoice_setup(&m);
    let err = config_error(&t);
    assert_eq!(err.lines().count(), 3, "{err}");
    assert!(err.contains("key header.total.pattern:"), "{err}");
    assert!(err.contains("key header.customer.lookup:"), "{err}");
    assert!(err.contains("key lookups.terms.file:"), "{err}");
}

#[test]
fn two_mappings_with_one_name() {
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    t.write("mappings/other.toml", INVOICE_MAPPING);
    let err = config_error(&t);
    assert!(
        err.contains("mapping name \"inv\" is already used by ./mappings/inv.toml"),
        "{err}"
    );
}

#[test]
fn no_config_file_is_exit_2() {
    let t = TestDir::new();
    let out = t.run(&["validate"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("erpdrop.toml: no such config file (use -c PATH, set ERPDROP_CONFIG, or run `erpdrop init`)"),
        "{}",
        out.stderr
    );
    let out = t.run(&["-c", "elsewhere/erpdrop.toml", "check"]);
    assert_eq!(out.code, 2);
    assert!(out
        .stderr
        .contains("elsewhere/erpdrop.toml: no such config file"));
}

#[test]
fn check_passes_and_reports_what_it_loaded() {
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    let out = t.run(&["check"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("config erpdrop.toml: ok"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "mapping inv (./mappings/inv.toml): 5 header fields, 2 line fields, takes INV_*.csv"
        ),
        "{}",
        out.stdout
    );
    assert!(out
        .stdout
        .contains("lookup customers (xref/customers.csv): 2 entries"));
    assert!(out
        .stdout
        .contains("lookup terms (ref/terms.csv): 2 entries"));
    let json = t.run(&["check", "--json"]).json();
    assert_eq!(json["mappings"][0]["name"], "inv");
    assert_eq!(json["mappings"][0]["lookups"][1]["entries"], 2);
}

#[test]
fn paths_are_relative_to_the_config_file_and_lookups_fall_back_to_the_mapping_folder() {
    let t = TestDir::new();
    // the config lives in conf/, the mapping in conf/maps/, one lookup next to the
    // config and one next to the mapping
    let m = INVOICE_MAPPING
        .replacen("xref/customers.csv", "customers.csv", 1)
        .replacen("ref/terms.csv", "terms.csv", 1);
    t.write(
        "conf/erpdrop.toml",
        "mappings = [\"maps/*.toml\"]\n[scan]\nsettle_seconds = 0\n",
    );
    t.write("conf/maps/inv.toml", &m);
    t.write("conf/customers.csv", "crm_id;erp_id\nC1;FROM-CONFIG-DIR\n");
    t.write(
        "conf/maps/customers.csv",
        "crm_id;erp_id\nC1;FROM-MAPPING-DIR\n",
    );
    t.write("conf/maps/terms.csv", "code\nN30\n");
    t.write(
        "conf/drop/inbox/INV_1.csv",
        "No;Date;Cust;Terms;Total;Item;Amount\n1;01.02.2026;C1;N30;1,00;x;1,00\n",
    );
    let out = t.run(&["-c", "conf/erpdrop.toml", "validate", "--emit", "em"]);
    assert_eq!(out.code, 0, "{out:?}");
    let doc = t.read_json("em/sales_invoice-1.json");
    // the config's folder wins; the mapping's folder is the fallback
    assert_eq!(doc["customer"], "FROM-CONFIG-DIR");
    assert_eq!(doc["terms"], "N30");

    // ERPDROP_CONFIG works like -c
    let o = t
        .cmd()
        .env("ERPDROP_CONFIG", "conf/erpdrop.toml")
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("lookup terms (terms.csv): 1 entries"));

    // errors name the mapping file under the config's folder
    t.write(
        "conf/maps/inv.toml",
        m.replacen("type = \"date\"", "type = \"dat\"", 1),
    );
    let out = t.run(&["-c", "conf/erpdrop.toml", "check"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(&format!(
            "conf/maps/inv.toml, line {}, key header.date.type: unknown variant \"dat\"",
            line_of(&m, "type = \"date\"")
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn a_wrong_column_name_names_the_mapping_and_field_and_check_sample_finds_it_first() {
    let t = TestDir::new();
    t.invoice_setup(&INVOICE_MAPPING.replace(
        r#"amount = { from = "Amount""#,
        r#"amount = { from = "Amout""#,
    ));
    let csv = format!("{INVOICE_HEADER}A1;20.11.2026;C1;N30;1,50;X;1,50\n");
    t.write("sample/INV_sample.csv", &csv);
    // before the first real file: check --sample reads it as a run would
    let out = t.run(&["check", "--sample", "sample/INV_sample.csv"]);
    assert_eq!(out.code, 1, "{out:?}");
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("missing_column"))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    let at = line_of(&t.read("mappings/inv.toml"), "amount = { from = \"Amout\"");
    for part in [
        "The header row has no column \"Amout\" (did you mean \"Amount\"?)",
        &format!("mappings/inv.toml reads in lines.amount (line {at})"),
        "fix the mapping",
    ] {
        assert!(line.contains(part), "{part:?} not in {line}");
    }
    // and the report of a run says the same, with the field
    t.write("drop/inbox/INV_1.csv", &csv);
    assert_eq!(t.run(&["run"]).code, 1);
    let e = &t.read_json("drop/failed/INV_1.csv.errors.json")["errors"][0];
    assert_eq!(e["code"], "missing_column");
    assert_eq!(e["field"], "lines.amount");
    assert!(
        e["message"].as_str().unwrap().contains("mappings/inv.toml"),
        "{e}"
    );
    // a column no field is near: no guess
    let t = TestDir::new();
    t.invoice_setup(&INVOICE_MAPPING.replace(
        r#"amount = { from = "Amount""#,
        r#"amount = { from = "Betrag""#,
    ));
    t.write("s/INV_s.csv", &csv);
    let out = t.run(&["check", "--sample", "s/INV_s.csv"]);
    assert!(!out.stdout.contains("did you mean"), "{}", out.stdout);
    assert!(out.stdout.contains("lines.amount"), "{}", out.stdout);
    // a good sample: exit 0, with its summary
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    t.write("s/INV_s.csv", &csv);
    let out = t.run(&["check", "--sample", "s/INV_s.csv"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("valid: INV_s.csv (inv)"),
        "{}",
        out.stdout
    );
}

#[test]
fn check_lists_mappings_whose_globs_take_the_same_files() {
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    // a second mapping for every CSV: INV_*.csv is taken by both
    t.write(
        "mappings/zz_all.toml",
        INVOICE_MAPPING
            .replace("name = \"inv\"", "name = \"all\"")
            .replace("match = [\"INV_*.csv\"]", "match = [\"*.csv\"]"),
    );
    let out = t.run(&["check"]);
    assert_eq!(out.code, 0, "{out:?}");
    let w = out
        .stdout
        .lines()
        .find(|l| l.starts_with("warning: mappings"))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(
        w.contains("mappings inv (")
            && w.contains("and all (")
            && w.contains("inv is loaded first and takes them"),
        "{w}"
    );
    let json = t.run(&["--json", "check"]).json();
    assert_eq!(json["warnings"].as_array().unwrap().len(), 1, "{json}");
    // globs apart: nothing said
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    t.write(
        "mappings/zz_cust.toml",
        INVOICE_MAPPING
            .replace("name = \"inv\"", "name = \"cust\"")
            .replace("match = [\"INV_*.csv\"]", "match = [\"CUST_*.csv\"]"),
    );
    let out = t.run(&["check"]);
    assert!(!out.stdout.contains("warning"), "{}", out.stdout);
}

#[test]
fn a_bad_date_format_is_said_once_at_its_key() {
    let t = TestDir::new();
    let m = broken(&t, "date_format = \"%d.%m.%Y\"", "date_format = \"%d.%m\"");
    let err = config_error(&t);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "error: ./mappings/inv.toml, line {}, key source.date_format: \"%d.%m\" cannot read a full date",
            line_of(&m, "date_format")
        )),
        "{err}"
    );
    // a field's own bad format is its own error
    let t = TestDir::new();
    broken(
        &t,
        "date     = { from = \"Date\", type = \"date\" }",
        "date     = { from = \"Date\", type = \"date\", format = \"%Q\" }",
    );
    let err = config_error(&t);
    assert!(err.contains("key header.date.format"), "{err}");
    assert!(!err.contains("source.date_format"), "{err}");
}

#[test]
fn settings_for_real_erps_are_checked_when_the_config_loads() {
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    let head = "mappings = [\"mappings/*.toml\"]\n[scan]\nsettle_seconds = 0\n[target]\nkind = \"http\"\nurl = \"http://127.0.0.1:9/api/{document}\"\n";
    // (extra [target] lines, the key named, what the message says)
    let cases: &[(&str, &str, &str)] = &[
        (
            "auth = { oauth2 = { token_url = \"ftp://x\", client_id_env = \"CID\", client_secret_env = \"CSECRET\" } }",
            "target.auth.oauth2.token_url",
            "must start with http:// or https://",
        ),
        (
            "auth = { oauth2 = { token_url = \"https://login.example/token\", client_secret_env = \"CSECRET\" } }",
            "target.auth.oauth2.client_id_env",
            "oauth2 needs client_id_env",
        ),
        (
            "auth = { oauth2 = { token_url = \"https://login.example/token\", client_id_env = \"CID\", client_secret_env = \"NOT_SET_ANYWHERE\" } }",
            "target.auth.oauth2.client_secret_env",
            "NOT_SET_ANYWHERE is not set",
        ),
        (
            "auth = { bearer_env = \"CID\", oauth2 = { token_url = \"https://l/t\", client_id_env = \"CID\", client_secret_env = \"CSECRET\" } }",
            "target.auth",
            "leave out bearer_env",
        ),
        (
            "auth = { session = { url = \"https://erp/Login\", body = '{\"User\": \"{env:NOT_SET_ANYWHERE}\"}' } }",
            "target.auth.session.body",
            "NOT_SET_ANYWHERE is not set",
        ),
        (
            "auth = { session = { url = \"https://erp/Login\", value = \"B1SESSION=\" } }",
            "target.auth.session.value",
            "must contain {token}",
        ),
        (
            "client_cert = \"certs/me.pem\"",
            "target.client_cert",
            "client_cert needs client_key",
        ),
        (
            "max_requests_per_second = 0",
            "target.max_requests_per_second",
            "is not a rate",
        ),
        (
            "body = '{\"params\": []}'",
            "target.body",
            "must contain {payload}",
        ),
        (
            "batch = { size = 0 }",
            "target.batch.size",
            "between 1 and 1000",
        ),
        (
            "batch = { size = 10, body = '{\"params\": []}' }",
            "target.batch.body",
            "must contain {payloads}",
        ),
        (
            "batch = { size = 10, ids_pointer = \"result\" }",
            "target.batch.ids_pointer",
            "is not a JSON pointer",
        ),
        (
            "verify = { url = \"https://erp/api?ref={key}\" }",
            "target.verify.found_pointer",
            "verify needs found_pointer",
        ),
    ];
    for (extra, key, says) in cases {
        t.write("erpdrop.toml", format!("{head}{extra}\n"));
        let o = t
            .cmd()
            .env("CID", "client-1")
            .env("CSECRET", "s3cret-value")
            .arg("check")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra}: {err}");
        assert!(
            err.contains(&format!("erpdrop.toml, line 7, key {key}: ")) && err.contains(says),
            "{extra}:\n{err}"
        );
        assert!(!err.contains("s3cret-value"), "{err}");
    }
    // batches are JSON arrays
    t.write(
        "erpdrop.toml",
        format!("{head}format = \"xml\"\nbatch = {{ size = 10 }}\n"),
    );
    let err = config_error(&t);
    assert!(
        err.contains("key target.batch: ") && err.contains("format = \"json\""),
        "{err}"
    );
}

#[test]
fn an_inline_table_may_span_lines_as_toml_1_1_allows() {
    let t = TestDir::new();
    t.invoice_setup(INVOICE_MAPPING);
    t.write(
        "erpdrop.toml",
        r#"mappings = ["mappings/*.toml"]
[folders]
root = "drop"
[target]
kind = "http"
url = "http://127.0.0.1:9/api/{document}"
auth = { oauth2 = { token_url = "http://127.0.0.1:9/token", client_id_env = "ML_ID",
                    client_secret_env = "ML_SECRET", scope = "api" } }
batch = { size = 10, body = '{"records": {payloads}}',
          ids_pointer = "/ids", all_or_nothing = true, }

[[notify]]
on = ["file_failed"]
email = { to = ["ap@example.com"], from = "erpdrop@example.com", smtp = "127.0.0.1:9",
          starttls = false }
"#,
    );
    // validate loads the whole config (and submits nothing)
    let out = t
        .cmd()
        .env("ML_ID", "client-1")
        .env("ML_SECRET", "s3cret-multi-line")
        .args(["validate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // and a syntax error is still named with its line
    let cfg = t
        .read("erpdrop.toml")
        .replace("scope = \"api\" } }", "scope = \"api\" }");
    t.write("erpdrop.toml", cfg);
    let out = t.run(&["check"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("erpdrop.toml, line"), "{}", out.stderr);
}

/// `erpdrop check` on a mapping whose `[source]` is `source`; the errors, one a line.
fn source_errors(source: &str, lines: bool) -> (String, String) {
    let t = TestDir::new();
    let m = format!(
        "name = \"m\"\nmatch = [\"*.x\"]\ndocument_type = \"d\"\n\n[source]\n{source}\n\n[document]\nkey = [\"No\"]\n\n[header]\nno = {{ from = \"No\" }}\n{}",
        if lines { "\n[lines]\nitem = { from = \"Item\" }\n" } else { "" }
    );
    t.mapping_setup(&m);
    let check = t.run(&["check"]);
    assert_eq!(check.code, 2, "check: {check:?}");
    (check.stderr, m)
}

#[test]
fn options_of_another_format_are_refused_before_any_file_arrives() {
    for (source, key, says) in [
        (
            "sheet = \"Invoices\"",
            "source.sheet",
            "`sheet` is for workbooks (format = \"xlsx\", \"xls\" or \"ods\"), not \"csv\"",
        ),
        (
            "format = \"json\"\nsheet = \"Invoices\"",
            "source.sheet",
            "not \"json\"",
        ),
        (
            "format = \"xlsx\"\nsheet = \"\"",
            "source.sheet",
            "`sheet` is empty",
        ),
        (
            "format = \"xlsx\"\ndelimiter = \";\"",
            "source.delimiter",
            "`delimiter` is for CSV files, not format = \"xlsx\"",
        ),
        (
            "format = \"ods\"\nencoding = \"windows-1251\"",
            "source.encoding",
            "a workbook says its own encoding",
        ),
        (
            "format = \"xls\"\nrecord = \"/a\"",
            "source.record",
            "`record` and `lines` are for format = \"xml\" and \"json\", not \"xls\"",
        ),
        (
            "format = \"json\"\nrecord = \"invoices\"",
            "source.record",
            "\"invoices\" is not a JSON pointer: it starts with /",
        ),
        (
            "format = \"json\"\nrecord = \"/a~2b\"",
            "source.record",
            "`~` must be followed by 0 (for ~) or 1 (for /)",
        ),
        (
            "format = \"json\"\nlines = \"/lines\"",
            "source.lines",
            "a path inside a record does not start with /",
        ),
        (
            "format = \"json\"\nlines = \"a//b\"",
            "source.lines",
            "its names are separated by single slashes",
        ),
        (
            "format = \"json\"\nskip_lines = 2",
            "source.skip_lines",
            "`skip_lines` is for CSV, fixed-width files and workbooks, not JSON",
        ),
        (
            "format = \"xml\"\nrecord = \"/Invoices/Invoice\"\nskip_lines = 1",
            "source.skip_lines",
            "`skip_lines` is for CSV, fixed-width files and workbooks, not XML",
        ),
    ] {
        let (err, m) = source_errors(source, false);
        let needle = key.rsplit('.').next().unwrap();
        let line = m
            .lines()
            .position(|l| l.starts_with(needle))
            .map(|i| i + 1)
            .unwrap_or(0);
        assert!(
            err.contains(&format!("./mappings/m.toml, line {line}, key {key}")),
            "{source}: {err}"
        );
        assert!(err.contains(key), "{source}: {err}");
        assert!(err.contains(says), "{source}: {err}");
    }
    let t = TestDir::new();
    t.mapping_setup("name = \"m\"\nmatch = [\"*.x\"]\ndocument_type = \"d\"\n[source]\nformat = \"json\"\n[document]\nkey = [\"/No\"]\n[header]\ncustomer = { from = \"customer//id\" }\n");
    let check = t.run(&["check"]);
    assert_eq!(check.code, 2);
    assert!(
        check
            .stderr
            .contains("key document.key: \"/No\": a path inside a record does not start with /"),
        "{}",
        check.stderr
    );
    assert!(
        check
            .stderr
            .contains("key header: \"customer//id\" is not a path"),
        "{}",
        check.stderr
    );
    let (err, _) = source_errors("format = \"json\"", true);
    assert!(
        err.contains("a JSON source with [lines] needs `lines`, the member of a record that holds its array of lines"),
        "{err}"
    );
}
