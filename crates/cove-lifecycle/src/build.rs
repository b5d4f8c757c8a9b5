//! Image builds: a base image plus ordered steps, each run in a container on
//! top of the previous result and committed as one layer.
//!
//! Identity: key 0 = sha256(base manifest digest, env); key i = sha256(key
//! i-1, canonical JSON of step i, env). The `builds` table maps each key to
//! the image made after that step, so an identical request is answered from
//! the table, and a changed step rebuilds from that step on. Images are named
//! `localhost/cove-build/<16 hex of the key>:latest` (`localhost`: never
//! pulled from anywhere if removed).
//!
//! A failed build keeps nothing it made: the images (and their layers) of
//! the steps it ran are removed again, with their `builds` rows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use cove_image::{build_step_keys as step_keys, Image};
use cove_types::{BuildContext, BuildEvent, BuildRequest, BuildStep, ImageInfo};
use tracing::{info, instrument, warn};

use crate::{Lifecycle, LifecycleError};

/// Receives a build's progress and output lines as they happen.
pub type BuildSink<'a> = &'a (dyn Fn(BuildEvent) + Send + Sync);

/// One lock per final build key: identical builds asked for at the same time
/// run once; the others wait and are answered from the cache.
fn build_lock(key: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let mut map = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    map.retain(|_, w| w.strong_count() > 0);
    if let Some(l) = map.get(key).and_then(Weak::upgrade) {
        return l;
    }
    let l = Arc::new(tokio::sync::Mutex::new(()));
    map.insert(key.to_string(), Arc::downgrade(&l));
    l
}

/// Where built images are named; nobody may import under it.
pub(crate) const BUILD_CACHE_PREFIX: &str = "localhost/cove-build/";

fn reference_for(key: &str) -> String {
    format!("{BUILD_CACHE_PREFIX}{}:latest", &key[..16])
}

impl Lifecycle {
    /// Builds (or finds cached) the image `req` describes. The caller has said
    /// `Building image` ([`Lifecycle::build_image_in`]).
    #[instrument(skip_all, fields(base = %req.base_image, steps = req.steps.len()))]
    pub(crate) async fn build_image(
        &self,
        req: &BuildRequest,
        sink: BuildSink<'_>,
    ) -> Result<ImageInfo, LifecycleError> {
        req.validate().map_err(LifecycleError::BadRequest)?;
        let progress = |m: String| sink(BuildEvent::Progress(m));
        let base = self
            .inner
            .images
            .ensure(&req.base_image, req.registry_auth.as_ref(), &progress)
            .await?;
        let mut steps = req.steps.clone();
        if steps.is_empty() && !req.env.is_empty() {
            // The env alone still makes a new image: an empty layer carries it.
            steps.push(BuildStep::Commands(vec!["true".into()]));
        }
        let env_json = serde_json::to_string(&req.env)
            .map_err(|e| LifecycleError::Internal(format!("encoding env: {e}")))?;
        let keys = step_keys(&base.digest, &steps, &env_json);
        let lock = build_lock(&keys[keys.len() - 1]);
        let _building = lock.lock().await;
        // The last step whose result is still here; its image is where we start.
        let mut start = 0;
        let mut current = base.clone();
        for i in (1..keys.len()).rev() {
            if let Some(img) = self.cached_step(&keys[i]).await? {
                start = i;
                current = img;
                break;
            }
        }
        if start == steps.len() {
            sink(BuildEvent::Progress("Using cached image".into()));
            return self.image_info_of(&current.reference).await;
        }
        for (i, step) in steps.iter().enumerate().take(start) {
            sink(BuildEvent::Progress(format!(
                "Step {}/{}: {} (cached)",
                i + 1,
                steps.len(),
                describe(step)
            )));
        }
        let env: Vec<String> = req.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut made: Vec<(String, String)> = Vec::new();
        for (i, step) in steps.iter().enumerate().skip(start) {
            sink(BuildEvent::Progress(format!(
                "Step {}/{}: {}",
                i + 1,
                steps.len(),
                describe(step)
            )));
            let key = &keys[i + 1];
            match self
                .run_build_step(i, step, &current, &env, &reference_for(key), sink)
                .await
            {
                Ok(img) => {
                    if let Err(e) = self.inner.store.put_build(key, &img.reference).await {
                        made.push((key.clone(), img.reference));
                        self.forget_builds(&made).await;
                        return Err(e.into());
                    }
                    made.push((key.clone(), img.reference.clone()));
                    current = img;
                }
                Err(e) => {
                    self.forget_builds(&made).await;
                    return Err(e);
                }
            }
        }
        info!(reference = %current.reference, "image built");
        self.image_info_of(&current.reference).await
    }

    /// The image recorded for `key`, if the row and the image are both there.
    async fn cached_step(&self, key: &str) -> Result<Option<Image>, LifecycleError> {
        let Some(row) = self.inner.store.get_build(key).await? else {
            return Ok(None);
        };
        Ok(self.inner.images.get(&row.image_reference).await?)
    }

    /// Removes what a failed build made: its rows and images, newest first.
    async fn forget_builds(&self, made: &[(String, String)]) {
        for (key, reference) in made.iter().rev() {
            if let Err(e) = self.inner.store.delete_build(key).await {
                warn!(error = %e, "cannot forget build step");
            }
            if let Err(e) = self.inner.images.remove(reference, &|_| false).await {
                warn!(error = %e, %reference, "cannot remove the image of a failed build");
            }
        }
    }

    /// Stores an uploaded tar for `local_path` steps.
    pub async fn store_build_context(
        &self,
        path: &std::path::Path,
    ) -> Result<BuildContext, LifecycleError> {
        let images = self.inner.images.clone();
        let path = path.to_path_buf();
        let (digest, size) = tokio::task::spawn_blocking(move || images.store_build_context(&path))
            .await
            .map_err(|e| LifecycleError::Internal(format!("context task: {e}")))??;
        Ok(BuildContext { digest, size })
    }

    /// Whether build context `digest` (`sha256:<hex>`) is stored, so a client
    /// can skip uploading content the daemon already has.
    pub fn has_build_context(&self, digest: &str) -> bool {
        self.inner.images.has_build_context(digest)
    }

    async fn image_info_of(&self, reference: &str) -> Result<ImageInfo, LifecycleError> {
        self.inner
            .images
            .list()
            .await?
            .into_iter()
            .find(|i| i.reference == reference)
            .ok_or_else(|| LifecycleError::Internal(format!("image {reference} vanished")))
    }
}

/// A step as progress lines and error messages show it.
pub(crate) fn describe(step: &BuildStep) -> String {
    match step {
        BuildStep::Commands(c) => c.join(" && "),
        BuildStep::PythonPackages(p) => format!("pip install {}", p.join(" ")),
        BuildStep::PythonVersion(v) => format!("python {v}"),
        BuildStep::LocalPath(l) => format!(
            "add {} to {}",
            l.archive.get(..19).unwrap_or(&l.archive),
            l.remote
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_chain_so_a_changed_step_keeps_earlier_keys() {
        let a = BuildStep::Commands(vec!["echo a".into()]);
        let b = BuildStep::Commands(vec!["echo b".into()]);
        let c = BuildStep::Commands(vec!["echo c".into()]);
        let k1 = step_keys("sha256:x", &[a.clone(), b], "{}");
        let k2 = step_keys("sha256:x", &[a.clone(), c], "{}");
        assert_eq!(k1.len(), 3);
        assert_eq!(k1[..2], k2[..2]);
        assert_ne!(k1[2], k2[2]);
        assert_ne!(
            step_keys("sha256:y", std::slice::from_ref(&a), "{}")[1],
            k1[1]
        );
        assert_ne!(step_keys("sha256:x", &[a], r#"{"A":"1"}"#)[1], k1[1]);
        assert!(reference_for(&k1[2]).starts_with("localhost/cove-build/"));
    }
}
