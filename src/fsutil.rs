//! File-system steps that must never leave half a file or overwrite one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// What tells one file from another: its device and inode on Unix, and its birth time
/// where the file system records one (an inode number freed by a deleted file is often
/// given at once to the next file created). Elsewhere every regular file compares
/// equal, and only the file type is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct FileId {
    dev: u64,
    ino: u64,
    born: Option<std::time::SystemTime>,
}

impl FileId {
    pub fn of(md: &fs::Metadata) -> FileId {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            FileId {
                dev: md.dev(),
                ino: md.ino(),
                born: md.created().ok(),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = md;
            FileId::default()
        }
    }
}

/// Opens a file to read it, never through a symbolic link (`O_NOFOLLOW` on Unix: a
/// link at `path` is an error, not followed), and only when it is a regular file and,
/// with `expect`, the very file that was checked (compared on the open descriptor, so a
/// name swapped after the check is refused rather than read).
pub fn open_regular(path: &Path, expect: Option<FileId>) -> io::Result<File> {
    let mut o = fs::OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NOFOLLOW);
    }
    let file = match o.open(path) {
        Ok(f) => f,
        Err(e) if is_link(path) => {
            return Err(io::Error::other(format!(
                "{} is a symbolic link, which erpdrop never follows ({e})",
                path.display()
            )))
        }
        Err(e) => return Err(e),
    };
    let md = file.metadata()?;
    if !md.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    if expect.is_some_and(|id| id != FileId::of(&md)) {
        return Err(io::Error::other(format!(
            "{} is no longer the file that was claimed (it was replaced); it was not read",
            path.display()
        )));
    }
    Ok(file)
}

/// Whether `path` itself is a symbolic link.
pub fn is_link(path: &Path) -> bool {
    path.symlink_metadata()
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false)
}

/// The temporary files that become files a user or another program reads (payloads,
/// reports): created with the mode a plain `File::create` would get (0666 less the
/// process's umask), not the 0600 that `tempfile` gives, so that an ERP importer running
/// as another user can read the outbox where the umask says it may.
fn visible_temp_file() -> tempfile::Builder<'static, 'static> {
    let mut b = tempfile::Builder::new();
    b.prefix(".erpdrop-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(fs::Permissions::from_mode(0o666));
    }
    b
}

/// Writes `bytes` to `path` through a temporary file in the same folder, flushed to disk
/// and renamed over, so that a reader never sees half a file. The file's mode follows
/// the umask.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut tmp = visible_temp_file().tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// As [`write_atomic`], with the contents written by `fill` through a buffer (a large
/// report is streamed, never held in memory).
pub fn write_atomic_with(
    path: &Path,
    fill: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = visible_temp_file().tempfile_in(dir)?;
    let mut w = io::BufWriter::with_capacity(256 * 1024, tmp);
    fill(&mut w)?;
    let tmp = w.into_inner().map_err(|e| e.into_error())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The folder, below the one a [`DurableBatch`] writes into, where its files wait for
/// their barrier (a dot folder: readers of an outbox ignore it).
pub const STAGING: &str = ".erpdrop-staging";

/// Removes what a killed run left in `dir`'s [`STAGING`] folder. A staging "folder"
/// that is a symbolic link is removed itself: what it points at is never emptied.
pub fn remove_staging(dir: &Path) {
    let staging = dir.join(STAGING);
    match staging.symlink_metadata() {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            let _ = fs::remove_file(&staging);
            return;
        }
        Err(_) => return,
    }
    if let Ok(rd) = fs::read_dir(&staging) {
        for e in rd.filter_map(Result::ok) {
            let _ = fs::remove_file(e.path());
        }
    }
    let _ = fs::remove_dir(&staging);
}

/// Files written atomically, many at a time, behind one durability barrier; their modes
/// follow the umask.
///
/// Each file is written to a temporary name in [`STAGING`] below its folder
/// ([`stage`](Self::stage)), so that the folder shows only whole files.
/// [`commit`](Self::commit) makes all staged files durable at once (on Linux one
/// `syncfs` of the file system instead of one flush per file, which costs a disk round
/// trip each; elsewhere each file is flushed), then renames them into place and flushes
/// their folders. A file is never visible under its name before its contents are on
/// disk, and `commit` returns only when the names are too.
#[derive(Default)]
pub struct DurableBatch {
    staged: Vec<(tempfile::NamedTempFile, PathBuf)>,
}

impl DurableBatch {
    pub fn new() -> DurableBatch {
        DurableBatch::default()
    }

    /// How many files wait for [`commit`](Self::commit).
    pub fn len(&self) -> usize {
        self.staged.len()
    }

    pub fn is_empty(&self) -> bool {
        self.staged.is_empty()
    }

    /// Writes `bytes` for `path` under a temporary name (dropped if never committed).
    pub fn stage(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new(".")).join(STAGING);
        let dir = dir.as_path();
        let mut tmp = match visible_temp_file().tempfile_in(dir) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(dir)?;
                visible_temp_file().tempfile_in(dir)?
            }
            Err(e) => return Err(e),
        };
        tmp.write_all(bytes)?;
        self.staged.push((tmp, path.to_path_buf()));
        Ok(())
    }

    /// Makes every staged file durable, then visible under its name.
    pub fn commit(&mut self) -> io::Result<()> {
        if self.staged.is_empty() {
            return Ok(());
        }
        if !sync_file_system(self.staged[0].0.as_file()) {
            for (tmp, _) in &self.staged {
                tmp.as_file().sync_all()?;
            }
        }
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (tmp, path) in self.staged.drain(..) {
            tmp.persist(&path).map_err(|e| e.error)?;
            let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        for d in dirs {
            sync_dir(&d);
            // empty now (unless another batch is staging there): leave no trace
            let _ = fs::remove_dir(d.join(STAGING));
        }
        Ok(())
    }
}

/// Flushes the whole file system that holds `file` (Linux `syncfs`); `false` where that
/// is not available or failed, so that the caller flushes file by file.
#[cfg(target_os = "linux")]
fn sync_file_system(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    extern "C" {
        fn syncfs(fd: std::os::raw::c_int) -> std::os::raw::c_int;
    }
    // SAFETY: syncfs only reads the descriptor number, which `file` keeps open for the
    // duration of the call; it has no other memory effects.
    unsafe { syncfs(file.as_raw_fd()) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn sync_file_system(_file: &File) -> bool {
    false
}

/// A path in `dir` for `name` that does not exist yet: `name`, else `stem.1.ext`,
/// `stem.2.ext`... Also checks that none of `sidecars` (suffixes such as
/// `.errors.json`) exists for the chosen name.
///
/// Where the rejected rows are among the sidecars (failed/), a name that would read as
/// the rejected rows of a file already there is taken too: `INV_1.rejected.csv` moved
/// back into the inbox that fails again is stored as `INV_1.rejected.1.csv` beside
/// `INV_1.csv`, not as what `reprocess`, `status` and retries take for its sidecar.
pub fn free_name(dir: &Path, name: &str, sidecars: &[&str]) -> PathBuf {
    let rejected = sidecars.contains(&REJECTED_SIDECAR);
    let taken = |n: &str| {
        dir.join(n).symlink_metadata().is_ok()
            || sidecars
                .iter()
                .any(|s| dir.join(sidecar_name(n, s)).symlink_metadata().is_ok())
            || (rejected && is_rejected_sidecar(dir, n))
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

/// The sidecar of the rejected rows: it goes before the extension
/// (`INV_1.rejected.csv` for `INV_1.csv`), so that it matches the same globs.
pub const REJECTED_SIDECAR: &str = ".rejected{ext}";

/// The name of a file's sidecar: the suffix after its name (`.errors.json`), or with
/// `{ext}` the part before its extension, the extension after ([`REJECTED_SIDECAR`]).
pub fn sidecar_name(name: &str, side: &str) -> String {
    if !side.contains("{ext}") {
        return format!("{name}{side}");
    }
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    format!("{stem}{}", side.replace("{ext}", ext))
}

/// Whether `name` is the rejected rows sidecar of a file that stands beside it in
/// `dir` (not a file of its own).
///
/// Every `.rejected` of the name is tried: `INV_1.rejected.1.rejected.csv` is that of
/// `INV_1.rejected.1.csv` (a rejected file that failed again, stored with a suffix).
pub fn is_rejected_sidecar(dir: &Path, name: &str) -> bool {
    name.match_indices(".rejected").any(|(i, _)| {
        let rest = &name[i + ".rejected".len()..];
        if !(rest.is_empty() || rest.starts_with('.')) || rest[1.min(rest.len())..].contains('.') {
            return false;
        }
        let original = format!("{}{rest}", &name[..i]);
        sidecar_name(&original, REJECTED_SIDECAR) == name
            && dir.join(&original).symlink_metadata().is_ok()
    })
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
    fn a_name_that_reads_as_a_files_rejected_rows_is_taken_in_failed() {
        let d = tempfile::tempdir().unwrap();
        let failed = [".errors.json", REJECTED_SIDECAR];
        assert_eq!(
            free_name(d.path(), "a.rejected.csv", &failed),
            d.path().join("a.rejected.csv")
        );
        fs::write(d.path().join("a.csv"), "x").unwrap();
        assert_eq!(
            free_name(d.path(), "a.rejected.csv", &failed),
            d.path().join("a.rejected.1.csv")
        );
        // elsewhere (done/) the name is free
        assert_eq!(
            free_name(d.path(), "a.rejected.csv", &[".report.json"]),
            d.path().join("a.rejected.csv")
        );
        // the rejected rows of that one are its sidecar, not a file of their own
        fs::write(d.path().join("a.rejected.1.csv"), "x").unwrap();
        assert!(is_rejected_sidecar(d.path(), "a.rejected.1.rejected.csv"));
        assert!(!is_rejected_sidecar(d.path(), "a.rejected.1.csv"));
        assert!(!is_rejected_sidecar(d.path(), "b.rejected.csv"));
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
    fn a_batch_shows_its_files_only_when_committed() {
        let d = tempfile::tempdir().unwrap();
        let mut b = DurableBatch::new();
        b.stage(&d.path().join("a.json"), b"A").unwrap();
        b.stage(&d.path().join("sub/b.json"), b"B").unwrap();
        assert_eq!(b.len(), 2);
        assert!(!d.path().join("a.json").exists());
        assert_eq!(
            fs::read_dir(d.path()).unwrap().count(),
            2,
            "staging folders only"
        );
        b.commit().unwrap();
        assert!(b.is_empty());
        assert_eq!(fs::read_to_string(d.path().join("a.json")).unwrap(), "A");
        assert_eq!(
            fs::read_to_string(d.path().join("sub/b.json")).unwrap(),
            "B"
        );
        // dropped without commit: nothing is left behind
        let mut c = DurableBatch::new();
        c.stage(&d.path().join("c.json"), b"C").unwrap();
        drop(c);
        remove_staging(d.path());
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn a_staging_folder_that_is_a_link_is_removed_not_emptied() {
        let d = tempfile::tempdir().unwrap();
        let elsewhere = d.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        fs::write(elsewhere.join("keep.txt"), "mine").unwrap();
        let outbox = d.path().join("outbox");
        fs::create_dir(&outbox).unwrap();
        std::os::unix::fs::symlink(&elsewhere, outbox.join(STAGING)).unwrap();
        remove_staging(&outbox);
        assert_eq!(
            fs::read_to_string(elsewhere.join("keep.txt")).unwrap(),
            "mine"
        );
        assert!(outbox.join(STAGING).symlink_metadata().is_err());
    }

    #[cfg(unix)]
    #[test]
    fn open_regular_refuses_links_and_replaced_files() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        fs::write(&a, "A").unwrap();
        let id = FileId::of(&fs::symlink_metadata(&a).unwrap());
        assert!(open_regular(&a, Some(id)).is_ok());
        assert!(open_regular(&a, None).is_ok());
        // a link to the very same file is still a link
        let l = d.path().join("l");
        std::os::unix::fs::symlink(&a, &l).unwrap();
        let e = open_regular(&l, None).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        // another file under the same name
        fs::remove_file(&a).unwrap();
        fs::write(&a, "B").unwrap();
        let e = open_regular(&a, Some(id)).unwrap_err();
        assert!(e.to_string().contains("no longer the file"), "{e}");
        // a folder
        assert!(open_regular(d.path(), None).is_err());
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
