//! Waking a deployment scaled to zero: the gateway holds a request for a key
//! without a route and asks here; one container starts however many requests
//! wait, and each of them is then proxied to it.

use std::sync::{Arc, Weak};

use cove_gateway::{Target, Wake, WakeError};
use cove_store::{now_ms, DeploymentRow};
use cove_types::{ContainerStatus, DeploymentStatus, ValidPodSpec};
use futures::future::BoxFuture;
use tracing::{info, instrument, warn};

use crate::deploy::new_container_row;
use crate::{Inner, Lifecycle, LifecycleError};

/// The gateway's waker. Weak, so the route table (owned by the lifecycle) does
/// not keep the lifecycle alive.
struct Waker(Weak<Inner>);

pub(crate) fn waker(inner: &Arc<Inner>) -> Arc<dyn Wake> {
    Arc::new(Waker(Arc::downgrade(inner)))
}

impl Wake for Waker {
    fn wake<'a>(&'a self, key: &'a str, port: u16) -> BoxFuture<'a, Result<Target, WakeError>> {
        Box::pin(async move {
            let Some(inner) = self.0.upgrade() else {
                return Err(WakeError::NotFound);
            };
            let lifecycle = Lifecycle { inner };
            // Known deployments only; anything else is a plain 404 without a task.
            if lifecycle.entry_by_key(key).is_none() {
                return Err(WakeError::NotFound);
            }
            // Its own task: a client hanging up must not cancel a start halfway.
            let key = key.to_string();
            match tokio::spawn(async move { lifecycle.wake_key(&key, port).await }).await {
                Ok(r) => r,
                Err(e) => Err(WakeError::Failed(format!("wake task: {e}"))),
            }
        })
    }
}

impl Lifecycle {
    /// The target serving deployment `key` on `port`, starting a container if it has none.
    #[instrument(skip(self))]
    async fn wake_key(&self, key: &str, port: u16) -> Result<Target, WakeError> {
        let entry = self.entry_by_key(key).ok_or(WakeError::NotFound)?;
        let _op = entry.op.lock().await;
        // Whoever held the lock before may have woken it already.
        if let Some(t) = self.inner.routes.get(key) {
            return Ok(t);
        }
        let failed = wake_error;
        let row = self
            .inner
            .store
            .get_deployment(&entry.id)
            .await
            .map_err(|e| failed(e.into()))?
            .ok_or(WakeError::NotFound)?;
        if row.status != DeploymentStatus::Active.as_str() {
            return Err(WakeError::Unavailable(format!(
                "deployment {} is stopped",
                entry.name
            )));
        }
        let spec = self.version_spec(&row).await.map_err(failed)?;
        if !spec.ports.contains(&port) {
            return Err(WakeError::NotFound);
        }
        info!(deployment = %entry.name, "waking");
        self.start_version(&row).await.map_err(wake_error)?;
        self.inner
            .routes
            .get(key)
            .ok_or_else(|| WakeError::Failed(format!("deployment {} ended as it woke", entry.name)))
    }

    async fn version_spec(&self, row: &DeploymentRow) -> Result<ValidPodSpec, LifecycleError> {
        Ok(self.current_version(row).await?.1)
    }

    /// Starts a new container of the deployment's current version, routed under its key.
    /// The caller holds the deployment's `op` lock.
    pub(crate) async fn start_version(&self, row: &DeploymentRow) -> Result<(), LifecycleError> {
        let spec = self.version_spec(row).await?;
        let pod_id = row.pod_id.clone().unwrap_or_default();
        let (image, args) = self.image_and_args(&spec, None, &|_| {}).await?;
        let ctr = new_container_row(&pod_id, &image.reference, now_ms());
        let admission = self.admission(&row.workspace, &spec).await?;
        self.inner
            .store
            .insert_container(&ctr, Some(&admission))
            .await?;
        self.set_placement(&pod_id, Some(crate::deploy::placement_of(row)));
        if let Err(e) = self.start_container(&ctr.id, &spec, &image, args).await {
            warn!(container = %ctr.id, error = %e, "deployment start failed");
            self.release_resources(&ctr.id).await;
            let _ = self
                .inner
                .store
                .set_finished(
                    &ctr.id,
                    ContainerStatus::Failed.as_str(),
                    None,
                    Some(&format!("could not start: {e}")),
                    now_ms(),
                )
                .await;
            return Err(e);
        }
        Ok(())
    }
}

/// What the gateway answers for a wake that failed: 429 for a workspace at a limit, 503 for
/// no address left, else 502.
fn wake_error(e: LifecycleError) -> WakeError {
    match &e {
        LifecycleError::Refused(cove_store::Refusal::Limit { .. }) => {
            WakeError::Limited(e.to_string())
        }
        LifecycleError::Refused(cove_store::Refusal::Pool { .. })
        | LifecycleError::Network(cove_network::NetworkError::AddressesExhausted { .. }) => {
            WakeError::Unavailable(e.to_string())
        }
        _ => WakeError::Failed(e.to_string()),
    }
}
