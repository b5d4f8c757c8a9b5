//! The guard on a real hyper server over real sockets: silent and idle connections are
//! shed or expire, busy and upgraded ones never are, and a new client is served.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cove_listen::{accept_loop, Connections, Limits, Phase, TrackedService};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

struct Server {
    addr: SocketAddr,
    conns: Connections,
    /// `/hold` waits for a permit.
    release: Arc<Semaphore>,
    _stop: watch::Sender<bool>,
}

async fn start(limits: Limits) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Connections::new("test", limits);
    let release = Arc::new(Semaphore::new(0));
    let (stop_tx, stop) = watch::channel(false);
    let (c, r) = (conns.clone(), Arc::clone(&release));
    tokio::spawn(async move {
        accept_loop(&listener, &c, stop, |io, _peer, conn| {
            let release = Arc::clone(&r);
            let svc = TrackedService::new(
                service_fn(move |req| answer(Arc::clone(&release), req)),
                conn,
            );
            async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(io), svc)
                    .await;
            }
        })
        .await
    });
    Server {
        addr,
        conns,
        release,
        _stop: stop_tx,
    }
}

async fn answer(
    release: Arc<Semaphore>,
    mut req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    match req.uri().path() {
        "/hold" => {
            release.acquire().await.unwrap().forget();
            Ok(Response::new(Full::from("held")))
        }
        "/upgrade" => {
            let on_upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let Ok(up) = on_upgrade.await else { return };
                let mut io = TokioIo::new(up);
                let mut buf = [0u8; 64];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
            Ok(Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header("connection", "upgrade")
                .header("upgrade", "echo")
                .body(Full::default())
                .unwrap())
        }
        _ => Ok(Response::new(Full::from("ok"))),
    }
}

fn limits(max: usize) -> Limits {
    Limits {
        max_connections: max,
        max_pending_per_address: 1000,
        first_request_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
    }
}

/// Sends a keep-alive GET and reads the answer; returns status and body.
async fn get(s: &mut TcpStream, path: &str) -> (u16, String) {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before answering {path}");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= len {
                return (status, body.to_string());
            }
        }
    }
}

/// Whether the server closed `s` (EOF or reset) within 10 s.
async fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 16];
    matches!(
        tokio::time::timeout(Duration::from_secs(10), s.read(&mut b)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn silent_connections_are_shed_so_a_new_client_is_served() {
    let srv = start(limits(8)).await;
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(srv.addr).await.unwrap());
    }
    wait_for("the registry to fill", || srv.conns.len() == 8).await;
    let mut client = TcpStream::connect(srv.addr).await.unwrap();
    assert_eq!(get(&mut client, "/").await, (200, "ok".into()));
    assert!(srv.conns.len() <= 8);
    // The oldest were closed, sockets and all.
    for s in silent.iter_mut().take(5) {
        assert!(closed_by_server(s).await);
    }
}

#[tokio::test]
async fn busy_and_upgraded_connections_are_never_shed() {
    let srv = start(limits(3)).await;
    let mut busy = TcpStream::connect(srv.addr).await.unwrap();
    busy.write_all(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut tunnel = TcpStream::connect(srv.addr).await.unwrap();
    tunnel
        .write_all(
            b"GET /upgrade HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = [0u8; 512];
    let n = tunnel.read(&mut head).await.unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 101"));
    wait_for("busy and upgraded", || {
        srv.conns.count(Phase::Busy) == 1 && srv.conns.count(Phase::Upgraded) == 1
    })
    .await;

    // A flood of silent connections only ever takes the one free slot.
    let mut silent = Vec::new();
    for _ in 0..50 {
        silent.push(TcpStream::connect(srv.addr).await.unwrap());
    }
    let mut client = TcpStream::connect(srv.addr).await.unwrap();
    assert_eq!(get(&mut client, "/").await.0, 200);
    assert_eq!(srv.conns.count(Phase::Busy), 1);
    assert_eq!(srv.conns.count(Phase::Upgraded), 1);

    srv.release.add_permits(1);
    let mut answer = vec![0u8; 512];
    let n = busy.read(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).contains("held"));
    tunnel.write_all(b"ping").await.unwrap();
    let mut echo = [0u8; 4];
    tunnel.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"ping");
}

#[tokio::test]
async fn full_of_busy_connections_refuses_then_recovers() {
    let srv = start(limits(2)).await;
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        busy.push(s);
    }
    wait_for("two busy", || srv.conns.count(Phase::Busy) == 2).await;
    let mut refused = TcpStream::connect(srv.addr).await.unwrap();
    assert!(closed_by_server(&mut refused).await);
    srv.release.add_permits(2);
    wait_for("idle again", || srv.conns.count(Phase::Busy) == 0).await;
    let mut client = TcpStream::connect(srv.addr).await.unwrap();
    assert_eq!(get(&mut client, "/").await.0, 200);
}

#[tokio::test]
async fn silent_and_idle_connections_expire() {
    let srv = start(Limits {
        first_request_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(600),
        ..limits(100)
    })
    .await;
    let mut silent = TcpStream::connect(srv.addr).await.unwrap();
    let mut trickle = TcpStream::connect(srv.addr).await.unwrap();
    trickle.write_all(b"GET / HT").await.unwrap();
    let mut keep_alive = TcpStream::connect(srv.addr).await.unwrap();
    assert_eq!(get(&mut keep_alive, "/").await.0, 200);
    assert_eq!(get(&mut keep_alive, "/").await.0, 200);
    assert!(closed_by_server(&mut silent).await);
    assert!(closed_by_server(&mut trickle).await);
    assert!(closed_by_server(&mut keep_alive).await);
    wait_for("an empty registry", || srv.conns.is_empty()).await;
}
