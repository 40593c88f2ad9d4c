//! SPEC's exit codes, and the one place where what went wrong becomes one of them.

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Everything handled (or nothing to do).
    Ok = 0,
    /// At least one file or document failed on its data.
    DataErrors = 1,
    /// Usage or configuration error; nothing was touched.
    Usage = 2,
    /// The target was unavailable after retries, or the work could not finish for a
    /// reason outside the file (disk or temporary space full, ledger unwritable, output
    /// unwritable); files stay in the inbox.
    TargetDown = 3,
    /// Another run holds the lock.
    Locked = 4,
}

impl Exit {
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The exit of a command whose own outcome was `self` and whose output could not be
    /// written: a summary that did not reach its reader is a failure outside the
    /// files, never a success.
    pub fn with_output_lost(self) -> Exit {
        match self {
            Exit::Ok | Exit::DataErrors => Exit::TargetDown,
            other => other,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// What kind of thing ended a command; the exit code follows from it, here only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The command line or the configuration is wrong; nothing was touched.
    Usage,
    /// The target, the ledger or the machine (disk, temporary space) could not do the
    /// work; what was not finished waits in the inbox.
    Unavailable,
}

/// An error that ends a command, with a message for stderr.
#[derive(Debug)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            kind: FailureKind::Usage,
            message: message.into(),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Failure {
        Failure {
            kind: FailureKind::Unavailable,
            message: message.into(),
        }
    }

    /// The exit code of this failure.
    pub fn exit(&self) -> Exit {
        match self.kind {
            FailureKind::Usage => Exit::Usage,
            FailureKind::Unavailable => Exit::TargetDown,
        }
    }
}

impl From<crate::ledger::LedgerError> for Failure {
    /// A ledger from a newer erpdrop is the installation's to fix (usage); a ledger that
    /// cannot be read or written is unavailable, whenever it happens.
    fn from(e: crate::ledger::LedgerError) -> Failure {
        match e {
            crate::ledger::LedgerError::TooNew { .. }
            | crate::ledger::LedgerError::NotFound { .. } => Failure::usage(e.to_string()),
            crate::ledger::LedgerError::Sql { .. } => Failure::unavailable(e.to_string()),
        }
    }
}

impl From<crate::config_error::ConfigErrors> for Failure {
    /// A config that does not load is the user's to fix: nothing was touched.
    fn from(e: crate::config_error::ConfigErrors) -> Failure {
        Failure::usage(e.to_string())
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}
