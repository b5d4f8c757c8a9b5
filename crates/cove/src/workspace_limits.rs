//! `cove server`'s workspace-limit flags and their defaults, sized from the host and the
//! address pool so that no one workspace can take the whole of either.

use anyhow::Result;
use cove_lifecycle::QuotaConfig;
use cove_types::{Quantity, SetLimitsRequest, WorkspaceLimits};
use ipnet::Ipv4Net;

/// Limits of workspaces that have none set (`cove workspace set-limits` overrides them);
/// the admin's workspace `default` has only those set on it.
#[derive(clap::Args, Debug)]
pub struct WorkspaceLimitArgs {
    /// Pods one workspace may run at once. Default: half the subnet's pod addresses.
    #[arg(long, env = "COVE_WORKSPACE_MAX_PODS")]
    workspace_max_pods: Option<u64>,
    /// Cpu (cores, or millicores like 8000m) one workspace's running pods may ask for in all.
    /// Default: 4 × the host's cores.
    #[arg(long, env = "COVE_WORKSPACE_MAX_CPU")]
    workspace_max_cpu: Option<String>,
    /// Memory (MiB, or a size like 8Gi) one workspace's running pods may ask for in all.
    /// Default: half the host's memory.
    #[arg(long, env = "COVE_WORKSPACE_MAX_MEMORY")]
    workspace_max_memory: Option<String>,
    /// Disk (MiB, or a size like 50Gi) one workspace's running pods may ask for in all (a pod
    /// without a disk limit counts --default-disk). Default: none: every pod's disk is bounded
    /// (--default-disk) and so is the number of pods; pod disks are sparse, so a cap sized from
    /// the data dir's filesystem refused default pods on small hosts (a 4 GiB cap on an 8 GiB
    /// tmpfs against the 10 GiB default disk) and allowed only 12 on this 252 GiB one.
    #[arg(long, env = "COVE_WORKSPACE_MAX_DISK")]
    workspace_max_disk: Option<String>,
    /// Pod addresses kept for the admin: workspaces together never take the last ones.
    /// Default: 1/16 of the subnet's pod addresses, at least 1.
    #[arg(long, env = "COVE_ADMIN_RESERVED_ADDRESSES")]
    admin_reserved_addresses: Option<u64>,
}

/// Pod addresses of `subnet`: all but the network, the bridge and the broadcast address.
fn pod_addresses(subnet: &Ipv4Net) -> u64 {
    (1u64 << (32 - u32::from(subnet.prefix_len()))).saturating_sub(3)
}

impl WorkspaceLimitArgs {
    pub fn quota_config(&self, subnet: &Ipv4Net) -> Result<QuotaConfig> {
        let pool = pod_addresses(subnet);
        let text = |v: &Option<String>| v.as_ref().map(|s| Quantity::Text(s.clone()));
        let parsed = SetLimitsRequest {
            max_pods: self.workspace_max_pods,
            max_cpu: text(&self.workspace_max_cpu),
            max_memory: text(&self.workspace_max_memory),
            max_disk: text(&self.workspace_max_disk),
        }
        .validate()
        .map_err(|e| anyhow::anyhow!("--workspace-{e}"))?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        let host = WorkspaceLimits {
            max_pods: Some((pool / 2).max(1)),
            max_cpu_millis: Some(cores * 4000),
            max_memory_mib: host_memory_mib().map(|m| m / 2),
            max_disk_mib: None,
        };
        let reserved = self
            .admin_reserved_addresses
            .unwrap_or((pool / 16).max(1))
            .min(pool);
        let defaults = parsed.or(host);
        tracing::info!(
            ?defaults,
            admin_reserved_addresses = reserved,
            "workspace limits"
        );
        Ok(QuotaConfig {
            workspace_defaults: defaults,
            shared_pods_max: Some(pool - reserved),
        })
    }
}

/// `MemTotal` of /proc/meminfo, in MiB.
fn host_memory_mib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_sizes() {
        assert_eq!(pod_addresses(&"10.0.0.0/24".parse().unwrap()), 253);
        assert_eq!(pod_addresses(&"10.0.0.0/29".parse().unwrap()), 5);
    }
}
