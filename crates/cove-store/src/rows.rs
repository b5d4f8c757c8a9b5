//! The rows every backend stores, the same for SQLite and etcd (where each is a JSON value).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodRow {
    pub id: String,
    pub name: Option<String>,
    pub deployment_id: Option<String>,
    /// The validated spec, in the lifecycle crate's JSON form.
    pub spec_json: String,
    pub created_at: i64,
    /// The workspace it belongs to (`default` for rows made before workspaces).
    pub workspace: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRow {
    pub id: String,
    pub pod_id: String,
    /// A `ContainerStatus` name, e.g. `RUNNING`.
    pub status: String,
    pub image: String,
    pub address: Option<String>,
    pub shim_pid: Option<i32>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub scheduled_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub last_active_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRow {
    pub id: String,
    pub name: String,
    /// `<name>-<8 hex>`, fixed at creation.
    pub url_key: String,
    pub version: i64,
    /// The pod serving the current version.
    pub pod_id: Option<String>,
    /// `ACTIVE` or `STOPPED`.
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// The workspace it belongs to.
    pub workspace: String,
}

/// One workspace token. `hash` is the sha256 hex of its secret; the secret is never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub workspace: String,
    pub hash: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// An image reference and what it resolved to. The JSON columns are the image
/// crate's own formats; the store keeps them opaque.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRow {
    pub reference: String,
    pub digest: String,
    pub config_digest: String,
    pub manifest_json: String,
    pub config_json: String,
    pub layers_json: String,
    pub size: u64,
    pub created_at: i64,
}

/// One cached build step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRow {
    /// sha256 hex of the base image's digest and the steps up to this one.
    pub hash: String,
    pub image_reference: String,
    pub created_at: i64,
}
