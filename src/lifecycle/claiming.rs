//! Claiming a file: one atomic rename from the inbox into processing/, then a check
//! that the claimed entry is the very file the scan listed.

use crate::config::Folders;
use crate::fsutil::{free_name, move_no_clobber, sync_dir, FileId};
use std::fs::{self};
use std::io;
use std::path::{Path, PathBuf};

/// A file taken out of the inbox for this run.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Its name in the inbox.
    pub name: String,
    /// Where it is now (in processing/).
    pub path: PathBuf,
    /// The regular file that was claimed: the only one that is read and moved.
    pub id: FileId,
    /// Its ready marker, moved along (in processing/).
    pub marker: Option<PathBuf>,
}

/// Claims a file that the scan saw as the regular file `seen`: one atomic rename into
/// processing/, then its marker. `Ok(None)` when the file is gone (taken by someone
/// else, or deleted), or when the name no longer is that file: swapped for a symbolic
/// link, something that is not a regular file, or another file since the scan. Such an
/// entry goes back to the inbox untouched (logged), never opened.
pub fn claim(
    file: &Path,
    seen: FileId,
    folders: &Folders,
    marker: Option<&Path>,
) -> io::Result<Option<Claimed>> {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let to = free_name(&folders.processing, &name, &[]);
    match fs::rename(file, &to) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    }
    // a rename moves whatever the name held: look at what was moved, without following
    let md = fs::symlink_metadata(&to)?;
    if !md.is_file() || FileId::of(&md) != seen {
        let what = if md.file_type().is_symlink() {
            "a symbolic link"
        } else if !md.is_file() {
            "not a regular file"
        } else {
            "another file than the one listed"
        };
        let back = put_back(&to, &folders.inbox, &name);
        match &back {
            Ok(p) => tracing::warn!(
                file = %name,
                "the name became {what} after the inbox was listed; not read, left in the inbox as {}",
                p.display()
            ),
            Err(e) => tracing::error!(
                file = %name,
                "the name became {what} after the inbox was listed; not read, and it cannot go back to the inbox ({e}): it stays in processing/"
            ),
        }
        sync_dir(&folders.inbox);
        return Ok(None);
    }
    let marker = match marker {
        Some(m) if m.exists() => {
            let mto = folders.processing.join(format!(
                "{}{}",
                to.file_name().unwrap_or_default().to_string_lossy(),
                marker_suffix(&name, m)
            ));
            match fs::rename(m, &mto) {
                Ok(()) => Some(mto),
                Err(e) => {
                    tracing::warn!(marker = %m.display(), "could not move the ready marker: {e}");
                    None
                }
            }
        }
        _ => None,
    };
    sync_dir(&folders.processing);
    Ok(Some(Claimed {
        name,
        path: to,
        id: FileId::of(&md),
        marker,
    }))
}

/// Moves an entry (a link itself, never what it points at) into `dir` under a free
/// name built from `name`, never overwriting.
pub(super) fn put_back(from: &Path, dir: &Path, name: &str) -> io::Result<PathBuf> {
    loop {
        let to = free_name(dir, name, &[]);
        match move_no_clobber(from, &to) {
            Ok(()) => return Ok(to),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The part of a marker's name after its file's name (`.ok` for `INV.csv.ok`), or the
/// marker's whole name with a `.marker` prefix when it is not built from the file name.
fn marker_suffix(file_name: &str, marker: &Path) -> String {
    let m = marker
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match m.strip_prefix(file_name) {
        Some(rest) if !rest.is_empty() => rest.to_string(),
        _ => format!(".marker-{m}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::lifecycle::test_folders::{folders, id};
    use crate::lifecycle::{settle_into, FAILED_SIDECARS};

    #[cfg(unix)]
    #[test]
    fn a_claim_takes_only_the_file_that_was_listed() {
        let d = tempfile::tempdir().unwrap();
        let f = folders(d.path());
        let a = f.inbox.join("A.csv");
        fs::write(&a, "listed").unwrap();
        let seen = id(&a);
        // swapped for a link: back in the inbox, still a link, target untouched
        let outside = d.path().join("outside.csv");
        fs::write(&outside, "secret").unwrap();
        fs::remove_file(&a).unwrap();
        std::os::unix::fs::symlink(&outside, &a).unwrap();
        assert!(claim(&a, seen, &f, None).unwrap().is_none());
        assert!(fs::symlink_metadata(&a).unwrap().file_type().is_symlink());
        assert_eq!(fs::read_dir(&f.processing).unwrap().count(), 0);
        // swapped for another file: back, unread
        fs::remove_file(&a).unwrap();
        fs::write(&a, "other").unwrap();
        assert!(claim(&a, seen, &f, None).unwrap().is_none());
        assert_eq!(fs::read_to_string(&a).unwrap(), "other");
        // the listed file itself is claimed; replaced in processing/, it is not moved
        let c = claim(&a, id(&a), &f, None).unwrap().unwrap();
        assert_eq!(c.id, id(&c.path));
        fs::remove_file(&c.path).unwrap();
        fs::write(&c.path, "planted").unwrap();
        let e = settle_into(&c, &f, &f.failed, FAILED_SIDECARS).unwrap_err();
        assert!(e.to_string().contains("no longer the file"), "{e}");
        assert_eq!(fs::read_dir(&f.failed).unwrap().count(), 0);
    }
}
