//! Fixed-width files (`format = "fixed"`): columns by position in characters after
//! decoding (a bank statement in Windows-1251, UTF-8 with umlauts), line ends, blank
//! lines, a last line without a newline, lines too short for a column, NUL bytes, a line
//! past the 1 MiB bound, and the layout checks of `erpdrop check` (zero widths,
//! overlapping columns, columns no field can read).
use crate::util::TestDir;

/// A bank's statement layout: one transaction per line, each its own document.
const BANK: &str = r#"name = "bank"
match = ["STMT_*"]
document_type = "bank_transaction"

[source]
format = "fixed"
encoding = "windows-1251"
date_format = "%d.%m.%Y"

[source.columns]
TxnId    = { start = 1,  width = 10 }
Date     = { start = 11, width = 10 }
Payer    = { start = 21, width = 30 }
Amount   = { start = 51, width = 14 }
Currency = { start = 65, width = 3 }

[document]
key = ["TxnId"]

[header]
id       = { from = "TxnId", required = true }
date     = { from = "Date", type = "date" }
payer    = { from = "Payer" }
amount   = { from = "Amount", type = "decimal", scale = 2 }
currency = { from = "Currency" }
"#;

/// One statement line, padded by characters (as the bank's program writes it).
fn line(id: &str, date: &str, payer: &str, amount: &str, cur: &str) -> String {
    format!("{id:<10}{date:<10}{payer:<30}{amount:>14}{cur:<3}")
}

fn cp1251(s: &str) -> Vec<u8> {
    let (b, _, bad) = encoding_rs::WINDOWS_1251.encode(s);
    assert!(!bad, "not Windows-1251: {s}");
    b.into_owned()
}

fn bank() -> TestDir {
    let t = TestDir::new();
    t.mapping_setup(BANK);
    t
}

#[test]
fn a_windows_1251_statement_is_read_by_character_positions() {
    let t = bank();
    let text = [
        line("TX0001", "20.11.2026", "ООО Ромашка", "1250.00", "RUB"),
        line("TX0002", "20.11.2026", "ИП Жуков Сергей", "-17.45", "RUB"),
        line("TX0003", "21.11.2026", "Müller GmbH", "99999999.99", "EUR"),
    ]
    .join("\r\n")
        + "\r\n";
    let c = t.check_file("STMT_1.txt", cp1251(&text.replace("Müller", "Muller")));
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    let d = c.doc("bank_transaction-TX0001.json");
    assert_eq!(d["payer"], "ООО Ромашка");
    assert_eq!(d["amount"], "1250.00");
    assert_eq!(d["date"], "2026-11-20");
    assert_eq!(d["currency"], "RUB");
    let d = c.doc("bank_transaction-TX0002.json");
    assert_eq!(d["payer"], "ИП Жуков Сергей");
    assert_eq!(d["amount"], "-17.45");
    assert_eq!(
        c.doc("bank_transaction-TX0003.json")["amount"],
        "99999999.99"
    );
    assert_eq!(c.report["counts"]["documents"], 3);
    assert_eq!(c.report["counts"]["rows"], 3);
}

#[test]
fn utf8_counts_characters_not_bytes() {
    let t = TestDir::new();
    t.mapping_setup(&BANK.replace("encoding = \"windows-1251\"\n", ""));
    let text = line("TX1", "01.12.2026", "Jürgen Müßig", "5.00", "EUR") + "\n";
    let c = t.check_file("STMT_u.txt", text);
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    let d = c.doc("bank_transaction-TX1.json");
    assert_eq!(d["payer"], "Jürgen Müßig");
    assert_eq!(d["amount"], "5.00");
    assert_eq!(d["currency"], "EUR");
}

#[test]
fn line_ends_blank_lines_and_a_last_line_without_newline() {
    let t = bank();
    let a = line("TX1", "01.12.2026", "A", "1.00", "RUB");
    let b = line("TX2", "01.12.2026", "B", "2.00", "RUB");
    let c3 = line("TX3", "01.12.2026", "C", "3.00", "RUB");
    for text in [
        format!("{a}\n{b}\n{c3}"),
        format!("{a}\r\n\r\n   \r\n{b}\r\n{c3}"),
        format!("\n{a}\n{b}\n\n{c3}\n\n"),
    ] {
        let c = t.check_file("STMT_e.txt", cp1251(&text));
        assert_eq!(c.out.code, 0, "{text:?}: {:#?}", c.errors);
        assert_eq!(c.report["counts"]["documents"], 3, "{text:?}");
        assert_eq!(
            c.doc("bank_transaction-TX3.json")["currency"],
            "RUB",
            "{text:?}"
        );
        assert_eq!(c.doc("bank_transaction-TX3.json")["amount"], "3.00");
    }
}

#[test]
fn a_line_too_short_for_a_column_is_malformed_with_line_column_and_end() {
    let t = bank();
    let good = line("TX1", "01.12.2026", "Иванов", "1.00", "RUB");
    // the second line was cut after the amount: no currency
    let short = line("TX2", "01.12.2026", "Петров", "2.00", "RUB");
    let short = &short[..short.len() - 3];
    let text = format!("{good}\n{short}\n");
    let c = t.check_file("STMT_s.txt", cp1251(&text));
    assert_eq!(c.out.code, 1);
    let e = c.only_error();
    assert_eq!(e["code"], "malformed");
    assert_eq!(e["line"], 2);
    assert_eq!(e["column"], "Currency");
    assert_eq!(e["document"], "TX2");
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("ends at character 64"), "{msg}");
    assert!(msg.contains("characters 65 to 67"), "{msg}");
    assert!(c.emitted.is_empty(), "reject-file: nothing emitted");
}

#[test]
fn a_nul_byte_is_an_encoding_error_with_its_line() {
    let t = bank();
    let a = line("TX1", "01.12.2026", "A", "1.00", "RUB");
    let mut bytes = cp1251(&format!("{a}\n{a}\n"));
    let at = a.len() + 1 + 25;
    bytes[at] = 0;
    let c = t.check_file("STMT_n.txt", bytes);
    assert_eq!(c.out.code, 1);
    let e = c.only_error();
    assert_eq!(e["code"], "encoding");
    assert_eq!(e["line"], 2);
    assert_eq!(e["stage"], "read");
    assert!(
        e["message"].as_str().unwrap().contains("character 26"),
        "{e}"
    );
    // characters 21 to 50
    assert_eq!(e["column"], "Payer");
}

#[test]
fn bytes_that_are_not_utf8_are_an_encoding_error() {
    let t = TestDir::new();
    t.mapping_setup(&BANK.replace("encoding = \"windows-1251\"\n", ""));
    let a = line("TX1", "01.12.2026", "Ромашка", "1.00", "RUB");
    let c = t.check_file("STMT_x.txt", cp1251(&format!("{a}\n")));
    assert_eq!(c.out.code, 1);
    let e = c.only_error();
    assert_eq!(e["code"], "encoding");
    assert_eq!(e["line"], 1);
    assert!(
        e["message"].as_str().unwrap().contains("windows-1251"),
        "{e}"
    );
}

#[test]
fn a_line_longer_than_one_mebibyte_is_refused_not_held() {
    let t = bank();
    let a = line("TX1", "01.12.2026", "A", "1.00", "RUB");
    let long = "9".repeat((1 << 20) + 10);
    let c = t.check_file("STMT_l.txt", format!("{a}\n{long}\n{a}\n"));
    assert_eq!(c.out.code, 1);
    let e = c.only_error();
    assert_eq!(e["code"], "malformed");
    assert_eq!(e["line"], 2);
    assert!(e["message"].as_str().unwrap().contains("1 MiB"), "{e}");
}

#[test]
fn run_imports_a_statement_and_fails_a_damaged_one() {
    let t = bank();
    let good = line("TX1", "01.12.2026", "A", "1.00", "RUB") + "\n";
    t.write("drop/inbox/STMT_ok.txt", cp1251(&good));
    t.write("drop/inbox/STMT_bad.txt", cp1251(&good[..40]));
    let out = t.run(&["run"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(t.ls("drop/inbox"), Vec::<String>::new());
    assert!(t.ls("drop/failed").contains(&"STMT_bad.txt".to_string()));
    assert_eq!(t.ls("drop/outbox").len(), 1, "{:?}", t.ls("drop/outbox"));
}

/// `check` and `validate` fail with exit 2 and say `expected`.
fn layout_error(columns: &str, expected: &[&str]) {
    let t = TestDir::new();
    let start = BANK.find("[source.columns]").unwrap();
    let end = BANK.find("[document]").unwrap();
    let mapping = format!(
        "{}[source.columns]\n{columns}\n{}",
        &BANK[..start],
        &BANK[end..]
    );
    t.mapping_setup(&mapping);
    let out = t.run(&["check"]);
    assert_eq!(out.code, 2, "{out:?}");
    for e in expected {
        assert!(out.stderr.contains(e), "{e:?} not in:\n{}", out.stderr);
    }
    let v = t.run(&["validate"]);
    assert_eq!(v.code, 2, "{v:?}");
}

const COLUMNS: &str = "TxnId = { start = 1, width = 10 }\nDate = { start = 11, width = 10 }\nPayer = { start = 21, width = 30 }\nAmount = { start = 51, width = 14 }\nCurrency = { start = 65, width = 3 }\n";

#[test]
fn check_refuses_zero_widths_and_starts_before_one() {
    layout_error(
        &COLUMNS.replace("width = 3 }", "width = 0 }"),
        &[
            "mappings/m.toml, line 15",
            "source.columns.Currency",
            "width = 0 must be 1 or more",
        ],
    );
    layout_error(
        &COLUMNS.replace("start = 1,", "start = 0,"),
        &["source.columns.TxnId", "start = 0 must be 1 or more"],
    );
    let t = TestDir::new();
    t.mapping_setup(&BANK.replace("width = 3 }", "width = 0 }"));
    let out = t.run(&["check"]);
    assert_eq!(
        out.stderr.lines().count(),
        1,
        "one error, not one per field: {out:?}"
    );
}

#[test]
fn check_refuses_overlapping_columns() {
    layout_error(
        &COLUMNS.replace("start = 51", "start = 49"),
        &["columns \"Payer\" (characters 21 to 50) and \"Amount\" (characters 49 to 62) overlap"],
    );
}

#[test]
fn check_refuses_a_field_reading_a_column_the_layout_lacks() {
    layout_error(
        &COLUMNS.replace("Currency = { start = 65, width = 3 }\n", ""),
        &["a [header] field reads column \"Currency\", which is not in [source.columns]"],
    );
}

#[test]
fn the_bank_statement_fixture_imports() {
    let t = TestDir::new();
    t.copy_from_repo("fixtures/bank");
    let out = t.run(&["validate", "--emit", "em"]);
    assert_eq!(out.code, 0, "{out:?}");
    let a = t.read_json("em/bank_transaction-000000104512.json");
    assert_eq!(a["payer"], "ООО \"Ромашка\"");
    assert_eq!(a["amount"], "125000.00");
    assert_eq!(a["date"], "2026-11-30");
    assert_eq!(a["account"], "40702810400000012345");
    assert_eq!(
        a["purpose"],
        "Оплата по счёту № 17 от 25.11.2026, в т.ч. НДС"
    );
    let c = t.read_json("em/bank_transaction-000000104514.json");
    assert_eq!(c["payer"], "АО «Сибирь-Транс»");
    assert_eq!(c["amount"], "-17.45");
    assert_eq!(t.ls("em").len(), 4);
}

#[test]
fn a_byte_windows_1251_does_not_define_is_an_encoding_error_with_its_line() {
    let t = bank();
    let a = line("TX1", "01.12.2026", "Ромашка", "1.00", "RUB");
    let mut bytes = cp1251(&format!("{a}\n\n{a}\n{a}\n"));
    // 0x98 is the one byte Windows-1251 leaves undefined; put it into line 4's payer
    let at = bytes.len() - a.len() - 1 + 22;
    bytes[at] = 0x98;
    let c = t.check_file("STMT_98.txt", bytes);
    assert_eq!(c.out.code, 1);
    let e = c.only_error();
    assert_eq!(e["code"], "encoding");
    assert_eq!(e["line"], 4);
    assert_eq!(e["value"], "0x98");
}

/// Text in CP437 (the characters these tests use; the rest is ASCII).
fn cp437(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c {
            'ü' => 0x81,
            'é' => 0x82,
            'ä' => 0x84,
            'Ä' => 0x8E,
            'ö' => 0x94,
            'Ö' => 0x99,
            'Ü' => 0x9A,
            'ñ' => 0xA4,
            'Ñ' => 0xA5,
            'ß' => 0xE1,
            c if c.is_ascii() => c as u8,
            c => panic!("{c} is not in this test's CP437 table"),
        })
        .collect()
}

#[test]
fn a_cp437_statement_from_a_dos_banking_program() {
    let t = TestDir::new();
    t.mapping_setup(&BANK.replace("windows-1251", "cp437"));
    let text = [
        line("TX1", "01.12.2026", "Müller & Söhne GmbH", "1250.00", "EUR"),
        line(
            "TX2",
            "01.12.2026",
            "Peña Ibáñez".replace('á', "a").as_str(),
            "17.45-",
            "EUR",
        ),
        line(
            "TX3",
            "02.12.2026",
            "Österreichische Straßenbau",
            "3.10",
            "EUR",
        ),
    ]
    .join("\r\n")
        + "\r\n";
    let c = t.check_file("STMT_437.txt", cp437(&text));
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    assert_eq!(
        c.doc("bank_transaction-TX1.json")["payer"],
        "Müller & Söhne GmbH"
    );
    assert_eq!(c.doc("bank_transaction-TX2.json")["payer"], "Peña Ibañez");
    assert_eq!(c.doc("bank_transaction-TX2.json")["amount"], "-17.45");
    assert_eq!(
        c.doc("bank_transaction-TX3.json")["payer"],
        "Österreichische Straßenbau"
    );
    assert_eq!(c.doc("bank_transaction-TX3.json")["currency"], "EUR");
}

#[test]
fn cp437_is_read_for_csv_too_and_refused_for_xml() {
    let t = TestDir::new();
    t.mapping_setup(
        r#"name = "c"
match = ["C_*"]
document_type = "customer"

[source]
delimiter = ";"
encoding = "cp437"

[document]
key = ["No"]

[header]
name = { from = "Name" }
"#,
    );
    let c = t.check_file(
        "C_1.csv",
        cp437(
            "No;Name\n1;Jürgen Müßig\n2;Ñandú\n"
                .replace('ú', "u")
                .as_str(),
        ),
    );
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    assert_eq!(c.doc("customer-1.json")["name"], "Jürgen Müßig");
    assert_eq!(c.doc("customer-2.json")["name"], "Ñandu");
    let x = TestDir::new();
    x.mapping_setup(
        "name = \"x\"\nmatch = [\"X_*\"]\ndocument_type = \"d\"\n[source]\nformat = \"xml\"\nrecord = \"/a/b\"\nencoding = \"cp437\"\n[document]\nkey = [\"@id\"]\n[header]\nid = { from = \"@id\" }\n",
    );
    let out = x.run(&["check"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("cp437 is for csv, fixed and json"),
        "{}",
        out.stderr
    );
}

// ------------------------------------------------------ skip_lines: report titles on top

/// [`BANK`] with `skip_lines = n`.
fn bank_skipping(n: usize) -> TestDir {
    let t = TestDir::new();
    t.mapping_setup(&BANK.replace(
        "format = \"fixed\"\n",
        &format!("format = \"fixed\"\nskip_lines = {n}\n"),
    ));
    t
}

#[test]
fn title_lines_above_a_statement_are_skipped_and_problems_keep_the_files_line_numbers() {
    let t = bank_skipping(2);
    // a Cyrillic title in the file's encoding and a ruler, then the records; a blank
    // line among them still counts as a line and is still no record
    let text = [
        "ВЫПИСКА ПО СЧЁТУ 2026-11-30".to_string(),
        "----+----1----+----2----+----3".to_string(),
        line("TX0001", "30.11.2026", "ООО Ромашка", "1250.00", "RUB"),
        String::new(),
        line("TX0002", "30.11.2026", "ИП Жуков", "12x.00", "RUB"),
        line("TX0003", "30.11.2026", "Muller GmbH", "7.00", "EUR"),
    ]
    .join("\r\n")
        + "\r\n";
    let c = t.check_file("STMT_t.txt", cp1251(&text));
    assert_eq!(c.out.code, 1);
    let e = c.only_error();
    assert_eq!(e["document"], "TX0002", "{e}");
    assert_eq!(
        e["line"], 5,
        "the file's own line: titles and the blank one count"
    );
    assert_eq!(e["column"], "Amount");
    // fixed, the three records and nothing of the titles
    let c = t.check_file("STMT_t.txt", cp1251(&text.replace("12x.00", " 12.00")));
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    assert_eq!(c.report["counts"]["documents"], 3);
    assert_eq!(c.report["counts"]["rows"], 3);
    assert_eq!(
        c.doc("bank_transaction-TX0001.json")["payer"],
        "ООО Ромашка"
    );
    assert_eq!(c.doc("bank_transaction-TX0002.json")["amount"], "12.00");
}

#[test]
fn title_lines_are_skipped_unread_as_csvs_are() {
    // UTF-8 records under a title a program wrote in windows-1252 (`für`, one byte E8
    // that UTF-8 lacks) and a NUL: the title is not read, so neither fails the file
    let t = TestDir::new();
    t.mapping_setup(&BANK.replace("encoding = \"windows-1251\"\n", "skip_lines = 1\n"));
    let mut file = b"Kontoausz\xfcge f\xfcr November\0\n".to_vec();
    file.extend(line("TX1", "01.12.2026", "Jürgen Müßig", "5.00", "EUR").as_bytes());
    file.push(b'\n');
    let c = t.check_file("STMT_w.txt", file);
    assert_eq!(c.out.code, 0, "{:#?}", c.errors);
    assert_eq!(c.doc("bank_transaction-TX1.json")["payer"], "Jürgen Müßig");
}

#[test]
fn a_statement_shorter_than_its_title_lines_reads_as_an_empty_one() {
    // CSV's rule: the titles that are there are skipped and the file ends there; a
    // fixed-width file has no header row to miss, so it is an empty statement
    let t = bank_skipping(3);
    let empty = t.check_file("STMT_0.txt", "");
    assert_eq!(
        empty.out.code, 0,
        "an empty statement: no transactions that day"
    );
    for text in ["STATEMENT 2026-11-30\n", "STATEMENT 2026-11-30\n----+----1"] {
        let c = t.check_file("STMT_0.txt", text);
        assert_eq!(c.out.code, empty.out.code, "{text:?}: {:#?}", c.errors);
        assert_eq!(c.errors, empty.errors, "{text:?}");
        assert_eq!(c.report["counts"]["documents"], 0, "{text:?}");
        assert!(c.emitted.is_empty(), "{text:?}");
    }
}
