//! The floor of the benchmark: only parse the CSV with `csv::ByteRecord` (no UTF-8
//! check, no grouping, no mapping). Run by `scripts/bench`; not part of `cargo test`.
//!
//!     floor_parse FILE [DELIMITER]

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let Some(path) = args.first() else {
        eprintln!("usage: floor_parse FILE [DELIMITER]");
        return ExitCode::from(2);
    };
    let delimiter = args.get(1).map(|d| d.as_bytes()[0]).unwrap_or(b';');
    let mut rdr = match csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .buffer_capacity(256 * 1024)
        .from_path(path)
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::from(1);
        }
    };
    let mut record = csv::ByteRecord::new();
    let (mut rows, mut fields, mut bytes) = (0u64, 0u64, 0u64);
    loop {
        match rdr.read_byte_record(&mut record) {
            Ok(true) => {
                rows += 1;
                fields += record.len() as u64;
                bytes += record.as_slice().len() as u64;
            }
            Ok(false) => break,
            Err(e) => {
                eprintln!("{path}: {e}");
                return ExitCode::from(1);
            }
        }
    }
    println!("rows={rows} fields={fields} bytes={bytes}");
    ExitCode::SUCCESS
}
