//! `start`: write the bundle (spec + etc files), spawn `cove shim`, read its one-line report, and
//! clean up everything if the container did not start.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tracing::{debug, instrument, warn};

use super::{Flavor, Runc};
use crate::exit::{read_pid_file, shim_is_alive, EXIT_FILE, INIT_PID_FILE, SHIM_PID_FILE};
use crate::spec::{build_spec, write_spec, HostInfo};
use crate::{cgroup, etc_files, user, ContainerConfig, RuntimeError, Started};

/// How long `start` waits for the shim to report `started`/`error`.
const START_TIMEOUT: Duration = Duration::from_secs(60);

impl Runc {
    #[instrument(skip_all, fields(pod = %cfg.id, runtime = self.flavor.name()))]
    pub(super) async fn start_inner(&self, cfg: &ContainerConfig) -> Result<Started, RuntimeError> {
        if cfg.id.is_empty() || cfg.id.contains('/') || cfg.id.starts_with('.') {
            return Err(RuntimeError::InvalidConfig(format!(
                "bad container id {:?}",
                cfg.id
            )));
        }
        std::fs::create_dir_all(&cfg.dir)
            .map_err(|e| RuntimeError::io(format!("creating {}", cfg.dir.display()), e))?;
        for stale in [EXIT_FILE, INIT_PID_FILE, SHIM_PID_FILE, "runc.log"] {
            let _ = std::fs::remove_file(cfg.dir.join(stale));
        }
        let user = user::resolve_user(&cfg.rootfs, cfg.user.as_deref())?;
        etc_files::write_etc_files(cfg)?;
        let spec = build_spec(cfg, &user, &HostInfo::detect())?;
        write_spec(&cfg.dir, &spec)?;
        if let Some(parent) = cfg.log_path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| RuntimeError::io(format!("creating {}", parent.display()), e))?;
        }
        match self.spawn_shim(cfg).await {
            Ok(started) => {
                debug!(
                    init_pid = started.init_pid,
                    shim_pid = started.shim_pid,
                    "container started"
                );
                Ok(started)
            }
            Err(e) => {
                warn!(error = %e, "start failed; cleaning up");
                self.kill_shim(cfg);
                if let Err(de) = self.delete_inner(&cfg.id).await {
                    warn!(error = %de, "cleanup after failed start failed");
                }
                Err(e)
            }
        }
    }

    /// Spawns `cove shim ...` and waits for its one-line report.
    pub(super) async fn spawn_shim(&self, cfg: &ContainerConfig) -> Result<Started, RuntimeError> {
        let oom_file = cgroup::oom_counter_file(&cfg.cgroups_path());
        let mut child = tokio::process::Command::new(&self.shim_exe)
            .arg("shim")
            .arg(&cfg.id)
            .arg(&cfg.dir)
            .arg(&self.runc)
            .arg(&self.root)
            .arg(&cfg.log_path)
            .arg(&oom_file)
            .arg(cfg.log_limit.max_size.to_string())
            .arg(cfg.log_limit.max_files.to_string())
            .args((self.flavor == Flavor::Runsc).then_some(crate::shim::HIDE_HOST_NET_SYSCTLS))
            .args(&self.global)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| {
                RuntimeError::io(format!("spawning shim {}", self.shim_exe.display()), e)
            })?;
        let stdout = child.stdout.take();
        let mut line = String::new();
        let read = async {
            match stdout {
                Some(out) => BufReader::new(out).read_line(&mut line).await.map(|_| ()),
                None => Ok(()),
            }
        };
        let timed = tokio::time::timeout(START_TIMEOUT, read).await;
        // The first shim process exits right after forking the real shim; reap it.
        let _ = child.wait().await;
        match timed {
            Err(_) => {
                return Err(RuntimeError::Timeout {
                    what: format!("the shim of {} to report", cfg.id),
                    secs: START_TIMEOUT.as_secs(),
                })
            }
            Ok(Err(e)) => return Err(RuntimeError::io("reading the shim's report", e)),
            Ok(Ok(())) => {}
        }
        parse_report(&cfg.id, line.trim_end())
    }

    /// Kills the shim of a failed start, if it is still around.
    pub(super) fn kill_shim(&self, cfg: &ContainerConfig) {
        if let Some(pid) = read_pid_file(&cfg.dir.join(SHIM_PID_FILE)) {
            if shim_is_alive(pid, &cfg.id) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// Parses the shim's `started <init_pid> <shim_pid>` / `error <message>` line.
fn parse_report(id: &str, line: &str) -> Result<Started, RuntimeError> {
    let start_err = |message: String| RuntimeError::Start {
        id: id.to_string(),
        message,
    };
    if let Some(msg) = line.strip_prefix("error ") {
        return Err(start_err(msg.to_string()));
    }
    let mut parts = line.strip_prefix("started ").unwrap_or_default().split(' ');
    match (
        parts.next().and_then(|p| p.parse().ok()),
        parts.next().and_then(|p| p.parse().ok()),
    ) {
        (Some(init_pid), Some(shim_pid)) => Ok(Started { shim_pid, init_pid }),
        _ if line.is_empty() => Err(start_err("the shim exited without reporting".into())),
        _ => Err(start_err(format!("unexpected shim report {line:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports() {
        assert_eq!(
            parse_report("a", "started 10 20").unwrap(),
            Started {
                shim_pid: 20,
                init_pid: 10
            }
        );
        assert!(
            matches!(parse_report("a", "error boom"), Err(RuntimeError::Start { message, .. }) if message == "boom")
        );
        assert!(parse_report("a", "").is_err());
        assert!(parse_report("a", "garbage").is_err());
    }
}
