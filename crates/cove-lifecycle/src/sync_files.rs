//! Syncing files per file: the blocking [`cove_image`] work behind the
//! `/v1/images/build/files` routes, run off the async threads, with a refused
//! manifest or upload as a [`LifecycleError::BadRequest`].

use std::path::Path;

use cove_image::SyncFilesError;
use cove_types::{BuildContext, SyncFilesStored, SyncManifest, SyncMissing};
use tracing::instrument;

use crate::{Lifecycle, LifecycleError};

impl From<SyncFilesError> for LifecycleError {
    fn from(e: SyncFilesError) -> Self {
        match e {
            SyncFilesError::Invalid(msg) => LifecycleError::BadRequest(msg),
            SyncFilesError::Image(ie) => LifecycleError::Image(ie),
        }
    }
}

impl Lifecycle {
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(cove_image::ImageStore) -> Result<T, SyncFilesError> + Send + 'static,
    ) -> Result<T, LifecycleError> {
        let images = self.inner.images.clone();
        tokio::task::spawn_blocking(move || work(images))
            .await
            .map_err(|e| LifecycleError::Internal(format!("sync task: {e}")))?
            .map_err(LifecycleError::from)
    }

    /// The file digests of `manifest` the daemon does not store (a hostile
    /// manifest is refused).
    #[instrument(skip_all, fields(entries = manifest.entries.len()))]
    pub async fn missing_sync_files(
        &self,
        manifest: SyncManifest,
    ) -> Result<SyncMissing, LifecycleError> {
        let missing = self
            .blocking(move |images| images.missing_sync_files(&manifest))
            .await?;
        Ok(SyncMissing { missing })
    }

    /// Stores the files of an uploaded tar (entries named by their digest),
    /// all or none.
    pub async fn store_sync_files(&self, upload: &Path) -> Result<SyncFilesStored, LifecycleError> {
        let upload = upload.to_path_buf();
        let (files, bytes) = self
            .blocking(move |images| images.store_sync_files(&upload))
            .await?;
        Ok(SyncFilesStored { files, bytes })
    }

    /// Assembles `manifest` from stored files into a build context.
    pub async fn assemble_sync_context(
        &self,
        manifest: SyncManifest,
    ) -> Result<BuildContext, LifecycleError> {
        let (digest, size) = self
            .blocking(move |images| images.assemble_sync_context(&manifest))
            .await?;
        Ok(BuildContext { digest, size })
    }
}
