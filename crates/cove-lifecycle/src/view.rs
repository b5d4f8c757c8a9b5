//! Containers as the API shows them, built from the store's rows.

use cove_store::{ContainerRow, PodRow};
use cove_types::{Container, ContainerStatus, PortUrl, ValidPodSpec};

use crate::{Lifecycle, LifecycleError};

impl Lifecycle {
    /// One container by id.
    pub async fn container(&self, id: &str) -> Result<Container, LifecycleError> {
        let row = self
            .inner
            .store
            .get_container(id)
            .await?
            .ok_or_else(|| LifecycleError::ContainerNotFound(id.to_string()))?;
        let pod = self.pod_of(&row).await?;
        self.view(row, &pod).await
    }

    /// The pod row of container `row` (every container has one).
    pub(crate) async fn pod_of(&self, row: &ContainerRow) -> Result<PodRow, LifecycleError> {
        self.inner
            .store
            .get_pod(&row.pod_id)
            .await?
            .ok_or_else(|| LifecycleError::Internal(format!("container {} has no pod row", row.id)))
    }

    /// Live containers, or every container with `all`; newest first.
    pub async fn list_containers(&self, all: bool) -> Result<Vec<Container>, LifecycleError> {
        let rows = if all {
            self.inner.store.list_containers().await?
        } else {
            self.inner.store.live_containers().await?
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            if let Some(pod) = self.inner.store.get_pod(&row.pod_id).await? {
                out.push(self.view(row, &pod).await?);
            }
        }
        out.sort_by(|a, b| b.scheduled_at.cmp(&a.scheduled_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The URL of each port of a pod.
    pub fn urls(&self, stub_id: &str, ports: &[u16]) -> Vec<PortUrl> {
        let cfg = &self.inner.cfg;
        let port_suffix = cfg.url_port.map(|p| format!(":{p}")).unwrap_or_default();
        ports
            .iter()
            .map(|&port| PortUrl {
                port,
                url: format!(
                    "{}://{stub_id}-{port}.{}{port_suffix}",
                    cfg.url_scheme, cfg.domain
                ),
            })
            .collect()
    }

    async fn view(&self, row: ContainerRow, pod: &PodRow) -> Result<Container, LifecycleError> {
        let spec: ValidPodSpec = crate::specs::pod_spec(pod)?;
        let status = ContainerStatus::parse(&row.status)
            .ok_or_else(|| LifecycleError::Internal(format!("unknown status {}", row.status)))?;
        Ok(Container {
            urls: self.urls(&self.url_key_of(pod).await?, &spec.ports),
            id: row.id,
            status,
            stub_id: pod.id.clone(),
            deployment_id: pod.deployment_id.clone(),
            name: pod.name.clone(),
            image: row.image,
            scheduled_at: row.scheduled_at,
            started_at: row.started_at,
            ended_at: row.ended_at,
            exit_code: row.exit_code,
            reason: row.reason,
            address: row.address,
            cpu_millis: spec.cpu_millis,
            memory_mib: spec.memory_mib,
            keep_warm_seconds: spec.keep_warm_seconds,
            isolation: spec.isolation.unwrap_or(self.inner.cfg.default_isolation),
            workspace: pod.workspace.clone(),
            authorized: spec.authorized,
            block_network: spec.egress.block_network(),
            allow_list: spec.egress.allow_list(),
        })
    }
}
