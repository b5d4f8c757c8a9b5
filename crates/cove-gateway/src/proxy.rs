//! One client request → one upstream request: resolve the pod, rewrite headers, forward
//! with streaming bodies, and turn every failure into a plain-text HTTP response.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri, Version};
use tracing::Instrument;

use crate::access;
use crate::activity::GuardedBody;
use crate::headers::{set_forwarded, strip_hop_by_hop, wants_upgrade};
use crate::host::{classify_host, parse_pod_path, HostMatch};
use crate::routes::{Routes, Target};
use crate::upgrade::spawn_tunnel;
use crate::upstream::UpstreamClient;
use crate::wake::WakeError;

/// Body type of every response the gateway sends.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// What every connection handler shares.
pub struct ProxyState {
    pub routes: Routes,
    pub domain: String,
    pub client: UpstreamClient,
}

/// Where a request goes: the pod, its port, and the path + query to send it.
struct Resolved {
    id: String,
    port: u16,
    path: String,
    /// The URL prefix that names the pod: `/` for the host form, `/pod/<id>/<port>` (as
    /// the client spelled it) for the path form; where the auth cookie applies.
    base: String,
}

/// A request the gateway answers itself: status and plain-text message.
struct Reject(StatusCode, String);

impl Reject {
    fn new(status: StatusCode, msg: impl Into<String>) -> Self {
        Reject(status, msg.into())
    }

    fn into_response(self) -> Response<ProxyBody> {
        text(self.0, &self.1)
    }
}

/// The service function: never fails, errors become responses.
pub async fn handle(
    state: Arc<ProxyState>,
    req: Request<Incoming>,
    peer: SocketAddr,
    proto: &'static str,
) -> Result<Response<ProxyBody>, Infallible> {
    // Debug, like the access log below: an enabled span formats its fields on every
    // request (a few percent of the gateway's CPU at 64 connections).
    let span = tracing::debug_span!(
        "request",
        method = %req.method(),
        stub = tracing::field::Empty,
        port = tracing::field::Empty,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    );
    let started = Instant::now();
    let resp = forward(state, req, peer, proto)
        .instrument(span.clone())
        .await;
    span.record("status", resp.status().as_u16());
    span.record("latency_ms", started.elapsed().as_millis() as u64);
    // The access log is debug (`COVE_LOG=cove_gateway=debug`): a line per request
    // written to stderr cost a third of the gateway's throughput at 64 connections.
    span.in_scope(|| tracing::debug!("proxied"));
    Ok(resp)
}

async fn forward(
    state: Arc<ProxyState>,
    mut req: Request<Incoming>,
    peer: SocketAddr,
    proto: &'static str,
) -> Response<ProxyBody> {
    // Two Hosts are ambiguous (RFC 9112: a 400), whichever one a pod would have acted on.
    if req.headers().get_all(header::HOST).iter().nth(1).is_some() {
        return text(StatusCode::BAD_REQUEST, "more than one host header");
    }
    // HTTP/2 clients send :authority instead of Host.
    let host = match req.headers().get(header::HOST) {
        Some(v) => match v.to_str() {
            Ok(s) => Some(s.to_string()),
            Err(_) => return text(StatusCode::BAD_REQUEST, "malformed host header"),
        },
        None => req.uri().authority().map(|a| a.to_string()),
    };
    let mut resolved = match resolve(&state.domain, host.as_deref(), req.uri()) {
        Ok(r) => r,
        Err(reject) => return reject.into_response(),
    };
    let span = tracing::Span::current();
    span.record("stub", resolved.id.as_str());
    span.record("port", resolved.port);

    // An authorized pod: checked before anything is routed or woken; the token goes no further.
    if let Some(ws) = state.routes.access().workspace_of(&resolved.id) {
        let original = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let method = req.method().clone();
        let ask = access::Ask {
            method: &method,
            original: &original,
            forward: &resolved.path,
            cookie_path: &resolved.base,
            secure: proto == "https",
        };
        match access::authorize(state.routes.access(), &ws, req.headers_mut(), ask) {
            Ok(access::Granted::Forward(path)) => resolved.path = path,
            Ok(access::Granted::Redirect {
                location,
                set_cookie,
            }) => return redirect(&location, &set_cookie),
            Err(refused) => {
                let mut resp = text(StatusCode::UNAUTHORIZED, refused.denied.message());
                let headers = resp.headers_mut();
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                if let Some(v) = refused.clear_cookie.and_then(|c| c.parse().ok()) {
                    headers.insert(header::SET_COOKIE, v);
                }
                return resp;
            }
        }
    } else {
        // A public pod may have been an authorized one on this URL before: whatever a
        // browser still holds for it, or a URL still carries, is not the pod's to see.
        access::scrub(state.routes.access(), req.headers_mut());
        resolved.path = access::strip_auth_param(state.routes.access(), &resolved.path);
    }

    let not_found = || {
        let msg = format!("no pod {} on port {}", resolved.id, resolved.port);
        text(StatusCode::NOT_FOUND, &msg)
    };
    let target = match state.routes.get(&resolved.id) {
        Some(t) if t.ports.contains(&resolved.port) => t,
        Some(_) => return not_found(),
        // No route: maybe a deployment scaled to zero; the request waits for its wake.
        None => match state.routes.wake(&resolved.id, resolved.port).await {
            Ok(t) if t.ports.contains(&resolved.port) => t,
            Ok(_) | Err(WakeError::NotFound) => return not_found(),
            Err(WakeError::Unavailable(msg)) => return text(StatusCode::SERVICE_UNAVAILABLE, &msg),
            Err(WakeError::Limited(msg)) => return text(StatusCode::TOO_MANY_REQUESTS, &msg),
            Err(WakeError::Failed(msg)) => {
                tracing::warn!(stub = %resolved.id, port = resolved.port, error = %msg, "wake failed");
                return text(StatusCode::BAD_GATEWAY, &msg);
            }
        },
    };
    // Counted from here until the response body ends or the tunnel closes.
    let guard = target.activity.start();

    // The gateway answers in its own HTTP version, the client's (RFC 9110 §6.2), whatever the
    // pod spoke: an HTTP/1.0 pod (Python's http.server) would otherwise make hyper answer
    // HTTP/1.0 and close every client connection after one response.
    let client_version = req.version();
    let upgrade = client_version == Version::HTTP_11 && wants_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let upstream_req = match rewrite(req, &target, &resolved, host.as_deref(), peer, proto) {
        Ok(r) => r,
        Err(reject) => return reject.into_response(),
    };

    let mut resp = match state.client.request(upstream_req).await {
        Ok(resp) => resp,
        Err(e) => {
            let what = if e.is_connect() {
                "is not reachable on port"
            } else {
                "failed on port"
            };
            let msg = format!(
                "pod {} {what} {}: {}",
                resolved.id,
                resolved.port,
                chain(&e)
            );
            tracing::warn!(stub = %resolved.id, port = resolved.port, error = %chain(&e), "upstream request failed");
            return text(StatusCode::BAD_GATEWAY, &msg);
        }
    };

    if let (StatusCode::SWITCHING_PROTOCOLS, Some(client_upgrade)) = (resp.status(), client_upgrade)
    {
        let upstream_upgrade = hyper::upgrade::on(&mut resp);
        spawn_tunnel(client_upgrade, upstream_upgrade, guard);
        let (mut parts, _) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers, true);
        return Response::from_parts(parts, empty());
    }
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers, false);
    parts.version = client_version;
    Response::from_parts(parts, GuardedBody::new(body, guard).boxed())
}

/// Host routing first, then the `/pod/` path form, then the right error.
fn resolve(domain: &str, host: Option<&str>, uri: &Uri) -> Result<Resolved, Reject> {
    let matched = host.map(|h| classify_host(h, domain));
    if let Some(HostMatch::Pod(id, port)) = matched {
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        let base = "/".to_string();
        return Ok(Resolved {
            id,
            port,
            path,
            base,
        });
    }
    match parse_pod_path(uri.path(), uri.query()) {
        Some(Ok(p)) => {
            // `/pod/<id>/<port>` exactly as requested: cookie paths are case-sensitive.
            let base = uri
                .path()
                .splitn(5, '/')
                .take(4)
                .collect::<Vec<_>>()
                .join("/");
            return Ok(Resolved {
                id: p.id,
                port: p.port,
                path: p.rest,
                base,
            });
        }
        Some(Err(())) => {
            return Err(Reject::new(
                StatusCode::BAD_REQUEST,
                "malformed pod path: expected /pod/<id>/<port>/...",
            ))
        }
        None => {}
    }
    Err(match matched {
        Some(HostMatch::Malformed) => Reject::new(StatusCode::BAD_REQUEST, "malformed host"),
        None => Reject::new(StatusCode::BAD_REQUEST, "missing host"),
        _ => Reject::new(StatusCode::NOT_FOUND, "unknown host"),
    })
}

/// Turns the client's request into the upstream one (same body, streamed).
fn rewrite(
    req: Request<Incoming>,
    target: &Target,
    resolved: &Resolved,
    host: Option<&str>,
    peer: SocketAddr,
    proto: &'static str,
) -> Result<Request<Incoming>, Reject> {
    let upgrade = req.version() == Version::HTTP_11 && wants_upgrade(req.headers());
    let (mut parts, body) = req.into_parts();
    let uri = format!(
        "http://{}:{}{}",
        target.address, resolved.port, resolved.path
    );
    parts.uri = match uri.parse::<Uri>() {
        Ok(u) => u,
        Err(_) => {
            return Err(Reject::new(
                StatusCode::BAD_REQUEST,
                "malformed request path",
            ))
        }
    };
    parts.version = Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers, upgrade);
    if let Some(host) = host {
        // Keep the client's Host (Jupyter and others check it); h2 clients only had
        // :authority, so it is materialised here.
        if let Ok(v) = HeaderValue::from_str(host) {
            parts.headers.insert(header::HOST, v);
        }
        set_forwarded(&mut parts.headers, peer.ip(), proto, host);
    }
    Ok(Request::from_parts(parts, body))
}

/// The answer to a browser that brought its token in the URL: back to the same URL
/// without it, the token now in an HttpOnly cookie. Never cached.
fn redirect(location: &str, set_cookie: &str) -> Response<ProxyBody> {
    // Both come from a valid request line and a cookie-safe token, so they parse.
    let (Ok(loc), Ok(cookie)) = (location.parse(), set_cookie.parse()) else {
        return text(StatusCode::BAD_REQUEST, "malformed request path");
    };
    let mut resp = text(
        StatusCode::FOUND,
        "the token is now a cookie; continue without it in the URL",
    );
    let headers = resp.headers_mut();
    headers.insert(header::LOCATION, loc);
    headers.insert(header::SET_COOKIE, cookie);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A plain-text response; used for every error the gateway itself produces.
pub fn text(status: StatusCode, msg: &str) -> Response<ProxyBody> {
    let body = Full::new(Bytes::from(format!("{msg}\n")))
        .map_err(|never| match never {})
        .boxed();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn empty() -> ProxyBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// An error and its sources on one line (hyper-util's top-level messages are terse).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}
