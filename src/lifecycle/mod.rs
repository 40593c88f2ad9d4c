//! The drop-folder lifecycle: finding ready files, claiming them, moving them to
//! done/ or failed/, the run lock, and recovery of what a dead run left behind.
//!
//! Every file is in exactly one place at any moment: a claim is one atomic rename
//! (inbox -> processing), and the moves out of processing/ never overwrite anything.

pub mod scan;

use crate::config::Folders;
use crate::fsutil::{free_name, is_link, move_no_clobber, sync_dir, FileId};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// The sidecar suffixes of a file in failed/.
pub const FAILED_SIDECARS: &[&str] = &[".errors.json", ".errors.csv"];
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

/// The run lock: OS locks released when the process ends, however it ends (no PID file
/// for a crash to leave behind). Two are held: one on `.erpdrop/lock`, which older
/// builds look at, and one on the `.erpdrop` folder itself, which a user cannot swap
/// for another by removing or replacing a file: a second run that finds `lock` gone and
/// creates and locks a new one still finds the folder locked.
pub struct RunLock {
    _file: File,
    _dir: Option<File>,
}

/// Takes the run lock; `Ok(None)` when another run holds it.
pub fn try_lock(state_dir: &Path) -> io::Result<Option<RunLock>> {
    fs::create_dir_all(state_dir)?;
    let path = state_dir.join("lock");
    // A lock file removed between our open and our lock would leave us holding a file
    // nobody else can see (older builds would then get in): check the name still
    // holds the locked file, and take it again if not.
    let mut tries = 0;
    let file = loop {
        let file = open_lock_file(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Ok(None),
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        let held = file.metadata().map(|m| FileId::of(&m))?;
        let named = fs::symlink_metadata(&path).map(|m| FileId::of(&m)).ok();
        tries += 1;
        if named == Some(held) || tries >= 10 {
            break file;
        }
    };
    #[cfg(unix)]
    let dir = match lock_dir(state_dir) {
        Ok(Some(d)) => Some(d),
        Ok(None) => return Ok(None),
        Err(e) => {
            // e.g. NFS, where an exclusive lock needs a descriptor open for writing
            tracing::debug!(dir = %state_dir.display(), "this file system cannot lock a folder ({e}); the run lock is the lock file alone");
            None
        }
    };
    // elsewhere the lock file cannot be removed while it is held (see open_lock_file)
    #[cfg(not(unix))]
    let dir = None;
    Ok(Some(RunLock {
        _file: file,
        _dir: dir,
    }))
}

#[cfg(unix)]
fn open_lock_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

#[cfg(windows)]
fn open_lock_file(path: &Path) -> io::Result<File> {
    use std::os::windows::fs::OpenOptionsExt;
    // no FILE_SHARE_DELETE: while held, the file cannot be removed or replaced
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .share_mode(0x1 | 0x2)
        .open(path)
}

#[cfg(not(any(unix, windows)))]
fn open_lock_file(path: &Path) -> io::Result<File> {
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

/// Locks the folder itself; `Ok(None)` when another run holds it.
#[cfg(unix)]
fn lock_dir(dir: &Path) -> io::Result<Option<File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY)
        .open(dir)?;
    match f.try_lock() {
        Ok(()) => Ok(Some(f)),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

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
fn put_back(from: &Path, dir: &Path, name: &str) -> io::Result<PathBuf> {
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

/// Moves a claimed file (and its marker) into `dir`, under a free name; returns the path.
pub fn settle_into(c: &Claimed, f: &Folders, dir: &Path, sidecars: &[&str]) -> io::Result<PathBuf> {
    settle_with(c, f, dir, sidecars, &mut |_| Ok(()))
}

/// The name of the record of a move out of processing/ in progress, in `.erpdrop/`.
pub const MOVING: &str = "moving.json";

/// The record of a move out of processing/ in progress (`.erpdrop/moving.json`),
/// written durably before the file's reports and its move, removed after: a run killed
/// in between leaves it for [`recover_move`]. A move is a hard link to the new name,
/// then the removal of the old one, so a kill can leave the file under both names, or
/// its reports in place without the file. Paths are relative to the drop root.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Intent {
    /// The file in processing/.
    pub from: PathBuf,
    /// Where it goes.
    pub to: PathBuf,
    /// The reports written next to `to` before the move.
    #[serde(default)]
    pub reports: Vec<PathBuf>,
    /// Its ready marker in processing/, and where that goes.
    #[serde(default)]
    pub marker: Option<PathBuf>,
    #[serde(default)]
    pub marker_to: Option<PathBuf>,
    /// The file's identity: a record that does not name the file it finds is stale (a
    /// power cut can bring back a removed record) and is ignored.
    #[serde(default)]
    pub id: Option<FileId>,
}

impl Intent {
    fn write(&self, f: &Folders) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        crate::fsutil::write_atomic(&f.state.join(MOVING), &bytes)?;
        // before any report appears, the record that names it is on disk
        sync_dir(&f.state);
        Ok(())
    }
}

fn relative(f: &Folders, p: &Path) -> PathBuf {
    p.strip_prefix(&f.root).unwrap_or(p).to_path_buf()
}

fn remove_intent(f: &Folders) {
    if let Err(e) = fs::remove_file(f.state.join(MOVING)) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!("cannot remove {}: {e}", f.state.join(MOVING).display());
        }
    }
}

/// As [`settle_into`], calling `before` with the chosen path before the move, so that a
/// file's report (and its line in the ledger) is in place before the file itself
/// appears. The move is recorded first ([`Intent`]); if `before` or the move fails, the
/// reports written for it are removed and the file stays in processing/. When the name
/// is taken between the choice and the move, `before` is called again with the next.
pub fn settle_with(
    c: &Claimed,
    f: &Folders,
    dir: &Path,
    sidecars: &[&str],
    before: &mut dyn FnMut(&Path) -> io::Result<()>,
) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    // a day folder made a link since the run's start is refused like the others
    if is_link(dir) {
        return Err(linked(dir));
    }
    // only the file that was claimed leaves processing/
    match fs::symlink_metadata(&c.path) {
        Ok(md) if md.is_file() && FileId::of(&md) == c.id => {}
        Ok(_) => {
            return Err(io::Error::other(format!(
                "{} is no longer the file that was claimed; it is left where it is",
                c.path.display()
            )))
        }
        Err(e) => return Err(e),
    }
    let processing_name = c
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    loop {
        let to = free_name(dir, &c.name, sidecars);
        let to_name = to
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let reports: Vec<PathBuf> = sidecars
            .iter()
            .map(|s| dir.join(format!("{to_name}{s}")))
            .collect();
        let marker_to = c.marker.as_ref().map(|m| {
            let suffix = m
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let rest = suffix.strip_prefix(&processing_name).unwrap_or(&suffix);
            free_name(dir, &format!("{to_name}{rest}"), &[])
        });
        let intent = Intent {
            from: relative(f, &c.path),
            to: relative(f, &to),
            reports: reports.iter().map(|r| relative(f, r)).collect(),
            marker: c.marker.as_deref().map(|m| relative(f, m)),
            marker_to: marker_to.as_deref().map(|m| relative(f, m)),
            id: Some(c.id),
        };
        intent.write(f)?;
        let undo = |reports: &[PathBuf]| {
            for r in reports {
                let _ = fs::remove_file(r);
            }
        };
        if let Err(e) = before(&to) {
            undo(&reports);
            remove_intent(f);
            return Err(e);
        }
        match move_no_clobber(&c.path, &to) {
            Ok(()) => {
                if let (Some(m), Some(mto)) = (&c.marker, &marker_to) {
                    if let Err(e) = move_marker(m, mto) {
                        tracing::warn!(marker = %m.display(), "could not move the ready marker: {e}");
                    }
                }
                sync_dir(dir);
                remove_intent(f);
                return Ok(to);
            }
            // Someone took the name between the check and the move: try the next one.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                undo(&reports);
                continue;
            }
            Err(e) => {
                undo(&reports);
                remove_intent(f);
                return Err(e);
            }
        }
    }
}

/// Moves a marker to `to`, or to the next free name beside it.
fn move_marker(m: &Path, to: &Path) -> io::Result<()> {
    let dir = to.parent().unwrap_or(Path::new("."));
    let name = to.file_name().unwrap_or_default().to_string_lossy();
    put_back(m, dir, &name).map(|_| ())
}

/// What [`recover_move`] found a dead run's move had come to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// The file had reached its place (its link was made): the move is finished (its
    /// old name and marker go), the file is not handled again.
    Finished { file: PathBuf, to: PathBuf },
    /// It had not: the reports written for it are removed, and the file goes back to
    /// the inbox with the rest of processing/.
    Undone { file: PathBuf, to: PathBuf },
}

/// Settles the move a dead run left recorded in `.erpdrop/moving.json` (see
/// [`Intent`]); to be called under the lock, before [`recover_processing`].
pub fn recover_move(f: &Folders) -> io::Result<Option<Recovered>> {
    let path = f.state.join(MOVING);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let intent: Intent = match serde_json::from_slice(&bytes) {
        Ok(i) => i,
        Err(e) => {
            // written atomically, so never half; not ours to act on
            tracing::warn!("ignoring {}: {e}", path.display());
            remove_intent(f);
            return Ok(None);
        }
    };
    let from = f.root.join(&intent.from);
    let to = f.root.join(&intent.to);
    let from_md = fs::symlink_metadata(&from).ok().filter(|m| m.is_file());
    let to_md = fs::symlink_metadata(&to).ok().filter(|m| m.is_file());
    let id = |m: &Option<fs::Metadata>| m.as_ref().map(FileId::of);
    let known = |m: &Option<fs::Metadata>| match (intent.id, id(m)) {
        (Some(want), Some(got)) => want == got,
        _ => true,
    };
    let outcome = match (&from_md, &to_md) {
        // the link was made (the old name may still be there)
        (Some(_), Some(_)) if id(&from_md) == id(&to_md) && known(&from_md) => {
            fs::remove_file(&from)?;
            Recovered::Finished {
                file: from.clone(),
                to: to.clone(),
            }
        }
        (None, Some(_)) if known(&to_md) => Recovered::Finished {
            file: from.clone(),
            to: to.clone(),
        },
        // not moved: its reports go, the file returns to the inbox
        (Some(_), None) if known(&from_md) => {
            for r in &intent.reports {
                match fs::remove_file(f.root.join(r)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            if let Some(dir) = to.parent() {
                sync_dir(dir);
            }
            Recovered::Undone {
                file: from.clone(),
                to: to.clone(),
            }
        }
        // a record that names neither the file nor its copy (stale, or both gone):
        // nothing of it is touched
        _ => {
            tracing::warn!(
                "{} names a move of {} to {} that is not what the folders hold; ignored",
                path.display(),
                from.display(),
                to.display()
            );
            remove_intent(f);
            return Ok(None);
        }
    };
    if let (Recovered::Finished { .. }, Some(m), Some(mto)) =
        (&outcome, &intent.marker, &intent.marker_to)
    {
        let m = f.root.join(m);
        if m.symlink_metadata().is_ok_and(|md| md.is_file()) {
            move_marker(&m, &f.root.join(mto))?;
        }
    }
    if let Some(dir) = to.parent() {
        sync_dir(dir);
    }
    sync_dir(&f.processing);
    remove_intent(f);
    Ok(Some(outcome))
}

/// Returns every file a dead run left in processing/ to the inbox (markers too).
/// Returns the names moved back.
pub fn recover_processing(f: &Folders) -> io::Result<Vec<String>> {
    let mut moved = Vec::new();
    let mut entries: Vec<PathBuf> = fs::read_dir(&f.processing)?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let to = free_name(&f.inbox, &name, &[]);
        move_no_clobber(&p, &to)?;
        moved.push(name);
    }
    if !moved.is_empty() {
        sync_dir(&f.inbox);
    }
    Ok(moved)
}

/// Puts a claimed file back into the inbox, untouched (target down, or a stop signal).
pub fn return_to_inbox(c: &Claimed, f: &Folders) -> io::Result<PathBuf> {
    settle_into(c, f, &f.inbox, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn folders(root: &Path) -> Folders {
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

    fn id(p: &Path) -> FileId {
        FileId::of(&fs::symlink_metadata(p).unwrap())
    }

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

    /// A claimed file `name` with a marker `name.ok`, in processing/.
    fn claimed_with_marker(f: &Folders, name: &str) -> Claimed {
        let file = f.inbox.join(name);
        fs::write(&file, "data").unwrap();
        let marker = f.inbox.join(format!("{name}.ok"));
        fs::write(&marker, "").unwrap();
        claim(&file, id(&file), f, Some(&marker)).unwrap().unwrap()
    }

    /// Runs a settle whose `before` writes a report and then stops, as a kill would,
    /// at `stage`: leaves the intent on disk; returns where the file was to go.
    fn killed_settle(c: &Claimed, f: &Folders, dir: &Path, stage: &str) -> PathBuf {
        let mut to = None;
        let err = settle_with(c, f, dir, DONE_SIDECARS, &mut |p| {
            fs::write(format!("{}.report.json", p.display()), "{}").unwrap();
            to = Some(p.to_path_buf());
            // keep what a kill keeps: the record and the report
            let intent = fs::read(f.state.join(MOVING)).unwrap();
            fs::write(f.state.join("kept.json"), intent).unwrap();
            if stage == "linked" {
                fs::hard_link(&c.path, p).unwrap();
            }
            Err(io::Error::other("killed"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "killed");
        // a failed settle cleans up after itself...
        let to = to.unwrap();
        assert!(!f.state.join(MOVING).exists());
        assert!(!Path::new(&format!("{}.report.json", to.display())).exists());
        // ...a killed one does not: put back what the kill leaves
        fs::rename(f.state.join("kept.json"), f.state.join(MOVING)).unwrap();
        fs::write(format!("{}.report.json", to.display()), "{}").unwrap();
        to
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_settled_move_leaves_no_record() {
        let d = tempfile::tempdir().unwrap();
        let f = folders(d.path());
        let c = claimed_with_marker(&f, "A.csv");
        let day = f.done.join("day");
        let to = settle_with(&c, &f, &day, DONE_SIDECARS, &mut |p| {
            // the record names the move while the report is written
            let i: Intent =
                serde_json::from_slice(&fs::read(f.state.join(MOVING)).unwrap()).unwrap();
            assert_eq!(i.to, Path::new("done/day/A.csv"));
            assert_eq!(i.reports, [Path::new("done/day/A.csv.report.json")]);
            assert_eq!(i.marker_to.as_deref(), Some(Path::new("done/day/A.csv.ok")));
            fs::write(format!("{}.report.json", p.display()), "{}")
        })
        .unwrap();
        assert_eq!(to, day.join("A.csv"));
        assert_eq!(names(&day), ["A.csv", "A.csv.ok", "A.csv.report.json"]);
        assert!(names(&f.processing).is_empty());
        assert!(!f.state.join(MOVING).exists());
        assert_eq!(recover_move(&f).unwrap(), None);
    }

    #[test]
    fn a_move_killed_after_the_link_is_finished_with_its_marker() {
        let d = tempfile::tempdir().unwrap();
        let f = folders(d.path());
        let c = claimed_with_marker(&f, "A.csv");
        let day = f.done.join("day");
        let to = killed_settle(&c, &f, &day, "linked");
        assert_eq!(names(&f.processing), ["A.csv", "A.csv.ok"]);
        assert_eq!(
            recover_move(&f).unwrap(),
            Some(Recovered::Finished {
                file: c.path.clone(),
                to: to.clone()
            })
        );
        assert_eq!(names(&day), ["A.csv", "A.csv.ok", "A.csv.report.json"]);
        assert!(names(&f.processing).is_empty());
        assert!(!f.state.join(MOVING).exists());
        assert!(recover_processing(&f).unwrap().is_empty());
    }

    #[test]
    fn a_move_killed_before_the_link_is_undone_without_orphans() {
        let d = tempfile::tempdir().unwrap();
        let f = folders(d.path());
        let c = claimed_with_marker(&f, "A.csv");
        let day = f.done.join("day");
        let to = killed_settle(&c, &f, &day, "reported");
        assert_eq!(names(&day), ["A.csv.report.json"]);
        assert_eq!(
            recover_move(&f).unwrap(),
            Some(Recovered::Undone {
                file: c.path.clone(),
                to
            })
        );
        assert!(names(&day).is_empty(), "no orphan report");
        assert_eq!(recover_processing(&f).unwrap().len(), 2);
        assert_eq!(names(&f.inbox), ["A.csv", "A.csv.ok"]);
    }

    #[test]
    fn a_return_to_the_inbox_killed_after_the_link_leaves_one_copy() {
        let d = tempfile::tempdir().unwrap();
        let f = folders(d.path());
        let c = claimed_with_marker(&f, "A.csv");
        let inbox = f.inbox.clone();
        let mut to = None;
        let _ = settle_with(&c, &f, &inbox, &[], &mut |p| {
            fs::copy(f.state.join(MOVING), f.state.join("kept.json")).unwrap();
            fs::hard_link(&c.path, p).unwrap();
            to = Some(p.to_path_buf());
            Err(io::Error::other("killed"))
        });
        fs::rename(f.state.join("kept.json"), f.state.join(MOVING)).unwrap();
        assert!(matches!(
            recover_move(&f).unwrap(),
            Some(Recovered::Finished { .. })
        ));
        assert!(recover_processing(&f).unwrap().is_empty());
        assert_eq!(names(&f.inbox), ["A.csv", "A.csv.ok"]);
        assert_eq!(to, Some(f.inbox.join("A.csv")));
    }

    #[test]
    fn a_record_that_names_another_file_is_ignored() {
        let d = tempfile::tempdir().unwrap();
        let f = folders(d.path());
        let c = claimed_with_marker(&f, "A.csv");
        let day = f.done.join("day");
        let to = killed_settle(&c, &f, &day, "reported");
        // the name in processing/ now holds another file (a stale record)
        fs::remove_file(&c.path).unwrap();
        fs::write(f.processing.join("B.tmp"), "hold the inode").unwrap();
        fs::write(&c.path, "another").unwrap();
        assert_eq!(recover_move(&f).unwrap(), None);
        assert!(!f.state.join(MOVING).exists());
        // nothing of it was touched
        assert!(Path::new(&format!("{}.report.json", to.display())).exists());
        assert_eq!(fs::read_to_string(&c.path).unwrap(), "another");
    }
}
