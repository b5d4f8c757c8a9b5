//! The prefix watch on a real etcd cluster: it resumes after its link drops without losing
//! or repeating an event, and when the revision it would resume from was compacted while
//! it was cut off, it lists again and delivers a snapshot equal to etcd's state.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use cove_store::etcd::{PrefixWatch, WatchEvent};
use etcd_client::{CompactionOptions, GetOptions};
use support::etcd::EtcdCluster;
use support::keys;
use support::link::Link;

type State = BTreeMap<String, Vec<u8>>;

/// Applies watch events to a local copy, as a consumer does.
fn apply(state: &mut State, event: &WatchEvent) {
    match event {
        WatchEvent::Snapshot { items, .. } => *state = items.iter().cloned().collect(),
        WatchEvent::Put { key, value, .. } => {
            state.insert(key.clone(), value.clone());
        }
        WatchEvent::Delete { key, .. } => {
            state.remove(key);
        }
    }
}

async fn next(watch: &mut PrefixWatch) -> WatchEvent {
    tokio::time::timeout(Duration::from_secs(20), watch.next())
        .await
        .expect("a watch event in time")
        .expect("the watch runs")
}

async fn etcd_state(raw: &mut etcd_client::Client) -> (i64, State) {
    let resp = raw
        .get(keys().pods(), Some(GetOptions::new().with_prefix()))
        .await
        .expect("get");
    let rev = resp.header().expect("header").revision();
    let state = resp
        .kvs()
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(kv.key()).into_owned(),
                kv.value().to_vec(),
            )
        })
        .collect();
    (rev, state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_resumes_after_a_cut_without_loss_or_repeat() {
    let cluster = EtcdCluster::start(3);
    let mut raw = etcd_client::Client::connect(cluster.endpoints(), None)
        .await
        .expect("raw client");
    raw.put(keys().pod("a"), "1", None).await.expect("put");
    let link = Link::start(cluster.client_addr(0)).await;
    let watcher_side = support::connect(vec![link.url()]).await;
    let mut watch = PrefixWatch::start(&watcher_side, &keys().pods());
    let mut state = State::new();
    let first = next(&mut watch).await;
    assert!(
        matches!(&first, WatchEvent::Snapshot { items, .. } if items.len() == 1),
        "{first:?}"
    );
    apply(&mut state, &first);

    raw.put(keys().pod("b"), "1", None).await.expect("put");
    let e = next(&mut watch).await;
    assert!(
        matches!(&e, WatchEvent::Put { key, .. } if key == &keys().pod("b")),
        "{e:?}"
    );
    apply(&mut state, &e);

    link.cut();
    let mut expected = Vec::new();
    for i in 0..10 {
        let r = raw
            .put(keys().pod(&format!("c{i}")), i.to_string(), None)
            .await
            .expect("put");
        expected.push(r.header().expect("header").revision());
    }
    let r = raw.delete(keys().pod("a"), None).await.expect("delete");
    expected.push(r.header().expect("header").revision());
    link.heal();

    // Exactly the eleven events, in order, each once, and no snapshot (nothing was compacted).
    let mut seen = Vec::new();
    while seen.len() < expected.len() {
        let e = next(&mut watch).await;
        match &e {
            WatchEvent::Put { revision, .. } | WatchEvent::Delete { revision, .. } => {
                seen.push(*revision)
            }
            WatchEvent::Snapshot { .. } => panic!("no compaction happened, yet a snapshot: {e:?}"),
        }
        apply(&mut state, &e);
    }
    assert_eq!(seen, expected);
    assert_eq!(state, etcd_state(&mut raw).await.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_lists_again_after_compaction_during_a_partition() {
    let cluster = EtcdCluster::start(3);
    let mut raw = etcd_client::Client::connect(cluster.endpoints(), None)
        .await
        .expect("raw client");
    for k in ["a", "b", "c"] {
        raw.put(keys().pod(k), "v1", None).await.expect("put");
    }
    let link = Link::start(cluster.client_addr(0)).await;
    let watcher_side = support::connect(vec![link.url()]).await;
    let mut watch = PrefixWatch::start(&watcher_side, &keys().pods());
    let mut state = State::new();
    apply(&mut state, &next(&mut watch).await);
    raw.put(keys().pod("d"), "v1", None).await.expect("put");
    apply(&mut state, &next(&mut watch).await);
    assert_eq!(state.len(), 4);

    // While the watcher is cut off: changes, then a compaction past all of them.
    link.cut();
    raw.put(keys().pod("a"), "v2", None).await.expect("put");
    raw.delete(keys().pod("b"), None).await.expect("delete");
    raw.put(keys().pod("e"), "v1", None).await.expect("put");
    // A key outside the prefix moves the revision on, so the compaction covers the changes.
    let r = raw.put("/cove/v1/other", "x", None).await.expect("put");
    let compact_at = r.header().expect("header").revision();
    raw.compact(compact_at, Some(CompactionOptions::new().with_physical()))
        .await
        .expect("compact");
    let (_, truth) = etcd_state(&mut raw).await;
    link.heal();

    // The watcher cannot resume from its revision: it re-lists and gets etcd's state.
    let e = next(&mut watch).await;
    match &e {
        WatchEvent::Snapshot { revision, .. } => assert!(*revision >= compact_at, "{e:?}"),
        other => panic!("expected a snapshot after compaction, got {other:?}"),
    }
    apply(&mut state, &e);
    assert_eq!(state, truth);

    // And it watches on from there.
    raw.put(keys().pod("f"), "v1", None).await.expect("put");
    let e = next(&mut watch).await;
    assert!(
        matches!(&e, WatchEvent::Put { key, .. } if key == &keys().pod("f")),
        "{e:?}"
    );
    apply(&mut state, &e);
    assert_eq!(state, etcd_state(&mut raw).await.1);
}
