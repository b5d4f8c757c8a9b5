//! Image references per workspace. Image rows and layer blobs are shared by digest; a
//! workspace lists, removes and runs only the references it pulled, imported or built
//! itself. A reference another workspace holds is pulled again for this one, so the
//! registry (and its credentials) decides, never another workspace's cache; a built or
//! imported image of another workspace is simply not found.

use std::path::Path;

use cove_image::{ImageError, ImageStore};
use cove_types::{BuildRequest, ImageInfo, RegistryAuth, Scope};
use tracing::info;

use crate::{BuildSink, Lifecycle, LifecycleError};

impl Lifecycle {
    /// The images `scope` may see (the admin sees every one).
    pub fn list_images_in(&self, scope: &Scope) -> Result<Vec<ImageInfo>, LifecycleError> {
        let mut all = self.list_images()?;
        if let Scope::Workspace(ws) = scope {
            let mine = self.inner.store.image_refs_of(ws)?;
            all.retain(|i| mine.contains(&i.reference));
        }
        Ok(all)
    }

    /// Pulls `reference` for `workspace`.
    pub async fn pull_image_in(
        &self,
        workspace: &str,
        reference: &str,
        auth: Option<&RegistryAuth>,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<ImageInfo, LifecycleError> {
        let info = self.pull_image(reference, auth, progress).await?;
        self.inner.store.add_image_ref(workspace, &info.reference)?;
        Ok(info)
    }

    /// Imports images for `workspace`.
    pub async fn import_image_in(
        &self,
        workspace: &str,
        path: &Path,
        reference: Option<&str>,
    ) -> Result<Vec<ImageInfo>, LifecycleError> {
        let images = self.import_image(path, reference).await?;
        for i in &images {
            self.inner.store.add_image_ref(workspace, &i.reference)?;
        }
        Ok(images)
    }

    /// Builds an image for `workspace`, whose base it must hold (or pull itself).
    pub async fn build_image_in(
        &self,
        workspace: &str,
        req: &BuildRequest,
        sink: BuildSink<'_>,
    ) -> Result<ImageInfo, LifecycleError> {
        req.validate().map_err(LifecycleError::BadRequest)?;
        sink(cove_types::BuildEvent::Progress("Building image".into()));
        let progress = |m: String| sink(cove_types::BuildEvent::Progress(m));
        self.claim_image(
            workspace,
            &req.base_image,
            req.registry_auth.as_ref(),
            &progress,
        )
        .await?;
        let info = self.build_image(req, sink).await?;
        let base = ImageStore::normalize(&req.base_image)?;
        self.inner.store.add_image_ref(workspace, &base)?;
        self.inner.store.add_image_ref(workspace, &info.reference)?;
        Ok(info)
    }

    /// Removes `scope`'s reference: the image itself goes once no workspace holds it (the
    /// admin removes it outright). Another workspace's reference is "not found".
    pub fn remove_image_in(&self, scope: &Scope, reference: &str) -> Result<(), LifecycleError> {
        let normalized = ImageStore::normalize(reference)?;
        let ws = match scope {
            Scope::Admin => {
                self.remove_image(reference)?;
                self.inner.store.remove_image_ref(None, &normalized)?;
                return Ok(());
            }
            Scope::Workspace(ws) => ws,
        };
        if !self.inner.store.has_image_ref(ws, &normalized)? {
            return Err(ImageError::NotFound(normalized).into());
        }
        if self.inner.store.image_ref_holders(&normalized)? > 1 {
            self.inner.store.remove_image_ref(Some(ws), &normalized)?;
            info!(image = %normalized, workspace = %ws, "image reference dropped; others hold it");
            return Ok(());
        }
        self.remove_image(reference)?;
        self.inner.store.remove_image_ref(Some(ws), &normalized)?;
        Ok(())
    }

    /// Before `workspace` uses `reference`: if the daemon has it only for other workspaces,
    /// pull it again (built images, which no registry has, are not found). Nothing to do
    /// if the workspace holds it, or if nobody has it (the caller pulls it).
    pub(crate) async fn claim_image(
        &self,
        workspace: &str,
        reference: &str,
        auth: Option<&RegistryAuth>,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(), LifecycleError> {
        let normalized = ImageStore::normalize(reference)?;
        if self.inner.store.has_image_ref(workspace, &normalized)?
            || self.inner.store.get_image(&normalized)?.is_none()
        {
            return Ok(());
        }
        if normalized.starts_with("localhost/") {
            return Err(ImageError::NotFound(normalized).into());
        }
        info!(image = %normalized, %workspace, "another workspace's image: pulling it for this one");
        self.inner.images.pull(reference, auth, progress).await?;
        Ok(())
    }

    /// Records that `workspace` holds the image `reference` names.
    pub(crate) fn hold_image(
        &self,
        workspace: &str,
        reference: &str,
    ) -> Result<(), LifecycleError> {
        let normalized = ImageStore::normalize(reference)?;
        self.inner.store.add_image_ref(workspace, &normalized)?;
        Ok(())
    }
}
