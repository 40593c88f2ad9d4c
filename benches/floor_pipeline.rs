//! The ideal pipeline, as the floor for `erpdrop validate --emit`: deserialise each row
//! with serde (borrowed `&str` fields), group the rows of an invoice, and write each
//! invoice as JSON through a buffered writer. No validation, no types, no lookups, no
//! error reporting. Run by `scripts/bench`; not part of `cargo test`.
//!
//!     floor_pipeline FILE OUT [DELIMITER]

use serde::{Deserialize, Serialize};
use std::io::{BufWriter, Write};
use std::process::ExitCode;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code)]
struct Row<'a> {
    invoice_no: &'a str,
    invoice_date: &'a str,
    customer_id: &'a str,
    customer_name: &'a str,
    terms: &'a str,
    currency: &'a str,
    line_no: &'a str,
    item_code: &'a str,
    description: &'a str,
    qty: &'a str,
    unit_price: &'a str,
    tax_code: &'a str,
    #[serde(rename = "GLAccount")]
    gl_account: &'a str,
    line_total: &'a str,
    #[serde(default)]
    invoice_total: &'a str,
}

#[derive(Serialize, Default)]
struct Invoice {
    number: String,
    date: String,
    customer: String,
    customer_name: String,
    terms: String,
    currency: String,
    total: String,
    lines: Vec<Line>,
}

#[derive(Serialize)]
struct Line {
    line_no: String,
    item: String,
    description: String,
    quantity: String,
    unit_price: String,
    tax: String,
    account: String,
    amount: String,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let (Some(path), Some(out)) = (args.first(), args.get(1)) else {
        eprintln!("usage: floor_pipeline FILE OUT [DELIMITER]");
        return ExitCode::from(2);
    };
    let delimiter = args.get(2).map(|d| d.as_bytes()[0]).unwrap_or(b';');
    match run(path, out, delimiter) {
        Ok((rows, docs)) => {
            println!("rows={rows} documents={docs}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

fn run(path: &str, out: &str, delimiter: u8) -> Result<(u64, u64), Box<dyn std::error::Error>> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .buffer_capacity(256 * 1024)
        .from_path(path)?;
    let headers = rdr.headers()?.clone();
    let mut w = BufWriter::with_capacity(256 * 1024, std::fs::File::create(out)?);
    let mut record = csv::StringRecord::new();
    let mut current = Invoice::default();
    let (mut rows, mut docs) = (0u64, 0u64);
    let mut flush = |inv: &mut Invoice, w: &mut BufWriter<std::fs::File>| -> std::io::Result<()> {
        if !inv.number.is_empty() {
            serde_json::to_writer(&mut *w, inv)?;
            w.write_all(b"\n")?;
            docs += 1;
        }
        Ok(())
    };
    while rdr.read_record(&mut record)? {
        rows += 1;
        let row: Row = record.deserialize(Some(&headers))?;
        if row.invoice_no != current.number {
            flush(&mut current, &mut w)?;
            current = Invoice {
                number: row.invoice_no.to_string(),
                date: row.invoice_date.to_string(),
                customer: row.customer_id.to_string(),
                customer_name: row.customer_name.to_string(),
                terms: row.terms.to_string(),
                currency: row.currency.to_string(),
                total: row.invoice_total.to_string(),
                lines: Vec::with_capacity(9),
            };
        }
        current.lines.push(Line {
            line_no: row.line_no.to_string(),
            item: row.item_code.to_string(),
            description: row.description.to_string(),
            quantity: row.qty.to_string(),
            unit_price: row.unit_price.to_string(),
            tax: row.tax_code.to_string(),
            account: row.gl_account.to_string(),
            amount: row.line_total.to_string(),
        });
    }
    flush(&mut current, &mut w)?;
    w.flush()?;
    Ok((rows, docs))
}
