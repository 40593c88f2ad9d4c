//! Moving a claimed file out of processing/ (to done/, failed/ or back to the inbox)
//! without overwriting anything, with an intent record that lets the next run finish or
//! undo a move a dead run left half made.

use crate::config::Folders;
use crate::fsutil::{free_name, is_link, move_no_clobber, sync_dir, FileId};
use std::fs::{self};
use std::io;
use std::path::{Path, PathBuf};

use super::claiming::{put_back, Claimed};
use super::linked;

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
            .map(|s| dir.join(crate::fsutil::sidecar_name(&to_name, s)))
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
    settle_into(c, f, &f.inbox, &[]).or_else(|e| {
        // The recorded move needs a few bytes of disk (its intent in moving.json); on a
        // full disk, a plain rename back under the file's own name needs none, and the
        // file must not wait in processing/ for a reason outside it.
        let to = f.inbox.join(&c.name);
        if to.symlink_metadata().is_ok() {
            return Err(e);
        }
        fs::rename(&c.path, &to).map_err(|_| e)?;
        if let Some(m) = &c.marker {
            if let Some(name) = m.file_name() {
                let _ = fs::rename(m, f.inbox.join(name));
            }
        }
        Ok(to)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::test_folders::{folders, id};
    use crate::lifecycle::{claim, DONE_SIDECARS};

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
    fn a_file_goes_back_to_the_inbox_when_its_move_cannot_be_recorded() {
        let d = tempfile::tempdir().unwrap();
        let mut f = folders(d.path());
        let c = claimed_with_marker(&f, "INV_1.csv");
        // the state folder cannot take the move's record (as on a full disk): a file
        // stands where the folder would be
        let blocked = d.path().join("blocked");
        fs::write(&blocked, "").unwrap();
        f.state = blocked.join("state");
        let to = return_to_inbox(&c, &f).unwrap();
        assert_eq!(to, f.inbox.join("INV_1.csv"));
        assert_eq!(fs::read(&to).unwrap(), b"data");
        assert!(
            f.inbox.join("INV_1.csv.ok").exists(),
            "the marker goes along"
        );
        assert!(fs::read_dir(&f.processing).unwrap().next().is_none());
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
