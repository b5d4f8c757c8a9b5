//! Back-pressure, hostile clients and graceful shutdown.

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use cove_gateway::Routes;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CHUNK_LEN: usize = 256 * 1024;

/// An upstream that streams an endless body, counting the chunks it managed to hand over.
async fn start_endless(produced: Arc<AtomicUsize>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let produced = Arc::clone(&produced);
            let svc = service_fn(move |_req: Request<hyper::body::Incoming>| {
                let produced = Arc::clone(&produced);
                let chunks = futures::stream::repeat_with(move || {
                    produced.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'x'; CHUNK_LEN])))
                });
                async move { Ok::<_, Infallible>(Response::new(StreamBody::new(chunks))) }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    port
}

#[tokio::test]
async fn slow_reader_applies_backpressure_instead_of_buffering() {
    let dir = tempfile::tempdir().expect("tempdir");
    let routes = Routes::default();
    let produced = Arc::new(AtomicUsize::new(0));
    let up = start_endless(Arc::clone(&produced)).await;
    let activity = route(&routes, STUB, vec![up]);
    let gw = start_gateway(config(dir.path(), false, DEFAULT_RETRY), routes).await;

    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<Bytes>>();
    let req = Request::builder()
        .uri(format!("http://{}/", gw.addr))
        .header("host", pod_host(STUB, up, gw.addr))
        .body(Empty::new())
        .expect("request");
    let resp = client.request(req).await.expect("response");
    let mut body = resp.into_body();
    let _ = body.frame().await;
    // The client stops reading; the upstream must stall after socket buffers fill.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let first = produced.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = produced.load(Ordering::SeqCst);
    let bytes = second * CHUNK_LEN;
    assert!(
        bytes < 128 << 20,
        "upstream pushed {bytes} bytes into a stalled client"
    );
    assert!(
        second - first <= 1,
        "upstream still producing: {first} -> {second}"
    );
    assert_eq!(activity.active(), 1);
    drop(body);
    drop(client);
    assert!(eventually(|| activity.active() == 0).await);
    gw.shutdown().await;
}

#[tokio::test]
async fn slow_client_does_not_block_others_and_huge_headers_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let routes = Routes::default();
    let up = start_upstream().await;
    route(&routes, STUB, vec![up]);
    let gw = start_gateway(config(dir.path(), false, DEFAULT_RETRY), routes).await;

    // Half a request head, never finished.
    let mut slow = TcpStream::connect(gw.addr).await.expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: ")
        .await
        .expect("write");

    let host = pod_host(STUB, up, gw.addr);
    let (status, _) = send(gw.addr, &host, "GET", "/", "").await;
    assert_eq!(status, 200);

    // A request head far over the limit gets an error status or a closed connection,
    // never a forwarded request.
    let mut big = TcpStream::connect(gw.addr).await.expect("connect");
    let head = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nX-Big: {}\r\n\r\n",
        "a".repeat(256 * 1024)
    );
    let _ = big.write_all(head.as_bytes()).await;
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), big.read(&mut buf))
        .await
        .expect("answered in time")
        .unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(n == 0 || answer.starts_with("HTTP/1.1 431"), "{answer}");
    drop(slow);
    gw.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_response_finish() {
    let dir = tempfile::tempdir().expect("tempdir");
    let routes = Routes::default();
    let up = start_upstream().await;
    route(&routes, STUB, vec![up]);
    let gw = start_gateway(config(dir.path(), false, DEFAULT_RETRY), routes).await;
    let addr = gw.addr;

    let req = Request::builder()
        .uri(format!("http://{addr}/stream"))
        .header("host", pod_host(STUB, up, addr))
        .body(http_body_util::Full::default())
        .expect("request");
    let resp = client().request(req).await.expect("response");
    let mut body = resp.into_body();
    let _ = body.frame().await;

    let stopping = tokio::spawn(gw.shutdown());
    let rest = body.collect().await.expect("rest of body").to_bytes();
    assert!(!rest.is_empty());
    stopping.await.expect("shutdown finished");
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
}
