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
    /// The cluster store cannot be reached or has no quorum; the API answers 503.
    /// The text names the endpoints and the last error seen.
    #[error("etcd cluster unavailable: {0}")]
    Unavailable(String),
    /// A write carried a fencing token (a binding's revision) that is no longer current:
    /// the pod was rebound or unbound since, so this writer must stop acting for it.
    #[error("stale fencing token: {0}")]
    Fenced(String),
    /// A name, key or setting given to the cluster store is not acceptable; the text says why.
    #[error("{0}")]
    Invalid(String),
    /// The cluster store refused a request for another reason (bad endpoint, request too large, ...).
    #[error("etcd: {0}")]
    Etcd(String),
}
