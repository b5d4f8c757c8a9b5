//! Connecting to etcd, and the one place where etcd's errors become [`StoreError`]s.
//!
//! Every request goes through [`Etcd::call`]: it retries what a lost member or a leader
//! election explains (transport errors, gRPC `Unavailable`, "no leader") on another
//! connection until the request timeout, then gives up with [`StoreError::Unavailable`]
//! naming the endpoints. Callers only send requests that are safe to repeat: plain puts and
//! deletes, and transactions whose compare makes a repeat a no-op or recognisable
//! (a binding carries its claimant's nonce, see `bindings.rs`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};
use tokio::time::Instant;

use super::keys::{Keys, DEFAULT_ROOT};
use crate::StoreError;

/// Where the cluster store is and how long to wait for it.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// Client URLs of the members, e.g. `http://10.0.0.1:2379`.
    pub endpoints: Vec<String>,
    /// How long one TCP connect to a member may take.
    pub dial_timeout: Duration,
    /// How long one request may take in all, retries on other members included. A cluster
    /// without quorum answers [`StoreError::Unavailable`] within this time.
    pub request_timeout: Duration,
    /// Where Cove's keys live: [`DEFAULT_ROOT`] unless two clusters (or tests) share an etcd.
    pub root: String,
}

impl EtcdConfig {
    /// Parses `--etcd`'s comma-separated list of `http://host:port` URLs.
    pub fn parse(list: &str) -> Result<EtcdConfig, StoreError> {
        let mut endpoints = Vec::new();
        for raw in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let rest = raw.strip_prefix("http://").ok_or_else(|| {
                StoreError::Invalid(format!(
                    "etcd endpoint {raw:?} must be an http:// URL such as http://10.0.0.1:2379"
                ))
            })?;
            let hostport = rest.trim_end_matches('/');
            let port_ok = hostport
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !port_ok || hostport.contains('/') {
                return Err(StoreError::Invalid(format!(
                    "etcd endpoint {raw:?} must be http://host:port"
                )));
            }
            endpoints.push(format!("http://{hostport}"));
        }
        if endpoints.is_empty() {
            return Err(StoreError::Invalid(
                "no etcd endpoints given (expected http://host:port,...)".into(),
            ));
        }
        Ok(EtcdConfig::new(endpoints))
    }

    /// Default timeouts: 2 s to dial, 5 s per request.
    pub fn new(endpoints: Vec<String>) -> EtcdConfig {
        EtcdConfig {
            endpoints,
            dial_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            root: DEFAULT_ROOT.to_string(),
        }
    }

    /// One attempt's share of the request timeout, so a hung member leaves time for another.
    fn attempt_timeout(&self) -> Duration {
        (self.request_timeout / 3).max(Duration::from_millis(300))
    }
}

/// A connection to the cluster store; cheap to clone (one HTTP/2 channel per member, shared).
#[derive(Clone)]
pub struct Etcd {
    client: Client,
    config: Arc<EtcdConfig>,
    keys: Keys,
}

impl Etcd {
    /// Dials the members. Fails with [`StoreError::Unavailable`] when none answers a status
    /// request within the request timeout, so a wrong `--etcd` is reported at start.
    pub async fn connect(config: EtcdConfig) -> Result<Etcd, StoreError> {
        let keys = Keys::new(&config.root)?;
        let attempt = config.attempt_timeout();
        let options = ConnectOptions::new()
            .with_connect_timeout(config.dial_timeout)
            .with_timeout(attempt)
            .with_keep_alive(Duration::from_secs(2), attempt)
            // A member cut off from the leader refuses at once instead of hanging, and
            // cancels its watches, so the retry lands on a member of the majority.
            .with_require_leader(true);
        let client = Client::connect(&config.endpoints, Some(options))
            .await
            .map_err(|e| StoreError::Invalid(format!("etcd endpoints: {}", one_line(&e))))?;
        let etcd = Etcd {
            client,
            config: Arc::new(config),
            keys,
        };
        etcd.call(|mut c| async move { c.status().await }).await?;
        Ok(etcd)
    }

    pub fn config(&self) -> &EtcdConfig {
        &self.config
    }

    /// The keys under this connection's root.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A raw client on the same channels, for the modules of this backend.
    pub(crate) fn client(&self) -> Client {
        self.client.clone()
    }

    /// Runs `op` until it succeeds, fails for a reason a retry cannot fix, or the request
    /// timeout passes. `op` must be safe to repeat (see the module comment).
    pub(crate) async fn call<T, F, Fut>(&self, mut op: F) -> Result<T, StoreError>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let deadline = Instant::now() + self.config.request_timeout;
        let mut backoff = Duration::from_millis(20);
        loop {
            let last = match tokio::time::timeout_at(deadline, op(self.client.clone())).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) if is_transient(&e) => one_line(&e),
                Ok(Err(e)) => return Err(StoreError::Etcd(one_line(&e))),
                Err(_) => "no answer".to_string(),
            };
            if Instant::now() + backoff >= deadline {
                return Err(self.unavailable(&last));
            }
            tracing::debug!(error = %last, "etcd request failed, retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(400));
        }
    }

    /// The error for "no member of the majority answered in time".
    pub(crate) fn unavailable(&self, last: &str) -> StoreError {
        StoreError::Unavailable(format!(
            "no quorum answered within {:?} at {} (last error: {last})",
            self.config.request_timeout,
            self.config.endpoints.join(",")
        ))
    }
}

/// Errors a lost member, a partition or an election explain; another try may succeed.
fn is_transient(e: &etcd_client::Error) -> bool {
    use etcd_client::Error as E;
    use tonic::Code;
    match e {
        E::TransportError(_) | E::IoError(_) | E::WatchError(_) => true,
        E::GRpcStatus(s) => matches!(
            s.code(),
            Code::Unavailable
                | Code::DeadlineExceeded
                | Code::Cancelled
                | Code::Unknown
                | Code::Aborted
                | Code::ResourceExhausted
        ),
        _ => false,
    }
}

/// An etcd or tonic error as one line (some carry the transport's multi-line source chain).
pub(crate) fn one_line(e: &dyn std::fmt::Display) -> String {
    let text = e.to_string();
    let mut out = String::with_capacity(text.len());
    for part in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(part);
    }
    out
}
