//! The backend conformance suite against [`EtcdStore`] on a real 3-member etcd cluster.
//!
//! One cluster serves every test of this file (started by the first test that needs it,
//! stopped and its data dirs removed when the test process exits); each test works under
//! its own key root, deleted when the test ends.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cove_store::etcd::{EtcdConfig, EtcdStore};
use cove_store::StoreHandle;
use support::etcd::EtcdCluster;

static CLUSTER: Mutex<Option<EtcdCluster>> = Mutex::new(None);

/// Stops the shared cluster when the test process exits (statics are never dropped).
extern "C" fn stop_cluster() {
    if let Ok(mut cluster) = CLUSTER.lock() {
        drop(cluster.take());
    }
}

/// The shared cluster's endpoints, starting it on first use.
fn endpoints() -> Vec<String> {
    let mut cluster = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if cluster.is_none() {
        *cluster = Some(EtcdCluster::start(3));
        // SAFETY: registers a plain function with no arguments to run at exit.
        unsafe { libc::atexit(stop_cluster) };
    }
    cluster
        .as_ref()
        .map(EtcdCluster::endpoints)
        .unwrap_or_default()
}

/// Deletes a test's root when the test ends.
struct Root(EtcdStore);

impl Drop for Root {
    fn drop(&mut self) {
        let handle = tokio::runtime::Handle::current();
        let cleared = tokio::task::block_in_place(|| handle.block_on(self.0.clear()));
        if let Err(e) = cleared {
            eprintln!("cannot delete the test's keys: {e}");
        }
    }
}

/// A store under a fresh root of the shared cluster.
async fn fresh() -> Result<(StoreHandle, Root), cove_store::StoreError> {
    let endpoints = tokio::task::spawn_blocking(endpoints)
        .await
        .map_err(|e| cove_store::StoreError::Etcd(e.to_string()))?;
    let mut config = EtcdConfig::new(endpoints);
    config.dial_timeout = Duration::from_millis(500);
    config.request_timeout = Duration::from_secs(5);
    config.root = format!("/cove-conformance/{}/", uuid::Uuid::new_v4().simple());
    let store = EtcdStore::connect(config).await?;
    Ok((Arc::new(store.clone()) as StoreHandle, Root(store)))
}

cove_store::conformance_tests!(fresh());
