//! A node's membership: joining (its records under its lease), staying (keep-alive, and
//! registering again under a new lease after losing one), leaving.
//!
//! A node that joins writes `nodes/<name>` under its lease and `node-info/<name>` without
//! one (see `nodes.rs` for how they are listed). The node learns of trouble before the
//! cluster does: see `lease.rs` for the self-fence.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::client::Etcd;
use super::keys;
use super::lease::{self, Times};
use super::nodes::{read_info, NodeInfo};
use crate::StoreError;

pub use super::lease::{BootInstant, Health};

/// Lease timings. Defaults: TTL 10 s, a renewal every 3 s, self-fence 2 s before the TTL.
#[derive(Debug, Clone, Copy)]
pub struct MembershipConfig {
    pub ttl: Duration,
    pub keepalive_interval: Duration,
    pub fence_margin: Duration,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        MembershipConfig::with_ttl(Duration::from_secs(10))
    }
}

impl MembershipConfig {
    /// A renewal every TTL/3 and a fence margin of TTL/5.
    pub fn with_ttl(ttl: Duration) -> MembershipConfig {
        MembershipConfig {
            ttl,
            keepalive_interval: ttl / 3,
            fence_margin: ttl / 5,
        }
    }

    fn times(&self) -> Result<Times, StoreError> {
        let secs = self.ttl.as_secs();
        if secs < 2 || self.ttl.subsec_nanos() != 0 {
            return Err(StoreError::Invalid(format!(
                "node lease TTL {:?} must be a whole number of seconds, at least 2",
                self.ttl
            )));
        }
        if self.fence_margin.is_zero() || self.keepalive_interval + self.fence_margin >= self.ttl {
            return Err(StoreError::Invalid(format!(
                "node lease keep-alive interval {:?} plus fence margin {:?} must be under the TTL {:?}, and the margin above zero",
                self.keepalive_interval, self.fence_margin, self.ttl
            )));
        }
        Ok(Times {
            ttl: self.ttl,
            interval: self.keepalive_interval,
            margin: self.fence_margin,
        })
    }
}

/// This node's place in the cluster, kept alive until dropped (as if the process died: the
/// lease expires on its own) or [`Membership::leave`] is called.
pub struct Membership {
    etcd: Etcd,
    name: String,
    health: Arc<watch::Sender<Health>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Membership {
    /// Registers the node. If the name is held by a live lease (the same node before a
    /// `kill -9`, whose lease has not expired yet), waits up to the TTL for it to go.
    pub async fn join(
        etcd: &Etcd,
        info: NodeInfo,
        config: MembershipConfig,
    ) -> Result<Membership, StoreError> {
        keys::check_name("node name", &info.name)?;
        let times = config.times()?;
        let give_up = tokio::time::Instant::now() + times.ttl + etcd.config().request_timeout;
        let (lease, fence_at) = loop {
            match register(etcd, &info, &times).await? {
                Some(held) => break held,
                None if tokio::time::Instant::now() >= give_up => {
                    return Err(StoreError::Invalid(format!(
                        "node name {} is held by another live node (its lease did not expire within {:?})",
                        info.name, times.ttl
                    )))
                }
                None => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        };
        let health = Arc::new(watch::Sender::new(Health::Live { lease, fence_at }));
        let keeper = tokio::spawn(keep_registered(
            etcd.clone(),
            info.clone(),
            times,
            lease,
            health.clone(),
        ));
        let fencer = tokio::spawn(lease::fence_when_due(health.clone()));
        Ok(Membership {
            etcd: etcd.clone(),
            name: info.name,
            health,
            tasks: vec![keeper, fencer],
        })
    }

    /// The node's health; the node agent stops its containers when it turns Fenced.
    pub fn health(&self) -> watch::Receiver<Health> {
        self.health.subscribe()
    }

    /// Leaves the cluster: revokes the lease and removes the node's records.
    pub async fn leave(self) -> Result<(), StoreError> {
        for task in &self.tasks {
            task.abort();
        }
        let (Health::Live { lease, .. } | Health::Fenced { lease }) = *self.health.borrow();
        // A lease that already expired is fine: revoking it is only faster.
        let _ = self
            .etcd
            .call(|mut c| async move { c.lease_revoke(lease).await })
            .await;
        let info = self.etcd.keys().node_info(&self.name);
        self.etcd
            .call(|mut c| {
                let info = info.clone();
                async move { c.delete(info, None).await }
            })
            .await?;
        Ok(())
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Keeps the lease alive; when it is gone, fences and registers again with a new lease.
async fn keep_registered(
    etcd: Etcd,
    info: NodeInfo,
    times: Times,
    mut lease: i64,
    health: Arc<watch::Sender<Health>>,
) {
    loop {
        lease::keep_alive(&etcd, lease, &times, &health).await;
        health.send_replace(Health::Fenced { lease });
        tracing::warn!(node = %info.name, lease, "node lease expired: registering again");
        loop {
            let current = read_info(&etcd, &info.name).await;
            // Keep a drain ordered while this node was away.
            let mut again = info.clone();
            if let Ok(Some(stored)) = current {
                again.draining = stored.draining;
            }
            match register(&etcd, &again, &times).await {
                Ok(Some((new_lease, fence_at))) => {
                    lease = new_lease;
                    health.send_replace(Health::Live { lease, fence_at });
                    break;
                }
                Ok(None) => tracing::warn!(node = %info.name, "node name held by another lease"),
                Err(e) => tracing::warn!(node = %info.name, error = %e, "cannot register node"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Grants a lease and writes the node's records under it, unless the name is held by a
/// live lease (then revokes the new lease and returns None).
async fn register(
    etcd: &Etcd,
    info: &NodeInfo,
    times: &Times,
) -> Result<Option<(i64, BootInstant)>, StoreError> {
    let (lease, fence_at) = lease::grant(etcd, times).await?;
    let value =
        serde_json::to_string(info).map_err(|e| StoreError::Corrupt(format!("node info: {e}")))?;
    let node = etcd.keys().node(&info.name);
    let node_info = etcd.keys().node_info(&info.name);
    let resp = etcd
        .call(|mut c| {
            let txn = Txn::new()
                .when([Compare::version(node.as_str(), CompareOp::Equal, 0)])
                .and_then([
                    TxnOp::put(
                        node.as_str(),
                        value.as_str(),
                        Some(PutOptions::new().with_lease(lease)),
                    ),
                    TxnOp::put(node_info.as_str(), value.as_str(), None),
                ]);
            async move { c.txn(txn).await }
        })
        .await?;
    // A retried txn whose first try landed fails the compare on its own key: check the lease.
    if resp.succeeded() || node_lease(etcd, &info.name).await? == Some(lease) {
        return Ok(Some((lease, fence_at)));
    }
    let _ = etcd
        .call(|mut c| async move { c.lease_revoke(lease).await })
        .await;
    Ok(None)
}

async fn node_lease(etcd: &Etcd, name: &str) -> Result<Option<i64>, StoreError> {
    let key = etcd.keys().node(name);
    let resp = etcd
        .call(|mut c| {
            let key = key.clone();
            async move { c.get(key, None).await }
        })
        .await?;
    Ok(resp.kvs().first().map(|kv| kv.lease()))
}
