//! Pods and their containers: inserts, lookups, lists and status transitions.

use super::{container, pod};
use crate::ClusterStore;

/// A pod and its first container come back as inserted.
pub async fn pod_and_container_round_trip(s: &dyn ClusterStore) {
    let mut p = pod("p1", "team-a", 500, Some(64));
    p.name = Some("web".into());
    let c = container("p1-0", "p1", 10);
    s.insert_pod(&p, &c, None).await.unwrap();
    assert_eq!(s.get_pod("p1").await.unwrap(), Some(p));
    assert_eq!(s.get_container("p1-0").await.unwrap(), Some(c.clone()));
    assert_eq!(s.list_containers().await.unwrap(), vec![c.clone()]);
    assert_eq!(s.live_containers().await.unwrap(), vec![c]);
}

/// Inserting a pod whose id is taken fails and records neither its pod nor its container.
pub async fn a_taken_pod_id_records_nothing(s: &dyn ClusterStore) {
    let p = pod("p1", "default", 100, None);
    s.insert_pod(&p, &container("p1-0", "p1", 1), None)
        .await
        .unwrap();
    let mut other = p.clone();
    other.spec_json = "{}".into();
    assert!(s
        .insert_pod(&other, &container("p1-1", "p1", 2), None)
        .await
        .is_err());
    assert_eq!(s.get_container("p1-1").await.unwrap(), None);
    assert_eq!(s.get_pod("p1").await.unwrap(), Some(p));
}

/// PENDING → RUNNING → STOPPING → EXITED, each field set where the contract says.
pub async fn container_status_transitions(s: &dyn ClusterStore) {
    let c = container("p1-0", "p1", 1);
    s.insert_pod(&pod("p1", "default", 100, None), &c, None)
        .await
        .unwrap();
    s.set_running("p1-0", "10.0.0.2", 42, 5).await.unwrap();
    let r = s.get_container("p1-0").await.unwrap().unwrap();
    assert_eq!(
        (
            r.status.as_str(),
            r.address.as_deref(),
            r.shim_pid,
            r.started_at
        ),
        ("RUNNING", Some("10.0.0.2"), Some(42), Some(5))
    );
    s.set_status("p1-0", "STOPPING", Some("stopped by the user"))
        .await
        .unwrap();
    // A status without a reason keeps the reason already given.
    s.set_status("p1-0", "STOPPING", None).await.unwrap();
    let r = s.get_container("p1-0").await.unwrap().unwrap();
    assert_eq!(r.status, "STOPPING");
    assert_eq!(r.reason.as_deref(), Some("stopped by the user"));
    assert_eq!(
        s.live_containers().await.unwrap().len(),
        1,
        "STOPPING is live"
    );
    s.set_last_active("p1-0", 7).await.unwrap();
    s.set_finished("p1-0", "EXITED", Some(3), None, 9)
        .await
        .unwrap();
    let r = s.get_container("p1-0").await.unwrap().unwrap();
    assert_eq!(
        (r.status.as_str(), r.exit_code, r.ended_at, r.last_active_at),
        ("EXITED", Some(3), Some(9), Some(7))
    );
    assert_eq!(r.reason.as_deref(), Some("stopped by the user"));
    assert!(s.live_containers().await.unwrap().is_empty());
    s.set_finished("p1-0", "FAILED", None, Some("oom"), 10)
        .await
        .unwrap();
    let r = s.get_container("p1-0").await.unwrap().unwrap();
    assert_eq!((r.exit_code, r.reason.as_deref()), (None, Some("oom")));
}

/// All containers newest first; live ones oldest first, ended ones left out.
pub async fn containers_are_listed_in_order(s: &dyn ClusterStore) {
    for (i, at) in [(1, 30), (2, 10), (3, 20)] {
        let id = format!("p{i}");
        s.insert_pod(
            &pod(&id, "default", 100, None),
            &container(&format!("{id}-0"), &id, at),
            None,
        )
        .await
        .unwrap();
    }
    s.set_finished("p3-0", "EXITED", Some(0), None, 40)
        .await
        .unwrap();
    let ids = |rows: Vec<crate::ContainerRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_containers().await.unwrap()),
        ["p1-0", "p3-0", "p2-0"]
    );
    assert_eq!(ids(s.live_containers().await.unwrap()), ["p2-0", "p1-0"]);
}

/// A pod runs again as another container row; both are kept.
pub async fn another_container_of_a_pod(s: &dyn ClusterStore) {
    s.insert_pod(
        &pod("p1", "default", 100, None),
        &container("p1-0", "p1", 1),
        None,
    )
    .await
    .unwrap();
    s.set_finished("p1-0", "EXITED", Some(0), None, 2)
        .await
        .unwrap();
    let again = container("p1-1", "p1", 3);
    s.insert_container(&again, None).await.unwrap();
    assert_eq!(s.get_container("p1-1").await.unwrap(), Some(again));
    assert_eq!(s.list_containers().await.unwrap().len(), 2);
    assert!(
        s.insert_container(&container("p1-1", "p1", 4), None)
            .await
            .is_err(),
        "a taken container id"
    );
    assert!(
        s.insert_container(&container("x-0", "nope", 5), None)
            .await
            .is_err(),
        "a container of no pod"
    );
    assert_eq!(s.get_container("x-0").await.unwrap(), None);
}

/// Deleting a pod (undoing a failed create) removes its containers with it.
pub async fn delete_pod_removes_its_containers(s: &dyn ClusterStore) {
    s.insert_pod(
        &pod("p1", "default", 100, None),
        &container("p1-0", "p1", 1),
        None,
    )
    .await
    .unwrap();
    s.insert_container(&container("p1-1", "p1", 2), None)
        .await
        .unwrap();
    s.delete_pod("p1").await.unwrap();
    assert_eq!(s.get_pod("p1").await.unwrap(), None);
    assert_eq!(s.get_container("p1-0").await.unwrap(), None);
    assert!(s.list_containers().await.unwrap().is_empty());
    s.delete_pod("p1").await.unwrap();
}

/// A live pod's spec can be replaced (its egress policy); a missing pod reports false.
pub async fn a_pods_spec_can_be_replaced(s: &dyn ClusterStore) {
    assert!(!s.set_pod_spec("nope", "{}").await.unwrap());
    s.insert_pod(
        &pod("p1", "default", 100, None),
        &container("p1-0", "p1", 1),
        None,
    )
    .await
    .unwrap();
    assert!(s.set_pod_spec("p1", "{\"a\":2}").await.unwrap());
    assert_eq!(
        s.get_pod("p1").await.unwrap().unwrap().spec_json,
        "{\"a\":2}"
    );
}

/// Lookups of what does not exist are `None`, lists are empty, updates of it change nothing.
pub async fn missing_rows_are_none(s: &dyn ClusterStore) {
    assert_eq!(s.get_pod("nope").await.unwrap(), None);
    assert_eq!(s.get_container("nope").await.unwrap(), None);
    assert!(s.list_containers().await.unwrap().is_empty());
    assert!(s.live_containers().await.unwrap().is_empty());
    s.set_status("nope", "STOPPING", None).await.unwrap();
    s.set_last_active("nope", 1).await.unwrap();
    assert_eq!(s.get_container("nope").await.unwrap(), None);
}
