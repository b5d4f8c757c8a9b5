//! Removing images and garbage-collecting their blobs and layer dirs.
//!
//! A layer dir is kept while another image references it, while the caller's
//! `in_use` says a container uses it, or while any overlay mount on the machine
//! lists it as a lowerdir (robust across daemon restarts).

use std::collections::HashSet;
use std::path::Path;

use crate::blobs::temp_path;
use crate::store::{parse_layers, Inner};
use crate::{overlay, ImageError, ImageStore};

impl ImageStore {
    /// Forgets `reference`, then deletes its blobs and layer dirs that no other
    /// image references, `in_use(diff_id)` does not claim, and no overlay mount
    /// on the machine uses as a lowerdir.
    #[tracing::instrument(skip(self, in_use))]
    pub async fn remove(
        &self,
        reference: &str,
        in_use: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<(), ImageError> {
        let key = Self::normalize(reference)?;
        let _gc = self.inner.gc.lock().await;
        let row = self
            .inner
            .db
            .get_image(&key)
            .await?
            .ok_or_else(|| ImageError::NotFound(key.clone()))?;
        let layers = parse_layers(&row)?;
        self.inner.db.delete_image(&key).await?;
        let mut keep_blobs = HashSet::new();
        let mut keep_layers = HashSet::new();
        for other in self.inner.db.list_images().await? {
            keep_blobs.insert(other.config_digest.clone());
            for l in parse_layers(&other)? {
                keep_blobs.insert(l.blob);
                keep_layers.insert(l.diff_id);
            }
        }
        if !keep_blobs.contains(&row.config_digest) {
            self.inner.blobs.remove(&row.config_digest)?;
        }
        let mounted = overlay::mounted_lowerdirs()?;
        for l in layers {
            if !keep_blobs.contains(&l.blob) {
                self.inner.blobs.remove(&l.blob)?;
            }
            let dir = self.inner.layer_dir(&l.diff_id)?;
            if keep_layers.contains(&l.diff_id) || in_use(&l.diff_id) || mounted.contains(&dir) {
                continue;
            }
            self.inner.remove_layer_dir(&dir)?;
        }
        Ok(())
    }
}

impl Inner {
    /// Renames then deletes, so a half-deleted layer never looks complete.
    pub(crate) fn remove_layer_dir(&self, dir: &Path) -> Result<(), ImageError> {
        let doomed = temp_path(&self.tmp, "gc");
        match std::fs::rename(dir, &doomed) {
            Ok(()) => {
                std::fs::remove_dir_all(&doomed).map_err(|e| ImageError::io("remove", &doomed, e))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ImageError::io("remove", dir, e)),
        }
    }
}
