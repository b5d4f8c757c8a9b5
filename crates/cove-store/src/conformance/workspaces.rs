//! Tokens, workspace limits and the list of workspaces.

use super::{container, max_pods, pod};
use crate::{ClusterStore, Limits, TokenRow};

fn token(id: &str, name: &str, ws: &str) -> TokenRow {
    TokenRow {
        id: id.into(),
        name: name.into(),
        workspace: ws.into(),
        hash: format!("hash-{id}"),
        created_at: 1,
        last_used_at: None,
    }
}

/// Tokens: unique names and hashes, listed by name, removed by id or name, use recorded.
pub async fn tokens_round_trip(s: &dyn ClusterStore) {
    s.insert_token(&token("t2", "deploy", "team-b"), None)
        .await
        .unwrap();
    s.insert_token(&token("t1", "ci", "team-a"), None)
        .await
        .unwrap();
    assert!(
        s.insert_token(&token("t3", "ci", "team-a"), None)
            .await
            .is_err(),
        "taken name"
    );
    let mut same_hash = token("t4", "other", "team-a");
    same_hash.hash = "hash-t1".into();
    assert!(
        s.insert_token(&same_hash, None).await.is_err(),
        "taken hash"
    );
    assert!(s.token_name_taken("ci").await.unwrap());
    assert!(!s.token_name_taken("other").await.unwrap());
    s.set_token_used("t1", 9).await.unwrap();
    let list = s.list_tokens().await.unwrap();
    let names: Vec<&str> = list.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["ci", "deploy"]);
    assert_eq!(list[0].last_used_at, Some(9));
    assert_eq!(list[0].hash, "hash-t1");
    let gone = s.delete_token("ci").await.unwrap().map(|r| r.id);
    assert_eq!(gone, Some("t1".into()));
    assert_eq!(s.delete_token("t1").await.unwrap(), None);
    let gone = s.delete_token("t2").await.unwrap().map(|r| r.name);
    assert_eq!(gone, Some("deploy".into()));
    assert!(s.list_tokens().await.unwrap().is_empty());
    assert!(!s.token_name_taken("ci").await.unwrap());
}

/// A token made with limits sets them on its workspace; a refused token sets nothing.
pub async fn a_token_sets_its_workspaces_limits(s: &dyn ClusterStore) {
    s.insert_token(&token("t1", "ci", "team-a"), Some(&max_pods(3)))
        .await
        .unwrap();
    assert_eq!(s.workspace_limits("team-a").await.unwrap(), max_pods(3));
    let refused = s
        .insert_token(&token("t2", "ci", "team-b"), Some(&max_pods(9)))
        .await;
    assert!(refused.is_err());
    assert_eq!(
        s.workspace_limits("team-b").await.unwrap(),
        Limits::default()
    );
    let names: Vec<String> = s
        .workspaces()
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.0)
        .collect();
    assert_eq!(names, ["team-a"]);
}

/// Limits are set one field at a time; a field not given keeps its value.
pub async fn limits_are_set_field_by_field(s: &dyn ClusterStore) {
    assert_eq!(s.workspace_limits("w").await.unwrap(), Limits::default());
    let first = Limits {
        max_pods: Some(5),
        max_cpu_millis: Some(2000),
        ..Default::default()
    };
    s.set_workspace_limits("w", &first).await.unwrap();
    s.set_workspace_limits("w", &max_pods(7)).await.unwrap();
    let disk = Limits {
        max_memory_mib: Some(512),
        max_disk_mib: Some(1024),
        ..Default::default()
    };
    s.set_workspace_limits("w", &disk).await.unwrap();
    let want = Limits {
        max_pods: Some(7),
        max_cpu_millis: Some(2000),
        max_memory_mib: Some(512),
        max_disk_mib: Some(1024),
    };
    assert_eq!(s.workspace_limits("w").await.unwrap(), want);
    assert_eq!(
        s.workspace_limits("other").await.unwrap(),
        Limits::default()
    );
}

/// Workspaces: every one with a token, a pod or limits, by name, with its token count.
pub async fn workspaces_are_listed(s: &dyn ClusterStore) {
    assert!(s.workspaces().await.unwrap().is_empty());
    s.insert_token(&token("t1", "a1", "ws-a"), None)
        .await
        .unwrap();
    s.insert_token(&token("t2", "a2", "ws-a"), None)
        .await
        .unwrap();
    s.insert_pod(
        &pod("p1", "ws-c", 100, None),
        &container("p1-0", "p1", 1),
        None,
    )
    .await
    .unwrap();
    s.insert_pod(
        &pod("p2", "ws-c", 100, None),
        &container("p2-0", "p2", 1),
        None,
    )
    .await
    .unwrap();
    s.set_workspace_limits("ws-b", &max_pods(1)).await.unwrap();
    s.set_workspace_limits("ws-a", &max_pods(1)).await.unwrap();
    let want = [("ws-a", 2), ("ws-b", 0), ("ws-c", 0)].map(|(w, n)| (w.to_string(), n));
    assert_eq!(s.workspaces().await.unwrap(), want);
}
