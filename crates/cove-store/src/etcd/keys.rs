//! The key layout under `/cove/v1/`. Every etcd key Cove uses is built here.
//!
//! - `nodes/<name>`: a live node, attached to its lease (gone when the lease expires).
//! - `node-info/<name>`: the same record without a lease, kept so a node whose lease
//!   expired is listed LOST instead of vanishing.
//! - `bindings/<pod>`: which node runs a pod; its mod_revision is the fencing token.
//! - `pods/<pod>`, `deployments/<id>`, `tokens/…`, `workspaces/…`, `images/…`: rows.

use crate::StoreError;

/// Everything Cove keeps in etcd lives under this prefix (the version is for the layout).
pub const ROOT: &str = "/cove/v1/";
pub const NODES: &str = "/cove/v1/nodes/";
pub const NODE_INFO: &str = "/cove/v1/node-info/";
pub const BINDINGS: &str = "/cove/v1/bindings/";
pub const PODS: &str = "/cove/v1/pods/";

pub fn node(name: &str) -> String {
    format!("{NODES}{name}")
}

pub fn node_info(name: &str) -> String {
    format!("{NODE_INFO}{name}")
}

pub fn binding(pod: &str) -> String {
    format!("{BINDINGS}{pod}")
}

pub fn pod(pod: &str) -> String {
    format!("{PODS}{pod}")
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
        assert_eq!(binding("p1"), "/cove/v1/bindings/p1");
        assert!(node("a").starts_with(ROOT) && node_info("a").starts_with(ROOT));
    }
}
