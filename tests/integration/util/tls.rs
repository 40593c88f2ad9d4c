//! TLS for tests: certificates made on the spot (a CA, servers valid, expired or for
//! another name, client certificates) and a loopback ERP over https that can require a
//! client certificate. It answers HTTP/1.1 (keep-alive) like `erp.rs`: a POST creates a
//! document (201 with its id), a GET answers 200; it records what it saw, and the
//! client certificate each connection showed.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

/// A certificate (PEM) with its private key (PEM, PKCS#8).
#[derive(Clone)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// A certificate authority that signs the certificates of a test.
pub struct Ca {
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(p, key),
        }
    }

    fn leaf(&self, mut p: CertificateParams, cn: &str, key: KeyPair) -> Pem {
        p.distinguished_name.push(DnType::CommonName, cn);
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// A self-signed certificate made as a CA (CA:TRUE, as `openssl req -x509` writes by
    /// default), used as a server's own.
    pub fn self_signed_ca_as_server(names: &[&str]) -> Pem {
        let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
        p.distinguished_name.push(DnType::CommonName, names[0]);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// A server certificate for these names (DNS names or IP addresses).
    pub fn server(&self, names: &[&str]) -> Pem {
        let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.leaf(p, names[0], KeyPair::generate().unwrap())
    }

    /// A server certificate for these names that expired on 2021-01-01.
    pub fn expired_server(&self, names: &[&str]) -> Pem {
        let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        self.leaf(p, names[0], KeyPair::generate().unwrap())
    }

    /// A client certificate with this common name, its key made with `alg`.
    pub fn client(&self, cn: &str, alg: &'static rcgen::SignatureAlgorithm) -> Pem {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.leaf(p, cn, KeyPair::generate_for(alg).unwrap())
    }
}

/// What one request looked like.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The body, as text.
    pub body: String,
    /// The client certificate of its connection (DER), if one was shown.
    pub client_cert: Option<Vec<u8>>,
    /// Its headers, in order.
    pub headers: Vec<(String, String)>,
}

#[derive(Default)]
struct State {
    requests: Vec<Seen>,
    connections: usize,
    next_id: u64,
    /// Why handshakes failed, as the server saw it.
    refused: Vec<String>,
}

/// An https ERP on loopback.
pub struct TlsErp {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl TlsErp {
    /// Serves with `server`; with `client_ca`, requires a client certificate signed by
    /// it.
    pub fn start(server: &Pem, client_ca: Option<&str>) -> TlsErp {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(server.cert.as_bytes())
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_slice(server.key.as_bytes()).unwrap();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let config = match client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                    roots.add(c.unwrap()).unwrap();
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        }
        .with_single_cert(chain, key)
        .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                st.lock().unwrap().connections += 1;
                let (st, config) = (st.clone(), config.clone());
                std::thread::spawn(move || {
                    let tls = rustls::ServerConnection::new(config).unwrap();
                    serve(rustls::StreamOwned::new(tls, conn), &st);
                });
            }
        });
        TlsErp { addr, state }
    }

    /// `https://127.0.0.1:PORT`
    pub fn base(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().requests.clone()
    }

    /// How many connections were made to it (handshakes tried).
    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    /// Why handshakes failed, in rustls' words on the server's side.
    pub fn refused(&self) -> Vec<String> {
        self.state.lock().unwrap().refused.clone()
    }
}

fn serve(
    stream: rustls::StreamOwned<rustls::ServerConnection, std::net::TcpStream>,
    state: &Mutex<State>,
) {
    let mut r = BufReader::new(stream);
    loop {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => {
                state.lock().unwrap().refused.push(e.to_string());
                return;
            }
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut length = 0usize;
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let mut body = vec![0; length];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let client_cert = r
            .get_ref()
            .conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec());
        let mut s = state.lock().unwrap();
        let (status, answer) = if method == "POST" {
            s.next_id += 1;
            ("201 Created", format!("{{\"id\": \"T{}\"}}", s.next_id))
        } else {
            ("200 OK", "{\"ok\": true}".to_string())
        };
        s.requests.push(Seen {
            method,
            path,
            body: String::from_utf8_lossy(&body).into_owned(),
            client_cert,
            headers,
        });
        drop(s);
        let out = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        let s = r.get_mut();
        if s.write_all(out.as_bytes()).and_then(|_| s.flush()).is_err() {
            return;
        }
    }
}

/// The DER of the first certificate of a PEM text.
pub fn der_of(pem: &str) -> Vec<u8> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}
