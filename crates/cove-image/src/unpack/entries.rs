//! Making one member on disk, relative to the layer root fd, never following a
//! symlink: directories, files (sparse ones with holes), symlinks, hard links
//! and FIFOs, with owner, mode (after chown, so setuid survives), xattrs and mtime.

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstat, fstatat, futimens, mknodat, utimensat, FchmodatFlags, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, Gid, Uid};

use super::names::{components, shown};
use super::reader::{Member, TarReader};
use super::xattrs;
use crate::fsat::{ensure_dir, remove_existing, walk};
use crate::ImageError;

/// Where a member goes: its components below the layer root, and its name for errors.
pub(super) struct At<'a> {
    pub root: &'a OwnedFd,
    pub dest: &'a Path,
    pub comps: &'a [OsString],
    pub label: &'a Path,
}

impl At<'_> {
    fn name(&self) -> &OsString {
        &self.comps[self.comps.len() - 1]
    }

    fn parent(&self) -> Result<OwnedFd, ImageError> {
        walk(
            self.root,
            &self.comps[..self.comps.len() - 1],
            true,
            self.label,
        )
    }

    /// Removes what an earlier member left at this name.
    fn clear(&self, parent: &OwnedFd) -> Result<(), ImageError> {
        remove_existing(parent, self.name(), self.dest, self.comps)
            .map_err(|e| relabel(e, "replace", self.label))
    }

    fn err(&self, what: &str, e: Errno) -> ImageError {
        ImageError::nix(what, self.label, e)
    }
}

/// Rewrites an I/O error's context to name the entry instead of a host path.
pub(super) fn relabel(e: ImageError, what: &str, label: &Path) -> ImageError {
    match e {
        ImageError::Io { source, .. } => ImageError::io(what, label, source),
        e => e,
    }
}

fn ids(m: &Member) -> (Option<Uid>, Option<Gid>) {
    (Some(Uid::from_raw(m.uid)), Some(Gid::from_raw(m.gid)))
}

fn mode(m: &Member) -> Mode {
    Mode::from_bits_truncate(m.mode)
}

fn time(m: &Member) -> TimeSpec {
    TimeSpec::new(m.mtime.0, m.mtime.1)
}

pub(super) fn dir(at: &At, m: &Member) -> Result<(), ImageError> {
    let parent = at.parent()?;
    let dir = ensure_dir(&parent, at.name(), at.label)?;
    let (uid, gid) = ids(m);
    fchown(&dir, uid, gid).map_err(|e| at.err("chown", e))?;
    fchmod(&dir, mode(m)).map_err(|e| at.err("chmod", e))?;
    xattrs::apply(dir.as_fd(), &m.xattrs, at.label)
}

pub(super) fn file<R: Read>(at: &At, m: &Member, tar: &mut TarReader<R>) -> Result<(), ImageError> {
    let parent = at.parent()?;
    at.clear(&parent)?;
    let fd = openat(
        &parent,
        at.name().as_os_str(),
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| at.err("create", e))?;
    let mut f = File::from(fd);
    tar.write_data(m, &mut f)
        .map_err(|e| ImageError::io("write", at.label, e))?;
    let (uid, gid) = ids(m);
    fchown(&f, uid, gid).map_err(|e| at.err("chown", e))?;
    fchmod(&f, mode(m)).map_err(|e| at.err("chmod", e))?;
    xattrs::apply(f.as_fd(), &m.xattrs, at.label)?;
    futimens(&f, &time(m), &time(m)).map_err(|e| at.err("set times of", e))
}

pub(super) fn symlink(at: &At, m: &Member) -> Result<(), ImageError> {
    if m.link.is_empty() {
        return Err(ImageError::Unsafe(format!(
            "symlink {} has no target",
            at.label.display()
        )));
    }
    let parent = at.parent()?;
    at.clear(&parent)?;
    let target = std::ffi::OsStr::from_bytes(&m.link);
    // The target is only stored, never followed by us.
    symlinkat(target, &parent, at.name().as_os_str()).map_err(|e| at.err("symlink", e))?;
    own_and_time(at, &parent, m)
}

/// chown and mtime of a non-directory we just made at the name, without following it.
fn own_and_time(at: &At, parent: &OwnedFd, m: &Member) -> Result<(), ImageError> {
    let (uid, gid) = ids(m);
    let name = at.name().as_os_str();
    fchownat(parent, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| at.err("chown", e))?;
    utimensat(
        parent,
        name,
        &time(m),
        &time(m),
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| at.err("set times of", e))
}

pub(super) fn hardlink(at: &At, m: &Member) -> Result<(), ImageError> {
    let tcomps = components(&m.link)?;
    let Some((tname, tparents)) = tcomps.split_last() else {
        return Err(ImageError::Unsafe(format!(
            "hardlink {} to the layer root",
            at.label.display()
        )));
    };
    let tlabel = shown(&m.link);
    let tparent = walk(at.root, tparents, false, Path::new(&tlabel))?;
    let st = fstatat(&tparent, tname.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| {
        ImageError::Unsafe(format!("hardlink {} to {tlabel}: {e}", at.label.display()))
    })?;
    if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR {
        return Err(ImageError::Unsafe(format!(
            "hardlink {} to a directory",
            at.label.display()
        )));
    }
    let parent = at.parent()?;
    if at.comps == tcomps.as_slice() {
        return Ok(()); // a link to itself: already there
    }
    at.clear(&parent)?;
    // Flags empty: linkat does not follow a symlink at the target.
    linkat(
        &tparent,
        tname.as_os_str(),
        &parent,
        at.name().as_os_str(),
        AtFlags::empty(),
    )
    .map_err(|e| at.err("hardlink", e))
}

pub(super) fn fifo(at: &At, m: &Member) -> Result<(), ImageError> {
    let parent = at.parent()?;
    at.clear(&parent)?;
    let name = at.name().as_os_str();
    mknodat(&parent, name, SFlag::S_IFIFO, mode(m), 0).map_err(|e| at.err("mkfifo", e))?;
    own_and_time(at, &parent, m)?;
    // mknod applied the umask and chown cleared setuid/setgid: set the mode
    // again through an O_PATH handle on the FIFO (opening it for I/O would block).
    let fd = openat(
        &parent,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| at.err("open", e))?;
    let st = fstat(&fd).map_err(|e| at.err("stat", e))?;
    if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFIFO {
        return Err(ImageError::Unsafe(format!(
            "{} changed while unpacking",
            at.label.display()
        )));
    }
    let proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
    fchmodat(
        nix::fcntl::AT_FDCWD,
        proc.as_str(),
        mode(m),
        FchmodatFlags::FollowSymlink,
    )
    .map_err(|e| at.err("chmod", e))
}
