//! Test harness: real upstream servers and a real gateway on 127.0.0.1:0.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cove_gateway::{Activity, Gateway, GatewayConfig, Routes, Target};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

pub const DOMAIN: &str = "cove.test";
pub const STUB: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";
/// Streamed response: this many chunks of CHUNK bytes.
pub const CHUNKS: usize = 64;
pub const CHUNK: usize = 64 * 1024;
pub const DEFAULT_RETRY: Duration = Duration::from_secs(5);

pub type BoxBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// A running gateway; dropping the handle shuts it down.
pub struct TestGateway {
    pub addr: SocketAddr,
    pub tls_addr: Option<SocketAddr>,
    pub routes: Routes,
    stop: Option<oneshot::Sender<()>>,
    pub done: Option<tokio::task::JoinHandle<()>>,
}

impl TestGateway {
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(done) = self.done.take() {
            tokio::time::timeout(Duration::from_secs(15), done)
                .await
                .expect("gateway did not shut down")
                .expect("gateway task panicked");
        }
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

pub fn config(data_dir: &Path, tls: bool, retry: Duration) -> GatewayConfig {
    let mut cfg = GatewayConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        data_dir.to_path_buf(),
        DOMAIN,
    );
    if tls {
        cfg.tls_listen = Some("127.0.0.1:0".parse().expect("addr"));
    }
    cfg.connect_retry = retry;
    cfg
}

pub async fn start_gateway(cfg: GatewayConfig, routes: Routes) -> TestGateway {
    let gw = Gateway::bind(cfg, routes.clone())
        .await
        .expect("bind gateway");
    let addr = gw.local_addr();
    let tls_addr = gw.tls_local_addr();
    let (tx, rx) = oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        gw.serve(async move {
            let _ = rx.await;
        })
        .await
        .expect("serve");
    });
    TestGateway {
        addr,
        tls_addr,
        routes,
        stop: Some(tx),
        done: Some(done),
    }
}

/// Registers `STUB` (or `id`) → 127.0.0.1 with `ports`, returning its activity.
pub fn route(routes: &Routes, id: &str, ports: Vec<u16>) -> Arc<Activity> {
    let activity = Arc::new(Activity::new());
    routes.insert(
        id,
        Target {
            address: Ipv4Addr::LOCALHOST,
            ports,
            activity: Arc::clone(&activity),
        },
    );
    activity
}

/// The echo upstream: `/stream` streams CHUNKS×CHUNK bytes; anything else answers with a
/// text description of the request it saw.
async fn upstream_handler(req: Request<Incoming>) -> Result<Response<BoxBody>, Infallible> {
    if req.uri().path() == "/stream" {
        let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(1);
        tokio::spawn(async move {
            for i in 0..CHUNKS {
                let chunk = Bytes::from(vec![b'a' + (i % 26) as u8; CHUNK]);
                if tx.send(Ok(Frame::data(chunk))).await.is_err() {
                    return;
                }
            }
        });
        let stream = tokio_stream_from(rx);
        return Ok(Response::new(StreamBody::new(stream).boxed()));
    }
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string()
    };
    let text = format!(
        "method={}\npath={}\nhost={}\nxff={}\nxfp={}\nxfh={}\nconnection={}\nbody={}\n",
        parts.method,
        parts.uri.path_and_query().map_or("", |p| p.as_str()),
        header("host"),
        header("x-forwarded-for"),
        header("x-forwarded-proto"),
        header("x-forwarded-host"),
        header("connection"),
        String::from_utf8_lossy(&body),
    );
    Ok(Response::new(Full::new(Bytes::from(text)).boxed()))
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Serves the echo upstream on an already bound listener.
pub fn serve_upstream(listener: TcpListener) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(upstream_handler))
                    .await;
            });
        }
    })
}

/// Starts the echo upstream on 127.0.0.1:0 and returns its port.
pub async fn start_upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let port = listener.local_addr().expect("addr").port();
    serve_upstream(listener);
    port
}

/// A port on 127.0.0.1 with nothing listening (bound and released).
pub async fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr").port()
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

pub fn pod_host(id: &str, port: u16, gw: SocketAddr) -> String {
    format!("{id}-{port}.{DOMAIN}:{}", gw.port())
}

/// Sends a request to the gateway with the given Host header and returns status + body.
pub async fn send(
    gw: SocketAddr,
    host: &str,
    method: &str,
    path: &str,
    body: &'static str,
) -> (u16, String) {
    let req = Request::builder()
        .method(method)
        .uri(format!("http://{gw}{path}"))
        .header("host", host)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("request");
    let resp = client().request(req).await.expect("gateway answered");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Waits until `cond` holds (bounded), for counters updated by other tasks.
pub async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}
