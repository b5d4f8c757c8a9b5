//! The wake seam: a request for a key without a route is held while the waker starts
//! something, then forwarded; the waker's refusals become 404/503/502.

mod common;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use cove_gateway::{Activity, Routes, Target, Wake, WakeError};
use futures::future::BoxFuture;

/// Wakes `sleepy-*` after a delay by routing it to `port`; refuses the rest.
struct FakeWaker {
    routes: Routes,
    port: u16,
    calls: AtomicUsize,
}

impl Wake for FakeWaker {
    fn wake<'a>(&'a self, key: &'a str, port: u16) -> BoxFuture<'a, Result<Target, WakeError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            match key {
                k if k.starts_with("sleepy-") && port == self.port => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let target = Target {
                        address: Ipv4Addr::LOCALHOST,
                        ports: vec![self.port],
                        activity: Arc::new(Activity::new()),
                    };
                    self.routes.insert(key, target.clone());
                    Ok(target)
                }
                k if k.starts_with("stopped-") => {
                    Err(WakeError::Unavailable(format!("deployment {k} is stopped")))
                }
                k if k.starts_with("broken-") => Err(WakeError::Failed("cannot start".into())),
                _ => Err(WakeError::NotFound),
            }
        })
    }
}

#[tokio::test]
async fn requests_without_a_route_wait_for_the_waker() {
    let dir = tempfile::tempdir().unwrap();
    let routes = Routes::default();
    let up = start_upstream().await;
    let waker = Arc::new(FakeWaker {
        routes: routes.clone(),
        port: up,
        calls: AtomicUsize::new(0),
    });
    routes.set_waker(waker.clone());
    let gw = start_gateway(config(dir.path(), false, DEFAULT_RETRY), routes.clone()).await;

    let host = pod_host("sleepy-1a2b3c4d", up, gw.addr);
    let (status, body) = send(gw.addr, &host, "GET", "/x", "").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("path=/x"), "{body}");
    // Routed now: no second wake.
    let (status, _) = send(gw.addr, &host, "GET", "/", "").await;
    assert_eq!(status, 200);
    assert_eq!(waker.calls.load(Ordering::SeqCst), 1);

    let (status, body) = send(
        gw.addr,
        &pod_host("stopped-1a2b3c4d", up, gw.addr),
        "GET",
        "/",
        "",
    )
    .await;
    assert_eq!(
        (status, body.trim()),
        (503, "deployment stopped-1a2b3c4d is stopped")
    );
    let (status, _) = send(
        gw.addr,
        &pod_host("broken-1a2b3c4d", up, gw.addr),
        "GET",
        "/",
        "",
    )
    .await;
    assert_eq!(status, 502);
    let (status, _) = send(
        gw.addr,
        &pod_host("nobody-1a2b3c4d", up, gw.addr),
        "GET",
        "/",
        "",
    )
    .await;
    assert_eq!(status, 404);
    // A port the woken target does not serve.
    let other = if up == 65535 { up - 1 } else { up + 1 };
    let (status, _) = send(
        gw.addr,
        &pod_host("sleepy-ffff0000", other, gw.addr),
        "GET",
        "/",
        "",
    )
    .await;
    assert_eq!(status, 404);
    gw.shutdown().await;
}
