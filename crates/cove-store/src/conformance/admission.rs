//! Admission of new containers against workspace limits and the shared pool, concurrent
//! creates and wakes included: usage is counted and the container recorded atomically.

use std::sync::Barrier;

use super::{admission, container, deployment, max_pods, pod};
use crate::{ClusterStore, Limit, Limits, Refusal, StoreError};

/// Usage sums the live containers' specs of one workspace; ended ones and other workspaces
/// do not count, a pod without a disk limit counts the default.
pub async fn usage_counts_live_containers(s: &dyn ClusterStore) {
    let u = s.workspace_usage("team-a", 64).await.unwrap();
    assert_eq!(
        (u.pods, u.cpu_millis, u.memory_mib, u.disk_mib),
        (0, 0, 0, 0)
    );
    let pods = [
        ("p1", "team-a", Some(100)),
        ("p2", "team-a", None),
        ("p3", "team-b", None),
    ];
    for (id, ws, disk) in pods {
        let c = container(&format!("{id}-0"), id, 1);
        s.insert_pod(&pod(id, ws, 500, disk), &c, None)
            .await
            .unwrap();
    }
    s.insert_container(&container("p1-1", "p1", 2), None)
        .await
        .unwrap();
    s.set_finished("p1-0", "EXITED", Some(0), None, 3)
        .await
        .unwrap();
    s.set_status("p2-0", "STOPPING", None).await.unwrap();
    let u = s.workspace_usage("team-a", 64).await.unwrap();
    assert_eq!(
        (u.pods, u.cpu_millis, u.memory_mib, u.disk_mib),
        (2, 1000, 256, 164)
    );
    let u = s.workspace_usage("team-a", 10).await.unwrap();
    assert_eq!(u.disk_mib, 110);
}

/// Each limit refuses the container that would pass it, names itself, and records nothing.
pub async fn admission_refuses_at_each_limit_and_records_nothing(s: &dyn ClusterStore) {
    let a = admission("team-a", max_pods(2), None);
    for id in ["p1", "p2"] {
        let c = container(&format!("{id}-0"), id, 1);
        s.insert_pod(&pod(id, "team-a", 500, None), &c, Some(&a))
            .await
            .unwrap();
    }
    let err = s
        .insert_pod(
            &pod("p3", "team-a", 500, None),
            &container("p3-0", "p3", 1),
            Some(&a),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "workspace \"team-a\" is at its limit of 2 pods (max-pods)"
    );
    assert_eq!(s.get_pod("p3").await.unwrap(), None, "nothing recorded");
    assert_eq!(s.get_container("p3-0").await.unwrap(), None);
    // Another workspace is not held back by this one.
    s.check_admission(&admission("team-b", max_pods(1), None))
        .await
        .unwrap();
    // An ended container no longer counts.
    s.set_finished("p1-0", "EXITED", Some(0), None, 2)
        .await
        .unwrap();
    s.check_admission(&a).await.unwrap();
    // Held now: 1 live container, 500m, 128 MiB, 64 MiB of disk (the default).
    let over = |l: Limits| admission("team-a", l, None);
    let cases = [
        (
            Limits {
                max_cpu_millis: Some(900),
                ..Default::default()
            },
            Limit::Cpu,
            900,
            500,
            500,
        ),
        (
            Limits {
                max_memory_mib: Some(255),
                ..Default::default()
            },
            Limit::Memory,
            255,
            128,
            128,
        ),
        (
            Limits {
                max_disk_mib: Some(100),
                ..Default::default()
            },
            Limit::Disk,
            100,
            64,
            64,
        ),
    ];
    for (limits, limit, max, used, asks) in cases {
        let err = s.check_admission(&over(limits)).await.unwrap_err();
        let want = Refusal::Limit {
            workspace: "team-a".into(),
            limit,
            max,
            used,
            asks,
        };
        assert!(
            matches!(err, StoreError::Refused(ref r) if *r == want),
            "{err}"
        );
    }
    let err = s
        .check_admission(&over(Limits {
            max_cpu_millis: Some(900),
            ..Default::default()
        }))
        .await;
    assert_eq!(
        err.unwrap_err().to_string(),
        "workspace \"team-a\" is at its limit of 0.9 cpu (max-cpu): 0.5 in use, the pod asks for 0.5"
    );
    // Exactly at a limit is allowed.
    let at = Limits {
        max_cpu_millis: Some(1000),
        max_memory_mib: Some(256),
        max_disk_mib: Some(128),
        max_pods: Some(2),
    };
    s.check_admission(&over(at)).await.unwrap();
}

/// A pod, another container of a pod, and a deployment are all admitted with their insert.
pub async fn admission_covers_every_insert(s: &dyn ClusterStore) {
    let a = admission("team-a", max_pods(1), None);
    s.insert_pod(
        &pod("p1", "team-a", 500, None),
        &container("p1-0", "p1", 1),
        Some(&a),
    )
    .await
    .unwrap();
    let err = s
        .insert_container(&container("p1-1", "p1", 2), Some(&a))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::Refused(Refusal::Limit {
            limit: Limit::Pods,
            ..
        })
    ));
    assert_eq!(s.get_container("p1-1").await.unwrap(), None);
    let d = deployment("app", "team-a", "p2");
    let mut p2 = pod("p2", "team-a", 500, None);
    p2.deployment_id = Some(d.id.clone());
    let err = s
        .insert_deployment(&d, &p2, &container("p2-0", "p2", 3), Some(&a))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::Refused(Refusal::Limit {
            limit: Limit::Pods,
            ..
        })
    ));
    assert_eq!(s.get_deployment(&d.id).await.unwrap(), None);
    assert_eq!(s.get_pod("p2").await.unwrap(), None);
    s.set_finished("p1-0", "EXITED", Some(0), None, 4)
        .await
        .unwrap();
    s.insert_deployment(&d, &p2, &container("p2-0", "p2", 3), Some(&a))
        .await
        .unwrap();
    assert_eq!(s.workspace_usage("team-a", 64).await.unwrap().pods, 1);
}

/// All workspaces but `default` together run at most `shared_pods_max` live containers.
pub async fn the_shared_pool_is_capped(s: &dyn ClusterStore) {
    for (id, ws) in [
        ("p1", "team-a"),
        ("p2", "team-b"),
        ("p3", "default"),
        ("p4", "default"),
    ] {
        let c = container(&format!("{id}-0"), id, 1);
        let a = admission(ws, Limits::default(), Some(2));
        s.insert_pod(&pod(id, ws, 500, None), &c, Some(&a))
            .await
            .unwrap();
    }
    let err = s
        .check_admission(&admission("team-c", Limits::default(), Some(2)))
        .await;
    assert!(matches!(
        err,
        Err(StoreError::Refused(Refusal::Pool { max: 2 }))
    ));
    s.check_admission(&admission("team-c", Limits::default(), Some(3)))
        .await
        .unwrap();
    s.check_admission(&admission("team-c", Limits::default(), None))
        .await
        .unwrap();
    s.set_finished("p2-0", "FAILED", None, None, 2)
        .await
        .unwrap();
    s.check_admission(&admission("team-c", Limits::default(), Some(2)))
        .await
        .unwrap();
}

/// Runs `n` calls of `f` at once, each on its own thread, released together.
fn race<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let start = Barrier::new(n);
    // The calls block their threads: tell the runtime, so its other workers keep driving I/O.
    tokio::task::block_in_place(|| {
        std::thread::scope(|sc| {
            let threads: Vec<_> = (0..n)
                .map(|i| {
                    let (start, f) = (&start, &f);
                    sc.spawn(move || {
                        start.wait();
                        f(i)
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().expect("a racing call panicked"))
                .collect()
        })
    })
}

fn refused_pods(results: &[Result<(), StoreError>]) -> usize {
    results
        .iter()
        .filter(|r| {
            matches!(
                r,
                Err(StoreError::Refused(Refusal::Limit {
                    limit: Limit::Pods,
                    max: 5,
                    ..
                }))
            )
        })
        .count()
}

/// 20 creates at once against a limit of 5 pods: exactly 5 are recorded, 15 refused.
pub async fn concurrent_creates_pass_no_limit(s: &dyn ClusterStore) {
    let a = admission("team-a", max_pods(5), None);
    let rt = tokio::runtime::Handle::current();
    let results = race(20, |i| {
        let id = format!("p{i}");
        let (p, c) = (
            pod(&id, "team-a", 100, None),
            container(&format!("{id}-0"), &id, 1),
        );
        rt.block_on(s.insert_pod(&p, &c, Some(&a)))
    });
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        5,
        "{results:?}"
    );
    assert_eq!(refused_pods(&results), 15, "{results:?}");
    assert_eq!(s.live_containers().await.unwrap().len(), 5);
    assert_eq!(s.workspace_usage("team-a", 64).await.unwrap().pods, 5);
}

/// 20 wakes (new containers of existing pods) at once, 2 live of a limit of 5: 3 admitted.
pub async fn concurrent_wakes_pass_no_limit(s: &dyn ClusterStore) {
    for id in ["p0", "p1"] {
        let c = container(&format!("{id}-0"), id, 1);
        s.insert_pod(&pod(id, "team-a", 100, None), &c, None)
            .await
            .unwrap();
    }
    let a = admission("team-a", max_pods(5), None);
    let rt = tokio::runtime::Handle::current();
    let results = race(20, |i| {
        let c = container(&format!("p{}-{}", i % 2, i + 1), &format!("p{}", i % 2), 2);
        rt.block_on(s.insert_container(&c, Some(&a)))
    });
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        3,
        "{results:?}"
    );
    assert_eq!(refused_pods(&results), 17, "{results:?}");
    assert_eq!(s.live_containers().await.unwrap().len(), 5);
}
