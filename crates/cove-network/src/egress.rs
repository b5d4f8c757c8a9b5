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
    /// Whether the last write to the kernel's sets failed, so they may differ from `pods` (e.g. still restrict
    /// the address of a pod whose policy was forgotten on detach). While set, every change rewrites the sets,
    /// even one that leaves `pods` as it was.
    dirty: bool,
}

impl EgressTable {
    /// Whether putting `policy` in force for pod `id` at `address` needs the kernel's sets rewritten.
    fn needs_write(&self, id: &str, address: Ipv4Addr, policy: &EgressPolicy) -> bool {
        let unchanged = match self.pods.get(id) {
            None => policy.is_open(),
            Some((a, p)) => *a == address && p == policy,
        };
        // Before the first sync the kernel still holds the previous run's policies: an open pod is not in them
        // (its address was free or open then), a restricted one may be with an older policy.
        !unchanged || self.dirty || !(self.synced || policy.is_open())
    }

    /// Records the outcome of a write of the sets from `pods`.
    fn written<T, E>(&mut self, result: &Result<T, E>) {
        self.dirty = result.is_err();
        if result.is_ok() {
            self.synced = true;
        }
    }
}

impl Network {
    /// Puts pod `id`'s egress policy in force, atomically replacing the one it had. The pod must be attached;
    /// call before its container starts, so it never runs with a wider egress than asked.
    #[instrument(skip(self, policy), fields(pod = %id))]
    pub async fn set_egress(&self, id: &str, policy: &EgressPolicy) -> Result<(), NetworkError> {
        let address = self.attached_address(id)?;
        let mut table = self.inner.egress.lock().await;
        if !table.needs_write(id, address, policy) {
            return Ok(());
        }
        let previous = table.pods.get(id).cloned();
        if policy.is_open() {
            table.pods.remove(id);
        } else {
            table.pods.insert(id.to_string(), (address, policy.clone()));
        }
        let result = self.write_egress(&table).await;
        table.written(&result);
        if let Err(e) = result {
            match previous {
                Some(p) => table.pods.insert(id.to_string(), p),
                None => table.pods.remove(id),
            };
            return Err(e);
        }
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
        let result = self.write_egress(&table).await;
        table.written(&result);
        result?;
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

    /// Removes pod `id`'s policy (on detach). Idempotent. If `nft` fails, the policy is still forgotten and the
    /// sets are marked dirty: the next change or sync rewrites them without it, even a change that asks for an
    /// open pod (until then its address stays restricted, which errs on the safe side).
    pub(crate) async fn forget_egress(&self, id: &str) -> Result<(), NetworkError> {
        let mut table = self.inner.egress.lock().await;
        let removed = table.pods.remove(id).is_some();
        if !table.synced || !(removed || table.dirty) {
            return Ok(());
        }
        let result = self.write_egress(&table).await;
        table.written(&result);
        result
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

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 9, 0, last)
    }

    #[test]
    fn unchanged_policies_are_not_rewritten_once_synced() {
        let mut t = EgressTable::default();
        // Before the first sync, only a restricted policy is written.
        assert!(!t.needs_write("a", addr(2), &EgressPolicy::Open));
        assert!(t.needs_write("a", addr(2), &EgressPolicy::Blocked));
        t.pods.insert("a".into(), (addr(2), EgressPolicy::Blocked));
        assert!(t.needs_write("a", addr(2), &EgressPolicy::Blocked));
        t.written(&Ok::<(), ()>(()));
        assert!(!t.needs_write("a", addr(2), &EgressPolicy::Blocked));
        assert!(!t.needs_write("b", addr(3), &EgressPolicy::Open));
        assert!(t.needs_write("a", addr(2), &EgressPolicy::Open));
        assert!(t.needs_write("a", addr(4), &EgressPolicy::Blocked));
    }

    /// A failed write (here: removing a detached pod's policy) leaves its address restricted in the kernel; the
    /// next pod given that address and asking for open egress must rewrite the sets, not stay blocked.
    #[test]
    fn after_a_failed_write_every_change_rewrites_the_sets() {
        let mut t = EgressTable::default();
        t.pods.insert("a".into(), (addr(2), EgressPolicy::Blocked));
        t.written(&Ok::<(), ()>(()));
        t.pods.remove("a");
        t.written(&Err::<(), ()>(()));
        assert!(t.needs_write("b", addr(2), &EgressPolicy::Open));
        assert!(t.synced, "a failed write does not undo an earlier sync");
        t.written(&Ok::<(), ()>(()));
        assert!(!t.needs_write("b", addr(2), &EgressPolicy::Open));
    }
}
