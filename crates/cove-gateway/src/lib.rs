//! `cove-gateway`: the HTTP(S) reverse proxy that serves every pod port at its own URL.
//!
//! A request for `http://<stub-id>-<port>.<domain>/…` (or, for clients that cannot set the
//! `Host` header, `/pod/<stub-id>/<port>/…` on any host) is forwarded to the pod's
//! `address:port` as recorded in the shared [`Routes`] table.
//!
//! Map of the crate:
//! - [`host`]: strict parsing of `Host` headers and `/pod/` paths into (stub id, port).
//! - [`routes`]: the route table the lifecycle fills and the proxy reads.
//! - [`wake`]: the seam through which a route without a target (a deployment scaled to
//!   zero) is woken while its request waits.
//! - [`access`]: authorized pods: guarded route keys, the token check, token stripping.
//! - [`activity`]: per-target in-flight counters used for keep-warm decisions, with drop
//!   guards that keep them exact across errors, streamed bodies and upgrades.
//! - `proxy`: one request → one upstream request; hop-by-hop headers, `X-Forwarded-*`.
//! - `upstream`: the pooled upstream client whose connector retries refused connections
//!   while a pod is still binding its port.
//! - `upgrade`: WebSocket / `Upgrade:` tunnelling.
//! - `tls`: certificate loading, or a local CA ([`ca_cert_path`]) issuing a certificate per
//!   SNI name; rustls (ring) server config.
//! - `server`: listeners, accept loops, graceful shutdown ([`Gateway`]).

pub mod access;
pub mod activity;
mod error;
mod headers;
pub mod host;
mod proxy;
pub mod routes;
mod server;
mod tls;
mod upgrade;
mod upstream;
pub mod wake;

pub use access::{Access, TokenCheck};
pub use activity::Activity;
pub use error::GatewayError;
pub use host::parse_host;
pub use routes::{Routes, Target};
pub use server::{Gateway, GatewayConfig};
pub use tls::ca_cert_path;
pub use wake::{Wake, WakeError};
