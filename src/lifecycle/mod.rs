//! The drop-folder lifecycle: finding ready files, claiming them, moving them to
//! done/ or failed/, the run lock, and recovery of what a dead run left behind.
//!
//! Every file is in exactly one place at any moment: a claim is one atomic rename
//! (inbox -> processing), and the moves out of processing/ never overwrite anything.

mod claiming;
mod lock;
mod moves;
pub mod scan;

pub use claiming::{claim, Claimed};
pub use lock::{try_lock, RunLock};
pub use moves::{
    recover_move, recover_processing, return_to_inbox, settle_into, settle_with, Intent, Recovered,
    MOVING,
};

use crate::config::Folders;
use crate::fsutil::is_link;
use std::fs::{self};
use std::io;
use std::path::{Path, PathBuf};

/// The sidecar suffixes of a file in failed/.
pub const FAILED_SIDECARS: &[&str] = &[
    ".errors.json",
    ".errors.csv",
    crate::fsutil::REJECTED_SIDECAR,
];
/// The sidecar suffix of a file in done/.
pub const DONE_SIDECARS: &[&str] = &[".report.json"];

/// The first folder under the drop root that is a symbolic link, if any: inbox/,
/// processing/, done/ and today's folder in it, failed/ and failed/.history/,
/// .erpdrop/, and every folder from the root down to `outbox` when the outbox is under
/// the root. erpdrop never reads or writes through such a link (files and reports would
/// land outside the drop); the root itself may be one.
pub fn linked_folder(f: &Folders, outbox: Option<&Path>) -> Option<PathBuf> {
    let day = f
        .done
        .join(chrono::Local::now().format("%Y-%m-%d").to_string());
    let history = f.failed.join(".history");
    let dirs: [&Path; 7] = [
        &f.inbox,
        &f.processing,
        &f.done,
        &day,
        &f.failed,
        &history,
        &f.state,
    ];
    if let Some(d) = dirs.iter().find(|d| is_link(d)) {
        return Some(d.to_path_buf());
    }
    let rel = outbox.and_then(|o| o.strip_prefix(&f.root).ok())?;
    let mut at = f.root.clone();
    for c in rel.components() {
        at.push(c);
        if is_link(&at) {
            return Some(at);
        }
    }
    None
}

/// An error for a folder that is a symbolic link.
fn linked(dir: &Path) -> io::Error {
    io::Error::other(format!(
        "{} is a symbolic link; erpdrop never writes through one",
        dir.display()
    ))
}

/// Creates the drop folders that are missing.
pub fn ensure_folders(f: &Folders) -> io::Result<()> {
    for d in [&f.inbox, &f.processing, &f.done, &f.failed, &f.state] {
        fs::create_dir_all(d)?;
    }
    Ok(())
}

/// Moves a file of failed/ back to the inbox (reprocess, and `[retry]`): its reports
/// and rejected rows to `history` (a folder under `failed/.history/`), its ready marker
/// (`marker`: the pattern) beside it. The path it has in the inbox; `Err` says what
/// could not be moved, nothing else moved after it.
pub fn back_to_inbox(
    f: &Folders,
    file: &Path,
    marker: Option<&str>,
    history: &Path,
) -> Result<PathBuf, String> {
    use crate::fsutil::{free_name, move_no_clobber, sidecar_name};
    let name = file
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let dir = file.parent().unwrap_or(&f.failed);
    for side in FAILED_SIDECARS {
        let side_name = sidecar_name(&name, side);
        let s = dir.join(&side_name);
        if s.exists() {
            fs::create_dir_all(history)
                .map_err(|e| format!("cannot create {}: {e}", history.display()))?;
            let to = free_name(history, &side_name, &[]);
            move_no_clobber(&s, &to)
                .map_err(|e| format!("cannot keep the old report {}: {e}", s.display()))?;
        }
    }
    let to = free_name(&f.inbox, &name, &[]);
    move_no_clobber(file, &to)
        .map_err(|e| format!("cannot move {} to the inbox: {e}", file.display()))?;
    if let Some(pattern) = marker {
        let m = scan::marker_path(file, pattern);
        if m.exists() {
            let _ = move_no_clobber(&m, &scan::marker_path(&to, pattern));
        }
    }
    Ok(to)
}

#[cfg(test)]
pub(crate) mod test_folders {
    use super::*;

    /// Drop folders under `root`, created.
    pub fn folders(root: &Path) -> Folders {
        let f = Folders {
            root: root.to_path_buf(),
            inbox: root.join("inbox"),
            processing: root.join("processing"),
            done: root.join("done"),
            failed: root.join("failed"),
            state: root.join(".erpdrop"),
        };
        ensure_folders(&f).unwrap();
        f
    }

    /// The identity of the file at `p`.
    pub fn id(p: &Path) -> crate::fsutil::FileId {
        crate::fsutil::FileId::of(&fs::symlink_metadata(p).unwrap())
    }
}
