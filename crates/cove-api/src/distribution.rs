//! The internal OCI distribution endpoint, read half: `GET /v2/`,
//! `GET|HEAD /v2/<name>/manifests/<tag or digest>`, `GET|HEAD /v2/<name>/blobs/<digest>`,
//! `GET /v2/<name>/tags/list` (skopeo inspect lists the tags).
//! Another host fetches an image it lacks from here, by digest; any registry client
//! (skopeo, oci-client) can read it too. Names and what is served: [`cove_image::distribution`].
//!
//! Only the admin token reads (in a cluster: the cluster's own token), as a Bearer token;
//! a workspace token gets 403 (the store holds every workspace's images), none 401 with a
//! `WWW-Authenticate: Bearer realm=…` challenge. The realm, `/v2/token`, hands a client
//! that logged in with the token as its password (`skopeo --creds any:<token>`,
//! `docker login`) that same token back as its bearer token. Errors are the spec's
//! `{"errors": [{"code", "message"}]}`, one line each.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use cove_image::distribution::DistributionError;
use cove_types::Scope;
use tracing::instrument;

use crate::AppState;

const API_VERSION: (&str, &str) = ("docker-distribution-api-version", "registry/2.0");

/// The `/v2/` routes; they check their own token.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v2", get(version).fallback(read_only))
        .route("/v2/", get(version).fallback(read_only))
        .route("/v2/token", get(token).fallback(read_only))
        .route("/v2/{*path}", get(read).fallback(read_only))
}

/// A spec error body with `status`.
fn error(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response {
    let message = message.to_string().replace('\n', " ");
    let body = serde_json::json!({"errors": [{"code": code, "message": message}]});
    (status, [API_VERSION], axum::Json(body)).into_response()
}

fn from_distribution(e: DistributionError) -> Response {
    use DistributionError::*;
    let status = match &e {
        NameInvalid(_) | TagInvalid(_) | DigestInvalid(_) | Unsupported(_) => {
            StatusCode::BAD_REQUEST
        }
        NameUnknown(_) | ManifestUnknown(_) | BlobUnknown(_) => StatusCode::NOT_FOUND,
        Image(_) => {
            tracing::error!(error = %e, "registry read failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    error(status, e.code(), e)
}

/// Admin only: `None` for the admin token, else the refusal: 401 with a challenge without
/// a valid token, 403 for a workspace token.
async fn refusal(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let scope = match given {
        Some(t) => state.tokens.scope_recording_use(t).await,
        None => None,
    };
    match scope {
        Some(Scope::Admin) => None,
        Some(Scope::Workspace(ws)) => Some(error(
            StatusCode::FORBIDDEN,
            "DENIED",
            format!("workspace {ws}'s token cannot read the image store: it holds every workspace's images"),
        )),
        None => Some(challenge(headers, "send Authorization: Bearer <the daemon's admin token>")),
    }
}

/// 401 with `WWW-Authenticate: Bearer realm="http://<host>/v2/token",service="cove"`.
fn challenge(headers: &HeaderMap, why: &str) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let mut resp = error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", why);
    let value = format!("Bearer realm=\"http://{host}/v2/token\",service=\"cove\"");
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

/// `GET /v2/`: 200 `{}` to a client holding the admin token.
async fn version(State(state): State<AppState>, headers: HeaderMap) -> Response {
    refusal(&state, &headers).await.unwrap_or_else(|| {
        (
            StatusCode::OK,
            [API_VERSION],
            axum::Json(serde_json::json!({})),
        )
            .into_response()
    })
}

/// `GET /v2/token`: the token flow's token endpoint. The password of Basic credentials (or
/// a Bearer token) that is the admin token comes back as the bearer token.
async fn token(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let given = if let Some(b) = auth.strip_prefix("Basic ") {
        base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|s| s.split_once(':').map(|(_, p)| p.to_string()))
    } else {
        auth.strip_prefix("Bearer ").map(|t| t.trim().to_string())
    };
    let Some(given) = given else {
        let mut resp = error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "log in with the daemon's admin token as the password",
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"cove\""),
        );
        return resp;
    };
    let mut bearer = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("Bearer {given}")) {
        bearer.insert(header::AUTHORIZATION, v);
    }
    if let Some(host) = headers.get(header::HOST) {
        bearer.insert(header::HOST, host.clone());
    }
    refusal(&state, &bearer).await.unwrap_or_else(|| {
        axum::Json(serde_json::json!({"token": given, "access_token": given})).into_response()
    })
}

/// Any other method: the endpoint only reads.
async fn read_only() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "UNSUPPORTED",
        "this registry is read-only: only GET and HEAD",
    )
}

/// `<name>/manifests/<reference>`, `<name>/blobs/<digest>` or `<name>/tags/list`.
fn split(path: &str) -> Option<(&str, &str, &str)> {
    let (head, reference) = path.rsplit_once('/')?;
    let (name, kind) = head.rsplit_once('/')?;
    let known = matches!(kind, "manifests" | "blobs") || (kind, reference) == ("tags", "list");
    known.then_some((name, kind, reference))
}

/// `GET|HEAD /v2/<name>/manifests/<reference>` and `/v2/<name>/blobs/<digest>`.
/// The path is taken as sent, not percent-decoded: names, tags and digests never need
/// escapes, so a `%` anywhere (`..%2F..`) is refused as it is instead of turning into `/`.
#[instrument(skip_all, fields(path = %uri.path().chars().take(300).collect::<String>()))]
async fn read(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Some(r) = refusal(&state, &headers).await {
        return r;
    }
    let path = uri.path().strip_prefix("/v2/").unwrap_or_default();
    let Some((name, kind, reference)) = split(path) else {
        return error(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "no such registry route: /v2/<name>/manifests/<reference> or /v2/<name>/blobs/<digest>",
        );
    };
    let head = method == Method::HEAD;
    let store = state.lifecycle.image_store();
    if kind == "tags" {
        return match store.served_tags(name).await {
            Ok(tags) => (
                [API_VERSION],
                axum::Json(serde_json::json!({"name": name, "tags": tags})),
            )
                .into_response(),
            Err(e) => from_distribution(e),
        };
    }
    if kind == "manifests" {
        match store.served_manifest(name, reference).await {
            Ok(m) => {
                let headers = [
                    (header::CONTENT_TYPE, m.media_type),
                    (header::CONTENT_LENGTH, m.bytes.len().to_string()),
                    (
                        header::HeaderName::from_static("docker-content-digest"),
                        m.digest,
                    ),
                ];
                let body = if head {
                    Body::empty()
                } else {
                    Body::from(m.bytes)
                };
                (headers, [API_VERSION], body).into_response()
            }
            Err(e) => from_distribution(e),
        }
    } else {
        match store.served_blob(name, reference).await {
            Ok(b) => blob(b, reference, head).await,
            Err(e) => from_distribution(e),
        }
    }
}

/// A blob's headers, and its bytes streamed from the blob store unless `head`.
async fn blob(b: cove_image::distribution::ServedBlob, digest: &str, head: bool) -> Response {
    let headers = [
        (header::CONTENT_TYPE, "application/octet-stream".to_string()),
        (header::CONTENT_LENGTH, b.size.to_string()),
        (
            header::HeaderName::from_static("docker-content-digest"),
            digest.to_string(),
        ),
    ];
    if head {
        return (headers, [API_VERSION], Body::empty()).into_response();
    }
    match tokio::fs::File::open(&b.path).await {
        Ok(f) => {
            let stream = tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024);
            (headers, [API_VERSION], Body::from_stream(stream)).into_response()
        }
        // Garbage-collected since it was looked up.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            from_distribution(DistributionError::BlobUnknown(digest.to_string()))
        }
        Err(e) => {
            tracing::error!(error = %e, path = %b.path.display(), "opening a blob");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNKNOWN",
                "cannot read the blob",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn paths_split_from_the_end() {
        assert_eq!(
            split("a/b/manifests/latest"),
            Some(("a/b", "manifests", "latest"))
        );
        assert_eq!(
            split("127.0.0.1_5000/busybox/blobs/sha256:00"),
            Some(("127.0.0.1_5000/busybox", "blobs", "sha256:00"))
        );
        assert_eq!(split("a/tags/list"), Some(("a", "tags", "list")));
        assert_eq!(split("a/tags/other"), None);
        assert_eq!(split("manifests/x"), None);
        assert_eq!(split("a/blobs/uploads/"), None);
    }
}
