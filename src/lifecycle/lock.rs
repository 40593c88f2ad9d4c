//! The run lock: an OS lock on `.erpdrop/lock` and on the `.erpdrop` folder itself,
//! released by the system however the process ends.

use crate::fsutil::FileId;
use std::fs::{self, File};
use std::io;
use std::path::Path;

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
