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

/// Writes the starter into `dir` (default: the folder of `config`, else `.`), its config
/// at `config` (`-c`; a bare file name is taken in `dir`), else `dir/erpdrop.toml`.
pub fn init(
    dir: Option<&Path>,
    config: Option<&Path>,
    force: bool,
    quiet: bool,
) -> Result<Exit, Failure> {
    let (dir, config) = placement(dir, config)?;
    let dir = dir.as_path();
    if config.exists() && !force {
        return Err(Failure::usage(format!(
            "{} already exists; nothing was written (use --force to write the starter anyway)",
            config.display()
        )));
    }
    let ledger_before = dir.join("drop/.erpdrop/ledger.sqlite").exists();
    let write = |rel: &str, text: &str| -> Result<(), Failure> {
        let p = if rel == "erpdrop.toml" {
            config.clone()
        } else {
            dir.join(rel)
        };
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
        let name = config
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "erpdrop.toml".into());
        crate::outln!("wrote a starter in {}:", dir.display());
        crate::outln!("  {name:<24} folders, scan and target settings");
        crate::outln!("  mappings/invoices.toml   how INV_*.csv becomes sales_invoice documents");
        crate::outln!("  xref/, ref/              lookups: customer cross-reference, terms, items, GL accounts");
        crate::outln!("  drop/inbox/              a sample billing export");
        if ledger_before {
            crate::outln!(
                "note: the ledger {} is kept (it is what stops a document from being posted twice): the sample was imported before, so the next run counts it as already imported; for a fresh demo, remove {} first",
                dir.join("drop/.erpdrop/ledger.sqlite").display(),
                dir.join("drop").display()
            );
        }
        let exe = invoked_as();
        let c = if name == "erpdrop.toml" {
            String::new()
        } else {
            format!(" -c {}", shell_word(&name))
        };
        crate::outln!(
            "next: cd {} && {exe}{c} validate && {exe}{c} run",
            shell_word(&dir.display().to_string())
        );
    }
    Ok(Exit::Ok)
}

/// The starter's folder and its config file, from `DIR` and `-c`.
fn placement(
    dir: Option<&Path>,
    config: Option<&Path>,
) -> Result<(std::path::PathBuf, std::path::PathBuf), Failure> {
    let here = Path::new(".");
    let Some(c) = config else {
        let dir = dir.unwrap_or(here).to_path_buf();
        let config = dir.join("erpdrop.toml");
        return Ok((dir, config));
    };
    let parent = c.parent().filter(|p| !p.as_os_str().is_empty());
    match (dir, parent) {
        (None, p) => Ok((p.unwrap_or(here).to_path_buf(), c.to_path_buf())),
        // a bare file name: that name, in DIR
        (Some(d), None) => Ok((d.to_path_buf(), d.join(c))),
        (Some(d), Some(p)) if same_folder(d, p) => Ok((d.to_path_buf(), c.to_path_buf())),
        (Some(d), Some(_)) => Err(Failure::usage(format!(
            "-c {} is not in {}: the config and the starter's folders go together (its paths are relative to it); give -c a file name, written in {}, or leave out DIR",
            c.display(),
            d.display(),
            d.display()
        ))),
    }
}

/// Whether two folders (that may not exist yet) are the same, as absolute paths with
/// `.` and `..` resolved as written.
fn same_folder(a: &Path, b: &Path) -> bool {
    let abs = |p: &Path| {
        let p = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let mut out = std::path::PathBuf::new();
        for c in p.components() {
            match c {
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir => {
                    out.pop();
                }
                c => out.push(c),
            }
        }
        out
    };
    abs(a) == abs(b)
}

/// The command that runs this erpdrop, as the user can type it after `cd DIR`: `erpdrop`
/// when it was found on the PATH, else the absolute path of this executable (`cargo run`
/// and `./target/release/erpdrop` are not on the PATH, and a relative path stops working
/// after the `cd`).
fn invoked_as() -> String {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let on_path = !argv0.to_string_lossy().contains(['/', '\\']);
    if on_path {
        return "erpdrop".to_string();
    }
    match std::env::current_exe() {
        Ok(p) => shell_word(&p.display().to_string()),
        Err(_) => shell_word(&argv0.to_string_lossy()),
    }
}

/// A word for a POSIX shell: as it is when it has nothing a shell treats specially, else
/// in single quotes.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:,@%=".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
