//! Wire types shared by the daemon's API and every client (CLI, SDK).
//!
//! This crate is the single definition of the JSON the API speaks, plus the
//! parsers for user-facing quantities (cpu, memory) and pod specs, so the
//! daemon validates input exactly one way.

pub mod api;
pub mod deploy;
pub mod egress;
pub mod isolation;
pub mod log_limit;
pub mod quantity;
pub mod spec;
pub mod sync;
pub mod tokens;
pub mod workspaces;

pub use api::*;
pub use deploy::{
    DeployEvent, Deployment, DeploymentStatus, DeploymentVersion, RollbackRequest,
    MAX_DEPLOYMENT_NAME_LEN,
};
pub use egress::{Cidr, EgressError, EgressPolicy, EgressRequest, MAX_ALLOW_LIST};
pub use isolation::{Isolation, IsolationError};
pub use log_limit::{
    check_log_max_files, parse_log_max_size, LogLimit, LogLimitError, DEFAULT_LOG_MAX_FILES,
    DEFAULT_LOG_MAX_SIZE,
};
pub use quantity::{parse_cpu_millis, parse_memory_mib, Quantity, QuantityError};
pub use spec::{parse_disk_mib, validate_pod_spec, SpecError, ValidPodSpec, MIN_DISK_MIB};
pub use sync::{
    SyncEntry, SyncEntryKind, SyncFilesStored, SyncManifest, SyncMissing, MAX_SYNC_ENTRIES,
};
pub use tokens::{
    validate_workspace, CreateTokenRequest, CreatedToken, Scope, TokenInfo, DEFAULT_WORKSPACE,
    TOKEN_PREFIX,
};
pub use workspaces::{SetLimitsRequest, WorkspaceInfo, WorkspaceLimits, WorkspaceUsage};

/// Default idle timeout of a pod, in seconds (the guide's "10 minutes").
pub const DEFAULT_KEEP_WARM_SECONDS: i64 = 600;
/// Default cpu request, in millicores.
pub const DEFAULT_CPU_MILLIS: u64 = 1000;
/// Default memory limit, in MiB.
pub const DEFAULT_MEMORY_MIB: u64 = 128;
