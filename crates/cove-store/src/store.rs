//! [`ClusterStore`]: everything the daemon keeps, behind one trait with one backend per
//! deployment shape — SQLite on one host ([`crate::SqliteStore`]), etcd for a cluster.
//!
//! Every method is async (a cluster backend answers over the network) and object safe, so
//! callers hold a [`StoreHandle`]. Each method is one atomic change: a backend never leaves
//! half of a call recorded. [`crate::conformance`] (feature `conformance`) checks a backend
//! against these contracts.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    Admission, BuildRow, ContainerRow, DeploymentRow, ImageRow, Limits, PodRow, StoreError,
    TokenRow, Usage,
};

/// The store as callers hold it: cheap to clone, shared by every task.
pub type StoreHandle = Arc<dyn ClusterStore>;

/// The daemon's state. Statuses are `ContainerStatus` names (`PENDING`, `RUNNING`,
/// `STOPPING` are live); times are milliseconds since the Unix epoch.
#[async_trait]
pub trait ClusterStore: Send + Sync {
    // Pods and containers.

    /// Records a new pod and its first container together, if `admit` (when given) lets the
    /// container in; the check and the insert are atomic. A taken pod id records nothing.
    async fn insert_pod(
        &self,
        pod: &PodRow,
        ctr: &ContainerRow,
        admit: Option<&Admission>,
    ) -> Result<(), StoreError>;
    /// Records another container of an existing pod, if `admit` (when given) lets it in.
    async fn insert_container(
        &self,
        ctr: &ContainerRow,
        admit: Option<&Admission>,
    ) -> Result<(), StoreError>;
    async fn get_pod(&self, id: &str) -> Result<Option<PodRow>, StoreError>;
    /// Removes a pod and its containers (to undo a failed create).
    async fn delete_pod(&self, id: &str) -> Result<(), StoreError>;
    /// Replaces pod `id`'s `spec_json`; returns whether the pod exists.
    async fn set_pod_spec(&self, id: &str, spec_json: &str) -> Result<bool, StoreError>;
    async fn get_container(&self, id: &str) -> Result<Option<ContainerRow>, StoreError>;
    /// Every container, newest (`scheduled_at`) first.
    async fn list_containers(&self) -> Result<Vec<ContainerRow>, StoreError>;
    /// Containers whose processes may still exist (live statuses), oldest first.
    async fn live_containers(&self) -> Result<Vec<ContainerRow>, StoreError>;
    /// Marks a container RUNNING at `address`, watched through `shim_pid`.
    async fn set_running(
        &self,
        id: &str,
        address: &str,
        shim_pid: i32,
        started_at: i64,
    ) -> Result<(), StoreError>;
    /// Sets a container's status; `reason`, when given, replaces the stored one.
    async fn set_status(
        &self,
        id: &str,
        status: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Records a container's end: final status, exit code, reason (kept when `None`), time.
    async fn set_finished(
        &self,
        id: &str,
        status: &str,
        exit_code: Option<i32>,
        reason: Option<&str>,
        ended_at: i64,
    ) -> Result<(), StoreError>;
    /// Records when the last gateway connection to a container ended.
    async fn set_last_active(&self, id: &str, at: i64) -> Result<(), StoreError>;

    // Deployments: each version is a pod whose `deployment_id` is set.

    /// Records a deployment with its first version's pod and container, atomically (with
    /// `admit` when given). A taken name or url key records nothing.
    async fn insert_deployment(
        &self,
        dep: &DeploymentRow,
        pod: &PodRow,
        ctr: &ContainerRow,
        admit: Option<&Admission>,
    ) -> Result<(), StoreError>;
    /// Makes `pod_id` version `version` of deployment `id`.
    async fn set_deployment_version(
        &self,
        id: &str,
        version: i64,
        pod_id: &str,
        at: i64,
    ) -> Result<(), StoreError>;
    /// Sets a deployment's status (`ACTIVE` / `STOPPED`).
    async fn set_deployment_status(
        &self,
        id: &str,
        status: &str,
        at: i64,
    ) -> Result<(), StoreError>;
    async fn get_deployment(&self, id: &str) -> Result<Option<DeploymentRow>, StoreError>;
    async fn get_deployment_by_name(&self, name: &str)
        -> Result<Option<DeploymentRow>, StoreError>;
    /// Every deployment, by name.
    async fn list_deployments(&self) -> Result<Vec<DeploymentRow>, StoreError>;
    /// The pods of a deployment's versions, oldest first: each one with a container that
    /// started, and `current_pod`.
    async fn deployment_versions(
        &self,
        dep_id: &str,
        current_pod: Option<&str>,
    ) -> Result<Vec<PodRow>, StoreError>;
    /// Removes a deployment's row; its versions' pods and containers stay as history.
    async fn delete_deployment(&self, id: &str) -> Result<(), StoreError>;

    // Build cache.

    async fn get_build(&self, hash: &str) -> Result<Option<BuildRow>, StoreError>;
    /// Records (or replaces) the image made for `hash`.
    async fn put_build(&self, hash: &str, image_reference: &str) -> Result<(), StoreError>;
    /// Forgets `hash`; returns whether it existed.
    async fn delete_build(&self, hash: &str) -> Result<bool, StoreError>;
    /// Every cached step, oldest first.
    async fn list_builds(&self) -> Result<Vec<BuildRow>, StoreError>;

    // Images and which workspace holds which reference.

    /// Inserts or replaces the row for `row.reference`.
    async fn put_image(&self, row: &ImageRow) -> Result<(), StoreError>;
    async fn get_image(&self, reference: &str) -> Result<Option<ImageRow>, StoreError>;
    /// Every image, by reference.
    async fn list_images(&self) -> Result<Vec<ImageRow>, StoreError>;
    /// Removes a reference; returns whether it existed.
    async fn delete_image(&self, reference: &str) -> Result<bool, StoreError>;
    /// Records that `workspace` holds `reference` (idempotent).
    async fn add_image_ref(&self, workspace: &str, reference: &str) -> Result<(), StoreError>;
    async fn has_image_ref(&self, workspace: &str, reference: &str) -> Result<bool, StoreError>;
    async fn image_refs_of(&self, workspace: &str) -> Result<HashSet<String>, StoreError>;
    /// How many workspaces hold `reference`.
    async fn image_ref_holders(&self, reference: &str) -> Result<i64, StoreError>;
    /// Drops `workspace`'s hold on `reference` (every workspace's with `None`).
    async fn remove_image_ref(
        &self,
        workspace: Option<&str>,
        reference: &str,
    ) -> Result<(), StoreError>;

    // Tokens and workspaces.

    /// Records a token and, atomically with it, the `limits` given for its workspace. A taken
    /// name or hash records nothing.
    async fn insert_token(&self, row: &TokenRow, limits: Option<&Limits>)
        -> Result<(), StoreError>;
    async fn token_name_taken(&self, name: &str) -> Result<bool, StoreError>;
    /// Every token, by name.
    async fn list_tokens(&self) -> Result<Vec<TokenRow>, StoreError>;
    /// Removes the token whose id or name is `id_or_name`; returns it if it existed.
    async fn delete_token(&self, id_or_name: &str) -> Result<Option<TokenRow>, StoreError>;
    async fn set_token_used(&self, id: &str, at: i64) -> Result<(), StoreError>;
    /// The limits set on `workspace` (each `None` where none is set).
    async fn workspace_limits(&self, workspace: &str) -> Result<Limits, StoreError>;
    /// Sets the limits given in `limits`; those `None` keep their value.
    async fn set_workspace_limits(
        &self,
        workspace: &str,
        limits: &Limits,
    ) -> Result<(), StoreError>;
    /// What `workspace`'s live containers hold: each counts its pod's `cpu_millis`,
    /// `memory_mib` and `disk_mib` (from `spec_json`; `default_disk_mib` where it has none).
    async fn workspace_usage(
        &self,
        workspace: &str,
        default_disk_mib: u64,
    ) -> Result<Usage, StoreError>;
    /// Checks an admission without recording anything (an early refusal; the check that
    /// counts is the one made with the insert).
    async fn check_admission(&self, a: &Admission) -> Result<(), StoreError>;
    /// Every workspace that has a token, a pod or limits, by name, with its token count.
    async fn workspaces(&self) -> Result<Vec<(String, u64)>, StoreError>;
}
