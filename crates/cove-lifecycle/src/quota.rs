//! Workspace limits: the limits in force for a workspace, the admission of every new container
//! (pod create, deployment version, start and wake), and the workspace views.
//!
//! The store counts what a workspace holds and records the new container in one transaction,
//! so concurrent creates cannot pass a limit together; a cheap check without recording runs
//! first, so a create over a limit fails before pulling anything.

use cove_store::{Admission, Limits};
use cove_types::{
    validate_workspace, SetLimitsRequest, ValidPodSpec, WorkspaceInfo, WorkspaceLimits,
    WorkspaceUsage, DEFAULT_WORKSPACE,
};

use crate::{Lifecycle, LifecycleError};

/// The daemon's quota settings.
#[derive(Debug, Clone, Default)]
pub struct QuotaConfig {
    /// Limits of a workspace other than `default` where none is set on it (`--workspace-max-*`).
    pub workspace_defaults: WorkspaceLimits,
    /// At most this many live containers of all workspaces but `default` together: the rest
    /// of the address pool is kept for the admin. `None`: unchecked.
    pub shared_pods_max: Option<u64>,
}

/// The store's form of limits.
pub fn store_limits(l: &WorkspaceLimits) -> Limits {
    Limits {
        max_pods: l.max_pods,
        max_cpu_millis: l.max_cpu_millis,
        max_memory_mib: l.max_memory_mib,
        max_disk_mib: l.max_disk_mib,
    }
}

fn wire_limits(l: &Limits) -> WorkspaceLimits {
    WorkspaceLimits {
        max_pods: l.max_pods,
        max_cpu_millis: l.max_cpu_millis,
        max_memory_mib: l.max_memory_mib,
        max_disk_mib: l.max_disk_mib,
    }
}

impl Lifecycle {
    /// The limits in force for `workspace`: those set on it, the others the daemon's defaults
    /// (for `default`, the admin's, only those set on it).
    async fn limits_in_force(&self, workspace: &str) -> Result<WorkspaceLimits, LifecycleError> {
        let set = wire_limits(&self.inner.store.workspace_limits(workspace).await?);
        if workspace == DEFAULT_WORKSPACE {
            return Ok(set);
        }
        Ok(set.or(self.inner.cfg.quota.workspace_defaults))
    }

    /// What admitting one more container of `workspace` running `spec` checks.
    pub(crate) async fn admission(
        &self,
        workspace: &str,
        spec: &ValidPodSpec,
    ) -> Result<Admission, LifecycleError> {
        let default_disk = self.inner.cfg.default_disk_mib.unwrap_or(0);
        Ok(Admission {
            workspace: workspace.to_string(),
            limits: store_limits(&self.limits_in_force(workspace).await?),
            cpu_millis: spec.cpu_millis,
            memory_mib: spec.memory_mib,
            disk_mib: spec.disk_mib.unwrap_or(default_disk),
            default_disk_mib: default_disk,
            shared_pods_max: (workspace != DEFAULT_WORKSPACE)
                .then_some(self.inner.cfg.quota.shared_pods_max)
                .flatten(),
        })
    }

    /// Refuses early (recording nothing) a container `workspace` has no room for.
    pub(crate) async fn precheck(
        &self,
        workspace: &str,
        spec: &ValidPodSpec,
    ) -> Result<Admission, LifecycleError> {
        let a = self.admission(workspace, spec).await?;
        self.inner.store.check_admission(&a).await?;
        Ok(a)
    }

    /// Every workspace with a token, a pod or limits (and `default`): limits in force, usage.
    pub async fn workspaces(&self) -> Result<Vec<WorkspaceInfo>, LifecycleError> {
        let mut names = self.inner.store.workspaces().await?;
        if !names.iter().any(|(n, _)| n == DEFAULT_WORKSPACE) {
            names.push((DEFAULT_WORKSPACE.to_string(), 0));
            names.sort();
        }
        let mut out = Vec::with_capacity(names.len());
        for (name, tokens) in names {
            out.push(self.workspace_info(name, tokens).await?);
        }
        Ok(out)
    }

    async fn workspace_info(
        &self,
        name: String,
        tokens: u64,
    ) -> Result<WorkspaceInfo, LifecycleError> {
        let u = self
            .inner
            .store
            .workspace_usage(&name, self.inner.cfg.default_disk_mib.unwrap_or(0))
            .await?;
        Ok(WorkspaceInfo {
            limits: self.limits_in_force(&name).await?,
            usage: WorkspaceUsage {
                pods: u.pods,
                cpu_millis: u.cpu_millis,
                memory_mib: u.memory_mib,
                disk_mib: u.disk_mib,
            },
            name,
            tokens,
        })
    }

    /// Sets the limits `req` gives on workspace `name` (the others keep their value). Pods
    /// running stay; the limits apply to the next container.
    pub async fn set_workspace_limits(
        &self,
        name: &str,
        req: &SetLimitsRequest,
    ) -> Result<WorkspaceInfo, LifecycleError> {
        validate_workspace(name).map_err(LifecycleError::BadRequest)?;
        let limits = req.validate().map_err(LifecycleError::BadRequest)?;
        if limits.is_empty() {
            return Err(LifecycleError::BadRequest(
                "no limit given: set max_pods, max_cpu, max_memory or max_disk".into(),
            ));
        }
        self.inner
            .store
            .set_workspace_limits(name, &store_limits(&limits))
            .await?;
        tracing::info!(workspace = name, ?limits, "workspace limits set");
        let tokens = self
            .inner
            .store
            .workspaces()
            .await?
            .into_iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, t)| t);
        self.workspace_info(name.to_string(), tokens).await
    }
}
