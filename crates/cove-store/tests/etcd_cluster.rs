//! The etcd client against a real 3-member cluster: a lost member changes nothing, a lost
//! quorum is a clear `Unavailable` within the request timeout, a restarted member serves
//! what was written while it was down.

mod support;

use std::time::Duration;

use cove_store::etcd::{bindings, nodes, Etcd, EtcdConfig};
use cove_store::StoreError;
use support::etcd::EtcdCluster;
use support::keys;

/// Writes and reads through the store's own calls (a binding, its fenced record, a listing).
async fn round_trip(etcd: &Etcd, pod: &str) {
    let bound = bindings::bind_if_absent(etcd, pod, "host-a")
        .await
        .expect("bind");
    let fence = bound.binding().fence();
    let key = keys().pod(pod);
    bindings::fenced_put(etcd, &key, b"{\"status\":\"RUNNING\"}", &fence)
        .await
        .expect("fenced put");
    let read = bindings::get_binding(etcd, pod)
        .await
        .expect("get")
        .expect("bound");
    assert_eq!(read.fence(), fence);
    nodes::list_nodes(etcd).await.expect("list nodes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_one_member_changes_nothing_and_a_restarted_member_catches_up() {
    let mut cluster = EtcdCluster::start(3);
    let etcd = support::connect(cluster.endpoints()).await;
    round_trip(&etcd, "before").await;

    // Each member in turn: with it down, every request still succeeds.
    for down in 0..3 {
        cluster.kill(down);
        for n in 0..20 {
            round_trip(&etcd, &format!("down{down}-{n}")).await;
        }
        cluster.restart(down);
        // The restarted member alone serves what the others wrote while it was down.
        let only = support::connect(vec![cluster.endpoint(down)]).await;
        for n in 0..20 {
            let pod = format!("down{down}-{n}");
            let got = bindings::get_binding(&only, &pod)
                .await
                .expect("read on restarted member");
            assert!(got.is_some(), "member {down} lacks {pod} after its restart");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_quorum_is_unavailable_within_the_request_timeout() {
    let mut cluster = EtcdCluster::start(3);
    let etcd = support::connect(cluster.endpoints()).await;
    round_trip(&etcd, "p0").await;
    cluster.kill(1);
    cluster.kill(2);

    let timeout = etcd.config().request_timeout;
    // Bounded: the call must come back by itself; the outer limit only keeps a hang from
    // hanging the test run.
    let outcome = tokio::time::timeout(
        timeout + Duration::from_secs(2),
        bindings::bind_if_absent(&etcd, "p1", "host-a"),
    )
    .await
    .expect("a request without quorum must return within the request timeout");
    match outcome {
        Err(StoreError::Unavailable(why)) => {
            let line = StoreError::Unavailable(why).to_string();
            assert!(line.starts_with("etcd cluster unavailable: "), "{line}");
            assert!(!line.contains('\n'), "one line: {line}");
            for endpoint in cluster.endpoints() {
                assert!(line.contains(&endpoint), "names {endpoint}: {line}");
            }
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let read = tokio::time::timeout(
        timeout + Duration::from_secs(2),
        bindings::get_binding(&etcd, "p0"),
    )
    .await
    .expect("a read without quorum must return within the request timeout");
    assert!(matches!(read, Err(StoreError::Unavailable(_))), "{read:?}");

    // Quorum back: the same client works again, and nothing was half-written.
    cluster.restart_no_wait(1);
    cluster.wait_healthy(1);
    support::eventually(
        "writes after quorum returns",
        Duration::from_secs(20),
        || async { bindings::get_binding(&etcd, "p0").await.is_ok() },
    )
    .await;
    assert_eq!(
        bindings::get_binding(&etcd, "p1").await.expect("read"),
        None
    );
    round_trip(&etcd, "p2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoints_and_bad_lists_are_one_line_errors() {
    // Nothing listens on port 9 of this loopback address.
    let mut config = EtcdConfig::parse("http://127.0.0.1:9").expect("parse");
    config.request_timeout = Duration::from_secs(1);
    let err = Etcd::connect(config).await.err().expect("no etcd there");
    let line = err.to_string();
    assert!(
        line.starts_with("etcd cluster unavailable: ") && line.contains("http://127.0.0.1:9"),
        "{line}"
    );
    for bad in [
        "",
        "10.0.0.1:2379",
        "http://10.0.0.1",
        "https://a:1",
        "http://a:99999",
    ] {
        let err = EtcdConfig::parse(bad).expect_err(bad).to_string();
        assert!(
            err.contains("etcd endpoint") || err.contains("no etcd endpoints"),
            "{bad}: {err}"
        );
    }
    assert_eq!(
        EtcdConfig::parse(" http://a:1/, http://b:2")
            .expect("parse")
            .endpoints,
        ["http://a:1", "http://b:2"]
    );
}
