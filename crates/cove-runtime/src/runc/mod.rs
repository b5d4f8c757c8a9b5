//! [`Runc`]: the [`Runtime`] implementation on top of the runc CLI and the `cove shim` process.
//! One file per verb: `start.rs` (bundle + shim), `stop.rs` (signals), `exec.rs`; delete and
//! list are small enough to live here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tracing::instrument;

use crate::{cgroup, runc_cmd};
use crate::{BoxFuture, ContainerConfig, ExecOutput, Runtime, RuntimeError, Started};

mod exec;
mod start;
mod stop;

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

    #[instrument(skip(self), fields(pod = %id))]
    pub(super) async fn delete_inner(&self, id: &str) -> Result<(), RuntimeError> {
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

pub(crate) fn runc_err(command: &'static str, id: &str, message: String) -> RuntimeError {
    RuntimeError::Runc {
        command,
        id: id.to_string(),
        message,
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
    fn object_safe() {
        let rt: std::sync::Arc<dyn Runtime> =
            std::sync::Arc::new(Runc::new("/tmp/x".into(), "/bin/false".into()));
        assert_eq!(rt.name(), "runc");
    }
}
