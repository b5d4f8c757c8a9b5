//! OCI whiteouts → overlayfs whiteouts.
//!
//! `.wh.<name>` in a layer deletes `<name>` from the layers below: overlayfs
//! expresses that as a char device 0/0 named `<name>`. `.wh..wh..opq` makes its
//! directory opaque (hides everything below it): the `trusted.overlay.opaque=y`
//! xattr on the directory.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::sys::stat::{makedev, mknodat, Mode, SFlag};

use crate::fsat::remove_existing;
use crate::ImageError;

pub(crate) const PREFIX: &str = ".wh.";
/// What follows [`PREFIX`] in the opaque marker `.wh..wh..opq`.
const OPAQUE_REST: &str = ".wh..opq";

/// Applies the whiteout entry `.wh.<target>` found in directory `parent`
/// (`parents` are its components below `dest`).
pub(crate) fn apply(
    parent: &OwnedFd,
    target: &str,
    dest: &Path,
    parents: &[OsString],
    entry: &Path,
) -> Result<(), ImageError> {
    if target == OPAQUE_REST {
        return set_opaque(parent, entry);
    }
    if target.is_empty() || target == "." || target == ".." || target.contains('/') {
        return Err(ImageError::Unsafe(format!(
            "bad whiteout {}",
            entry.display()
        )));
    }
    let mut comps = parents.to_vec();
    comps.push(OsString::from(target));
    remove_existing(parent, OsStr::new(target), dest, &comps)?;
    // A char device 0/0 is overlayfs' whiteout; the only device we ever create.
    mknodat(parent, target, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
        .map_err(|e| ImageError::nix("create whiteout", entry, e))
}

fn set_opaque(dir: &OwnedFd, entry: &Path) -> Result<(), ImageError> {
    let name = c"trusted.overlay.opaque";
    // SAFETY: `dir` is an open fd we own; name is NUL-terminated; value is 1 byte.
    let rc = unsafe { libc::fsetxattr(dir.as_raw_fd(), name.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
    if rc != 0 {
        return Err(ImageError::io(
            "mark opaque",
            entry,
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}
