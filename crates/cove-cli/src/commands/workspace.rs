//! `cove workspace list|set-limits`: workspaces' limits and usage (needs the admin token).

use anyhow::Result;
use clap::{Args, Subcommand};
use cove_types::{Quantity, SetLimitsRequest, WorkspaceInfo};

use crate::client::Client;
use crate::commands::container::ListFormat;
use crate::table;

/// `cove workspace ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum WorkspaceCmd {
    /// List workspaces: limits in force and what their running pods hold.
    #[command(alias = "ls")]
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Set a workspace's limits (those not given keep their value).
    SetLimits {
        /// The workspace.
        name: String,
        #[command(flatten)]
        limits: LimitArgs,
    },
}

/// The limit options, shared with `cove token create`.
#[derive(Debug, Clone, Default, Args)]
pub struct LimitArgs {
    /// Pods the workspace may run at once.
    #[arg(long)]
    pub max_pods: Option<u64>,
    /// Cpu its running pods may ask for in all: cores (4, 0.5) or millicores (4000m).
    #[arg(long)]
    pub max_cpu: Option<String>,
    /// Memory its running pods may ask for in all: MiB (2048) or a size (2Gi).
    #[arg(long)]
    pub max_memory: Option<String>,
    /// Disk its running pods may ask for in all: MiB or a size (20Gi).
    #[arg(long)]
    pub max_disk: Option<String>,
}

impl LimitArgs {
    /// The request body, or `None` if no limit was given.
    pub fn request(&self) -> Option<SetLimitsRequest> {
        let q = |v: &Option<String>| v.as_ref().map(|s| Quantity::Text(s.clone()));
        let req = SetLimitsRequest {
            max_pods: self.max_pods,
            max_cpu: q(&self.max_cpu),
            max_memory: q(&self.max_memory),
            max_disk: q(&self.max_disk),
        };
        let given = req.max_pods.is_some()
            || req.max_cpu.is_some()
            || req.max_memory.is_some()
            || req.max_disk.is_some();
        given.then_some(req)
    }
}

/// Runs a `cove workspace` subcommand.
pub async fn execute(client: &Client, cmd: WorkspaceCmd) -> Result<i32> {
    match cmd {
        WorkspaceCmd::List { format } => {
            let list: Vec<WorkspaceInfo> =
                client.get(client.url(&["v1", "workspaces"], &[])).await?;
            match format {
                ListFormat::Json => println!("{}", serde_json::to_string_pretty(&list)?),
                ListFormat::Table => print!("{}", render(&list)),
            }
        }
        WorkspaceCmd::SetLimits { name, limits } => {
            let Some(req) = limits.request() else {
                anyhow::bail!(
                    "no limit given: use --max-pods, --max-cpu, --max-memory or --max-disk"
                );
            };
            let url = client.url(&["v1", "workspaces", &name, "limits"], &[]);
            let w: WorkspaceInfo = client.put(url, &req).await?;
            print!("{}", render(&[w]));
        }
    }
    Ok(0)
}

/// `used / max` ("used / -" without a limit).
fn of(used: String, max: Option<String>) -> String {
    format!("{used} / {}", max.unwrap_or_else(|| "-".into()))
}

fn cores(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        format!("{}", millis as f64 / 1000.0)
    }
}

fn mib(m: u64) -> String {
    if m >= 1024 && m.is_multiple_of(1024) {
        format!("{}Gi", m / 1024)
    } else {
        format!("{m}Mi")
    }
}

/// The workspaces table: Name, Tokens, Pods, CPU, Memory, Disk (each `used / limit`).
fn render(list: &[WorkspaceInfo]) -> String {
    let mut t = table::new_table(&["Name", "Tokens", "Pods", "CPU", "Memory", "Disk"]);
    for w in list {
        let (u, l) = (&w.usage, &w.limits);
        t.add_row(vec![
            w.name.clone(),
            w.tokens.to_string(),
            of(u.pods.to_string(), l.max_pods.map(|p| p.to_string())),
            of(cores(u.cpu_millis), l.max_cpu_millis.map(cores)),
            of(mib(u.memory_mib), l.max_memory_mib.map(mib)),
            of(mib(u.disk_mib), l.max_disk_mib.map(mib)),
        ]);
    }
    table::render(&t, list.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cove_types::{WorkspaceLimits, WorkspaceUsage};

    #[test]
    fn the_table_shows_usage_over_limits() {
        let out = render(&[WorkspaceInfo {
            name: "team-a".into(),
            limits: WorkspaceLimits {
                max_pods: Some(5),
                max_cpu_millis: Some(2500),
                max_memory_mib: Some(2048),
                max_disk_mib: None,
            },
            usage: WorkspaceUsage {
                pods: 2,
                cpu_millis: 2000,
                memory_mib: 256,
                disk_mib: 0,
            },
            tokens: 1,
        }]);
        assert!(out.contains("2 / 5"), "{out}");
        assert!(out.contains("2 / 2.5"), "{out}");
        assert!(out.contains("256Mi / 2Gi"), "{out}");
        assert!(out.contains("0Mi / -"), "{out}");
    }
}
