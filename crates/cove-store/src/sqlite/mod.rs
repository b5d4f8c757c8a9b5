//! The single-host backend: one embedded SQLite database (WAL) behind typed functions.
//!
//! All SQL lives in this module. Every multi-step change runs in one transaction, so a
//! daemon killed at any point leaves the database consistent. Calls are short and
//! synchronous (SQLite on local disk answers in microseconds); [`ClusterStore`] wraps them.
//!
//! [`ClusterStore`]: crate::ClusterStore

mod builds;
mod cluster_store;
mod containers;
mod deployments;
mod image_refs;
mod images;
mod pod_spec;
mod schema;
mod tokens;
mod workspaces;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;

use crate::StoreError;

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn =
            Connection::open(path).map_err(|e| StoreError::Open(path.display().to_string(), e))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Self::init(conn)
    }

    /// A private in-memory database, for tests.
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Self::init(conn)
    }

    fn init(mut conn: Connection) -> Result<SqliteStore, StoreError> {
        schema::migrate(&mut conn)?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (each
        // call is one statement or one transaction), so a poisoned lock is usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}
