//! Workspace limits: how much one workspace may hold at once (pods, cpu, memory, disk), and
//! the bodies of `/v1/workspaces`.
//!
//! A limit the admin did not set is the daemon's default for workspaces (`--workspace-max-*`);
//! the admin's own workspace `default` has only the limits set on it explicitly.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Quantity;

/// Limits of one workspace; `None` is "no limit" (or, in a request, "unchanged").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceLimits {
    /// Pods (containers) starting or running at once.
    pub max_pods: Option<u64>,
    /// Sum of the running pods' cpu, in millicores.
    pub max_cpu_millis: Option<u64>,
    /// Sum of the running pods' memory, in MiB.
    pub max_memory_mib: Option<u64>,
    /// Sum of the running pods' disk limits, in MiB (a pod without one counts `--default-disk`).
    pub max_disk_mib: Option<u64>,
}

impl WorkspaceLimits {
    /// `self`'s limits, each one not set taken from `fallback`.
    pub fn or(self, fallback: WorkspaceLimits) -> WorkspaceLimits {
        WorkspaceLimits {
            max_pods: self.max_pods.or(fallback.max_pods),
            max_cpu_millis: self.max_cpu_millis.or(fallback.max_cpu_millis),
            max_memory_mib: self.max_memory_mib.or(fallback.max_memory_mib),
            max_disk_mib: self.max_disk_mib.or(fallback.max_disk_mib),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == WorkspaceLimits::default()
    }
}

/// `PUT /v1/workspaces/{name}/limits`, and `limits` of `POST /v1/tokens`: the limits to set;
/// one left out keeps its value.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetLimitsRequest {
    #[serde(default)]
    pub max_pods: Option<u64>,
    /// Cores (`4`, `0.5`) or millicores (`"4000m"`).
    #[serde(default)]
    pub max_cpu: Option<Quantity>,
    /// MiB (`2048`) or a size (`"2Gi"`).
    #[serde(default)]
    pub max_memory: Option<Quantity>,
    /// MiB or a size (`"20Gi"`).
    #[serde(default)]
    pub max_disk: Option<Quantity>,
}

impl SetLimitsRequest {
    /// The limits in millicores and MiB; an error names the bad field.
    pub fn validate(&self) -> Result<WorkspaceLimits, String> {
        Ok(WorkspaceLimits {
            max_pods: self.max_pods,
            max_cpu_millis: self.max_cpu.as_ref().map(cpu_millis).transpose()?,
            max_memory_mib: self
                .max_memory
                .as_ref()
                .map(|q| size_mib("max-memory", q))
                .transpose()?,
            max_disk_mib: self
                .max_disk
                .as_ref()
                .map(|q| size_mib("max-disk", q))
                .transpose()?,
        })
    }
}

fn shown(q: &Quantity) -> String {
    match q {
        Quantity::Number(n) => n.to_string(),
        Quantity::Text(s) => format!("{s:?}"),
    }
}

fn cpu_millis(q: &Quantity) -> Result<u64, String> {
    let millis = match q {
        Quantity::Number(n) => Some(n * 1000.0),
        Quantity::Text(s) => match s.trim().strip_suffix('m') {
            Some(m) => m.trim().parse::<f64>().ok(),
            None => s.trim().parse::<f64>().ok().map(|c| c * 1000.0),
        },
    };
    match millis {
        Some(m) if m.is_finite() && (0.0..=1e9).contains(&m) => Ok(m.round() as u64),
        _ => Err(format!(
            "max-cpu {} is invalid: give cores (like 4 or 0.5) or millicores (like \"4000m\")",
            shown(q)
        )),
    }
}

fn size_mib(what: &str, q: &Quantity) -> Result<u64, String> {
    let bad = || {
        format!(
            "{what} {} is invalid: give MiB (like 2048) or a size (like \"2Gi\")",
            shown(q)
        )
    };
    let mib = match q {
        Quantity::Number(n) => *n,
        Quantity::Text(s) => {
            let t = s.trim();
            let split = t
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(t.len());
            let (num, unit) = t.split_at(split);
            let n: f64 = num.parse().map_err(|_| bad())?;
            let factor = match unit.trim() {
                "" | "Mi" | "MiB" => 1.0,
                "Gi" | "GiB" => 1024.0,
                "Ti" | "TiB" => 1024.0 * 1024.0,
                "M" | "MB" => 1e6 / 1048576.0,
                "G" | "GB" => 1e9 / 1048576.0,
                "T" | "TB" => 1e12 / 1048576.0,
                _ => return Err(bad()),
            };
            n * factor
        }
    };
    if !mib.is_finite() || !(0.0..=1e12).contains(&mib) {
        return Err(bad());
    }
    Ok(mib.round() as u64)
}

/// What a workspace holds now: its starting, running and stopping pods, with the cpu, memory
/// and disk they asked for (or the defaults).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceUsage {
    pub pods: u64,
    pub cpu_millis: u64,
    pub memory_mib: u64,
    pub disk_mib: u64,
}

/// A workspace as `GET /v1/workspaces` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceInfo {
    pub name: String,
    /// The limits in force: those set on it, else the daemon's defaults (none for `default`).
    pub limits: WorkspaceLimits,
    pub usage: WorkspaceUsage,
    /// Its tokens.
    pub tokens: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_and_name_the_bad_field() {
        let req = SetLimitsRequest {
            max_pods: Some(5),
            max_cpu: Some(Quantity::Number(2.5)),
            max_memory: Some("2Gi".into()),
            max_disk: Some(Quantity::Number(100.0)),
        };
        let l = req.validate().unwrap();
        assert_eq!(l.max_cpu_millis, Some(2500));
        assert_eq!(l.max_memory_mib, Some(2048));
        assert_eq!(l.max_disk_mib, Some(100));
        let bad = SetLimitsRequest {
            max_memory: Some("lots".into()),
            ..Default::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .starts_with("max-memory \"lots\""));
        let bad = SetLimitsRequest {
            max_cpu: Some(Quantity::Number(-1.0)),
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().starts_with("max-cpu -1"));
        let set = WorkspaceLimits {
            max_pods: Some(1),
            ..Default::default()
        };
        let dflt = WorkspaceLimits {
            max_pods: Some(9),
            max_cpu_millis: Some(8),
            ..Default::default()
        };
        assert_eq!(set.or(dflt).max_pods, Some(1));
        assert_eq!(set.or(dflt).max_cpu_millis, Some(8));
    }
}
