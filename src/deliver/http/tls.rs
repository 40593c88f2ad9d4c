//! TLS of the http target: whom erpdrop trusts, the client certificate it shows, and
//! what a certificate error means in the user's words.
//!
//! Trusted are the operating system's roots (Windows' certificate store, macOS'
//! keychain, the distribution's bundle under /etc/ssl on Linux; `SSL_CERT_FILE` /
//! `SSL_CERT_DIR` replace them, as for OpenSSL) and the CAs of `target.ca_file`. Where
//! the system's store is empty or cannot be read (a minimal container), Mozilla's list
//! compiled into erpdrop (webpki-roots) takes its place, and `-v` says so.
//!
//! A certificate error will not fix itself: the target is unavailable at once, without
//! retries ([`Tls::failure`]).

use crate::config::{TlsFiles, TlsMaterial};
use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use rustls::{AlertDescription, CertificateError, SignatureScheme};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// The target's TLS client and what its errors are explained with.
pub(super) struct Tls {
    pub connector: Arc<Connector>,
    ca_file: Option<PathBuf>,
    client_cert: Option<PathBuf>,
    resolver: Arc<ClientCert>,
}

/// The client certificate, shown when the server asks for one; remembers that it asked
/// (so that a refusal is explained even where none is configured).
#[derive(Debug)]
struct ClientCert {
    key: Option<Arc<CertifiedKey>>,
    asked: AtomicBool,
}

impl ResolvesClientCert for ClientCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.asked.store(true, Ordering::Relaxed);
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        self.key.is_some()
    }
}

/// The system's roots, or webpki-roots where there are none; and the words for which.
fn system_roots() -> (rustls::RootCertStore, &'static str) {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::debug!("reading the system's trusted certificates: {e}");
    }
    let mut roots = rustls::RootCertStore::empty();
    let (added, unusable) = roots.add_parsable_certificates(found.certs);
    if added > 0 {
        tracing::debug!(
            "TLS: trusting the system's {added} root certificates{}",
            if unusable > 0 {
                format!(" ({unusable} unusable ones left out)")
            } else {
                String::new()
            }
        );
        return (roots, "the system's roots");
    }
    tracing::debug!(
        "TLS: the system's certificate store is empty or cannot be read; trusting the {} root certificates compiled into erpdrop (Mozilla's list, webpki-roots) instead",
        webpki_roots::TLS_SERVER_ROOTS.len()
    );
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    (
        roots,
        "the roots built into erpdrop: the system's store is empty",
    )
}

impl Tls {
    /// The TLS client of a target: the system's roots and `ca_file`'s, the client
    /// certificate if any (all checked when the config loaded). The roots are read at
    /// the first https connection: a target over plain http never reads them.
    pub fn new(files: &TlsFiles, material: &TlsMaterial) -> Tls {
        let resolver = Arc::new(ClientCert {
            key: material.client.clone(),
            asked: AtomicBool::new(false),
        });
        Tls {
            connector: Arc::new(Connector {
                cas: material.cas.clone(),
                ca_file: files.ca_file.clone(),
                resolver: resolver.clone(),
                config: OnceLock::new(),
            }),
            ca_file: files.ca_file.clone(),
            client_cert: files.client_cert.clone(),
            resolver,
        }
    }

    /// Whether the server asked for a client certificate (on any connection so far).
    pub fn server_asked_for_client_cert(&self) -> bool {
        self.resolver.asked.load(Ordering::Relaxed)
    }

    /// What TLS erpdrop has, for `check`'s line on success.
    pub fn summary(&self) -> String {
        let roots = self.connector.roots();
        let trust = match &self.ca_file {
            Some(p) => format!("trusted (target.ca_file {}, besides {roots})", p.display()),
            None => format!("trusted ({roots})"),
        };
        let client = match (&self.client_cert, self.server_asked_for_client_cert()) {
            (Some(p), true) => format!(
                "; the server asked for a client certificate and took {}",
                p.display()
            ),
            (Some(p), false) => format!(
                "; the server did not ask for a client certificate ({} not used)",
                p.display()
            ),
            (None, true) => {
                "; the server asked for a client certificate, none is configured".to_string()
            }
            (None, false) => String::new(),
        };
        format!("TLS: the server's certificate is {trust}{client}")
    }

    /// The user's words for a TLS failure of a request to `url`, if `t` is one that
    /// makes the target unavailable at once: any TLS error while connecting (the
    /// handshake: retrying cannot change a certificate), and the server's refusal of the
    /// client certificate, which TLS 1.3 sends after the request went out but before the
    /// server read it. `None` leaves `t` to the usual handling (transient).
    pub fn failure(&self, t: &ureq::Transport, url: &str) -> Option<String> {
        let (e, connecting) = rustls_error(t)?;
        let host = host_of(url);
        let words = match e {
            rustls::Error::InvalidCertificate(c) => self.certificate_words(c, host),
            rustls::Error::AlertReceived(a) => match self.alert_words(*a) {
                Some(w) => w,
                None if connecting => format!("the server ended the TLS handshake: {a:?}"),
                None => return None,
            },
            _ if connecting => {
                format!("the TLS handshake with {host} failed: {e} (is it https on this port?)")
            }
            _ => return None,
        };
        Some(crate::redact::redact_string(format!("{url}: {words}")))
    }

    fn certificate_words(&self, c: &CertificateError, host: &str) -> String {
        let when = |t: &rustls::pki_types::UnixTime| {
            chrono::DateTime::from_timestamp(t.as_secs() as i64, 0)
                .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_else(|| format!("{} s after 1970", t.as_secs()))
        };
        match c {
            CertificateError::UnknownIssuer => {
                let trusted = match &self.ca_file {
                    Some(p) => format!("the system's roots and the CAs of {} (target.ca_file)", p.display()),
                    None => "the system's roots".to_string(),
                };
                format!("the server's certificate is not signed by a CA erpdrop trusts ({trusted}); if the ERP uses a company CA, give its certificate (PEM) in target.ca_file")
            }
            CertificateError::ExpiredContext { time, not_after } => format!(
                "the server's certificate expired on {} (it is now {}); the ERP's administrators must renew it",
                when(not_after),
                when(time)
            ),
            CertificateError::Expired => {
                "the server's certificate has expired; the ERP's administrators must renew it".into()
            }
            CertificateError::NotValidYetContext { time, not_before } => format!(
                "the server's certificate is not valid before {} (it is now {}: is this machine's clock right?)",
                when(not_before),
                when(time)
            ),
            CertificateError::NotValidYet => {
                "the server's certificate is not valid yet (is this machine's clock right?)".into()
            }
            CertificateError::NotValidForNameContext { presented, .. } => format!(
                "the server's certificate is not valid for the host name {host}: it is for {}; use one of those names in the target's URL",
                if presented.is_empty() {
                    "no host name at all".to_string()
                } else {
                    presented.iter().map(|p| san_text(p)).collect::<Vec<_>>().join(", ")
                }
            ),
            CertificateError::NotValidForName => {
                format!("the server's certificate is not valid for the host name {host}")
            }
            CertificateError::Revoked => "the server's certificate has been revoked".into(),
            // webpki's words for a self-signed certificate made as a CA (`openssl req
            // -x509` writes CA:TRUE): it can sign others, not stand for a server
            other if format!("{other:?}").contains("CaUsedAsEndEntity") => {
                "the server presents a CA certificate as its own (a self-signed certificate made with CA:TRUE, as `openssl req -x509` writes by default): it is not trusted as a server's certificate, even through target.ca_file; the ERP needs a certificate signed by that CA (or one made without CA:TRUE), and erpdrop the CA's certificate in target.ca_file".into()
            }
            other => format!("the server's certificate was refused: {other}"),
        }
    }

    /// A TLS alert from the server about the client certificate.
    fn alert_words(&self, a: AlertDescription) -> Option<String> {
        let asked = self.server_asked_for_client_cert();
        let refused = matches!(
            a,
            AlertDescription::CertificateRequired
                | AlertDescription::BadCertificate
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::CertificateRevoked
                | AlertDescription::CertificateExpired
                | AlertDescription::CertificateUnknown
                | AlertDescription::UnknownCA
                | AlertDescription::AccessDenied
        ) || (asked && a == AlertDescription::HandshakeFailure);
        if !refused {
            return None;
        }
        Some(match &self.client_cert {
            None => "the server requires a client certificate and none is configured: give it in target.client_cert and target.client_key (PEM)".to_string(),
            Some(p) => {
                let why = match a {
                    AlertDescription::UnknownCA => ": it does not trust the CA that signed it",
                    AlertDescription::CertificateExpired => ": it has expired",
                    AlertDescription::CertificateRevoked => ": it has been revoked",
                    AlertDescription::AccessDenied => ": access denied",
                    _ => "",
                };
                format!("the server refused erpdrop's client certificate {} (target.client_cert){why} (TLS alert {a:?})", p.display())
            }
        })
    }
}

/// The rustls error inside a transport error, and whether it ended the handshake:
/// ureq puts the `io::Error` of the TLS stream in its source chain, and the rustls error
/// (or a [`Handshake`] failure) inside that.
fn rustls_error(t: &ureq::Transport) -> Option<(&rustls::Error, bool)> {
    let mut source = std::error::Error::source(t);
    while let Some(e) = source {
        let inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|i| i as &(dyn std::error::Error + 'static));
        for e in [Some(e), inner].into_iter().flatten() {
            if let Some(r) = e.downcast_ref::<rustls::Error>() {
                return Some((r, false));
            }
            if let Some(h) = e.downcast_ref::<Handshake>() {
                return h.tls.as_ref().map(|r| (r, true));
            }
        }
        source = e.source();
    }
    None
}

/// Whether a transport error ended the TLS handshake: the request was not sent.
pub(super) fn in_handshake(t: &ureq::Transport) -> bool {
    let mut source = std::error::Error::source(t);
    while let Some(e) = source {
        let io_inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref());
        if e.is::<Handshake>() || io_inner.is_some_and(|i| i.is::<Handshake>()) {
            return true;
        }
        source = e.source();
    }
    false
}

/// A failed TLS handshake: the rustls error (a certificate, an alert), or the
/// connection's.
#[derive(Debug)]
struct Handshake {
    tls: Option<rustls::Error>,
    io: std::io::Error,
}

impl std::fmt::Display for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.tls {
            Some(e) => write!(f, "TLS handshake failed: {e}"),
            None => write!(f, "TLS handshake failed: {}", self.io),
        }
    }
}

impl std::error::Error for Handshake {}

/// ureq's TLS connector, with erpdrop's stream ([`TlsStream`]).
pub(super) struct Connector {
    cas: Vec<rustls::pki_types::CertificateDer<'static>>,
    ca_file: Option<PathBuf>,
    resolver: Arc<ClientCert>,
    /// Made at the first connection: the client, and which roots it trusts.
    config: OnceLock<(Arc<rustls::ClientConfig>, &'static str)>,
}

impl Connector {
    fn config(&self) -> &(Arc<rustls::ClientConfig>, &'static str) {
        self.config.get_or_init(|| {
            let (mut roots, which) = system_roots();
            // checked when the config loaded: each is usable as a trust anchor
            let (added, _) = roots.add_parsable_certificates(self.cas.iter().cloned());
            if let Some(p) = &self.ca_file {
                tracing::debug!("TLS: trusting {added} CA certificates of {}", p.display());
            }
            let config = rustls::ClientConfig::builder_with_provider(crate::config::tls_provider())
                .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
                .expect("ring supports TLS 1.2 and 1.3")
                .with_root_certificates(roots)
                .with_client_cert_resolver(self.resolver.clone());
            (Arc::new(config), which)
        })
    }

    /// Which roots are trusted, in words (reads them if no connection did yet).
    fn roots(&self) -> &'static str {
        self.config().1
    }
}

impl ureq::TlsConnector for Connector {
    fn connect(
        &self,
        dns_name: &str,
        io: Box<dyn ureq::ReadWrite>,
    ) -> Result<Box<dyn ureq::ReadWrite>, ureq::Error> {
        // rustls takes an IPv6 address without its brackets
        let name = dns_name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(dns_name);
        let sni = rustls::pki_types::ServerName::try_from(name.to_string()).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{name:?} is not a host name: {e}"),
            )
        })?;
        let conn = rustls::ClientConnection::new(self.config().0.clone(), sni)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let mut s = TlsStream { conn, sock: io };
        while s.conn.is_handshaking() {
            if let Err(e) = s.conn.complete_io(&mut s.sock) {
                let e = s.reason(e);
                let tls = e
                    .get_ref()
                    .and_then(|i| i.downcast_ref::<rustls::Error>())
                    .cloned();
                // a socket's read timeout is WouldBlock on Unix
                let e = if e.kind() == std::io::ErrorKind::WouldBlock {
                    std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the server did not answer in time (target.timeout_seconds): timed out",
                    )
                } else {
                    e
                };
                let kind = e.kind();
                return Err(std::io::Error::new(kind, Handshake { tls, io: e }).into());
            }
        }
        Ok(Box::new(s))
    }
}

/// A TLS connection as ureq reads and writes it. Unlike rustls' `StreamOwned`, a write
/// that fails because the server closed the connection does not hide why it did: a
/// server that refuses erpdrop's client certificate (or its lack of one) says so in an
/// alert, which TLS 1.3 sends after the handshake, while the request is going out.
struct TlsStream {
    conn: rustls::ClientConnection,
    sock: Box<dyn ureq::ReadWrite>,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream").finish_non_exhaustive()
    }
}

impl TlsStream {
    /// Sends the TLS records waiting.
    fn send_pending(&mut self) -> std::io::Result<()> {
        while self.conn.wants_write() {
            self.conn.write_tls(&mut self.sock)?;
        }
        self.sock.flush()
    }

    /// Why the connection failed with `e`: the server's alert, if it sent one before it
    /// closed the connection (it is waiting unread), or `e`.
    fn reason(&mut self, e: std::io::Error) -> std::io::Error {
        use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
        if matches!(
            e.kind(),
            BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof
        ) {
            // the peer closed: reading does not block
            for _ in 0..8 {
                match self.conn.read_tls(&mut self.sock) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if let Err(t) = self.conn.process_new_packets() {
                            return std::io::Error::new(std::io::ErrorKind::InvalidData, t);
                        }
                    }
                }
            }
        }
        e
    }
}

impl ureq::ReadWrite for TlsStream {
    fn socket(&self) -> Option<&std::net::TcpStream> {
        self.sock.socket()
    }
}

impl std::io::Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.conn.writer().write(buf)?;
        match self.send_pending() {
            Ok(()) => Ok(n),
            Err(e) => Err(self.reason(e)),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.conn.writer().flush()?;
        self.send_pending().map_err(|e| self.reason(e))
    }
}

impl std::io::Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Err(e) = self.send_pending() {
            return Err(self.reason(e));
        }
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.conn.read_tls(&mut self.sock)? > 0 {
                if let Err(e) = self.conn.process_new_packets() {
                    // tell the server why (an alert), as far as it still listens
                    let _ = self.send_pending();
                    return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e));
                }
                // a key update, a ticket's answer
                if let Err(e) = self.send_pending() {
                    return Err(self.reason(e));
                }
            }
        }
    }
}

/// A name of a certificate as rustls-webpki presents it (`DnsName("erp.example")`,
/// `IpAddress(10.0.0.1)`), as a user writes it.
fn san_text(p: &str) -> &str {
    if let Some(n) = p
        .strip_prefix("DnsName(\"")
        .and_then(|n| n.strip_suffix("\")"))
    {
        return n;
    }
    if let Some(n) = p
        .strip_prefix("IpAddress(")
        .and_then(|n| n.strip_suffix(')'))
    {
        return n;
    }
    p
}

/// The host of a URL (`https://host:port/...` gives `host`).
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    authority.split(':').next().unwrap_or(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_certificates_as_users_write_them() {
        assert_eq!(san_text("DnsName(\"erp.example\")"), "erp.example");
        assert_eq!(san_text("DnsName(\"*.erp.example\")"), "*.erp.example");
        assert_eq!(san_text("IpAddress(10.0.0.1)"), "10.0.0.1");
        assert_eq!(san_text("IpAddress(::1)"), "::1");
        assert_eq!(san_text("DirectoryName"), "DirectoryName");
    }

    #[test]
    fn host_of_urls() {
        assert_eq!(host_of("https://erp.example:8443/api/x?y=1"), "erp.example");
        assert_eq!(host_of("https://u:p@erp.example/api"), "erp.example");
        assert_eq!(host_of("https://[::1]:443/"), "::1");
        assert_eq!(host_of("https://127.0.0.1"), "127.0.0.1");
    }
}
