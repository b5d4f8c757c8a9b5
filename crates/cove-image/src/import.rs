//! Importing images from files: an OCI image-layout directory, an OCI archive
//! (a tarred layout) or a docker-archive tar (`docker save`,
//! `skopeo copy … docker-archive:`).
//!
//! Tars are extracted with the same safe unpacker as layers (into our temp
//! dir), and every path named inside an archive must resolve inside it.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::blobs::{digest_hex, finish, temp_path};
use crate::manifest::{
    self, Descriptor, Manifest, DOCKER_CONFIG, DOCKER_LAYER_TAR, DOCKER_MANIFEST,
};
use crate::pull::install;
use crate::store::Inner;
use crate::{unpack, Image, ImageError, ImageStore};

/// One image found in an archive, its blobs already in the blob store.
struct Prepared {
    names: Vec<String>,
    manifest_digest: String,
    manifest_json: String,
    config_digest: String,
    config_bytes: Vec<u8>,
    layers: Vec<Descriptor>,
}

/// Removes the extraction dir whatever happens.
struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The images of an archive, their blobs stored, nothing named yet: the caller sees
/// [`names`](Self::names) and decides before [`ImageStore::install_import`] names them.
pub struct PreparedImport(Vec<Prepared>);

impl PreparedImport {
    /// `(reference, manifest digest)` of every name the import would set.
    pub fn names(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .flat_map(|p| {
                p.names
                    .iter()
                    .map(|n| (n.clone(), p.manifest_digest.clone()))
            })
            .collect()
    }
}

impl ImageStore {
    /// Imports every image in the archive at `path`. With `reference`, the
    /// archive must hold one image, which gets that name; otherwise names come
    /// from the archive (`org.opencontainers.image.ref.name`, `RepoTags`).
    pub async fn import(
        &self,
        path: &Path,
        reference: Option<&str>,
    ) -> Result<Vec<Image>, ImageError> {
        let prepared = self.prepare_import(path, reference).await?;
        self.install_import(prepared).await
    }

    /// Reads the archive at `path` and stores its blobs; names nothing.
    #[tracing::instrument(skip(self))]
    pub async fn prepare_import(
        &self,
        path: &Path,
        reference: Option<&str>,
    ) -> Result<PreparedImport, ImageError> {
        let reference = reference.map(ImageStore::normalize).transpose()?;
        let (inner, p) = (self.inner.clone(), path.to_path_buf());
        let prepared =
            tokio::task::spawn_blocking(move || prepare(&inner, &p, reference.as_deref()))
                .await
                .map_err(|e| ImageError::Invalid(format!("import task: {e}")))??;
        Ok(PreparedImport(prepared))
    }

    /// Names every prepared image, all or nothing: if one fails, the references
    /// this import already set get back what they named before (or go).
    pub async fn install_import(&self, prepared: PreparedImport) -> Result<Vec<Image>, ImageError> {
        let mut out = Vec::new();
        let mut before = Vec::new();
        for p in &prepared.0 {
            for name in &p.names {
                let previous = self.inner.db.get_image(name).await;
                let installed = match previous {
                    Ok(previous) => install(
                        &self.inner,
                        name,
                        &p.manifest_digest,
                        p.manifest_json.clone(),
                        &p.config_digest,
                        &p.config_bytes,
                        &p.layers,
                    )
                    .await
                    .map(|img| (img, previous)),
                    Err(e) => Err(e.into()),
                };
                match installed {
                    Ok((img, previous)) => {
                        before.push((name.clone(), previous));
                        out.push(img);
                    }
                    Err(e) => {
                        self.undo_import(&before).await;
                        return Err(e);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Puts back the rows a failed import replaced, newest first.
    async fn undo_import(&self, before: &[(String, Option<cove_store::ImageRow>)]) {
        for (name, previous) in before.iter().rev() {
            let res = match previous {
                Some(row) => self.inner.db.put_image(row).await,
                None => self.inner.db.delete_image(name).await.map(|_| ()),
            };
            if let Err(e) = res {
                tracing::warn!(image = %name, error = %e, "undoing a failed import");
            }
        }
    }
}

fn prepare(
    inner: &Inner,
    path: &Path,
    reference: Option<&str>,
) -> Result<Vec<Prepared>, ImageError> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ImageError::NotFound(path.display().to_string()),
        _ => ImageError::io("read", path, e),
    })?;
    let _guard;
    let dir = if meta.is_dir() {
        path.to_path_buf()
    } else {
        let tmp = temp_path(&inner.tmp, "import");
        std::fs::create_dir_all(&tmp).map_err(|e| ImageError::io("create", &tmp, e))?;
        _guard = TempDir(tmp.clone());
        let f = std::fs::File::open(path).map_err(|e| ImageError::io("open", path, e))?;
        unpack::unpack_tar(std::io::BufReader::new(f), &tmp)?;
        tmp
    };
    let items = if dir.join("index.json").is_file() {
        from_layout(inner, &dir, path)?
    } else if dir.join("manifest.json").is_file() {
        from_docker(inner, &dir)?
    } else {
        return Err(ImageError::Unsupported(format!(
            "{} is neither an OCI image layout nor a docker archive",
            path.display()
        )));
    };
    name_images(items, reference, path)
}

/// Applies the caller's reference, or checks every image has a name.
fn name_images(
    mut items: Vec<Prepared>,
    reference: Option<&str>,
    path: &Path,
) -> Result<Vec<Prepared>, ImageError> {
    if let Some(r) = reference {
        if items.len() != 1 {
            return Err(ImageError::Invalid(format!(
                "{} holds {} images; a reference can name only one",
                path.display(),
                items.len()
            )));
        }
        items[0].names = vec![r.to_string()];
    } else if items.is_empty() || items.iter().any(|i| i.names.is_empty()) {
        return Err(ImageError::InvalidReference(format!(
            "{} has an image without a name: pass a reference to import it as",
            path.display()
        )));
    }
    Ok(items)
}

/// `rel` inside `dir`, refusing anything (`..`, symlinks) that leads outside.
fn inside(dir: &Path, rel: &str) -> Result<PathBuf, ImageError> {
    let comps = crate::fsat::components(Path::new(rel))?;
    let p = comps.iter().fold(dir.to_path_buf(), |p, c| p.join(c));
    let canon = p
        .canonicalize()
        .map_err(|e| ImageError::io("read", &p, e))?;
    let base = dir
        .canonicalize()
        .map_err(|e| ImageError::io("read", dir, e))?;
    if !canon.starts_with(&base) {
        return Err(ImageError::Unsafe(format!(
            "{rel} points outside the archive"
        )));
    }
    Ok(canon)
}

fn open(p: &Path) -> Result<std::fs::File, ImageError> {
    std::fs::File::open(p).map_err(|e| ImageError::io("open", p, e))
}

fn read_verified(dir: &Path, digest: &str) -> Result<Vec<u8>, ImageError> {
    let p = inside(dir, &format!("blobs/sha256/{}", digest_hex(digest)?))?;
    let bytes = std::fs::read(&p).map_err(|e| ImageError::io("read", &p, e))?;
    let actual = finish(Sha256::new_with_prefix(&bytes));
    if actual != digest {
        return Err(ImageError::Invalid(format!(
            "blob {digest} has digest {actual}"
        )));
    }
    Ok(bytes)
}

/// Copies a layout blob into the store (verified) unless already there.
fn store_layout_blob(inner: &Inner, dir: &Path, digest: &str) -> Result<(), ImageError> {
    if !inner.blobs.has(digest) {
        let p = inside(dir, &format!("blobs/sha256/{}", digest_hex(digest)?))?;
        inner.blobs.write_reader(open(&p)?, Some(digest))?;
    }
    Ok(())
}

fn from_layout(inner: &Inner, dir: &Path, path: &Path) -> Result<Vec<Prepared>, ImageError> {
    let index_path = inside(dir, "index.json")?;
    let index = Manifest::parse(
        &std::fs::read(&index_path).map_err(|e| ImageError::io("read", &index_path, e))?,
    )?;
    let mut out = Vec::new();
    for desc in &index.manifests {
        let ann = desc.annotations.clone().unwrap_or_default();
        let name = ann
            .get("io.containerd.image.name")
            .or(ann.get("org.opencontainers.image.ref.name"));
        // A bare tag ("latest", as skopeo writes) is not a name we can use.
        let names = match name {
            Some(n) if n.contains(['/', ':']) => vec![ImageStore::normalize(n)?],
            _ => vec![],
        };
        let mut digest = desc.digest.clone();
        let mut bytes = read_verified(dir, &digest)?;
        let mut m = Manifest::parse(&bytes)?;
        if m.is_index(Some(&desc.media_type)) {
            digest = manifest::select_platform(&m, &path.display().to_string())?
                .digest
                .clone();
            bytes = read_verified(dir, &digest)?;
            m = Manifest::parse(&bytes)?;
        }
        let config = m
            .config
            .clone()
            .ok_or_else(|| ImageError::Invalid(format!("manifest {digest} has no config")))?;
        store_layout_blob(inner, dir, &config.digest)?;
        for l in &m.layers {
            store_layout_blob(inner, dir, &l.digest)?;
        }
        out.push(Prepared {
            names,
            manifest_digest: digest,
            manifest_json: String::from_utf8_lossy(&bytes).into_owned(),
            config_bytes: inner.blobs.read(&config.digest)?,
            config_digest: config.digest,
            layers: m.layers,
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerItem {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

fn from_docker(inner: &Inner, dir: &Path) -> Result<Vec<Prepared>, ImageError> {
    let mp = inside(dir, "manifest.json")?;
    let items: Vec<DockerItem> =
        serde_json::from_slice(&std::fs::read(&mp).map_err(|e| ImageError::io("read", &mp, e))?)
            .map_err(|e| ImageError::Invalid(format!("docker archive manifest.json: {e}")))?;
    let mut out = Vec::new();
    for item in items {
        let cp = inside(dir, &item.config)?;
        let (config_digest, config_size) = inner.blobs.write_reader(open(&cp)?, None)?;
        let mut layers = Vec::new();
        for l in &item.layers {
            let lp = inside(dir, l)?;
            let mut head = [0u8; 512];
            let n = open(&lp)?
                .read(&mut head)
                .map_err(|e| ImageError::io("read", &lp, e))?;
            let media_type = match manifest::Compression::sniff(&head[..n]) {
                Some(manifest::Compression::Gzip) => {
                    "application/vnd.docker.image.rootfs.diff.tar.gzip"
                }
                Some(manifest::Compression::Zstd) => "application/vnd.oci.image.layer.v1.tar+zstd",
                _ => DOCKER_LAYER_TAR,
            };
            let (digest, size) = inner.blobs.write_reader(open(&lp)?, None)?;
            layers.push(Descriptor {
                media_type: media_type.into(),
                digest,
                size: size as i64,
                platform: None,
                annotations: None,
            });
        }
        // Docker archives carry no registry manifest: synthesize a schema-2 one.
        let m = Manifest {
            schema_version: 2,
            media_type: Some(DOCKER_MANIFEST.into()),
            config: Some(Descriptor {
                media_type: DOCKER_CONFIG.into(),
                digest: config_digest.clone(),
                size: config_size as i64,
                platform: None,
                annotations: None,
            }),
            layers: layers.clone(),
            manifests: vec![],
        };
        let manifest_json =
            serde_json::to_string(&m).map_err(|e| ImageError::Invalid(e.to_string()))?;
        let names = item
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|t| ImageStore::normalize(t))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(Prepared {
            names,
            manifest_digest: finish(Sha256::new_with_prefix(manifest_json.as_bytes())),
            manifest_json,
            config_bytes: inner.blobs.read(&config_digest)?,
            config_digest,
            layers,
        });
    }
    Ok(out)
}
