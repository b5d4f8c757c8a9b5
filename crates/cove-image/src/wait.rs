//! Waiting for a store call from blocking code (the layer and build work that runs on
//! `spawn_blocking` threads).

use std::future::Future;

use crate::ImageError;

/// Drives `f` to completion on this thread. A blocking thread of the runtime uses the
/// runtime (a network store's connections live there); a thread outside any runtime (a
/// plain test) gets a small one. Never call it from async code: it would block a worker.
pub(crate) fn wait<F: Future>(f: F) -> Result<F::Output, ImageError> {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => Ok(rt.block_on(f)),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| rt.block_on(f))
            .map_err(|e| ImageError::Invalid(format!("cannot wait for the state store: {e}"))),
    }
}
