//! After a daemon (re)start: re-adopt containers that kept running, record
//! the ones that ended meanwhile, and remove anything the state doesn't know.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use cove_types::{ContainerStatus, ValidPodSpec};
use tracing::{info, instrument, warn};

use crate::{Lifecycle, LifecycleError};

impl Lifecycle {
    /// Brings memory, the runtime, the network and the mounts in line with the store.
    #[instrument(skip(self))]
    pub async fn reconcile(&self) -> Result<(), LifecycleError> {
        self.load_deployments().await?;
        let rows = self.inner.store.live_containers().await?;
        self.kill_unadoptable_shims(&rows).await;
        let mut known: HashSet<String> = HashSet::new();
        for row in rows {
            known.insert(row.id.clone());
            let status = ContainerStatus::parse(&row.status);
            let alive = row
                .shim_pid
                .is_some_and(|pid| cove_runtime::shim_is_alive(pid, &row.id));
            let address = row
                .address
                .as_deref()
                .and_then(|a| a.parse::<Ipv4Addr>().ok());
            match (status, alive, row.shim_pid, address) {
                (
                    Some(ContainerStatus::Running | ContainerStatus::Stopping),
                    true,
                    Some(pid),
                    Some(addr),
                ) => {
                    let Some(pod) = self.inner.store.get_pod(&row.pod_id).await? else {
                        continue;
                    };
                    let spec: ValidPodSpec = match serde_json::from_str(&pod.spec_json) {
                        Ok(s) => s,
                        Err(e) => {
                            warn!(container = %row.id, error = %e, "unreadable spec; stopping it");
                            self.finish(&row.id, Err(format!("unreadable spec: {e}")))
                                .await;
                            continue;
                        }
                    };
                    match self.inner.network.restore(&row.id, addr).await {
                        // Its egress rules survived the restart in the kernel; this records
                        // them for the sync below.
                        Ok(()) => {
                            self.inner
                                .network
                                .restore_egress(&row.id, &spec.egress)
                                .await?
                        }
                        // Without its attachment the pod's address is in no egress set once
                        // `sync_egress` below rewrites them: left running, a restricted pod would
                        // get open egress. It ends here, through the single cleanup path.
                        Err(e) => {
                            warn!(container = %row.id, error = %e, "network lost; stopping it");
                            if let Err(e) = self
                                .inner
                                .runtime
                                .stop(&row.id, self.inner.cfg.stop_grace)
                                .await
                            {
                                warn!(container = %row.id, error = %e, "stopping it failed");
                            }
                            self.finish(
                                &row.id,
                                Err(format!(
                                    "its network could not be restored after a daemon restart ({e})"
                                )),
                            )
                            .await;
                            continue;
                        }
                    }
                    let idle_since = row
                        .last_active_at
                        .unwrap_or(0)
                        .max(row.started_at.unwrap_or(0));
                    let stale = self.stale_on_restart(&pod).await?;
                    self.adopt(&row.id, &row.pod_id, addr, &spec, idle_since, pid)
                        .await;
                    info!(container = %row.id, "re-adopted running container");
                    if status == Some(ContainerStatus::Stopping) || stale.is_some() {
                        let this = self.clone();
                        let id = row.id.clone();
                        tokio::spawn(async move {
                            let reason = stale.unwrap_or("stopped by user");
                            if let Err(e) = this.stop(&id, reason).await {
                                warn!(container = %id, error = %e, "finishing an interrupted stop failed");
                            }
                        });
                    }
                }
                _ => {
                    // Ended while the daemon was away, or never finished starting.
                    let exit = match cove_runtime::read_exit_file(&self.container_dir(&row.id)) {
                        Some(s) => Ok(s),
                        None if status == Some(ContainerStatus::Pending) => {
                            Err("the daemon stopped while creating it".to_string())
                        }
                        None => Err(
                            "it ended while the daemon was down and its exit status is unknown"
                                .to_string(),
                        ),
                    };
                    if alive {
                        // A pending container whose start raced the daemon's death.
                        let _ = self
                            .inner
                            .runtime
                            .stop(&row.id, self.inner.cfg.stop_grace)
                            .await;
                    }
                    self.finish(&row.id, exit).await;
                }
            }
        }
        self.remove_strays(&known).await;
        // The egress sets now hold exactly the re-adopted pods' policies.
        self.inner.network.sync_egress().await?;
        Ok(())
    }

    /// Kills the shims the dead daemon left that this one will not re-adopt (a start it was in
    /// the middle of), before anything looks at the runtime: left alone, such a shim starts its
    /// container after the stray containers were removed.
    async fn kill_unadoptable_shims(&self, rows: &[cove_store::ContainerRow]) {
        let adoptable: HashSet<i32> = rows
            .iter()
            .filter(|r| {
                matches!(
                    ContainerStatus::parse(&r.status),
                    Some(ContainerStatus::Running | ContainerStatus::Stopping)
                )
            })
            .filter_map(|r| r.shim_pid)
            .collect();
        let dir = self.inner.cfg.data_dir.join("containers");
        for shim in cove_runtime::shims_under(&dir) {
            if !adoptable.contains(&shim.pid) {
                warn!(container = %shim.id, pid = shim.pid, "killing a start the last daemon left unfinished");
                cove_runtime::kill_shim_group(shim.pid).await;
            }
        }
    }

    /// Removes runtime containers, network attachments and mounts that no
    /// live container owns.
    async fn remove_strays(&self, known: &HashSet<String>) {
        match self.inner.runtime.list().await {
            Ok(ids) => {
                for id in ids.into_iter().filter(|id| !known.contains(id)) {
                    warn!(container = %id, "removing a runtime container the state doesn't know");
                    let _ = self
                        .inner
                        .runtime
                        .stop(&id, std::time::Duration::from_secs(1))
                        .await;
                    self.release_resources(&id).await;
                }
            }
            Err(e) => warn!(error = %e, "cannot list runtime containers"),
        }
        for id in self.inner.network.list_attached().await {
            if !known.contains(&id) {
                warn!(container = %id, "removing a stray network attachment");
                let _ = self.inner.network.detach(&id).await;
            }
        }
        let dir = self.inner.cfg.data_dir.join("containers");
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                // `disk` alone: the daemon died between mounting a pod's disk and its rootfs.
                let mounted = ["rootfs", "disk"].iter().any(|d| e.path().join(d).exists());
                if !known.contains(&id) && mounted {
                    let path = e.path();
                    let _ = tokio::task::spawn_blocking(move || {
                        cove_image::ImageStore::unmount_rootfs(&path)
                    })
                    .await;
                }
                // A build interrupted by the restart: its output went nowhere.
                if crate::build_step::is_build_container(&id) && !known.contains(&id) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
}
