//! Shared by the etcd tests: a real etcd cluster, a link that can be cut, and a client.
#![allow(dead_code)]

pub mod etcd;
pub mod link;

use std::time::Duration;

use cove_store::etcd::{Etcd, EtcdConfig, Keys, DEFAULT_ROOT};

/// A client of `endpoints` with short timeouts, so failures show within seconds.
pub async fn connect(endpoints: Vec<String>) -> Etcd {
    let mut config = EtcdConfig::new(endpoints);
    config.dial_timeout = Duration::from_millis(500);
    config.request_timeout = Duration::from_secs(3);
    Etcd::connect(config).await.expect("connect to etcd")
}

/// Waits (bounded) for `check` to hold, polling every 100 ms.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let give_up = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < give_up,
            "{what}: not within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The keys under the default root, which every test client uses.
pub fn keys() -> Keys {
    Keys::new(DEFAULT_ROOT).expect("the default root")
}
