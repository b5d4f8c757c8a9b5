//! Image operations, and `exec` in a running container: thin passes to the
//! image store and runtime with the lifecycle's own checks.

use cove_types::{ExecRequest, ExecResponse, ImageInfo, RegistryAuth};

use crate::{Lifecycle, LifecycleError};

impl Lifecycle {
    pub async fn pull_image(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<ImageInfo, LifecycleError> {
        let image = self.inner.images.pull(reference, auth, progress).await?;
        self.image_info(&image.reference).await
    }

    pub async fn list_images(&self) -> Result<Vec<ImageInfo>, LifecycleError> {
        Ok(self.inner.images.list().await?)
    }

    /// Removes an image; refused while a live container uses it.
    pub async fn remove_image(&self, reference: &str) -> Result<(), LifecycleError> {
        let normalized = cove_image::ImageStore::normalize(reference)?;
        let live = self.inner.store.live_containers().await?;
        if let Some(c) = live.iter().find(|c| c.image == normalized) {
            return Err(LifecycleError::Conflict(format!(
                "image {normalized} is used by running container {}",
                c.id
            )));
        }
        // A deployment scaled to zero wakes from its image without asking for credentials.
        let deployed = self.deployed_images().await?;
        if let Some((name, _)) = deployed.iter().find(|(_, image)| *image == normalized) {
            return Err(LifecycleError::Conflict(format!(
                "image {normalized} is used by deployment {name}: delete it or deploy another image first"
            )));
        }
        // Layers of live containers' and deployments' images stay, whatever image they came from.
        let mut used: Vec<String> = Vec::new();
        let in_use = live.iter().map(|c| c.image.clone());
        for image in in_use.chain(deployed.into_iter().map(|(_, i)| i)) {
            if let Ok(Some(img)) = self.inner.images.get(&image).await {
                used.extend(img.layers);
            }
        }
        self.inner
            .images
            .remove(&normalized, &|layer| used.iter().any(|u| u == layer))
            .await?;
        Ok(())
    }

    /// `(deployment name, normalized image)` of every deployment's current version.
    async fn deployed_images(&self) -> Result<Vec<(String, String)>, LifecycleError> {
        let mut out = Vec::new();
        for row in self.inner.store.list_deployments().await? {
            let Some(pod) = self
                .inner
                .store
                .get_pod(row.pod_id.as_deref().unwrap_or_default())
                .await?
            else {
                continue;
            };
            let spec = crate::specs::pod_spec(&pod)?;
            out.push((row.name, cove_image::ImageStore::normalize(&spec.image)?));
        }
        Ok(out)
    }

    pub(crate) async fn image_info(&self, reference: &str) -> Result<ImageInfo, LifecycleError> {
        self.inner
            .images
            .list()
            .await?
            .into_iter()
            .find(|i| i.reference == reference)
            .ok_or_else(|| {
                LifecycleError::Internal(format!("image {reference} vanished after it was stored"))
            })
    }

    /// Runs a command in a running container and collects its output.
    pub async fn exec(&self, id: &str, req: &ExecRequest) -> Result<ExecResponse, LifecycleError> {
        if req.cmd.is_empty() || req.cmd[0].is_empty() {
            return Err(LifecycleError::BadRequest("exec needs a command".into()));
        }
        if self.inner.store.get_container(id).await?.is_none() {
            return Err(LifecycleError::ContainerNotFound(id.to_string()));
        }
        if !self.live().contains_key(id) {
            return Err(LifecycleError::Conflict(format!(
                "container {id} is not running"
            )));
        }
        let env: Vec<String> = req.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let out = self
            .inner
            .runtime
            .exec(id, &req.cmd, &env, req.workdir.as_deref())
            .await
            .map_err(|e| match e {
                // A command the container lacks is the caller's mistake, not the daemon's.
                cove_runtime::RuntimeError::BadCommand(m) => LifecycleError::BadRequest(m),
                // It ended between the check above and the runtime's exec.
                cove_runtime::RuntimeError::NotFound(_) => {
                    LifecycleError::Conflict(format!("container {id} is not running"))
                }
                e => LifecycleError::Runtime(e),
            })?;
        Ok(ExecResponse {
            exit_code: out.exit_code,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}
