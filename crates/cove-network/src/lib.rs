//! cove-network: the pods' network.
//!
//! One Linux bridge per daemon (name derived from the subnet), one network namespace per pod bind-mounted at
//! `<data_dir>/netns/<id>` with a veth pair whose host end is an isolated port of the bridge and whose pod end is
//! `eth0` with its own address; egress through NAT; isolation in one nftables table per daemon.
//!
//! - [`Network`] (`network.rs`): the API the lifecycle crate calls: setup / attach / restore / detach / teardown.
//! - `netns.rs`: namespace files, created on a short-lived thread (never by entering a namespace on a tokio worker).
//! - `bridge.rs`, `veth.rs`: links and addresses over rtnetlink (no `ip` processes on the attach path).
//! - `ipam.rs`: in-memory allocator of the subnet's pod addresses.
//! - `firewall.rs`: the nftables ruleset (`nft -f -`, one transaction).
//! - `egress.rs`: per-pod egress policies (open, blocked, allow list) put into that table.
//! - `dns.rs`: [`nameservers`] a pod can use.
//!
//! Everything needs root (CAP_NET_ADMIN + CAP_SYS_ADMIN) and a tokio runtime.

mod bridge;
mod dns;
mod egress;
mod error;
mod firewall;
mod ipam;
mod names;
mod netns;
mod network;
mod overlap;
mod veth;

pub use dns::nameservers;
pub use error::NetworkError;
pub use network::{Attachment, NetConfig, Network};
pub use veth::POD_IFACE;
