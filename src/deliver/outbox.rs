//! The outbox target: one payload file per document, written atomically, named
//! `<document>-<key>.<ext>`.

use super::{Delivery, DocContext, LocalTarget, SubmitOutcome, Target};
use crate::config::PayloadFormat;
use crate::fsutil::{sync_dir, DurableBatch};
use crate::spool::SpooledDoc;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
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
}

impl Target for Outbox {
    fn delivery(&self) -> Delivery<'_> {
        Delivery::Local(self)
    }
}

impl LocalTarget for Outbox {
    fn write(&self, ctx: &DocContext<'_>, doc: &SpooledDoc) -> SubmitOutcome {
        let path = self.path_of(ctx.document_type, &doc.key);
        let staged = match self.staged.lock() {
            Ok(mut b) => b.stage(&path, &doc.body),
            Err(_) => Err(std::io::Error::other("the outbox batch is poisoned")),
        };
        match staged {
            Ok(()) => SubmitOutcome::Accepted {
                id: Some(
                    path.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                ),
            },
            // only staged: nothing is visible in the outbox
            Err(e) => SubmitOutcome::Unavailable {
                message: format!("cannot write {}: {e}", path.display()),
                maybe_delivered: false,
            },
        }
    }

    fn already_there(&self, ctx: &DocContext<'_>, doc: &SpooledDoc) -> bool {
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
