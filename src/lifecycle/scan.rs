//! Which files in a folder are candidates, and which of them are ready.

use crate::fsutil::FileId;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Names that are never picked up: temporary or partial names (`*.tmp`, `*.part`,
/// `~$*`, dot files) and erpdrop's own sidecars (reports, markers of other files).
pub fn is_ignored_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with('.')
        || name.starts_with("~$")
        || lower.ends_with(".tmp")
        || lower.ends_with(".part")
        || lower.ends_with(".crdownload")
        || lower.ends_with(".errors.json")
        || lower.ends_with(".errors.csv")
        || lower.ends_with(".report.json")
}

/// Regular files directly in `dir` (no symbolic links, no folders, no ignored names),
/// sorted by name.
pub fn list_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    Ok(list_files_with_ids(dir)?
        .into_iter()
        .map(|(p, _)| p)
        .collect())
}

/// The files of failed/: as [`list_files`], without the rejected rows beside each
/// file (`INV_1.rejected.csv` of `INV_1.csv`), which are its sidecars, not files.
pub fn list_failed_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = list_files(dir)?;
    files.retain(|p| {
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        !crate::fsutil::is_rejected_sidecar(dir, &name)
    });
    Ok(files)
}

/// As [`list_files`], with the identity of each file as listed, so that a claim can
/// tell whether its name still holds that file.
pub fn list_files_with_ids(dir: &Path) -> std::io::Result<Vec<(PathBuf, FileId)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(ft) = entry.file_type() else { continue };
        // file_type() does not follow links: a symlink is never a regular file here.
        if !ft.is_file() {
            if ft.is_symlink() {
                tracing::warn!(path = %entry.path().display(), "skipping a symbolic link: erpdrop never follows or moves links");
            }
            continue;
        }
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            tracing::warn!(path = %entry.path().display(), "skipping a file whose name is not valid Unicode");
            continue;
        };
        if is_ignored_name(name) {
            continue;
        }
        // metadata() of an entry does not follow links either
        let Ok(md) = entry.metadata() else { continue };
        out.push((entry.path(), FileId::of(&md)));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The marker file of `file` for a `ready_marker` pattern such as `{name}.ok`.
pub fn marker_path(file: &Path, pattern: &str) -> PathBuf {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = file
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let marker = pattern.replace("{name}", &name).replace("{stem}", &stem);
    file.with_file_name(marker)
}

/// Why a file is not ready yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// Modified less than `settle_seconds` ago.
    Settling(Duration),
    /// Its ready marker is missing.
    NoMarker(PathBuf),
}

/// Checks settle time and marker.
pub fn readiness(
    file: &Path,
    settle: Duration,
    marker: Option<&str>,
    now: SystemTime,
) -> Result<(), NotReady> {
    if let Some(pattern) = marker {
        let m = marker_path(file, pattern);
        if !m.symlink_metadata().map(|md| md.is_file()).unwrap_or(false) {
            return Err(NotReady::NoMarker(m));
        }
    }
    if let Ok(modified) = file.symlink_metadata().and_then(|m| m.modified()) {
        let age = now.duration_since(modified).unwrap_or(Duration::ZERO);
        if age < settle {
            return Err(NotReady::Settling(settle - age));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_and_sidecar_names_are_ignored() {
        for n in [
            ".hidden.csv",
            "~$INV.csv",
            "INV.csv.tmp",
            "INV.CSV.PART",
            "INV.csv.errors.json",
            "INV.csv.errors.csv",
            "INV.csv.report.json",
        ] {
            assert!(is_ignored_name(n), "{n}");
        }
        assert!(!is_ignored_name("INV_001.csv"));
    }

    #[test]
    fn marker_patterns() {
        let f = Path::new("/drop/inbox/INV_1.csv");
        assert_eq!(
            marker_path(f, "{name}.ok"),
            Path::new("/drop/inbox/INV_1.csv.ok")
        );
        assert_eq!(
            marker_path(f, "{stem}.done"),
            Path::new("/drop/inbox/INV_1.done")
        );
    }
}
