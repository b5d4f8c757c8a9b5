//! Client-layer tests: a tiny axum server on 127.0.0.1:0 serves canned answers so the HTTP
//! layer's error mapping and exit codes can be checked without a daemon. This is not a fake
//! daemon: it only returns fixed bodies.

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use cove_cli::{run_with, Client, ClientError, Command, ContainerCmd, ImageCmd};
use cove_types::{ErrorBody, ExecRequest, ExecResponse};

fn error(status: StatusCode, msg: &str) -> (StatusCode, Json<ErrorBody>) {
    (
        status,
        Json(ErrorBody {
            error: msg.to_string(),
        }),
    )
}

async fn serve() -> String {
    let app = Router::new()
        .route(
            "/v1/containers/{id}",
            get(|Path(id): Path<String>| async move {
                error(
                    StatusCode::NOT_FOUND,
                    &format!("no such container:\n  {id}"),
                )
            }),
        )
        .route(
            "/v1/info",
            get(|headers: HeaderMap| async move {
                let ok = headers
                    .get("authorization")
                    .is_some_and(|v| v == "Bearer secret");
                if ok {
                    error(StatusCode::IM_A_TEAPOT, "authorized")
                } else {
                    error(StatusCode::UNAUTHORIZED, "missing or invalid token")
                }
            }),
        )
        .route(
            "/v1/containers/{id}/stop",
            post(|Path(id): Path<String>| async move {
                error(StatusCode::CONFLICT, &format!("{id} is already stopped"))
            }),
        )
        .route(
            "/v1/containers/{id}/exec",
            post(|Json(req): Json<ExecRequest>| async move {
                Json(ExecResponse {
                    exit_code: req.cmd.len() as i32,
                    stdout: String::new(),
                    stderr: String::new(),
                })
            }),
        )
        .route(
            "/v1/images",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom\nboom") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// What the binary prints for an error: `Error: {e:#}`.
fn printed(e: &anyhow::Error) -> String {
    format!("Error: {e:#}")
}

#[tokio::test]
async fn error_bodies_become_one_line_errors() {
    let url = serve().await;
    let client = Client::new(&url, None).unwrap();
    let cmd = Command::Container(ContainerCmd::Inspect { id: "pod-x".into() });
    let e = run_with(&client, cmd).await.unwrap_err();
    assert_eq!(printed(&e), "Error: no such container: pod-x");
    assert!(
        matches!(e.downcast_ref(), Some(ClientError::Api { status, .. }) if *status == StatusCode::NOT_FOUND.as_u16())
    );

    // A body that is not `{"error": ..}` still makes one line.
    let e = run_with(
        &client,
        Command::Image(ImageCmd::List {
            format: Default::default(),
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(
        printed(&e),
        "Error: the daemon answered 500 Internal Server Error: boom boom"
    );
}

#[tokio::test]
async fn unauthorized_says_how_to_get_a_token() {
    let url = serve().await;
    let client = Client::new(&url, None).unwrap();
    let e = run_with(
        &client,
        Command::Info(cove_cli::InfoArgs {
            format: Default::default(),
        }),
    )
    .await
    .unwrap_err();
    let line = printed(&e);
    assert!(
        line.starts_with("Error: missing or invalid token"),
        "{line}"
    );
    assert!(
        line.contains("COVE_TOKEN") && line.contains("root") && !line.contains('\n'),
        "{line}"
    );

    // The token is sent as a bearer token.
    let client = Client::new(&url, Some("secret".into())).unwrap();
    let e = run_with(
        &client,
        Command::Info(cove_cli::InfoArgs {
            format: Default::default(),
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(printed(&e), "Error: authorized");
}

#[tokio::test]
async fn stop_tries_every_id_then_exits_1() {
    let url = serve().await;
    let client = Client::new(&url, None).unwrap();
    let cmd = Command::Container(ContainerCmd::Stop {
        ids: vec!["a".into(), "b".into()],
    });
    assert_eq!(run_with(&client, cmd).await.unwrap(), 1);
}

#[tokio::test]
async fn exec_passes_the_remote_exit_code_through() {
    let url = serve().await;
    let client = Client::new(&url, None).unwrap();
    let cmd = Command::Container(ContainerCmd::Exec {
        id: "pod-x".into(),
        cmd: vec!["sh".into(), "-c".into(), "exit 3".into()],
        env: vec![],
        workdir: None,
    });
    assert_eq!(run_with(&client, cmd).await.unwrap(), 3);
}

#[tokio::test]
async fn connection_refused_names_the_daemon() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{addr}");
    let client = Client::new(&url, None).unwrap();
    let e = run_with(
        &client,
        Command::Container(ContainerCmd::Inspect { id: "x".into() }),
    )
    .await
    .unwrap_err();
    assert_eq!(
        printed(&e),
        format!("Error: cannot reach the cove daemon at {url}: is `cove server` running?")
    );
}
