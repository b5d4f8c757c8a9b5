//! HTTPS with the generated self-signed certificate: trusted client, h1 and h2, reuse.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use cove_gateway::Routes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

fn connector(cert_pem: &[u8], alpn: &[&[u8]]) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(cert_pem) {
        roots.add(cert.expect("cert pem")).expect("add root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(cfg))
}

async fn get_over_tls(
    connector: &TlsConnector,
    addr: std::net::SocketAddr,
    host: &str,
    h2: bool,
) -> (u16, String) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let sni = host.split(':').next().unwrap_or(host).to_string();
    let name = ServerName::try_from(sni).expect("server name");
    let tls = connector.connect(name, tcp).await.expect("tls handshake");
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

#[tokio::test]
async fn https_with_generated_cert_and_reuse() {
    let dir = tempfile::tempdir().expect("tempdir");
    let routes = Routes::default();
    let up = start_upstream().await;
    route(&routes, STUB, vec![up]);

    let gw = start_gateway(config(dir.path(), true, DEFAULT_RETRY), routes.clone()).await;
    let tls_addr = gw.tls_addr.expect("tls listener");
    let cert_path = dir.path().join("tls/gateway.crt");
    let cert = std::fs::read(&cert_path).expect("generated cert");
    let key_mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(dir.path().join("tls/gateway.key"))
            .expect("key")
            .permissions()
            .mode()
    };
    assert_eq!(key_mode & 0o777, 0o600);

    let host = pod_host(STUB, up, tls_addr);
    let h1 = connector(&cert, &[b"http/1.1"]);
    let (status, body) = get_over_tls(&h1, tls_addr, &host, false).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("path=/secure?q=1"), "{body}");
    assert!(body.contains("xfp=https"), "{body}");
    assert!(body.contains(&format!("host={host}\n")), "{body}");

    let h2 = connector(&cert, &[b"h2"]);
    let (status, body) = get_over_tls(&h2, tls_addr, &host, true).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!("host={host}\n")),
        "h2 :authority becomes Host: {body}"
    );
    gw.shutdown().await;

    // Second start: same certificate, and clients that trust it still connect.
    let gw = start_gateway(config(dir.path(), true, DEFAULT_RETRY), routes).await;
    assert_eq!(
        std::fs::read(&cert_path).expect("cert"),
        cert,
        "certificate reused"
    );
    let tls_addr = gw.tls_addr.expect("tls listener");
    let (status, _) = get_over_tls(&h1, tls_addr, &pod_host(STUB, up, tls_addr), false).await;
    assert_eq!(status, 200);
    gw.shutdown().await;
}
