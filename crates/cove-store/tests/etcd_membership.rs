//! Node membership on a real etcd cluster: a node cut off from etcd fences itself before
//! etcd expires its lease, is listed LOST, and rejoins with a new lease; drain, crash, leave
//! and name clashes show in the listing.

mod support;

use std::time::Duration;

use cove_store::etcd::nodes::{self, NodeInfo, NodeStatus};
use cove_store::etcd::{BootInstant, Health, Membership, MembershipConfig};
use cove_store::etcd::{PrefixWatch, WatchEvent};
use support::etcd::EtcdCluster;
use support::keys;
use support::link::Link;

fn info(name: &str) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        address: "10.0.0.11".into(),
        api_url: "http://10.0.0.11:7070".into(),
        gateway_url: "http://10.0.0.11:8080".into(),
        cpu_millis: 4000,
        memory_mib: 8192,
        isolations: vec!["runc".into()],
        draining: false,
        joined_ms: 0,
    }
}

/// TTL 3 s, a renewal every second, self-fence 1 s before the TTL.
fn quick() -> MembershipConfig {
    MembershipConfig {
        ttl: Duration::from_secs(3),
        keepalive_interval: Duration::from_secs(1),
        fence_margin: Duration::from_secs(1),
    }
}

async fn status_of(etcd: &cove_store::etcd::Etcd, name: &str) -> Option<(NodeStatus, Option<i64>)> {
    let listed = nodes::list_nodes(etcd).await.expect("list nodes");
    let node = listed.into_iter().find(|n| n.info.name == name)?;
    // The heartbeat age is within the TTL while the node is listed with a lease (None if
    // the lease expired between the listing and the question).
    if node.lease.is_some() {
        assert!(
            node.since_renewal_secs.is_none_or(|s| (0..=3).contains(&s)),
            "{node:?}"
        );
    } else {
        assert_eq!(node.since_renewal_secs, None);
    }
    Some((node.status, node.lease))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_node_fences_itself_before_etcd_drops_it_and_rejoins() {
    let cluster = EtcdCluster::start(3);
    let observer = support::connect(cluster.endpoints()).await;
    let link = Link::start(cluster.client_addr(0)).await;
    let node_side = support::connect(vec![link.url()]).await;
    let node = Membership::join(&node_side, info("host-a"), quick())
        .await
        .expect("join");
    let Some((NodeStatus::Ready, Some(old_lease))) = status_of(&observer, "host-a").await else {
        panic!("host-a must be READY after joining");
    };

    // The observer's watch on nodes/ timestamps the moment etcd drops the node.
    let mut watch = PrefixWatch::start(&observer, &keys().nodes());
    let first = watch.next().await.expect("snapshot");
    assert!(
        matches!(&first, WatchEvent::Snapshot { items, .. } if items.len() == 1),
        "{first:?}"
    );
    let dropped = tokio::spawn(async move {
        loop {
            match watch.next().await.expect("watch runs") {
                WatchEvent::Delete { key, .. } if key == keys().node("host-a") => {
                    return BootInstant::now()
                }
                _ => continue,
            }
        }
    });
    let mut health = node.health();
    let fenced = tokio::spawn(async move {
        loop {
            if matches!(*health.borrow_and_update(), Health::Fenced { lease } if lease == old_lease)
            {
                return BootInstant::now();
            }
            health.changed().await.expect("membership runs");
        }
    });

    link.cut();
    let fenced_at = tokio::time::timeout(Duration::from_secs(15), fenced)
        .await
        .expect("fenced in time")
        .expect("task");
    let dropped_at = tokio::time::timeout(Duration::from_secs(15), dropped)
        .await
        .expect("dropped in time")
        .expect("task");
    assert!(
        fenced_at < dropped_at,
        "the node fenced itself ({fenced_at:?}) before etcd dropped it ({dropped_at:?})"
    );
    assert_eq!(
        status_of(&observer, "host-a").await,
        Some((NodeStatus::Lost, None))
    );

    // The link comes back: the node registers again under a new lease and is READY.
    link.heal();
    let mut health = node.health();
    let new_lease = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if let Health::Live { lease, .. } = *health.borrow_and_update() {
                if lease != old_lease {
                    return lease;
                }
            }
            health.changed().await.expect("membership runs");
        }
    })
    .await
    .expect("rejoined in time");
    assert_eq!(
        status_of(&observer, "host-a").await,
        Some((NodeStatus::Ready, Some(new_lease)))
    );
    node.leave().await.expect("leave");
    assert_eq!(status_of(&observer, "host-a").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_crash_leave_and_name_clashes_show_in_the_listing() {
    let cluster = EtcdCluster::start(3);
    let etcd = support::connect(cluster.endpoints()).await;
    let a = Membership::join(&etcd, info("host-a"), quick())
        .await
        .expect("join a");
    let b = Membership::join(&etcd, info("host-b"), quick())
        .await
        .expect("join b");
    let Some((NodeStatus::Ready, a_lease)) = status_of(&etcd, "host-a").await else {
        panic!("a READY")
    };

    nodes::set_draining(&etcd, "host-a", true)
        .await
        .expect("drain");
    assert_eq!(
        status_of(&etcd, "host-a").await,
        Some((NodeStatus::Draining, a_lease)),
        "keeps its lease"
    );
    assert!(matches!(
        status_of(&etcd, "host-b").await,
        Some((NodeStatus::Ready, Some(_)))
    ));
    let err = nodes::set_draining(&etcd, "nobody", true)
        .await
        .expect_err("unknown node");
    assert_eq!(err.to_string(), "no node named nobody in the cluster");

    // b dies without leaving (as kill -9): LOST once etcd expires its lease.
    drop(b);
    support::eventually("host-b LOST", Duration::from_secs(15), || async {
        status_of(&etcd, "host-b").await == Some((NodeStatus::Lost, None))
    })
    .await;
    assert!(matches!(
        status_of(&etcd, "host-a").await,
        Some((NodeStatus::Draining, Some(_)))
    ));

    // A restarted b joins again under a new lease.
    let b2 = Membership::join(&etcd, info("host-b"), quick())
        .await
        .expect("rejoin b");
    assert!(matches!(
        status_of(&etcd, "host-b").await,
        Some((NodeStatus::Ready, Some(_)))
    ));

    // A second process claiming a live name waits for its lease, then gives up clearly.
    let clash = Membership::join(&etcd, info("host-b"), quick())
        .await
        .err()
        .expect("name held");
    assert!(
        clash
            .to_string()
            .contains("node name host-b is held by another live node"),
        "{clash}"
    );
    assert!(
        matches!(*b2.health().borrow(), Health::Live { .. }),
        "the holder is untouched"
    );

    a.leave().await.expect("leave");
    assert_eq!(status_of(&etcd, "host-a").await, None);

    for bad in ["", "a/b", ".."] {
        let err = Membership::join(&etcd, info(bad), quick())
            .await
            .err()
            .expect(bad);
        assert!(err.to_string().starts_with("invalid node name"), "{err}");
    }
    let mut slow = quick();
    slow.keepalive_interval = Duration::from_secs(3);
    let err = Membership::join(&etcd, info("host-c"), slow)
        .await
        .err()
        .expect("bad timings");
    assert!(err.to_string().contains("must be under the TTL"), "{err}");
    assert_eq!(status_of(&etcd, "host-c").await, None, "nothing registered");
}
