//! A deployment's kept versions, and rolling back to one: the earlier
//! version's spec is deployed again as a new version, so the switch is the
//! same drain-then-stop as any deploy and the history only grows.

use cove_store::{DeploymentRow, PodRow};
use cove_types::{Deployment, DeploymentVersion};
use tracing::instrument;

use crate::specs::pod_spec;
use crate::{Lifecycle, LifecycleError};

impl Lifecycle {
    /// Every kept version of deployment `name`, oldest first.
    pub async fn deployment_versions(
        &self,
        name: &str,
    ) -> Result<Vec<DeploymentVersion>, LifecycleError> {
        let row = self.deployment_row(name).await?;
        let pods = self.version_pods(&row).await?;
        pods.iter()
            .enumerate()
            .map(|(i, pod)| {
                let spec = pod_spec(pod)?;
                Ok(DeploymentVersion {
                    version: i as i64 + 1,
                    stub_id: pod.id.clone(),
                    image: spec.image,
                    ports: spec.ports,
                    entrypoint: spec.entrypoint.unwrap_or_default(),
                    current: row.pod_id.as_deref() == Some(pod.id.as_str()),
                    created_at: pod.created_at,
                })
            })
            .collect()
    }

    /// Deploys version `version` of `name` again (default: the one before the
    /// current version) as its newest version.
    #[instrument(skip(self, progress))]
    pub async fn rollback_deployment(
        &self,
        name: &str,
        version: Option<i64>,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<Deployment, LifecycleError> {
        let row = self.deployment_row(name).await?;
        let pods = self.version_pods(&row).await?;
        let current = pods
            .iter()
            .position(|p| row.pod_id.as_deref() == Some(p.id.as_str()))
            .map(|i| i as i64 + 1);
        let target = match (version, current) {
            (Some(v), _) => v,
            (None, Some(c)) if c > 1 => c - 1,
            (None, _) => {
                return Err(LifecycleError::BadRequest(format!(
                    "deployment {name} has no version before its current one to roll back to"
                )))
            }
        };
        let index = target.checked_sub(1).and_then(|i| usize::try_from(i).ok());
        let Some(pod) = index.and_then(|i| pods.get(i)) else {
            return Err(LifecycleError::BadRequest(format!(
                "deployment {name} has no version {target}: its versions are 1 to {}",
                pods.len()
            )));
        };
        if Some(target) == current {
            return Err(LifecycleError::Conflict(format!(
                "version {target} is already deployment {name}'s current version"
            )));
        }
        let mut spec = pod_spec(pod)?;
        spec.name = Some(row.name.clone());
        progress(format!("Rolling back {name} to version {target}"));
        // In the deployment's own workspace, even if it was deleted meanwhile.
        self.deploy_spec_in(Some(&row.workspace), &spec, None, progress)
            .await
    }

    pub(crate) async fn deployment_row(&self, name: &str) -> Result<DeploymentRow, LifecycleError> {
        self.inner
            .store
            .get_deployment_by_name(name)
            .await?
            .ok_or_else(|| LifecycleError::DeploymentNotFound(name.to_string()))
    }

    async fn version_pods(&self, row: &DeploymentRow) -> Result<Vec<PodRow>, LifecycleError> {
        Ok(self
            .inner
            .store
            .deployment_versions(&row.id, row.pod_id.as_deref())
            .await?)
    }
}
