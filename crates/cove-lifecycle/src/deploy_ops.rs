//! Reading, stopping, starting and deleting deployments, and how the API shows them.

use cove_store::{now_ms, DeploymentRow, PodRow};
use cove_types::{Deployment, DeploymentStatus};
use tracing::{instrument, warn};

use crate::{Lifecycle, LifecycleError};

impl Lifecycle {
    /// Every deployment, by name.
    pub async fn list_deployments(&self) -> Result<Vec<Deployment>, LifecycleError> {
        let rows = self.inner.store.list_deployments().await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.deployment_view(r).await?);
        }
        Ok(out)
    }

    /// One deployment by name.
    pub async fn deployment(&self, name: &str) -> Result<Deployment, LifecycleError> {
        let row = self.deployment_row(name).await?;
        self.deployment_view(&row).await
    }

    /// Stops the deployment's containers and keeps it stopped: requests get 503
    /// until [`Lifecycle::start_deployment`].
    #[instrument(skip(self))]
    pub async fn stop_deployment(&self, name: &str) -> Result<Deployment, LifecycleError> {
        let row = self.deployment_row(name).await?;
        let entry = self.remember(&row);
        let _op = entry.op.lock().await;
        self.inner
            .store
            .set_deployment_status(&row.id, DeploymentStatus::Stopped.as_str(), now_ms())
            .await?;
        self.stop_all_of(&row, "deployment stopped").await?;
        self.deployment(name).await
    }

    /// Makes a stopped deployment serve again, starting its current version.
    #[instrument(skip(self))]
    pub async fn start_deployment(&self, name: &str) -> Result<Deployment, LifecycleError> {
        let row = self.deployment_row(name).await?;
        let entry = self.remember(&row);
        let _op = entry.op.lock().await;
        self.inner
            .store
            .set_deployment_status(&row.id, DeploymentStatus::Active.as_str(), now_ms())
            .await?;
        if self.inner.routes.get(&row.url_key).is_none() {
            self.start_version(&row).await?;
        }
        self.deployment(name).await
    }

    /// Stops a deployment's containers and removes it; its URL then answers 404.
    /// Its versions' pods and containers stay listed as history.
    #[instrument(skip(self))]
    pub async fn delete_deployment(&self, name: &str) -> Result<(), LifecycleError> {
        let row = self.deployment_row(name).await?;
        let entry = self.remember(&row);
        let _op = entry.op.lock().await;
        // Unknown to the waker first, so no request wakes it while it stops.
        self.forget(&row.url_key);
        self.inner.routes.remove(&row.url_key);
        self.inner.routes.access().unguard(&row.url_key);
        self.stop_all_of(&row, "deployment deleted").await?;
        if let Some(pod_id) = &row.pod_id {
            self.set_placement(pod_id, None);
        }
        self.inner.store.delete_deployment(&row.id).await?;
        Ok(())
    }

    /// Stops every live container of a deployment, whatever its version.
    async fn stop_all_of(&self, row: &DeploymentRow, reason: &str) -> Result<(), LifecycleError> {
        let ids: Vec<String> = self
            .live()
            .iter()
            .filter(|(_, l)| l.deployment_id.as_deref() == Some(&row.id))
            .map(|(id, _)| id.clone())
            .collect();
        let stops = ids.iter().map(|id| self.stop(id, reason));
        let mut first_err = None;
        for (id, r) in ids.iter().zip(futures::future::join_all(stops).await) {
            if let Err(e) = r {
                warn!(container = %id, error = %e, "stopping a deployment's container failed");
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// The URL key containers of `pod` are served under: its deployment's, or its own id.
    pub(crate) async fn url_key_of(&self, pod: &PodRow) -> Result<String, LifecycleError> {
        if let Some(dep) = &pod.deployment_id {
            if let Some(row) = self.inner.store.get_deployment(dep).await? {
                return Ok(row.url_key);
            }
        }
        Ok(pod.id.clone())
    }

    pub(crate) async fn deployment_view(
        &self,
        row: &DeploymentRow,
    ) -> Result<Deployment, LifecycleError> {
        let (pod, spec) = self.current_version(row).await?;
        let pod_id = pod.id.clone();
        // The container the URL leads to, else any live one of the current version.
        let routed = self.inner.routes.get(&row.url_key);
        let live: Option<String> = {
            let live = self.live();
            let mut mine = live.iter().filter(|(_, l)| l.pod_id == pod_id);
            let all: Vec<_> = mine.by_ref().collect();
            all.iter()
                .find(|(_, l)| {
                    routed
                        .as_ref()
                        .is_some_and(|t| std::sync::Arc::ptr_eq(&t.activity, &l.activity))
                })
                .or(all.first())
                .map(|(id, _)| (*id).clone())
        };
        let container = match live {
            Some(id) => Some(self.container(&id).await?),
            None => None,
        };
        Ok(Deployment {
            id: row.id.clone(),
            name: row.name.clone(),
            url_key: row.url_key.clone(),
            version: row.version,
            status: DeploymentStatus::parse(&row.status).unwrap_or(DeploymentStatus::Stopped),
            stub_id: pod_id,
            container,
            urls: self.urls(&row.url_key, &spec.ports),
            created_at: row.created_at,
            updated_at: row.updated_at,
            workspace: row.workspace.clone(),
        })
    }
}
