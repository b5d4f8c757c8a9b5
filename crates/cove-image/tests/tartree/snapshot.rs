//! What an unpacked tree is, for comparing two of them: per path the type,
//! mode (with setuid), owner, size, content hash, link target, hard-link group,
//! xattrs and, for regular files, the mtime. Devices are listed apart: Cove
//! skips them by design.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub sha256: String,
    pub link: String,
    /// The first path (in order) sharing this inode, when it has more than one.
    pub same_as: String,
    pub xattrs: BTreeMap<String, Vec<u8>>,
    pub mtime: Option<(i64, i64)>,
}

/// The tree below `root` (the root itself excluded), keyed by relative path.
pub fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), String> = BTreeMap::new();
    let mut paths = Vec::new();
    collect(root, root, &mut paths);
    paths.sort();
    for (rel, path) in paths {
        let md = std::fs::symlink_metadata(&path).expect("stat");
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_file() {
            "file"
        } else if ft.is_fifo() {
            "fifo"
        } else if ft.is_char_device() || ft.is_block_device() {
            "device"
        } else {
            "other"
        };
        let mut same_as = String::new();
        if !ft.is_dir() && md.nlink() > 1 {
            same_as = inodes
                .entry((md.dev(), md.ino()))
                .or_insert_with(|| rel.clone())
                .clone();
        }
        let sha256 = if ft.is_file() {
            hex(&Sha256::digest(std::fs::read(&path).expect("read")))
        } else {
            String::new()
        };
        let link = if ft.is_symlink() {
            std::fs::read_link(&path)
                .expect("readlink")
                .to_string_lossy()
                .into_owned()
        } else {
            String::new()
        };
        out.insert(
            rel,
            Node {
                kind,
                mode: md.mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                size: if ft.is_file() { md.size() } else { 0 },
                sha256,
                link,
                same_as,
                xattrs: xattrs(&path),
                mtime: ft.is_file().then(|| (md.mtime(), md.mtime_nsec())),
            },
        );
    }
    out
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, std::path::PathBuf)>) {
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let e = e.expect("dir entry");
        let p = e.path();
        let rel = p
            .strip_prefix(root)
            .expect("below root")
            .to_string_lossy()
            .into_owned();
        let is_dir = e.file_type().expect("file type").is_dir();
        out.push((rel, p.clone()));
        if is_dir {
            collect(root, &p, out);
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// All xattrs of `path` (not following a symlink).
pub fn xattrs(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let c = CString::new(path.as_os_str().as_bytes()).expect("path without NUL");
    let mut names = vec![0u8; 65536];
    // SAFETY: c is NUL-terminated, names is a live buffer of its length.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    let mut out = BTreeMap::new();
    if n <= 0 {
        return out;
    }
    for name in names[..n as usize]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
    {
        let cn = CString::new(name).expect("xattr name");
        let mut val = vec![0u8; 65536];
        // SAFETY: as above.
        let k =
            unsafe { libc::lgetxattr(c.as_ptr(), cn.as_ptr(), val.as_mut_ptr().cast(), val.len()) };
        if k >= 0 {
            val.truncate(k as usize);
            out.insert(String::from_utf8_lossy(name).into_owned(), val);
        }
    }
    out
}

/// Describes how `cove` differs from `gnu` (devices in `gnu` are expected to be
/// missing from `cove`); empty when they agree.
pub fn differences(gnu: &BTreeMap<String, Node>, cove: &BTreeMap<String, Node>) -> Vec<String> {
    let mut diffs = Vec::new();
    for (p, g) in gnu {
        match cove.get(p) {
            None if g.kind == "device" => {}
            None => diffs.push(format!("{p}: missing in Cove's tree (GNU tar: {g:?})")),
            Some(c) if c != g => diffs.push(format!("{p}:\n  GNU tar: {g:?}\n  Cove:    {c:?}")),
            Some(_) => {}
        }
    }
    for (p, c) in cove {
        if !gnu.contains_key(p) {
            diffs.push(format!("{p}: only in Cove's tree: {c:?}"));
        }
    }
    diffs
}
