//! The validated spec stored with each pod (`pods.spec_json`), and a deployment's
//! current version: read in one place.

use cove_store::{DeploymentRow, PodRow};
use cove_types::ValidPodSpec;

use crate::{Lifecycle, LifecycleError};

/// The spec a pod was created with.
pub(crate) fn pod_spec(pod: &PodRow) -> Result<ValidPodSpec, LifecycleError> {
    serde_json::from_str(&pod.spec_json).map_err(|e| {
        LifecycleError::Internal(format!("pod {} has an unreadable spec: {e}", pod.id))
    })
}

impl Lifecycle {
    /// The pod row and spec of a deployment's current version.
    pub(crate) async fn current_version(
        &self,
        row: &DeploymentRow,
    ) -> Result<(PodRow, ValidPodSpec), LifecycleError> {
        let pod = self
            .inner
            .store
            .get_pod(row.pod_id.as_deref().unwrap_or_default())
            .await?
            .ok_or_else(|| {
                LifecycleError::Internal(format!("deployment {} has no current pod", row.name))
            })?;
        let spec = pod_spec(&pod)?;
        Ok((pod, spec))
    }
}
