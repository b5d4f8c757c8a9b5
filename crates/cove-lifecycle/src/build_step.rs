//! Running one build step: a container on the previous image (mounted and
//! attached like a pod's, with egress and the pods' default disk limit), its output
//! streamed while it runs, then its overlay upper dir committed as a new image.
//!
//! The container has no pod or container row; it lives in
//! `<data_dir>/containers/build-<hex>` and is removed whatever happens.

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use cove_image::{Image, LayerCommit};
use cove_runtime::ContainerConfig;
use cove_types::{BuildEvent, BuildStep};
use tracing::{instrument, warn};

use crate::build::{describe, BuildSink};
use crate::{Lifecycle, LifecycleError};

/// Build containers get generous limits: installs are heavier than serving.
const BUILD_CPU_MILLIS: u64 = 2000;
const BUILD_MEMORY_MIB: u64 = 2048;
/// Where the daemon's CA bundle setting puts the host's bundle.
const CA_PATH: &str = "/etc/ssl/certs/cove-host-ca.crt";
/// A step still running after this long is stopped and fails the build.
const STEP_TIMEOUT: Duration = Duration::from_secs(3600);
/// Most bytes of a step's log read per round of following it.
const READ_PER_ROUND: usize = 1024 * 1024;
/// Longest line of a step's output passed on whole; longer ones are cut.
const MAX_LINE: usize = 64 * 1024;
/// Lines of output quoted in a failed step's error.
const TAIL_LINES: usize = 15;
/// Empty files the runtime creates as mount points; not part of the layer.
const MOUNT_POINTS: &[&str] = &[
    "etc/resolv.conf",
    "etc/hosts",
    "etc/hostname",
    "etc/ssl/certs/cove-host-ca.crt",
];

/// Build containers' ids (and dir names) start with this.
const ID_PREFIX: &str = "build-";

/// Whether container `id` is a build step's.
pub(crate) fn is_build_container(id: &str) -> bool {
    id.starts_with(ID_PREFIX)
}

/// The shell script a step runs.
fn script(step: &BuildStep) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    match step {
        BuildStep::Commands(c) => format!("set -e\n{}", c.join("\n")),
        BuildStep::PythonPackages(p) => format!(
            "python3 -m pip install --no-cache-dir --root-user-action=ignore --disable-pip-version-check {}",
            p.iter().map(|s| quote(s)).collect::<Vec<_>>().join(" ")
        ),
        // Not run in a container (see `run_build_step`); a no-op if it were.
        BuildStep::LocalPath(_) => "true".into(),
        BuildStep::PythonVersion(v) => format!(
            "command -v python3 >/dev/null || {{ echo 'python3 is not installed in this image' >&2; exit 127; }}\n\
             python3 --version\n\
             python3 -c 'import sys; v=sys.argv[1]; have=\"%d.%d\" % sys.version_info[:2]; \
             sys.exit(0 if not v or have == v or have.startswith(v + \".\") else \"python \" + have + \" is not \" + v)' {}",
            quote(cove_types::python_version_number(v))
        ),
    }
}

impl Lifecycle {
    /// Runs step `index` on `parent`; on success registers `reference`.
    #[instrument(skip_all, fields(step = index + 1, reference = %reference))]
    pub(crate) async fn run_build_step(
        &self,
        index: usize,
        step: &BuildStep,
        parent: &Image,
        env: &[String],
        reference: &str,
        sink: BuildSink<'_>,
    ) -> Result<Image, LifecycleError> {
        if let BuildStep::LocalPath(l) = step {
            return self.add_context(step, l, parent, env, reference).await;
        }
        let id = format!(
            "{ID_PREFIX}{}",
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        );
        let dir = self.container_dir(&id);
        let result = self
            .run_step_container(&id, index, step, parent, env, reference, sink)
            .await;
        self.release_resources(&id).await;
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                warn!(dir = %dir.display(), error = %e, "cannot remove build container dir");
            }
        }
        result
    }

    /// A `local_path` step: the uploaded tar becomes the layer, no container runs.
    async fn add_context(
        &self,
        step: &BuildStep,
        l: &cove_types::LocalPathStep,
        parent: &Image,
        env: &[String],
        reference: &str,
    ) -> Result<Image, LifecycleError> {
        let images = self.inner.images.clone();
        let (parent, l, reference) = (parent.clone(), l.clone(), reference.to_string());
        let (env, created_by) = (env.to_vec(), describe(step));
        let image = tokio::task::spawn_blocking(move || {
            images.commit_context(
                &parent,
                &l.archive,
                &l.remote,
                &LayerCommit {
                    upper: Path::new(""),
                    skip: &[],
                    reference: &reference,
                    env: &env,
                    created_by: &created_by,
                },
            )
        })
        .await
        .map_err(|e| LifecycleError::Internal(format!("commit task: {e}")))??;
        Ok(image)
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_step_container(
        &self,
        id: &str,
        index: usize,
        step: &BuildStep,
        parent: &Image,
        env: &[String],
        reference: &str,
        sink: BuildSink<'_>,
    ) -> Result<Image, LifecycleError> {
        let dir = self.container_dir(id);
        // A step runs code like a pod's, so its writable layer gets the pods' default limit.
        let disk = self.inner.cfg.default_disk_mib;
        let (rootfs, attachment) = self.mount_and_attach(id, parent, disk).await?;
        let mut all_env = parent.config.env.clone();
        let mut set = |kv: String| {
            let k = kv
                .split_once('=')
                .map(|(k, _)| k.to_string())
                .unwrap_or_default();
            all_env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()));
            all_env.push(kv);
        };
        for kv in env {
            set(kv.clone());
        }
        set("PIP_BREAK_SYSTEM_PACKAGES=1".into());
        let mut extra_mounts = Vec::new();
        if let Some(ca) = &self.inner.cfg.build_ca_bundle {
            extra_mounts.push((ca.clone(), CA_PATH.to_string(), true));
            for k in ["SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE"] {
                set(format!("{k}={CA_PATH}"));
            }
        }
        let cfg = ContainerConfig {
            id: id.to_string(),
            dir: dir.clone(),
            rootfs,
            args: vec!["/bin/sh".into(), "-c".into(), script(step)],
            env: all_env,
            cwd: parent
                .config
                .working_dir
                .clone()
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "/".into()),
            // Installs need root; the image's USER applies when it runs.
            user: None,
            hostname: id.chars().take(63).collect(),
            netns: Some(attachment.netns_path.clone()),
            cpu_millis: BUILD_CPU_MILLIS,
            memory_mib: BUILD_MEMORY_MIB,
            pids_limit: self.inner.cfg.pids_limit,
            log_path: dir.join("container.log"),
            // Its output is streamed to the client as it runs; on disk it is capped like a pod's.
            log_limit: self.inner.cfg.default_log_limit,
            cgroup_parent: self.inner.cfg.cgroup_parent.clone(),
            dns: cove_network::nameservers(),
            extra_mounts,
            // Build steps always run under runc, whatever the daemon's default for pods.
            isolation: cove_types::Isolation::Runc,
        };
        let started = self.inner.runtime.start(&cfg).await.map_err(|e| {
            // The image is what a step's start depends on (its /bin/sh, its workdir).
            LifecycleError::BadRequest(format!(
                "step {} ({}) could not start: {e}",
                index + 1,
                describe(step)
            ))
        })?;
        let waiting = cove_runtime::wait_exit(started.shim_pid, &dir);
        let Ok((status, tail)) =
            tokio::time::timeout(STEP_TIMEOUT, follow_log(&cfg.log_path, waiting, sink)).await
        else {
            let _ = self.inner.runtime.stop(id, Duration::from_secs(1)).await;
            return Err(LifecycleError::BadRequest(format!(
                "step {} ({}) did not finish within {} s",
                index + 1,
                describe(step),
                STEP_TIMEOUT.as_secs()
            )));
        };
        let status = status?;
        if status.code != 0 || status.oom_killed {
            let how = if status.oom_killed {
                "was killed: out of memory".to_string()
            } else {
                format!("failed with exit code {}", status.code)
            };
            let tail: Vec<String> = tail.into_iter().collect();
            return Err(LifecycleError::BadRequest(format!(
                "step {} ({}) {how}{}{}",
                index + 1,
                describe(step),
                if tail.is_empty() { "" } else { ": " },
                tail.join(" | ")
            )));
        }
        let images = self.inner.images.clone();
        let upper = cove_image::ImageStore::upper_dir(&dir)?;
        let (parent, reference) = (parent.clone(), reference.to_string());
        let env = env.to_vec();
        let created_by = describe(step);
        let image = tokio::task::spawn_blocking(move || {
            images.commit_upper(
                &parent,
                &LayerCommit {
                    upper: &upper,
                    skip: MOUNT_POINTS,
                    reference: &reference,
                    env: &env,
                    created_by: &created_by,
                },
            )
        })
        .await
        .map_err(|e| LifecycleError::Internal(format!("commit task: {e}")))??;
        Ok(image)
    }
}

/// Streams the log's lines to `sink` until `exited` resolves (then reads the
/// rest). Returns the exit and the last lines.
async fn follow_log<F>(
    path: &Path,
    exited: F,
    sink: BuildSink<'_>,
) -> (
    Result<cove_runtime::ExitStatus, cove_runtime::RuntimeError>,
    VecDeque<String>,
)
where
    F: std::future::Future<Output = Result<cove_runtime::ExitStatus, cove_runtime::RuntimeError>>,
{
    tokio::pin!(exited);
    let mut reader = Some(cove_runtime::LogReader::new(path));
    let mut partial: Vec<u8> = Vec::new();
    let mut tail = VecDeque::new();
    let emit = |line: &[u8], tail: &mut VecDeque<String>| {
        let s = String::from_utf8_lossy(line)
            .trim_end_matches('\r')
            .to_string();
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(s.clone());
        sink(BuildEvent::Log(s));
    };
    let mut status = None;
    loop {
        // What the step wrote since the last round (up to a bounded amount per round).
        if let Some(mut r) = reader.take() {
            let read = tokio::task::spawn_blocking(move || {
                let mut out = vec![0u8; READ_PER_ROUND];
                let mut len = 0;
                while len < out.len() {
                    match r.read(&mut out[len..]) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => len += n,
                    }
                }
                out.truncate(len);
                (r, out)
            })
            .await;
            if let Ok((r, buf)) = read {
                reader = Some(r);
                let more = buf.len() == READ_PER_ROUND;
                partial.extend_from_slice(&buf);
                while let Some(nl) = partial.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = partial.drain(..=nl).collect();
                    emit(&line[..line.len() - 1], &mut tail);
                }
                if partial.len() > MAX_LINE {
                    // A line without end: pass it on in pieces rather than hold it all.
                    let rest = std::mem::take(&mut partial);
                    emit(&rest, &mut tail);
                }
                if more {
                    continue;
                }
            }
        }
        if let Some(s) = status {
            if !partial.is_empty() {
                let rest = std::mem::take(&mut partial);
                emit(&rest, &mut tail);
            }
            return (s, tail);
        }
        tokio::select! {
            s = &mut exited => status = Some(s),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_quote_packages_and_stop_on_the_first_failing_command() {
        let s = script(&BuildStep::PythonPackages(vec![
            "a==1".into(),
            "it's".into(),
        ]));
        assert!(s.ends_with(r"'a==1' 'it'\''s'"), "{s}");
        let s = script(&BuildStep::Commands(vec!["false".into(), "echo no".into()]));
        assert!(s.starts_with("set -e\n"));
        let s = script(&BuildStep::PythonVersion("python3.11".into()));
        assert!(s.ends_with(" '3.11'"), "{s}");
    }
}
