//! Command-line definitions (clap). No business logic here.

use clap::{ArgAction, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Imports scheduled CSV/XML file drops into an ERP: validates each file, maps it to ERP
/// documents, submits them, and moves the file to done/ or failed/ with a report.
#[derive(Debug, Parser)]
#[command(name = "erpdrop", version, about, long_about = None)]
pub struct Cli {
    /// The config file [default: ./erpdrop.toml]
    #[arg(short = 'c', long = "config", env = "ERPDROP_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// Log format on stderr
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// More log detail (-v: debug, -vv: trace)
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Print nothing but errors
    #[arg(short = 'q', long = "quiet", global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Never draw progress bars (they appear only on a terminal anyway)
    #[arg(long, global = true)]
    pub no_progress: bool,

    /// Print the summary as JSON on stdout
    #[arg(long, global = true)]
    pub json: bool,

    /// Parse XML on a second thread while the first maps and validates [default: on]
    /// (off only to compare the two ways)
    #[arg(long, hide = true, global = true, env = "ERPDROP_READ_AHEAD", default_value_t = true,
          action = ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub read_ahead: bool,

    /// Bytes each sort of an ungrouped CSV file keeps in memory before it spills
    /// [default: 8 MiB] (small values only to test the spill)
    #[arg(
        long,
        hide = true,
        global = true,
        env = "ERPDROP_SORT_MEMORY",
        value_name = "BYTES"
    )]
    pub sort_memory: Option<usize>,

    /// Document keys kept in memory to find a repeated one [default: 49152] (small
    /// values only to test the spill)
    #[arg(
        long,
        hide = true,
        global = true,
        env = "ERPDROP_KEY_WINDOW",
        value_name = "KEYS"
    )]
    pub key_window: Option<usize>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a working starter: erpdrop.toml, a mapping, lookups, the drop folders and a
    /// sample export in the inbox
    Init {
        /// Where to write it [default: the folder of -c, else .]; with -c FILE NAME,
        /// the config is written in DIR under that name
        dir: Option<PathBuf>,
        /// Write into a folder that already has an erpdrop.toml
        #[arg(long)]
        force: bool,
    },
    /// One pass: handle every ready file in the inbox, then exit
    Run {
        /// Parse, map and validate only: submit nothing, move nothing (as `validate`)
        #[arg(long)]
        dry_run: bool,
        /// Start a new, empty ledger although done/ or failed/ hold files handled before
        /// (the old ledger is lost: documents dropped again are submitted again)
        #[arg(long, conflicts_with = "dry_run")]
        new_ledger: bool,
        /// With --dry-run: write FILE.errors.json and FILE.errors.csv for every file into
        /// DIR (a real run writes its reports next to each file)
        #[arg(long, value_name = "DIR", requires = "dry_run")]
        report: Option<PathBuf>,
        /// With --dry-run: write the payloads that would have been submitted into DIR
        #[arg(long, value_name = "DIR", requires = "dry_run")]
        emit: Option<PathBuf>,
    },
    /// Check files without submitting or moving anything (default: the inbox)
    Validate {
        /// Files or folders to check (e.g. failed/)
        paths: Vec<PathBuf>,
        /// Use this mapping for every file instead of matching names
        #[arg(long)]
        mapping: Option<String>,
        #[command(flatten)]
        out: DryRunOutputs,
    },
    /// Move failed files back to the inbox (old reports to failed/.history/) and run them;
    /// documents the ERP already accepted are not submitted again
    Reprocess {
        /// Files as they are named in failed/
        #[arg(required_unless_present = "all")]
        files: Vec<PathBuf>,
        /// Every file in failed/
        #[arg(long, conflicts_with = "files")]
        all: bool,
        /// Start a new, empty ledger although done/ or failed/ hold files handled before
        #[arg(long)]
        new_ledger: bool,
    },
    /// The integration monitor: recent runs, waiting files, failed files and documents
    Status {
        /// Only failed files and documents
        #[arg(long)]
        failed: bool,
    },
    /// Run a pass every interval until SIGINT/SIGTERM
    Watch {
        /// Time between passes (30s, 5m, 1h)
        #[arg(long, default_value = "30s", value_parser = watch_interval)]
        interval: std::time::Duration,
        /// Start a new, empty ledger on the first pass although done/ or failed/ hold
        /// files handled before (a ledger lost later stops the passes again)
        #[arg(long)]
        new_ledger: bool,
    },
    /// Load the config, every mapping and lookup, and say exactly what is wrong
    Check {
        /// Also read these files through their mappings (or --mapping) and report what
        /// a run would find: a wrong column name before the first real file
        #[arg(long, value_name = "FILE")]
        sample: Vec<PathBuf>,
        /// With --sample: the mapping for the sample files instead of matching names
        #[arg(long, requires = "sample")]
        mapping: Option<String>,
        /// Also send one test notification to each [[notify]] channel (exit 3 when one
        /// cannot be sent)
        #[arg(long)]
        notify_test: bool,
    },
    /// What was sent to the ERP and when: every operation on a document (create,
    /// update, delete, an operator's decision), oldest first, or on the documents of a file
    History {
        /// The document's key
        #[arg(required_unless_present = "file")]
        key: Option<String>,
        /// Only the document of this mapping (a key can be a document of several)
        #[arg(long, requires = "key")]
        mapping: Option<String>,
        /// The documents of this file, by the name it arrived under (INV_1.csv)
        #[arg(long, value_name = "NAME", conflicts_with = "key")]
        file: Option<String>,
    },
    /// Settle a document that is in doubt: an earlier attempt was in flight when a run
    /// stopped, and it arrived again with other content. Check the ERP first
    #[command(group(clap::ArgGroup::new("decision").required(true).args(["accepted", "not_sent"])))]
    Resolve {
        /// The document's key, as reports and `status` show it
        key: String,
        /// The mapping of the document (needed when several have this key)
        #[arg(long)]
        mapping: Option<String>,
        /// The ERP has the document (the earlier attempt reached it)
        #[arg(long)]
        accepted: bool,
        /// The ERP's id for it, where known
        #[arg(long, requires = "accepted")]
        id: Option<String>,
        /// The ERP does not have it: the next run sends the file's content
        #[arg(long)]
        not_sent: bool,
        /// Who decided, for the ledger [default: the user running the command]
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
}

#[derive(Debug, Clone, Default, clap::Args)]
pub struct DryRunOutputs {
    /// Write FILE.errors.json and FILE.errors.csv for every file into DIR
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Write the payloads that would have been submitted into DIR
    #[arg(long, value_name = "DIR")]
    pub emit: Option<PathBuf>,
}

/// `watch --interval`: a duration of at least one second (a shorter one is a busy loop
/// that records a run in the ledger several hundred times a second).
fn watch_interval(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (e.g. 30s, 5m, 1h)"))?;
    if d < std::time::Duration::from_secs(1) {
        return Err(format!(
            "{s} is shorter than one second; a pass every second at most (e.g. 30s, 5m)"
        ));
    }
    Ok(d)
}
