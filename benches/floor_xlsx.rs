//! The floor for workbooks: only iterate the first sheet of an xlsx file with calamine's
//! streaming cell reader (`worksheet_cells_reader`, as erpdrop does), counting the
//! cells and rows, with no conversion of values and no mapping. Run by `scripts/bench`;
//! not part of `cargo test`.
//!
//!     floor_xlsx FILE            # streamed, cell by cell
//!     floor_xlsx FILE --range    # the whole sheet read into a Range first (what xls
//!                                # and ods sheets take), for its memory

use calamine::{Reader, Xlsx};
use std::io::BufReader;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: floor_xlsx FILE");
        return ExitCode::from(2);
    };
    let file = match std::fs::File::open(&path) {
        Ok(f) => BufReader::with_capacity(256 * 1024, f),
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::from(1);
        }
    };
    let mut wb: Xlsx<_> = match Xlsx::new(file) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::from(1);
        }
    };
    let Some(sheet) = wb.sheet_names().first().cloned() else {
        eprintln!("{path}: no sheet");
        return ExitCode::from(1);
    };
    if std::env::args().any(|a| a == "--range") {
        return match wb.worksheet_range(&sheet) {
            Ok(r) => {
                println!("rows={} cells={}", r.height(), r.used_cells().count());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{path}: {e}");
                ExitCode::from(1)
            }
        };
    }
    let mut cells = match wb.worksheet_cells_reader(&sheet) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::from(1);
        }
    };
    let (mut n, mut rows, mut last) = (0u64, 0u64, u32::MAX);
    loop {
        match cells.next_cell() {
            Ok(Some(c)) => {
                n += 1;
                let (r, _) = c.get_position();
                if r != last {
                    rows += 1;
                    last = r;
                }
            }
            Ok(None) => break,
            Err(e) => {
                eprintln!("{path}: {e}");
                return ExitCode::from(1);
            }
        }
    }
    println!("rows={rows} cells={n}");
    ExitCode::SUCCESS
}
