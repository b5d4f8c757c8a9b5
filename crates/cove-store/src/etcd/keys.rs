//! The key layout under the root (`/cove/v1/` by default). Every etcd key Cove uses is built
//! here.
//!
//! - `nodes/<name>`: a live node, attached to its lease (gone when the lease expires).
//! - `node-info/<name>`: the same record without a lease, kept so a node whose lease
//!   expired is listed LOST instead of vanishing.
//! - `bindings/<pod>`: which node runs a pod; its mod_revision is the fencing token.
//! - Rows of the [`crate::ClusterStore`] (see `store.rs`), JSON of the rows SQLite keeps:
//!   `pods/<id>`, `containers/<id>`, `deployments/<id>`, `tokens/<id>`, `builds/<hash>`,
//!   `images/<ref>`, `workspaces/<ws>/limits`.
//! - Index keys, each created only if absent in the transaction of its row, so a taken
//!   name records nothing: `pod-containers/<pod>/<ctr>`, `deployment-names/<name>`,
//!   `url-keys/<key>`, `token-names/<name>`, `token-hashes/<hash>`.
//! - `image-refs/<ws>/<ref>` and `image-holders/<ref>/<ws>`: which workspace holds which image.
//! - `guards/<ws>` and `shared-guard`: bumped by every container insert of a workspace (and
//!   of any workspace but `default`), compared by admitted inserts (see `admission.rs`).
//!
//! Ids and workspace names go into keys as they are (checked by [`check_name`]); names,
//! url keys, hashes and image references (which hold `/` and `:`) go in hex ([`enc`]).

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

    /// The prefix of a table of rows (`containers`, `deployments`, `tokens`, ...).
    pub(crate) fn table(&self, table: &str) -> String {
        format!("{}{table}/", self.root)
    }

    /// Row `id` of `table`; `id` as it is (an id, checked by the caller).
    pub(crate) fn row(&self, table: &str, id: &str) -> String {
        format!("{}{table}/{id}", self.root)
    }

    /// Row of `table` named by free text (a name, hash or image reference), hex-encoded.
    pub(crate) fn named(&self, table: &str, name: &str) -> String {
        format!("{}{table}/{}", self.root, enc(name))
    }

    /// The prefix of pod `pod`'s container index.
    pub(crate) fn pod_containers(&self, pod: &str) -> String {
        format!("{}pod-containers/{pod}/", self.root)
    }

    pub(crate) fn pod_container(&self, pod: &str, ctr: &str) -> String {
        format!("{}pod-containers/{pod}/{ctr}", self.root)
    }

    pub(crate) fn limits(&self, ws: &str) -> String {
        format!("{}workspaces/{ws}/limits", self.root)
    }

    pub(crate) fn workspaces(&self) -> String {
        format!("{}workspaces/", self.root)
    }

    /// The prefix of the references `ws` holds.
    pub(crate) fn image_refs(&self, ws: &str) -> String {
        format!("{}image-refs/{ws}/", self.root)
    }

    pub(crate) fn image_ref(&self, ws: &str, reference: &str) -> String {
        format!("{}image-refs/{ws}/{}", self.root, enc(reference))
    }

    /// The prefix of the workspaces holding `reference`.
    pub(crate) fn image_holders(&self, reference: &str) -> String {
        format!("{}image-holders/{}/", self.root, enc(reference))
    }

    pub(crate) fn image_holder(&self, reference: &str, ws: &str) -> String {
        format!("{}image-holders/{}/{ws}", self.root, enc(reference))
    }

    /// The admission guard of workspace `ws`.
    pub(crate) fn guard(&self, ws: &str) -> String {
        format!("{}guards/{ws}", self.root)
    }

    /// The admission guard of all workspaces but `default` together.
    pub(crate) fn shared_guard(&self) -> String {
        format!("{}shared-guard", self.root)
    }
}

/// Free text as a key segment: lowercase hex of its bytes (no `/` can reach another key).
pub(crate) fn enc(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The text [`enc`] encoded, from the last segment of `key`.
pub(crate) fn dec(key: &[u8]) -> Result<String, StoreError> {
    let bad = || StoreError::Corrupt(format!("key {}", String::from_utf8_lossy(key)));
    let seg = key.rsplit(|b| *b == b'/').next().ok_or_else(bad)?;
    if seg.len() % 2 != 0 {
        return Err(bad());
    }
    let bytes = seg
        .chunks(2)
        .map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    String::from_utf8(bytes).map_err(|_| bad())
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
        let r = "docker.io/library/alpine:3.20";
        let k = keys.image_ref("team-a", r);
        assert!(k.starts_with(&keys.image_refs("team-a")));
        assert_eq!(
            k.matches('/').count(),
            keys.image_refs("team-a").matches('/').count()
        );
        assert_eq!(dec(k.as_bytes()).unwrap(), r);
        assert!(dec(b"/x/abc").is_err());
    }
}
