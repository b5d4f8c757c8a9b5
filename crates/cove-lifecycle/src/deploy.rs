//! Deployments: a named pod served under a stable key (`<name>-<8 hex>`) that
//! survives restarts and new versions.
//!
//! Each version is a pod row with `deployment_id` set; each start or wake of it
//! is a new container. A deployment's containers are routed under its key
//! instead of their pod id (see [`Lifecycle::placement`]). A new version is
//! started next to the old one, the route switches once its port accepts, and
//! the old container is stopped only when its requests in flight have ended.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cove_image::Image;
use cove_store::{now_ms, ContainerRow, DeploymentRow, PodRow};
use cove_types::{
    validate_pod_spec, ContainerStatus, CreatePodRequest, Deployment, DeploymentStatus,
    ValidPodSpec, MAX_DEPLOYMENT_NAME_LEN,
};
use tracing::{info, instrument, warn};

use crate::{Lifecycle, LifecycleError};

/// How long a replaced container may finish its requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a new version may take to accept on its port before the route switches anyway.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The lifecycle's in-memory view of deployments.
#[derive(Default)]
pub(crate) struct Deploys {
    /// By url key: what the waker looks up on every request without a route.
    by_key: Mutex<HashMap<String, Arc<Entry>>>,
    /// Where each deployment pod's containers are routed, by pod id.
    pods: Mutex<HashMap<String, Placement>>,
    /// Serialises deploys, so a name is created once and versions are numbered in order.
    deploy: tokio::sync::Mutex<()>,
}

/// One deployment in memory.
pub(crate) struct Entry {
    pub(crate) id: String,
    pub(crate) name: String,
    /// Held by every change to the deployment (new version, stop, start, delete, wake), so
    /// concurrent wakes start one container.
    pub(crate) op: tokio::sync::Mutex<()>,
}

/// Where a pod's containers go in the route table.
#[derive(Clone, Debug)]
pub(crate) struct Placement {
    pub(crate) route_key: String,
    pub(crate) deployment_id: Option<String>,
    /// False while a new version warms up: the route switches once its port accepts.
    pub(crate) route_now: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Never held across an await; a poisoned map is still consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Lifecycle {
    /// Where containers of `pod_id` are routed: under the pod id, unless the pod
    /// is a deployment's version.
    pub(crate) fn placement(&self, pod_id: &str) -> Placement {
        lock(&self.inner.deploys.pods)
            .get(pod_id)
            .cloned()
            .unwrap_or_else(|| Placement {
                route_key: pod_id.to_string(),
                deployment_id: None,
                route_now: true,
            })
    }

    pub(crate) fn set_placement(&self, pod_id: &str, place: Option<Placement>) {
        let mut pods = lock(&self.inner.deploys.pods);
        match place {
            Some(p) => pods.insert(pod_id.to_string(), p),
            None => pods.remove(pod_id),
        };
    }

    pub(crate) fn entry_by_key(&self, key: &str) -> Option<Arc<Entry>> {
        lock(&self.inner.deploys.by_key).get(key).cloned()
    }

    pub(crate) fn remember(&self, row: &DeploymentRow) -> Arc<Entry> {
        let mut map = lock(&self.inner.deploys.by_key);
        map.entry(row.url_key.clone())
            .or_insert_with(|| {
                Arc::new(Entry {
                    id: row.id.clone(),
                    name: row.name.clone(),
                    op: tokio::sync::Mutex::new(()),
                })
            })
            .clone()
    }

    pub(crate) fn forget(&self, url_key: &str) {
        lock(&self.inner.deploys.by_key).remove(url_key);
    }

    /// Loads deployments into memory (at start, before containers are re-adopted).
    pub(crate) async fn load_deployments(&self) -> Result<(), LifecycleError> {
        for row in self.inner.store.list_deployments().await? {
            self.remember(&row);
            if let Some(pod_id) = &row.pod_id {
                self.set_placement(pod_id, Some(placement_of(&row)));
            }
            self.guard_deployment_current(&row).await;
        }
        Ok(())
    }

    /// Before a container of `pod` is re-adopted after a restart: `Some(reason)`
    /// if it must be stopped instead of served (a replaced version, or a
    /// deployment deleted or stopped while its stop was interrupted).
    pub(crate) async fn stale_on_restart(
        &self,
        pod: &PodRow,
    ) -> Result<Option<&'static str>, LifecycleError> {
        let Some(dep_id) = &pod.deployment_id else {
            return Ok(None);
        };
        let reason = match self.inner.store.get_deployment(dep_id).await? {
            None => "deployment deleted",
            Some(row) if row.pod_id.as_deref() != Some(pod.id.as_str()) => {
                "replaced by a newer version"
            }
            Some(row) if row.status != DeploymentStatus::Active.as_str() => "deployment stopped",
            Some(_) => return Ok(None),
        };
        self.set_placement(
            &pod.id,
            Some(Placement {
                route_key: pod.id.clone(),
                deployment_id: Some(dep_id.clone()),
                route_now: false,
            }),
        );
        Ok(Some(reason))
    }

    /// Creates deployment `req.name`, or deploys a new version of it. Returns once
    /// the version's container runs and the deployment's URL leads to it.
    #[instrument(skip_all, fields(name = ?req.name, image = %req.image))]
    pub async fn deploy(
        &self,
        req: &CreatePodRequest,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<Deployment, LifecycleError> {
        let spec = validate_deploy(req)?;
        self.deploy_spec(&spec, req.registry_auth.as_ref(), progress)
            .await
    }

    /// [`Lifecycle::deploy`] for a caller of `workspace`: a new deployment goes into it; a
    /// name another workspace has is refused.
    #[instrument(skip_all, fields(name = ?req.name, image = %req.image, %workspace))]
    pub async fn deploy_in(
        &self,
        workspace: &str,
        req: &CreatePodRequest,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<Deployment, LifecycleError> {
        let spec = validate_deploy(req)?;
        // Before pulling anything (a new version is checked again in its own workspace).
        self.precheck(workspace, &spec).await?;
        let auth = req.registry_auth.as_ref();
        self.claim_image(workspace, &spec.image, auth, progress)
            .await?;
        let deployment = self
            .deploy_spec_in(Some(workspace), &spec, auth, progress)
            .await?;
        self.hold_image(workspace, &spec.image).await?;
        Ok(deployment)
    }

    /// Deploys a validated spec (whose name is set): a new deployment or its next version.
    pub(crate) async fn deploy_spec(
        &self,
        spec: &ValidPodSpec,
        auth: Option<&cove_types::RegistryAuth>,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<Deployment, LifecycleError> {
        self.deploy_spec_in(None, spec, auth, progress).await
    }

    /// [`Lifecycle::deploy_spec`] for a caller of `workspace` (`None`: the existing
    /// deployment's, or `default` for a new one).
    pub(crate) async fn deploy_spec_in(
        &self,
        workspace: Option<&str>,
        spec: &ValidPodSpec,
        auth: Option<&cove_types::RegistryAuth>,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<Deployment, LifecycleError> {
        let name = spec.name.clone().unwrap_or_default();
        let (image, args) = self.image_and_args(spec, auth, progress).await?;
        let _deploying = self.inner.deploys.deploy.lock().await;
        match self.inner.store.get_deployment_by_name(&name).await? {
            // Names make URLs, so they are unique across workspaces.
            Some(row) if workspace.is_some_and(|ws| ws != row.workspace) => {
                Err(LifecycleError::Conflict(format!(
                    "deployment name {name} is taken: choose another"
                )))
            }
            None => {
                let ws = workspace.unwrap_or(cove_types::DEFAULT_WORKSPACE);
                self.create_deployment(ws, &name, spec, &image, args, progress)
                    .await
            }
            Some(row) => self.new_version(row, spec, &image, args, progress).await,
        }
    }

    async fn create_deployment(
        &self,
        workspace: &str,
        name: &str,
        spec: &ValidPodSpec,
        image: &Image,
        args: Vec<String>,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<Deployment, LifecycleError> {
        let now = now_ms();
        let pod_id = uuid::Uuid::new_v4().to_string();
        let row = DeploymentRow {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            url_key: format!("{name}-{}", short_hex()),
            version: 1,
            pod_id: Some(pod_id.clone()),
            status: DeploymentStatus::Active.as_str().to_string(),
            created_at: now,
            updated_at: now,
            workspace: workspace.to_string(),
        };
        let (pod, ctr) = version_rows(&row, &pod_id, spec, image, now)?;
        let admission = self.admission(workspace, spec).await?;
        self.inner
            .store
            .insert_deployment(&row, &pod, &ctr, Some(&admission))
            .await?;
        let entry = self.remember(&row);
        let _op = entry.op.lock().await;
        self.set_placement(&pod_id, Some(placement_of(&row)));
        self.guard_deployment(&row, spec);
        progress(format!("Deploying {name} (version 1)"));
        progress("Creating container".to_string());
        if let Err(e) = self.start_container(&ctr.id, spec, image, args).await {
            warn!(deployment = %name, error = %e, "deploy failed; rolling back");
            self.undo_version(&ctr.id, &pod_id).await;
            self.forget(&row.url_key);
            self.inner.routes.access().unguard(&row.url_key);
            if let Err(se) = self.inner.store.delete_deployment(&row.id).await {
                warn!(error = %se, "could not delete the row of a failed deployment");
            }
            return Err(e);
        }
        info!(deployment = %name, key = %row.url_key, "deployment created");
        self.deployment_view(&row).await
    }

    async fn new_version(
        &self,
        row: DeploymentRow,
        spec: &ValidPodSpec,
        image: &Image,
        args: Vec<String>,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<Deployment, LifecycleError> {
        let entry = self.remember(&row);
        let _op = entry.op.lock().await;
        // It may have been deleted while this waited for the lock.
        let Some(row) = self.inner.store.get_deployment(&row.id).await? else {
            self.forget(&row.url_key);
            return Err(LifecycleError::Conflict(format!(
                "deployment {} was deleted meanwhile: deploy again",
                row.name
            )));
        };
        let version = row.version + 1;
        let now = now_ms();
        let pod_id = uuid::Uuid::new_v4().to_string();
        let (pod, ctr) = version_rows(&row, &pod_id, spec, image, now)?;
        let admission = self.admission(&row.workspace, spec).await?;
        self.inner
            .store
            .insert_pod(&pod, &ctr, Some(&admission))
            .await?;
        let place = Placement {
            route_now: false,
            ..placement_of(&row)
        };
        self.set_placement(&pod_id, Some(place));
        progress(format!("Deploying {} (version {version})", row.name));
        progress("Creating container".to_string());
        if let Err(e) = self.start_container(&ctr.id, spec, image, args).await {
            warn!(deployment = %row.name, error = %e, "new version failed; keeping the old one");
            self.undo_version(&ctr.id, &pod_id).await;
            return Err(e);
        }
        let Some(new) = self.live().get(&ctr.id).cloned() else {
            return Err(LifecycleError::Internal(format!(
                "container {} of version {version} ended as it started",
                ctr.id
            )));
        };
        let old: Vec<(String, crate::Live)> = self
            .live()
            .iter()
            .filter(|(id, l)| l.deployment_id.as_deref() == Some(&row.id) && **id != ctr.id)
            .map(|(id, l)| (id.clone(), l.clone()))
            .collect();
        wait_accepting(&new.target, &new.done, READY_TIMEOUT).await;
        // Switch: from here on requests go to the new version.
        self.set_placement(&pod_id, Some(placement_of(&row)));
        self.guard_deployment(&row, spec);
        self.inner.routes.insert(&row.url_key, new.target.clone());
        let at = now_ms();
        self.inner
            .store
            .set_deployment_version(&row.id, version, &pod_id, at)
            .await?;
        self.inner
            .store
            .set_deployment_status(&row.id, DeploymentStatus::Active.as_str(), at)
            .await?;
        if let Some(prev) = &row.pod_id {
            self.set_placement(prev, None);
        }
        for (id, live) in old {
            self.drain_and_stop(id, live, format!("replaced by version {version}"));
        }
        info!(deployment = %row.name, version, "new version serving");
        let row = self
            .inner
            .store
            .get_deployment(&row.id)
            .await?
            .ok_or_else(|| LifecycleError::DeploymentNotFound(row.name.clone()))?;
        self.deployment_view(&row).await
    }

    /// Stops a replaced container once its requests in flight have ended (or
    /// after [`DRAIN_TIMEOUT`]), in the background.
    fn drain_and_stop(&self, id: String, live: crate::Live, reason: String) {
        let this = self.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
            while live.activity.active() > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if let Err(e) = this.stop(&id, &reason).await {
                warn!(container = %id, error = %e, "stopping a replaced container failed");
            }
        });
    }

    /// Undoes a version whose container did not start: no container, pod row or placement left.
    async fn undo_version(&self, ctr_id: &str, pod_id: &str) {
        self.release_resources(ctr_id).await;
        self.set_placement(pod_id, None);
        if let Err(se) = self.inner.store.delete_pod(pod_id).await {
            warn!(error = %se, "could not delete the rows of a failed version");
        }
        let _ = std::fs::remove_dir_all(self.container_dir(ctr_id));
    }
}

/// The request's spec, with the rules a deployment adds: a name, short enough for its URL.
pub fn validate_deploy(req: &CreatePodRequest) -> Result<ValidPodSpec, LifecycleError> {
    let name = req.name.as_deref().map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Err(LifecycleError::BadRequest(
            "a deployment needs a name".to_string(),
        ));
    }
    let spec = validate_pod_spec(req)?;
    if name.len() > MAX_DEPLOYMENT_NAME_LEN || name.ends_with('-') {
        return Err(LifecycleError::BadRequest(format!(
            "deployment name {name:?} is invalid: use 1-{MAX_DEPLOYMENT_NAME_LEN} lowercase \
             letters, digits and '-', not ending in '-'"
        )));
    }
    Ok(spec)
}

pub(crate) fn placement_of(row: &DeploymentRow) -> Placement {
    Placement {
        route_key: row.url_key.clone(),
        deployment_id: Some(row.id.clone()),
        route_now: true,
    }
}

/// The pod row of a new version and its first container's row.
fn version_rows(
    dep: &DeploymentRow,
    pod_id: &str,
    spec: &ValidPodSpec,
    image: &Image,
    now: i64,
) -> Result<(PodRow, ContainerRow), LifecycleError> {
    let spec_json = serde_json::to_string(spec)
        .map_err(|e| LifecycleError::Internal(format!("encoding spec: {e}")))?;
    let pod = PodRow {
        id: pod_id.to_string(),
        name: Some(dep.name.clone()),
        deployment_id: Some(dep.id.clone()),
        spec_json,
        created_at: now,
        workspace: dep.workspace.clone(),
    };
    Ok((pod, new_container_row(pod_id, &image.reference, now)))
}

/// A PENDING container row for another run of `pod_id`.
pub(crate) fn new_container_row(pod_id: &str, image: &str, now: i64) -> ContainerRow {
    ContainerRow {
        id: format!("pod-{pod_id}-{}", short_hex()),
        pod_id: pod_id.to_string(),
        status: ContainerStatus::Pending.as_str().to_string(),
        image: image.to_string(),
        address: None,
        shim_pid: None,
        exit_code: None,
        reason: None,
        scheduled_at: now,
        started_at: None,
        ended_at: None,
        last_active_at: None,
    }
}

fn short_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// Waits until the target's first port accepts a connection, the container ends, or `limit`.
async fn wait_accepting(
    target: &cove_gateway::Target,
    done: &tokio::sync::watch::Receiver<bool>,
    limit: Duration,
) {
    let Some(&port) = target.ports.first() else {
        return;
    };
    let addr = std::net::SocketAddr::from((target.address, port));
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline && !*done.borrow() {
        let attempt = tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect(addr),
        );
        if let Ok(Ok(_)) = attempt.await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    warn!(%addr, "new version not accepting yet; switching anyway");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(name: Option<&str>) -> CreatePodRequest {
        CreatePodRequest {
            image: "busybox".into(),
            name: name.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn deploy_names() {
        let err = |n: Option<&str>| validate_deploy(&req(n)).unwrap_err().to_string();
        assert_eq!(err(None), "a deployment needs a name");
        assert_eq!(err(Some(" ")), "a deployment needs a name");
        assert!(err(Some(&"a".repeat(48))).contains("invalid"));
        assert!(err(Some("app-")).contains("invalid"));
        assert!(err(Some("My_App")).contains("invalid"));
        assert!(validate_deploy(&req(Some(&"a".repeat(47)))).is_ok());
    }
}
