//! An overlayfs upper dir → an OCI layer tar (the inverse of `whiteout`).
//!
//! The upper dir of a container holds exactly what it changed: new and
//! modified files, plus overlayfs' deletion markers. Those become OCI form:
//! * a char device 0/0 `<name>` (a whiteout) → an empty file `.wh.<name>`;
//! * a dir with xattr `trusted.overlay.opaque=y` → the dir, then an empty
//!   `<dir>/.wh..wh..opq` (its lower contents are hidden);
//! * regular files, dirs, symlinks and fifos are kept with owner, mode, mtime;
//!   a file with several links inside the upper is stored once, then as
//!   hardlinks to its first path.
//!
//! Other devices and sockets are skipped. Paths in `skip` (relative, e.g.
//! `etc/resolv.conf`) are left out when they are empty regular files: those
//! are the mount points the runtime created for its bind mounts.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header, HeaderMode};

use crate::ImageError;

const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Writes the tar of `upper` to `out` (uncompressed) and finishes the archive.
pub(crate) fn write_layer_tar<W: Write>(
    upper: &Path,
    skip: &[&str],
    out: W,
) -> Result<W, ImageError> {
    let mut b = tar::Builder::new(out);
    b.mode(HeaderMode::Complete);
    b.follow_symlinks(false);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    walk(&mut b, upper, Path::new(""), skip, &mut links)?;
    b.into_inner()
        .map_err(|e| ImageError::io("finish layer tar of", upper, e))
}

fn walk<W: Write>(
    b: &mut tar::Builder<W>,
    dir: &Path,
    rel: &Path,
    skip: &[&str],
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), ImageError> {
    let rd = std::fs::read_dir(dir).map_err(|e| ImageError::io("read", dir, e))?;
    let mut entries = rd
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ImageError::io("read", dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = rel.join(e.file_name());
        let meta =
            std::fs::symlink_metadata(&path).map_err(|e| ImageError::io("stat", &path, e))?;
        let ft = meta.file_type();
        if ft.is_file() || ft.is_dir() {
            check_plain_upper(&path)?;
        }
        let io = |e| ImageError::io("add to layer", &path, e);
        if ft.is_char_device() && meta.rdev() == 0 {
            let wh = rel.join(format!(
                "{}{}",
                crate::whiteout::PREFIX,
                e.file_name().to_string_lossy()
            ));
            append_empty(b, &wh, &meta).map_err(io)?;
        } else if ft.is_dir() {
            let mut h = header(&meta, EntryType::Directory);
            b.append_data(&mut h, &name, std::io::empty()).map_err(io)?;
            if is_opaque(&path) {
                append_empty(b, &name.join(OPAQUE_MARKER), &meta).map_err(io)?;
            }
            walk(b, &path, &name, skip, links)?;
        } else if ft.is_file() {
            if meta.len() == 0 && skip.iter().any(|s| Path::new(s) == name) {
                continue;
            }
            if meta.nlink() > 1 {
                if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                    let mut h = header(&meta, EntryType::Link);
                    b.append_link(&mut h, &name, first).map_err(io)?;
                    continue;
                }
                links.insert((meta.dev(), meta.ino()), name.clone());
            }
            let mut h = header(&meta, EntryType::Regular);
            h.set_size(meta.len());
            let f = File::open(&path).map_err(io)?;
            b.append_data(&mut h, &name, f).map_err(io)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&path).map_err(io)?;
            let mut h = header(&meta, EntryType::Symlink);
            b.append_link(&mut h, &name, &target).map_err(io)?;
        } else if ft.is_fifo() {
            let mut h = header(&meta, EntryType::Fifo);
            b.append_data(&mut h, &name, std::io::empty()).map_err(io)?;
        } else {
            tracing::debug!(path = %path.display(), "skipping device or socket in build layer");
        }
    }
    Ok(())
}

fn header(meta: &Metadata, kind: EntryType) -> Header {
    let mut h = Header::new_gnu();
    h.set_metadata_in_mode(meta, HeaderMode::Complete);
    h.set_entry_type(kind);
    h.set_size(0);
    h
}

/// An empty regular file (whiteout markers), owned by root, mode 0644.
fn append_empty<W: Write>(
    b: &mut tar::Builder<W>,
    name: &Path,
    meta: &Metadata,
) -> std::io::Result<()> {
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(0);
    h.set_mtime(meta.mtime().max(0) as u64);
    b.append_data(&mut h, name, std::io::empty())
}

fn is_opaque(dir: &Path) -> bool {
    xattr(dir, c"trusted.overlay.opaque").is_some_and(|v| v == b"y")
}

/// The (short) value of xattr `name` of `path` itself (not following symlinks).
fn xattr(path: &Path, name: &std::ffi::CStr) -> Option<Vec<u8>> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut buf = [0u8; 256];
    // SAFETY: both strings are NUL-terminated; buf is valid for its length.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    (n >= 0).then(|| buf[..n as usize].to_vec())
}

/// Overlay features that store a change outside the upper file's own content
/// (metadata-only copy-up, renamed-dir redirects) cannot be read back as a
/// layer: refuse rather than write a layer that silently loses data.
fn check_plain_upper(path: &Path) -> Result<(), ImageError> {
    for name in [c"trusted.overlay.metacopy", c"trusted.overlay.redirect"] {
        if xattr(path, name).is_some() {
            return Err(ImageError::Unsupported(format!(
                "{} has {}: mount overlay with metacopy=off,redirect_dir=off for builds",
                path.display(),
                name.to_string_lossy()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};

    fn entries(tar: &[u8]) -> Vec<(String, EntryType, Option<String>)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let link = e
                    .link_name()
                    .unwrap()
                    .map(|l| l.to_string_lossy().into_owned());
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().entry_type(),
                    link,
                )
            })
            .collect()
    }

    #[test]
    fn whiteouts_and_opaque_dirs_become_oci_markers() {
        let dir = tempfile::tempdir().unwrap();
        let up = dir.path();
        std::fs::create_dir_all(up.join("www")).unwrap();
        mknod(
            &up.join("www/index.html"),
            SFlag::S_IFCHR,
            Mode::empty(),
            makedev(0, 0),
        )
        .unwrap();
        std::fs::create_dir(up.join("opq")).unwrap();
        std::fs::write(up.join("opq/new"), b"n").unwrap();
        let c = std::ffi::CString::new(up.join("opq").as_os_str().as_bytes()).unwrap();
        // SAFETY: NUL-terminated strings, a 1-byte value.
        let rc = unsafe {
            libc::setxattr(
                c.as_ptr(),
                c"trusted.overlay.opaque".as_ptr(),
                b"y".as_ptr().cast(),
                1,
                0,
            )
        };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
        std::fs::write(up.join("built.txt"), b"hi\n").unwrap();
        std::fs::hard_link(up.join("built.txt"), up.join("link.txt")).unwrap();
        std::os::unix::fs::symlink("built.txt", up.join("sym")).unwrap();
        std::fs::create_dir(up.join("etc")).unwrap();
        std::fs::write(up.join("etc/resolv.conf"), b"").unwrap();

        let tar = write_layer_tar(up, &["etc/resolv.conf"], Vec::new()).unwrap();
        let got = entries(&tar);
        let names: Vec<&str> = got.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "built.txt",
                "etc",
                "link.txt",
                "opq",
                "opq/.wh..wh..opq",
                "opq/new",
                "sym",
                "www",
                "www/.wh.index.html"
            ]
        );
        assert_eq!(got[2].1, EntryType::Link);
        assert_eq!(got[2].2.as_deref(), Some("built.txt"));
        assert_eq!(got[6].1, EntryType::Symlink);

        // Round trip through the safe unpacker: back to overlay form.
        let out = tempfile::tempdir().unwrap();
        crate::unpack::unpack_tar(tar.as_slice(), out.path()).unwrap();
        let wh = std::fs::symlink_metadata(out.path().join("www/index.html")).unwrap();
        assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
        assert!(is_opaque(&out.path().join("opq")));
        assert_eq!(std::fs::read(out.path().join("link.txt")).unwrap(), b"hi\n");
    }

    #[test]
    fn metadata_only_copy_ups_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("chmodded");
        std::fs::write(&f, b"").unwrap();
        let c = std::ffi::CString::new(f.as_os_str().as_bytes()).unwrap();
        // SAFETY: NUL-terminated strings, an empty value.
        let rc = unsafe {
            libc::setxattr(
                c.as_ptr(),
                c"trusted.overlay.metacopy".as_ptr(),
                std::ptr::null(),
                0,
                0,
            )
        };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
        let err = write_layer_tar(dir.path(), &[], Vec::new()).unwrap_err();
        assert!(matches!(err, ImageError::Unsupported(_)), "{err}");
    }
}
