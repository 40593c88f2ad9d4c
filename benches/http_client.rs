//! The plain client the HTTP benchmark compares erpdrop with: POSTs every payload file
//! of a folder (as `erpdrop validate --emit` wrote them) with ureq, keep-alive, at a
//! given concurrency, with a `Content-Type` and an `Idempotency-Key` header, and reads
//! the id from each answer. Run by `scripts/bench`; not part of `cargo test`.
//!
//!     http_client URL DIR CONCURRENCY

use sha2::{Digest, Sha256};
use std::io::Read;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let (Some(url), Some(dir)) = (args.first(), args.get(1)) else {
        eprintln!("usage: http_client URL DIR CONCURRENCY");
        return ExitCode::from(2);
    };
    let workers: usize = args.get(2).and_then(|c| c.parse().ok()).unwrap_or(1).max(1);
    let mut docs: Vec<(String, Vec<u8>)> = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{dir}: {e}");
            return ExitCode::from(1);
        }
    };
    for e in entries.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") {
            docs.push((name, std::fs::read(e.path()).expect("read a payload")));
        }
    }
    docs.sort();
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .max_idle_connections_per_host(workers * 2)
        .build();
    let next = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((name, body)) = docs.get(i) else {
                    break;
                };
                let key = hex::encode(Sha256::digest(name.as_bytes()));
                let res = agent
                    .post(url)
                    .set("Content-Type", "application/json")
                    .set("Idempotency-Key", &key)
                    .send_bytes(body);
                match res {
                    Ok(r) => {
                        let mut text = String::new();
                        let _ = r.into_reader().take(1 << 20).read_to_string(&mut text);
                        let id = serde_json::from_str::<serde_json::Value>(&text)
                            .ok()
                            .and_then(|v| v.pointer("/id").cloned());
                        if id.is_none() {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    println!(
        "documents={} failed={} seconds={secs:.3} per_second={:.0}",
        docs.len(),
        failed.load(Ordering::Relaxed),
        docs.len() as f64 / secs
    );
    ExitCode::SUCCESS
}
