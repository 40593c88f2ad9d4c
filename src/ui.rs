//! What the user sees besides the summary: logs on stderr and progress bars on a
//! terminal (never in cron output).

use crate::cli::{Cli, LogFormat};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Output settings shared by every command.
#[derive(Debug, Clone)]
pub struct Ui {
    pub progress: bool,
    pub quiet: bool,
    pub json: bool,
    /// `-v` given (once or more).
    pub verbose: bool,
}

impl Ui {
    pub fn from_cli(cli: &Cli) -> Ui {
        Ui {
            progress: !cli.no_progress && !cli.quiet && std::io::stderr().is_terminal(),
            quiet: cli.quiet,
            json: cli.json,
            verbose: cli.verbose > 0,
        }
    }

    /// A byte progress bar for one file, hidden when bars are off.
    pub fn file_bar(&self, name: &str, size: u64) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(size);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:30!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(name.to_string());
        bar
    }
}

/// Sets up tracing on stderr: `-q` errors only, default info, `-v` debug, `-vv` trace;
/// `RUST_LOG` overrides. The levels above `warn` are erpdrop's own: a library's debug
/// output is not for users, and an HTTP client's would print every request's headers,
/// custom credential headers included (it hides only `Authorization` and `Cookie`),
/// and cost more than the request.
pub fn init_logging(cli: &Cli) {
    let level = if cli.quiet {
        "error"
    } else {
        match cli.verbose {
            0 => "warn,erpdrop=info",
            1 => "warn,erpdrop=debug",
            _ => "warn,erpdrop=trace",
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let json = cli.log_format == LogFormat::Json;
    let ansi = !json && std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LogSink { json, ansi })
        .with_target(false);
    let _ = match cli.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
    };
}

/// Where log events go (stderr): each event is masked of secrets
/// ([`crate::redact`]) and, in the text format, kept on one line ([`log_line`]).
#[derive(Debug, Clone, Copy)]
struct LogSink {
    json: bool,
    /// The text format colours its output: its own escape sequences stay.
    ansi: bool,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = EventWriter;

    fn make_writer(&'a self) -> EventWriter {
        EventWriter {
            sink: *self,
            buf: Vec::new(),
        }
    }
}

/// Collects one event (tracing-subscriber formats an event whole, then writes it with
/// one `write_all` to a writer of its own) and writes it to stderr when dropped.
struct EventWriter {
    sink: LogSink,
    buf: Vec<u8>,
}

impl std::io::Write for EventWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.buf);
        let line = log_line(&text, self.sink.json, self.sink.ansi);
        let r = std::io::stderr().lock().write_all(line.as_bytes());
        self.buf.clear();
        r
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        let _ = std::io::Write::flush(self);
    }
}

/// One formatted event as it is written: every secret masked; in the text format,
/// every control character inside it escaped (`\n`, `\r`, `\t`, `\x07`, `\u{85}`), so
/// that a file name or an ERP message cannot start a line that looks like an event of
/// its own. JSON escapes them by its nature; a JSON event that holds a secret is
/// parsed, masked string by string, and written again.
pub fn log_line(event: &str, json: bool, ansi: bool) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    if json {
        if !crate::redact::in_json_text(event) {
            return Cow::Borrowed(event);
        }
        return match serde_json::from_str::<serde_json::Value>(event.trim_end()) {
            Ok(mut v) => {
                crate::redact::redact_json(&mut v);
                Cow::Owned(format!("{v}\n"))
            }
            Err(_) => Cow::Owned(crate::redact::redact(event).into_owned()),
        };
    }
    let (body, end) = match event.strip_suffix('\n') {
        Some(b) => (b, "\n"),
        None => (event, ""),
    };
    let masked = crate::redact::redact(body);
    match escape_controls(&masked, ansi) {
        Cow::Borrowed(_) if matches!(masked, Cow::Borrowed(_)) => Cow::Borrowed(event),
        escaped => Cow::Owned(format!("{escaped}{end}")),
    }
}

/// Whether a character would break a line or act on a terminal: C0 controls, DEL, C1
/// controls, and the Unicode line and paragraph separators.
fn is_control(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// `text` with its control characters escaped (see [`log_line`]); `keep_esc` keeps
/// ESC, for text that the log formatter coloured itself (it escapes ESC in the fields
/// and messages it prints).
pub fn escape_controls(text: &str, keep_esc: bool) -> std::borrow::Cow<'_, str> {
    use std::fmt::Write as _;
    let needs = |c: char| is_control(c) && !(keep_esc && c == '\x1b');
    if !text.chars().any(needs) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            _ if !needs(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_an_event_stays_one_line() {
        assert_eq!(escape_controls("plain", false), "plain");
        assert_eq!(
            escape_controls("a\nb\rc\td\x07e\x1bf\u{85}g\u{2028}h", false),
            "a\\nb\\rc\\td\\x07e\\x1bf\\u{85}g\\u{2028}h"
        );
        assert_eq!(
            escape_controls("\x1b[2mdim\x1b[0m\n", true),
            "\x1b[2mdim\x1b[0m\\n"
        );
        let line = log_line("2026 ERROR file=INV\nERROR forged\n", false, false);
        assert_eq!(line, "2026 ERROR file=INV\\nERROR forged\n");
        assert!(matches!(
            log_line("2026 INFO ok\n", false, false),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn log_lines_are_masked_of_secrets_in_text_and_in_json() {
        crate::redact::add("l0g-secret");
        assert_eq!(
            log_line("ERROR echo: Bearer l0g-secret\n", false, false),
            "ERROR echo: Bearer ***\n"
        );
        let json = log_line(
            "{\"level\":\"ERROR\",\"message\":\"echo l0g-secret\",\"file\":\"a.csv\"}\n",
            true,
            false,
        );
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["message"], "echo ***");
        assert_eq!(v["file"], "a.csv");
        assert!(json.ends_with("}\n"));
    }
}
