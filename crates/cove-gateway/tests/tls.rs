//! HTTPS with certificates issued by the gateway's local CA, at `<id>-<port>.localhost`: a
//! client trusting only `ca.crt` connects over h1 and h2, the CA survives a restart, names
//! outside the domain get the domain's own certificate.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use cove_gateway::{ca_cert_path, GatewayConfig, Routes};
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

const TLS_DOMAIN: &str = "localhost";

fn tls_config(data_dir: &Path) -> GatewayConfig {
    let mut cfg = config(data_dir, true, DEFAULT_RETRY);
    cfg.domain = TLS_DOMAIN.into();
    cfg
}

fn host_for(id: &str, port: u16, gw: SocketAddr) -> String {
    format!("{id}-{port}.{TLS_DOMAIN}:{}", gw.port())
}

fn client_config() -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
}

/// A client that trusts only the CA in `ca_pem`.
fn connector(ca_pem: &[u8], alpn: &[&[u8]]) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.expect("cert pem")).expect("add root");
    }
    let mut cfg = client_config()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(cfg))
}

async fn handshake(
    connector: &TlsConnector,
    addr: SocketAddr,
    name: ServerName<'static>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    connector.connect(name, tcp).await
}

fn dns(name: &str) -> ServerName<'static> {
    ServerName::try_from(name.to_string()).expect("server name")
}

/// GET /secure?q=1 with SNI = `host` minus its port, connecting to `addr`.
async fn get_over_tls(
    connector: &TlsConnector,
    addr: SocketAddr,
    host: &str,
    h2: bool,
) -> (u16, String) {
    let sni = host.split(':').next().unwrap_or(host);
    let tls = handshake(connector, addr, dns(sni))
        .await
        .expect("tls handshake");
    let io = TokioIo::new(tls);
    let uri = format!("https://{host}/secure?q=1");
    let resp = if h2 {
        let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .expect("h2 handshake");
        tokio::spawn(conn);
        let req = Request::builder()
            .uri(uri)
            .body(Empty::<Bytes>::new())
            .expect("req");
        send.send_request(req).await.expect("h2 response")
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .expect("h1 handshake");
        tokio::spawn(conn);
        let req = Request::builder()
            .uri("/secure?q=1")
            .header("host", host)
            .body(Empty::<Bytes>::new())
            .expect("req");
        send.send_request(req).await.expect("h1 response")
    };
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The DNS names in the server's leaf certificate.
fn leaf_names(tls: &TlsStream<TcpStream>) -> Vec<String> {
    let certs = tls.get_ref().1.peer_certificates().expect("peer certs");
    let (_, leaf) = x509_parser::parse_x509_certificate(&certs[0]).expect("parse leaf");
    let san = leaf
        .subject_alternative_name()
        .expect("san ext")
        .expect("has san");
    san.value
        .general_names
        .iter()
        .map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => d.to_string(),
            other => format!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn https_trusting_only_the_local_ca_and_ca_reuse() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Files from an earlier version's self-signed certificate are ignored.
    std::fs::create_dir_all(dir.path().join("tls")).expect("mkdir");
    std::fs::write(dir.path().join("tls/gateway.crt"), "old").expect("old crt");
    std::fs::write(dir.path().join("tls/gateway.key"), "old").expect("old key");
    let routes = Routes::default();
    let up = start_upstream().await;
    route(&routes, STUB, vec![up]);

    let gw = start_gateway(tls_config(dir.path()), routes.clone()).await;
    let tls_addr = gw.tls_addr.expect("tls listener");
    let ca_path = ca_cert_path(dir.path());
    assert_eq!(ca_path, dir.path().join("tls/ca.crt"));
    let ca = std::fs::read(&ca_path).expect("generated ca.crt");
    let mode = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).expect("meta").permissions().mode() & 0o777
    };
    assert_eq!(mode(&dir.path().join("tls/ca.key")), 0o600);
    assert_eq!(mode(&ca_path), 0o644);

    let host = host_for(STUB, up, tls_addr);
    let h1 = connector(&ca, &[b"http/1.1"]);
    let (status, body) = get_over_tls(&h1, tls_addr, &host, false).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("path=/secure?q=1"), "{body}");
    assert!(body.contains("xfp=https"), "{body}");
    assert!(body.contains(&format!("host={host}\n")), "{body}");

    let h2 = connector(&ca, &[b"h2"]);
    let (status, body) = get_over_tls(&h2, tls_addr, &host, true).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!("host={host}\n")),
        "h2 :authority becomes Host: {body}"
    );

    // The leaf names exactly the requested host: no wildcard.
    let sni = format!("{STUB}-{up}.{TLS_DOMAIN}");
    let tls = handshake(&h1, tls_addr, dns(&sni))
        .await
        .expect("handshake");
    assert_eq!(leaf_names(&tls), [sni]);
    gw.shutdown().await;

    // Second start: the same CA, and a fresh client trusting it verifies the new leaves.
    let gw = start_gateway(tls_config(dir.path()), routes).await;
    assert_eq!(std::fs::read(&ca_path).expect("ca.crt"), ca, "CA reused");
    let tls_addr = gw.tls_addr.expect("tls listener");
    let fresh = connector(&ca, &[b"http/1.1"]);
    let (status, _) = get_over_tls(&fresh, tls_addr, &host_for(STUB, up, tls_addr), false).await;
    assert_eq!(status, 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn many_names_each_get_their_own_verified_leaf() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = start_gateway(tls_config(dir.path()), Routes::default()).await;
    let tls_addr = gw.tls_addr.expect("tls listener");
    let ca = std::fs::read(ca_cert_path(dir.path())).expect("ca.crt");
    let c = connector(&ca, &[b"http/1.1"]);
    for i in 0..40 {
        let name = format!("{STUB}-{}.{TLS_DOMAIN}", 1000 + i);
        let tls = handshake(&c, tls_addr, dns(&name))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(leaf_names(&tls), [name]);
    }
    // The domain itself is covered too.
    handshake(&c, tls_addr, dns(TLS_DOMAIN))
        .await
        .expect("bare domain");
    gw.shutdown().await;
}

/// Accepts any server certificate, so the test can look at what was served.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[tokio::test]
async fn no_sni_or_foreign_name_gets_the_domain_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = start_gateway(tls_config(dir.path()), Routes::default()).await;
    let tls_addr = gw.tls_addr.expect("tls listener");
    let ca = std::fs::read(ca_cert_path(dir.path())).expect("ca.crt");

    // A verifying client asking for another site fails: the CA never signs for it.
    let strict = connector(&ca, &[b"http/1.1"]);
    let err = handshake(&strict, tls_addr, dns("example.com"))
        .await
        .expect_err("foreign name must not verify");
    assert!(err.to_string().contains("certificate"), "{err}");

    // What it (and a client without SNI) is served is the domain's own leaf.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = client_config()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    let lax = TlsConnector::from(Arc::new(cfg));
    let tls = handshake(&lax, tls_addr, dns("example.com"))
        .await
        .expect("foreign sni");
    assert_eq!(leaf_names(&tls), [TLS_DOMAIN]);
    // An IP address as server name means no SNI extension.
    let ip = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
    let tls = handshake(&lax, tls_addr, ip).await.expect("no sni");
    assert_eq!(leaf_names(&tls), [TLS_DOMAIN]);
    gw.shutdown().await;
}

/// The check a user makes by hand: `curl --cacert <data_dir>/tls/ca.crt
/// https://<id>-<port>.localhost:<gw>/` (curl resolves `*.localhost` to loopback itself).
/// Skipped when curl is not installed.
#[tokio::test]
async fn curl_trusting_the_ca_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let routes = Routes::default();
    let up = start_upstream().await;
    route(&routes, STUB, vec![up]);
    let gw = start_gateway(tls_config(dir.path()), routes).await;
    let tls_addr = gw.tls_addr.expect("tls listener");
    let url = format!("https://{}/curl", host_for(STUB, up, tls_addr));
    let ca = ca_cert_path(dir.path());
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(&ca)
        .arg(&url)
        .output()
        .await;
    let out = match out {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("curl not installed; skipping");
            return;
        }
        Err(e) => panic!("curl: {e}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("path=/curl"), "{stdout}");
    gw.shutdown().await;
}
