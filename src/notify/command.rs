//! A command: a program run with its arguments (no shell), `{report}`, `{file}`,
//! `{mapping}` and `{event}` replaced; its standard input empty, its output kept for the
//! log; killed when it outlives the timeout. Its exit status is logged.

use super::Event;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The arguments with their placeholders replaced (empty where the event has no value).
pub fn argv(template: &[String], event: &Event) -> Vec<String> {
    let report = event
        .report
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let name = match event.state() {
        Some(s) => format!("{}_{s}", event.name.as_str()),
        None => event.name.as_str().to_string(),
    };
    template
        .iter()
        .map(|a| {
            a.replace("{report}", &report)
                .replace("{file}", event.file.as_deref().unwrap_or(""))
                .replace("{mapping}", event.mapping.as_deref().unwrap_or(""))
                .replace("{event}", &name)
        })
        .collect()
}

/// Runs the command: `Ok` with its exit status, `Err` when it cannot be started, fails
/// or takes too long.
pub fn run(template: &[String], timeout: Duration, event: &Event) -> Result<String, String> {
    let args = argv(template, event);
    let program = &args[0];
    let mut cmd = Command::new(program);
    cmd.args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("ERPDROP_EVENT", event.name.as_str());
    // a process group of its own, so that a stop after the timeout reaches what it
    // started too (a script's `sleep`, a ticket client), not only the script
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    // read both outputs on threads, so that a talkative command never blocks on a pipe
    let out = child.stdout.take().map(reader);
    let err = child.stderr.take().map(reader);
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() >= timeout => {
                #[cfg(unix)]
                if let Ok(pid) = i32::try_from(child.id()) {
                    // SAFETY: kill(2) on the group the child leads; no memory is shared
                    unsafe {
                        libc::kill(-pid, libc::SIGKILL);
                    }
                }
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{program} was still running after {}s: stopped",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("{program}: {e}")),
        }
    };
    let collect = |h: Option<std::thread::JoinHandle<String>>| {
        h.and_then(|h| h.join().ok()).unwrap_or_default()
    };
    let (stdout, stderr) = (collect(out), collect(err));
    let said = [stderr.trim(), stdout.trim()]
        .into_iter()
        .find(|s| !s.is_empty())
        .map(|s| format!(": {}", crate::problem::bound(s, 1000)))
        .unwrap_or_default();
    if status.success() {
        Ok(format!(" ({program} exited 0)"))
    } else {
        Err(format!("{program} {status}{said}"))
    }
}

fn reader<R: Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.by_ref().take(64 * 1024).read_to_end(&mut buf);
        // drain the rest, so that the command never waits on a full pipe
        let _ = std::io::copy(&mut r, &mut std::io::sink());
        String::from_utf8_lossy(&buf).into_owned()
    })
}
