//! A minimal loopback ERP for the HTTP benchmark: HTTP/1.1 with keep-alive, one thread
//! per connection, answers every request `201 {"id":N}` at once, and a batch (a body
//! that is a JSON array) `201 {"ids":[N, ...]}`, an id for each element. It binds 127.0.0.1
//! only and stops by itself after `--seconds` (default 900). Run by `scripts/bench`;
//! not part of `cargo test`.
//!
//!     http_server PORT [--seconds N]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static REQUESTS: AtomicU64 = AtomicU64::new(0);
/// The next id of a document created in a batch.
static IDS: AtomicU64 = AtomicU64::new(1 << 40);

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
        let answer = match elements(&body) {
            Some(k) => {
                let first = IDS.fetch_add(k as u64, Ordering::Relaxed);
                let ids: Vec<String> = (first..first + k as u64).map(|i| i.to_string()).collect();
                format!("{{\"ids\":[{}]}}", ids.join(","))
            }
            None => format!("{{\"id\":{n}}}"),
        };
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

/// How many elements a body that is a JSON array has (`None`: not an array): its
/// top-level commas, outside strings, counted in one pass.
fn elements(body: &[u8]) -> Option<usize> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    if body[start] != b'[' {
        return None;
    }
    let inner = &body[start + 1..];
    let first = inner.iter().position(|b| !b.is_ascii_whitespace())?;
    if inner[first] == b']' {
        return Some(0);
    }
    let (mut depth, mut commas, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in inner {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => depth += 1,
            b']' | b'}' if depth == 0 => break,
            b']' | b'}' => depth -= 1,
            b',' if depth == 0 => commas += 1,
            _ => {}
        }
    }
    Some(commas + 1)
}
