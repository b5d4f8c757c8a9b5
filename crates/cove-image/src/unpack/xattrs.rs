//! `SCHILY.xattr.*` records applied to the file or directory just made, through
//! its open fd (never by path). `user.*` and `security.capability` (file
//! capabilities, e.g. `ping`'s `cap_net_raw`) must stick; other namespaces the
//! host refuses (`trusted.*`, `security.selinux`) are skipped with a debug log,
//! and `trusted.overlay.*` is never taken from a layer: it would steer overlayfs
//! (opaque directories are made from `.wh..wh..opq` entries only).

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;

use crate::ImageError;

/// Sets the xattrs on `fd`; call after chown and chmod (chown clears capabilities).
pub(crate) fn apply(
    fd: BorrowedFd<'_>,
    xattrs: &[(Vec<u8>, Vec<u8>)],
    label: &Path,
) -> Result<(), ImageError> {
    for (name, value) in xattrs {
        let shown = super::names::shown(name);
        if name.starts_with(b"trusted.overlay.") {
            tracing::debug!(entry = %label.display(), xattr = %shown, "not applying an overlayfs xattr from a layer");
            continue;
        }
        let Ok(cname) = CString::new(name.clone()) else {
            return Err(ImageError::Invalid(format!(
                "layer tar: entry {}: xattr name {shown} contains NUL",
                label.display()
            )));
        };
        // SAFETY: fd is open; cname is NUL-terminated; value/len describe a live buffer.
        let rc = unsafe {
            libc::fsetxattr(
                fd.as_raw_fd(),
                cname.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        if rc == 0 {
            continue;
        }
        let err = std::io::Error::last_os_error();
        let must = name.starts_with(b"user.") || name.as_slice() == b"security.capability";
        let unsupported = err.raw_os_error() == Some(libc::EOPNOTSUPP);
        if must && !unsupported {
            return Err(ImageError::Io {
                context: format!("cannot set xattr {shown} on {}", label.display()),
                source: err,
            });
        }
        tracing::debug!(entry = %label.display(), xattr = %shown, error = %err, "skipping an xattr the host refuses");
    }
    Ok(())
}
