//! Workspaces: which workspace a container or deployment belongs to, lists filtered to
//! a caller's workspace, and guarding authorized pods' keys in the gateway.
//!
//! Something of another workspace is reported exactly like something that does not
//! exist (`ContainerNotFound` / `DeploymentNotFound`, a 404), so a token learns nothing
//! about other workspaces.

use cove_store::DeploymentRow;
use cove_types::{Container, Deployment, Scope, ValidPodSpec};

use crate::{Lifecycle, LifecycleError};

impl Lifecycle {
    /// Fails with `ContainerNotFound` unless container `id` exists and `scope` may use it.
    pub async fn check_container(&self, scope: &Scope, id: &str) -> Result<(), LifecycleError> {
        let not_found = || LifecycleError::ContainerNotFound(id.to_string());
        let row = self
            .inner
            .store
            .get_container(id)
            .await?
            .ok_or_else(not_found)?;
        let pod = self
            .inner
            .store
            .get_pod(&row.pod_id)
            .await?
            .ok_or_else(not_found)?;
        if scope.can_access(&pod.workspace) {
            Ok(())
        } else {
            Err(not_found())
        }
    }

    /// Fails with `DeploymentNotFound` unless deployment `name` exists and `scope` may use it.
    pub async fn check_deployment(&self, scope: &Scope, name: &str) -> Result<(), LifecycleError> {
        match self.inner.store.get_deployment_by_name(name).await? {
            Some(row) if scope.can_access(&row.workspace) => Ok(()),
            _ => Err(LifecycleError::DeploymentNotFound(name.to_string())),
        }
    }

    /// [`Lifecycle::list_containers`], only those `scope` may see.
    pub async fn list_containers_in(
        &self,
        scope: &Scope,
        all: bool,
    ) -> Result<Vec<Container>, LifecycleError> {
        let mut list = self.list_containers(all).await?;
        list.retain(|c| scope.can_access(&c.workspace));
        Ok(list)
    }

    /// [`Lifecycle::list_deployments`], only those `scope` may see.
    pub async fn list_deployments_in(
        &self,
        scope: &Scope,
    ) -> Result<Vec<Deployment>, LifecycleError> {
        let mut list = self.list_deployments().await?;
        list.retain(|d| scope.can_access(&d.workspace));
        Ok(list)
    }

    /// Guards a pod's own key in the gateway if its spec asks for it (a deployment's
    /// key is guarded by [`Lifecycle::guard_deployment`] instead).
    pub(crate) async fn guard_pod(&self, pod_id: &str, spec: &ValidPodSpec) {
        if !spec.authorized || self.placement(pod_id).deployment_id.is_some() {
            return;
        }
        match self.inner.store.get_pod(pod_id).await {
            Ok(Some(pod)) => self.inner.routes.access().guard(pod_id, &pod.workspace),
            // Fail closed: a workspace nobody's token has.
            other => {
                tracing::warn!(pod = %pod_id, ?other, "no pod row to guard; refusing all tokens");
                self.inner.routes.access().guard(pod_id, "")
            }
        }
    }

    /// Guards (or opens) a deployment's key as its current version's spec says.
    pub(crate) fn guard_deployment(&self, row: &DeploymentRow, spec: &ValidPodSpec) {
        let access = self.inner.routes.access();
        if spec.authorized {
            access.guard(&row.url_key, &row.workspace);
        } else {
            access.unguard(&row.url_key);
        }
    }

    /// Guards (or opens) a deployment's key as its current version's stored spec says
    /// (at start). An unreadable spec fails closed.
    pub(crate) async fn guard_deployment_current(&self, row: &DeploymentRow) {
        let pod = match row.pod_id.as_deref() {
            Some(id) => self.inner.store.get_pod(id).await.ok().flatten(),
            None => None,
        };
        let spec = pod.and_then(|p| crate::specs::pod_spec(&p).ok());
        match spec {
            Some(spec) => self.guard_deployment(row, &spec),
            None => {
                tracing::warn!(deployment = %row.name, "no readable current spec; guarding it");
                self.inner.routes.access().guard(&row.url_key, "");
            }
        }
    }
}
