//! [`Runtimes`]: the daemon's one [`Runtime`], routing each container to runc or runsc.
//!
//! A container's runtime is chosen at start from [`ContainerConfig::isolation`]. The other verbs
//! get only an id, so the runtime of each container is remembered; after a daemon restart the
//! memory is rebuilt by `list` (reconcile calls it) and, for an id still unknown, by asking runsc
//! (`state`) whether it knows the container (each runtime keeps its own state root, so a
//! container is known to at most one of them). Anything runsc does not know goes to runc, which
//! answers "not found" for unknown ids like before.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use cove_types::Isolation;
use tracing::{debug, warn};

use crate::{BoxFuture, ContainerConfig, ExecOutput, Runc, Runtime, RuntimeError, Started};

/// runc, plus runsc when it is installed.
pub struct Runtimes {
    runc: Runc,
    gvisor: Option<Runc>,
    /// The runtime of each container started or listed since the daemon started, by id.
    owners: Mutex<HashMap<String, Isolation>>,
}

impl Runtimes {
    /// `gvisor`: the runsc driver ([`Runc::gvisor`]), `None` where runsc is not installed.
    pub fn new(runc: Runc, gvisor: Option<Runc>) -> Self {
        Runtimes {
            runc,
            gvisor,
            owners: Mutex::new(HashMap::new()),
        }
    }

    /// Whether pods can ask for `isolation` on this daemon.
    pub fn supports(&self, isolation: Isolation) -> bool {
        match isolation {
            Isolation::Runc => true,
            Isolation::Gvisor => self.gvisor.is_some(),
        }
    }

    fn for_isolation(&self, isolation: Isolation) -> Result<&Runc, RuntimeError> {
        match isolation {
            Isolation::Runc => Ok(&self.runc),
            Isolation::Gvisor => self.gvisor.as_ref().ok_or_else(|| {
                RuntimeError::Unavailable(
                    "isolation \"gvisor\" is not available on this daemon: runsc is not installed \
                     (apt-get install runsc)"
                        .to_string(),
                )
            }),
        }
    }

    fn remember(&self, id: &str, isolation: Isolation) {
        self.owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), isolation);
    }

    /// The driver that runs container `id`.
    async fn owner(&self, id: &str) -> Result<&Runc, RuntimeError> {
        let known = self
            .owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .copied();
        if let Some(isolation) = known {
            return self.for_isolation(isolation);
        }
        if let Some(gvisor) = &self.gvisor {
            match gvisor.knows(id).await {
                Ok(true) => {
                    debug!(container = %id, "runsc knows the container");
                    self.remember(id, Isolation::Gvisor);
                    return Ok(gvisor);
                }
                Ok(false) => {}
                // A runsc that cannot even answer must not stop runc containers from being
                // stopped or deleted.
                Err(e) => warn!(container = %id, error = %e, "cannot ask runsc; trying runc"),
            }
        }
        Ok(&self.runc)
    }

    async fn delete_inner(&self, id: &str) -> Result<(), RuntimeError> {
        self.owner(id).await?.delete(id).await?;
        self.owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        Ok(())
    }

    async fn list_inner(&self) -> Result<Vec<String>, RuntimeError> {
        let mut ids = self.runc.list().await?;
        for id in &ids {
            self.remember(id, Isolation::Runc);
        }
        if let Some(gvisor) = &self.gvisor {
            // As in `owner`: a failing runsc leaves runc's containers listed.
            match gvisor.list().await {
                Ok(gv) => {
                    for id in gv {
                        self.remember(&id, Isolation::Gvisor);
                        ids.push(id);
                    }
                }
                Err(e) => warn!(error = %e, "cannot list runsc containers"),
            }
        }
        Ok(ids)
    }
}

impl Runtime for Runtimes {
    fn name(&self) -> &'static str {
        if self.gvisor.is_some() {
            "runc+runsc"
        } else {
            "runc"
        }
    }
    fn start<'a>(
        &'a self,
        cfg: &'a ContainerConfig,
    ) -> BoxFuture<'a, Result<Started, RuntimeError>> {
        Box::pin(async move {
            let rt = self.for_isolation(cfg.isolation)?;
            // Remembered before the start: a failed start is cleaned up through the same owner.
            self.remember(&cfg.id, cfg.isolation);
            rt.start(cfg).await
        })
    }
    fn stop<'a>(&'a self, id: &'a str, grace: Duration) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move { self.owner(id).await?.stop(id, grace).await })
    }
    fn exec<'a>(
        &'a self,
        id: &'a str,
        args: &'a [String],
        env: &'a [String],
        cwd: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ExecOutput, RuntimeError>> {
        Box::pin(async move { self.owner(id).await?.exec(id, args, env, cwd).await })
    }
    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(self.delete_inner(id))
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<String>, RuntimeError>> {
        Box::pin(self.list_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn gvisor_without_runsc_is_a_clear_error() {
        let rt = Runtimes::new(Runc::new("/tmp/x".into(), "/bin/false".into()), None);
        assert!(rt.supports(Isolation::Runc));
        assert!(!rt.supports(Isolation::Gvisor));
        let err = rt.for_isolation(Isolation::Gvisor).unwrap_err();
        assert!(matches!(err, RuntimeError::Unavailable(_)));
        assert!(err.to_string().contains("runsc is not installed"), "{err}");
        assert_eq!(rt.name(), "runc");
    }

    #[tokio::test]
    async fn a_broken_runsc_does_not_block_runc_containers() {
        let base = std::env::temp_dir().join(format!("cove-rt-broken-{}", std::process::id()));
        let runc = Runc::new(base.join("runc"), "/bin/false".into());
        let broken = Runc::gvisor(
            base.join("runsc"),
            "/bin/false".into(),
            "/bin/false".into(),
            "ptrace",
        );
        let rt = Runtimes::new(runc, Some(broken));
        // runc answers for an unknown id: deleting it is fine, stopping it is a no-op.
        rt.delete("nope").await.expect("delete through runc");
        rt.stop("nope", Duration::from_millis(10))
            .await
            .expect("stop through runc");
        assert!(rt.list().await.expect("runc's list").is_empty());
        let _ = std::fs::remove_dir_all(&base);
    }
}
