//! Syncing files per file (`/v1/images/build/files...`): the client sends the
//! manifest of a directory, uploads only the files the daemon lacks, and has
//! the daemon assemble the build context from its stored files.

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;
use cove_types::{BuildContext, ErrorBody, SyncFilesStored, SyncManifest, SyncMissing};
use tracing::instrument;

use crate::{upload, ApiError, AppState};

/// The largest manifest body: 64 MiB (100 000 entries with long paths).
pub const MANIFEST_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// Which files of a manifest the daemon does not store yet. The manifest is
/// checked first: an absolute path, a `.`/`..`/empty component, NUL, a
/// duplicate, an entry before its parent directory or under a non-directory,
/// or a bad digest, mode or target is a 400 naming the entry.
#[utoipa::path(post, path = "/v1/images/build/files/missing", request_body = SyncManifest,
    responses((status = 200, body = SyncMissing), (status = 400, body = ErrorBody)))]
#[instrument(skip_all)]
pub async fn missing_sync_files(
    State(state): State<AppState>,
    body: Result<Json<SyncManifest>, JsonRejection>,
) -> Result<Json<SyncMissing>, ApiError> {
    let Json(manifest) = body?;
    Ok(Json(state.lifecycle.missing_sync_files(manifest).await?))
}

/// Upload synced files: a tar whose regular entries are each named
/// `sha256:<hex>` of their content. Every entry is checked against its name
/// before any is stored; one that does not match (or another entry type or
/// name) refuses the whole upload with a 400 and stores nothing.
#[utoipa::path(post, path = "/v1/images/build/files",
    request_body(content = String, content_type = "application/x-tar"),
    responses((status = 200, body = SyncFilesStored), (status = 400, body = ErrorBody)))]
#[instrument(skip_all)]
pub async fn upload_sync_files(
    State(state): State<AppState>,
    body: Body,
) -> Result<Json<SyncFilesStored>, ApiError> {
    let upload = upload::save(&state, body, "sync-files").await?;
    let lifecycle = state.lifecycle.clone();
    // The upload is dropped (removed) by the task, once the work is done.
    let stored = crate::detached(async move { lifecycle.store_sync_files(&upload.path).await });
    Ok(Json(stored.await?))
}

/// Assemble a manifest's build context from stored files: the deterministic
/// tar of its entries (sorted paths, mtime 0, uid/gid 0), stored like an
/// uploaded one, for a `local_path` build step. A file not uploaded yet is a
/// 400.
#[utoipa::path(post, path = "/v1/images/build/files/context", request_body = SyncManifest,
    responses((status = 200, body = BuildContext), (status = 400, body = ErrorBody)))]
#[instrument(skip_all)]
pub async fn assemble_sync_context(
    State(state): State<AppState>,
    body: Result<Json<SyncManifest>, JsonRejection>,
) -> Result<Json<BuildContext>, ApiError> {
    let Json(manifest) = body?;
    let lifecycle = state.lifecycle.clone();
    let ctx = crate::detached(async move { lifecycle.assemble_sync_context(manifest).await });
    Ok(Json(ctx.await?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sync_routes_and_types_are_in_the_openapi_document() {
        let doc = crate::openapi::document();
        for p in [
            "/v1/images/build/files/missing",
            "/v1/images/build/files",
            "/v1/images/build/files/context",
        ] {
            assert!(doc.paths.paths.contains_key(p), "{p} missing");
        }
        let json = serde_json::to_string(&doc).unwrap();
        for name in [
            "SyncManifest",
            "SyncEntry",
            "SyncEntryKind",
            "SyncMissing",
            "SyncFilesStored",
        ] {
            assert!(json.contains(&format!("\"{name}\"")), "{name} missing");
        }
    }
}
