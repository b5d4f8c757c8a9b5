//! The read half of the OCI distribution spec over the local store: what the daemon's
//! internal `/v2/` endpoint serves to other hosts (and to any registry client, such as
//! skopeo), so a host lacking an image fetches it by digest from one that has it.
//!
//! Everything an image is made of is kept as it came: its manifest (the exact bytes, in
//! the `images` row, under the manifest digest), its config and its original (compressed)
//! layer blobs in `blobs/sha256/<hex>`, each verified against its digest when written.
//! So the endpoint serves the very bytes their digests name; nothing is re-packed.
//!
//! Names: an image `<registry>/<repository>:<tag>` is served as
//! `<registry as a path component>/<repository>`, where the registry's `:port` becomes
//! `_port` (`127.0.0.1:5000/busybox` → `127.0.0.1_5000/busybox`; `docker.io/library/x`
//! stays as it is) and a registry no path component can spell (upper case, IPv6) becomes
//! `x__<hex of its bytes>`. A registry host never holds `_`, so the mapping is one-to-one.
//! Only the config and layers of images under a name are served under that name: build
//! contexts share the blob store and are never served.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::blobs::{digest_hex, finish};
use crate::manifest::{Manifest, OCI_MANIFEST};
use crate::reference::{self, valid_path_component};
use crate::store::parse_layers;
use crate::{ImageError, ImageStore};

/// The longest repository name served (distribution's own limit).
pub const MAX_NAME_LEN: usize = 255;

/// Why a `/v2/` read was refused; [`DistributionError::code`] is the spec's error code.
#[derive(Debug, thiserror::Error)]
pub enum DistributionError {
    #[error("invalid repository name {0:?}")]
    NameInvalid(String),
    #[error("invalid tag {0:?}")]
    TagInvalid(String),
    #[error("invalid digest {0:?}: want sha256:<64 lowercase hex>")]
    DigestInvalid(String),
    #[error("digest algorithm of {0:?} is not supported: only sha256")]
    Unsupported(String),
    #[error("repository {0} is not known here")]
    NameUnknown(String),
    #[error("manifest {0} is not known here")]
    ManifestUnknown(String),
    #[error("blob {0} is not known here")]
    BlobUnknown(String),
    #[error(transparent)]
    Image(#[from] ImageError),
}

impl DistributionError {
    /// The OCI distribution error code.
    pub fn code(&self) -> &'static str {
        match self {
            DistributionError::NameInvalid(_) => "NAME_INVALID",
            DistributionError::TagInvalid(_) => "TAG_INVALID",
            DistributionError::DigestInvalid(_) => "DIGEST_INVALID",
            DistributionError::Unsupported(_) => "UNSUPPORTED",
            DistributionError::NameUnknown(_) => "NAME_UNKNOWN",
            DistributionError::ManifestUnknown(_) => "MANIFEST_UNKNOWN",
            DistributionError::BlobUnknown(_) => "BLOB_UNKNOWN",
            DistributionError::Image(_) => "UNKNOWN",
        }
    }
}

/// A manifest as served: its exact bytes, media type and digest.
#[derive(Debug, Clone)]
pub struct ServedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: String,
}

/// A blob as served: its file in the blob store and its size.
#[derive(Debug, Clone)]
pub struct ServedBlob {
    pub path: PathBuf,
    pub size: u64,
}

/// The `/v2/` name an image reference is served under (see the module doc).
pub fn peer_name(reference: &str) -> Result<String, ImageError> {
    let r = reference::parse(reference)?;
    Ok(format!(
        "{}/{}",
        registry_component(&r.registry),
        r.repository
    ))
}

fn registry_component(registry: &str) -> String {
    let (host, port) = match registry.split_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        Some(_) => ("", None),
        None => (registry, None),
    };
    let plain = match port {
        Some(p) => format!("{host}_{p}"),
        None => host.to_string(),
    };
    if !host.is_empty() && !host.contains('_') && valid_path_component(&plain) {
        plain
    } else {
        format!("x__{}", hex::encode(registry.as_bytes()))
    }
}

/// Checks a `/v2/` repository name against the spec's grammar and length.
pub fn check_name(name: &str) -> Result<(), DistributionError> {
    let ok =
        !name.is_empty() && name.len() <= MAX_NAME_LEN && name.split('/').all(valid_path_component);
    ok.then_some(())
        .ok_or_else(|| DistributionError::NameInvalid(shorten(name)))
}

/// Checks a digest: `sha256:<64 lowercase hex>`; a well-formed digest of another
/// algorithm (`sha512:…`) is unsupported, anything else invalid.
pub fn check_digest(digest: &str) -> Result<(), DistributionError> {
    if digest_hex(digest).is_ok() {
        return Ok(());
    }
    // The spec's grammar: algorithm `[a-z0-9]+([+._-][a-z0-9]+)*`, encoded `[a-zA-Z0-9=_-]+`.
    let well_formed = digest.split_once(':').is_some_and(|(alg, enc)| {
        !alg.is_empty()
            && alg.len() <= 32
            && alg
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
            && !enc.is_empty()
            && enc
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b))
    });
    if well_formed && !digest.starts_with("sha256:") {
        Err(DistributionError::Unsupported(shorten(digest)))
    } else {
        Err(DistributionError::DigestInvalid(shorten(digest)))
    }
}

fn check_tag(tag: &str) -> Result<(), DistributionError> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        && !tag.starts_with(['.', '-']);
    ok.then_some(())
        .ok_or_else(|| DistributionError::TagInvalid(shorten(tag)))
}

/// At most 100 characters of hostile input, for a one-line error.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(100) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

impl ImageStore {
    /// The image rows served under `name`; `NameUnknown` when there is none.
    async fn rows_named(&self, name: &str) -> Result<Vec<cove_store::ImageRow>, DistributionError> {
        check_name(name)?;
        let rows: Vec<_> = self
            .inner
            .db
            .list_images()
            .await
            .map_err(ImageError::from)?
            .into_iter()
            .filter(|row| peer_name(&row.reference).is_ok_and(|n| n == name))
            .collect();
        if rows.is_empty() {
            return Err(DistributionError::NameUnknown(name.to_string()));
        }
        Ok(rows)
    }

    /// The tags of repository `name`, sorted.
    pub async fn served_tags(&self, name: &str) -> Result<Vec<String>, DistributionError> {
        let mut tags: Vec<String> = self
            .rows_named(name)
            .await?
            .iter()
            .filter_map(|row| reference::parse(&row.reference).ok()?.tag)
            .collect();
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    /// The manifest `reference` (a tag or a digest) of repository `name`.
    pub async fn served_manifest(
        &self,
        name: &str,
        reference: &str,
    ) -> Result<ServedManifest, DistributionError> {
        let by_digest = reference.contains(':');
        if by_digest {
            check_digest(reference)?;
        } else {
            check_tag(reference)?;
        }
        let rows = self.rows_named(name).await?;
        let row = rows
            .iter()
            .find(|row| {
                if by_digest {
                    row.digest == reference
                } else {
                    reference::parse(&row.reference)
                        .is_ok_and(|r| r.tag.as_deref() == Some(reference))
                }
            })
            .ok_or_else(|| {
                let sep = if by_digest { '@' } else { ':' };
                DistributionError::ManifestUnknown(format!("{name}{sep}{reference}"))
            })?;
        let bytes = row.manifest_json.as_bytes().to_vec();
        // The row holds the bytes the digest was taken of; say so loudly if not.
        let actual = finish(Sha256::new_with_prefix(&bytes));
        if actual != row.digest {
            return Err(ImageError::Invalid(format!(
                "stored manifest of {} has digest {actual}, not {}",
                row.reference, row.digest
            ))
            .into());
        }
        let m = Manifest::parse(&bytes)?;
        Ok(ServedManifest {
            media_type: m.media_type.unwrap_or_else(|| OCI_MANIFEST.to_string()),
            digest: row.digest.clone(),
            bytes,
        })
    }

    /// The blob `digest` (a config or a layer of an image named `name`).
    pub async fn served_blob(
        &self,
        name: &str,
        digest: &str,
    ) -> Result<ServedBlob, DistributionError> {
        check_digest(digest)?;
        let rows = self.rows_named(name).await?;
        let mut known = false;
        for row in &rows {
            if row.config_digest == digest || parse_layers(row)?.iter().any(|l| l.blob == digest) {
                known = true;
                break;
            }
        }
        let unknown = || DistributionError::BlobUnknown(digest.to_string());
        if !known {
            return Err(unknown());
        }
        let path = self.inner.blobs.path(digest)?;
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(ServedBlob {
                path,
                size: m.len(),
            }),
            Ok(_) => Err(unknown()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(unknown()),
            Err(e) => Err(ImageError::io("read", &path, e).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_path_components_and_one_to_one() {
        let n = |r: &str| peer_name(r).unwrap();
        assert_eq!(n("busybox"), "docker.io/library/busybox");
        assert_eq!(n("127.0.0.1:5000/busybox:latest"), "127.0.0.1_5000/busybox");
        assert_eq!(
            n("localhost:5000/a/b@sha256:{}"
                .replace("{}", &"a".repeat(64))
                .as_str()),
            "localhost_5000/a/b"
        );
        assert_eq!(n("localhost/cove-build/x:1"), "localhost/cove-build/x");
        let odd = n("Registry.Example:5000/app");
        assert!(odd.starts_with("x__"), "{odd}");
        let v6 = n("[::1]:5000/app");
        assert!(v6.starts_with("x__"), "{v6}");
        for name in [odd, v6, n("ghcr.io/org/app"), n("127.0.0.1:5000/busybox")] {
            check_name(&name).unwrap();
        }
        assert_ne!(n("a.b:5000/x"), n("a.b/x"));
        assert_ne!(n("[::1]:5000/x"), n("[::1]/x"));
    }

    #[test]
    fn hostile_names_digests_and_tags_are_refused() {
        for bad in [
            "",
            "..",
            "a/../b",
            "a//b",
            "/a",
            "A/b",
            "a/b/",
            &"a".repeat(256),
        ] {
            assert!(
                matches!(check_name(bad), Err(DistributionError::NameInvalid(_))),
                "{bad:?}"
            );
        }
        let hex = "0".repeat(64);
        check_digest(&format!("sha256:{hex}")).unwrap();
        for bad in [
            "sha256:../../etc/passwd",
            "sha256:ABC",
            "sha256:",
            "",
            "sha256",
            &format!("sha256:{hex}0"),
        ] {
            assert!(
                matches!(check_digest(bad), Err(DistributionError::DigestInvalid(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            check_digest(&format!("sha512:{hex}{hex}")),
            Err(DistributionError::Unsupported(_))
        ));
        for bad in ["..", "-x", "a/b", &"t".repeat(129)] {
            assert!(check_tag(bad).is_err(), "{bad:?}");
        }
        let e = DistributionError::NameInvalid(shorten(&"a".repeat(5000)));
        assert!(e.to_string().len() < 150);
    }
}
