//! `erpdrop check`: load the config, every mapping and lookup, and report what is wrong.

use super::{config_path, load_config};
use crate::cli::Cli;
use crate::exit::{Exit, Failure};
use crate::ui::Ui;

pub fn check(cli: &Cli, ui: &Ui, notify_test: bool) -> Result<Exit, Failure> {
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
    let overlaps = overlapping_mappings(&cfg);
    for o in &overlaps {
        lines.push(format!("warning: {o}"));
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
    // notifications: each channel, a command that can be run, and the test message
    let mut not_sent = Vec::new();
    let mut notified = Vec::new();
    for n in &cfg.notify {
        let on: Vec<&str> = n.on.iter().map(|e| e.as_str()).collect();
        if let crate::config::Channel::Command(argv) = &n.channel {
            if let Err(why) = runnable(&argv[0]) {
                problems.push(format!(
                    "{} ({}{}): the command {}",
                    n.name,
                    config_path(cli).display(),
                    n.line.map(|l| format!(", line {l}")).unwrap_or_default(),
                    why
                ));
                continue;
            }
        }
        let mut line = format!("{}: {} on {}", n.name, n.channel.describe(), on.join(", "));
        if notify_test {
            match crate::notify::send_to(n, &crate::notify::Event::test()) {
                Ok(_) => line.push_str(" (test notification sent)"),
                Err(e) => {
                    let e = crate::redact::redact_string(e);
                    line.push_str(" (test notification NOT sent)");
                    not_sent.push(format!(
                        "{}: the test notification could not be sent: {e}",
                        n.name
                    ));
                }
            }
        }
        notified
            .push(serde_json::json!({"name": n.name, "channel": n.channel.describe(), "on": on}));
        lines.push(line);
    }
    if notify_test && cfg.notify.is_empty() {
        lines.push("notify: no [[notify]] in the config: no test notification to send".into());
    }
    for x in &cfg.expect {
        lines.push(format!(
            "expect: a file for mapping {} every day by {} (local time)",
            x.mapping,
            x.by.format("%H:%M")
        ));
    }
    if ui.json {
        let v = serde_json::json!({
            "notify": notified,
            "notify_errors": not_sent,
            "config": config_path(cli),
            "mappings": cfg.mappings.iter().map(|m| serde_json::json!({
                "name": m.name, "file": m.file, "match": m.match_globs,
                "lookups": m.lookups.values().map(|l| serde_json::json!({"name": l.name, "file": l.display, "entries": l.len()})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "problems": problems,
            "warnings": overlaps,
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
    if !not_sent.is_empty() {
        return Err(Failure::unavailable(not_sent.join("\n")));
    }
    Ok(Exit::Ok)
}

/// Whether a notify command's program can be run: a path to an executable file, or a
/// name found on `PATH`; `Err` says what is wrong.
fn runnable(program: &str) -> Result<(), String> {
    #[cfg(unix)]
    fn executable(m: &std::fs::Metadata) -> bool {
        use std::os::unix::fs::PermissionsExt as _;
        m.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    fn executable(_: &std::fs::Metadata) -> bool {
        true
    }
    let candidates: Vec<std::path::PathBuf> = if program.contains('/') {
        vec![std::path::PathBuf::from(program)]
    } else {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).map(|d| d.join(program)).collect())
            .unwrap_or_default()
    };
    let mut seen = None;
    for c in &candidates {
        match std::fs::metadata(c) {
            Ok(m) if m.is_file() && executable(&m) => return Ok(()),
            Ok(m) if m.is_file() => {
                seen = Some(format!("{} is not executable (chmod +x)", c.display()))
            }
            Ok(_) => seen = Some(format!("{} is not a file", c.display())),
            Err(_) => {}
        }
    }
    Err(seen.unwrap_or_else(|| {
        if program.contains('/') {
            format!("{program} does not exist")
        } else {
            format!("{program} is not found on PATH")
        }
    }))
}

/// Pairs of mappings whose `match` globs take the same file names: a name like each
/// glob's (its wildcards filled in) that another mapping takes too, and the files of the
/// inbox that two take. The first mapping loaded wins; the sentence says which.
fn overlapping_mappings(cfg: &crate::config::Config) -> Vec<String> {
    let ms = &cfg.mappings;
    let mut inbox: Vec<String> = std::fs::read_dir(&cfg.folders.inbox)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    inbox.sort();
    let mut out = Vec::new();
    for (i, a) in ms.iter().enumerate() {
        for b in &ms[i + 1..] {
            let mut names: Vec<String> = a
                .match_globs
                .iter()
                .chain(&b.match_globs)
                .flat_map(|g| names_like(g))
                .filter(|n| a.matches(n) && b.matches(n))
                .collect();
            names.extend(
                inbox
                    .iter()
                    .filter(|n| a.matches(n) && b.matches(n))
                    .cloned(),
            );
            names.dedup();
            if let Some(example) = names.first() {
                out.push(format!(
                    "mappings {} ({}) and {} ({}) both take file names like {} ({} / {}); {} is loaded first and takes them: narrow a match glob so that each file has one mapping",
                    a.name,
                    a.file.display(),
                    b.name,
                    b.file.display(),
                    crate::problem::quote(example),
                    a.match_globs.join(", "),
                    b.match_globs.join(", "),
                    a.name
                ));
            }
        }
    }
    out
}

/// File names a glob takes: its wildcards filled in a few ways (`*` as nothing and as
/// `x`, `?` as `x`, a class as its first character, `{a,b}` each way).
fn names_like(glob: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut rest = glob;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        let options: Vec<String> = match c {
            '*' => {
                rest = rest.trim_start_matches('*');
                vec![String::new(), "x".into(), "2026-11-20".into()]
            }
            '?' => vec!["x".into()],
            '[' => {
                let end = rest.find(']').unwrap_or(rest.len());
                let class = &rest[..end];
                rest = rest.get(end + 1..).unwrap_or("");
                let first = class
                    .trim_start_matches(['!', '^'])
                    .chars()
                    .next()
                    .unwrap_or('x');
                vec![first.to_string()]
            }
            '{' => {
                let end = rest.find('}').unwrap_or(rest.len());
                let alts = rest[..end].split(',').map(str::to_string).collect();
                rest = rest.get(end + 1..).unwrap_or("");
                alts
            }
            '\\' => {
                let next = rest.chars().next().map(String::from).unwrap_or_default();
                rest = &rest[next.len()..];
                vec![next]
            }
            c => vec![c.to_string()],
        };
        out = out
            .iter()
            .flat_map(|p| options.iter().map(move |o| format!("{p}{o}")))
            .take(64)
            .collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::names_like;

    #[test]
    fn names_like_a_glob_fill_its_wildcards() {
        assert_eq!(
            names_like("INV_*.csv"),
            ["INV_.csv", "INV_x.csv", "INV_2026-11-20.csv"]
        );
        assert_eq!(names_like("A?[bc].{csv,txt}"), ["Axb.csv", "Axb.txt"]);
        assert_eq!(names_like("**/*.xml").len(), 9);
    }
}
