//! [`Runc`]: the [`Runtime`] implementation on top of an OCI runtime CLI of the runc family and
//! the `cove shim` process. The same driver runs runc and gVisor's runsc: their CLIs agree on
//! `run --detach`, `state`, `kill [--all]`, `exec`, `delete --force` and `list --format json`;
//! what differs is in [`Flavor`] (runsc's global flags, `exec` given the container's whole
//! process as a `process.json`, and the shim's work-around for runsc's root-netns check). One file per verb: `start.rs` (bundle + shim),
//! `stop.rs` (signals), `exec.rs`, `gvisor.rs` (runsc's flags); delete and list live here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tracing::instrument;

use crate::{cgroup, runc_cmd};
use crate::{BoxFuture, ContainerConfig, ExecOutput, Runtime, RuntimeError, Started};

mod exec;
mod gvisor;
mod start;
mod stop;

pub use gvisor::find_runsc;

/// Which OCI runtime the driver runs; fixes its name and the few places where runsc differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Runc,
    /// gVisor's `runsc`.
    Runsc,
}

impl Flavor {
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Runc => "runc",
            Flavor::Runsc => "runsc",
        }
    }
}

/// Drives runc or runsc. Each daemon uses its own `root` per runtime so two daemons never see
/// each other's containers.
#[derive(Debug, Clone)]
pub struct Runc {
    flavor: Flavor,
    runc: PathBuf,
    root: PathBuf,
    /// Flags given to every invocation, after `--root`/`--log` (runsc: `--platform=...`, ...).
    global: Vec<String>,
    shim_exe: PathBuf,
}

#[derive(Deserialize)]
struct State {
    #[serde(default)]
    pid: i32,
    #[serde(default)]
    status: String,
    /// The bundle directory (holding `config.json`).
    #[serde(default)]
    bundle: PathBuf,
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
            flavor: Flavor::Runc,
            runc,
            root,
            global: Vec::new(),
            shim_exe,
        }
    }

    /// Which runtime this drives.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// Uses a specific runc binary instead of the one found in the usual places.
    pub fn with_runc_binary(mut self, runc: PathBuf) -> Self {
        self.runc = runc;
        self
    }

    /// The runtime's state directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    async fn call(&self, args: &[&str]) -> Result<runc_cmd::RuncOutput, RuntimeError> {
        runc_cmd::run(&self.runc, &self.root, &self.global, args).await
    }

    async fn call_owned(&self, args: &[String]) -> Result<runc_cmd::RuncOutput, RuntimeError> {
        runc_cmd::run(&self.runc, &self.root, &self.global, args).await
    }

    /// Whether this runtime has state for container `id` (running or stopped, not yet deleted).
    pub(crate) async fn knows(&self, id: &str) -> Result<bool, RuntimeError> {
        Ok(self.state(id).await?.is_some())
    }

    /// `<runtime> state`; `None` if the runtime does not know the container.
    async fn state(&self, id: &str) -> Result<Option<State>, RuntimeError> {
        let out = self.call(&["state", id]).await?;
        if !out.success() {
            if out.not_found() {
                return Ok(None);
            }
            return Err(self.err("state", id, out.message()));
        }
        serde_json::from_slice(&out.output.stdout)
            .map(Some)
            .map_err(|e| self.err("state", id, format!("unparsable state: {e}")))
    }

    #[instrument(skip(self), fields(pod = %id))]
    pub(super) async fn delete_inner(&self, id: &str) -> Result<(), RuntimeError> {
        let out = self.call(&["delete", "--force", id]).await?;
        if !out.success() && !out.not_found() {
            return Err(self.err("delete", id, out.message()));
        }
        let left = cgroup::remove_leftovers(id).await;
        if !left.is_empty() {
            let dirs: Vec<String> = left.iter().map(|p| p.display().to_string()).collect();
            return Err(self.err(
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
            return Err(self.err("list", "*", out.message()));
        }
        let entries: Option<Vec<ListEntry>> = serde_json::from_slice(&out.output.stdout)
            .map_err(|e| self.err("list", "*", format!("unparsable list: {e}")))?;
        Ok(entries
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.id)
            .collect())
    }
}

impl Runc {
    /// A failure of this runtime's `command` for container `id`.
    pub(crate) fn err(&self, command: &'static str, id: &str, message: String) -> RuntimeError {
        RuntimeError::Runc {
            runtime: self.flavor.name(),
            command,
            id: id.to_string(),
            message,
        }
    }
}

impl Runtime for Runc {
    fn name(&self) -> &'static str {
        self.flavor.name()
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
    fn object_safe() {
        let rt: std::sync::Arc<dyn Runtime> =
            std::sync::Arc::new(Runc::new("/tmp/x".into(), "/bin/false".into()));
        assert_eq!(rt.name(), "runc");
    }
}
