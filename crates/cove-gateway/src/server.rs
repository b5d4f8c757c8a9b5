//! Listeners, accept loops and graceful shutdown.
//!
//! Each accepted connection runs in its own task with hyper-util's auto builder (HTTP/1.1,
//! and HTTP/2 where TLS ALPN picks it). Slow or hostile clients are bounded per connection:
//! a header read timeout, a header size cap and a TLS handshake timeout. Both listeners share
//! one `cove_listen::Connections` ([`GatewayConfig::connections`]): a deadline from accept to
//! the first request (TLS included), an idle keep-alive timeout, and a connection cap that
//! closes the oldest idle connection to admit a new one instead of blocking accept.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cove_listen::{accept_loop, Conn, Connections, Limits, TrackedIo, TrackedService};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::error::GatewayError;
use crate::proxy::{handle, ProxyState};
use crate::routes::Routes;
use crate::tls;
use crate::upstream;

/// Time a client gets to send a complete request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request head (HTTP/1 read buffer; HTTP/2 header list).
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Time a client gets to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for in-flight requests before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Default for [`GatewayConfig::connect_retry`].
pub const DEFAULT_CONNECT_RETRY: Duration = Duration::from_secs(5);

/// Where and how the gateway listens.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Plain HTTP listener.
    pub listen: SocketAddr,
    /// Optional HTTPS listener.
    pub tls_listen: Option<SocketAddr>,
    /// PEM certificate chain; with `tls_key`, served instead of certificates from the local CA.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key.
    pub tls_key: Option<PathBuf>,
    /// The local CA lives in `<data_dir>/tls/` (see [`crate::ca_cert_path`]).
    pub data_dir: PathBuf,
    /// Pods are served at `<stub>-<port>.<domain>`.
    pub domain: String,
    /// How long to keep retrying a refused upstream connection (a pod still binding its
    /// port) before answering 502.
    pub connect_retry: Duration,
    /// Connection cap, per-address cap and deadlines, shared by both listeners.
    pub connections: Limits,
}

impl GatewayConfig {
    /// Plain HTTP only, default retry window.
    pub fn new(listen: SocketAddr, data_dir: PathBuf, domain: impl Into<String>) -> Self {
        GatewayConfig {
            listen,
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
            data_dir,
            domain: domain.into(),
            connect_retry: DEFAULT_CONNECT_RETRY,
            connections: Limits::GATEWAY,
        }
    }
}

/// A bound, not yet serving, gateway.
pub struct Gateway {
    http: TcpListener,
    http_addr: SocketAddr,
    tls: Option<(TcpListener, SocketAddr, TlsAcceptor)>,
    state: Arc<ProxyState>,
    limits: Limits,
}

impl Gateway {
    /// Prepares TLS material and binds the listeners, so configuration and "address in use"
    /// errors surface at startup.
    pub async fn bind(cfg: GatewayConfig, routes: Routes) -> Result<Gateway, GatewayError> {
        let tls = match cfg.tls_listen {
            Some(addr) => {
                let config = tls::server_config(
                    cfg.tls_cert.as_deref(),
                    cfg.tls_key.as_deref(),
                    &cfg.data_dir,
                    &cfg.domain,
                )?;
                let listener = bind(addr).await?;
                let local = listener
                    .local_addr()
                    .map_err(|source| GatewayError::Bind { addr, source })?;
                Some((listener, local, TlsAcceptor::from(config)))
            }
            None => None,
        };
        let http = bind(cfg.listen).await?;
        let http_addr = http.local_addr().map_err(|source| GatewayError::Bind {
            addr: cfg.listen,
            source,
        })?;
        let state = Arc::new(ProxyState {
            routes,
            domain: cfg.domain.trim_end_matches('.').to_ascii_lowercase(),
            client: upstream::client(cfg.connect_retry),
        });
        Ok(Gateway {
            http,
            http_addr,
            tls,
            state,
            limits: cfg.connections,
        })
    }

    /// The plain HTTP listener's address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The HTTPS listener's address, if TLS is enabled.
    pub fn tls_local_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().map(|(_, addr, _)| *addr)
    }

    /// Serves until `shutdown` resolves, then stops accepting, asks open connections to
    /// finish their current request, and waits for them (bounded by a grace period).
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), GatewayError> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_buf_size(MAX_HEADER_BYTES)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(MAX_HEADER_BYTES as u32);
        let ctx = Arc::new(ConnCtx {
            builder,
            state: self.state,
            conns: Connections::new("gateway", self.limits),
        });
        let graceful = GracefulShutdown::new();
        let (stop_tx, stop_rx) = watch::channel(false);
        tracing::info!(http = %self.http_addr, tls = ?self.tls.as_ref().map(|t| t.1), "gateway listening");

        let http_loop = listen(&self.http, None, &ctx, &graceful, stop_rx.clone());
        let tls_loop = async {
            if let Some((listener, _, acceptor)) = &self.tls {
                listen(listener, Some(acceptor.clone()), &ctx, &graceful, stop_rx).await;
            }
        };
        let signal = async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        };
        tokio::join!(http_loop, tls_loop, signal);

        tracing::info!("gateway shutting down");
        if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("gateway shutdown grace period elapsed with connections open");
        }
        Ok(())
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, GatewayError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| GatewayError::Bind { addr, source })
}

/// Everything a connection task needs.
struct ConnCtx {
    builder: auto::Builder<TokioExecutor>,
    state: Arc<ProxyState>,
    conns: Connections,
}

async fn listen(
    listener: &TcpListener,
    tls: Option<TlsAcceptor>,
    ctx: &Arc<ConnCtx>,
    graceful: &GracefulShutdown,
    stop: watch::Receiver<bool>,
) {
    accept_loop(listener, &ctx.conns, stop, |io, peer, conn| {
        serve_conn(
            io,
            peer,
            tls.clone(),
            Arc::clone(ctx),
            graceful.watcher(),
            conn,
        )
    })
    .await
}

async fn serve_conn(
    stream: TrackedIo<TcpStream>,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    ctx: Arc<ConnCtx>,
    watcher: hyper_util::server::graceful::Watcher,
    conn: Conn,
) {
    let state = Arc::clone(&ctx.state);
    let proto = if tls.is_some() { "https" } else { "http" };
    let svc = TrackedService::new(
        service_fn(move |req| handle(Arc::clone(&state), req, peer, proto)),
        conn,
    );
    let result = match tls {
        None => {
            let conn = ctx
                .builder
                .serve_connection_with_upgrades(TokioIo::new(stream), svc);
            watcher.watch(conn.into_owned()).await
        }
        Some(acceptor) => {
            let tls_stream =
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "tls handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "tls handshake timed out");
                        return;
                    }
                };
            let conn = ctx
                .builder
                .serve_connection_with_upgrades(TokioIo::new(tls_stream), svc);
            watcher.watch(conn.into_owned()).await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with error");
    }
}
