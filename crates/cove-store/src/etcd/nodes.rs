//! The cluster's nodes as the control side sees them: `nodes/<name>` attached to each
//! node's lease, `node-info/<name>` kept without one.
//!
//! While a node's lease lives, `nodes/<name>` says READY or DRAINING; when etcd expires the
//! lease (the server's clock) the key goes with it and the listing shows the node LOST from
//! its `node-info` record. A node that leaves on purpose removes both.

use etcd_client::{Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse};
use serde::{Deserialize, Serialize};

use super::client::Etcd;
use super::keys;
use crate::StoreError;

/// What a node tells the cluster about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub name: String,
    /// The address other hosts reach this one at.
    pub address: String,
    pub api_url: String,
    pub gateway_url: String,
    pub cpu_millis: u64,
    pub memory_mib: u64,
    /// Isolations this host can run: "runc", "gvisor".
    pub isolations: Vec<String>,
    /// Set by `cove node drain`: no new pods land here.
    #[serde(default)]
    pub draining: bool,
    pub joined_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStatus {
    Ready,
    Draining,
    /// The node's lease expired: it has stopped its containers (or will, by its own clock).
    Lost,
}

/// One line of `cove node list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeListing {
    pub info: NodeInfo,
    pub status: NodeStatus,
    /// The lease holding `nodes/<name>`, when the node is not LOST.
    pub lease: Option<i64>,
    /// Seconds since the node's last renewal reached etcd (whole seconds, the leader's
    /// view): `cove node list`'s "Last heartbeat". None when LOST.
    pub since_renewal_secs: Option<i64>,
}

pub(crate) async fn read_info(etcd: &Etcd, name: &str) -> Result<Option<NodeInfo>, StoreError> {
    let key = etcd.keys().node_info(name);
    let resp = etcd
        .call(|mut c| {
            let key = key.clone();
            async move { c.get(key, None).await }
        })
        .await?;
    resp.kvs().first().map(|kv| decode(kv.value())).transpose()
}

/// Every node the cluster knows, READY, DRAINING or LOST, read at one revision.
pub async fn list_nodes(etcd: &Etcd) -> Result<Vec<NodeListing>, StoreError> {
    let keys = etcd.keys();
    let resp = etcd
        .call(|mut c| {
            let txn = Txn::new().and_then([
                TxnOp::get(keys.node_infos(), Some(GetOptions::new().with_prefix())),
                TxnOp::get(keys.nodes(), Some(GetOptions::new().with_prefix())),
            ]);
            async move { c.txn(txn).await }
        })
        .await?;
    let mut gets = resp.op_responses().into_iter().filter_map(|r| match r {
        TxnOpResponse::Get(g) => Some(g),
        _ => None,
    });
    let (infos, live) = match (gets.next(), gets.next()) {
        (Some(i), Some(l)) => (i, l),
        _ => {
            return Err(StoreError::Etcd(
                "node listing: short transaction answer".into(),
            ))
        }
    };
    let mut out = Vec::new();
    for kv in infos.kvs() {
        let info = decode(kv.value())?;
        let live_kv = live
            .kvs()
            .iter()
            .find(|l| l.key() == etcd.keys().node(&info.name).as_bytes());
        let (status, lease) = match live_kv {
            Some(l) => {
                let current = decode(l.value())?;
                let status = if current.draining {
                    NodeStatus::Draining
                } else {
                    NodeStatus::Ready
                };
                (status, Some(l.lease()))
            }
            None => (NodeStatus::Lost, None),
        };
        out.push(NodeListing {
            info,
            status,
            lease,
            since_renewal_secs: None,
        });
    }
    for n in &mut out {
        let Some(lease) = n.lease else { continue };
        let ttl = etcd
            .call(|mut c| async move { c.lease_time_to_live(lease, None).await })
            .await?;
        // TTL -1: the lease expired since the listing was read.
        if ttl.ttl() >= 0 {
            n.since_renewal_secs = Some(ttl.granted_ttl() - ttl.ttl());
        }
    }
    Ok(out)
}

/// Marks a node draining (or not). A LOST node's record is updated too, so it comes back
/// draining if it rejoins. Fails if the cluster has never seen the node.
pub async fn set_draining(etcd: &Etcd, name: &str, draining: bool) -> Result<(), StoreError> {
    keys::check_name("node name", name)?;
    let node = etcd.keys().node(name);
    let node_info = etcd.keys().node_info(name);
    loop {
        let resp = etcd
            .call(|mut c| {
                let txn = Txn::new().and_then([TxnOp::get(node_info.as_str(), None)]);
                async move { c.txn(txn).await }
            })
            .await?;
        let Some(TxnOpResponse::Get(got)) = resp.op_responses().into_iter().next() else {
            return Err(StoreError::Etcd("drain: short transaction answer".into()));
        };
        let Some(kv) = got.kvs().first() else {
            return Err(StoreError::Invalid(format!(
                "no node named {name} in the cluster"
            )));
        };
        let mut info = decode(kv.value())?;
        info.draining = draining;
        let value = serde_json::to_string(&info)
            .map_err(|e| StoreError::Corrupt(format!("node info: {e}")))?;
        let seen = kv.mod_revision();
        let resp = etcd
            .call(|mut c| {
                // The live record keeps its lease (ignore_lease); it is only updated if it exists.
                let live = Txn::new()
                    .when([Compare::version(node.as_str(), CompareOp::Greater, 0)])
                    .and_then([TxnOp::put(
                        node.as_str(),
                        value.as_str(),
                        Some(PutOptions::new().with_ignore_lease()),
                    )]);
                let txn = Txn::new()
                    .when([Compare::mod_revision(
                        node_info.as_str(),
                        CompareOp::Equal,
                        seen,
                    )])
                    .and_then([
                        TxnOp::put(node_info.as_str(), value.as_str(), None),
                        TxnOp::txn(live),
                    ]);
                async move { c.txn(txn).await }
            })
            .await?;
        // A repeat after a lost answer fails the compare, then finds the flag already set.
        if resp.succeeded()
            || read_info(etcd, name)
                .await?
                .is_some_and(|i| i.draining == draining)
        {
            return Ok(());
        }
    }
}

fn decode(value: &[u8]) -> Result<NodeInfo, StoreError> {
    serde_json::from_slice(value).map_err(|e| StoreError::Corrupt(format!("node record: {e}")))
}
