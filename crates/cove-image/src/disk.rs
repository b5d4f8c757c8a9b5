//! Per-pod disk limits.
//!
//! A pod with a disk limit gets its overlay upper and work dirs on a filesystem of exactly
//! that size: a sparse file `<container_dir>/disk.img` (it takes host space only as the
//! pod writes), made ext4 without a journal (the layer is thrown away when the pod stops,
//! so crash consistency buys nothing) and loop-mounted at `<container_dir>/disk`. Writes
//! past the size fail inside the pod with ENOSPC; the host's filesystem never fills.
//!
//! `mount(8)` sets up the loop device with the auto-clear flag, so unmounting the filesystem
//! also frees the loop device: one unmount (here, from [`crate::overlay::unmount_rootfs`],
//! the single cleanup path of stop, rollback and reconcile) leaves nothing behind. Pods
//! without a limit never reach this module and pay nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use nix::errno::Errno;
use nix::mount::{umount2, MntFlags};

use crate::overlay::is_mounted;
use crate::ImageError;

const IMAGE: &str = "disk.img";
const MOUNT: &str = "disk";

/// Makes and mounts the pod's `mib`-sized filesystem; returns its mount point.
#[tracing::instrument(skip_all, fields(container = %container_dir.display(), mib))]
pub(crate) fn mount(container_dir: &Path, mib: u64) -> Result<PathBuf, ImageError> {
    let img = container_dir.join(IMAGE);
    let dir = container_dir.join(MOUNT);
    if is_mounted(&dir)? {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir).map_err(|e| ImageError::io("create", &dir, e))?;
    let file = std::fs::File::create(&img).map_err(|e| ImageError::io("create", &img, e))?;
    // Sparse: the pod's writes are the only host space it takes.
    file.set_len(mib << 20)
        .map_err(|e| ImageError::io("size", &img, e))?;
    drop(file);
    run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0", "-O", "^has_journal"])
            .args(["-E", "lazy_itable_init=1,nodiscard,root_owner=0:0"])
            .arg(&img),
        "mkfs.ext4",
        &img,
    )?;
    // Mount: a loop device (auto-cleared on unmount) holding the pod's writable layer;
    // nodev/nosuid so nothing the pod writes there acts as a device or a setuid binary.
    run(
        Command::new("mount")
            .args(["-t", "ext4", "-o", "loop,nosuid,nodev,noatime"])
            .arg(&img)
            .arg(&dir),
        "mount",
        &img,
    )?;
    tracing::debug!(disk = %dir.display(), "mounted the pod's disk");
    Ok(dir)
}

fn run(cmd: &mut Command, what: &str, path: &Path) -> Result<(), ImageError> {
    let out = cmd
        .output()
        .map_err(|e| ImageError::io(&format!("run {what} for"), path, e))?;
    if out.status.success() {
        return Ok(());
    }
    Err(ImageError::Unsupported(format!(
        "{what} {} failed (a disk limit needs mkfs.ext4 and loop devices): {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// Unmounts the pod's disk (freeing its loop device) and removes its image. Idempotent; a
/// no-op for pods without a limit.
pub(crate) fn unmount(container_dir: &Path) -> Result<(), ImageError> {
    let dir = container_dir.join(MOUNT);
    let mut tries = 0;
    while is_mounted(&dir)? {
        tries += 1;
        let flags = if tries > 10 {
            MntFlags::MNT_DETACH
        } else {
            MntFlags::empty()
        };
        match umount2(&dir, flags) {
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
            Err(Errno::EBUSY) if tries <= 10 => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            Err(e) if tries > 11 => return Err(ImageError::nix("unmount", &dir, e)),
            Err(_) => {}
        }
    }
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(ImageError::io("remove", &dir, e))
        }
        _ => {}
    }
    let img = container_dir.join(IMAGE);
    match std::fs::remove_file(&img) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(ImageError::io("remove", &img, e))
        }
        _ => Ok(()),
    }
}
