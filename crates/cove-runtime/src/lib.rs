//! `cove-runtime`: runs one container through an OCI runtime: runc, or gVisor's runsc.
//!
//! Map of the crate:
//! - [`spec`]: builds the OCI `config.json` (namespaces, caps, mounts, cgroup limits, rlimits) from a
//!   [`ContainerConfig`]; [`user`] resolves the image's `User` inside the rootfs; [`etc_files`] writes
//!   the generated `/etc/resolv.conf`, `/etc/hosts` and `/etc/hostname` that are bind-mounted in.
//! - [`Runtime`]: the object-safe seam the lifecycle crate drives (`Arc<dyn Runtime>`); [`Runc`] is
//!   the driver for runc and, as [`Runc::gvisor`], for gVisor's runsc (`runc_cmd` wraps their CLI
//!   and JSON log); [`Runtimes`] routes each container to the one its [`Isolation`] names.
//! - [`shim_main`]: the tiny per-container "shim" process (`cove shim ...`). It runs `<runtime> run --detach`,
//!   becomes the subreaper of the container's init, writes the container's output to its log,
//!   records the exit status and OOM kills in `<dir>/exit.json` and exits. Containers therefore
//!   outlive the daemon.
//! - [`log_files`]: the rotating log writer (`container.log`, `.1`, …, within a [`LogLimit`]);
//!   [`log_reader`]: reads it back across rotations, following it as it grows.
//! - [`exit`]: [`ExitStatus`], the exit file, and [`wait_exit`] which waits on a shim that need not
//!   be our child (pidfd), so a restarted daemon can pick up running containers from `dir`.
//! - `cgroup`: host cgroup version detection, OOM counters and leftover-cgroup cleanup.
//!
//! Files the runtime keeps in the per-container `dir`: `config.json`, `etc/`, `runc.log` (runc's or runsc's),
//! `shim.pid`, `init.pid`, `exit.json`.

mod cgroup;
mod error;
pub mod etc_files;
pub mod exit;
pub mod log_files;
pub mod log_reader;
mod orphans;
mod runc;
mod runc_cmd;
mod runtimes;
mod seccomp;
mod shim;
mod shim_io;
pub mod spec;
pub mod user;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

pub use cgroup::{leftover_dirs, remove_cgroup_parent};
pub use cove_types::Isolation;
pub use error::RuntimeError;
pub use exit::{read_exit_file, shim_is_alive, wait_exit, ExitStatus};
pub use log_files::{rotated_path, LogLimit, RotatingLog};
pub use log_reader::LogReader;
pub use orphans::{kill_shim_group, shims_under, ShimProcess};
pub use runc::{find_runsc, Flavor, Runc};
pub use runtimes::Runtimes;
pub use shim::shim_main;
pub use spec::host_nofile_hard_limit;

/// Everything needed to start one container. Built by the lifecycle crate.
#[derive(Debug, Clone)]
pub struct ContainerConfig {
    /// Container id, also the runtime's container id (e.g. `pod-<uuid>-<8hex>`).
    pub id: String,
    /// Per-container directory owned by the daemon: bundle, runc log, exit file, etc files.
    pub dir: PathBuf,
    /// An already-mounted root filesystem.
    pub rootfs: PathBuf,
    /// Resolved entrypoint + cmd; must be non-empty.
    pub args: Vec<String>,
    /// `K=V` entries, already merged; `PATH`, `HOSTNAME` and `HOME` are added when missing.
    pub env: Vec<String>,
    /// Working directory inside the container; `/` if empty.
    pub cwd: String,
    /// Image config `User` (`""`, `1000`, `1000:1000`, `name`, `name:group`); `None` = root.
    pub user: Option<String>,
    pub hostname: String,
    /// Path of a pre-made network namespace; `None` = a new, empty netns.
    pub netns: Option<PathBuf>,
    /// CPU limit in millicores (0 = unlimited).
    pub cpu_millis: u64,
    /// Memory limit in MiB (0 = unlimited); swap is disabled where the host supports it.
    pub memory_mib: u64,
    /// Max number of pids (<= 0 = unlimited).
    pub pids_limit: i64,
    /// Container stdout+stderr go here (through the shim), rotated within `log_limit`.
    pub log_path: PathBuf,
    /// The cap on the files at `log_path` (see [`log_files`]).
    pub log_limit: LogLimit,
    /// Parent cgroup name, e.g. `cove-<tag>`; the container's cgroup is `/<parent>/<id>`.
    pub cgroup_parent: String,
    /// Nameservers for the generated `/etc/resolv.conf`.
    pub dns: Vec<String>,
    /// Extra bind mounts: (host path, path in the container, read-only).
    pub extra_mounts: Vec<(PathBuf, String, bool)>,
    /// The runtime that runs it ([`Runtimes`] routes by it; a single [`Runc`] ignores it).
    pub isolation: Isolation,
}

impl ContainerConfig {
    /// The OCI `cgroupsPath` for this container.
    pub fn cgroups_path(&self) -> String {
        format!("/{}/{}", self.cgroup_parent.trim_matches('/'), self.id)
    }
}

/// A started container: the shim (not the daemon's child) and the container's init pid (host view).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    pub shim_pid: i32,
    pub init_pid: i32,
}

/// Result of [`Runtime::exec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// A boxed, `Send` future: keeps [`Runtime`] object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The OCI runtime seam. Object-safe: use it as `Arc<dyn Runtime>`.
pub trait Runtime: Send + Sync {
    /// Short name, e.g. `"runc"`.
    fn name(&self) -> &'static str;
    /// Writes the bundle, spawns the shim and returns once the container's init runs (or the error).
    /// On error nothing is left behind (runc container and cgroups are deleted).
    fn start<'a>(
        &'a self,
        cfg: &'a ContainerConfig,
    ) -> BoxFuture<'a, Result<Started, RuntimeError>>;
    /// SIGTERM to init, SIGKILL to every process after `grace`; returns when init is dead.
    /// Ok if the container is unknown or already stopped.
    fn stop<'a>(&'a self, id: &'a str, grace: Duration) -> BoxFuture<'a, Result<(), RuntimeError>>;
    /// Runs a process in the running container (as the container's user), collecting its output.
    fn exec<'a>(
        &'a self,
        id: &'a str,
        args: &'a [String],
        env: &'a [String],
        cwd: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ExecOutput, RuntimeError>>;
    /// Force-deletes the container and its cgroups. Ok if unknown.
    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>>;
    /// Ids of the containers this runtime root knows (for reconciliation after a restart).
    fn list(&self) -> BoxFuture<'_, Result<Vec<String>, RuntimeError>>;
}
