//! Image references per workspace. Image rows and layer blobs are shared by digest; a
//! workspace lists, removes and runs only the references it pulled, imported or built
//! itself. A reference another workspace holds is pulled again for this one, so the
//! registry (and its credentials) decides, never another workspace's cache; a built or
//! imported image of another workspace is simply not found. An import never takes a name
//! another workspace holds, that names other content, or that the build cache uses.

use std::path::Path;

use cove_image::{ImageError, ImageStore};
use cove_types::{BuildRequest, ImageInfo, RegistryAuth, Scope};
use tracing::info;

use crate::build::BUILD_CACHE_PREFIX;
use crate::{BuildSink, Lifecycle, LifecycleError};

impl Lifecycle {
    /// The images `scope` may see (the admin sees every one).
    pub async fn list_images_in(&self, scope: &Scope) -> Result<Vec<ImageInfo>, LifecycleError> {
        let mut all = self.list_images().await?;
        if let Scope::Workspace(ws) = scope {
            let mine = self.inner.store.image_refs_of(ws).await?;
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
        self.inner
            .store
            .add_image_ref(workspace, &info.reference)
            .await?;
        Ok(info)
    }

    /// Imports the images of the archive at `path` for `scope`, all or nothing. A
    /// workspace may not name an image the build cache's way, nor take a name another
    /// workspace holds or that already names other content (the admin may).
    pub async fn import_image_in(
        &self,
        scope: &Scope,
        path: &Path,
        reference: Option<&str>,
    ) -> Result<Vec<ImageInfo>, LifecycleError> {
        let prepared = self.inner.images.prepare_import(path, reference).await?;
        if let Scope::Workspace(ws) = scope {
            for (name, digest) in prepared.names() {
                self.check_import_name(ws, &name, &digest).await?;
            }
        }
        let images = self.inner.images.install_import(prepared).await?;
        let mut out = Vec::with_capacity(images.len());
        for i in &images {
            self.inner
                .store
                .add_image_ref(scope.workspace(), &i.reference)
                .await?;
            out.push(self.image_info(&i.reference).await?);
        }
        Ok(out)
    }

    /// Refuses an import by `workspace` that would change what another workspace or the
    /// build cache gets for `name`.
    async fn check_import_name(
        &self,
        workspace: &str,
        name: &str,
        digest: &str,
    ) -> Result<(), LifecycleError> {
        let refuse = |why: &str| {
            Err(LifecycleError::Conflict(format!(
                "cannot import as {name}: {why}; import it under another name"
            )))
        };
        if name.starts_with(BUILD_CACHE_PREFIX) {
            return refuse("names under localhost/cove-build/ are the build cache's");
        }
        let mine = self.inner.store.has_image_ref(workspace, name).await?;
        if self.inner.store.image_ref_holders(name).await? > i64::from(mine) {
            return refuse("another workspace holds that name");
        }
        if !mine {
            if let Some(row) = self.inner.store.get_image(name).await? {
                if row.digest != digest {
                    return refuse("that name already names other content");
                }
            }
        }
        Ok(())
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
        self.inner.store.add_image_ref(workspace, &base).await?;
        self.inner
            .store
            .add_image_ref(workspace, &info.reference)
            .await?;
        Ok(info)
    }

    /// Removes `scope`'s reference: the image itself goes once no workspace holds it (the
    /// admin removes it outright). Another workspace's reference is "not found".
    pub async fn remove_image_in(
        &self,
        scope: &Scope,
        reference: &str,
    ) -> Result<(), LifecycleError> {
        let normalized = ImageStore::normalize(reference)?;
        let ws = match scope {
            Scope::Admin => {
                self.remove_image(reference).await?;
                self.inner.store.remove_image_ref(None, &normalized).await?;
                return Ok(());
            }
            Scope::Workspace(ws) => ws,
        };
        if !self.inner.store.has_image_ref(ws, &normalized).await? {
            return Err(ImageError::NotFound(normalized).into());
        }
        if self.inner.store.image_ref_holders(&normalized).await? > 1 {
            self.inner
                .store
                .remove_image_ref(Some(ws), &normalized)
                .await?;
            info!(image = %normalized, workspace = %ws, "image reference dropped; others hold it");
            return Ok(());
        }
        // The conflict names a container or deployment, which may be another workspace's.
        self.remove_image(reference).await.map_err(|e| match e {
            LifecycleError::Conflict(_) => LifecycleError::Conflict(format!(
                "image {normalized} is in use by a running container or a deployment"
            )),
            e => e,
        })?;
        self.inner
            .store
            .remove_image_ref(Some(ws), &normalized)
            .await?;
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
        if self
            .inner
            .store
            .has_image_ref(workspace, &normalized)
            .await?
            || self.inner.store.get_image(&normalized).await?.is_none()
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
    pub(crate) async fn hold_image(
        &self,
        workspace: &str,
        reference: &str,
    ) -> Result<(), LifecycleError> {
        let normalized = ImageStore::normalize(reference)?;
        self.inner
            .store
            .add_image_ref(workspace, &normalized)
            .await?;
        Ok(())
    }
}
