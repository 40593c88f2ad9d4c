//! `erpdrop check`: load the config, every mapping and lookup, and report what is wrong.

use super::{config_path, load_config};
use crate::cli::Cli;
use crate::exit::{Exit, Failure};
use crate::ui::Ui;

pub fn check(cli: &Cli, ui: &Ui) -> Result<Exit, Failure> {
    let cfg = load_config(cli)?;
    let mut lines = Vec::new();
    lines.push(format!("config {}: ok", config_path(cli).display()));
    for m in &cfg.mappings {
        lines.push(format!(
            "mapping {} ({}): {} header fields, {} line fields, takes {}",
            m.name,
            m.file.display(),
            m.header.len(),
            m.line_fields.len(),
            m.match_globs.join(", ")
        ));
        for l in m.lookups.values() {
            lines.push(format!(
                "  lookup {} ({}): {} entries",
                l.name,
                l.display,
                l.len()
            ));
        }
    }
    let mut problems = Vec::new();
    for (name, dir) in [("inbox", &cfg.folders.inbox)] {
        if !dir.is_dir() {
            problems.push(format!(
                "the {name} folder {} does not exist",
                dir.display()
            ));
        }
    }
    let mut unreachable = None;
    match &cfg.target.http {
        Some(h) => {
            let target = crate::deliver::http::HttpTarget::new(h, cfg.target.format);
            match target.probe() {
                Ok(msg) => lines.push(format!("target: http {} ({msg})", h.url)),
                Err(msg) => unreachable = Some(format!("the target is not usable: {msg}")),
            }
        }
        None => lines.push(format!(
            "target: outbox {} ({})",
            cfg.target.dir.display(),
            cfg.target.format.extension()
        )),
    }
    if ui.json {
        let v = serde_json::json!({
            "config": config_path(cli),
            "mappings": cfg.mappings.iter().map(|m| serde_json::json!({
                "name": m.name, "file": m.file, "match": m.match_globs,
                "lookups": m.lookups.values().map(|l| serde_json::json!({"name": l.name, "file": l.display, "entries": l.len()})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "problems": problems,
            "target_error": unreachable,
        });
        crate::outln!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else if !ui.quiet {
        for l in &lines {
            crate::outln!("{l}");
        }
    }
    if !problems.is_empty() {
        return Err(Failure::usage(problems.join("\n")));
    }
    if let Some(msg) = unreachable {
        return Err(Failure::unavailable(msg));
    }
    Ok(Exit::Ok)
}
