//! File-system steps that must never leave half a file or overwrite one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` through a temporary file in the same folder, flushed to disk
/// and renamed over, so that a reader never sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".erpdrop-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A path in `dir` for `name` that does not exist yet: `name`, else `stem.1.ext`,
/// `stem.2.ext`... Also checks that none of `sidecars` (suffixes such as
/// `.errors.json`) exists for the chosen name.
pub fn free_name(dir: &Path, name: &str, sidecars: &[&str]) -> PathBuf {
    let taken = |n: &str| {
        dir.join(n).symlink_metadata().is_ok()
            || sidecars
                .iter()
                .any(|s| dir.join(format!("{n}{s}")).symlink_metadata().is_ok())
    };
    if !taken(name) {
        return dir.join(name);
    }
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    for n in 1.. {
        let candidate = format!("{stem}.{n}{ext}");
        if !taken(&candidate) {
            return dir.join(candidate);
        }
    }
    unreachable!("some suffix is free")
}

/// Moves a file without overwriting: a hard link to the new name (fails if it exists),
/// then removal of the old one. Falls back to rename on file systems without links
/// after checking the target is free.
pub fn move_no_clobber(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir)?;
    }
    match fs::hard_link(from, to) {
        Ok(()) => fs::remove_file(from),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) => {
            if to.symlink_metadata().is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} already exists", to.display()),
                ));
            }
            fs::rename(from, to)
        }
    }
}

/// Flushes a folder's entry list to disk, so that a rename survives a power cut.
pub fn sync_dir(dir: &Path) {
    if let Ok(f) = File::open(dir) {
        let _ = f.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_name_adds_a_suffix_before_the_extension() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(free_name(d.path(), "a.csv", &[]), d.path().join("a.csv"));
        fs::write(d.path().join("a.csv"), "x").unwrap();
        assert_eq!(free_name(d.path(), "a.csv", &[]), d.path().join("a.1.csv"));
        fs::write(d.path().join("a.1.csv.errors.json"), "x").unwrap();
        assert_eq!(
            free_name(d.path(), "a.csv", &[".errors.json"]),
            d.path().join("a.2.csv")
        );
    }

    #[test]
    fn move_never_overwrites() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        let b = d.path().join("b");
        fs::write(&a, "new").unwrap();
        fs::write(&b, "old").unwrap();
        assert!(move_no_clobber(&a, &b).is_err());
        assert_eq!(fs::read_to_string(&b).unwrap(), "old");
        assert!(a.exists());
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("out.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
