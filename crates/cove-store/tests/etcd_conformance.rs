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
    let mut cluster = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    drop(cluster.take());
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
    let root = format!("/cove-conformance/{}/", uuid::Uuid::new_v4().simple());
    let store = connect(endpoints, &root).await?;
    Ok((Arc::new(store.clone()) as StoreHandle, Root(store)))
}

/// A store on `endpoints` under `root`, with short timeouts.
async fn connect(endpoints: Vec<String>, root: &str) -> Result<EtcdStore, cove_store::StoreError> {
    let mut config = EtcdConfig::new(endpoints);
    config.dial_timeout = Duration::from_millis(500);
    config.request_timeout = Duration::from_secs(5);
    config.root = root.to_string();
    EtcdStore::connect(config).await
}

cove_store::conformance_tests!(fresh());

/// Two hosts (two connections, each to a different member) racing 20 creates against a limit
/// of 5 pods: the check-and-insert holds across hosts, not only inside one client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_holds_across_two_hosts() {
    use cove_store::conformance::{admission, container, max_pods, pod};
    use cove_store::{ClusterStore, StoreError};
    let all = tokio::task::spawn_blocking(endpoints).await.unwrap();
    let root = format!("/cove-conformance/{}/", uuid::Uuid::new_v4().simple());
    let hosts = [
        connect(vec![all[0].clone()], &root).await.unwrap(),
        connect(vec![all[1].clone()], &root).await.unwrap(),
    ];
    let a = admission("team-a", max_pods(5), Some(100));
    let rt = tokio::runtime::Handle::current();
    let start = std::sync::Barrier::new(20);
    let began = std::time::Instant::now();
    let results: Vec<Result<(), StoreError>> = tokio::task::block_in_place(|| {
        std::thread::scope(|sc| {
            let threads: Vec<_> = (0..20)
                .map(|i| {
                    let (rt, start, a, s) = (&rt, &start, &a, &hosts[i % 2]);
                    sc.spawn(move || {
                        let id = format!("p{i}");
                        let p = pod(&id, "team-a", 100, None);
                        let c = container(&format!("{id}-0"), &id, 1);
                        start.wait();
                        rt.block_on(ClusterStore::insert_pod(s, &p, &c, Some(a)))
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        })
    });
    // A measurement, not an assertion: how long 20 racing admitted creates take.
    eprintln!(
        "20 racing admitted creates on two hosts: {:?}",
        began.elapsed()
    );
    let _root = Root(hosts[0].clone());
    let admitted = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Refused(_))))
        .count();
    assert_eq!((admitted, refused), (5, 15), "{results:?}");
    for host in &hosts {
        assert_eq!(ClusterStore::live_containers(host).await.unwrap().len(), 5);
    }
}

/// Image references hold `/` and `:`: they go into keys encoded, so no reference reaches
/// another's key, and they come back as given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_with_slashes_stay_apart() {
    let (store, _root) = fresh().await.unwrap();
    let refs = ["r", "r/x", "r:1", "a/b/c:d@sha256:00", "../r"];
    for r in refs {
        store.add_image_ref("ws", r).await.unwrap();
    }
    assert_eq!(store.image_ref_holders("r").await.unwrap(), 1);
    store.remove_image_ref(None, "r").await.unwrap();
    let mut held: Vec<String> = store
        .image_refs_of("ws")
        .await
        .unwrap()
        .into_iter()
        .collect();
    held.sort();
    assert_eq!(held, ["../r", "a/b/c:d@sha256:00", "r/x", "r:1"]);
    let err = store.add_image_ref("a/b", "r").await.unwrap_err();
    assert!(err.to_string().starts_with("invalid workspace"), "{err}");
}

/// An id or workspace that cannot be a key segment is refused with a one-line error naming
/// it, and nothing is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_that_cannot_be_keys_are_refused() {
    use cove_store::conformance::{container, pod};
    let (store, _root) = fresh().await.unwrap();
    let err = store
        .insert_pod(
            &pod("a/b", "ws", 100, None),
            &container("c0", "a/b", 1),
            None,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("invalid pod id \"a/b\""), "{err}");
    let err = store
        .insert_pod(
            &pod("p1", "w s", 100, None),
            &container("p1-0", "p1", 1),
            None,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("invalid workspace \"w s\""), "{err}");
    assert_eq!(store.get_container("c0").await.unwrap(), None);
    assert_eq!(store.get_container("p1-0").await.unwrap(), None);
    assert!(store.list_containers().await.unwrap().is_empty());
    assert_eq!(store.get_pod("a/b").await.unwrap(), None);
}
