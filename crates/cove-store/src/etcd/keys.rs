//! The key layout under the root (`/cove/v1/` by default). Every etcd key Cove uses is built
//! here.
//!
//! - `nodes/<name>`: a live node, attached to its lease (gone when the lease expires).
//! - `node-info/<name>`: the same record without a lease, kept so a node whose lease
//!   expired is listed LOST instead of vanishing.
//! - `bindings/<pod>`: which node runs a pod; its mod_revision is the fencing token.
//! - `pods/<pod>`, `deployments/<id>`, `tokens/…`, `workspaces/…`, `images/…`: rows.

use std::sync::Arc;

use crate::StoreError;

/// The default root: everything Cove keeps in etcd lives under it (the version is the
/// layout's). Another root lets two Cove clusters, or tests, share one etcd.
pub const DEFAULT_ROOT: &str = "/cove/v1/";

/// The keys under one root; built once per connection (see `EtcdConfig::root`).
#[derive(Debug, Clone)]
pub struct Keys {
    root: Arc<str>,
}

impl Keys {
    /// `root` must start and end with `/`, e.g. `/cove/v1/`.
    pub fn new(root: &str) -> Result<Keys, StoreError> {
        if root.len() < 2 || !root.starts_with('/') || !root.ends_with('/') {
            return Err(StoreError::Invalid(format!(
                "etcd key root {root:?} must start and end with '/', e.g. {DEFAULT_ROOT}"
            )));
        }
        Ok(Keys { root: root.into() })
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    /// The prefix of every live node's record.
    pub fn nodes(&self) -> String {
        format!("{}nodes/", self.root)
    }

    pub fn node(&self, name: &str) -> String {
        format!("{}nodes/{name}", self.root)
    }

    /// The prefix of every node's lease-less record.
    pub fn node_infos(&self) -> String {
        format!("{}node-info/", self.root)
    }

    pub fn node_info(&self, name: &str) -> String {
        format!("{}node-info/{name}", self.root)
    }

    pub fn bindings(&self) -> String {
        format!("{}bindings/", self.root)
    }

    pub fn binding(&self, pod: &str) -> String {
        format!("{}bindings/{pod}", self.root)
    }

    pub fn pods(&self) -> String {
        format!("{}pods/", self.root)
    }

    pub fn pod(&self, pod: &str) -> String {
        format!("{}pods/{pod}", self.root)
    }
}

/// Checks a node name or pod id before it becomes part of a key: 1–128 characters of
/// letters, digits, `-`, `_` and `.`, so no name can reach into another's key or prefix.
pub fn check_name(what: &str, name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "invalid {what} {name:?}: use 1-128 letters, digits, '-', '_' or '.'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_their_prefix() {
        assert!(check_name("node name", "host-a.1_x").is_ok());
        for bad in ["", "a/b", "..", ".", "a b", "é", &"x".repeat(129)] {
            let err = check_name("node name", bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid node name"), "{err}");
        }
        let keys = Keys::new(DEFAULT_ROOT).unwrap();
        assert_eq!(keys.binding("p1"), "/cove/v1/bindings/p1");
        assert!(keys.node("a").starts_with(&keys.nodes()));
        assert!(keys.node_info("a").starts_with(&keys.node_infos()));
        for bad in ["", "/", "cove/", "/cove"] {
            assert!(Keys::new(bad).is_err(), "{bad}");
        }
    }
}
