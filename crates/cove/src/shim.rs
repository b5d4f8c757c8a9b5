//! The per-container shim executable the daemon runs: the small `cove-shim`
//! built into this binary (see build.rs), written once into the data dir.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::sys::statvfs::{statvfs, FsFlags};

const SHIM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cove-shim"));

/// The path of the shim to run for containers. Falls back to this binary
/// (`cove shim ...` works too, with a larger footprint) when the data dir is
/// on a `noexec` mount.
pub fn install(data_dir: &Path) -> Result<PathBuf> {
    let dir = data_dir.join("bin");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let noexec = statvfs(&dir)
        .map(|s| s.flags().contains(FsFlags::ST_NOEXEC))
        .unwrap_or(false);
    if noexec {
        tracing::warn!(dir = %dir.display(), "data dir is mounted noexec: running shims from the cove binary");
        return std::env::current_exe().context("finding the cove binary for the shim");
    }
    // Named by content: a newer daemon never replaces a file that running
    // shims were started from.
    let path = dir.join(format!("cove-shim-{}", env!("COVE_SHIM_HASH")));
    if std::fs::metadata(&path)
        .map(|m| m.len() == SHIM.len() as u64)
        .unwrap_or(false)
    {
        return Ok(path);
    }
    let tmp = dir.join(format!(".cove-shim-{}.tmp", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o755)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(SHIM)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, &path).with_context(|| format!("installing {}", path.display()))?;
    Ok(path)
}
