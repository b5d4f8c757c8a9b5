#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open state database {0}: {1}")]
    Open(String, #[source] rusqlite::Error),
    #[error("state database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("state database holds invalid data: {0}")]
    Corrupt(String),
    /// A new container would take its workspace over a limit (nothing was recorded).
    #[error(transparent)]
    Refused(#[from] crate::Refusal),
}
