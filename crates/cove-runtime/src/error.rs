//! The crate's error type.

use std::path::PathBuf;

/// Errors from spec generation, the OCI runtime (runc, runsc) and the shim. Messages are lowercase and name the problem.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("invalid container config: {0}")]
    InvalidConfig(String),

    #[error("cannot resolve user {user:?} in the image: {reason}")]
    User { user: String, reason: String },

    #[error("building the oci spec failed: {0}")]
    Spec(#[from] oci_spec::OciSpecError),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// The OCI runtime's CLI (`runc` or `runsc`) failed.
    #[error("{runtime} {command} failed for container {id}: {message}")]
    Runc {
        runtime: &'static str,
        command: &'static str,
        id: String,
        message: String,
    },

    /// The container asks for a runtime this daemon does not have (e.g. runsc is not installed).
    #[error("{0}")]
    Unavailable(String),

    #[error("container {id} failed to start: {message}")]
    Start { id: String, message: String },

    #[error("container {0} does not exist")]
    NotFound(String),

    /// `exec` of a command the container cannot run (missing executable, missing working
    /// directory, not executable): the message names it.
    #[error("{0}")]
    BadCommand(String),

    #[error("timed out after {secs}s waiting for {what}")]
    Timeout { what: String, secs: u64 },

    #[error("exit status of container in {dir} is unknown: shim {shim_pid} is gone and left no exit file")]
    ExitUnknown { shim_pid: i32, dir: PathBuf },
}

impl RuntimeError {
    /// Wraps an io error with a short description of what was being done.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            context: context.into(),
            source,
        }
    }
}
