//! Workspace limits and the admission check of a new container, shared by every backend:
//! a backend counts what the workspace holds ([`Usage`]) and calls [`Admission::check`] in the
//! same transaction as the insert, so concurrent creates cannot pass a limit together.

use serde::{Deserialize, Serialize};

/// Limits of one workspace; `None`: none (or, as set on a workspace, the daemon's default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub max_pods: Option<u64>,
    pub max_cpu_millis: Option<u64>,
    pub max_memory_mib: Option<u64>,
    pub max_disk_mib: Option<u64>,
}

/// What a workspace holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub pods: u64,
    pub cpu_millis: u64,
    pub memory_mib: u64,
    pub disk_mib: u64,
}

/// What admitting one more container of `workspace` checks.
#[derive(Debug, Clone)]
pub struct Admission {
    pub workspace: String,
    /// The limits in force.
    pub limits: Limits,
    /// What the new container asks for.
    pub cpu_millis: u64,
    pub memory_mib: u64,
    pub disk_mib: u64,
    /// Disk counted for a live pod without a disk limit.
    pub default_disk_mib: u64,
    /// At most this many live containers of all workspaces but `default` together (the rest
    /// of the address pool is kept for the admin); `None`: not checked.
    pub shared_pods_max: Option<u64>,
}

/// Which limit refused a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Pods,
    Cpu,
    Memory,
    Disk,
}

/// Why a container was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Limit {
        workspace: String,
        limit: Limit,
        max: u64,
        used: u64,
        asks: u64,
    },
    Pool {
        max: u64,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Limit {
                workspace,
                limit,
                max,
                used,
                asks,
            } => f.write_str(&limit_message(workspace, *limit, *max, *used, *asks)),
            Refusal::Pool { max } => write!(
                f,
                "no pod address left for workspaces: they run {max} pods, and the rest of the \
                 address pool is kept for the admin"
            ),
        }
    }
}

impl std::error::Error for Refusal {}

fn cores(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        format!("{}", millis as f64 / 1000.0)
    }
}

fn limit_message(ws: &str, limit: Limit, max: u64, used: u64, asks: u64) -> String {
    let (what, flag, show): (&str, &str, fn(u64) -> String) = match limit {
        Limit::Pods => {
            let pods = if max == 1 { "pod" } else { "pods" };
            return format!("workspace {ws:?} is at its limit of {max} {pods} (max-pods)");
        }
        Limit::Cpu => ("cpu", "max-cpu", cores),
        Limit::Memory => ("memory", "max-memory", |m| format!("{m} MiB")),
        Limit::Disk => ("disk", "max-disk", |m| format!("{m} MiB")),
    };
    format!(
        "workspace {ws:?} is at its limit of {} {what} ({flag}): {} in use, the pod asks for {}",
        show(max),
        show(used),
        show(asks)
    )
}

impl Admission {
    /// Refuses the container this admission describes if, with the workspace holding `used`
    /// and all workspaces but `default` holding `shared_live` live containers together, it
    /// would pass a limit.
    pub fn check(&self, used: &Usage, shared_live: u64) -> Result<(), Refusal> {
        let l = &self.limits;
        let checks = [
            (Limit::Pods, l.max_pods, used.pods, 1),
            (
                Limit::Cpu,
                l.max_cpu_millis,
                used.cpu_millis,
                self.cpu_millis,
            ),
            (
                Limit::Memory,
                l.max_memory_mib,
                used.memory_mib,
                self.memory_mib,
            ),
            (Limit::Disk, l.max_disk_mib, used.disk_mib, self.disk_mib),
        ];
        for (limit, max, used, asks) in checks {
            if let Some(max) = max {
                if used.saturating_add(asks) > max {
                    return Err(Refusal::Limit {
                        workspace: self.workspace.clone(),
                        limit,
                        max,
                        used,
                        asks,
                    });
                }
            }
        }
        match self.shared_pods_max {
            Some(max) if shared_live >= max => Err(Refusal::Pool { max }),
            _ => Ok(()),
        }
    }
}
