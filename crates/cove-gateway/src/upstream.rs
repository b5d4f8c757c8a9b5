//! The client side: a pooled hyper-util client whose connector retries refused connections
//! for a bounded window, because a freshly started pod takes a moment to bind its port.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout, Instant};

/// One connect attempt may take at most this long (a pod on the local bridge answers fast;
/// a blackholed address must not stall the request).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Retry delay while a pod is likely still binding its port. A refused
/// connect on the local bridge costs microseconds, and a pod that has just
/// started binds within milliseconds: a longer wait would only add itself to
/// the first request's latency.
const FAST_RETRY: Duration = Duration::from_millis(2);
/// How long to retry at [`FAST_RETRY`] before backing off (doubling up to
/// [`MAX_BACKOFF`]) for a pod that is slow to start.
const FAST_RETRY_FOR: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_millis(100);
/// How long idle upstream connections are kept for reuse.
const POOL_IDLE: Duration = Duration::from_secs(30);
/// Idle upstream connections kept per pod port. At least as many as concurrent clients
/// of one pod are likely to be: with fewer, every response beyond the cap closes its
/// connection and the next request opens a new one, which under load fills the host with
/// TIME_WAIT sockets (14,000 in 3 s at 64 clients with a cap of 16) until ephemeral ports
/// run out.
const POOL_MAX_IDLE_PER_POD: usize = 1024;

/// The client the proxy forwards with.
pub type UpstreamClient = Client<RetryConnector, Incoming>;

/// Builds the pooled client. Upgrades (WebSockets) work through it: hyper hands the
/// connection over when the upstream answers 101.
pub fn client(connect_retry: Duration) -> UpstreamClient {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_timer(TokioTimer::new())
        .pool_max_idle_per_host(POOL_MAX_IDLE_PER_POD)
        .build(RetryConnector { connect_retry })
}

/// Connects to `http://ip:port` URIs, retrying "connection refused" (and other transient
/// failures) with exponential backoff until `connect_retry` has passed.
#[derive(Clone, Debug)]
pub struct RetryConnector {
    connect_retry: Duration,
}

impl tower_service::Service<Uri> for RetryConnector {
    type Response = TokioIo<TcpStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let window = self.connect_retry;
        Box::pin(async move {
            let addr = target_addr(&uri)?;
            let stream = connect_with_retry(addr, window).await?;
            Ok(TokioIo::new(stream))
        })
    }
}

fn target_addr(uri: &Uri) -> io::Result<SocketAddr> {
    let authority = uri
        .authority()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "upstream uri has no host"))?;
    authority
        .as_str()
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "upstream is not ip:port"))
}

/// Connects to `addr`, retrying until `window` has elapsed. The last error is returned.
pub async fn connect_with_retry(addr: SocketAddr, window: Duration) -> io::Result<TcpStream> {
    let start = Instant::now();
    let deadline = start + window;
    let mut backoff = FAST_RETRY;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let attempt = ATTEMPT_TIMEOUT.min(remaining.max(Duration::from_millis(100)));
        let err = match timeout(attempt, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                // Proxied traffic is often interactive (terminals, WebSockets).
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => e,
            Err(_) => io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(err);
        }
        tracing::debug!(%addr, error = %err, "upstream not reachable yet, retrying");
        sleep(backoff.min(deadline - now)).await;
        if now - start >= FAST_RETRY_FOR {
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn gives_up_after_window() {
        // Bind then drop to get a port that (almost certainly) refuses.
        let l = std::net::TcpListener::bind("127.0.0.1:0").ok();
        let addr = l.as_ref().and_then(|l| l.local_addr().ok());
        drop(l);
        let Some(addr) = addr else { return };
        let start = Instant::now();
        let r = connect_with_retry(addr, Duration::from_millis(300)).await;
        assert!(r.is_err());
        assert!(start.elapsed() >= Duration::from_millis(250));
        assert!(start.elapsed() < Duration::from_secs(3));
    }
}
