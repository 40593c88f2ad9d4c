//! Compiling fields and running their pipeline.

use super::*;
use crate::mapping::spec::FieldSpec;
use indexmap::IndexMap;

fn defaults() -> FieldDefaults {
    FieldDefaults {
        decimal: '.',
        thousands: None,
        date_format: None,
        datetime_format: None,
    }
}

fn field(toml_text: &str) -> Result<Field, CompileError> {
    field_with(toml_text, IndexMap::new())
}

fn field_with(
    toml_text: &str,
    lookups: IndexMap<String, Arc<Lookup>>,
) -> Result<Field, CompileError> {
    let spec: FieldSpec = toml::from_str(toml_text).unwrap();
    let mut slots: Vec<String> = Vec::new();
    let mut intern = |n: &str| crate::source::Slots::intern(&mut slots, n);
    Field::compile("terms", &spec, &defaults(), &lookups, &mut intern)
}

fn eval(f: &Field, cell: &str) -> Result<Value, FieldError> {
    let mut row = RawRow::new(7);
    row.push(Some(cell));
    row.push(Some("second"));
    f.eval(&EvalCtx {
        row: &row,
        file: "INV_1.csv",
        run: "r1",
        refs: &crate::mapping::NoRefs,
    })
}

/// `eval` on a workbook's number cell (the decimal it holds, as the reader writes it).
fn eval_number_cell(f: &Field, cell: &str) -> Result<Value, FieldError> {
    let mut row = RawRow::new(7);
    row.push(Some(cell));
    row.mark_number();
    f.eval(&EvalCtx {
        row: &row,
        file: "INV_1.xlsx",
        run: "r1",
        refs: &crate::mapping::NoRefs,
    })
}

#[test]
fn a_number_cell_is_its_number_whatever_the_separators_of_text() {
    let dec = |d: &str| Value::Dec(d.parse().unwrap());
    let german = r#"from = "T"
decimal_separator = ","
thousands_separator = "."
"#;
    let with = |more: &str| field(&format!("{german}{more}")).unwrap();
    let d = with(r#"type = "decimal""#);
    assert_eq!(eval_number_cell(&d, "1234.5").unwrap(), dec("1234.5"));
    assert_eq!(eval_number_cell(&d, "0.1").unwrap(), dec("0.1"));
    assert_eq!(eval_number_cell(&d, "-12").unwrap(), dec("-12"));
    // a text cell: the separators
    assert_eq!(eval(&d, "1.234,50").unwrap(), dec("1234.50"));
    assert_eq!(eval(&d, "0.1").unwrap_err().code, Code::Type);
    let s = with("type = \"decimal\"\nscale = 2\nrounding = \"error\"");
    assert_eq!(eval_number_cell(&s, "1234.5").unwrap(), dec("1234.50"));
    assert_eq!(eval_number_cell(&s, "0.125").unwrap_err().code, Code::Type);
    let i = with(r#"type = "integer""#);
    assert_eq!(eval_number_cell(&i, "1234").unwrap(), Value::Int(1234));
    assert_eq!(eval_number_cell(&i, "1234.5").unwrap_err().code, Code::Type);
    assert_eq!(eval(&i, "1.234").unwrap(), Value::Int(1234));
    // a string keeps the cell's decimal
    let t = field(german).unwrap();
    assert_eq!(
        eval_number_cell(&t, "1234.5").unwrap(),
        Value::Str("1234.5".into())
    );
    // a value that `map` or `default` gives is text, read with the separators
    let m = with("type = \"decimal\"\nmap = { \"1\" = \"2,5\" }");
    assert_eq!(eval_number_cell(&m, "1").unwrap(), dec("2.5"));
}

#[test]
fn trim_map_default_required_in_order() {
    let f = field(
        r#"from = "T"
map = { "48 Month Repayment Plan" = "F48", "none" = "" }
default = "N30"
required = true"#,
    )
    .unwrap();
    assert_eq!(
        eval(&f, "  48 Month Repayment Plan ").unwrap(),
        Value::Str("F48".into())
    );
    assert_eq!(eval(&f, "none").unwrap(), Value::Str("N30".into()));
    assert_eq!(eval(&f, "").unwrap(), Value::Str("N30".into()));
    let g = field(
        r#"from = "T"
required = true"#,
    )
    .unwrap();
    assert_eq!(eval(&g, "  ").unwrap_err().code, Code::Required);
    let h = field(
        r#"from = "T"
trim = false"#,
    )
    .unwrap();
    assert_eq!(eval(&h, " a ").unwrap(), Value::Str(" a ".into()));
}

#[test]
fn decimal_scale_rounds_half_away_from_zero() {
    let f = field(
        r#"from = "T"
type = "decimal"
decimal_separator = ","
scale = 2"#,
    )
    .unwrap();
    assert_eq!(eval(&f, "2,345").unwrap().to_text(), "2.35");
    assert_eq!(eval(&f, "-2,345").unwrap().to_text(), "-2.35");
    assert_eq!(eval(&f, "7").unwrap().to_text(), "7.00");
    let e = eval(&f, "7.5").unwrap_err();
    assert_eq!(e.code, Code::Type);
    assert!(
        e.message.contains("\"7.5\" is not a number"),
        "{}",
        e.message
    );
}

#[test]
fn case_max_length_truncate_pattern() {
    let f = field(
        r#"from = "T"
case = "upper"
max_length = 3
pattern = "[A-Z]{3}""#,
    )
    .unwrap();
    assert_eq!(eval(&f, "usd").unwrap(), Value::Str("USD".into()));
    assert_eq!(eval(&f, "usdx").unwrap_err().code, Code::MaxLength);
    assert_eq!(eval(&f, "u1d").unwrap_err().code, Code::Pattern);
    let t = field(
        r#"from = "T"
max_length = 5
truncate = true"#,
    )
    .unwrap();
    assert_eq!(eval(&t, "Ромашка").unwrap(), Value::Str("Ромаш".into()));
}

#[test]
fn min_and_max_compare_typed_values() {
    let f = field(
        r#"from = "T"
type = "decimal"
min = 0
max = "100.5""#,
    )
    .unwrap();
    assert!(eval(&f, "100.5").is_ok());
    assert_eq!(eval(&f, "100.51").unwrap_err().code, Code::Max);
    assert_eq!(eval(&f, "-1").unwrap_err().code, Code::Min);
    let d = field(
        r#"from = "T"
type = "date"
format = "%d.%m.%Y"
min = "2026-01-01""#,
    )
    .unwrap();
    assert_eq!(eval(&d, "31.12.2025").unwrap_err().code, Code::Min);
    assert_eq!(eval(&d, "01.01.2026").unwrap().to_text(), "2026-01-01");
}

#[test]
fn allowed_list_and_lookup_messages() {
    let f = field(
        r#"from = "T"
allowed = ["N30", "F48"]"#,
    )
    .unwrap();
    let e = eval(&f, "X").unwrap_err();
    assert_eq!(e.code, Code::NotAllowed);
    assert_eq!(e.message, "Terms code \"X\" is not one of N30, F48");
}

#[test]
fn template_uses_columns_and_builtins() {
    let f = field(r#"template = "{T}/{_file}:{_line} {{x}}""#).unwrap();
    assert_eq!(
        eval(&f, " A ").unwrap(),
        Value::Str("A/INV_1.csv:7 {x}".into())
    );
    assert!(field(r#"template = "{_nope}""#).is_err());
    assert!(field(r#"template = "{open""#).is_err());
}

#[test]
fn constant_values_infer_their_type() {
    let f = field("value = 1").unwrap();
    assert_eq!(eval(&f, "").unwrap(), Value::Int(1));
    let b = field("value = true").unwrap();
    assert_eq!(eval(&b, "").unwrap(), Value::Bool(true));
}

#[test]
fn compile_errors_name_the_key() {
    assert_eq!(
        field(
            r#"from = "T"
pattern = "([A-Z""#
        )
        .unwrap_err()
        .0,
        "pattern"
    );
    assert_eq!(
        field(
            r#"from = "T"
type = "date"
format = "%Q""#
        )
        .unwrap_err()
        .0,
        "format"
    );
    assert_eq!(
        field(
            r#"from = "T"
lookup = "nope""#
        )
        .unwrap_err()
        .0,
        "lookup"
    );
    assert_eq!(
        field(
            r#"from = "T"
value = "x""#
        )
        .unwrap_err()
        .0,
        "from"
    );
    assert_eq!(
        field(
            r#"from = "T"
scale = 2"#
        )
        .unwrap_err()
        .0,
        "scale"
    );
}
