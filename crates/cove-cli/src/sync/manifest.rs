//! A directory as a [`SyncManifest`]: every entry the ignore rules keep (each
//! directory before what it holds), with each file's size and sha256; and the
//! upload of the files the daemon lacks, as a tar of entries named by digest.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cove_types::{SyncEntry, SyncEntryKind, SyncManifest, MAX_SYNC_ENTRIES};
use sha2::{Digest, Sha256};

use super::ignore::Ignore;

/// A directory ready to sync: its manifest and where each file is on disk.
#[derive(Debug)]
pub struct Local {
    pub manifest: SyncManifest,
    /// `(digest, path on disk)` of each file, in manifest order.
    files: Vec<(String, PathBuf)>,
    /// The files' total bytes.
    pub bytes: u64,
}

/// An entry found by the walk.
struct Found {
    rel: String,
    path: PathBuf,
    meta: fs::Metadata,
}

fn walk(dir: &Path, rel: &str, ignore: &mut Ignore, out: &mut Vec<Found>) -> Result<()> {
    let mark = ignore.enter(dir, rel)?;
    let mut names: Vec<_> = fs::read_dir(dir)
        .and_then(|rd| rd.map(|e| e.map(|e| e.file_name())).collect())
        .with_context(|| format!("cannot sync {}", dir.display()))?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let name = name
            .to_str()
            .with_context(|| format!("cannot sync {}: its name is not UTF-8", path.display()))?;
        let child = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let meta = fs::symlink_metadata(&path)
            .with_context(|| format!("cannot sync {}", path.display()))?;
        let ft = meta.file_type();
        if !(ft.is_dir() || ft.is_file() || ft.is_symlink()) {
            continue; // sockets, fifos and devices are not synced
        }
        if ignore.ignored(&child, ft.is_dir()) {
            continue;
        }
        if out.len() >= MAX_SYNC_ENTRIES {
            bail!(
                "cannot sync {}: over {MAX_SYNC_ENTRIES} entries; add patterns to .coveignore",
                path.display()
            );
        }
        out.push(Found {
            rel: child.clone(),
            path: path.clone(),
            meta,
        });
        if ft.is_dir() {
            walk(&path, &child, ignore, out)?;
        }
    }
    ignore.truncate(mark);
    Ok(())
}

/// The paths a sync of `root` keeps, in manifest order (for tests and tools).
pub fn synced_paths(root: &Path) -> Result<Vec<String>> {
    let mut found = Vec::new();
    walk(root, "", &mut Ignore::default(), &mut found)?;
    Ok(found.into_iter().map(|f| f.rel).collect())
}

/// sha256 and size of a file's content.
fn hash_file(path: &Path) -> Result<(String, u64)> {
    let mut f = fs::File::open(path).with_context(|| format!("cannot sync {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        let k = f
            .read(&mut buf)
            .with_context(|| format!("cannot sync {}", path.display()))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((format!("sha256:{}", hex::encode(h.finalize())), n))
}

/// Walks `root` and hashes its files. Errors (one line, naming the problem):
/// `root` is not a directory, more than `cap` bytes of files (checked before
/// any file is read), too many entries, an unreadable file or directory.
pub fn scan(root: &Path, cap: u64) -> Result<Local> {
    let meta = fs::metadata(root).with_context(|| format!("cannot sync {}", root.display()))?;
    if !meta.is_dir() {
        bail!("cannot sync {}: not a directory", root.display());
    }
    let mut found = Vec::new();
    walk(root, "", &mut Ignore::default(), &mut found)?;
    let total: u64 = found
        .iter()
        .filter(|f| f.meta.is_file())
        .map(|f| f.meta.len())
        .sum();
    if total > cap {
        bail!(
            "cannot sync {}: its files total {total} bytes ({:.1} MiB), over the cap of {cap} bytes ({:.1} MiB); add patterns to .coveignore or raise COVE_SYNC_MAX_BYTES",
            root.display(),
            total as f64 / 1048576.0,
            cap as f64 / 1048576.0
        );
    }
    let mut entries = Vec::with_capacity(found.len());
    let mut files = Vec::new();
    let mut bytes = 0;
    for f in found {
        let mode = f.meta.permissions().mode() & 0o7777;
        let ft = f.meta.file_type();
        let mut e = SyncEntry {
            path: f.rel,
            kind: SyncEntryKind::Dir,
            mode,
            size: None,
            digest: None,
            target: None,
        };
        if ft.is_symlink() {
            let target = fs::read_link(&f.path)
                .with_context(|| format!("cannot sync {}", f.path.display()))?;
            let target = target.to_str().with_context(|| {
                format!("cannot sync {}: its target is not UTF-8", f.path.display())
            })?;
            e.kind = SyncEntryKind::Symlink;
            e.target = Some(target.to_string());
        } else if ft.is_file() {
            let (digest, size) = hash_file(&f.path)?;
            e.kind = SyncEntryKind::File;
            e.size = Some(size);
            e.digest = Some(digest.clone());
            bytes += size;
            files.push((digest, f.path));
        }
        entries.push(e);
    }
    Ok(Local {
        manifest: SyncManifest { entries },
        files,
        bytes,
    })
}

impl Local {
    /// A tar of the files whose digest is in `missing`, each once, named
    /// `sha256:<hex>`; a file whose content changed since [`scan`] is an error.
    pub fn files_tar(&self, missing: &[String]) -> Result<(Vec<u8>, u64)> {
        let wanted: HashSet<&str> = missing.iter().map(String::as_str).collect();
        let mut sent = HashSet::new();
        let mut b = tar::Builder::new(Vec::new());
        let mut bytes = 0u64;
        for (digest, path) in &self.files {
            if !wanted.contains(digest.as_str()) || !sent.insert(digest.as_str()) {
                continue;
            }
            let data = fs::read(path).with_context(|| format!("cannot sync {}", path.display()))?;
            if format!("sha256:{}", hex::encode(Sha256::digest(&data))) != *digest {
                bail!(
                    "cannot sync {}: it changed while syncing; try again",
                    path.display()
                );
            }
            let mut h = tar::Header::new_gnu();
            h.set_mtime(0);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, digest, data.as_slice())?;
            bytes += data.len() as u64;
        }
        if let Some(d) = missing.iter().find(|d| !sent.contains(d.as_str())) {
            bail!("the daemon asked for {d}, which is not a file of this sync");
        }
        Ok((b.into_inner()?, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory removed when dropped.
    struct Scratch(PathBuf);
    impl Scratch {
        fn new() -> Scratch {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("cove-sync-unit-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            Scratch(p)
        }
        fn path(&self) -> &Path {
            &self.0
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// The cases the Python SDK is tested against too.
    const CASES: &str = include_str!("../../../../sdk/python/tests/sync_ignore_cases.json");

    #[test]
    fn the_shared_ignore_cases_sync_exactly_what_they_list() {
        let doc: serde_json::Value = serde_json::from_str(CASES).unwrap();
        for case in doc["cases"].as_array().unwrap() {
            let dir = Scratch::new();
            for (path, content) in case["files"].as_object().unwrap() {
                let p = dir.path().join(path);
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(&p, content.as_str().unwrap()).unwrap();
            }
            let want: Vec<String> = serde_json::from_value(case["synced"].clone()).unwrap();
            let mut got = synced_paths(dir.path()).unwrap();
            got.sort();
            assert_eq!(got, want, "case {}", case["name"]);
        }
    }

    #[test]
    fn the_manifest_lists_dirs_first_hashes_files_and_is_capped() {
        let dir = Scratch::new();
        let root = dir.path();
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("b.txt"), "b").unwrap();
        fs::write(root.join("a.txt"), "a").unwrap();
        fs::write(root.join("sub/c.txt"), "a").unwrap();
        std::os::unix::fs::symlink("a.txt", root.join("link")).unwrap();
        let local = scan(root, 1 << 20).unwrap();
        let m = &local.manifest;
        assert_eq!(m.validate(), Ok(()));
        let paths: Vec<&str> = m.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["a.txt", "b.txt", "link", "sub", "sub/c.txt"]);
        let a = format!("sha256:{}", hex::encode(Sha256::digest(b"a")));
        assert_eq!(m.entries[0].digest.as_deref(), Some(a.as_str()));
        assert_eq!(m.entries[2].target.as_deref(), Some("a.txt"));
        assert_eq!(
            m.file_digests().len(),
            2,
            "a.txt and sub/c.txt share content"
        );

        // Only what is missing is sent, once, named by digest.
        let (tar, bytes) = local.files_tar(std::slice::from_ref(&a)).unwrap();
        assert_eq!(bytes, 1);
        let mut ar = tar::Archive::new(tar.as_slice());
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, std::slice::from_ref(&a));
        fs::write(root.join("a.txt"), "changed").unwrap();
        let err = local.files_tar(&[a]).unwrap_err().to_string();
        assert!(err.contains("changed while syncing"), "{err}");

        let err = scan(root, 2).unwrap_err().to_string();
        assert!(err.contains("over the cap of 2 bytes"), "{err}");
    }
}
