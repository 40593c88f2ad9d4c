//! A minimal loopback ERP for the HTTP benchmark: HTTP/1.1 with keep-alive, one thread
//! per connection, answers every request `201 {"id":N}` at once. It binds 127.0.0.1
//! only and stops by itself after `--seconds` (default 900). Run by `scripts/bench`;
//! not part of `cargo test`.
//!
//!     http_server PORT [--seconds N]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static REQUESTS: AtomicU64 = AtomicU64::new(0);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port: u16 = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .and_then(|p| p.parse().ok())
        .unwrap_or(18080);
    let seconds: u64 = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(900);
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind 127.0.0.1");
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(seconds));
        eprintln!(
            "http_server: {seconds}s are up after {} requests; stopping",
            REQUESTS.load(Ordering::Relaxed)
        );
        std::process::exit(0);
    });
    println!("listening on 127.0.0.1:{port}");
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        std::thread::spawn(move || {
            let _ = serve(stream);
        });
    }
}

fn serve(stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(64 * 1024, stream.try_clone()?);
    let mut writer = stream;
    let mut line = String::new();
    let mut body = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line.trim().is_empty() {
            continue;
        }
        let mut length = 0usize;
        let mut close = false;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("connection") {
                    close = value.trim().eq_ignore_ascii_case("close");
                }
            }
        }
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
        let n = REQUESTS.fetch_add(1, Ordering::Relaxed) + 1;
        let answer = format!("{{\"id\":{n}}}");
        write!(
            writer,
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        )?;
        writer.flush()?;
        if close {
            return Ok(());
        }
    }
}
