//! Pods and containers: creating them from an image, watching them, stopping
//! them when asked or when idle, and finding them again after a daemon restart.
//!
//! The lifecycle is the one owner of container state. It drives the other
//! parts in one direction: `image` gives a root filesystem, `network` an
//! address, `runtime` a running process; the gateway's route table is updated
//! last, so a URL only answers for a container that is up.
//!
//! - [`create`]: validate, resolve the image, mount + attach + start, roll back on failure.
//! - [`finish`]: stop, exit watching, and the one cleanup path every ending takes.
//! - [`reconcile`]: re-adopt or clean up after a restart.
//! - [`keepwarm`]: the idle timer.
//! - `egress`: changing a running pod's egress policy (open, blocked, allow list).
//! - [`deploy`], `deploy_ops`, `deploy_wake`: deployments (named pods behind a stable URL,
//!   versioned, scaled to zero and woken by the gateway).
//! - [`build`], `build_step`: image builds (steps run in containers, committed as layers, cached).
//! - `sync_files`: synced files stored per file by digest, assembled into build contexts.
//! - `quota`: workspace limits, checked atomically as each container is recorded.
//! - `access`: workspaces (ownership checks, filtered lists) and authorized pods' guards.
//! - [`logs`], [`images`], [`view`]: reading logs, image operations, API views.

mod access;
mod build;
mod build_step;
mod create;
mod deploy;
mod deploy_ops;
mod deploy_versions;
mod deploy_wake;
mod egress;
mod error;
mod finish;
mod image_access;
mod images;
mod keepwarm;
mod logs;
mod quota;
mod reconcile;
mod specs;
mod sync_files;
mod view;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cove_gateway::{Activity, Routes, Target};
use cove_image::ImageStore;
use cove_network::Network;
use cove_runtime::Runtime;
use cove_store::StoreHandle;
use tokio::sync::watch;

pub use build::BuildSink;
pub use deploy::validate_deploy;
pub use error::LifecycleError;
pub use keepwarm::idle_deadline_passed;
pub use quota::{store_limits, QuotaConfig};

/// How the lifecycle is set up; fixed for the daemon's life.
#[derive(Debug, Clone)]
pub struct LifecycleConfig {
    pub data_dir: PathBuf,
    /// Pods' URLs are `<scheme>://<stub>-<port>.<domain><port suffix>`.
    pub domain: String,
    pub url_scheme: String,
    /// The gateway's port as it appears in URLs (`None` for the scheme default).
    pub url_port: Option<u16>,
    /// cgroup parent directory for this daemon's containers, e.g. `cove-1a2b3c4d`.
    pub cgroup_parent: String,
    /// Time between SIGTERM and SIGKILL when stopping.
    pub stop_grace: Duration,
    pub pids_limit: i64,
    /// Disk limit in MiB of pods that do not ask for one (`--default-disk`); `None`: unlimited.
    pub default_disk_mib: Option<u64>,
    /// A CA bundle on the host to mount into build containers (and point
    /// SSL_CERT_FILE, PIP_CERT, REQUESTS_CA_BUNDLE at); `None` = off.
    pub build_ca_bundle: Option<PathBuf>,
    /// The isolation of pods that do not ask for one (`--default-isolation`).
    pub default_isolation: cove_types::Isolation,
    /// Workspace limits' defaults and the admin's share of the address pool.
    pub quota: QuotaConfig,
    /// The log cap of containers whose pod sets none (`--log-max-size`, `--log-max-files`).
    pub default_log_limit: cove_types::LogLimit,
}

/// The daemon's pods and containers. Cheap to clone.
#[derive(Clone)]
pub struct Lifecycle {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: LifecycleConfig,
    store: StoreHandle,
    images: ImageStore,
    network: Network,
    runtime: Arc<dyn Runtime>,
    routes: Routes,
    /// Containers whose processes may exist, by container id.
    live: Mutex<HashMap<String, Live>>,
    deploys: deploy::Deploys,
}

/// What the lifecycle keeps in memory about a live container.
#[derive(Clone)]
struct Live {
    pod_id: String,
    keep_warm_seconds: i64,
    /// Start of the idle clock before any connection: the start time, or the
    /// last connection's end persisted before a restart.
    idle_since_ms: i64,
    activity: Arc<Activity>,
    /// Flips to true once the container has ended and been cleaned up.
    done: watch::Receiver<bool>,
    /// Its key in the gateway's route table: the pod id, or a deployment's url key.
    route_key: String,
    deployment_id: Option<String>,
    /// What the gateway routes to it.
    target: Target,
}

impl Lifecycle {
    pub fn new(
        cfg: LifecycleConfig,
        store: StoreHandle,
        images: ImageStore,
        network: Network,
        runtime: Arc<dyn Runtime>,
        routes: Routes,
    ) -> Lifecycle {
        let inner = Arc::new(Inner {
            cfg,
            store,
            images,
            network,
            runtime,
            routes: routes.clone(),
            live: Mutex::new(HashMap::new()),
            deploys: deploy::Deploys::default(),
        });
        routes.set_waker(deploy_wake::waker(&inner));
        Lifecycle { inner }
    }

    pub fn config(&self) -> &LifecycleConfig {
        &self.inner.cfg
    }

    pub fn store(&self) -> &StoreHandle {
        &self.inner.store
    }

    pub fn runtime_name(&self) -> &'static str {
        self.inner.runtime.name()
    }

    /// Number of containers whose processes may exist.
    pub fn live_count(&self) -> usize {
        self.live().len()
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        // Never held across an await; a poisoned map is still consistent.
        self.inner.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn container_dir(&self, id: &str) -> PathBuf {
        self.inner.cfg.data_dir.join("containers").join(id)
    }

    /// Removes the daemon's disk pool, and its network when no container is left (on
    /// shutdown).
    pub async fn shutdown(&self) {
        let images = self.inner.images.clone();
        let _ = tokio::task::spawn_blocking(move || images.stop_disk_pool()).await;
        if self.live_count() == 0 {
            if let Err(e) = self.inner.network.teardown().await {
                tracing::warn!(error = %e, "network teardown failed");
            }
            cove_runtime::remove_cgroup_parent(&self.inner.cfg.cgroup_parent);
        } else {
            tracing::info!(
                live = self.live_count(),
                "leaving containers running across the restart"
            );
        }
    }
}
