//! Synced files, stored one by one by content digest
//! (`<data_dir>/images/files/sha256/<hex>`), and the build contexts assembled
//! from them.
//!
//! A client sends a [`SyncManifest`] (paths, kinds, modes, file digests);
//! [`ImageStore::missing_sync_files`] answers the digests not stored yet;
//! [`ImageStore::store_sync_files`] takes a tar of those (entries named
//! `sha256:<hex>`), checks every one against its name and stores them all or
//! none; [`ImageStore::assemble_sync_context`] writes the deterministic tar of
//! the manifest (sorted paths, mtime 0, uid/gid 0) from the stored files and
//! stores it as a build context, so `local_path` steps and the build cache
//! work exactly as with an uploaded tar.

use std::collections::HashSet;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use cove_types::{SyncEntryKind, SyncManifest, MAX_SYNC_ENTRIES};
use sha2::{Digest, Sha256};

use crate::blobs::{digest_hex, finish, temp_path};
use crate::{ImageError, ImageStore};

/// Why a sync request was refused.
#[derive(Debug, thiserror::Error)]
pub enum SyncFilesError {
    /// The client's manifest or upload is wrong (HTTP 400); one line.
    #[error("{0}")]
    Invalid(String),
    /// The daemon could not do it.
    #[error(transparent)]
    Image(#[from] ImageError),
}

impl ImageStore {
    fn files_dir(&self) -> PathBuf {
        // `<data_dir>/images/tmp` → `<data_dir>/images/files/sha256`.
        self.inner.tmp.with_file_name("files").join("sha256")
    }

    fn sync_file_path(&self, digest: &str) -> Result<PathBuf, ImageError> {
        Ok(self.files_dir().join(digest_hex(digest)?))
    }

    /// Validates `manifest` and answers the file digests not stored yet
    /// (distinct, in manifest order).
    pub fn missing_sync_files(
        &self,
        manifest: &SyncManifest,
    ) -> Result<Vec<String>, SyncFilesError> {
        manifest.validate().map_err(SyncFilesError::Invalid)?;
        let mut missing = Vec::new();
        for d in manifest.file_digests() {
            if !self.sync_file_path(d)?.is_file() {
                missing.push(d.to_string());
            }
        }
        Ok(missing)
    }

    /// Stores the files of an uploaded tar whose regular entries are named
    /// `sha256:<hex>` of their content. Every entry is checked before any is
    /// stored: a bad name, another entry type or content that does not match
    /// its name refuses the whole upload. Returns the files and bytes taken.
    /// Blocking.
    #[tracing::instrument(skip_all)]
    pub fn store_sync_files(&self, upload: &Path) -> Result<(u64, u64), SyncFilesError> {
        let dir = self.files_dir();
        std::fs::create_dir_all(&dir).map_err(|e| ImageError::io("create", &dir, e))?;
        let mut verified: Vec<(PathBuf, PathBuf)> = Vec::new();
        let res = self.verify_upload(upload, &mut verified);
        let res = res.and_then(|(files, bytes)| {
            for (tmp, dest) in &verified {
                std::fs::rename(tmp, dest).map_err(|e| ImageError::io("store", dest, e))?;
            }
            Ok((files, bytes))
        });
        for (tmp, _) in &verified {
            let _ = std::fs::remove_file(tmp);
        }
        let (files, bytes) = res?;
        tracing::info!(files, bytes, "stored synced files");
        Ok((files, bytes))
    }

    /// Copies each entry of `upload` to a temp file, checking its digest;
    /// pushes `(temp, destination)` for every verified one.
    fn verify_upload(
        &self,
        upload: &Path,
        verified: &mut Vec<(PathBuf, PathBuf)>,
    ) -> Result<(u64, u64), SyncFilesError> {
        let f = std::fs::File::open(upload).map_err(|e| ImageError::io("open", upload, e))?;
        let mut ar = tar::Archive::new(BufReader::new(f));
        let bad_tar = |e: std::io::Error| {
            SyncFilesError::Invalid(format!("the upload is not a readable tar: {e}"))
        };
        let (mut files, mut bytes) = (0u64, 0u64);
        let mut seen = HashSet::new();
        for entry in ar.entries().map_err(bad_tar)? {
            let mut entry = entry.map_err(bad_tar)?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            if !is_sha256(&name) {
                return Err(SyncFilesError::Invalid(format!(
                    "upload entry {name:?} is not named sha256:<64 lowercase hex>"
                )));
            }
            if entry.header().entry_type() != tar::EntryType::Regular {
                return Err(SyncFilesError::Invalid(format!(
                    "upload entry {name} is not a regular file"
                )));
            }
            if !seen.insert(name.clone()) {
                return Err(SyncFilesError::Invalid(format!(
                    "upload entry {name} is listed twice"
                )));
            }
            if seen.len() > MAX_SYNC_ENTRIES {
                return Err(SyncFilesError::Invalid(format!(
                    "the upload holds over {MAX_SYNC_ENTRIES} files"
                )));
            }
            let tmp = temp_path(&self.inner.tmp, "sync-file");
            let dest = self.sync_file_path(&name)?;
            let mut out =
                std::fs::File::create(&tmp).map_err(|e| ImageError::io("create", &tmp, e))?;
            verified.push((tmp.clone(), dest));
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 64 * 1024];
            let mut n = 0u64;
            loop {
                let k = entry.read(&mut buf).map_err(bad_tar)?;
                if k == 0 {
                    break;
                }
                hasher.update(&buf[..k]);
                out.write_all(&buf[..k])
                    .map_err(|e| ImageError::io("write", &tmp, e))?;
                n += k as u64;
            }
            out.sync_all()
                .map_err(|e| ImageError::io("sync", &tmp, e))?;
            let actual = finish(hasher);
            if actual != name {
                return Err(SyncFilesError::Invalid(format!(
                    "upload entry {name} has content with digest {actual}"
                )));
            }
            files += 1;
            bytes += n;
        }
        Ok((files, bytes))
    }

    /// Writes the deterministic tar of `manifest` from the stored files and
    /// stores it as a build context; returns its digest and size. Refused if
    /// the manifest is invalid or names a file that is not stored (or whose
    /// stored size differs from the manifest's). Blocking.
    #[tracing::instrument(skip_all, fields(entries = manifest.entries.len()))]
    pub fn assemble_sync_context(
        &self,
        manifest: &SyncManifest,
    ) -> Result<(String, u64), SyncFilesError> {
        let missing = self.missing_sync_files(manifest)?;
        if let Some(first) = missing.first() {
            return Err(SyncFilesError::Invalid(format!(
                "{} file(s) of the manifest are not uploaded (first: {first}); POST them to /v1/images/build/files",
                missing.len()
            )));
        }
        let mut entries: Vec<_> = manifest.entries.iter().collect();
        // Path components in byte order: each directory right before what it holds.
        entries.sort_by(|a, b| a.path.split('/').cmp(b.path.split('/')));
        let tmp = temp_path(&self.inner.tmp, "sync-context");
        let res = (|| {
            let f = std::fs::File::create(&tmp).map_err(|e| ImageError::io("create", &tmp, e))?;
            let mut b = tar::Builder::new(BufWriter::new(f));
            let werr = |e: std::io::Error| SyncFilesError::Image(ImageError::io("write", &tmp, e));
            for e in entries {
                let mut h = tar::Header::new_gnu();
                h.set_mtime(0);
                h.set_uid(0);
                h.set_gid(0);
                h.set_mode(e.mode);
                match e.kind {
                    SyncEntryKind::Dir => {
                        h.set_entry_type(tar::EntryType::Directory);
                        h.set_size(0);
                        b.append_data(&mut h, &e.path, std::io::empty())
                            .map_err(werr)?;
                    }
                    SyncEntryKind::Symlink => {
                        h.set_entry_type(tar::EntryType::Symlink);
                        h.set_size(0);
                        let target = e.target.as_deref().unwrap_or_default();
                        b.append_link(&mut h, &e.path, target).map_err(werr)?;
                    }
                    SyncEntryKind::File => {
                        let digest = e.digest.as_deref().unwrap_or_default();
                        let p = self.sync_file_path(digest)?;
                        let file = std::fs::File::open(&p)
                            .map_err(|err| ImageError::io("open", &p, err))?;
                        let len = file
                            .metadata()
                            .map_err(|err| ImageError::io("stat", &p, err))?
                            .len();
                        if Some(len) != e.size {
                            return Err(SyncFilesError::Invalid(format!(
                                "manifest entry {:?} says {} bytes, but {digest} has {len}",
                                e.path,
                                e.size.unwrap_or_default()
                            )));
                        }
                        h.set_entry_type(tar::EntryType::Regular);
                        h.set_size(len);
                        b.append_data(&mut h, &e.path, BufReader::new(file))
                            .map_err(werr)?;
                    }
                }
            }
            let mut w = b.into_inner().map_err(werr)?;
            w.flush().map_err(werr)?;
            let f = std::fs::File::open(&tmp).map_err(|e| ImageError::io("open", &tmp, e))?;
            Ok(self.inner.blobs.write_reader(BufReader::new(f), None)?)
        })();
        let _ = std::fs::remove_file(&tmp);
        let (digest, size) = res?;
        tracing::info!(%digest, size, "assembled build context from synced files");
        Ok((digest, size))
    }
}

fn is_sha256(d: &str) -> bool {
    digest_hex(d).is_ok()
}

#[cfg(test)]
#[path = "sync_files_tests.rs"]
mod tests;
