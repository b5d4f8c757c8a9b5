//! [`EtcdStore`]: the [`ClusterStore`] of a cluster, rows as JSON in etcd.
//!
//! Each method is one atomic change: rows and their index keys are written in one
//! transaction whose compares make a taken id or name record nothing (`create_revision ==
//! 0`), an update a read-modify-write retried while another writer gets in between
//! (`mod_revision` unchanged), and an admitted insert checked and recorded at one revision
//! (`admission.rs`). Lists come back in the SQLite backend's order.

use std::collections::HashSet;

use async_trait::async_trait;

use super::client::{Etcd, EtcdConfig};
use super::{deployments, images, pods, tokens, workspaces};
use crate::{
    Admission, BuildRow, ClusterStore, ContainerRow, DeploymentRow, ImageRow, Limits, PodRow,
    StoreError, TokenRow, Usage,
};

/// The cluster store on etcd; cheap to clone.
#[derive(Clone)]
pub struct EtcdStore {
    etcd: Etcd,
}

impl EtcdStore {
    /// Connects to the members (see [`Etcd::connect`]).
    pub async fn connect(config: EtcdConfig) -> Result<EtcdStore, StoreError> {
        Ok(EtcdStore::new(Etcd::connect(config).await?))
    }

    /// The store on an existing connection (shared with membership, bindings, watches).
    pub fn new(etcd: Etcd) -> EtcdStore {
        EtcdStore { etcd }
    }

    pub fn etcd(&self) -> &Etcd {
        &self.etcd
    }

    /// Deletes every key under this store's root (a test's, or a cluster torn down);
    /// returns how many there were.
    pub async fn clear(&self) -> Result<i64, StoreError> {
        let root = self.etcd.keys().root().to_string();
        let resp = self
            .etcd
            .call(|mut c| {
                let root = root.clone();
                let options = etcd_client::DeleteOptions::new().with_prefix();
                async move { c.delete(root, Some(options)).await }
            })
            .await?;
        Ok(resp.deleted())
    }
}

#[async_trait]
impl ClusterStore for EtcdStore {
    async fn insert_pod(
        &self,
        pod: &PodRow,
        ctr: &ContainerRow,
        admit: Option<&Admission>,
    ) -> Result<(), StoreError> {
        pods::insert_pod(&self.etcd, pod, ctr, admit).await
    }
    async fn insert_container(
        &self,
        ctr: &ContainerRow,
        admit: Option<&Admission>,
    ) -> Result<(), StoreError> {
        pods::insert_container(&self.etcd, ctr, admit).await
    }
    async fn get_pod(&self, id: &str) -> Result<Option<PodRow>, StoreError> {
        pods::get_pod(&self.etcd, id).await
    }
    async fn delete_pod(&self, id: &str) -> Result<(), StoreError> {
        pods::delete_pod(&self.etcd, id).await
    }
    async fn set_pod_spec(&self, id: &str, spec_json: &str) -> Result<bool, StoreError> {
        pods::set_pod_spec(&self.etcd, id, spec_json).await
    }
    async fn get_container(&self, id: &str) -> Result<Option<ContainerRow>, StoreError> {
        pods::get_container(&self.etcd, id).await
    }
    async fn list_containers(&self) -> Result<Vec<ContainerRow>, StoreError> {
        pods::list_containers(&self.etcd).await
    }
    async fn live_containers(&self) -> Result<Vec<ContainerRow>, StoreError> {
        pods::live_containers(&self.etcd).await
    }
    async fn set_running(
        &self,
        id: &str,
        address: &str,
        shim_pid: i32,
        started_at: i64,
    ) -> Result<(), StoreError> {
        pods::update_container(&self.etcd, id, |c| {
            c.status = "RUNNING".into();
            c.address = Some(address.into());
            c.shim_pid = Some(shim_pid);
            c.started_at = Some(started_at);
        })
        .await
    }
    async fn set_status(
        &self,
        id: &str,
        status: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        pods::update_container(&self.etcd, id, |c| {
            c.status = status.into();
            if let Some(r) = reason {
                c.reason = Some(r.into());
            }
        })
        .await
    }
    async fn set_finished(
        &self,
        id: &str,
        status: &str,
        exit_code: Option<i32>,
        reason: Option<&str>,
        ended_at: i64,
    ) -> Result<(), StoreError> {
        pods::update_container(&self.etcd, id, |c| {
            c.status = status.into();
            c.exit_code = exit_code;
            if let Some(r) = reason {
                c.reason = Some(r.into());
            }
            c.ended_at = Some(ended_at);
        })
        .await
    }
    async fn set_last_active(&self, id: &str, at: i64) -> Result<(), StoreError> {
        pods::update_container(&self.etcd, id, |c| c.last_active_at = Some(at)).await
    }
    async fn insert_deployment(
        &self,
        dep: &DeploymentRow,
        pod: &PodRow,
        ctr: &ContainerRow,
        admit: Option<&Admission>,
    ) -> Result<(), StoreError> {
        deployments::insert(&self.etcd, dep, pod, ctr, admit).await
    }
    async fn set_deployment_version(
        &self,
        id: &str,
        version: i64,
        pod_id: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        deployments::update(&self.etcd, id, |d| {
            d.version = version;
            d.pod_id = Some(pod_id.into());
            d.updated_at = at;
        })
        .await
    }
    async fn set_deployment_status(
        &self,
        id: &str,
        status: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        deployments::update(&self.etcd, id, |d| {
            d.status = status.into();
            d.updated_at = at;
        })
        .await
    }
    async fn get_deployment(&self, id: &str) -> Result<Option<DeploymentRow>, StoreError> {
        deployments::get(&self.etcd, id).await
    }
    async fn get_deployment_by_name(
        &self,
        name: &str,
    ) -> Result<Option<DeploymentRow>, StoreError> {
        deployments::get_by_name(&self.etcd, name).await
    }
    async fn list_deployments(&self) -> Result<Vec<DeploymentRow>, StoreError> {
        deployments::list(&self.etcd).await
    }
    async fn deployment_versions(
        &self,
        dep_id: &str,
        current_pod: Option<&str>,
    ) -> Result<Vec<PodRow>, StoreError> {
        deployments::versions(&self.etcd, dep_id, current_pod).await
    }
    async fn delete_deployment(&self, id: &str) -> Result<(), StoreError> {
        deployments::delete(&self.etcd, id).await
    }
    async fn get_build(&self, hash: &str) -> Result<Option<BuildRow>, StoreError> {
        images::get_build(&self.etcd, hash).await
    }
    async fn put_build(&self, hash: &str, image_reference: &str) -> Result<(), StoreError> {
        images::put_build(&self.etcd, hash, image_reference).await
    }
    async fn delete_build(&self, hash: &str) -> Result<bool, StoreError> {
        images::delete_build(&self.etcd, hash).await
    }
    async fn list_builds(&self) -> Result<Vec<BuildRow>, StoreError> {
        images::list_builds(&self.etcd).await
    }
    async fn put_image(&self, row: &ImageRow) -> Result<(), StoreError> {
        images::put_image(&self.etcd, row).await
    }
    async fn get_image(&self, reference: &str) -> Result<Option<ImageRow>, StoreError> {
        images::get_image(&self.etcd, reference).await
    }
    async fn list_images(&self) -> Result<Vec<ImageRow>, StoreError> {
        images::list_images(&self.etcd).await
    }
    async fn delete_image(&self, reference: &str) -> Result<bool, StoreError> {
        images::delete_image(&self.etcd, reference).await
    }
    async fn add_image_ref(&self, workspace: &str, reference: &str) -> Result<(), StoreError> {
        images::add_ref(&self.etcd, workspace, reference).await
    }
    async fn has_image_ref(&self, workspace: &str, reference: &str) -> Result<bool, StoreError> {
        images::has_ref(&self.etcd, workspace, reference).await
    }
    async fn image_refs_of(&self, workspace: &str) -> Result<HashSet<String>, StoreError> {
        images::refs_of(&self.etcd, workspace).await
    }
    async fn image_ref_holders(&self, reference: &str) -> Result<i64, StoreError> {
        images::holders(&self.etcd, reference).await
    }
    async fn remove_image_ref(
        &self,
        workspace: Option<&str>,
        reference: &str,
    ) -> Result<(), StoreError> {
        images::remove_ref(&self.etcd, workspace, reference).await
    }
    async fn insert_token(
        &self,
        row: &TokenRow,
        limits: Option<&Limits>,
    ) -> Result<(), StoreError> {
        tokens::insert(&self.etcd, row, limits).await
    }
    async fn token_name_taken(&self, name: &str) -> Result<bool, StoreError> {
        tokens::name_taken(&self.etcd, name).await
    }
    async fn list_tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        tokens::list(&self.etcd).await
    }
    async fn delete_token(&self, id_or_name: &str) -> Result<Option<TokenRow>, StoreError> {
        tokens::delete(&self.etcd, id_or_name).await
    }
    async fn set_token_used(&self, id: &str, at: i64) -> Result<(), StoreError> {
        tokens::set_used(&self.etcd, id, at).await
    }
    async fn workspace_limits(&self, workspace: &str) -> Result<Limits, StoreError> {
        workspaces::limits(&self.etcd, workspace).await
    }
    async fn set_workspace_limits(
        &self,
        workspace: &str,
        limits: &Limits,
    ) -> Result<(), StoreError> {
        workspaces::set_limits(&self.etcd, workspace, limits).await
    }
    async fn workspace_usage(
        &self,
        workspace: &str,
        default_disk_mib: u64,
    ) -> Result<Usage, StoreError> {
        workspaces::usage(&self.etcd, workspace, default_disk_mib).await
    }
    async fn check_admission(&self, a: &Admission) -> Result<(), StoreError> {
        workspaces::check(&self.etcd, a).await
    }
    async fn workspaces(&self) -> Result<Vec<(String, u64)>, StoreError> {
        workspaces::list(&self.etcd).await
    }
}
