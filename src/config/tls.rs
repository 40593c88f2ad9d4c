//! The TLS files of the http target (`ca_file`, `client_cert`, `client_key`), read and
//! checked when the config loads: a file that cannot be read or is not what it should
//! be is a configuration error naming the file and the key, before anything is touched
//! (by `run`, `validate`, `check` alike). The target builds its TLS client from what is
//! loaded here (`deliver::http::tls`).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use std::path::Path;
use std::sync::Arc;

/// What the TLS files hold, checked: the CA certificates to trust besides the system's,
/// and the client certificate (its chain) with its private key.
#[derive(Debug, Clone, Default)]
pub struct TlsMaterial {
    pub cas: Vec<CertificateDer<'static>>,
    pub client: Option<Arc<CertifiedKey>>,
}

/// Why a TLS file is not usable: which key (`ca_file`, `client_cert`, `client_key`)
/// and a sentence naming the file.
#[derive(Debug, PartialEq, Eq)]
pub struct TlsFileError {
    pub key: &'static str,
    pub message: String,
}

fn fail(key: &'static str, path: &Path, what: impl std::fmt::Display) -> TlsFileError {
    TlsFileError {
        key,
        message: format!("{}: {what}", path.display()),
    }
}

/// The provider erpdrop's TLS uses everywhere: ring, as ureq has it.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads and checks the files (absolute paths).
pub fn load(files: &super::TlsFiles) -> Result<TlsMaterial, TlsFileError> {
    let mut m = TlsMaterial::default();
    if let Some(p) = &files.ca_file {
        m.cas = load_cas(p)?;
    }
    if let (Some(c), Some(k)) = (&files.client_cert, &files.client_key) {
        m.client = Some(Arc::new(load_client(c, k)?));
    }
    Ok(m)
}

fn read_pem(key: &'static str, path: &Path, holds: &str) -> Result<Vec<u8>, TlsFileError> {
    if path.is_dir() {
        return Err(fail(
            key,
            path,
            format!("is a folder, not a PEM file of {holds}"),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "does not exist".to_string(),
            std::io::ErrorKind::PermissionDenied => "cannot be read: permission denied".into(),
            _ => format!("cannot be read: {e}"),
        };
        fail(key, path, why)
    })?;
    // DER (binary ASN.1, a SEQUENCE) instead of PEM text: the usual mistake with a
    // certificate exported from Windows' store
    if bytes.first() == Some(&0x30) && !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(fail(
            key,
            path,
            format!("is DER (binary), not PEM: erpdrop reads {holds} as PEM text (-----BEGIN ...-----); convert it, e.g. openssl x509 -inform der -in FILE -out FILE.pem (a key: openssl pkey -inform der)"),
        ));
    }
    Ok(bytes)
}

/// The certificates of a PEM file, in order; none is an error.
fn certificates(
    key: &'static str,
    path: &Path,
    bytes: &[u8],
    holds: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let mut certs = Vec::new();
    for c in CertificateDer::pem_slice_iter(bytes) {
        match c {
            Ok(c) => certs.push(c),
            Err(e) => {
                return Err(fail(
                    key,
                    path,
                    format!("is not a readable PEM file of {holds}: {e}"),
                ))
            }
        }
    }
    if certs.is_empty() {
        return Err(fail(
            key,
            path,
            format!("holds no certificate (no -----BEGIN CERTIFICATE----- section): it must be {holds}, in PEM"),
        ));
    }
    Ok(certs)
}

fn load_cas(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let holds = "CA certificates";
    let bytes = read_pem("ca_file", path, holds)?;
    let certs = certificates("ca_file", path, &bytes, holds)?;
    // each must be a certificate that can anchor a chain
    let mut store = rustls::RootCertStore::empty();
    for (i, c) in certs.iter().enumerate() {
        if let Err(e) = store.add(c.clone()) {
            return Err(fail(
                "ca_file",
                path,
                format!(
                    "certificate {} of {} is not usable as a CA: {e}",
                    i + 1,
                    certs.len()
                ),
            ));
        }
    }
    Ok(certs)
}

fn load_client(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsFileError> {
    let chain = certificates(
        "client_cert",
        cert_path,
        &read_pem("client_cert", cert_path, "a client certificate")?,
        "a client certificate (and its chain)",
    )?;
    let key_bytes = read_pem("client_key", key_path, "a private key")?;
    let text = String::from_utf8_lossy(&key_bytes);
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
    {
        return Err(fail(
            "client_key",
            key_path,
            "is an encrypted private key: erpdrop needs it unencrypted (protect the file instead), e.g. openssl pkey -in FILE -out FILE.key",
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| {
        let why = match e {
            rustls::pki_types::pem::Error::NoItemsFound => "holds no private key (no -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY section)".to_string(),
            e => format!("is not a readable PEM private key: {e}"),
        };
        fail("client_key", key_path, why)
    })?;
    match CertifiedKey::from_der(chain, key, &provider()) {
        Ok(k) => Ok(k),
        Err(rustls::Error::InconsistentKeys(_)) => Err(fail(
            "client_key",
            key_path,
            format!(
                "is not the private key of the certificate in {} (their public keys differ)",
                cert_path.display()
            ),
        )),
        Err(rustls::Error::InvalidCertificate(e)) => Err(fail(
            "client_cert",
            cert_path,
            format!("is not a usable certificate: {e}"),
        )),
        Err(e) => Err(fail(
            "client_key",
            key_path,
            format!(
                "is not a private key erpdrop can use (RSA, ECDSA P-256/P-384 or Ed25519): {e}"
            ),
        )),
    }
}
