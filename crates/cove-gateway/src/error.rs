//! The gateway's error type: everything that can fail at bind time or while serving.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Errors from binding, TLS setup or serving. Per-request failures never surface here: they
/// become HTTP responses (400/404/502) for that request only.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A listener could not be bound (typically "address in use").
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing TLS material failed.
    #[error("tls file {path}: {source}")]
    TlsIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// TLS material exists but is unusable (bad PEM, no key, mismatched pair…).
    #[error("invalid tls material in {path}: {reason}")]
    TlsInvalid { path: PathBuf, reason: String },
    /// Only one of `tls_cert` / `tls_key` was given.
    #[error("tls_cert and tls_key must be given together")]
    TlsPartial,
    /// The gateway domain is not a DNS name, so no certificate can be issued for it.
    #[error("gateway domain {0:?} is not a valid DNS name")]
    InvalidDomain(String),
    /// The local CA or a certificate it issues could not be generated.
    #[error("cannot generate certificate: {0}")]
    CertGen(#[from] rcgen::Error),
    /// rustls rejected the configuration.
    #[error("tls configuration: {0}")]
    Rustls(#[from] rustls::Error),
}
