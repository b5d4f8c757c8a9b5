//! The route table: stub id → where its pod listens. The lifecycle inserts and removes
//! entries; the proxy reads them once per request.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, RwLock};

use crate::access::Access;
use crate::activity::Activity;
use crate::wake::{Wake, WakeError};

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
#[derive(Clone, Default)]
pub struct Routes {
    inner: Arc<RwLock<HashMap<String, Target>>>,
    /// Asked for a target when a key has no route (see [`crate::wake`]).
    waker: Arc<RwLock<Option<Arc<dyn Wake>>>>,
    /// Which keys need a token, and how tokens are checked (see [`crate::access`]).
    access: Access,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routes").field("len", &self.len()).finish()
    }
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

    /// Removes the route for `key` only if it still leads to the target counted by
    /// `activity` (a newer container may have taken the key over).
    pub fn remove_if_current(&self, key: &str, activity: &Arc<Activity>) {
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let key = key.to_ascii_lowercase();
        if map
            .get(&key)
            .is_some_and(|t| Arc::ptr_eq(&t.activity, activity))
        {
            map.remove(&key);
        }
    }

    /// Authorized pods' keys and the token check.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// Installs the waker asked about keys without a route.
    pub fn set_waker(&self, waker: Arc<dyn Wake>) {
        *self.waker.write().unwrap_or_else(|e| e.into_inner()) = Some(waker);
    }

    /// Asks the waker for a target for `key` (lowercased) and `port`; without a waker,
    /// nothing is found.
    pub async fn wake(&self, key: &str, port: u16) -> Result<Target, WakeError> {
        let waker = self.waker.read().unwrap_or_else(|e| e.into_inner()).clone();
        match waker {
            Some(w) => w.wake(&key.to_ascii_lowercase(), port).await,
            None => Err(WakeError::NotFound),
        }
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
