//! Content-addressed blob store: `<data_dir>/images/blobs/sha256/<hex>`.
//!
//! Every blob is written to a temp file while its sha256 is computed, checked
//! against the expected digest, and only then renamed under its digest name, so
//! a blob file that exists is always complete and correct.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::ImageError;

#[derive(Debug, Clone)]
pub(crate) struct BlobStore {
    dir: PathBuf,
    tmp: PathBuf,
}

/// Validates `sha256:<64 lowercase hex>` and returns the hex part.
pub(crate) fn digest_hex(digest: &str) -> Result<&str, ImageError> {
    match digest.strip_prefix("sha256:") {
        Some(h) if h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => {
            Ok(h)
        }
        _ => Err(ImageError::Unsupported(format!("digest {digest:?}"))),
    }
}

/// `sha256:<hex>` of a finished hasher.
pub(crate) fn finish(h: Sha256) -> String {
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// A unique name under the temp dir (pid + counter + clock).
pub(crate) fn temp_path(tmp: &Path, prefix: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    tmp.join(format!("{prefix}-{}-{n}-{t}", std::process::id()))
}

impl BlobStore {
    pub fn new(dir: PathBuf, tmp: PathBuf) -> BlobStore {
        BlobStore { dir, tmp }
    }

    pub fn path(&self, digest: &str) -> Result<PathBuf, ImageError> {
        Ok(self.dir.join(digest_hex(digest)?))
    }

    pub fn has(&self, digest: &str) -> bool {
        self.path(digest).is_ok_and(|p| p.is_file())
    }

    pub fn read(&self, digest: &str) -> Result<Vec<u8>, ImageError> {
        let p = self.path(digest)?;
        std::fs::read(&p).map_err(|e| ImageError::io("read blob", &p, e))
    }

    pub fn remove(&self, digest: &str) -> Result<(), ImageError> {
        let p = self.path(digest)?;
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(ImageError::io("remove blob", &p, e))
            }
            _ => Ok(()),
        }
    }

    /// Renames a verified temp file into place (or drops it if another writer won).
    fn commit(&self, tmp: &Path, digest: &str) -> Result<PathBuf, ImageError> {
        let dest = self.path(digest)?;
        std::fs::rename(tmp, &dest).map_err(|e| ImageError::io("store blob", &dest, e))?;
        Ok(dest)
    }

    fn check(&self, tmp: &Path, expected: &str, actual: &str) -> Result<(), ImageError> {
        if actual != expected {
            let _ = std::fs::remove_file(tmp);
            return Err(ImageError::Invalid(format!(
                "blob {expected} has digest {actual}"
            )));
        }
        Ok(())
    }

    /// Streams a download into the store, verifying `digest`. Returns the byte count.
    pub async fn write_stream<S, B, E>(
        &self,
        digest: &str,
        mut stream: S,
    ) -> Result<u64, ImageError>
    where
        S: Stream<Item = Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        digest_hex(digest)?;
        let tmp = temp_path(&self.tmp, "blob");
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| ImageError::io("create", &tmp, e))?;
        let mut hasher = Sha256::new();
        let mut n = 0u64;
        let res: Result<(), ImageError> = async {
            while let Some(chunk) = stream.next().await {
                let chunk =
                    chunk.map_err(|e| ImageError::Invalid(format!("download of {digest}: {e}")))?;
                let chunk = chunk.as_ref();
                hasher.update(chunk);
                n += chunk.len() as u64;
                file.write_all(chunk)
                    .await
                    .map_err(|e| ImageError::io("write", &tmp, e))?;
            }
            file.flush()
                .await
                .map_err(|e| ImageError::io("write", &tmp, e))?;
            file.sync_all()
                .await
                .map_err(|e| ImageError::io("sync", &tmp, e))
        }
        .await;
        drop(file);
        if let Err(e) = res {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        self.check(&tmp, digest, &finish(hasher))?;
        self.commit(&tmp, digest)?;
        Ok(n)
    }

    /// Copies `reader` into the store; verifies against `expected` when given.
    /// Returns the digest and the byte count.
    pub fn write_reader(
        &self,
        mut reader: impl Read,
        expected: Option<&str>,
    ) -> Result<(String, u64), ImageError> {
        let tmp = temp_path(&self.tmp, "blob");
        let mut file =
            std::fs::File::create(&tmp).map_err(|e| ImageError::io("create", &tmp, e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut n = 0u64;
        let res: Result<(), std::io::Error> = (|| {
            loop {
                let k = reader.read(&mut buf)?;
                if k == 0 {
                    break;
                }
                hasher.update(&buf[..k]);
                file.write_all(&buf[..k])?;
                n += k as u64;
            }
            file.sync_all()
        })();
        drop(file);
        if let Err(e) = res {
            let _ = std::fs::remove_file(&tmp);
            return Err(ImageError::io("write", &tmp, e));
        }
        let actual = finish(hasher);
        if let Some(exp) = expected {
            self.check(&tmp, exp, &actual)?;
        }
        self.commit(&tmp, &actual)?;
        Ok((actual, n))
    }
}
