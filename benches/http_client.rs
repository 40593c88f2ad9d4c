//! The plain client the HTTP benchmark compares erpdrop with: POSTs every payload file
//! of a folder (as `erpdrop validate --emit` wrote them) with ureq, keep-alive, at a
//! given concurrency, with a `Content-Type` and an `Idempotency-Key` header, and reads
//! the id from each answer. With `--batch N`, it posts the payloads N at a time as one
//! JSON array (an `Idempotency-Key` for each batch) and checks that the answer's `/ids`
//! holds an id for each. With `--ledger FILE` as well, it keeps the least ledger that
//! the batch's promise needs (every document of a batch durable in flight before the
//! request, its outcome with its own id and a history line after the answer: one SQLite
//! file in WAL, `synchronous = NORMAL`, a commit before and one after each request, one
//! connection for all workers), and nothing else: the floor of a client that keeps
//! erpdrop's promise. Run by `scripts/bench`; not part of `cargo test`.
//!
//!     http_client URL DIR CONCURRENCY [--batch N [--ledger FILE]]

use sha2::{Digest, Sha256};
use std::io::Read;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let batch: Option<usize> = all
        .iter()
        .position(|a| a == "--batch")
        .and_then(|i| all.get(i + 1))
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0);
    let ledger: Option<String> = all
        .iter()
        .position(|a| a == "--ledger")
        .and_then(|i| all.get(i + 1))
        .cloned();
    let args: Vec<String> = all
        .iter()
        .enumerate()
        .filter(|(i, a)| {
            !a.starts_with("--")
                && (*i == 0 || (all[i - 1] != "--batch" && all[i - 1] != "--ledger"))
        })
        .map(|(_, a)| a.clone())
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
    if let Some(size) = batch {
        let ledger = match ledger.as_deref().map(open_ledger).transpose() {
            Ok(l) => l.map(Mutex::new),
            Err(e) => {
                eprintln!("ledger: {e}");
                return ExitCode::from(1);
            }
        };
        return batched(&agent, url, &docs, workers, size, ledger.as_ref());
    }
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

/// The payloads `size` at a time, each batch one JSON array.
fn batched(
    agent: &ureq::Agent,
    url: &str,
    docs: &[(String, Vec<u8>)],
    workers: usize,
    size: usize,
    ledger: Option<&Mutex<rusqlite::Connection>>,
) -> ExitCode {
    let batches: Vec<&[(String, Vec<u8>)]> = docs.chunks(size).collect();
    // erpdrop has its documents' content hashes before it submits: so does the floor
    let hashes: Vec<String> = match ledger {
        Some(_) => docs
            .iter()
            .map(|(_, p)| hex::encode(Sha256::digest(p)))
            .collect(),
        None => Vec::new(),
    };
    let hash_batches: Vec<&[String]> = hashes.chunks(size).collect();
    let next = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(batch) = batches.get(i) else {
                    break;
                };
                let mut h = Sha256::new();
                let mut body =
                    Vec::with_capacity(batch.iter().map(|(_, b)| b.len() + 1).sum::<usize>() + 2);
                body.push(b'[');
                for (j, (name, payload)) in batch.iter().enumerate() {
                    h.update(name.as_bytes());
                    if j > 0 {
                        body.push(b',');
                    }
                    body.extend_from_slice(payload);
                }
                body.push(b']');
                if let Some(l) = ledger {
                    mark_in_flight(&mut l.lock().expect("the ledger"), batch, hash_batches[i])
                        .expect("mark in flight");
                }
                let res = agent
                    .post(url)
                    .set("Content-Type", "application/json")
                    .set("Idempotency-Key", &hex::encode(h.finalize()))
                    .send_bytes(&body);
                let ids = res.ok().and_then(|r| {
                    let mut text = String::new();
                    let _ = r.into_reader().take(1 << 20).read_to_string(&mut text);
                    serde_json::from_str::<serde_json::Value>(&text)
                        .ok()
                        .and_then(|v| v.pointer("/ids").and_then(|a| a.as_array()).cloned())
                });
                if let (Some(l), Some(ids)) = (ledger, &ids) {
                    record(&mut l.lock().expect("the ledger"), batch, ids).expect("record");
                }
                if ids.map(|a| a.len()) != Some(batch.len()) {
                    failed.fetch_add(batch.len(), Ordering::Relaxed);
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    println!(
        "documents={} batches={} failed={} seconds={secs:.3} per_second={:.0}",
        docs.len(),
        batches.len(),
        failed.load(Ordering::Relaxed),
        docs.len() as f64 / secs
    );
    ExitCode::SUCCESS
}

/// The least ledger a batch's promise needs: a document's row by its key, and its
/// history.
fn open_ledger(path: &str) -> rusqlite::Result<rusqlite::Connection> {
    let _ = std::fs::remove_file(path);
    let conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(
        "CREATE TABLE documents (key TEXT PRIMARY KEY, content_hash TEXT NOT NULL,
             state TEXT NOT NULL, target_id TEXT, updated TEXT NOT NULL) WITHOUT ROWID;
         CREATE TABLE history (seq INTEGER PRIMARY KEY, time TEXT NOT NULL, key TEXT NOT NULL,
             outcome TEXT NOT NULL, erp_id TEXT);
         CREATE INDEX history_document ON history(key, seq);",
    )?;
    Ok(conn)
}

fn now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:06}", d.as_secs(), d.subsec_micros())
}

/// Every document of the batch in flight, one commit, before the request.
fn mark_in_flight(
    conn: &mut rusqlite::Connection,
    batch: &[(String, Vec<u8>)],
    hashes: &[String],
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut st = tx.prepare_cached(
            "INSERT INTO documents (key, content_hash, state, updated) VALUES (?1, ?2, 'in_flight', ?3)
             ON CONFLICT (key) DO UPDATE SET content_hash = excluded.content_hash,
               state = 'in_flight', updated = excluded.updated",
        )?;
        let t = now();
        for ((name, _), hash) in batch.iter().zip(hashes) {
            st.execute((name, hash, &t))?;
        }
    }
    tx.commit()
}

/// Every document's outcome with its own id, and its history line, one commit.
fn record(
    conn: &mut rusqlite::Connection,
    batch: &[(String, Vec<u8>)],
    ids: &[serde_json::Value],
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut done = tx.prepare_cached(
            "UPDATE documents SET state = 'accepted', target_id = ?2, updated = ?3 WHERE key = ?1",
        )?;
        let mut history = tx.prepare_cached(
            "INSERT INTO history (time, key, outcome, erp_id) VALUES (?1, ?2, 'accepted', ?3)",
        )?;
        let t = now();
        for ((name, _), id) in batch.iter().zip(ids) {
            let id = id.to_string();
            done.execute((name, &id, &t))?;
            history.execute((&t, name, &id))?;
        }
    }
    tx.commit()
}
