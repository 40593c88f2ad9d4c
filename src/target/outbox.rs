//! The outbox target: one payload file per document, written atomically, named
//! `<document>-<key>.<ext>`.

use super::{DocContext, SubmitOutcome, Target};
use crate::config::PayloadFormat;
use crate::fsutil::{sync_dir, DurableBatch};
use crate::spool::SpooledDoc;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Payload files written between two durability barriers.
const BATCH: usize = 256;

/// A key made safe for a file name. Characters other than letters, digits, `.`, `_` and
/// `-` become `_`; when anything was changed, a short hash of the real key is appended
/// so that `A/1` and `A_1` cannot meet in one file.
pub fn safe_key(key: &str) -> String {
    let mut out: String = key
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with('.') {
        out = out.replacen('.', "_", 1);
    }
    let mut changed = out != key || out.is_empty();
    if out.chars().count() > 100 {
        out = out.chars().take(100).collect();
        changed = true;
    }
    if changed {
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
        safe_key(document_type),
        safe_key(key),
        format.extension()
    )
}

/// Writes payload files in batches: each file is staged under a temporary name and
/// the batch is made durable with one barrier ([`DurableBatch`]) at
/// [`flush`](Target::flush), before the ledger records the documents as accepted.
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
    fn submit(&self, ctx: &DocContext<'_>, doc: &SpooledDoc) -> SubmitOutcome {
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
            Err(e) => SubmitOutcome::Unavailable {
                message: format!("cannot write {}: {e}", path.display()),
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
}
