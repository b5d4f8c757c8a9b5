//! The crate's single error type.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;

/// Everything that can go wrong while wiring pods to the network.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The configured subnet cannot host pods.
    #[error("invalid subnet {subnet}: {reason}")]
    InvalidSubnet {
        subnet: Ipv4Net,
        reason: &'static str,
    },
    /// Another interface already routes (part of) the subnet.
    #[error("subnet {subnet} overlaps {network} on interface {iface}: choose another --subnet")]
    SubnetInUse {
        subnet: Ipv4Net,
        network: Ipv4Net,
        iface: String,
    },
    /// A pod id that cannot be used as a file name.
    #[error("invalid pod id {0:?}: use 1-128 characters of [A-Za-z0-9_.-], not starting with '.'")]
    InvalidId(String),
    /// `attach`/`restore` for an id that is already attached.
    #[error("pod {0} is already attached")]
    AlreadyAttached(String),
    /// Another `attach` of the same id is still in progress.
    #[error("pod {0} is being attached right now")]
    Busy(String),
    /// Every pod address of the subnet is taken (the API answers 503).
    #[error("no free pod address left in {subnet} ({in_use} pods running)")]
    AddressesExhausted { subnet: Ipv4Net, in_use: usize },
    /// `restore` with an address outside the pod range of the subnet.
    #[error("address {address} is not a pod address of subnet {subnet}")]
    AddressOutOfRange { address: Ipv4Addr, subnet: Ipv4Net },
    /// `restore` with an address that another pod already holds.
    #[error("address {0} is already in use")]
    AddressInUse(Ipv4Addr),
    /// `attach` found a leftover namespace file for this id.
    #[error("netns file {} already exists (detach the pod first)", .0.display())]
    NetnsExists(PathBuf),
    /// `restore` for a pod whose namespace file is gone.
    #[error("netns file {} does not exist", .0.display())]
    NetnsMissing(PathBuf),
    /// A link we just made or looked up is missing.
    #[error("network interface {0} not found")]
    LinkNotFound(String),
    /// A netlink request was refused by the kernel.
    #[error("netlink: {op} failed")]
    Netlink {
        op: String,
        #[source]
        source: rtnetlink::Error,
    },
    /// A namespace or mount syscall failed.
    #[error("namespace: {op} failed")]
    Namespace {
        op: String,
        #[source]
        source: nix::Error,
    },
    /// A file or process operation failed.
    #[error("{op} failed")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
    /// An operation that needs the pod attached (e.g. setting its egress) for one that is not.
    #[error("pod {0} is not attached to the network")]
    NotAttached(String),
    /// `nft` rejected the firewall ruleset.
    #[error("nft failed: {0}")]
    Firewall(String),
}

impl NetworkError {
    pub(crate) fn netlink(op: impl Into<String>, source: rtnetlink::Error) -> Self {
        NetworkError::Netlink {
            op: op.into(),
            source,
        }
    }

    pub(crate) fn io(op: impl Into<String>, source: std::io::Error) -> Self {
        NetworkError::Io {
            op: op.into(),
            source,
        }
    }

    pub(crate) fn ns(op: impl Into<String>, source: nix::Error) -> Self {
        NetworkError::Namespace {
            op: op.into(),
            source,
        }
    }
}

/// The errno of a netlink error reply, if that is what `err` is.
pub(crate) fn netlink_errno(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(msg) => Some(msg.raw_code().abs()),
        _ => None,
    }
}
