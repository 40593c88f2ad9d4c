//! The outbox target: one payload file per document, written atomically, named
//! `<document>-<key>.<ext>`.

use super::{Delivery, DocContext, LocalTarget, SubmitOutcome, Target};
use crate::config::PayloadFormat;
use crate::fsutil::{sync_dir, DurableBatch};
use crate::ledger::Operation;
use crate::spool::SpooledDoc;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Payload files written between two durability barriers.
const BATCH: usize = 256;

/// Bytes of a document key in an outbox file name, and of a document type: with the
/// hash, the separators and the extension a name stays far below the 255 bytes that
/// file systems allow, whatever the script of the key (a CJK character is 3 bytes).
const KEY_BYTES: usize = 120;
const TYPE_BYTES: usize = 60;

/// A key made safe for a file name of at most `max` bytes (plus 9 for the hash).
/// Characters other than letters, digits, `.`, `_` and `-` become `_`; when anything
/// was changed or cut, a short hash of the real key is appended so that `A/1` and
/// `A_1` cannot meet in one file.
pub fn safe_key(key: &str) -> String {
    safe_part(key, KEY_BYTES)
}

fn safe_part(key: &str, max: usize) -> String {
    let mut out = String::with_capacity(key.len().min(max));
    let mut changed = false;
    for c in key.chars() {
        let c = if c.is_alphanumeric() || matches!(c, '.' | '_' | '-') {
            c
        } else {
            changed = true;
            '_'
        };
        if out.len() + c.len_utf8() > max {
            changed = true;
            break;
        }
        out.push(c);
    }
    if out.starts_with('.') {
        out.replace_range(..1, "_");
        changed = true;
    }
    if changed || out.is_empty() {
        let h = hex::encode(Sha256::digest(key.as_bytes()));
        out.push('-');
        out.push_str(&h[..8]);
    }
    out
}

/// The outbox file name of a document.
pub fn payload_file_name(document_type: &str, key: &str, format: PayloadFormat) -> String {
    format!(
        "{}-{}.{}",
        safe_part(document_type, TYPE_BYTES),
        safe_key(key),
        format.extension()
    )
}

/// The outbox file name of an update or a delete: the operation and an order a reader
/// sorts by (`sales_invoice-INV1.update.01764583500123456789.json`): each is a file of
/// its own, so that a reader that applies them in that order applies them as they were
/// decided.
pub fn operation_file_name(
    document_type: &str,
    key: &str,
    op: Operation,
    order: u64,
    format: PayloadFormat,
) -> String {
    format!(
        "{}-{}.{}.{order:020}.{}",
        safe_part(document_type, TYPE_BYTES),
        safe_key(key),
        op.as_str(),
        format.extension()
    )
}

/// A number that only grows within this process, from the clock (nanoseconds since
/// 1970): an order for update and delete files that also sorts across runs.
fn next_order() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(l) => last = l,
        }
    }
}

/// Writes payload files in batches: each file is staged under a temporary name and
/// the batch is made durable with one barrier ([`DurableBatch`]) at
/// [`flush`](LocalTarget::flush), before the ledger records the documents as accepted.
pub struct Outbox {
    dir: PathBuf,
    format: PayloadFormat,
    staged: Mutex<DurableBatch>,
}

impl Outbox {
    pub fn new(dir: &Path, format: PayloadFormat) -> Outbox {
        Outbox {
            dir: dir.to_path_buf(),
            format,
            staged: Mutex::new(DurableBatch::new()),
        }
    }

    pub fn path_of(&self, document_type: &str, key: &str) -> PathBuf {
        self.dir
            .join(payload_file_name(document_type, key, self.format))
    }

    /// What a delete's file holds: which document goes, by its key and the ERP's id.
    fn delete_record(&self, ctx: &DocContext<'_>, doc: &SpooledDoc) -> Vec<u8> {
        let id = doc.erp_id.as_deref().unwrap_or("");
        match self.format {
            PayloadFormat::Json => {
                let mut v = serde_json::to_vec_pretty(&serde_json::json!({
                    "operation": "delete",
                    "document": ctx.document_type,
                    "key": doc.key,
                    "id": id,
                }))
                .expect("a delete record serialises");
                v.push(b'\n');
                v
            }
            PayloadFormat::Xml => {
                let esc = |t: &str| quick_xml::escape::escape(t).into_owned();
                format!(
                    "<delete document=\"{}\"><key>{}</key><id>{}</id></delete>\n",
                    esc(ctx.document_type),
                    esc(&doc.key),
                    esc(id)
                )
                .into_bytes()
            }
        }
    }
}

impl Target for Outbox {
    fn delivery(&self) -> Delivery<'_> {
        Delivery::Local(self)
    }
}

impl LocalTarget for Outbox {
    fn write(&self, ctx: &DocContext<'_>, doc: &SpooledDoc) -> SubmitOutcome {
        let (path, body) = match doc.operation {
            Operation::Create => (self.path_of(ctx.document_type, &doc.key), None),
            op => {
                let name =
                    operation_file_name(ctx.document_type, &doc.key, op, next_order(), self.format);
                let body = (op == Operation::Delete).then(|| self.delete_record(ctx, doc));
                (self.dir.join(name), body)
            }
        };
        let staged = match self.staged.lock() {
            Ok(mut b) => b.stage(&path, body.as_deref().unwrap_or(&doc.body)),
            Err(_) => Err(std::io::Error::other("the outbox batch is poisoned")),
        };
        match staged {
            // the id of a created document is its file's name; an update or a delete
            // keeps the one it has
            Ok(()) => SubmitOutcome::Accepted {
                id: (doc.operation == Operation::Create).then(|| {
                    path.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                }),
                status: None,
            },
            // only staged: nothing is visible in the outbox
            Err(e) => SubmitOutcome::Unavailable {
                message: format!("cannot write {}: {e}", path.display()),
                maybe_delivered: false,
            },
        }
    }

    fn already_there(&self, ctx: &DocContext<'_>, doc: &SpooledDoc) -> bool {
        // an update or a delete file has an order of its own: one a dead run wrote
        // cannot be told apart, so it is written again (an update or a delete applied
        // twice gives the same result)
        if doc.operation != Operation::Create {
            return false;
        }
        let path = self.path_of(ctx.document_type, &doc.key);
        let same = std::fs::read(&path).map(|b| b == doc.body).unwrap_or(false);
        // A dead run's file is visible; make sure it is durable before it counts.
        same && std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map(|()| sync_dir(&self.dir))
            .is_ok()
    }

    fn batch_size(&self) -> usize {
        BATCH
    }

    fn flush(&self) -> Result<(), String> {
        let mut b = self
            .staged
            .lock()
            .map_err(|_| "the outbox batch is poisoned".to_string())?;
        b.commit()
            .map_err(|e| format!("cannot write into {}: {e}", self.dir.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_safe_names() {
        assert_eq!(safe_key("INV0042"), "INV0042");
        let a = safe_key("A/1");
        let b = safe_key("A_1");
        assert_ne!(a, b);
        assert!(a.starts_with("A_1-"), "{a}");
        assert!(!safe_key("../etc").contains('/'));
        assert!(!safe_key("..").starts_with(".."));
    }

    #[test]
    fn names_are_bounded_in_bytes_whatever_the_script() {
        let cjk = "請求書".repeat(30); // 90 characters, 270 bytes
        let long_type = "型".repeat(100);
        let name = payload_file_name(&long_type, &cjk, PayloadFormat::Json);
        assert!(name.len() <= 255, "{} bytes", name.len());
        assert!(name.ends_with(".json"));
        // two long keys that share their first 40 characters stay apart
        let other = format!("{}X", "請求書".repeat(40));
        assert_ne!(safe_key(&"請求書".repeat(41)), safe_key(&other));
        // a short key is kept as it is
        assert_eq!(safe_key("請求書-1"), "請求書-1");
    }
}
