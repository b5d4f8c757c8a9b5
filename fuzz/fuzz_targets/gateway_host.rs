//! The gateway's router (`crates/cove-gateway/src/host.rs` and `routes.rs`): a `Host` header
//! and a `/pod/<id>/<port>/...` path, both attacker-controlled, never panic the parser; what
//! they accept is a valid stub id and port that round-trips through the host form the daemon
//! prints, and the route table finds a pod only under its own (case-insensitive) id.
#![no_main]

use std::sync::Arc;

use cove_gateway::host::{classify_host, parse_pod_path, HostMatch, MAX_ID_LEN};
use cove_gateway::{Activity, Routes, Target};
use libfuzzer_sys::fuzz_target;

const KNOWN: &str = "2929b184-b445-4f23-abc6-7c4b151001da";

fn check_pod(id: &str, port: u16, routes: &Routes) {
    assert!(!id.is_empty() && id.len() <= MAX_ID_LEN, "id {id:?}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
        "id {id:?}"
    );
    assert_ne!(port, 0);
    for host in [
        format!("{id}-{port}.localhost"),
        format!("{id}-{port}.localhost:8080"),
    ] {
        assert_eq!(
            classify_host(&host, "localhost"),
            HostMatch::Pod(id.to_string(), port),
            "{host:?} does not route back to ({id:?}, {port})"
        );
    }
    assert_eq!(
        routes.get(id).is_some(),
        id == KNOWN,
        "route lookup of {id:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let routes = Routes::new();
    routes.insert(
        KNOWN,
        Target {
            address: std::net::Ipv4Addr::new(10, 209, 0, 2),
            ports: vec![8000],
            activity: Arc::new(Activity::new()),
        },
    );
    for domain in ["localhost", "pods.example.com", ""] {
        if let HostMatch::Pod(id, port) = classify_host(s, domain) {
            check_pod(&id, port, &routes);
        }
    }
    let (path, query) = match s.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (s, None),
    };
    if let Some(Ok(pp)) = parse_pod_path(path, query) {
        assert!(pp.rest.starts_with('/'), "{pp:?}");
        check_pod(&pp.id, pp.port, &routes);
    }
});
