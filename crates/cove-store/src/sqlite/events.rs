//! The `events` table: an append-only history of what happened to containers.

use rusqlite::params;

use crate::{now_ms, SqliteStore, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub at: i64,
    pub container_id: Option<String>,
    pub kind: String,
    pub message: String,
}

impl SqliteStore {
    pub fn add_event(
        &self,
        container_id: Option<&str>,
        kind: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO events (at, container_id, kind, message) VALUES (?1, ?2, ?3, ?4)",
            params![now_ms(), container_id, kind, message],
        )?;
        Ok(())
    }

    /// Events of one container, oldest first.
    pub fn events_of(&self, container_id: &str) -> Result<Vec<EventRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT at, container_id, kind, message FROM events WHERE container_id = ?1 ORDER BY id",
        )?;
        let rows = stmt
            .query_map([container_id], |r| {
                Ok(EventRow {
                    at: r.get(0)?,
                    container_id: r.get(1)?,
                    kind: r.get(2)?,
                    message: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}
