//! Changing a running pod's egress policy: put in force by the network's firewall, then persisted in the
//! pod's stored spec (so a daemon restart and a deployment's next container keep it). Creating applies the
//! spec's policy before the container starts (`create.rs`); the cleanup path removes it with the network
//! attachment (`finish.rs`); a restart re-applies it from the stored spec (`reconcile.rs`).

use cove_types::{
    Container, ContainerStatus, EgressPolicy, EgressRequest, SpecError, ValidPodSpec,
};
use tracing::{info, instrument, warn};

use crate::{Lifecycle, LifecycleError};

/// One change at a time: the kernel and the store are updated in the same order for every change.
static CHANGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Lifecycle {
    /// Sets the egress policy of running container `id` (and of any other live container of its pod)
    /// without restarting it; returns the container as it is now.
    #[instrument(skip(self, req))]
    pub async fn set_egress(
        &self,
        id: &str,
        req: &EgressRequest,
    ) -> Result<Container, LifecycleError> {
        let policy = EgressPolicy::from_request(req).map_err(SpecError::from)?;
        let _one_at_a_time = CHANGES.lock().await;
        let row = self
            .inner
            .store
            .get_container(id)
            .await?
            .ok_or_else(|| LifecycleError::ContainerNotFound(id.to_string()))?;
        if row.status != ContainerStatus::Running.as_str() || !self.live().contains_key(id) {
            return Err(LifecycleError::Conflict(format!(
                "container {id} is not running ({}): its egress cannot be changed",
                row.status
            )));
        }
        let pod = self.pod_of(&row).await?;
        let mut spec: ValidPodSpec = crate::specs::pod_spec(&pod)?;
        let previous = std::mem::replace(&mut spec.egress, policy.clone());
        let spec_json = serde_json::to_string(&spec)
            .map_err(|e| LifecycleError::Internal(format!("encoding spec: {e}")))?;

        let mut siblings: Vec<String> = self
            .live()
            .iter()
            .filter(|(cid, l)| l.pod_id == row.pod_id && cid.as_str() != id)
            .map(|(cid, _)| cid.clone())
            .collect();
        siblings.sort();
        let mut done: Vec<String> = Vec::new();
        for cid in std::iter::once(id.to_string()).chain(siblings) {
            if let Err(e) = self.inner.network.set_egress(&cid, &policy).await {
                if cid != id {
                    // A sibling that is ending (detached meanwhile) needs no policy.
                    warn!(container = %cid, error = %e, "egress not applied to a sibling container");
                    continue;
                }
                self.revert_egress(&done, &previous).await;
                return Err(match e {
                    // It ended between the check above and now.
                    cove_network::NetworkError::NotAttached(_) => LifecycleError::Conflict(
                        format!("container {id} is not running: its egress cannot be changed"),
                    ),
                    e => e.into(),
                });
            }
            done.push(cid);
        }
        match self.inner.store.set_pod_spec(&pod.id, &spec_json).await {
            Ok(true) => {}
            Ok(false) => {
                self.revert_egress(&done, &previous).await;
                return Err(LifecycleError::ContainerNotFound(id.to_string()));
            }
            Err(e) => {
                self.revert_egress(&done, &previous).await;
                return Err(e.into());
            }
        }
        let what = describe(&policy);
        info!(container = %id, egress = %what, "egress changed");
        self.container(id).await
    }

    /// Puts `previous` back on the containers a failed change already reached.
    async fn revert_egress(&self, ids: &[String], previous: &EgressPolicy) {
        for cid in ids {
            if let Err(e) = self.inner.network.set_egress(cid, previous).await {
                warn!(container = %cid, error = %e, "could not put the previous egress policy back");
            }
        }
    }
}

/// A short description for events and logs.
fn describe(p: &EgressPolicy) -> String {
    match p {
        EgressPolicy::Open => "egress open".to_string(),
        EgressPolicy::Blocked => "egress blocked".to_string(),
        EgressPolicy::AllowList(_) => format!("egress allowed to {}", p.allow_list().join(", ")),
    }
}
