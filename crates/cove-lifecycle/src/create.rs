//! Creating a pod: validate, resolve the image, then mount, attach and start
//! the container. Every step that made something is undone if a later one
//! fails, so a failed create leaves no container, mount, link or row.

use std::collections::BTreeMap;
use std::sync::Arc;

use cove_gateway::{Activity, Target};
use cove_image::Image;
use cove_runtime::ContainerConfig;
use cove_store::{now_ms, ContainerRow, PodRow};
use cove_types::{validate_pod_spec, Container, ContainerStatus, CreatePodRequest, ValidPodSpec};
use tokio::sync::watch;
use tracing::{info, instrument, warn};

use crate::{Lifecycle, LifecycleError, Live};

impl Lifecycle {
    /// Launches a pod in workspace `default`; see [`Lifecycle::create_pod_in`].
    pub async fn create_pod(
        &self,
        req: &CreatePodRequest,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<Container, LifecycleError> {
        self.create_pod_in(cove_types::DEFAULT_WORKSPACE, req, progress)
            .await
    }

    /// Launches a pod of `workspace` and its first container; returns once it is running.
    #[instrument(skip_all, fields(image = %req.image, %workspace))]
    pub async fn create_pod_in(
        &self,
        workspace: &str,
        req: &CreatePodRequest,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<Container, LifecycleError> {
        let mut spec = validate_pod_spec(req)?;
        // Stored with the pod, so its containers keep their runtime across daemon restarts.
        spec.isolation
            .get_or_insert(self.inner.cfg.default_isolation);
        // Before pulling anything; the check that counts is made with the insert below.
        let admission = self.precheck(workspace, &spec).await?;
        self.claim_image(workspace, &spec.image, req.registry_auth.as_ref(), progress)
            .await?;
        let (image, args) = self
            .image_and_args(&spec, req.registry_auth.as_ref(), progress)
            .await?;
        self.hold_image(workspace, &image.reference).await?;
        let pod_id = uuid::Uuid::new_v4().to_string();
        let id = format!(
            "pod-{pod_id}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let now = now_ms();
        let spec_json = serde_json::to_string(&spec)
            .map_err(|e| LifecycleError::Internal(format!("encoding spec: {e}")))?;
        let pod = PodRow {
            id: pod_id.clone(),
            name: spec.name.clone(),
            deployment_id: None,
            spec_json,
            created_at: now,
            workspace: workspace.to_string(),
        };
        let row = ContainerRow {
            id: id.clone(),
            pod_id: pod_id.clone(),
            status: ContainerStatus::Pending.as_str().to_string(),
            image: image.reference.clone(),
            address: None,
            shim_pid: None,
            exit_code: None,
            reason: None,
            scheduled_at: now,
            started_at: None,
            ended_at: None,
            last_active_at: None,
        };
        self.inner
            .store
            .insert_pod(&pod, &row, Some(&admission))
            .await?;
        progress("Creating container".to_string());
        match self.start_container(&id, &spec, &image, args).await {
            Ok(()) => {}
            Err(e) => {
                warn!(container = %id, error = %e, "create failed; rolling back");
                self.release_resources(&id).await;
                if let Err(se) = self.inner.store.delete_pod(&pod_id).await {
                    warn!(error = %se, "could not delete rows of a failed pod");
                }
                let _ = std::fs::remove_dir_all(self.container_dir(&id));
                return Err(e);
            }
        }
        self.container(&id).await
    }

    /// Mounts, attaches and starts container `id`, then routes to it.
    #[instrument(skip_all, fields(container = %id))]
    pub(crate) async fn start_container(
        &self,
        id: &str,
        spec: &ValidPodSpec,
        image: &Image,
        args: Vec<String>,
    ) -> Result<(), LifecycleError> {
        let dir = self.container_dir(id);
        let disk_mib = spec.disk_mib.or(self.inner.cfg.default_disk_mib);
        let (rootfs, attachment) = self.mount_and_attach(id, image, disk_mib).await?;
        // Before the container starts: it never runs with a wider egress than its spec allows.
        self.inner.network.set_egress(id, &spec.egress).await?;

        let cfg = ContainerConfig {
            id: id.to_string(),
            dir: dir.clone(),
            rootfs,
            args,
            env: merge_env(&image.config.env, &spec.env),
            cwd: spec
                .workdir
                .clone()
                .or_else(|| image.config.working_dir.clone().filter(|w| !w.is_empty()))
                .unwrap_or_else(|| "/".to_string()),
            user: image.config.user.clone().filter(|u| !u.is_empty()),
            hostname: id.chars().take(63).collect(),
            netns: Some(attachment.netns_path.clone()),
            cpu_millis: spec.cpu_millis,
            memory_mib: spec.memory_mib,
            pids_limit: self.inner.cfg.pids_limit,
            log_path: dir.join("container.log"),
            log_limit: spec.log_limit(self.inner.cfg.default_log_limit),
            cgroup_parent: self.inner.cfg.cgroup_parent.clone(),
            dns: cove_network::nameservers(),
            extra_mounts: Vec::new(),
            isolation: spec.isolation.unwrap_or(self.inner.cfg.default_isolation),
        };
        let t1 = std::time::Instant::now();
        let started = self
            .inner
            .runtime
            .start(&cfg)
            .await
            .map_err(user_or_runtime_error)?;
        tracing::debug!(runtime_start = ?t1.elapsed(), "runtime started the container");
        let now = now_ms();
        self.inner
            .store
            .set_running(id, &attachment.address.to_string(), started.shim_pid, now)
            .await?;
        let pod_id = self.pod_id_of(id).await?;
        info!(container = %id, address = %attachment.address, "container running");
        self.adopt(id, &pod_id, attachment.address, spec, now, started.shim_pid)
            .await;
        Ok(())
    }

    /// Makes `<container dir>/rootfs` (the image's overlay, its writable layer limited
    /// to `disk_mib` if given) and the network attachment of container `id`, at the same
    /// time. On error the caller undoes both with `release_resources`.
    pub(crate) async fn mount_and_attach(
        &self,
        id: &str,
        image: &Image,
        disk_mib: Option<u64>,
    ) -> Result<(std::path::PathBuf, cove_network::Attachment), LifecycleError> {
        let dir = self.container_dir(id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| LifecycleError::Io(format!("creating {}", dir.display()), e))?;
        // The root filesystem and the network namespace are independent:
        // make them at the same time.
        let images = self.inner.images.clone();
        let (img, mount_dir) = (image.clone(), dir.clone());
        let mount = tokio::task::spawn_blocking(move || {
            images.mount_rootfs_with_disk(&img, &mount_dir, disk_mib)
        });
        let attach = self.inner.network.attach(id);
        let t0 = std::time::Instant::now();
        let timed_mount = async {
            let r = mount.await;
            (r, t0.elapsed())
        };
        let timed_attach = async {
            let r = attach.await;
            (r, t0.elapsed())
        };
        let ((mounted, mount_time), (attached, attach_time)) =
            tokio::join!(timed_mount, timed_attach);
        tracing::debug!(?mount_time, ?attach_time, "rootfs and network ready");
        let rootfs = mounted.map_err(|e| LifecycleError::Internal(format!("mount task: {e}")))?;
        let attachment = attached?;
        let rootfs = rootfs?;
        Ok((rootfs, attachment))
    }

    /// Puts a running container under watch: route table, idle timer, exit watcher.
    pub(crate) async fn adopt(
        &self,
        id: &str,
        pod_id: &str,
        address: std::net::Ipv4Addr,
        spec: &ValidPodSpec,
        idle_since_ms: i64,
        shim_pid: i32,
    ) {
        let activity = Arc::new(Activity::new());
        let (done_tx, done_rx) = watch::channel(false);
        let target = Target {
            address,
            ports: spec.ports.clone(),
            activity: activity.clone(),
        };
        // A deployment's container is served under the deployment's key.
        let place = self.placement(pod_id);
        self.live().insert(
            id.to_string(),
            Live {
                pod_id: pod_id.to_string(),
                keep_warm_seconds: spec.keep_warm_seconds,
                idle_since_ms,
                activity,
                done: done_rx,
                route_key: place.route_key.clone(),
                deployment_id: place.deployment_id.clone(),
                target: target.clone(),
            },
        );
        // Guarded before it is routed: an authorized pod is never open, not even briefly.
        self.guard_pod(pod_id, spec).await;
        if place.route_now {
            self.inner.routes.insert(&place.route_key, target);
        }
        self.watch_exit(id.to_string(), shim_pid, done_tx);
    }

    pub(crate) async fn pod_id_of(&self, id: &str) -> Result<String, LifecycleError> {
        self.inner
            .store
            .get_container(id)
            .await?
            .map(|c| c.pod_id)
            .ok_or_else(|| LifecycleError::ContainerNotFound(id.to_string()))
    }
}

/// A start that failed because of what the user asked for (an entrypoint
/// or workdir the image lacks) is a bad request, not a daemon fault.
fn user_or_runtime_error(e: cove_runtime::RuntimeError) -> LifecycleError {
    if let cove_runtime::RuntimeError::Unavailable(_) = &e {
        return LifecycleError::BadRequest(e.to_string());
    }
    if let cove_runtime::RuntimeError::Start { message, .. } = &e {
        let m = message.to_ascii_lowercase();
        if m.contains("executable file not found")
            || m.contains("no such file or directory")
            || m.contains("permission denied")
            || m.contains("chdir to cwd")
        {
            return LifecycleError::BadRequest(format!("the container could not start: {message}"));
        }
    }
    LifecycleError::Runtime(e)
}

impl Lifecycle {
    /// The image a spec names (the local one, else pulled) and the command its
    /// container runs. One lookup: a cached image is reported as such.
    pub(crate) async fn image_and_args(
        &self,
        spec: &ValidPodSpec,
        auth: Option<&cove_types::RegistryAuth>,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(Image, Vec<String>), LifecycleError> {
        let image = match self.inner.images.get(&spec.image).await? {
            Some(image) => {
                progress("Using cached image".to_string());
                image
            }
            None => self.inner.images.pull(&spec.image, auth, progress).await?,
        };
        let args = resolve_args(spec, &image)?;
        Ok((image, args))
    }
}

/// The command a container runs: the pod's entrypoint, else the image's
/// entrypoint + cmd.
fn resolve_args(spec: &ValidPodSpec, image: &Image) -> Result<Vec<String>, LifecycleError> {
    let args = match &spec.entrypoint {
        Some(ep) => ep.clone(),
        None => {
            let mut a = image.config.entrypoint.clone();
            a.extend(image.config.cmd.iter().cloned());
            a
        }
    };
    if args.is_empty() || args[0].is_empty() {
        return Err(LifecycleError::BadRequest(format!(
            "image {} has no entrypoint or cmd: give an entrypoint",
            image.reference
        )));
    }
    Ok(args)
}

/// The image's environment overridden by the pod's, with a default PATH.
fn merge_env(image_env: &[String], pod_env: &BTreeMap<String, String>) -> Vec<String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let set = |k: &str, v: &str, out: &mut Vec<(String, String)>| match out
        .iter_mut()
        .find(|(ek, _)| ek == k)
    {
        Some(e) => e.1 = v.to_string(),
        None => out.push((k.to_string(), v.to_string())),
    };
    for kv in image_env {
        if let Some((k, v)) = kv.split_once('=') {
            set(k, v, &mut out);
        }
    }
    for (k, v) in pod_env {
        set(k, v, &mut out);
    }
    if !out.iter().any(|(k, _)| k == "PATH") {
        out.insert(
            0,
            (
                "PATH".into(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ),
        );
    }
    out.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_merge_overrides_and_defaults_path() {
        let mut pod = BTreeMap::new();
        pod.insert("A".to_string(), "pod".to_string());
        let env = merge_env(&["A=img".into(), "B=img".into()], &pod);
        assert_eq!(
            env[0],
            format!("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        );
        assert!(env.contains(&"A=pod".to_string()));
        assert!(env.contains(&"B=img".to_string()));
        let env = merge_env(&["PATH=/x".into()], &BTreeMap::new());
        assert_eq!(env, vec!["PATH=/x".to_string()]);
    }
}
