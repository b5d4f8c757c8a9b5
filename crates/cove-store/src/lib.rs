//! The daemon's state: one embedded SQLite database (WAL) behind typed functions.
//!
//! The etcd side of the cluster store (issue 10) is in [`etcd`].
//!
//! No other crate writes SQL. Every multi-step change runs in one transaction,
//! so a daemon killed at any point leaves the database consistent.

mod builds;
mod containers;
mod deployments;
mod error;
pub mod etcd;
mod events;
mod image_refs;
mod images;
mod pod_spec;
mod schema;
mod tokens;
mod workspaces;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;

pub use builds::BuildRow;
pub use containers::{ContainerRow, PodRow};
pub use deployments::DeploymentRow;
pub use error::StoreError;
pub use events::EventRow;
pub use images::ImageRow;
pub use tokens::TokenRow;
pub use workspaces::{Admission, Limit, Limits, Refusal, Usage};

/// A handle on the database; cheap to clone. Calls are short and synchronous
/// (SQLite on local disk answers in microseconds), so callers may use them from
/// async code without `spawn_blocking`.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl Store {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn =
            Connection::open(path).map_err(|e| StoreError::Open(path.display().to_string(), e))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Self::init(conn)
    }

    /// A private in-memory database, for tests.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Self::init(conn)
    }

    fn init(mut conn: Connection) -> Result<Store, StoreError> {
        schema::migrate(&mut conn)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (each
        // call is one statement or one transaction), so a poisoned lock is usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
