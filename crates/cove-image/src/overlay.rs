//! Overlay root filesystems for containers.
//!
//! lowerdir = the image's layer dirs (top first), upperdir/workdir under the
//! container dir, mounted at `<container_dir>/rootfs`. The kernel copies mount
//! options into one page, so the option string must stay under 4096 bytes: layer
//! dirs have short paths (`<data_dir>/images/l/<12 hex>`) and we fail clearly
//! when an image still has too many layers. With a disk limit, upper and work live on
//! the pod's own sized filesystem instead (see [`crate::disk`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::ImageError;

/// The kernel's limit on the mount data page, minus the trailing NUL.
const MAX_OPTIONS: usize = 4095;

/// Mounts the overlay for `lowers` (bottom first; `empty` if there are none), its
/// writable layer limited to `disk_mib` MiB if given.
#[tracing::instrument(skip_all, fields(container = %container_dir.display()))]
pub(crate) fn mount_rootfs(
    lowers: &[PathBuf],
    empty: &Path,
    container_dir: &Path,
    disk_mib: Option<u64>,
    pool: Option<&crate::disk_pool::DiskPool>,
) -> Result<PathBuf, ImageError> {
    let rootfs = container_dir.join("rootfs");
    if is_mounted(&rootfs)? {
        return Ok(rootfs);
    }
    let writable = match disk_mib {
        Some(mib) => crate::disk::mount(container_dir, mib, pool)?,
        None => container_dir.to_path_buf(),
    };
    let upper = writable.join("upper");
    let work = writable.join("work");
    for d in [&rootfs, &upper, &work] {
        std::fs::create_dir_all(d).map_err(|e| ImageError::io("create", d, e))?;
    }
    let lowers: Vec<&Path> = if lowers.is_empty() {
        vec![empty]
    } else {
        lowers.iter().rev().map(PathBuf::as_path).collect()
    };
    for p in lowers
        .iter()
        .copied()
        .chain([upper.as_path(), work.as_path()])
    {
        let s = p.to_string_lossy();
        if s.contains([':', ',']) || p.to_str().is_none() {
            return Err(ImageError::Unsupported(format!(
                "overlay path {} contains ':' or ',' or is not utf-8",
                p.display()
            )));
        }
    }
    let lower = lowers
        .iter()
        .map(|p| p.to_string_lossy())
        .collect::<Vec<_>>()
        .join(":");
    let opts = format!(
        "lowerdir={lower},upperdir={},workdir={}",
        upper.display(),
        work.display()
    );
    if opts.len() > MAX_OPTIONS {
        return Err(ImageError::Unsupported(format!(
            "image has too many layers ({}) for one overlay mount: options are {} bytes, the limit is {MAX_OPTIONS}",
            lowers.len(),
            opts.len()
        )));
    }
    // Mount: the container's root filesystem; layers are shared read-only lowers.
    mount(
        Some("overlay"),
        &rootfs,
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
    )
    .map_err(|e| ImageError::nix("mount overlay on", &rootfs, e))?;
    tracing::debug!(rootfs = %rootfs.display(), layers = lowers.len(), "mounted rootfs");
    Ok(rootfs)
}

/// The overlay upper dir of the container in `container_dir`: on its disk if it has one.
pub(crate) fn upper_dir(container_dir: &Path) -> Result<PathBuf, ImageError> {
    let disk = container_dir.join("disk");
    Ok(if is_mounted(&disk)? {
        disk.join("upper")
    } else {
        container_dir.join("upper")
    })
}

/// Unmounts `<container_dir>/rootfs` (retrying, then lazily detaching if busy)
/// and removes rootfs, upper and work, and the pod's disk if it has one. Idempotent.
#[tracing::instrument(skip_all, fields(container = %container_dir.display()))]
pub(crate) fn unmount_rootfs(container_dir: &Path) -> Result<(), ImageError> {
    let rootfs = container_dir.join("rootfs");
    let mut tries = 0;
    while is_mounted(&rootfs)? {
        tries += 1;
        let flags = if tries > 10 {
            MntFlags::MNT_DETACH
        } else {
            MntFlags::empty()
        };
        match umount2(&rootfs, flags) {
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
            Err(Errno::EBUSY) if tries <= 10 => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            Err(e) if tries > 11 => return Err(ImageError::nix("unmount", &rootfs, e)),
            Err(_) => {}
        }
    }
    for d in ["rootfs", "upper", "work"] {
        let p = container_dir.join(d);
        match std::fs::remove_dir_all(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(ImageError::io("remove", &p, e))
            }
            _ => {}
        }
    }
    crate::disk::unmount(container_dir)
}

/// `/proc/mounts` fields are octal-escaped (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// (mount point, fstype, options) of every mount.
fn mounts() -> Result<Vec<(String, String, String)>, ImageError> {
    let p = Path::new("/proc/mounts");
    let text = std::fs::read_to_string(p).map_err(|e| ImageError::io("read", p, e))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let _src = f.next()?;
            let target = unescape(f.next()?);
            let fstype = f.next()?.to_string();
            let opts = unescape(f.next()?);
            Some((target, fstype, opts))
        })
        .collect())
}

pub(crate) fn is_mounted(path: &Path) -> Result<bool, ImageError> {
    let want = path.to_string_lossy();
    Ok(mounts()?.iter().any(|(t, _, _)| *t == want))
}

/// The mount points strictly under `dir`, deepest first.
pub(crate) fn mounts_under(dir: &Path) -> Result<Vec<PathBuf>, ImageError> {
    let mut v: Vec<PathBuf> = mounts()?
        .into_iter()
        .map(|(t, _, _)| PathBuf::from(t))
        .filter(|t| t.starts_with(dir) && t != dir)
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    v.dedup();
    Ok(v)
}

/// Every directory used as an overlay lowerdir by any mount on the machine.
pub(crate) fn mounted_lowerdirs() -> Result<HashSet<PathBuf>, ImageError> {
    let mut set = HashSet::new();
    for (_, fstype, opts) in mounts()? {
        if fstype != "overlay" {
            continue;
        }
        for o in opts.split(',') {
            if let Some(l) = o.strip_prefix("lowerdir=") {
                set.extend(l.split(':').filter(|s| !s.is_empty()).map(PathBuf::from));
            }
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    #[test]
    fn unescapes_proc_mounts() {
        assert_eq!(super::unescape(r"/a\040b"), "/a b");
        assert_eq!(super::unescape(r"/plain"), "/plain");
    }
}
