//! [`ImageStore`]: local images (rows in the `images` table), their blobs and
//! unpacked layers, and garbage collection.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

use serde::{Deserialize, Serialize};

use crate::blobs::{digest_hex, temp_path, BlobStore};
use crate::disk_pool::DiskPool;
use crate::manifest::Compression;
use crate::{overlay, reference, unpack, ImageConfig, ImageError};

/// An image available locally: every layer is unpacked.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// Canonical reference (see [`ImageStore::normalize`]).
    pub reference: String,
    /// Digest of the manifest.
    pub digest: String,
    pub config_digest: String,
    /// Layer keys (diff_ids, `sha256:…`), bottom first.
    pub layers: Vec<String>,
    pub config: ImageConfig,
    /// Sum of the compressed layer sizes.
    pub size: u64,
}

/// One layer as stored in `ImageRow::layers_json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredLayer {
    pub diff_id: String,
    /// The (possibly compressed) blob's digest.
    pub blob: String,
    pub media_type: String,
    pub size: u64,
}

/// Options for [`ImageStore::open_with`].
#[derive(Debug, Clone, Default)]
pub struct ImageStoreOptions {
    /// Registries (`host[:port]`) reached over plain HTTP besides loopback ones.
    pub insecure_registries: Vec<String>,
}

/// Local images; cheap to clone.
#[derive(Clone)]
pub struct ImageStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub blobs: BlobStore,
    pub layers_dir: PathBuf,
    pub tmp: PathBuf,
    pub empty: PathBuf,
    pub db: cove_store::StoreHandle,
    pub insecure: RwLock<Vec<String>>,
    /// Held while committing an image row and while garbage-collecting, so a
    /// GC never deletes a layer that a finishing pull is about to reference.
    pub gc: tokio::sync::Mutex<()>,
    /// `<data_dir>/disk-pool`.
    pub disk_pool_dir: PathBuf,
    /// Pod disks formatted ahead, once [`ImageStore::start_disk_pool`] ran.
    pub disk_pool: OnceLock<Arc<DiskPool>>,
}

fn mkdir(p: &Path) -> Result<(), ImageError> {
    std::fs::create_dir_all(p).map_err(|e| ImageError::io("create", p, e))
}

impl ImageStore {
    /// Opens the store under `<data_dir>/images`, removing temp files left by
    /// interrupted pulls.
    pub fn open(data_dir: &Path, store: cove_store::StoreHandle) -> Result<ImageStore, ImageError> {
        Self::open_with(data_dir, store, ImageStoreOptions::default())
    }

    pub fn open_with(
        data_dir: &Path,
        store: cove_store::StoreHandle,
        options: ImageStoreOptions,
    ) -> Result<ImageStore, ImageError> {
        let root = data_dir.join("images");
        let blob_dir = root.join("blobs").join("sha256");
        let layers_dir = root.join("l");
        let tmp = root.join("tmp");
        let empty = root.join("empty");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| ImageError::io("clean", &tmp, e))?;
        }
        // Disks formatted for an earlier daemon's pool: never handed out, maybe half-made.
        let pool_dir = data_dir.join("disk-pool");
        if pool_dir.exists() {
            std::fs::remove_dir_all(&pool_dir)
                .map_err(|e| ImageError::io("clean", &pool_dir, e))?;
        }
        for d in [&blob_dir, &layers_dir, &tmp, &empty] {
            mkdir(d)?;
        }
        Ok(ImageStore {
            inner: Arc::new(Inner {
                blobs: BlobStore::new(blob_dir, tmp.clone()),
                layers_dir,
                tmp,
                empty,
                db: store,
                insecure: RwLock::new(options.insecure_registries),
                gc: tokio::sync::Mutex::new(()),
                disk_pool_dir: pool_dir,
                disk_pool: OnceLock::new(),
            }),
        })
    }

    /// Registries (`host[:port]`) to reach over plain HTTP, besides loopback ones.
    pub fn set_insecure_registries(&self, registries: Vec<String>) {
        *self
            .inner
            .insecure
            .write()
            .unwrap_or_else(|p| p.into_inner()) = registries;
    }

    /// The canonical form of `reference`, used as the database key.
    pub fn normalize(reference: &str) -> Result<String, ImageError> {
        Ok(reference::parse(reference)?.canonical())
    }

    /// The local image for `reference`, if pulled and complete.
    pub async fn get(&self, reference: &str) -> Result<Option<Image>, ImageError> {
        let key = Self::normalize(reference)?;
        let Some(row) = self.inner.db.get_image(&key).await? else {
            return Ok(None);
        };
        let image = image_from_row(&row)?;
        // A layer missing on disk (deleted by hand) means: not available.
        let complete = image
            .layers
            .iter()
            .all(|l| self.inner.layer_dir(l).is_ok_and(|p| p.is_dir()));
        Ok(complete.then_some(image))
    }

    pub async fn list(&self) -> Result<Vec<cove_types::ImageInfo>, ImageError> {
        self.inner
            .db
            .list_images()
            .await?
            .into_iter()
            .map(|row| {
                let layers: Vec<StoredLayer> = parse_layers(&row)?;
                Ok(cove_types::ImageInfo {
                    reference: row.reference,
                    digest: row.digest,
                    config_digest: row.config_digest,
                    size: row.size,
                    layers: layers.len(),
                    created_at: row.created_at,
                })
            })
            .collect()
    }

    /// The local image, else pulls it.
    pub async fn ensure(
        &self,
        reference: &str,
        auth: Option<&cove_types::RegistryAuth>,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<Image, ImageError> {
        match self.get(reference).await? {
            Some(i) => Ok(i),
            None => self.pull(reference, auth, progress).await,
        }
    }

    /// Mounts the image's root filesystem at `<container_dir>/rootfs`.
    pub fn mount_rootfs(&self, image: &Image, container_dir: &Path) -> Result<PathBuf, ImageError> {
        self.mount_rootfs_with_disk(image, container_dir, None)
    }

    /// [`ImageStore::mount_rootfs`] with the writable layer limited to `disk_mib` MiB
    /// (`None`: unlimited, on the data dir's filesystem).
    pub fn mount_rootfs_with_disk(
        &self,
        image: &Image,
        container_dir: &Path,
        disk_mib: Option<u64>,
    ) -> Result<PathBuf, ImageError> {
        let lowers = image
            .layers
            .iter()
            .map(|l| self.inner.layer_dir(l))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(missing) = lowers.iter().find(|p| !p.is_dir()) {
            return Err(ImageError::NotFound(format!(
                "layer {} of {} (pull the image again)",
                missing.display(),
                image.reference
            )));
        }
        let pool = self.inner.disk_pool.get().map(Arc::as_ref);
        overlay::mount_rootfs(&lowers, &self.inner.empty, container_dir, disk_mib, pool)
    }

    /// Keeps `size` disks of `mib` MiB formatted ahead in `<data_dir>/disk-pool` (emptied
    /// first: an earlier daemon may have left some), so creates with that disk size skip
    /// mkfs. Once per store; a later call does nothing.
    pub fn start_disk_pool(&self, mib: u64, size: usize) -> Result<(), ImageError> {
        if size == 0 || self.inner.disk_pool.get().is_some() {
            return Ok(());
        }
        let pool = DiskPool::start(self.inner.disk_pool_dir.clone(), mib, size)?;
        if let Err(pool) = self.inner.disk_pool.set(pool) {
            pool.stop();
        }
        Ok(())
    }

    /// Number of pooled disks ready to take (0 without a pool).
    pub fn disk_pool_ready(&self) -> usize {
        self.inner.disk_pool.get().map_or(0, |p| p.ready())
    }

    /// Stops refilling the disk pool and removes its disks (at shutdown). Idempotent.
    pub fn stop_disk_pool(&self) {
        if let Some(pool) = self.inner.disk_pool.get() {
            pool.stop();
        }
    }

    /// The overlay upper dir (the writable layer) of the container mounted in
    /// `container_dir`: on its disk if it has a disk limit.
    pub fn upper_dir(container_dir: &Path) -> Result<PathBuf, ImageError> {
        overlay::upper_dir(container_dir)
    }

    /// Unmounts and removes what [`ImageStore::mount_rootfs`] created. Idempotent.
    pub fn unmount_rootfs(container_dir: &Path) -> Result<(), ImageError> {
        overlay::unmount_rootfs(container_dir)
    }

    /// The directory a layer (by diff_id) is unpacked in.
    pub fn layer_path(&self, diff_id: &str) -> Result<PathBuf, ImageError> {
        self.inner.layer_dir(diff_id)
    }
}

impl Inner {
    pub fn layer_dir(&self, diff_id: &str) -> Result<PathBuf, ImageError> {
        Ok(self.layers_dir.join(&digest_hex(diff_id)?[..12]))
    }

    /// Unpacks blob `blob` into the layer dir for `diff_id` unless already there.
    /// Blocking: call from `spawn_blocking`.
    #[tracing::instrument(skip(self, hint))]
    pub fn ensure_layer(
        &self,
        diff_id: &str,
        blob: &str,
        hint: Option<Compression>,
    ) -> Result<(), ImageError> {
        let dest = self.layer_dir(diff_id)?;
        if dest.is_dir() {
            return Ok(());
        }
        let tmp = temp_path(&self.tmp, "unpack");
        mkdir(&tmp)?;
        let res = unpack::unpack_layer(&self.blobs.path(blob)?, hint, &tmp).and_then(|actual| {
            if actual != diff_id {
                return Err(ImageError::Invalid(format!(
                    "layer {blob} unpacks to {actual}, the config says {diff_id}"
                )));
            }
            // Rename into place: an interrupted unpack never looks complete.
            match std::fs::rename(&tmp, &dest) {
                Ok(()) => Ok(()),
                Err(_) if dest.is_dir() => Ok(()), // a concurrent pull won
                Err(e) => Err(ImageError::io("store layer", &dest, e)),
            }
        });
        if tmp.exists() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        res
    }

    /// Writes the row; checks under the GC lock that every layer is still there.
    pub async fn commit(&self, row: cove_store::ImageRow) -> Result<Image, ImageError> {
        let _gc = self.gc.lock().await;
        let image = image_from_row(&row)?;
        for l in &image.layers {
            if !self.layer_dir(l)?.is_dir() {
                return Err(ImageError::Invalid(format!(
                    "layer {l} was removed during the pull; retry"
                )));
            }
        }
        self.db.put_image(&row).await?;
        Ok(image)
    }
}

pub(crate) fn parse_layers(row: &cove_store::ImageRow) -> Result<Vec<StoredLayer>, ImageError> {
    serde_json::from_str(&row.layers_json)
        .map_err(|e| ImageError::Invalid(format!("stored layers of {}: {e}", row.reference)))
}

fn image_from_row(row: &cove_store::ImageRow) -> Result<Image, ImageError> {
    let config: ImageConfig = serde_json::from_str(&row.config_json)
        .map_err(|e| ImageError::Invalid(format!("stored config of {}: {e}", row.reference)))?;
    Ok(Image {
        reference: row.reference.clone(),
        digest: row.digest.clone(),
        config_digest: row.config_digest.clone(),
        layers: parse_layers(row)?.into_iter().map(|l| l.diff_id).collect(),
        config,
        size: row.size,
    })
}

/// Builds the row for an image whose blobs are stored and layers unpacked.
pub(crate) fn make_row(
    reference: &str,
    manifest_digest: &str,
    manifest_json: String,
    config_digest: &str,
    config: &ImageConfig,
    layers: &[StoredLayer],
) -> Result<cove_store::ImageRow, ImageError> {
    let err = |e: serde_json::Error| ImageError::Invalid(format!("cannot encode image row: {e}"));
    Ok(cove_store::ImageRow {
        reference: reference.to_string(),
        digest: manifest_digest.to_string(),
        config_digest: config_digest.to_string(),
        manifest_json,
        config_json: serde_json::to_string(config).map_err(err)?,
        layers_json: serde_json::to_string(layers).map_err(err)?,
        size: layers.iter().map(|l| l.size).sum(),
        created_at: cove_store::now_ms(),
    })
}
