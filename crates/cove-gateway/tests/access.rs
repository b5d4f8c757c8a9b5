//! Authorized pods through the gateway: WebSocket handshakes need a token of the pod's
//! workspace (header, query or the gateway's cookie), and the upstream never sees it (no
//! `Authorization`, no `auth_token`, no `cove_auth` cookie).
// tungstenite's handshake callback must return its (large) `ErrorResponse` as the error.
#![allow(clippy::result_large_err)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use cove_gateway::Routes;
use cove_types::Scope;
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::{Error, Message};

/// What the upstream saw of each handshake: its path and query, any Authorization, any Cookie.
type Seen = Arc<Mutex<Vec<(String, Option<String>, Option<String>)>>>;

/// A WebSocket echo "pod" that records each handshake.
async fn start_recording_echo(seen: Seen) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let record = |req: &Request, resp: Response| {
                    let header = |name: &str| {
                        req.headers()
                            .get(name)
                            .map(|v| v.to_str().unwrap_or("?").to_string())
                    };
                    let (auth, cookie) = (header("authorization"), header("cookie"));
                    seen.lock()
                        .unwrap()
                        .push((req.uri().to_string(), auth, cookie));
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, record).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() && ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

async fn handshake(
    gw: std::net::SocketAddr,
    url: String,
    auth: Option<&str>,
) -> Result<tokio_tungstenite::WebSocketStream<TcpStream>, tokio_tungstenite::tungstenite::Error> {
    let mut req = url.into_client_request().expect("request");
    if let Some(a) = auth {
        // `Cookie: ...` given whole, anything else is an Authorization value.
        let (name, value) = match a.strip_prefix("Cookie: ") {
            Some(c) => ("cookie", c),
            None => ("authorization", a),
        };
        req.headers_mut()
            .insert(name, value.parse().expect("header"));
    }
    let stream = TcpStream::connect(gw).await.expect("connect gateway");
    tokio_tungstenite::client_async(req, stream)
        .await
        .map(|(ws, _)| ws)
}

#[tokio::test]
async fn authorized_websockets_need_a_token_and_the_pod_never_sees_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let routes = Routes::default();
    let seen: Seen = Arc::default();
    let up = start_recording_echo(seen.clone()).await;
    route(&routes, STUB, vec![up]);
    routes.access().guard(STUB, "team-a");
    routes.access().set_token_check(Arc::new(|t: &str| match t {
        "good" => Some(Scope::Workspace("team-a".into())),
        "other" => Some(Scope::Workspace("team-b".into())),
        _ => None,
    }));
    let gw = start_gateway(config(dir.path(), false, DEFAULT_RETRY), routes).await;
    let base = format!("ws://{}", pod_host(STUB, up, gw.addr));

    for (path, auth) in [
        ("/ws", None),
        ("/ws", Some("Bearer other")),
        ("/ws?auth_token=other", None),
        ("/ws?auth_token=", Some("Bearer nope")),
        ("/ws", Some("Cookie: cove_auth=other; app=1")),
        ("/ws", Some("Cookie: app=1")),
    ] {
        match handshake(gw.addr, format!("{base}{path}"), auth).await {
            Err(Error::Http(resp)) => assert_eq!(resp.status(), 401, "{path} {auth:?}"),
            other => panic!("{path} {auth:?}: want a 401, got {:?}", other.map(|_| ())),
        }
    }
    assert!(seen.lock().unwrap().is_empty(), "nothing reached the pod");

    let mut ws = handshake(gw.addr, format!("{base}/ws?a=1&auth_token=good&b=2"), None)
        .await
        .expect("handshake with a query token");
    ws.send(Message::text("hi")).await.expect("send");
    let echoed = ws.next().await.expect("open").expect("message");
    assert_eq!(echoed.to_text().expect("text"), "hi");
    let via_path = format!("ws://{}/pod/{STUB}/{up}/p", gw.addr);
    handshake(gw.addr, via_path, Some("Bearer good"))
        .await
        .expect("handshake with a header token, path form");
    // Browsers send the gateway's cookie on same-origin WebSockets; the pod's own cookies pass.
    let url = format!("{base}/c");
    handshake(
        gw.addr,
        url,
        Some("Cookie: app=1; cove_auth=good; theme=dark"),
    )
    .await
    .expect("handshake with the cookie");

    let seen = seen.lock().unwrap().clone();
    let cookie = Some("app=1; theme=dark".to_string());
    assert_eq!(
        seen,
        [
            ("/ws?a=1&b=2".to_string(), None, None),
            ("/p".to_string(), None, None),
            ("/c".to_string(), None, cookie),
        ]
    );
    drop(ws);
    gw.shutdown().await;
}
