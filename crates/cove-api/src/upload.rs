//! Request bodies saved to a file: image archives and build contexts.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::StatusCode;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::{ApiError, AppState};

/// An uploaded body in `<data-dir>/tmp`, removed when dropped (and, if the
/// daemon dies first, at its next start).
pub struct Upload {
    pub path: PathBuf,
}

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Streams `body` into a new file named after `prefix`. A body over the daemon's
/// `--max-upload-bytes` is a 413 and leaves no file.
pub async fn save(state: &AppState, body: Body, prefix: &str) -> Result<Upload, ApiError> {
    let internal = |what: &str, e: std::io::Error| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{what}: {e}"))
    };
    let dir = state.lifecycle.config().data_dir.join("tmp");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| internal("creating tmp dir", e))?;
    let upload = Upload {
        path: dir.join(format!("{prefix}-{}.tar", uuid::Uuid::new_v4())),
    };
    let mut file = tokio::fs::File::create(&upload.path)
        .await
        .map_err(|e| internal("creating upload file", e))?;
    let max = state.max_upload_bytes;
    let mut written: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("reading upload: {e}")))?;
        written = written.saturating_add(chunk.len() as u64);
        if written > max {
            drop(file);
            drop(upload);
            // Read (and drop) the rest, so the client gets the answer rather than a reset.
            while let Some(Ok(_)) = stream.next().await {}
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("upload is over the daemon's limit of {max} bytes (--max-upload-bytes)"),
            ));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| internal("writing upload", e))?;
    }
    file.flush()
        .await
        .map_err(|e| internal("writing upload", e))?;
    Ok(upload)
}
