//! Images made by builds: an existing image plus one layer made from a
//! container's overlay upper dir ([`ImageStore::commit_upper`]).
//!
//! The layer goes through the same path as a pulled one: its gzip blob is
//! stored under its digest, then unpacked by the safe unpacker (which
//! re-checks it and computes the diff_id again) into its layer dir.

use std::io::{BufReader, Write};
use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::blobs::{finish, temp_path};
use crate::manifest::{Compression, Descriptor, Manifest, OCI_MANIFEST};
use crate::store::{make_row, parse_layers, StoredLayer};
use crate::{layer_from_dir, Image, ImageError, ImageStore};

const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A writer that hashes what passes through it (the diff_id of the tar).
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// What a build step adds to its parent image.
#[derive(Debug, Clone)]
pub struct LayerCommit<'a> {
    /// The container's overlay upper dir.
    pub upper: &'a Path,
    /// Relative paths of runtime-made empty mount points to leave out.
    pub skip: &'a [&'a str],
    /// The new image's name.
    pub reference: &'a str,
    /// `K=V` entries to set in the config's env (replacing same keys).
    pub env: &'a [String],
    /// The history entry's `created_by`.
    pub created_by: &'a str,
}

/// Cache keys of a build (hex sha256): index 0 for the base alone
/// (its manifest digest and the env), then one per step, each chained on the
/// previous key and the step's canonical JSON, so a changed step changes its
/// key and every later one but none before it.
pub fn build_step_keys(
    base_digest: &str,
    steps: &[cove_types::BuildStep],
    env_json: &str,
) -> Vec<String> {
    let hash = |parts: &[&str]| {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p.as_bytes());
            h.update(b"\n");
        }
        hex::encode(h.finalize())
    };
    let mut keys = vec![hash(&["base", base_digest, env_json])];
    for s in steps {
        let step_json = serde_json::to_string(s).unwrap_or_default();
        let next = hash(&["step", &keys[keys.len() - 1], &step_json, env_json]);
        keys.push(next);
    }
    keys
}

impl ImageStore {
    /// Stores an uploaded build context (a tar) in the blob store after
    /// checking that it is a tar the safe unpacker accepts. Returns its
    /// digest and size. Blocking.
    pub fn store_build_context(&self, path: &Path) -> Result<(String, u64), ImageError> {
        let check = temp_path(&self.inner.tmp, "context-check");
        std::fs::create_dir_all(&check).map_err(|e| ImageError::io("create", &check, e))?;
        let checked = std::fs::File::open(path)
            .map_err(|e| ImageError::io("open", path, e))
            .and_then(|f| crate::unpack::unpack_tar(BufReader::new(f), &check));
        let _ = std::fs::remove_dir_all(&check);
        checked?;
        let f = std::fs::File::open(path).map_err(|e| ImageError::io("open", path, e))?;
        self.inner.blobs.write_reader(BufReader::new(f), None)
    }

    /// Whether build context `digest` was uploaded.
    pub fn has_build_context(&self, digest: &str) -> bool {
        self.inner.blobs.has(digest)
    }

    /// Registers `c.reference` as `parent` + a layer holding the build context
    /// `archive` unpacked under `remote`. Blocking.
    pub fn commit_context(
        &self,
        parent: &Image,
        archive: &str,
        remote: &str,
        c: &LayerCommit<'_>,
    ) -> Result<Image, ImageError> {
        let blob = self.inner.blobs.path(archive)?;
        if !blob.is_file() {
            return Err(ImageError::NotFound(format!(
                "build context {archive} (upload it first)"
            )));
        }
        let upper = temp_path(&self.inner.tmp, "context");
        let dest = crate::fsat::components(Path::new(remote.trim_start_matches('/')))?
            .iter()
            .fold(upper.clone(), |p, c| p.join(c));
        let res = std::fs::create_dir_all(&dest)
            .map_err(|e| ImageError::io("create", &dest, e))
            .and_then(|()| {
                let f = std::fs::File::open(&blob).map_err(|e| ImageError::io("open", &blob, e))?;
                crate::unpack::unpack_tar(BufReader::new(f), &dest)
            })
            .and_then(|()| {
                self.commit_upper(
                    parent,
                    &LayerCommit {
                        upper: &upper,
                        ..c.clone()
                    },
                )
            });
        let _ = std::fs::remove_dir_all(&upper);
        res
    }

    /// Registers `c.reference` as `parent` + a layer made from `c.upper`.
    /// Blocking: call from `spawn_blocking`.
    #[tracing::instrument(skip_all, fields(reference = %c.reference))]
    pub fn commit_upper(&self, parent: &Image, c: &LayerCommit<'_>) -> Result<Image, ImageError> {
        let inner = &self.inner;
        let reference = Self::normalize(c.reference)?;
        let row = crate::wait(inner.db.get_image(&parent.reference))??
            .ok_or_else(|| ImageError::NotFound(parent.reference.clone()))?;
        let mut layers = parse_layers(&row)?;

        // 1. tar.gz of the upper dir into a temp file, hashing the tar.
        let tmp = temp_path(&inner.tmp, "build-layer");
        let written = (|| {
            let f = std::fs::File::create(&tmp).map_err(|e| ImageError::io("create", &tmp, e))?;
            let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
            let hw = HashingWriter {
                inner: gz,
                hasher: Sha256::new(),
            };
            let hw = layer_from_dir::write_layer_tar(c.upper, c.skip, hw)?;
            let diff_id = finish(hw.hasher);
            hw.inner
                .finish()
                .and_then(|f| f.sync_all())
                .map_err(|e| ImageError::io("write", &tmp, e))?;
            let f = std::fs::File::open(&tmp).map_err(|e| ImageError::io("open", &tmp, e))?;
            let (blob, size) = inner.blobs.write_reader(BufReader::new(f), None)?;
            Ok::<_, ImageError>((diff_id, blob, size))
        })();
        let _ = std::fs::remove_file(&tmp);
        let (diff_id, blob, size) = written?;
        // 2. The layer dir, by unpacking what we made (re-validates it).
        inner.ensure_layer(&diff_id, &blob, Some(Compression::Gzip))?;
        layers.push(StoredLayer {
            diff_id: diff_id.clone(),
            blob: blob.clone(),
            media_type: OCI_LAYER_GZIP.into(),
            size,
        });

        // 3. The config: the parent's, with the env, the new diff_id and history.
        let mut config: Value = serde_json::from_slice(&inner.blobs.read(&row.config_digest)?)
            .map_err(|e| ImageError::Invalid(format!("config of {}: {e}", row.reference)))?;
        if !config.is_object() {
            config = json!({});
        }
        let mut cfg = parent.config.clone();
        for kv in c.env {
            let key = kv.split_once('=').map(|(k, _)| k).unwrap_or(kv);
            cfg.env
                .retain(|e| e.split_once('=').map(|(k, _)| k).unwrap_or(e) != key);
            cfg.env.push(kv.clone());
        }
        let obj = config.as_object_mut().expect("checked above");
        obj.entry("architecture")
            .or_insert_with(|| json!(crate::manifest::host_arch()));
        obj.entry("os").or_insert_with(|| json!("linux"));
        let run = obj.entry("config").or_insert_with(|| json!({}));
        if !run.is_object() {
            *run = json!({});
        }
        run["Env"] = json!(cfg.env);
        let rootfs = obj
            .entry("rootfs")
            .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
        rootfs["type"] = json!("layers");
        rootfs["diff_ids"] = json!(layers.iter().map(|l| &l.diff_id).collect::<Vec<_>>());
        let history = obj.entry("history").or_insert_with(|| json!([]));
        if !history.is_array() {
            *history = json!([]);
        }
        if let Some(h) = history.as_array_mut() {
            h.push(json!({ "created_by": c.created_by, "comment": "cove build" }));
        }
        let config_bytes = serde_json::to_vec(&config)
            .map_err(|e| ImageError::Invalid(format!("encoding config: {e}")))?;
        let (config_digest, config_size) =
            inner.blobs.write_reader(config_bytes.as_slice(), None)?;

        // 4. The manifest and the row.
        let desc = |media_type: &str, digest: &str, size: u64| Descriptor {
            media_type: media_type.into(),
            digest: digest.into(),
            size: size as i64,
            platform: None,
            annotations: None,
        };
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.into()),
            config: Some(desc(OCI_CONFIG, &config_digest, config_size)),
            layers: layers
                .iter()
                .map(|l| desc(&l.media_type, &l.blob, l.size))
                .collect(),
            manifests: vec![],
        };
        let manifest_json =
            serde_json::to_string(&manifest).map_err(|e| ImageError::Invalid(e.to_string()))?;
        let manifest_digest = finish(Sha256::new_with_prefix(manifest_json.as_bytes()));
        let row = make_row(
            &reference,
            &manifest_digest,
            manifest_json,
            &config_digest,
            &cfg,
            &layers,
        )?;
        crate::wait(inner.commit(row))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(path: &[u8]) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        // Written raw: the tar crate refuses `..` in set_path, a hostile client would not.
        h.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path);
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, &b"x"[..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn build_contexts_are_checked_before_they_are_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(
            dir.path(),
            std::sync::Arc::new(cove_store::SqliteStore::open_in_memory().unwrap()),
        )
        .unwrap();
        let upload = dir.path().join("upload.tar");
        std::fs::write(&upload, tar_with(b"../escape")).unwrap();
        let err = store.store_build_context(&upload).unwrap_err();
        assert!(matches!(err, ImageError::Unsafe(_)), "{err}");

        std::fs::write(&upload, tar_with(b"app/ok.txt")).unwrap();
        let (digest, size) = store.store_build_context(&upload).unwrap();
        assert!(store.has_build_context(&digest));
        assert_eq!(size, std::fs::metadata(&upload).unwrap().len());
    }

    #[test]
    fn keys_chain_and_cover_the_base_the_steps_and_the_env() {
        use cove_types::BuildStep::Commands;
        let a = Commands(vec!["a".into()]);
        let k = build_step_keys("sha256:x", &[a.clone(), Commands(vec!["b".into()])], "{}");
        let k2 = build_step_keys("sha256:x", &[a.clone(), Commands(vec!["c".into()])], "{}");
        assert_eq!(k[..2], k2[..2]);
        assert_ne!(k[2], k2[2]);
        assert_ne!(build_step_keys("sha256:y", &[], "{}")[0], k[0]);
        assert_ne!(build_step_keys("sha256:x", &[], r#"{"A":"1"}"#)[0], k[0]);
    }
}
