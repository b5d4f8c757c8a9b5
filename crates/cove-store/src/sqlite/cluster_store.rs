//! [`ClusterStore`] for [`SqliteStore`]: each method is the synchronous call of the same
//! name (one statement or one transaction, no await inside, so no lock is held across one).

use std::collections::HashSet;

use async_trait::async_trait;

use crate::{
    Admission, BuildRow, ClusterStore, ContainerRow, DeploymentRow, ImageRow, Limits, PodRow,
    SqliteStore, StoreError, TokenRow, Usage,
};

#[async_trait]
impl ClusterStore for SqliteStore {
    async fn insert_pod(
        &self,
        pod: &PodRow,
        ctr: &ContainerRow,
        admit: Option<&Admission>,
    ) -> Result<(), StoreError> {
        SqliteStore::insert_pod(self, pod, ctr, admit)
    }
    async fn insert_container(
        &self,
        ctr: &ContainerRow,
        admit: Option<&Admission>,
    ) -> Result<(), StoreError> {
        SqliteStore::insert_container(self, ctr, admit)
    }
    async fn get_pod(&self, id: &str) -> Result<Option<PodRow>, StoreError> {
        SqliteStore::get_pod(self, id)
    }
    async fn delete_pod(&self, id: &str) -> Result<(), StoreError> {
        SqliteStore::delete_pod(self, id)
    }
    async fn set_pod_spec(&self, id: &str, spec_json: &str) -> Result<bool, StoreError> {
        SqliteStore::set_pod_spec(self, id, spec_json)
    }
    async fn get_container(&self, id: &str) -> Result<Option<ContainerRow>, StoreError> {
        SqliteStore::get_container(self, id)
    }
    async fn list_containers(&self) -> Result<Vec<ContainerRow>, StoreError> {
        SqliteStore::list_containers(self)
    }
    async fn live_containers(&self) -> Result<Vec<ContainerRow>, StoreError> {
        SqliteStore::live_containers(self)
    }
    async fn set_running(
        &self,
        id: &str,
        address: &str,
        shim_pid: i32,
        started_at: i64,
    ) -> Result<(), StoreError> {
        SqliteStore::set_running(self, id, address, shim_pid, started_at)
    }
    async fn set_status(
        &self,
        id: &str,
        status: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        SqliteStore::set_status(self, id, status, reason)
    }
    async fn set_finished(
        &self,
        id: &str,
        status: &str,
        exit_code: Option<i32>,
        reason: Option<&str>,
        ended_at: i64,
    ) -> Result<(), StoreError> {
        SqliteStore::set_finished(self, id, status, exit_code, reason, ended_at)
    }
    async fn set_last_active(&self, id: &str, at: i64) -> Result<(), StoreError> {
        SqliteStore::set_last_active(self, id, at)
    }
    async fn insert_deployment(
        &self,
        dep: &DeploymentRow,
        pod: &PodRow,
        ctr: &ContainerRow,
        admit: Option<&Admission>,
    ) -> Result<(), StoreError> {
        SqliteStore::insert_deployment(self, dep, pod, ctr, admit)
    }
    async fn set_deployment_version(
        &self,
        id: &str,
        version: i64,
        pod_id: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        SqliteStore::set_deployment_version(self, id, version, pod_id, at)
    }
    async fn set_deployment_status(
        &self,
        id: &str,
        status: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        SqliteStore::set_deployment_status(self, id, status, at)
    }
    async fn get_deployment(&self, id: &str) -> Result<Option<DeploymentRow>, StoreError> {
        SqliteStore::get_deployment(self, id)
    }
    async fn get_deployment_by_name(
        &self,
        name: &str,
    ) -> Result<Option<DeploymentRow>, StoreError> {
        SqliteStore::get_deployment_by_name(self, name)
    }
    async fn list_deployments(&self) -> Result<Vec<DeploymentRow>, StoreError> {
        SqliteStore::list_deployments(self)
    }
    async fn deployment_versions(
        &self,
        dep_id: &str,
        current_pod: Option<&str>,
    ) -> Result<Vec<PodRow>, StoreError> {
        SqliteStore::deployment_versions(self, dep_id, current_pod)
    }
    async fn delete_deployment(&self, id: &str) -> Result<(), StoreError> {
        SqliteStore::delete_deployment(self, id)
    }
    async fn get_build(&self, hash: &str) -> Result<Option<BuildRow>, StoreError> {
        SqliteStore::get_build(self, hash)
    }
    async fn put_build(&self, hash: &str, image_reference: &str) -> Result<(), StoreError> {
        SqliteStore::put_build(self, hash, image_reference)
    }
    async fn delete_build(&self, hash: &str) -> Result<bool, StoreError> {
        SqliteStore::delete_build(self, hash)
    }
    async fn list_builds(&self) -> Result<Vec<BuildRow>, StoreError> {
        SqliteStore::list_builds(self)
    }
    async fn put_image(&self, row: &ImageRow) -> Result<(), StoreError> {
        SqliteStore::put_image(self, row)
    }
    async fn get_image(&self, reference: &str) -> Result<Option<ImageRow>, StoreError> {
        SqliteStore::get_image(self, reference)
    }
    async fn list_images(&self) -> Result<Vec<ImageRow>, StoreError> {
        SqliteStore::list_images(self)
    }
    async fn delete_image(&self, reference: &str) -> Result<bool, StoreError> {
        SqliteStore::delete_image(self, reference)
    }
    async fn add_image_ref(&self, workspace: &str, reference: &str) -> Result<(), StoreError> {
        SqliteStore::add_image_ref(self, workspace, reference)
    }
    async fn has_image_ref(&self, workspace: &str, reference: &str) -> Result<bool, StoreError> {
        SqliteStore::has_image_ref(self, workspace, reference)
    }
    async fn image_refs_of(&self, workspace: &str) -> Result<HashSet<String>, StoreError> {
        SqliteStore::image_refs_of(self, workspace)
    }
    async fn image_ref_holders(&self, reference: &str) -> Result<i64, StoreError> {
        SqliteStore::image_ref_holders(self, reference)
    }
    async fn remove_image_ref(
        &self,
        workspace: Option<&str>,
        reference: &str,
    ) -> Result<(), StoreError> {
        SqliteStore::remove_image_ref(self, workspace, reference)
    }
    async fn insert_token(
        &self,
        row: &TokenRow,
        limits: Option<&Limits>,
    ) -> Result<(), StoreError> {
        SqliteStore::insert_token(self, row, limits)
    }
    async fn token_name_taken(&self, name: &str) -> Result<bool, StoreError> {
        SqliteStore::token_name_taken(self, name)
    }
    async fn list_tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        SqliteStore::list_tokens(self)
    }
    async fn delete_token(&self, id_or_name: &str) -> Result<Option<TokenRow>, StoreError> {
        SqliteStore::delete_token(self, id_or_name)
    }
    async fn set_token_used(&self, id: &str, at: i64) -> Result<(), StoreError> {
        SqliteStore::set_token_used(self, id, at)
    }
    async fn workspace_limits(&self, workspace: &str) -> Result<Limits, StoreError> {
        SqliteStore::workspace_limits(self, workspace)
    }
    async fn set_workspace_limits(
        &self,
        workspace: &str,
        limits: &Limits,
    ) -> Result<(), StoreError> {
        SqliteStore::set_workspace_limits(self, workspace, limits)
    }
    async fn workspace_usage(
        &self,
        workspace: &str,
        default_disk_mib: u64,
    ) -> Result<Usage, StoreError> {
        SqliteStore::workspace_usage(self, workspace, default_disk_mib)
    }
    async fn check_admission(&self, a: &Admission) -> Result<(), StoreError> {
        SqliteStore::check_admission(self, a)
    }
    async fn workspaces(&self) -> Result<Vec<(String, u64)>, StoreError> {
        SqliteStore::workspaces(self)
    }
}
