//! Syncing files (`cove run --sync [DIR]`), content-addressed per file: only
//! files the daemon does not have are sent.
//!
//! 1. [`manifest::scan`] lists DIR (what the ignore rules of [`ignore`] keep:
//!    nested `.gitignore`/`.coveignore`, `**`; `.git`, `__pycache__`, `.venv`
//!    always skipped) with each file's size and sha256, after checking the
//!    total against the cap ([`DEFAULT_MAX_BYTES`], `COVE_SYNC_MAX_BYTES`).
//! 2. `POST /v1/images/build/files/missing` with the manifest answers the
//!    digests the daemon lacks; `POST /v1/images/build/files` sends just those
//!    (one tar, entries named by digest; the daemon verifies each).
//! 3. `POST /v1/images/build/files/context` has the daemon assemble the
//!    deterministic tar of the manifest and store it as a build context: the
//!    same content gives the same digest, so the build is cached.
//!
//! The Python SDK (`cove/sync.py`) follows the same rules.

pub mod ignore;
pub mod manifest;

use std::path::Path;

use anyhow::{bail, Context, Result};
use cove_types::{BuildContext, SyncFilesStored, SyncMissing};

use crate::Client;

/// The default cap on a synced directory: 100 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 100 * 1024 * 1024;

/// The cap: `COVE_SYNC_MAX_BYTES` or [`DEFAULT_MAX_BYTES`].
pub fn max_bytes() -> Result<u64> {
    match std::env::var("COVE_SYNC_MAX_BYTES") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .with_context(|| format!("COVE_SYNC_MAX_BYTES={v:?} is not a number of bytes")),
        _ => Ok(DEFAULT_MAX_BYTES),
    }
}

/// What a sync did.
#[derive(Debug, Clone)]
pub struct Synced {
    /// The build context holding the directory, for a `local_path` step.
    pub context: BuildContext,
    /// Files in the directory, and how many of them (distinct contents) were sent.
    pub files: usize,
    pub uploaded: u64,
    pub uploaded_bytes: u64,
}

/// Syncs `dir` to the daemon (see the module docs); nothing is sent if the
/// directory cannot be read in full or is over the cap.
pub async fn sync_dir(client: &Client, dir: &Path) -> Result<Synced> {
    let cap = max_bytes()?;
    let root = dir.to_path_buf();
    let local = tokio::task::spawn_blocking(move || manifest::scan(&root, cap))
        .await
        .context("the sync task failed")??;
    let files = local
        .manifest
        .entries
        .iter()
        .filter(|e| e.digest.is_some())
        .count();
    let files_url = |last: &str| client.url(&["v1", "images", "build", "files", last], &[]);
    let SyncMissing { missing } = client.post(files_url("missing"), &local.manifest).await?;
    let (mut uploaded, mut uploaded_bytes) = (0, 0);
    if !missing.is_empty() {
        let (tar, bytes) = local.files_tar(&missing)?;
        let stored: SyncFilesStored = client
            .post_body(
                client.url(&["v1", "images", "build", "files"], &[]),
                "application/x-tar",
                reqwest::Body::from(tar),
            )
            .await?;
        if stored.files != missing.len() as u64 || stored.bytes != bytes {
            bail!(
                "the daemon stored {} files ({} bytes) of the {} ({bytes} bytes) sent",
                stored.files,
                stored.bytes,
                missing.len()
            );
        }
        (uploaded, uploaded_bytes) = (stored.files, stored.bytes);
    }
    let context: BuildContext = client.post(files_url("context"), &local.manifest).await?;
    Ok(Synced {
        context,
        files,
        uploaded,
        uploaded_bytes,
    })
}
