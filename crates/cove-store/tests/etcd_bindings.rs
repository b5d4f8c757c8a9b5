//! Bindings on a real etcd cluster: one winner of many concurrent binds, and a fencing token
//! that stops working the moment the pod is rebound.

mod support;

use cove_store::etcd::bindings::{self, BindOutcome};
use cove_store::StoreError;
use support::etcd::EtcdCluster;
use support::keys;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_binds_have_exactly_one_winner() {
    let cluster = EtcdCluster::start(3);
    // Each caller its own connection, as twenty gateways on different hosts would be.
    let mut callers = Vec::new();
    for i in 0..20 {
        let endpoints = cluster.endpoints();
        callers.push(tokio::spawn(async move {
            let etcd = support::connect(endpoints).await;
            bindings::bind_if_absent(&etcd, "pod-1", &format!("host-{i}")).await
        }));
    }
    let mut outcomes = Vec::new();
    for caller in callers {
        outcomes.push(caller.await.expect("task").expect("bind"));
    }
    let winners: Vec<_> = outcomes
        .iter()
        .filter(|o| matches!(o, BindOutcome::Won(_)))
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:#?}");
    let winner = winners[0].binding().clone();
    for o in &outcomes {
        assert_eq!(
            o.binding(),
            &winner,
            "every loser sees the winner's binding"
        );
    }
    let etcd = support::connect(cluster.endpoints()).await;
    assert_eq!(
        bindings::get_binding(&etcd, "pod-1").await.expect("get"),
        Some(winner)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_fencing_token_is_refused() {
    let cluster = EtcdCluster::start(3);
    let etcd = support::connect(cluster.endpoints()).await;
    let key = keys().pod("p1");
    let BindOutcome::Won(on_a) = bindings::bind_if_absent(&etcd, "p1", "host-a")
        .await
        .expect("bind")
    else {
        panic!("first bind must win");
    };
    let old = on_a.fence();
    bindings::fenced_put(&etcd, &key, b"from-a", &old)
        .await
        .expect("a writes under its binding");

    // Failover: the control side moves the pod to host-b, comparing a's revision.
    let on_b = bindings::rebind(&etcd, &old, "host-b")
        .await
        .expect("rebind");
    assert!(on_b.revision > old.revision);
    let new = on_b.fence();
    bindings::fenced_put(&etcd, &key, b"from-b", &new)
        .await
        .expect("b writes");

    // host-a comes back and acts on its old binding: every write is refused, nothing lands.
    let put = bindings::fenced_put(&etcd, &key, b"from-a-again", &old).await;
    let del = bindings::fenced_delete(&etcd, &key, &old).await;
    let rebind = bindings::rebind(&etcd, &old, "host-c").await;
    let unbind = bindings::unbind(&etcd, &old).await;
    for (what, r) in [("put", put), ("delete", del), ("unbind", unbind)] {
        match r {
            Err(StoreError::Fenced(why)) => assert!(why.contains("host-b"), "{what}: {why}"),
            other => panic!("{what} with a stale token: {other:?}"),
        }
    }
    assert!(matches!(rebind, Err(StoreError::Fenced(_))), "{rebind:?}");
    let mut raw = etcd_client::Client::connect(cluster.endpoints(), None)
        .await
        .expect("raw client");
    let got = raw.get(key.as_str(), None).await.expect("get");
    assert_eq!(got.kvs()[0].value(), b"from-b");
    assert_eq!(
        bindings::get_binding(&etcd, "p1").await.expect("get"),
        Some(on_b.clone())
    );

    // Unbinding with the current token works, and then that token is stale too.
    bindings::unbind(&etcd, &new).await.expect("unbind");
    assert_eq!(bindings::get_binding(&etcd, "p1").await.expect("get"), None);
    let after = bindings::fenced_put(&etcd, &key, b"late", &new).await;
    assert!(
        matches!(&after, Err(StoreError::Fenced(why)) if why.contains("no longer bound")),
        "{after:?}"
    );

    // A new binding of the same pod gets a new token; neither old one passes.
    let again = bindings::bind_if_absent(&etcd, "p1", "host-a")
        .await
        .expect("bind again");
    assert!(matches!(again, BindOutcome::Won(_)));
    assert!(again.binding().revision > new.revision);
    assert!(bindings::fenced_put(&etcd, &key, b"x", &old).await.is_err());
    assert!(bindings::fenced_put(&etcd, &key, b"x", &new).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pod_ids_are_refused_before_any_key_is_written() {
    let cluster = EtcdCluster::start(3);
    let etcd = support::connect(cluster.endpoints()).await;
    for bad in ["", "a/b", "../nodes/x", "p 1"] {
        let err = bindings::bind_if_absent(&etcd, bad, "host-a")
            .await
            .expect_err(bad);
        assert!(err.to_string().starts_with("invalid pod id"), "{err}");
    }
    let mut raw = etcd_client::Client::connect(cluster.endpoints(), None)
        .await
        .expect("raw client");
    let all = raw
        .get(
            keys().root(),
            Some(etcd_client::GetOptions::new().with_prefix()),
        )
        .await
        .expect("get");
    assert!(all.kvs().is_empty(), "nothing written");
}
