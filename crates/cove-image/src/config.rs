//! The parts of an image config (OCI or Docker) that Cove uses to run a container.

use serde::{Deserialize, Serialize};

use crate::ImageError;

/// How to start the image's process, from its config JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `KEY=value` strings, in image order.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    /// Ports from `ExposedPorts` (`"80/tcp"` → 80), sorted, deduplicated.
    pub exposed_ports: Vec<u16>,
}

/// The raw config JSON, as far as we read it.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub config: Option<RawRunConfig>,
    #[serde(default)]
    pub rootfs: Option<RawRootfs>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RawRunConfig {
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub exposed_ports: Option<std::collections::BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawRootfs {
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

impl RawConfig {
    pub fn parse(bytes: &[u8]) -> Result<RawConfig, ImageError> {
        serde_json::from_slice(bytes)
            .map_err(|e| ImageError::Invalid(format!("image config is not valid json: {e}")))
    }

    /// The layers' uncompressed digests, bottom first.
    pub fn diff_ids(&self) -> Vec<String> {
        self.rootfs
            .as_ref()
            .map(|r| r.diff_ids.clone())
            .unwrap_or_default()
    }

    pub fn image_config(&self) -> ImageConfig {
        let Some(c) = &self.config else {
            return ImageConfig::default();
        };
        let mut exposed_ports: Vec<u16> = c
            .exposed_ports
            .iter()
            .flat_map(|m| m.keys())
            .filter_map(|k| k.split('/').next()?.parse().ok())
            .collect();
        exposed_ports.sort_unstable();
        exposed_ports.dedup();
        let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        ImageConfig {
            entrypoint: c.entrypoint.clone().unwrap_or_default(),
            cmd: c.cmd.clone().unwrap_or_default(),
            env: c.env.clone().unwrap_or_default(),
            working_dir: non_empty(&c.working_dir),
            user: non_empty(&c.user),
            exposed_ports,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_style_config() {
        let json = br#"{"architecture":"amd64","os":"linux",
            "config":{"Entrypoint":["/bin/sh","-c"],"Cmd":null,"Env":["PATH=/bin"],
              "WorkingDir":"/app","User":"","ExposedPorts":{"8080/tcp":{},"53/udp":{},"80":{}}},
            "rootfs":{"type":"layers","diff_ids":["sha256:aa"]}}"#;
        let raw = RawConfig::parse(json).unwrap();
        let c = raw.image_config();
        assert_eq!(c.entrypoint, vec!["/bin/sh", "-c"]);
        assert!(c.cmd.is_empty());
        assert_eq!(c.env, vec!["PATH=/bin"]);
        assert_eq!(c.working_dir.as_deref(), Some("/app"));
        assert_eq!(c.user, None);
        assert_eq!(c.exposed_ports, vec![53, 80, 8080]);
        assert_eq!(raw.diff_ids(), vec!["sha256:aa"]);
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            RawConfig::parse(b"nope"),
            Err(ImageError::Invalid(_))
        ));
    }
}
