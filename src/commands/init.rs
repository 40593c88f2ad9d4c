//! `erpdrop init [DIR]`: a working starter, built from the bundled billing example, so
//! that `erpdrop run` right after it succeeds and puts the sample in done/.

use crate::exit::{Exit, Failure};
use std::path::Path;
use std::time::{Duration, SystemTime};

const FILES: &[(&str, &str)] = &[
    (
        "erpdrop.toml",
        include_str!("../../examples/billing/erpdrop.toml"),
    ),
    (
        "mappings/invoices.toml",
        include_str!("../../examples/billing/mappings/invoices.toml"),
    ),
    (
        "xref/customers.csv",
        include_str!("../../examples/billing/xref/customers.csv"),
    ),
    (
        "ref/terms.csv",
        include_str!("../../examples/billing/ref/terms.csv"),
    ),
    (
        "ref/items.csv",
        include_str!("../../examples/billing/ref/items.csv"),
    ),
    (
        "ref/gl_accounts.csv",
        include_str!("../../examples/billing/ref/gl_accounts.csv"),
    ),
];

const SAMPLE: (&str, &str) = (
    "drop/inbox/INV_2026-11-20.csv",
    include_str!("../../examples/billing/drop/inbox/INV_2026-11-20.csv"),
);

pub fn init(dir: &Path, force: bool, quiet: bool) -> Result<Exit, Failure> {
    let config = dir.join("erpdrop.toml");
    if config.exists() && !force {
        return Err(Failure::usage(format!(
            "{} already exists; nothing was written (use --force to write the starter anyway)",
            config.display()
        )));
    }
    let write = |rel: &str, text: &str| -> Result<(), Failure> {
        let p = dir.join(rel);
        if p.exists() && rel != "erpdrop.toml" {
            return Ok(()); // never overwrite a user's mapping or lookup
        }
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Failure::usage(format!("cannot create {}: {e}", parent.display())))?;
        }
        std::fs::write(&p, text)
            .map_err(|e| Failure::usage(format!("cannot write {}: {e}", p.display())))
    };
    for (rel, text) in FILES {
        let text = if *rel == "erpdrop.toml" {
            // The starter waits the production default; the sample is back-dated instead.
            text.replace(
                "settle_seconds = 0           # the example file is ready at once; use 5 or more in production",
                "settle_seconds = 5           # a file must be unchanged this long before it is taken",
            )
        } else {
            text.to_string()
        };
        write(rel, &text)?;
    }
    for d in [
        "drop/inbox",
        "drop/processing",
        "drop/done",
        "drop/failed",
        "drop/outbox",
    ] {
        std::fs::create_dir_all(dir.join(d))
            .map_err(|e| Failure::usage(format!("cannot create {d}: {e}")))?;
    }
    let sample = dir.join(SAMPLE.0);
    if !sample.exists() {
        write(SAMPLE.0, SAMPLE.1)?;
        // Old enough to be settled, so that `erpdrop run` takes it at once.
        if let Ok(f) = std::fs::File::options().write(true).open(&sample) {
            let _ = f.set_modified(SystemTime::now() - Duration::from_secs(3600));
        }
    }
    if !quiet {
        crate::outln!("wrote a starter in {}:", dir.display());
        crate::outln!("  erpdrop.toml             folders, scan and target settings");
        crate::outln!("  mappings/invoices.toml   how INV_*.csv becomes sales_invoice documents");
        crate::outln!("  xref/, ref/              lookups: customer cross-reference, terms, items, GL accounts");
        crate::outln!("  drop/inbox/              a sample billing export");
        crate::outln!(
            "next: cd {} && erpdrop validate && erpdrop run",
            dir.display()
        );
    }
    Ok(Exit::Ok)
}
