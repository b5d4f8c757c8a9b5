//! [`Runc`]: the [`Runtime`] implementation on top of the runc CLI and the `cove shim` process.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tracing::{debug, instrument, warn};

use crate::exit::{
    async_pidfd, pidfd_open, read_pid_file, shim_is_alive, EXIT_FILE, INIT_PID_FILE, SHIM_PID_FILE,
};
use crate::spec::{build_spec, write_spec, HostInfo};
use crate::{cgroup, etc_files, runc_cmd, user};
use crate::{BoxFuture, ContainerConfig, ExecOutput, Runtime, RuntimeError, Started};

/// How long `start` waits for the shim to report `started`/`error`.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `stop` waits for init to die after SIGKILL.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// Drives runc. Each daemon uses its own runc `root` so two daemons never see each other's containers.
#[derive(Debug, Clone)]
pub struct Runc {
    runc: PathBuf,
    root: PathBuf,
    shim_exe: PathBuf,
}

#[derive(Deserialize)]
struct State {
    #[serde(default)]
    pid: i32,
    #[serde(default)]
    status: String,
}

#[derive(Deserialize)]
struct ListEntry {
    id: String,
}

impl Runc {
    /// `root`: runc's state dir (e.g. `<data-dir>/runc`); `shim_exe`: the `cove` binary, which
    /// must dispatch `cove shim ...` to [`crate::shim_main`].
    pub fn new(root: PathBuf, shim_exe: PathBuf) -> Self {
        let runc = [
            "/usr/sbin/runc",
            "/usr/bin/runc",
            "/usr/local/sbin/runc",
            "/usr/local/bin/runc",
        ]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("runc"));
        Runc {
            runc,
            root,
            shim_exe,
        }
    }

    /// Uses a specific runc binary instead of the one found in the usual places.
    pub fn with_runc_binary(mut self, runc: PathBuf) -> Self {
        self.runc = runc;
        self
    }

    /// runc's state directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    async fn call(&self, args: &[&str]) -> Result<runc_cmd::RuncOutput, RuntimeError> {
        runc_cmd::run(&self.runc, &self.root, args).await
    }

    /// `runc state`; `None` if runc does not know the container.
    async fn state(&self, id: &str) -> Result<Option<State>, RuntimeError> {
        let out = self.call(&["state", id]).await?;
        if !out.success() {
            if out.not_found() {
                return Ok(None);
            }
            return Err(runc_err("state", id, out.message()));
        }
        serde_json::from_slice(&out.output.stdout)
            .map(Some)
            .map_err(|e| runc_err("state", id, format!("unparsable state: {e}")))
    }

    #[instrument(skip_all, fields(pod = %cfg.id))]
    async fn start_inner(&self, cfg: &ContainerConfig) -> Result<Started, RuntimeError> {
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
    async fn spawn_shim(&self, cfg: &ContainerConfig) -> Result<Started, RuntimeError> {
        let oom_file = cgroup::oom_counter_file(&cfg.cgroups_path());
        let mut child = tokio::process::Command::new(&self.shim_exe)
            .arg("shim")
            .arg(&cfg.id)
            .arg(&cfg.dir)
            .arg(&self.runc)
            .arg(&self.root)
            .arg(&cfg.log_path)
            .arg(&oom_file)
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
    fn kill_shim(&self, cfg: &ContainerConfig) {
        if let Some(pid) = read_pid_file(&cfg.dir.join(SHIM_PID_FILE)) {
            if shim_is_alive(pid, &cfg.id) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }

    #[instrument(skip(self), fields(pod = %id))]
    async fn stop_inner(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let Some(state) = self.state(id).await? else {
            return Ok(());
        };
        if state.status == "stopped" || state.pid <= 0 {
            return Ok(());
        }
        // Open the pidfd before signalling so a reused pid can never be mistaken for init.
        let Some(fd) = pidfd_open(state.pid) else {
            return Ok(());
        };
        let init = async_pidfd(fd)?;
        self.kill(id, "TERM", false).await?;
        if tokio::time::timeout(grace, init.readable()).await.is_ok() {
            return Ok(());
        }
        debug!("grace period over, sending SIGKILL to all processes");
        // --all: on cgroup v1 this reaches every process in the container's cgroup.
        self.kill(id, "KILL", true).await?;
        match tokio::time::timeout(KILL_TIMEOUT, init.readable()).await {
            Ok(_) => Ok(()),
            Err(_) => Err(RuntimeError::Timeout {
                what: format!("container {id} to die after SIGKILL"),
                secs: KILL_TIMEOUT.as_secs(),
            }),
        }
    }

    /// `runc kill [--all] <id> <sig>`; a container that is gone or stopped is not an error.
    async fn kill(&self, id: &str, sig: &str, all: bool) -> Result<(), RuntimeError> {
        let args: Vec<&str> = if all {
            vec!["kill", "--all", id, sig]
        } else {
            vec!["kill", id, sig]
        };
        let out = self.call(&args).await?;
        if out.success() || out.not_found() {
            return Ok(());
        }
        let msg = out.message();
        if msg.contains("not running") || msg.contains("process already finished") {
            return Ok(());
        }
        Err(runc_err("kill", id, msg))
    }

    #[instrument(skip(self, env), fields(pod = %id))]
    async fn exec_inner(
        &self,
        id: &str,
        args: &[String],
        env: &[String],
        cwd: Option<&str>,
    ) -> Result<ExecOutput, RuntimeError> {
        if args.is_empty() {
            return Err(RuntimeError::InvalidConfig(
                "exec args must not be empty".into(),
            ));
        }
        let mut cmd: Vec<&str> = vec!["exec"];
        for e in env {
            cmd.extend(["--env", e.as_str()]);
        }
        if let Some(cwd) = cwd {
            cmd.extend(["--cwd", cwd]);
        }
        cmd.push(id);
        cmd.extend(args.iter().map(String::as_str));
        let out = self.call(&cmd).await?;
        // runc exits with the process's own code; only a logged error means runc itself failed.
        if out.error.is_some() {
            if out.not_found() {
                return Err(RuntimeError::NotFound(id.to_string()));
            }
            return Err(runc_err("exec", id, out.message()));
        }
        Ok(ExecOutput {
            exit_code: out.output.status.code().unwrap_or(-1),
            stdout: out.output.stdout,
            stderr: out.output.stderr,
        })
    }

    #[instrument(skip(self), fields(pod = %id))]
    async fn delete_inner(&self, id: &str) -> Result<(), RuntimeError> {
        let out = self.call(&["delete", "--force", id]).await?;
        if !out.success() && !out.not_found() {
            return Err(runc_err("delete", id, out.message()));
        }
        let left = cgroup::remove_leftovers(id).await;
        if !left.is_empty() {
            let dirs: Vec<String> = left.iter().map(|p| p.display().to_string()).collect();
            return Err(runc_err(
                "delete",
                id,
                format!("cgroup directories remain: {}", dirs.join(", ")),
            ));
        }
        Ok(())
    }

    async fn list_inner(&self) -> Result<Vec<String>, RuntimeError> {
        let out = self.call(&["list", "--format", "json"]).await?;
        if !out.success() {
            return Err(runc_err("list", "*", out.message()));
        }
        let entries: Option<Vec<ListEntry>> = serde_json::from_slice(&out.output.stdout)
            .map_err(|e| runc_err("list", "*", format!("unparsable list: {e}")))?;
        Ok(entries
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.id)
            .collect())
    }
}

fn runc_err(command: &'static str, id: &str, message: String) -> RuntimeError {
    RuntimeError::Runc {
        command,
        id: id.to_string(),
        message,
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

impl Runtime for Runc {
    fn name(&self) -> &'static str {
        "runc"
    }
    fn start<'a>(
        &'a self,
        cfg: &'a ContainerConfig,
    ) -> BoxFuture<'a, Result<Started, RuntimeError>> {
        Box::pin(self.start_inner(cfg))
    }
    fn stop<'a>(&'a self, id: &'a str, grace: Duration) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(self.stop_inner(id, grace))
    }
    fn exec<'a>(
        &'a self,
        id: &'a str,
        args: &'a [String],
        env: &'a [String],
        cwd: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ExecOutput, RuntimeError>> {
        Box::pin(self.exec_inner(id, args, env, cwd))
    }
    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(self.delete_inner(id))
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<String>, RuntimeError>> {
        Box::pin(self.list_inner())
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

    #[test]
    fn object_safe() {
        let rt: std::sync::Arc<dyn Runtime> =
            std::sync::Arc::new(Runc::new("/tmp/x".into(), "/bin/false".into()));
        assert_eq!(rt.name(), "runc");
    }
}
