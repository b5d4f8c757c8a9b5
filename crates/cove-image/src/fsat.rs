//! Path-safe file operations relative to a layer root fd.
//!
//! Every parent directory is opened with `openat(O_NOFOLLOW|O_DIRECTORY)` one
//! component at a time from the root, so a symlink (planted by an earlier tar
//! entry) is never followed; callers create the final entry with `*at` calls
//! relative to the parent fd returned by [`walk`].

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

use crate::ImageError;

/// Splits an archive path into normal components; absolute paths and `..` are unsafe.
pub(crate) fn components(p: &Path) -> Result<Vec<OsString>, ImageError> {
    let mut out = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s.to_os_string()),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(ImageError::Unsafe(format!("absolute path {}", p.display())))
            }
            Component::ParentDir => {
                return Err(ImageError::Unsafe(format!(
                    "path with '..': {}",
                    p.display()
                )))
            }
        }
    }
    Ok(out)
}

/// Opens the directory `comps` below `root` one component at a time, refusing
/// to pass through anything but a real directory; creates missing ones if `create`.
pub(crate) fn walk(
    root: &OwnedFd,
    comps: &[OsString],
    create: bool,
    entry: &Path,
) -> Result<OwnedFd, ImageError> {
    let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let mut cur = root
        .try_clone()
        .map_err(|e| ImageError::io("dup", entry, e))?;
    for c in comps {
        let next = match openat(&cur, c.as_os_str(), flags, Mode::empty()) {
            Err(Errno::ENOENT) if create => {
                mkdirat(&cur, c.as_os_str(), Mode::from_bits_truncate(0o755))
                    .map_err(|e| ImageError::nix("mkdir", entry, e))?;
                openat(&cur, c.as_os_str(), flags, Mode::empty())
            }
            r => r,
        };
        cur = next.map_err(|e| match e {
            Errno::ELOOP | Errno::ENOTDIR => ImageError::Unsafe(format!(
                "{}: parent {:?} is not a directory (symlink?)",
                entry.display(),
                c
            )),
            e => ImageError::nix("open parent of", entry, e),
        })?;
    }
    Ok(cur)
}

/// Makes `name` a real directory (replacing a non-directory) and opens it.
pub(crate) fn ensure_dir(
    parent: &OwnedFd,
    name: &OsStr,
    entry: &Path,
) -> Result<OwnedFd, ImageError> {
    let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    match mkdirat(parent, name, Mode::from_bits_truncate(0o755)) {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            let st = fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(|e| ImageError::nix("stat", entry, e))?;
            if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFDIR {
                unlinkat(parent, name, UnlinkatFlags::NoRemoveDir)
                    .map_err(|e| ImageError::nix("replace", entry, e))?;
                mkdirat(parent, name, Mode::from_bits_truncate(0o755))
                    .map_err(|e| ImageError::nix("mkdir", entry, e))?;
            }
        }
        Err(e) => return Err(ImageError::nix("mkdir", entry, e)),
    }
    openat(parent, name, flags, Mode::empty()).map_err(|e| ImageError::nix("open", entry, e))
}

/// Removes whatever is at `name` (a later entry replaces an earlier one).
pub(crate) fn remove_existing(
    parent: &OwnedFd,
    name: &OsStr,
    dest: &Path,
    comps: &[OsString],
) -> Result<(), ImageError> {
    match unlinkat(parent.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EISDIR) => {
            // Parents were verified to be real directories, and remove_dir_all
            // does not follow symlinks inside, so this stays within the layer.
            let p: std::path::PathBuf = comps.iter().fold(dest.to_path_buf(), |p, c| p.join(c));
            std::fs::remove_dir_all(&p).map_err(|e| ImageError::io("replace", &p, e))
        }
        Err(e) => Err(ImageError::nix("replace", Path::new(name), e)),
    }
}
