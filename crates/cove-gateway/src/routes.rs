//! The route table: stub id → where its pod listens. The lifecycle inserts and removes
//! entries; the proxy reads them once per request.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, RwLock};

use crate::activity::Activity;

/// Where one stub's pod can be reached, and its keep-warm counters.
#[derive(Clone, Debug)]
pub struct Target {
    /// The pod's address on the host bridge.
    pub address: Ipv4Addr,
    /// Ports the pod exposes; requests for any other port get a 404.
    pub ports: Vec<u16>,
    /// Shared with the lifecycle, which reads it to decide when a pod is idle.
    pub activity: Arc<Activity>,
}

/// Shared, cheaply clonable route table. The lock is a std `RwLock`, only ever held for a
/// map operation and never across an `.await`.
#[derive(Clone, Default, Debug)]
pub struct Routes {
    inner: Arc<RwLock<HashMap<String, Target>>>,
}

impl Routes {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces the route for `stub_id` (stored lowercase: hosts are matched
    /// case-insensitively).
    pub fn insert(&self, stub_id: &str, target: Target) {
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        map.insert(stub_id.to_ascii_lowercase(), target);
    }

    /// Removes the route for `stub_id`; unknown ids are ignored.
    pub fn remove(&self, stub_id: &str) {
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        map.remove(&stub_id.to_ascii_lowercase());
    }

    /// The route for `stub_id`, if any.
    pub fn get(&self, stub_id: &str) -> Option<Target> {
        let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
        map.get(&stub_id.to_ascii_lowercase()).cloned()
    }

    /// Number of routes (for diagnostics).
    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_remove_case_insensitive() {
        let routes = Routes::new();
        let t = Target {
            address: Ipv4Addr::new(10, 0, 0, 2),
            ports: vec![80],
            activity: Arc::new(Activity::new()),
        };
        routes.insert("ABC", t);
        assert_eq!(routes.get("abc").map(|t| t.ports), Some(vec![80]));
        let clone = routes.clone();
        clone.remove("Abc");
        assert!(routes.get("abc").is_none());
        assert!(routes.is_empty());
    }
}
