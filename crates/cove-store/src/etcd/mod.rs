//! The etcd side of the cluster store: what a cluster of Cove hosts needs beyond the
//! SQLite store of a single host.
//!
//! - [`client`]: endpoints, timeouts, retries; no quorum becomes [`StoreError::Unavailable`].
//! - [`membership`] and `lease`: a node's record attached to its lease, kept alive, and the
//!   self-fence deadline measured on the node's own clock.
//! - [`nodes`]: the listing (READY / DRAINING / LOST) and drain.
//! - [`bindings`]: which node runs a pod, created once cluster-wide; the binding's
//!   mod_revision is the fencing token every node-side write compares.
//! - [`watch`]: a prefix watch that resumes after a dropped connection and re-lists after
//!   compaction.
//! - [`EtcdStore`] (`store`): the [`crate::ClusterStore`] on etcd, built from `kv` (JSON
//!   rows, conditional commits), `admission`, and a module per group of rows: `pods`,
//!   `deployments`, `tokens`, `images`, `workspaces`.
//!
//! Values are JSON. Keys are built only in [`keys`], under a root (`/cove/v1/` by default).
//!
//! [`StoreError::Unavailable`]: crate::StoreError::Unavailable

mod admission;
pub mod bindings;
pub mod client;
mod deployments;
mod images;
pub mod keys;
mod kv;
mod lease;
pub mod membership;
pub mod nodes;
mod pods;
mod store;
mod tokens;
pub mod watch;
mod workspaces;

pub use bindings::{BindOutcome, Binding, BindingRow, Fence};
pub use client::{Etcd, EtcdConfig};
pub use keys::{Keys, DEFAULT_ROOT};
pub use membership::{BootInstant, Health, Membership, MembershipConfig};
pub use nodes::{NodeInfo, NodeListing, NodeStatus};
pub use store::EtcdStore;
pub use watch::{PrefixWatch, WatchEvent};
