//! erpdrop: imports scheduled CSV/XML file drops into ERP systems.
//!
//! The binary is thin; the layers live here: [`config`] (erpdrop.toml and mapping files),
//! [`source`] (CSV and XML readers with physical line numbers), [`mapping`] (the field
//! pipeline and document assembly), [`pipeline`] (one file, checked), [`report`],
//! [`lifecycle`] (drop folders), [`target`] (where documents go).

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
