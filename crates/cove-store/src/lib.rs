//! The daemon's state, behind one trait ([`ClusterStore`]) with a backend per shape:
//!
//! * `store` — the trait and [`StoreHandle`], what every other crate calls.
//! * `rows`, `limits` — the rows every backend keeps, and the workspace admission check.
//! * `sqlite` — [`SqliteStore`], one embedded SQLite database: the single-host default.
//! * `etcd` — the etcd side of a cluster: connection, node leases and self-fencing,
//!   bindings with fencing tokens, a resuming watch, and [`etcd::EtcdStore`], the
//!   `ClusterStore` of a cluster.
//! * `conformance` (feature `conformance`) — the checks every backend must pass.
//!
//! No other crate writes SQL or names a storage key.

#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
pub mod etcd;
mod limits;
mod rows;
mod sqlite;
mod store;

pub use error::StoreError;
pub use limits::{Admission, Limit, Limits, Refusal, Usage};
pub use rows::{BuildRow, ContainerRow, DeploymentRow, ImageRow, PodRow, TokenRow};
pub use sqlite::SqliteStore;
pub use store::{ClusterStore, StoreHandle};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
