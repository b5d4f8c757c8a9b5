//! Syncing files, content-addressed per file: the wire types of
//! `POST /v1/images/build/files/missing`, `POST /v1/images/build/files` and
//! `POST /v1/images/build/files/context`, and the one validation of a
//! manifest (clients send it, the daemon refuses a hostile one).
//!
//! A client lists a directory as a [`SyncManifest`]; the daemon answers the
//! file digests it lacks ([`SyncMissing`]); the client uploads only those (a
//! tar whose entries are named `sha256:<hex>`, [`SyncFilesStored`]); then the
//! daemon assembles the deterministic tar of the manifest from its stored
//! files and stores it as a build context ([`crate::BuildContext`]).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The most entries a manifest may list.
pub const MAX_SYNC_ENTRIES: usize = 100_000;
/// The longest path or symlink target, in bytes.
pub const MAX_SYNC_PATH: usize = 4096;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncEntryKind {
    File,
    Dir,
    Symlink,
}

/// One entry of a synced directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncEntry {
    /// Relative, `/`-separated (`src/app.py`); no `.`, `..` or empty components.
    pub path: String,
    pub kind: SyncEntryKind,
    /// Permission bits (at most `0o7777`).
    pub mode: u32,
    /// Bytes of a file (files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// `sha256:<hex>` of a file's content (files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Where a symlink points (symlinks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A synced directory: every entry, each directory listed before what it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncManifest {
    pub entries: Vec<SyncEntry>,
}

/// `POST /v1/images/build/files/missing`: the file digests the daemon does not store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SyncMissing {
    /// Distinct `sha256:<hex>`, in manifest order.
    pub missing: Vec<String>,
}

/// `POST /v1/images/build/files`: what the upload added.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SyncFilesStored {
    /// Files in the upload (each verified against its digest).
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Whether `d` is `sha256:<64 lowercase hex>`.
pub fn is_sha256_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

fn path_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("is empty");
    }
    if path.len() > MAX_SYNC_PATH {
        return Some("is longer than 4096 bytes");
    }
    if path.contains('\0') {
        return Some("contains a NUL byte");
    }
    if path.starts_with('/') {
        return Some("is absolute");
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Some("has an empty, '.' or '..' component");
    }
    None
}

impl SyncEntry {
    /// The entry's parent directory (`None` at the top).
    pub fn parent(&self) -> Option<&str> {
        self.path.rsplit_once('/').map(|(p, _)| p)
    }

    fn problem(&self) -> Option<String> {
        if let Some(why) = path_problem(&self.path) {
            return Some(why.into());
        }
        if self.mode > 0o7777 {
            return Some(format!("has mode {:o}, over 7777", self.mode));
        }
        let (file, link) = (
            self.kind == SyncEntryKind::File,
            self.kind == SyncEntryKind::Symlink,
        );
        match (&self.digest, &self.size) {
            (Some(d), Some(_)) if file && !is_sha256_digest(d) => {
                return Some(format!("has digest {d:?}, not sha256:<64 lowercase hex>"))
            }
            (Some(_), Some(_)) if file => {}
            _ if file => return Some("is a file without size and digest".into()),
            (None, None) => {}
            _ => return Some("has a size or digest but is not a file".into()),
        }
        match &self.target {
            Some(t) if link && (t.is_empty() || t.len() > MAX_SYNC_PATH || t.contains('\0')) => {
                Some("has an empty, over-long or NUL-holding symlink target".into())
            }
            Some(_) if link => None,
            None if link => Some("is a symlink without target".into()),
            Some(_) => Some("has a target but is not a symlink".into()),
            None => None,
        }
    }
}

impl SyncManifest {
    /// Refuses a manifest the daemon must not assemble, with a one-line
    /// reason naming the entry: a bad path (absolute, `..`, `.`, empty
    /// component, NUL), a duplicate, a parent that is not a directory listed
    /// before it, a bad mode, digest or target, too many entries.
    pub fn validate(&self) -> Result<(), String> {
        if self.entries.len() > MAX_SYNC_ENTRIES {
            return Err(format!(
                "the manifest lists {} entries, over the limit of {MAX_SYNC_ENTRIES}",
                self.entries.len()
            ));
        }
        let mut kinds: HashMap<&str, SyncEntryKind> = HashMap::with_capacity(self.entries.len());
        for e in &self.entries {
            let bad = |why: &str| format!("manifest entry {:?} {why}", e.path);
            if let Some(why) = e.problem() {
                return Err(bad(&why));
            }
            if let Some(parent) = e.parent() {
                match kinds.get(parent) {
                    Some(SyncEntryKind::Dir) => {}
                    Some(_) => return Err(bad("is under an entry that is not a directory")),
                    None => return Err(bad("comes before (or without) its parent directory")),
                }
            }
            if kinds.insert(&e.path, e.kind).is_some() {
                return Err(bad("is listed twice"));
            }
        }
        Ok(())
    }

    /// The distinct file digests, in manifest order.
    pub fn file_digests(&self) -> Vec<&str> {
        let mut seen = std::collections::HashSet::new();
        self.entries
            .iter()
            .filter_map(|e| e.digest.as_deref())
            .filter(|d| seen.insert(*d))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(p: &str) -> SyncEntry {
        SyncEntry {
            path: p.into(),
            kind: SyncEntryKind::Dir,
            mode: 0o755,
            size: None,
            digest: None,
            target: None,
        }
    }
    fn file(p: &str) -> SyncEntry {
        SyncEntry {
            path: p.into(),
            kind: SyncEntryKind::File,
            mode: 0o644,
            size: Some(1),
            digest: Some(format!("sha256:{}", "a".repeat(64))),
            target: None,
        }
    }
    fn link(p: &str, t: &str) -> SyncEntry {
        SyncEntry {
            path: p.into(),
            kind: SyncEntryKind::Symlink,
            mode: 0o777,
            size: None,
            digest: None,
            target: Some(t.into()),
        }
    }
    fn check(entries: Vec<SyncEntry>) -> Result<(), String> {
        SyncManifest { entries }.validate()
    }

    #[test]
    fn a_good_manifest_passes() {
        let m = vec![
            dir("src"),
            file("src/a.py"),
            link("src/l", "../x"),
            file("b.txt"),
            file("..hidden"),
        ];
        assert_eq!(check(m), Ok(()));
    }

    #[test]
    fn hostile_manifests_are_refused_with_the_entry_named() {
        let cases: Vec<(Vec<SyncEntry>, &str)> = vec![
            (vec![file("/etc/passwd")], "is absolute"),
            (vec![dir("a"), file("a/../../x")], "'..' component"),
            (vec![file("..")], "'..' component"),
            (vec![dir("a"), file("a//b")], "empty"),
            (vec![file("./a")], "'.'"),
            (vec![file("a/")], "empty"),
            (vec![file("")], "is empty"),
            (vec![file("a\0b")], "NUL"),
            (vec![file("a"), file("a")], "listed twice"),
            (vec![dir("a"), dir("a")], "listed twice"),
            (vec![file("a/b")], "before (or without) its parent"),
            (
                vec![file("a/b"), dir("a")],
                "before (or without) its parent",
            ),
            (vec![link("l", "/etc"), file("l/passwd")], "not a directory"),
            (vec![file("x"), file("x/y")], "not a directory"),
            (vec![link("l", "")], "symlink target"),
            (vec![link("l", "a\0")], "symlink target"),
        ];
        for (entries, want) in cases {
            let err = check(entries.clone()).unwrap_err();
            assert!(err.contains(want), "{entries:?}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
        let mut f = file("f");
        f.digest = Some("sha256:ABC".into());
        assert!(check(vec![f]).unwrap_err().contains("not sha256:"));
        let mut f = file("f");
        f.digest = None;
        assert!(check(vec![f])
            .unwrap_err()
            .contains("without size and digest"));
        let mut f = file("f");
        f.mode = 0o17777;
        assert!(check(vec![f]).unwrap_err().contains("mode"));
        let mut d = dir("d");
        d.digest = Some(format!("sha256:{}", "a".repeat(64)));
        assert!(check(vec![d]).unwrap_err().contains("not a file"));
        let mut d = dir("d");
        d.target = Some("x".into());
        assert!(check(vec![d]).unwrap_err().contains("not a symlink"));
        let many = SyncManifest {
            entries: (0..=MAX_SYNC_ENTRIES)
                .map(|i| file(&i.to_string()))
                .collect(),
        };
        assert!(many.validate().unwrap_err().contains("over the limit"));
    }

    #[test]
    fn entries_read_the_documented_json() {
        let m: SyncManifest = serde_json::from_str(
            r#"{"entries":[{"path":"d","kind":"dir","mode":493},
                {"path":"d/f","kind":"file","mode":420,"size":1,"digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
                {"path":"d/l","kind":"symlink","mode":511,"target":"f"}]}"#,
        )
        .unwrap();
        assert_eq!(m.validate(), Ok(()));
        assert_eq!(m.file_digests().len(), 1);
        assert!(serde_json::from_str::<SyncManifest>(
            r#"{"entries":[{"path":"x","kind":"pipe","mode":0}]}"#
        )
        .is_err());
    }
}
