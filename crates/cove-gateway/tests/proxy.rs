//! End-to-end proxying over real sockets: routing, errors, retries, streaming, keep-warm.

mod common;

use std::time::{Duration, Instant};

use common::*;
use cove_gateway::Routes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

#[tokio::test]
async fn host_routing_reaches_upstream_with_path_query_body_and_headers() {
    let dir = tmp();
    let routes = Routes::default();
    let up = start_upstream().await;
    let activity = route(&routes, STUB, vec![up]);
    let gw = start_gateway(config(dir.path(), false, DEFAULT_RETRY), routes).await;

    let host = pod_host(STUB, up, gw.addr);
    let (status, body) = send(gw.addr, &host, "POST", "/api/x?y=1&z=2", "hello").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("method=POST"), "{body}");
    assert!(body.contains("path=/api/x?y=1&z=2"), "{body}");
    assert!(body.contains(&format!("host={host}\n")), "{body}");
    assert!(body.contains("xff=127.0.0.1\n"), "{body}");
    assert!(body.contains("xfp=http\n"), "{body}");
    assert!(body.contains(&format!("xfh={host}\n")), "{body}");
    assert!(body.contains("body=hello"), "{body}");
    assert!(eventually(|| activity.active() == 0).await);
    assert!(activity.last_end_ms().is_some());

    // Uppercase host works too.
    let (status, _) = send(gw.addr, &host.to_uppercase(), "GET", "/", "").await;
    assert_eq!(status, 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn path_routing_forwards_rest_and_query() {
    let dir = tmp();
    let routes = Routes::default();
    let up = start_upstream().await;
    route(&routes, STUB, vec![up]);
    let gw = start_gateway(config(dir.path(), false, DEFAULT_RETRY), routes).await;

    let path = format!("/pod/{STUB}/{up}/lab/tree?token=abc");
    let (status, body) = send(gw.addr, "localhost", "PUT", &path, "data").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("path=/lab/tree?token=abc\n"), "{body}");
    assert!(body.contains("body=data"), "{body}");
    assert!(body.contains("host=localhost\n"), "{body}");

    let (status, body) = send(
        gw.addr,
        "localhost",
        "GET",
        &format!("/pod/{STUB}/{up}"),
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("path=/\n"), "{body}");
    gw.shutdown().await;
}

#[tokio::test]
async fn deployment_style_ids_route() {
    let dir = tmp();
    let routes = Routes::default();
    let up = start_upstream().await;
    route(&routes, "my-app-1a2b3c4d", vec![up]);
    let gw = start_gateway(config(dir.path(), false, DEFAULT_RETRY), routes).await;
    let host = pod_host("my-app-1a2b3c4d", up, gw.addr);
    let (status, body) = send(gw.addr, &host, "GET", "/", "").await;
    assert_eq!(status, 200, "{body}");
    gw.shutdown().await;
}

#[tokio::test]
async fn errors_unknown_pod_port_host_and_malformed() {
    let dir = tmp();
    let routes = Routes::default();
    let up = start_upstream().await;
    route(&routes, STUB, vec![up]);
    let gw = start_gateway(config(dir.path(), false, DEFAULT_RETRY), routes).await;

    let other = "11111111-2222-3333-4444-555555555555";
    let (status, body) = send(gw.addr, &pod_host(other, 80, gw.addr), "GET", "/", "").await;
    assert_eq!(
        (status, body.trim()),
        (404, &*format!("no pod {other} on port 80"))
    );

    let (status, body) = send(gw.addr, &pod_host(STUB, 1, gw.addr), "GET", "/", "").await;
    assert_eq!(
        (status, body.trim()),
        (404, &*format!("no pod {STUB} on port 1"))
    );

    let (status, body) = send(gw.addr, "example.org", "GET", "/", "").await;
    assert_eq!((status, body.trim()), (404, "unknown host"));

    let (status, _) = send(gw.addr, &format!("a.b-80.{DOMAIN}"), "GET", "/", "").await;
    assert_eq!(status, 400);
    let (status, _) = send(gw.addr, &format!("{STUB}-0.{DOMAIN}"), "GET", "/", "").await;
    assert_eq!(status, 400);
    let (status, _) = send(gw.addr, "localhost", "GET", "/pod/x/70000/", "").await;
    assert_eq!(status, 400);
    let (status, _) = send(
        gw.addr,
        "localhost",
        "GET",
        &format!("/pod/{other}/80/"),
        "",
    )
    .await;
    assert_eq!(status, 404);
    gw.shutdown().await;
}

#[tokio::test]
async fn upstream_not_listening_gives_502_after_retry_window() {
    let dir = tmp();
    let routes = Routes::default();
    let port = free_port().await;
    let activity = route(&routes, STUB, vec![port]);
    let window = Duration::from_millis(600);
    let gw = start_gateway(config(dir.path(), false, window), routes).await;

    let started = Instant::now();
    let (status, body) = send(gw.addr, &pod_host(STUB, port, gw.addr), "GET", "/", "").await;
    let elapsed = started.elapsed();
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains(STUB) && body.contains(&port.to_string()),
        "{body}"
    );
    assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert_eq!(activity.active(), 0);
    assert!(activity.last_end_ms().is_some());
    gw.shutdown().await;
}

#[tokio::test]
async fn upstream_that_binds_late_is_reached() {
    let dir = tmp();
    let routes = Routes::default();
    let port = free_port().await;
    route(&routes, STUB, vec![port]);
    let gw = start_gateway(config(dir.path(), false, Duration::from_secs(5)), routes).await;

    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("late bind");
        serve_upstream(l);
    });
    let started = Instant::now();
    let (status, body) = send(gw.addr, &pod_host(STUB, port, gw.addr), "GET", "/late", "").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("path=/late"), "{body}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    gw.shutdown().await;
}

#[tokio::test]
async fn streamed_response_passes_through_and_counts_as_active() {
    let dir = tmp();
    let routes = Routes::default();
    let up = start_upstream().await;
    let activity = route(&routes, STUB, vec![up]);
    let gw = start_gateway(config(dir.path(), false, DEFAULT_RETRY), routes).await;

    let req = Request::builder()
        .uri(format!("http://{}/stream", gw.addr))
        .header("host", pod_host(STUB, up, gw.addr))
        .body(http_body_util::Full::default())
        .expect("request");
    let resp = client().request(req).await.expect("response");
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut total = 0usize;
    let mut first = true;
    while let Some(frame) = body.frame().await {
        let frame = frame.expect("frame");
        if let Some(data) = frame.data_ref() {
            total += data.len();
        }
        if first {
            first = false;
            assert_eq!(activity.active(), 1, "active while streaming");
        }
    }
    assert_eq!(total, CHUNKS * CHUNK);
    assert!(
        eventually(|| activity.active() == 0).await,
        "released after end"
    );
    assert!(activity.last_end_ms().is_some());
    gw.shutdown().await;
}

#[tokio::test]
async fn client_disconnect_mid_stream_releases_activity() {
    let dir = tmp();
    let routes = Routes::default();
    let up = start_upstream().await;
    let activity = route(&routes, STUB, vec![up]);
    let gw = start_gateway(config(dir.path(), false, DEFAULT_RETRY), routes).await;

    let req = Request::builder()
        .uri(format!("http://{}/stream", gw.addr))
        .header("host", pod_host(STUB, up, gw.addr))
        .body(Empty::<bytes::Bytes>::new())
        .expect("request");
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let resp = client.request(req).await.expect("response");
    let mut body = resp.into_body();
    let _ = body.frame().await;
    assert_eq!(activity.active(), 1);
    drop(body);
    drop(client);
    assert!(
        eventually(|| activity.active() == 0).await,
        "released on disconnect"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn bind_reports_address_in_use() {
    let dir = tmp();
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = taken.local_addr().expect("addr");
    let mut cfg = config(dir.path(), false, DEFAULT_RETRY);
    cfg.listen = addr;
    let err = cove_gateway::Gateway::bind(cfg, Routes::default())
        .await
        .err()
        .expect("bind must fail");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

/// A pod that speaks HTTP/1.0 and closes after each response (Python's http.server): the
/// client still gets HTTP/1.1 answers on one kept-alive connection.
#[tokio::test]
async fn an_http_1_0_pod_is_answered_in_http_1_1_with_keep_alive() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let dir = tmp();
    let routes = Routes::default();
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let up = upstream.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = upstream.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                // No Content-Length: the body ends when the connection does.
                let _ = s
                    .write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold server")
                    .await;
            });
        }
    });
    route(&routes, STUB, vec![up]);
    let gw = start_gateway(config(dir.path(), false, DEFAULT_RETRY), routes).await;
    let host = pod_host(STUB, up, gw.addr);
    let conn = tokio::net::TcpStream::connect(gw.addr)
        .await
        .expect("connect");
    let mut conn = BufReader::new(conn);
    for _ in 0..2 {
        let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        conn.get_mut()
            .write_all(req.as_bytes())
            .await
            .expect("write");
        let mut status = String::new();
        conn.read_line(&mut status).await.expect("status line");
        assert_eq!(status.trim_end(), "HTTP/1.1 200 OK");
        let mut chunked = false;
        loop {
            let mut line = String::new();
            conn.read_line(&mut line).await.expect("header");
            if line.trim_end().is_empty() {
                break;
            }
            let l = line.to_ascii_lowercase();
            assert!(!l.starts_with("connection: close"), "{line}");
            chunked |= l.starts_with("transfer-encoding: chunked");
        }
        assert!(
            chunked,
            "a body of unknown length goes chunked to an HTTP/1.1 client"
        );
        // "a\r\nold server\r\n0\r\n\r\n"
        let mut body = String::new();
        for _ in 0..4 {
            conn.read_line(&mut body).await.expect("chunk");
        }
        assert!(body.contains("old server"), "{body:?}");
    }
    gw.shutdown().await;
}
