//! Deployments: a named pod kept behind a stable URL, scaled to zero when idle and woken by
//! the next request. `POST /v1/deployments` takes a [`CreatePodRequest`](crate::CreatePodRequest)
//! whose `name` is required.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{Container, PortUrl};

/// Longest deployment name: `<name>-<8 hex>-<port>` must fit in one DNS label, and the
/// gateway accepts keys of at most 56 bytes.
pub const MAX_DEPLOYMENT_NAME_LEN: usize = 47;

/// Whether a deployment answers requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentStatus {
    /// Serving; a request wakes it when it has no container.
    Active,
    /// Stopped by a user: requests get 503 until it is started again.
    Stopped,
}

impl DeploymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Stopped => "STOPPED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ACTIVE" => Some(Self::Active),
            "STOPPED" => Some(Self::Stopped),
            _ => None,
        }
    }
}

/// A deployment as the API and `cove deployment list` show it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Deployment {
    pub id: String,
    pub name: String,
    /// `<name>-<8 hex>`: the stable part of its URLs, fixed at creation.
    pub url_key: String,
    /// 1 for the first deploy, one more for each later one.
    pub version: i64,
    pub status: DeploymentStatus,
    /// The pod (stub) of the current version.
    pub stub_id: String,
    /// The current version's live container, if it is awake.
    pub container: Option<Container>,
    /// `<scheme>://<url_key>-<port>.<domain>` for each port.
    pub urls: Vec<PortUrl>,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// The workspace it belongs to.
    #[serde(default)]
    pub workspace: String,
}

/// One line of a streamed `POST /v1/deployments` (with `Accept: application/x-ndjson`):
/// `{"progress": "..."}` lines, then `{"deployment": {...}}` or `{"error": "...", "status": N}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct DeployEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<Deployment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The HTTP status the error would have had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// One version of a deployment (`GET /v1/deployments/{name}/versions`, oldest first).
/// Each deploy or rollback adds one; the kept versions are what a rollback can return to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeploymentVersion {
    /// 1 for the first deploy, one more for each later one.
    pub version: i64,
    /// The pod (stub) of this version.
    pub stub_id: String,
    /// The image it runs.
    pub image: String,
    pub ports: Vec<u16>,
    /// Its entrypoint; empty means the image's own.
    pub entrypoint: Vec<String>,
    /// Whether this is the version the deployment serves.
    pub current: bool,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// `POST /v1/deployments/{name}/rollback`: deploy an earlier version's spec again, as a
/// new version.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The version to return to; default: the one before the current version.
    #[serde(default)]
    pub version: Option<i64>,
}
