//! Deployments: each version is a pod whose `deployment_id` is set; the row points at the
//! current one.

use super::{container, deployment, pod};
use crate::{ClusterStore, PodRow};

fn version_pod(id: &str, dep_id: &str, at: i64) -> PodRow {
    let mut p = pod(id, "team-a", 100, None);
    p.deployment_id = Some(dep_id.into());
    p.name = Some("app".into());
    p.created_at = at;
    p
}

/// A deployment comes back by id and by name; the list is by name.
pub async fn deployment_round_trip(s: &dyn ClusterStore) {
    for (name, pod_id) in [("web", "p1"), ("api", "p2")] {
        let d = deployment(name, "team-a", pod_id);
        let p = version_pod(pod_id, &d.id, 1);
        s.insert_deployment(&d, &p, &container(&format!("{pod_id}-0"), pod_id, 1), None)
            .await
            .unwrap();
        assert_eq!(s.get_deployment(&d.id).await.unwrap(), Some(d.clone()));
        assert_eq!(s.get_deployment_by_name(name).await.unwrap(), Some(d));
        assert_eq!(s.get_pod(pod_id).await.unwrap(), Some(p));
        assert!(s
            .get_container(&format!("{pod_id}-0"))
            .await
            .unwrap()
            .is_some());
    }
    let names: Vec<String> = s
        .list_deployments()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["api", "web"]);
    assert_eq!(s.get_deployment("nope").await.unwrap(), None);
    assert_eq!(s.get_deployment_by_name("nope").await.unwrap(), None);
}

/// A second deployment with a taken name, or a taken url key, records nothing at all.
pub async fn a_taken_name_or_url_key_records_nothing(s: &dyn ClusterStore) {
    let d = deployment("app", "team-a", "p1");
    s.insert_deployment(
        &d,
        &version_pod("p1", &d.id, 1),
        &container("p1-0", "p1", 1),
        None,
    )
    .await
    .unwrap();
    let mut same_name = deployment("app", "team-a", "p2");
    same_name.id = "d2".into();
    same_name.url_key = "app-ffffffff".into();
    let mut same_key = deployment("other", "team-a", "p2");
    same_key.url_key = d.url_key.clone();
    for d2 in [same_name, same_key] {
        let p2 = version_pod("p2", &d2.id, 2);
        assert!(s
            .insert_deployment(&d2, &p2, &container("p2-0", "p2", 2), None)
            .await
            .is_err());
        assert_eq!(s.get_deployment(&d2.id).await.unwrap(), None);
        assert_eq!(s.get_pod("p2").await.unwrap(), None);
        assert_eq!(s.get_container("p2-0").await.unwrap(), None);
    }
    assert_eq!(s.list_deployments().await.unwrap(), vec![d]);
}

/// A new version and a status change show in the row with their time.
pub async fn version_and_status_change(s: &dyn ClusterStore) {
    let d = deployment("app", "team-a", "p1");
    s.insert_deployment(
        &d,
        &version_pod("p1", &d.id, 1),
        &container("p1-0", "p1", 1),
        None,
    )
    .await
    .unwrap();
    s.insert_pod(
        &version_pod("p2", &d.id, 2),
        &container("p2-0", "p2", 2),
        None,
    )
    .await
    .unwrap();
    s.set_deployment_version(&d.id, 2, "p2", 5).await.unwrap();
    let r = s.get_deployment_by_name("app").await.unwrap().unwrap();
    assert_eq!(
        (
            r.version,
            r.pod_id.as_deref(),
            r.status.as_str(),
            r.updated_at
        ),
        (2, Some("p2"), "ACTIVE", 5)
    );
    s.set_deployment_status(&d.id, "STOPPED", 6).await.unwrap();
    let r = s.get_deployment(&d.id).await.unwrap().unwrap();
    assert_eq!(
        (
            r.version,
            r.pod_id.as_deref(),
            r.status.as_str(),
            r.updated_at
        ),
        (2, Some("p2"), "STOPPED", 6)
    );
    assert_eq!((r.created_at, r.url_key), (1, d.url_key));
}

/// Versions: the deployment's pods that ran, and the current one, oldest first.
pub async fn versions_are_the_pods_that_ran_and_the_current_one(s: &dyn ClusterStore) {
    let d = deployment("app", "team-a", "p1");
    s.insert_deployment(
        &d,
        &version_pod("p1", &d.id, 1),
        &container("p1-0", "p1", 1),
        None,
    )
    .await
    .unwrap();
    s.set_running("p1-0", "10.0.0.2", 1, 2).await.unwrap();
    // p2 never ran (a deploy killed halfway); p3 is current; p4 belongs to another deployment.
    for (id, dep, at) in [
        ("p2", d.id.as_str(), 3),
        ("p3", d.id.as_str(), 4),
        ("p4", "d-x", 5),
    ] {
        s.insert_pod(
            &version_pod(id, dep, at),
            &container(&format!("{id}-0"), id, at),
            None,
        )
        .await
        .unwrap();
    }
    s.set_running("p4-0", "10.0.0.3", 1, 6).await.unwrap();
    let ids = |pods: Vec<PodRow>| pods.into_iter().map(|p| p.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.deployment_versions(&d.id, Some("p3")).await.unwrap()),
        ["p1", "p3"]
    );
    assert_eq!(
        ids(s.deployment_versions(&d.id, None).await.unwrap()),
        ["p1"]
    );
    assert!(s
        .deployment_versions("nope", None)
        .await
        .unwrap()
        .is_empty());
}

/// Deleting a deployment keeps its versions' pods and containers as history.
pub async fn delete_keeps_the_versions_pods(s: &dyn ClusterStore) {
    let d = deployment("app", "team-a", "p1");
    s.insert_deployment(
        &d,
        &version_pod("p1", &d.id, 1),
        &container("p1-0", "p1", 1),
        None,
    )
    .await
    .unwrap();
    s.delete_deployment(&d.id).await.unwrap();
    assert_eq!(s.get_deployment(&d.id).await.unwrap(), None);
    assert_eq!(s.get_deployment_by_name("app").await.unwrap(), None);
    assert!(s.list_deployments().await.unwrap().is_empty());
    assert!(s.get_pod("p1").await.unwrap().is_some());
    assert!(s.get_container("p1-0").await.unwrap().is_some());
    // The name is free again.
    let again = deployment("app", "team-a", "p2");
    s.insert_deployment(
        &again,
        &version_pod("p2", &again.id, 2),
        &container("p2-0", "p2", 2),
        None,
    )
    .await
    .unwrap();
}
