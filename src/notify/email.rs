//! Email through an SMTP server (lettre, TLS by rustls): STARTTLS (required, never
//! falling back to plain text), TLS from the first byte, or plain for a local relay.
//! `file_failed` and `gave_up` attach the file's `FILE.errors.csv`.

use super::Event;
use crate::config::{Email, SmtpSecurity};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use std::time::Duration;

/// An errors.csv larger than this is not attached (the mail says where it is).
const MAX_ATTACHMENT: u64 = 10 * 1024 * 1024;

/// The message for an event (built apart from sending, so that it can be read).
pub fn message(e: &Email, event: &Event) -> Result<Message, String> {
    let from: Mailbox = e
        .from
        .parse()
        .map_err(|err| format!("from {:?}: {err}", e.from))?;
    let mut b = Message::builder()
        .from(from)
        .subject(event.subject())
        .user_agent(concat!("erpdrop/", env!("CARGO_PKG_VERSION")).to_string());
    for to in &e.to {
        b = b.to(to.parse().map_err(|err| format!("to {to:?}: {err}"))?);
    }
    let mut text = event.text();
    let attachment = match &event.report {
        Some(path) if !event.test => match std::fs::metadata(path) {
            Ok(m) if m.len() > MAX_ATTACHMENT => {
                text.push_str(&format!(
                    "\nThe report is too large to attach ({} MB): it is at {}.\n",
                    m.len() / (1024 * 1024),
                    path.display()
                ));
                None
            }
            Ok(_) => match std::fs::read(path) {
                Ok(bytes) => Some((path, bytes)),
                Err(err) => {
                    tracing::warn!("cannot attach {}: {err}", path.display());
                    None
                }
            },
            Err(err) => {
                tracing::warn!("cannot attach {}: {err}", path.display());
                None
            }
        },
        _ => None,
    };
    let body = SinglePart::plain(text);
    let built = match attachment {
        Some((path, bytes)) => {
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let csv = ContentType::parse("text/csv; charset=utf-8").expect("a valid content type");
            b.multipart(
                MultiPart::mixed()
                    .singlepart(body)
                    .singlepart(Attachment::new(name).body(bytes, csv)),
            )
        }
        None => b.singlepart(body),
    };
    built.map_err(|err| format!("cannot build the message: {err}"))
}

fn tls_parameters(e: &Email) -> Result<TlsParameters, String> {
    let mut b = TlsParameters::builder(e.host.clone());
    if let Some(ca) = &e.ca_file {
        let pem =
            std::fs::read(ca).map_err(|err| format!("cannot read {}: {err}", ca.display()))?;
        let cert = Certificate::from_pem(&pem)
            .map_err(|err| format!("{} holds no PEM certificate: {err}", ca.display()))?;
        b = b.add_root_certificate(cert);
    }
    b.build_rustls().map_err(|err| format!("TLS: {err}"))
}

/// Sends the event's message.
pub fn send(e: &Email, timeout: Duration, event: &Event) -> Result<(), String> {
    let msg = message(e, event)?;
    let tls = match e.security {
        SmtpSecurity::StartTls => Tls::Required(tls_parameters(e)?),
        SmtpSecurity::Tls => Tls::Wrapper(tls_parameters(e)?),
        SmtpSecurity::None => Tls::None,
    };
    let mut t = SmtpTransport::builder_dangerous(e.host.as_str())
        .port(e.port)
        .tls(tls)
        .timeout(Some(timeout));
    if let Some((user, password)) = &e.credentials {
        t = t.credentials(Credentials::new(user.clone(), password.clone()));
    }
    t.build()
        .send(&msg)
        .map(|_| ())
        .map_err(|err| format!("the mail server {}:{}: {}", e.host, e.port, describe(&err)))
}

/// lettre's error with its causes (the TLS or I/O error under "Connection error").
fn describe(err: &lettre::transport::smtp::Error) -> String {
    let mut s = err.to_string();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(err);
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}
