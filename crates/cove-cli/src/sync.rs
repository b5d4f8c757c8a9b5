//! Syncing files (`cove run --sync [DIR]`): a directory as a deterministic tar
//! (sorted entries, mtime 0, uid/gid 0, no owner names), so identical content has
//! the same sha256 and the daemon, which stores build contexts by digest, is not
//! sent it twice.
//!
//! Top-level `.gitignore` and `.coveignore` patterns are respected (`*.log`,
//! `build/`, `/top-only`, `!keep.log`; the last matching pattern wins); `.git/`,
//! `__pycache__/` and `.venv/` are always skipped. The total size of the files is
//! capped ([`DEFAULT_MAX_BYTES`], `COVE_SYNC_MAX_BYTES`): over it is an error
//! before anything is read or sent. The Python SDK (`cove/sync.py`) follows the
//! same rules.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// The default cap on a synced directory: 100 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 100 * 1024 * 1024;
/// Directories never synced.
const ALWAYS_SKIPPED: [&str; 3] = [".git", "__pycache__", ".venv"];
/// Ignore files read at the top of the synced directory.
const IGNORE_FILES: [&str; 2] = [".gitignore", ".coveignore"];

/// The cap: `COVE_SYNC_MAX_BYTES` or [`DEFAULT_MAX_BYTES`].
pub fn max_bytes() -> Result<u64> {
    match std::env::var("COVE_SYNC_MAX_BYTES") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .with_context(|| format!("COVE_SYNC_MAX_BYTES={v:?} is not a number of bytes")),
        _ => Ok(DEFAULT_MAX_BYTES),
    }
}

/// One ignore pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    pattern: String,
    negated: bool,
    dir_only: bool,
    /// Matched against the whole relative path (it had a `/`), else against the name.
    anchored: bool,
}

/// The patterns of a directory's top-level ignore files.
#[derive(Debug, Default)]
pub struct Ignore {
    rules: Vec<Rule>,
}

impl Ignore {
    /// Reads `root/.gitignore` and `root/.coveignore` (missing ones are fine).
    pub fn load(root: &Path) -> Result<Ignore> {
        let mut text = String::new();
        for name in IGNORE_FILES {
            let p = root.join(name);
            match fs::read(&p) {
                Ok(b) => {
                    text.push_str(&String::from_utf8_lossy(&b));
                    text.push('\n');
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", p.display())),
            }
        }
        Ok(Ignore::parse(&text))
    }

    /// Patterns from ignore-file text.
    pub fn parse(text: &str) -> Ignore {
        let mut rules = Vec::new();
        for line in text.lines() {
            let mut line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let negated = line.starts_with('!');
            if negated {
                line = &line[1..];
            }
            let dir_only = line.ends_with('/');
            let line = line.trim_end_matches('/');
            let anchored = line.contains('/');
            let line = line.trim_start_matches('/');
            if !line.is_empty() {
                rules.push(Rule {
                    pattern: line.to_string(),
                    negated,
                    dir_only,
                    anchored,
                });
            }
        }
        Ignore { rules }
    }

    /// Whether `rel` (`/`-separated, under the root) is left out.
    pub fn ignored(&self, rel: &str, is_dir: bool) -> bool {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        if is_dir && ALWAYS_SKIPPED.contains(&name) {
            return true;
        }
        let mut out = false;
        for r in &self.rules {
            if r.dir_only && !is_dir {
                continue;
            }
            let target = if r.anchored { rel } else { name };
            if glob_match(r.pattern.as_bytes(), target.as_bytes()) {
                out = !r.negated;
            }
        }
        out
    }
}

/// `*` (any run), `?` (one byte) and literal bytes, like Python's `fnmatch` without classes.
fn glob_match(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|b| *b == b'*')
}

/// An entry to sync: its path in the tar and on disk.
#[derive(Debug)]
struct Entry {
    rel: String,
    path: PathBuf,
    meta: fs::Metadata,
}

fn collect(dir: &Path, rel: &str, ignore: &Ignore, out: &mut Vec<Entry>) -> Result<()> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("cannot sync {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
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
        let is_dir = meta.is_dir();
        if ignore.ignored(&child, is_dir) {
            continue;
        }
        out.push(Entry {
            rel: child.clone(),
            path: path.clone(),
            meta,
        });
        if is_dir {
            collect(&path, &child, ignore, out)?;
        }
    }
    Ok(())
}

/// The deterministic tar of `root` and its `sha256:<hex>`.
///
/// Errors (one line, naming the problem): `root` is not a directory, the files
/// total more than `cap` bytes (nothing is read then), a file cannot be read.
pub fn make_tar(root: &Path, cap: u64) -> Result<(Vec<u8>, String)> {
    let meta = fs::metadata(root).with_context(|| format!("cannot sync {}", root.display()))?;
    if !meta.is_dir() {
        bail!("cannot sync {}: not a directory", root.display());
    }
    let ignore = Ignore::load(root)?;
    let mut entries = Vec::new();
    collect(root, "", &ignore, &mut entries)?;
    let total: u64 = entries
        .iter()
        .filter(|e| e.meta.is_file())
        .map(|e| e.meta.len())
        .sum();
    if total > cap {
        bail!(
            "cannot sync {}: its files total {total} bytes ({:.1} MiB), over the cap of {cap} bytes ({:.1} MiB); add patterns to .coveignore or raise COVE_SYNC_MAX_BYTES",
            root.display(),
            total as f64 / 1048576.0,
            cap as f64 / 1048576.0
        );
    }
    let mut b = tar::Builder::new(Vec::new());
    for e in &entries {
        use std::os::unix::fs::PermissionsExt;
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mode(e.meta.permissions().mode() & 0o7777);
        let ft = e.meta.file_type();
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            b.append_data(&mut h, &e.rel, std::io::empty())?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&e.path)
                .with_context(|| format!("cannot sync {}", e.path.display()))?;
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, &e.rel, &target)
                .with_context(|| format!("cannot sync {}", e.path.display()))?;
        } else if ft.is_file() {
            let mut data = Vec::new();
            fs::File::open(&e.path)
                .and_then(|mut f| f.read_to_end(&mut data))
                .with_context(|| format!("cannot sync {}", e.path.display()))?;
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, &e.rel, data.as_slice())?;
        }
        // sockets, fifos and devices are not synced
    }
    let data = b.into_inner()?;
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&data)));
    Ok((data, digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_names_dirs_anchors_and_negation() {
        let ig = Ignore::parse("# c\n*.log\n!keep.log\nbuild/\n/top.txt\nsub/x?.txt\n");
        assert!(ig.ignored("a.log", false) && ig.ignored("d/a.log", false));
        assert!(!ig.ignored("keep.log", false));
        assert!(ig.ignored("build", true) && !ig.ignored("build", false));
        assert!(ig.ignored("top.txt", false) && !ig.ignored("d/top.txt", false));
        assert!(ig.ignored("sub/x1.txt", false) && !ig.ignored("sub/x12.txt", false));
        for d in [".git", "__pycache__", ".venv", "a/__pycache__"] {
            assert!(ig.ignored(d, true), "{d}");
        }
        assert!(!ig.ignored("src", true));
    }

    #[test]
    fn tar_is_deterministic_sorted_and_capped() {
        let dir = std::env::temp_dir().join(format!("cove-sync-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("sub")).unwrap();
        fs::create_dir_all(dir.join(".git")).unwrap();
        fs::write(dir.join("b.txt"), "b").unwrap();
        fs::write(dir.join("a.txt"), "a").unwrap();
        fs::write(dir.join("sub/c.txt"), "c").unwrap();
        fs::write(dir.join(".git/HEAD"), "x").unwrap();
        fs::write(dir.join("skip.me"), "x").unwrap();
        fs::write(dir.join(".coveignore"), "*.me\n").unwrap();
        let (one, d1) = make_tar(&dir, 1 << 20).unwrap();
        // A new mtime, same content: same tar.
        fs::write(dir.join("a.txt"), "a").unwrap();
        let (two, d2) = make_tar(&dir, 1 << 20).unwrap();
        assert_eq!((one.clone(), d1), (two, d2));
        let mut ar = tar::Archive::new(one.as_slice());
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                assert_eq!(e.header().mtime().unwrap(), 0);
                assert_eq!(e.header().uid().unwrap(), 0);
                e.path()
                    .unwrap()
                    .to_string_lossy()
                    .trim_end_matches('/')
                    .to_string()
            })
            .collect();
        assert_eq!(names, [".coveignore", "a.txt", "b.txt", "sub", "sub/c.txt"]);
        let err = make_tar(&dir, 2).unwrap_err().to_string();
        assert!(err.contains("over the cap of 2 bytes"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
