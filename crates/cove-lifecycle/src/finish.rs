//! How containers end: a stop request, their own exit, or an OOM kill. Every
//! ending goes through [`Lifecycle::finish`], the single cleanup path.

use cove_runtime::ExitStatus;
use cove_store::now_ms;
use cove_types::{Container, ContainerStatus};
use tokio::sync::watch;
use tracing::{info, instrument, warn};

use crate::{Lifecycle, LifecycleError};

impl Lifecycle {
    /// Stops a container: SIGTERM, SIGKILL after the grace period, then
    /// cleanup. Returns the ended container. Stopping an ended one is a no-op.
    #[instrument(skip(self))]
    pub async fn stop(&self, id: &str, reason: &str) -> Result<Container, LifecycleError> {
        let row = self
            .inner
            .store
            .get_container(id)
            .await?
            .ok_or_else(|| LifecycleError::ContainerNotFound(id.to_string()))?;
        let live = self.live().get(id).cloned();
        let Some(live) = live else {
            return self.container(&row.id).await;
        };
        if live.deployment_id.is_some() {
            // A deployment's next request must wake a fresh container, not reach this one.
            self.inner
                .routes
                .remove_if_current(&live.route_key, &live.activity);
        }
        if row.status != ContainerStatus::Stopping.as_str() {
            self.inner
                .store
                .set_status(id, ContainerStatus::Stopping.as_str(), Some(reason))
                .await?;
        }
        self.inner
            .runtime
            .stop(id, self.inner.cfg.stop_grace)
            .await?;
        let mut done = live.done.clone();
        let wait = self.inner.cfg.stop_grace + std::time::Duration::from_secs(10);
        if tokio::time::timeout(wait, done.wait_for(|d| *d))
            .await
            .is_err()
        {
            return Err(LifecycleError::Internal(format!(
                "container {id} did not end within {}s of being killed",
                wait.as_secs()
            )));
        }
        self.container(id).await
    }

    /// Waits (in the background) for the container's shim to exit, then finishes it.
    pub(crate) fn watch_exit(&self, id: String, shim_pid: i32, done: watch::Sender<bool>) {
        let this = self.clone();
        let dir = self.container_dir(&id);
        tokio::spawn(async move {
            let status = cove_runtime::wait_exit(shim_pid, &dir).await;
            this.finish(&id, status.map_err(|e| e.to_string())).await;
            let _ = done.send(true);
        });
    }

    /// Records how a container ended and removes everything it used except its logs.
    #[instrument(skip(self, status))]
    pub(crate) async fn finish(&self, id: &str, status: Result<ExitStatus, String>) {
        let row = match self.inner.store.get_container(id).await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                warn!(error = %e, "cannot read container row");
                return;
            }
        };
        let was_stopping = row.status == ContainerStatus::Stopping.as_str();
        let (final_status, code, reason) = match &status {
            Ok(s) if s.oom_killed => (
                ContainerStatus::OomKilled,
                Some(s.code),
                Some("killed: out of memory".to_string()),
            ),
            Ok(s) if was_stopping => (ContainerStatus::Stopped, Some(s.code), None),
            Ok(s) => (
                ContainerStatus::Exited,
                Some(s.code),
                Some(describe_exit(s)),
            ),
            Err(e) => (
                ContainerStatus::Failed,
                None,
                Some(format!("lost track of the container: {e}")),
            ),
        };
        let live = self.live().remove(id);
        if let Some(live) = &live {
            // Only if it still routes here: a deployment's key may lead to a newer container.
            self.inner
                .routes
                .remove_if_current(&live.route_key, &live.activity);
            if live.deployment_id.is_none() {
                self.inner.routes.access().unguard(&live.route_key);
            }
            if let Some(last) = live.activity.last_end_ms() {
                let _ = self.inner.store.set_last_active(id, last).await;
            }
        }
        self.release_resources(id).await;
        if let Err(e) = self
            .inner
            .store
            .set_finished(id, final_status.as_str(), code, reason.as_deref(), now_ms())
            .await
        {
            warn!(error = %e, "cannot record the end of a container");
        }
        info!(container = %id, status = final_status.as_str(), code = ?code, "container ended");
    }

    /// Removes a container's runtime state, network attachment (with its
    /// egress rules) and root filesystem mount. Idempotent; failures are
    /// logged, not returned, so that one stuck part does not keep the others.
    pub(crate) async fn release_resources(&self, id: &str) {
        if let Err(e) = self.inner.runtime.delete(id).await {
            warn!(container = %id, error = %e, "runtime delete failed");
        }
        // Detaching also removes the egress rules keyed by its address.
        if let Err(e) = self.inner.network.detach(id).await {
            warn!(container = %id, error = %e, "network detach failed");
        }
        let dir = self.container_dir(id);
        match tokio::task::spawn_blocking(move || cove_image::ImageStore::unmount_rootfs(&dir))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(container = %id, error = %e, "unmount failed"),
            Err(e) => warn!(container = %id, error = %e, "unmount task failed"),
        }
    }
}

fn describe_exit(s: &ExitStatus) -> String {
    match s.signal {
        Some(sig) => format!("killed by signal {sig}"),
        None => format!("exited with code {}", s.code),
    }
}
