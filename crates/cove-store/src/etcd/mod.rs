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
//!
//! Values are JSON. Keys are built only in [`keys`], under a root (`/cove/v1/` by default).
//!
//! [`StoreError::Unavailable`]: crate::StoreError::Unavailable

pub mod bindings;
pub mod client;
pub mod keys;
mod lease;
pub mod membership;
pub mod nodes;
pub mod watch;

pub use bindings::{BindOutcome, Binding, BindingRow, Fence};
pub use client::{Etcd, EtcdConfig};
pub use keys::{Keys, DEFAULT_ROOT};
pub use membership::{BootInstant, Health, Membership, MembershipConfig};
pub use nodes::{NodeInfo, NodeListing, NodeStatus};
pub use watch::{PrefixWatch, WatchEvent};
