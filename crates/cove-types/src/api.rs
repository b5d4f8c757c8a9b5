//! Request and response bodies of the HTTP API (`/v1/...`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Quantity;

/// `POST /v1/pods`: launch a pod (a stub and its first container).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePodRequest {
    /// Image reference, e.g. `127.0.0.1:5000/busybox:latest`. Pulled if not local.
    pub image: String,
    /// Ports the pod listens on; each is served at its own URL.
    #[serde(default)]
    pub ports: Vec<i64>,
    /// Cores: a number (`0.5`, `2`) or millicores (`"1000m"`). Default 1.
    #[serde(default)]
    pub cpu: Option<Quantity>,
    /// MiB as a number (`128`) or a size (`"512Mi"`, `"1Gi"`). Default 128.
    #[serde(default)]
    pub memory: Option<Quantity>,
    /// Largest size of the pod's writable layer: MiB as a number (`1024`) or a size
    /// (`"1Gi"`); writes past it fail with "No space left on device". Default: the daemon's
    /// `--default-disk` (off: unlimited).
    #[serde(default)]
    pub disk: Option<Quantity>,
    /// Largest size of one file of the pod's log (stdout and stderr): MiB as a number (`10`)
    /// or a size (`"512Ki"`, `"20Mi"`), 64 KiB to 1 TiB. When the current file would grow past
    /// it, it is rotated. Default: the daemon's `--log-max-size` (10 MiB).
    #[serde(default)]
    pub log_max_size: Option<Quantity>,
    /// How many log files are kept, the current one included (1 to 100); older output is
    /// dropped. Default: the daemon's `--log-max-files` (3).
    #[serde(default)]
    pub log_max_files: Option<i64>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Command and arguments; defaults to the image's entrypoint and cmd.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub name: Option<String>,
    /// Seconds without connections before the pod stops; -1 never. Default 600.
    #[serde(default)]
    pub keep_warm_seconds: Option<i64>,
    /// Working directory; defaults to the image's.
    #[serde(default)]
    pub workdir: Option<String>,
    /// No outbound connections at all; requests through the gateway still reach the pod.
    #[serde(default)]
    pub block_network: bool,
    /// Only these destinations may be reached (`10.0.0.0/8`, `1.2.3.4/32`, `2001:db8::/32`;
    /// at most 256). Empty: anywhere. Not together with `block_network`.
    #[serde(default)]
    pub allow_list: Vec<String>,
    /// Registry credentials for pulling the image, if it is not local.
    #[serde(default)]
    pub registry_auth: Option<RegistryAuth>,
    /// `"runc"` or `"gvisor"` (gVisor's runsc: the pod's system calls go to gVisor's own
    /// kernel, not the host's). Default: the daemon's `--default-isolation`.
    #[serde(default)]
    pub isolation: Option<String>,
    /// Serve the pod's ports only to requests with a token of its workspace (or the admin
    /// token), as `Authorization: Bearer <token>` or `?auth_token=<token>`; the gateway
    /// removes the token before the pod sees the request.
    #[serde(default)]
    pub authorized: bool,
}

/// Basic credentials for a registry (the registry may exchange them for a bearer token).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContainerStatus {
    /// Being created.
    Pending,
    Running,
    /// SIGTERM sent, waiting for it to end.
    Stopping,
    /// Stopped by a user or for idleness.
    Stopped,
    /// The entrypoint ended on its own.
    Exited,
    /// Killed for exceeding its memory limit.
    OomKilled,
    /// Could not be started or was lost.
    Failed,
}

impl ContainerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Stopping => "STOPPING",
            Self::Stopped => "STOPPED",
            Self::Exited => "EXITED",
            Self::OomKilled => "OOM_KILLED",
            Self::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "PENDING" => Self::Pending,
            "RUNNING" => Self::Running,
            "STOPPING" => Self::Stopping,
            "STOPPED" => Self::Stopped,
            "EXITED" => Self::Exited,
            "OOM_KILLED" => Self::OomKilled,
            "FAILED" => Self::Failed,
            _ => return None,
        })
    }

    /// Whether the container's processes may still exist.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Pending | Self::Running | Self::Stopping)
    }
}

/// One port of a pod and the URL it is served at.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PortUrl {
    pub port: u16,
    pub url: String,
}

/// A container as the API and `cove container list` show it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Container {
    /// `pod-<stub uuid>-<8 hex>`.
    pub id: String,
    pub status: ContainerStatus,
    /// The pod (stub) this container runs.
    pub stub_id: String,
    pub deployment_id: Option<String>,
    pub name: Option<String>,
    pub image: String,
    /// Unix milliseconds.
    pub scheduled_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub exit_code: Option<i32>,
    /// Why it ended: `exited`, `oom_killed`, `stopped by user`, `idle for 300s`, ...
    pub reason: Option<String>,
    pub address: Option<String>,
    pub cpu_millis: u64,
    pub memory_mib: u64,
    pub keep_warm_seconds: i64,
    pub urls: Vec<PortUrl>,
    /// The runtime isolating it: `runc` or `gvisor`.
    #[serde(default)]
    pub isolation: crate::Isolation,
    /// Its egress is blocked (see `PUT /v1/containers/{id}/egress`).
    #[serde(default)]
    pub block_network: bool,
    /// The only destinations its egress may reach; empty when not restricted to a list.
    #[serde(default)]
    pub allow_list: Vec<String>,
    /// The workspace it belongs to.
    #[serde(default)]
    pub workspace: String,
    /// Whether its URLs need a token of its workspace.
    #[serde(default)]
    pub authorized: bool,
}

/// `POST /v1/pods` response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatePodResponse {
    pub container: Container,
}

/// One line of a streamed create (`POST /v1/pods` with
/// `Accept: application/x-ndjson`): progress lines, then either the container
/// or an error (with the HTTP status it would have had).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreateEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// `POST /v1/containers/{id}/exec`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub workdir: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExecResponse {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// An image in the daemon's store.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImageInfo {
    pub reference: String,
    /// Digest of the manifest.
    pub digest: String,
    /// Digest of the image config (the image id).
    pub config_digest: String,
    /// Sum of the compressed layer sizes, in bytes.
    pub size: u64,
    pub layers: usize,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// `POST /v1/images/pull`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PullRequest {
    pub reference: String,
    #[serde(default)]
    pub auth: Option<RegistryAuth>,
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

/// `GET /v1/info`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DaemonInfo {
    pub version: String,
    pub domain: String,
    pub gateway_url: String,
    pub gateway_tls_url: Option<String>,
    pub runtime: String,
}

/// `POST /v1/images/build`: an image made from `base_image` by running
/// `steps` in order, each in a container on top of the previous result.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildRequest {
    /// Image to start from; pulled if not local. Builds are keyed by its digest.
    pub base_image: String,
    #[serde(default)]
    pub steps: Vec<BuildStep>,
    /// Set while the steps run and kept in the image's config.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Registry credentials for pulling the base image, if it is not local
    /// (not part of the build's identity).
    #[serde(default)]
    pub registry_auth: Option<RegistryAuth>,
}

/// One build step; each becomes one layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum BuildStep {
    /// Shell commands (`/bin/sh -c`), run one after the other.
    Commands(Vec<String>),
    /// `python3 -m pip install` of these requirement specifiers.
    PythonPackages(Vec<String>),
    /// Checks that the image has `python3` of this version (`3.11` or `python3.11`; any if empty).
    PythonVersion(String),
    /// Unpacks a tar uploaded with `POST /v1/images/build/context` into a directory.
    LocalPath(LocalPathStep),
}

/// Files for a [`BuildStep::LocalPath`] step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalPathStep {
    /// `sha256:<hex>` of the uploaded tar (so the build's identity covers its content).
    pub archive: String,
    /// Absolute directory in the image the tar's entries are unpacked under.
    pub remote: String,
}

/// `POST /v1/images/build/context`: the stored upload.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BuildContext {
    /// `sha256:<hex>` of the tar, for [`LocalPathStep::archive`].
    pub digest: String,
    pub size: u64,
}

impl BuildRequest {
    /// Refuses what cannot be built: an empty base, an empty step or command.
    pub fn validate(&self) -> Result<(), String> {
        if self.base_image.trim().is_empty() {
            return Err("base_image must not be empty".into());
        }
        for (i, step) in self.steps.iter().enumerate() {
            let bad = match step {
                BuildStep::Commands(c) if c.is_empty() => Some("has no commands"),
                BuildStep::Commands(c) if c.iter().any(|c| c.trim().is_empty()) => {
                    Some("has an empty command")
                }
                BuildStep::PythonPackages(p) if p.is_empty() => Some("has no packages"),
                BuildStep::PythonPackages(p)
                    if p.iter().any(|p| p.trim().is_empty() || p.starts_with('-')) =>
                {
                    Some("has an empty package or an option instead of a package")
                }
                BuildStep::PythonVersion(v)
                    if !python_version_number(v)
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == '.') =>
                {
                    Some("has a python version that is not like 3.11 or python3.11")
                }
                BuildStep::LocalPath(l) if !is_sha256(&l.archive) => {
                    Some("has an archive that is not sha256:<64 hex>")
                }
                BuildStep::LocalPath(l)
                    if !l.remote.starts_with('/') || l.remote.split('/').any(|c| c == "..") =>
                {
                    Some("has a remote path that is not absolute or contains '..'")
                }
                _ => None,
            };
            if let Some(why) = bad {
                return Err(format!("step {} {why}", i + 1));
            }
        }
        for k in self.env.keys() {
            if k.is_empty() || k.contains('=') {
                return Err(format!("env name {k:?} is empty or contains '='"));
            }
        }
        Ok(())
    }
}

fn is_sha256(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// The number in a build's python version: `"python3.11"` and `"3.11"` → `"3.11"`.
pub fn python_version_number(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix("python").unwrap_or(v)
}

/// One line of the `POST /v1/images/build` stream.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BuildEvent {
    /// What the daemon is doing (`Building image`, `Using cached image`, `Step 1/2: ...`).
    Progress(String),
    /// A line of a step's output.
    Log(String),
    /// The built image (last line).
    Image(ImageInfo),
}

#[cfg(test)]
mod build_tests {
    use super::*;

    #[test]
    fn build_requests_are_validated() {
        let req = |steps: Vec<BuildStep>| BuildRequest {
            base_image: "b".into(),
            steps,
            ..Default::default()
        };
        assert!(req(vec![BuildStep::PythonVersion("python3.11".into())])
            .validate()
            .is_ok());
        let bad = [
            BuildStep::Commands(vec![]),
            BuildStep::Commands(vec![" ".into()]),
            BuildStep::PythonPackages(vec!["--index-url=x".into()]),
            BuildStep::PythonVersion("3.11; rm".into()),
        ];
        for step in bad {
            assert!(req(vec![step.clone()]).validate().is_err(), "{step:?}");
        }
        let mut r = req(vec![]);
        r.base_image = " ".into();
        assert!(r.validate().is_err());
        let step: BuildStep = serde_json::from_str(r#"{"python_packages":["six==1"]}"#).unwrap();
        assert_eq!(step, BuildStep::PythonPackages(vec!["six==1".into()]));
    }
}
