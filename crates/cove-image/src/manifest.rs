//! Manifests, indexes and layer media types (OCI and Docker schema 2).

use serde::{Deserialize, Serialize};

use crate::ImageError;

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub(crate) const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Every manifest type we can read, for the `Accept` header.
pub(crate) const ACCEPTED: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An image manifest or an index; told apart by `mediaType` or by shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Manifest {
    #[serde(default)]
    pub schema_version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<Descriptor>,
}

impl Manifest {
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ImageError> {
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| ImageError::Invalid(format!("manifest is not valid json: {e}")))?;
        if m.schema_version != 2 {
            return Err(ImageError::Unsupported(format!(
                "manifest schema version {}",
                m.schema_version
            )));
        }
        Ok(m)
    }

    pub fn is_index(&self, content_type: Option<&str>) -> bool {
        let mt = self.media_type.as_deref().or(content_type);
        matches!(mt, Some(OCI_INDEX) | Some(DOCKER_LIST))
            || (self.config.is_none() && !self.manifests.is_empty())
    }
}

/// This machine's architecture in OCI naming.
pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Picks the linux/<host arch> entry of an index.
pub(crate) fn select_platform<'a>(
    index: &'a Manifest,
    reference: &str,
) -> Result<&'a Descriptor, ImageError> {
    let arch = host_arch();
    index
        .manifests
        .iter()
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == arch)
        })
        .ok_or_else(|| {
            let have: Vec<String> = index
                .manifests
                .iter()
                .filter_map(|d| d.platform.as_ref())
                .map(|p| format!("{}/{}", p.os, p.architecture))
                .collect();
            ImageError::Unsupported(format!(
                "{reference} has no linux/{arch} image (has: {})",
                have.join(", ")
            ))
        })
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// From the layer's media type; `None` when the type is not a layer we know.
    pub fn from_media_type(mt: &str) -> Option<Compression> {
        let known = mt.starts_with("application/vnd.oci.image.layer.")
            || mt.starts_with("application/vnd.docker.image.rootfs.");
        if !known {
            return None;
        }
        Some(if mt.ends_with("gzip") {
            Compression::Gzip
        } else if mt.ends_with("zstd") {
            Compression::Zstd
        } else {
            Compression::None
        })
    }

    /// From the first bytes of the blob; wins over the media type when they disagree.
    pub fn sniff(head: &[u8]) -> Option<Compression> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else if head.len() >= 262 && &head[257..262] == b"ustar" {
            Some(Compression::None)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_by_media_type() {
        use Compression::*;
        let c = Compression::from_media_type;
        assert_eq!(c("application/vnd.oci.image.layer.v1.tar+gzip"), Some(Gzip));
        assert_eq!(c("application/vnd.oci.image.layer.v1.tar+zstd"), Some(Zstd));
        assert_eq!(c("application/vnd.oci.image.layer.v1.tar"), Some(None));
        assert_eq!(
            c("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Some(Gzip)
        );
        assert_eq!(
            c("application/vnd.wasm.content.layer.v1+wasm"),
            Option::None
        );
    }

    #[test]
    fn index_without_host_platform_is_unsupported() {
        let idx = Manifest::parse(
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
            "manifests":[{"mediaType":"x","digest":"sha256:aa","size":1,
            "platform":{"architecture":"s390x","os":"linux"}}]}"#,
        )
        .unwrap();
        assert!(idx.is_index(None));
        let err = select_platform(&idx, "r").unwrap_err();
        assert!(matches!(err, ImageError::Unsupported(_)), "{err}");
    }
}
