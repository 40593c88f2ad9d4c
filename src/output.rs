//! Standard output: the summaries and listings a command prints for users and scripts.
//!
//! Every command writes through here, never with `println!`, which panics when the
//! reader has gone (`erpdrop status | head -1`). A closed pipe ends the output quietly:
//! what follows is dropped, and the command's work and exit code are untouched. Any
//! other failure to write (`> /dev/full`) is remembered, and [`finish`] hands it to
//! `main`, so that the command ends with an error instead of exit 0 and a lost summary.

use std::io::{self, Write};
use std::sync::Mutex;

#[derive(Default)]
struct State {
    /// The reader has gone: drop whatever comes.
    closed: bool,
    /// The first failure to write, other than a closed pipe.
    error: Option<io::Error>,
}

static STATE: Mutex<State> = Mutex::new(State {
    closed: false,
    error: None,
});

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes to standard output with `f`, then flushes. After the pipe closed, or after a
/// failure, does nothing.
pub fn write_with(f: impl FnOnce(&mut dyn Write) -> io::Result<()>) {
    let mut st = state();
    if st.closed || st.error.is_some() {
        return;
    }
    let stdout = io::stdout();
    let mut lock = stdout.lock();
    match f(&mut lock).and_then(|()| lock.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => st.closed = true,
        Err(e) => st.error = Some(e),
    }
}

/// Whether the reader of standard output has gone (`watch | head`): a command that
/// only prints may stop.
pub fn closed() -> bool {
    state().closed
}

/// Flushes standard output; the first failure to write it (a closed pipe is none).
pub fn finish() -> Result<(), io::Error> {
    write_with(|_| Ok(()));
    match state().error.take() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `println!` through [`write_with`].
#[macro_export]
macro_rules! outln {
    () => {
        $crate::output::write_with(|w| w.write_all(b"\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_with(|w| {
            ::std::io::Write::write_fmt(w, format_args!($($arg)*))?;
            w.write_all(b"\n")
        })
    };
}
