//! The backend conformance suite against SQLite, in memory and in a database file.

mod in_memory {
    use std::sync::Arc;

    use cove_store::{SqliteStore, StoreHandle};

    cove_store::conformance_tests!(async {
        SqliteStore::open_in_memory().map(|s| (Arc::new(s) as StoreHandle, ()))
    });
}

mod file {
    use std::sync::Arc;

    use cove_store::{SqliteStore, StoreHandle};

    cove_store::conformance_tests!(async {
        let dir = tempfile::tempdir().expect("temp dir");
        SqliteStore::open(&dir.path().join("state.db")).map(|s| (Arc::new(s) as StoreHandle, dir))
    });
}

/// Two connections to one database file (two `SqliteStore`s) racing 20 creates against a
/// limit of 5 pods: the count-and-insert is atomic across connections, not only inside one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_holds_across_two_connections_to_one_file() {
    use cove_store::{Admission, ClusterStore, Limits, SqliteStore, StoreError};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let stores = [
        SqliteStore::open(&path).unwrap(),
        SqliteStore::open(&path).unwrap(),
    ];
    let a = Admission {
        workspace: "team-a".into(),
        limits: Limits {
            max_pods: Some(5),
            ..Default::default()
        },
        cpu_millis: 100,
        memory_mib: 128,
        disk_mib: 64,
        default_disk_mib: 64,
        shared_pods_max: None,
    };
    let rt = tokio::runtime::Handle::current();
    let start = std::sync::Barrier::new(20);
    let results: Vec<Result<(), StoreError>> = tokio::task::block_in_place(|| {
        std::thread::scope(|sc| {
            let threads: Vec<_> = (0..20)
                .map(|i| {
                    let (rt, start, a, s) = (&rt, &start, &a, &stores[i % 2]);
                    sc.spawn(move || {
                        let id = format!("p{i}");
                        let pod = cove_store::conformance::pod(&id, "team-a", 100, None);
                        let ctr = cove_store::conformance::container(&format!("{id}-0"), &id, 1);
                        start.wait();
                        rt.block_on(ClusterStore::insert_pod(s, &pod, &ctr, Some(a)))
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        })
    });
    let admitted = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Refused(_))))
        .count();
    assert_eq!((admitted, refused), (5, 15), "{results:?}");
    let live = ClusterStore::live_containers(&stores[0]).await.unwrap();
    assert_eq!(live.len(), 5);
    drop(stores);
}
