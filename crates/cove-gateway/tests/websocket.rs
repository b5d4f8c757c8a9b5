//! WebSockets through the gateway: an echo pod, messages both ways, keep-warm while open.

mod common;

use std::time::Duration;

use common::*;
use cove_gateway::Routes;
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// A WebSocket echo server (the "pod").
async fn start_ws_echo() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_close() {
                        break;
                    }
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn websocket_echo_through_gateway_counts_as_active() {
    let dir = tempfile::tempdir().expect("tempdir");
    let routes = Routes::default();
    let up = start_ws_echo().await;
    let activity = route(&routes, STUB, vec![up]);
    let gw = start_gateway(config(dir.path(), false, DEFAULT_RETRY), routes).await;

    let url = format!("ws://{}/api/kernels/ws?x=1", pod_host(STUB, up, gw.addr));
    let stream = TcpStream::connect(gw.addr).await.expect("connect gateway");
    let (mut ws, resp) = tokio_tungstenite::client_async(url, stream)
        .await
        .expect("websocket handshake through gateway");
    assert_eq!(resp.status(), 101);

    for i in 0..20 {
        let text = format!("message {i}");
        ws.send(Message::text(text.clone())).await.expect("send");
        let echoed = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("echo in time")
            .expect("stream open")
            .expect("message");
        assert_eq!(echoed.to_text().expect("text"), text);
    }
    let big = vec![7u8; 1 << 20];
    ws.send(Message::binary(big.clone()))
        .await
        .expect("send big");
    let echoed = ws.next().await.expect("open").expect("message");
    assert_eq!(echoed.into_data().as_ref(), &big[..]);

    assert_eq!(
        activity.active(),
        1,
        "an open websocket is an active request"
    );
    ws.close(None).await.expect("close");
    drop(ws);
    assert!(
        eventually(|| activity.active() == 0).await,
        "released when closed"
    );
    assert!(activity.last_end_ms().is_some());
    gw.shutdown().await;
}

#[tokio::test]
async fn websocket_via_path_form() {
    let dir = tempfile::tempdir().expect("tempdir");
    let routes = Routes::default();
    let up = start_ws_echo().await;
    route(&routes, STUB, vec![up]);
    let gw = start_gateway(config(dir.path(), false, DEFAULT_RETRY), routes).await;

    let url = format!("ws://{}/pod/{STUB}/{up}/ws", gw.addr);
    let stream = TcpStream::connect(gw.addr).await.expect("connect gateway");
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .expect("handshake");
    ws.send(Message::text("ping")).await.expect("send");
    let echoed = ws.next().await.expect("open").expect("message");
    assert_eq!(echoed.to_text().expect("text"), "ping");
    gw.shutdown().await;
}
