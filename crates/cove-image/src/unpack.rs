//! Safe layer unpacking: a security boundary, since layers may come from a
//! hostile registry.
//!
//! We do not use `tar::Archive::unpack`. Each entry goes through our own loop:
//! * paths must be relative without `..` (else [`ImageError::Unsafe`]);
//! * every parent directory is opened with `openat(O_NOFOLLOW|O_DIRECTORY)` from
//!   the layer root, so a symlink planted by an earlier entry is never followed;
//!   the entry itself is created with `*at` calls relative to that parent fd;
//! * hard links must name an existing non-directory inside the layer, reached the
//!   same way (never through a symlink);
//! * char/block devices are skipped (only whiteouts, created by us, are devices);
//! * ownership, modes (incl. setuid/setgid, applied after chown) and mtimes are kept.
//!
//! The sha256 of the uncompressed stream (the diff_id) is computed on the way.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstatat, futimens, mknodat, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, Gid, Uid};
use sha2::{Digest, Sha256};
use tar::EntryType;

use crate::fsat::{components, ensure_dir, remove_existing, walk};
use crate::manifest::Compression;
use crate::whiteout;
use crate::ImageError;

/// A reader that hashes what passes through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Unpacks the layer blob at `blob` into the existing empty directory `dest`.
/// Returns the diff_id (`sha256:` of the uncompressed tar).
#[tracing::instrument(skip_all, fields(blob = %blob.display()))]
pub(crate) fn unpack_layer(
    blob: &Path,
    hint: Option<Compression>,
    dest: &Path,
) -> Result<String, ImageError> {
    let mut file = File::open(blob).map_err(|e| ImageError::io("open", blob, e))?;
    let mut head = [0u8; 512];
    let n = read_full(&mut file, &mut head).map_err(|e| ImageError::io("read", blob, e))?;
    file.rewind().map_err(|e| ImageError::io("read", blob, e))?;
    let compression = Compression::sniff(&head[..n])
        .or(hint)
        .unwrap_or(Compression::None);
    let file = BufReader::new(file);
    let decoded: Box<dyn Read> = match compression {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(file)
                .map_err(|e| ImageError::io("decompress", blob, e))?,
        ),
    };
    let mut reader = HashingReader {
        inner: decoded,
        hasher: Sha256::new(),
    };
    unpack_tar(&mut reader, dest)?;
    // The diff_id covers the whole stream, including the end-of-archive padding.
    std::io::copy(&mut reader, &mut std::io::sink())
        .map_err(|e| ImageError::io("decompress", blob, e))?;
    Ok(crate::blobs::finish(reader.hasher))
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Unpacks an (uncompressed) tar stream into `dest` with the checks above.
pub(crate) fn unpack_tar(reader: impl Read, dest: &Path) -> Result<(), ImageError> {
    let root = openat(
        nix::fcntl::AT_FDCWD,
        dest,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ImageError::nix("open", dest, e))?;
    let mut archive = tar::Archive::new(reader);
    let mut dir_times: Vec<(Vec<std::ffi::OsString>, i64)> = Vec::new();
    let entries = archive
        .entries()
        .map_err(|e| ImageError::io("read layer", dest, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ImageError::io("read layer entry in", dest, e))?;
        let raw = entry
            .path()
            .map_err(|e| ImageError::io("read layer entry in", dest, e))?
            .into_owned();
        let comps = components(&raw)?;
        let Some((name, parents)) = comps.split_last() else {
            continue; // the layer root itself ("./")
        };
        let name_str = name.to_string_lossy();
        if let Some(target) = name_str.strip_prefix(whiteout::PREFIX) {
            let parent = walk(&root, parents, true, &raw)?;
            whiteout::apply(&parent, target, dest, parents, &raw)?;
            continue;
        }
        let h = entry.header();
        let mode = Mode::from_bits_truncate(h.mode().unwrap_or(0o644) & 0o7777);
        let uid = Uid::from_raw(h.uid().unwrap_or(0) as u32);
        let gid = Gid::from_raw(h.gid().unwrap_or(0) as u32);
        let mtime = h.mtime().unwrap_or(0) as i64;
        let ts = TimeSpec::new(mtime, 0);
        let kind = h.entry_type();
        let err = |what: &str, e: Errno| ImageError::nix(what, &raw, e);
        match kind {
            EntryType::Directory => {
                let parent = walk(&root, parents, true, &raw)?;
                let dir = ensure_dir(&parent, name, &raw)?;
                fchown(&dir, Some(uid), Some(gid)).map_err(|e| err("chown", e))?;
                fchmod(&dir, mode).map_err(|e| err("chmod", e))?;
                dir_times.push((comps.clone(), mtime));
            }
            EntryType::Regular | EntryType::Continuous => {
                let parent = walk(&root, parents, true, &raw)?;
                remove_existing(&parent, name, dest, &comps)?;
                let fd = openat(
                    &parent,
                    name.as_os_str(),
                    OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_WRONLY
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(|e| err("create", e))?;
                let mut f = File::from(fd);
                std::io::copy(&mut entry, &mut f).map_err(|e| ImageError::io("write", &raw, e))?;
                fchown(&f, Some(uid), Some(gid)).map_err(|e| err("chown", e))?;
                fchmod(&f, mode).map_err(|e| err("chmod", e))?;
                futimens(&f, &ts, &ts).map_err(|e| err("set times of", e))?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| ImageError::io("read link of", &raw, e))?
                    .ok_or_else(|| {
                        ImageError::Unsafe(format!("symlink {} has no target", raw.display()))
                    })?
                    .into_owned();
                let parent = walk(&root, parents, true, &raw)?;
                remove_existing(&parent, name, dest, &comps)?;
                // The target is only stored, never followed by us.
                symlinkat(target.as_os_str(), &parent, name.as_os_str())
                    .map_err(|e| err("symlink", e))?;
                fchownat(
                    &parent,
                    name.as_os_str(),
                    Some(uid),
                    Some(gid),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|e| err("chown", e))?;
                utimensat(
                    &parent,
                    name.as_os_str(),
                    &ts,
                    &ts,
                    UtimensatFlags::NoFollowSymlink,
                )
                .map_err(|e| err("set times of", e))?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(|e| ImageError::io("read link of", &raw, e))?
                    .ok_or_else(|| {
                        ImageError::Unsafe(format!("hardlink {} has no target", raw.display()))
                    })?
                    .into_owned();
                let tcomps = components(&target)?;
                let Some((tname, tparents)) = tcomps.split_last() else {
                    return Err(ImageError::Unsafe(format!(
                        "hardlink {} to the layer root",
                        raw.display()
                    )));
                };
                let tparent = walk(&root, tparents, false, &target)?;
                let st = fstatat(&tparent, tname.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                    .map_err(|e| {
                        ImageError::Unsafe(format!(
                            "hardlink {} to {}: {e}",
                            raw.display(),
                            target.display()
                        ))
                    })?;
                if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR {
                    return Err(ImageError::Unsafe(format!(
                        "hardlink {} to a directory",
                        raw.display()
                    )));
                }
                let parent = walk(&root, parents, true, &raw)?;
                remove_existing(&parent, name, dest, &comps)?;
                // Flags empty: linkat does not follow a symlink at the target.
                linkat(
                    &tparent,
                    tname.as_os_str(),
                    &parent,
                    name.as_os_str(),
                    AtFlags::empty(),
                )
                .map_err(|e| err("hardlink", e))?;
            }
            EntryType::Fifo => {
                let parent = walk(&root, parents, true, &raw)?;
                remove_existing(&parent, name, dest, &comps)?;
                mknodat(&parent, name.as_os_str(), SFlag::S_IFIFO, mode, 0)
                    .map_err(|e| err("mkfifo", e))?;
                fchownat(
                    &parent,
                    name.as_os_str(),
                    Some(uid),
                    Some(gid),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|e| err("chown", e))?;
            }
            EntryType::Char | EntryType::Block => {
                tracing::debug!(path = %raw.display(), "skipping device node in layer");
            }
            other => {
                tracing::debug!(path = %raw.display(), kind = ?other, "skipping layer entry type");
            }
        }
    }
    // Directory mtimes last: creating their children changed them.
    for (comps, mtime) in dir_times.iter().rev() {
        if let Ok(dir) = walk(&root, comps, false, Path::new("")) {
            let ts = TimeSpec::new(*mtime, 0);
            let _ = futimens(&dir, &ts, &ts);
        }
    }
    Ok(())
}
