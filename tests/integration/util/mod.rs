//! Test harness: a temporary folder plus a command builder for the real binary, so that
//! a test reads like a user session.

pub mod erp;
pub mod login_erp;
pub mod smtp;
pub mod tls;

use assert_cmd::Command;
use std::path::{Path, PathBuf};

pub struct TestDir {
    dir: tempfile::TempDir,
}

/// What a command printed and how it ended.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl TestDir {
    pub fn new() -> TestDir {
        TestDir {
            dir: tempfile::tempdir().expect("a temporary folder"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file (creating folders).
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, contents).unwrap();
        p
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.join(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
    }

    pub fn read_json(&self, rel: &str) -> serde_json::Value {
        serde_json::from_str(&self.read(rel)).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"))
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.join(rel).exists()
    }

    /// Sorted names of the entries of a folder (empty if it does not exist).
    pub fn ls(&self, rel: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.join(rel))
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The erpdrop binary, run in this folder, with no inherited config.
    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("erpdrop").unwrap();
        c.current_dir(self.path())
            .env_remove("ERPDROP_CONFIG")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1");
        c
    }

    /// The binary as a plain `std::process::Command`, for processes a test spawns and
    /// signals.
    pub fn spawn_cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("erpdrop"));
        c.current_dir(self.path())
            .env_remove("ERPDROP_CONFIG")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1");
        c
    }

    /// Runs erpdrop with these arguments.
    pub fn run(&self, args: &[&str]) -> Out {
        let o = self.cmd().args(args).output().unwrap();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Copies a folder of the repository (e.g. `examples/billing`) into this one.
    pub fn copy_from_repo(&self, rel: &str) {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
        for e in walkdir::WalkDir::new(&src) {
            let e = e.unwrap();
            let to = self.path().join(e.path().strip_prefix(&src).unwrap());
            if e.file_type().is_dir() {
                std::fs::create_dir_all(&to).unwrap();
            } else {
                std::fs::copy(e.path(), &to).unwrap();
            }
        }
    }

    /// A small invoice setup: erpdrop.toml (settle 0), `mappings/inv.toml` built from
    /// `extra` mapping lines, lookups, an empty inbox.
    pub fn invoice_setup(&self, mapping: &str) {
        self.write(
            "erpdrop.toml",
            "mappings = [\"mappings/*.toml\"]\n[folders]\nroot = \"drop\"\n[scan]\nsettle_seconds = 0\n",
        );
        self.write("mappings/inv.toml", mapping);
        self.write(
            "ref/terms.csv",
            "code,description\nN30,Net 30\nF48,48 months\n",
        );
        self.write(
            "xref/customers.csv",
            "crm_id;erp_id\nC1;CUST-1\nC2;CUST-2\n",
        );
        std::fs::create_dir_all(self.join("drop/inbox")).unwrap();
    }
}

/// A mapping used by many tests: `INV_*.csv`, semicolons, decimal commas.
pub const INVOICE_MAPPING: &str = r#"name = "inv"
match = ["INV_*.csv"]
document_type = "sales_invoice"

[source]
delimiter = ";"
decimal_separator = ","
date_format = "%d.%m.%Y"

[document]
key = ["No"]

[header]
number   = { from = "No", required = true, max_length = 10 }
date     = { from = "Date", type = "date" }
customer = { from = "Cust", lookup = "customers" }
terms    = { from = "Terms", allowed = "terms" }
total    = { from = "Total", type = "decimal", scale = 2 }

[lines]
item   = { from = "Item", required = true }
amount = { from = "Amount", type = "decimal", scale = 2 }

[lookups]
customers = { file = "xref/customers.csv", key = "crm_id", value = "erp_id" }
terms     = { file = "ref/terms.csv", key = "code" }

[[checks]]
kind = "sum"
lines_field = "amount"
equals = "total"
tolerance = "0.01"
"#;

/// The header row of files for [`INVOICE_MAPPING`].
pub const INVOICE_HEADER: &str = "No;Date;Cust;Terms;Total;Item;Amount\n";

/// A CSV for [`INVOICE_MAPPING`] with `n` invoices of `lines` lines each (amount 1,50
/// per line), keys `INV000000`, `INV000001`...
pub fn invoices_csv(n: usize, lines: usize) -> String {
    let mut s = String::from(INVOICE_HEADER);
    for i in 0..n {
        let total = format!("{},{:02}", (lines * 150) / 100, (lines * 150) % 100);
        for l in 0..lines {
            s.push_str(&format!(
                "INV{i:06};20.11.2026;C1;N30;{total};ITEM{l};1,50\n"
            ));
        }
    }
    s
}

/// Sets a file's modification time into the past, so that it counts as settled.
pub fn age(path: &Path, secs: u64) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(secs))
        .unwrap();
}

/// What `validate FILE --report rep --emit em` said about one file (see
/// [`TestDir::check_file`]).
#[derive(Debug)]
pub struct Checked {
    pub out: Out,
    /// `FILE.errors.json`.
    pub report: serde_json::Value,
    /// Its `errors` rows.
    pub errors: Vec<serde_json::Value>,
    /// The emitted payloads by file name.
    pub emitted: std::collections::BTreeMap<String, String>,
}

impl Checked {
    /// An emitted JSON payload.
    pub fn doc(&self, name: &str) -> serde_json::Value {
        let text = self.emitted.get(name).unwrap_or_else(|| {
            panic!(
                "{name} was not emitted (emitted: {:?}); errors: {:#?}",
                self.emitted.keys().collect::<Vec<_>>(),
                self.errors
            )
        });
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
    }

    /// The `code` of every error row, in order.
    pub fn codes(&self) -> Vec<String> {
        self.errors
            .iter()
            .map(|e| e["code"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// The only error row (panics when there are none or several).
    pub fn only_error(&self) -> &serde_json::Value {
        assert_eq!(self.errors.len(), 1, "{:#?}", self.errors);
        &self.errors[0]
    }
}

impl TestDir {
    /// Writes `erpdrop.toml` (settle 0, drop/inbox created) and `mappings/m.toml`.
    pub fn mapping_setup(&self, mapping: &str) {
        self.write(
            "erpdrop.toml",
            "mappings = [\"mappings/*.toml\"]\n[scan]\nsettle_seconds = 0\n",
        );
        self.write("mappings/m.toml", mapping);
        std::fs::create_dir_all(self.join("drop/inbox")).unwrap();
    }

    /// Writes `in/NAME` and runs `validate in/NAME --report rep --emit em` on it alone
    /// (rep/ and em/ are emptied first). The exit code must be 0 or 1.
    pub fn check_file(&self, name: &str, contents: impl AsRef<[u8]>) -> Checked {
        let _ = std::fs::remove_dir_all(self.join("rep"));
        let _ = std::fs::remove_dir_all(self.join("em"));
        self.write(&format!("in/{name}"), contents);
        let file = format!("in/{name}");
        let out = self.run(&["validate", &file, "--report", "rep", "--emit", "em"]);
        assert!(out.code == 0 || out.code == 1, "{out:?}");
        let report = self.read_json(&format!("rep/{name}.errors.json"));
        let errors = report["errors"].as_array().cloned().unwrap_or_default();
        let emitted = self
            .ls("em")
            .into_iter()
            .map(|n| {
                let text = self.read(&format!("em/{n}"));
                (n, text)
            })
            .collect();
        Checked {
            out,
            report,
            errors,
            emitted,
        }
    }
}
