//! The floor for XML: only parse the file with quick-xml's streaming reader
//! (`read_event_into`, no namespaces, no UTF-8 or line bookkeeping, no mapping),
//! counting the `<Line>` elements. Run by `scripts/bench`; not part of `cargo test`.
//!
//!     floor_xml FILE

use quick_xml::events::Event;
use std::io::BufReader;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let Some(path) = args.first() else {
        eprintln!("usage: floor_xml FILE");
        return ExitCode::from(2);
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::from(1);
        }
    };
    let mut reader = quick_xml::Reader::from_reader(BufReader::with_capacity(256 * 1024, file));
    let mut buf = Vec::new();
    let (mut lines, mut events) = (0u64, 0u64);
    loop {
        buf.clear();
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                events += 1;
                if e.name().as_ref() == b"Line" {
                    lines += 1;
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => events += 1,
            Err(e) => {
                eprintln!("{path}: {e}");
                return ExitCode::from(1);
            }
        }
    }
    println!("lines={lines} events={events}");
    ExitCode::SUCCESS
}
