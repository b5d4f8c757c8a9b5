//! Safe layer unpacking: a security boundary, since layers may come from a
//! hostile registry.
//!
//! [`reader`] reads the members as GNU tar does (sparse files, PAX and GNU
//! extended headers, header-only members without data). Each member is then
//! made by [`entries`], never by `tar::Archive::unpack`:
//! * paths must be relative without `..` (else [`ImageError::Unsafe`]);
//! * every parent directory is opened with `openat(O_NOFOLLOW|O_DIRECTORY)` from
//!   the layer root, so a symlink planted by an earlier entry is never followed;
//!   the entry itself is created with `*at` calls relative to that parent fd;
//! * hard links must name an existing non-directory inside the layer, reached the
//!   same way (never through a symlink);
//! * char/block devices are skipped (only whiteouts, created by us, are devices);
//! * ownership, modes (incl. setuid/setgid, applied after chown), xattrs and
//!   mtimes are kept.
//!
//! Errors name the entry (escaped, truncated), never the temporary directory.
//! The sha256 of the uncompressed stream (the diff_id) is computed on the way.

mod entries;
mod fields;
mod names;
mod pax;
mod reader;
mod sparse;
mod xattrs;

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{futimens, Mode};
use nix::sys::time::TimeSpec;
use sha2::{Digest, Sha256};

use crate::fsat::walk;
use crate::manifest::Compression;
use crate::whiteout;
use crate::ImageError;
use reader::{Kind, TarReader};

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
    let mut tar = TarReader::new(reader);
    let mut dir_times: Vec<(Vec<OsString>, (i64, i64))> = Vec::new();
    while let Some(m) = tar.next_member()? {
        let comps = names::components(&m.name)?;
        let Some((name, parents)) = comps.split_last() else {
            continue; // the layer root itself ("./")
        };
        let label = PathBuf::from(names::shown(&m.name));
        if let Some(target) = name.to_string_lossy().strip_prefix(whiteout::PREFIX) {
            let parent = walk(&root, parents, true, &label)?;
            whiteout::apply(&parent, target, dest, parents, &label)
                .map_err(|e| entries::relabel(e, "whiteout", &label))?;
            continue;
        }
        let at = entries::At {
            root: &root,
            dest,
            comps: &comps,
            label: &label,
        };
        match m.kind {
            Kind::Dir => {
                entries::dir(&at, &m)?;
                dir_times.push((comps.clone(), m.mtime));
            }
            Kind::File => entries::file(&at, &m, &mut tar)?,
            Kind::Symlink => entries::symlink(&at, &m)?,
            Kind::Hardlink => entries::hardlink(&at, &m)?,
            Kind::Fifo => entries::fifo(&at, &m)?,
            Kind::Device => {
                tracing::debug!(path = %label.display(), "skipping device node in layer");
            }
            Kind::Label => {
                tracing::debug!(path = %label.display(), "skipping volume label in layer");
            }
        }
    }
    // Directory mtimes last: creating their children changed them.
    for (comps, (secs, nanos)) in dir_times.iter().rev() {
        if let Ok(dir) = walk(&root, comps, false, Path::new("")) {
            let ts = TimeSpec::new(*secs, *nanos);
            let _ = futimens(&dir, &ts, &ts);
        }
    }
    Ok(())
}
