//! erpdrop: imports scheduled CSV/XML file drops into ERP systems.
//!
//! The binary is thin; the layers live here, from the bottom up: [`source`] (readers
//! with physical line numbers), [`mapping`] (the field pipeline and document assembly),
//! [`config`] (erpdrop.toml), [`ledger`], [`check`] (one file checked), [`deliver`]
//! (targets and the submission), [`lifecycle`] (the drop folders), [`report`], and
//! [`pass`], the engine of every command that reads exports. `docs/architecture.md`
//! says where everything lives and why.

// A `Problem` (one report row) is the error type of the readers; it is created once per
// file or row in error, never on the hot path, so its size does not matter.
#![allow(clippy::result_large_err)]

pub mod check;
pub mod cli;
pub mod codec;
pub mod commands;
pub mod config;
pub mod config_error;
pub mod deliver;
pub mod exit;
pub mod fsutil;
pub mod ledger;
pub mod lifecycle;
pub mod mapping;
pub mod notify;
pub mod outcome;
pub mod output;
pub mod pass;
pub mod problem;
pub mod problem_log;
pub mod redact;
pub mod report;
pub mod source;
pub mod spool;
pub mod stop;
pub mod time;
pub mod ui;
