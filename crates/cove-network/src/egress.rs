//! Per-pod egress policies: what the lifecycle calls to put a pod's policy into the daemon's nftables table
//! (see `firewall.rs` for the rules).
//!
//! The policies of restricted pods are kept in memory, by pod id, and every change rewrites the table's egress
//! sets from that map in one `nft` transaction (serialized by an async lock, so two changes never apply out of
//! order). Open pods are not in the map and cost nothing.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use cove_types::EgressPolicy;
use tracing::{debug, instrument};

use crate::network::Slot;
use crate::{firewall, Network, NetworkError};

/// The restricted pods' policies.
#[derive(Default)]
pub(crate) struct EgressTable {
    pods: BTreeMap<String, (Ipv4Addr, EgressPolicy)>,
    /// Whether the kernel's sets have been written from `pods` since this process started. Until then (a
    /// restarted daemon re-adopting its pods) the sets still hold the previous run's policies, which must not
    /// be cut down to a half-restored map.
    synced: bool,
}

impl Network {
    /// Puts pod `id`'s egress policy in force, atomically replacing the one it had. The pod must be attached;
    /// call before its container starts, so it never runs with a wider egress than asked.
    #[instrument(skip(self, policy), fields(pod = %id))]
    pub async fn set_egress(&self, id: &str, policy: &EgressPolicy) -> Result<(), NetworkError> {
        let address = self.attached_address(id)?;
        let mut table = self.inner.egress.lock().await;
        let previous = table.pods.get(id).cloned();
        let unchanged = match &previous {
            None => policy.is_open(),
            Some((a, p)) => *a == address && p == policy,
        };
        if unchanged && (table.synced || policy.is_open()) {
            return Ok(());
        }
        if policy.is_open() {
            table.pods.remove(id);
        } else {
            table.pods.insert(id.to_string(), (address, policy.clone()));
        }
        if let Err(e) = self.write_egress(&table).await {
            match previous {
                Some(p) => table.pods.insert(id.to_string(), p),
                None => table.pods.remove(id),
            };
            return Err(e);
        }
        table.synced = true;
        debug!(%address, ?policy, "egress policy in force");
        Ok(())
    }

    /// After a daemon restart: records pod `id`'s policy (the pod must have been [`Network::restore`]d) without
    /// touching the kernel; [`Network::sync_egress`] then writes all of them at once.
    pub async fn restore_egress(
        &self,
        id: &str,
        policy: &EgressPolicy,
    ) -> Result<(), NetworkError> {
        let address = self.attached_address(id)?;
        let mut table = self.inner.egress.lock().await;
        if policy.is_open() {
            table.pods.remove(id);
        } else {
            table.pods.insert(id.to_string(), (address, policy.clone()));
        }
        Ok(())
    }

    /// Rewrites the egress sets from the recorded policies, dropping whatever else they held (pods that ended
    /// while the daemon was away).
    #[instrument(skip(self))]
    pub async fn sync_egress(&self) -> Result<(), NetworkError> {
        let mut table = self.inner.egress.lock().await;
        self.write_egress(&table).await?;
        table.synced = true;
        debug!(restricted = table.pods.len(), "egress sets synced");
        Ok(())
    }

    /// The egress policy pod `id` has in force (open if none was set).
    pub async fn egress_of(&self, id: &str) -> EgressPolicy {
        let table = self.inner.egress.lock().await;
        table
            .pods
            .get(id)
            .map(|(_, p)| p.clone())
            .unwrap_or_default()
    }

    /// Removes pod `id`'s policy (on detach). Idempotent. If `nft` fails, the policy is still forgotten: the
    /// next change or sync rewrites the sets without it (until then its address stays restricted, which errs on
    /// the safe side).
    pub(crate) async fn forget_egress(&self, id: &str) -> Result<(), NetworkError> {
        let mut table = self.inner.egress.lock().await;
        if table.pods.remove(id).is_none() || !table.synced {
            return Ok(());
        }
        self.write_egress(&table).await
    }

    async fn write_egress(&self, table: &EgressTable) -> Result<(), NetworkError> {
        firewall::apply_egress(
            &self.inner.names.table,
            table.pods.values().map(|(a, p)| (*a, p)),
        )
        .await
    }

    fn attached_address(&self, id: &str) -> Result<Ipv4Addr, NetworkError> {
        match self.state().pods.get(id) {
            Some(Slot::Attached(address)) => Ok(*address),
            _ => Err(NetworkError::NotAttached(id.to_string())),
        }
    }
}
