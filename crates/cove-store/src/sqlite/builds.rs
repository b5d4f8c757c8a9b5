//! The `builds` table: a build step's cache key → the image made by that step.

use rusqlite::{params, OptionalExtension};

use crate::{now_ms, BuildRow, SqliteStore, StoreError};

impl SqliteStore {
    /// The image made for `hash`, if any.
    pub(crate) fn get_build(&self, hash: &str) -> Result<Option<BuildRow>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT hash, image_reference, created_at FROM builds WHERE hash = ?1",
                [hash],
                |r| {
                    Ok(BuildRow {
                        hash: r.get(0)?,
                        image_reference: r.get(1)?,
                        created_at: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Records (or replaces) the image made for `hash`.
    pub(crate) fn put_build(&self, hash: &str, image_reference: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO builds (hash, image_reference, created_at) VALUES (?1, ?2, ?3)",
            params![hash, image_reference, now_ms()],
        )?;
        Ok(())
    }

    /// Forgets `hash`; returns whether it existed.
    pub(crate) fn delete_build(&self, hash: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .execute("DELETE FROM builds WHERE hash = ?1", [hash])?
            > 0)
    }

    /// Every cached step, oldest first.
    pub(crate) fn list_builds(&self) -> Result<Vec<BuildRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT hash, image_reference, created_at FROM builds ORDER BY created_at, hash",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(BuildRow {
                    hash: r.get(0)?,
                    image_reference: r.get(1)?,
                    created_at: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_round_trip() {
        let s = SqliteStore::open_in_memory().unwrap();
        assert_eq!(s.get_build("aa").unwrap(), None);
        s.put_build("aa", "cove-build/aa:latest").unwrap();
        let row = s.get_build("aa").unwrap().unwrap();
        assert_eq!(row.image_reference, "cove-build/aa:latest");
        assert_eq!(s.list_builds().unwrap().len(), 1);
        assert!(s.delete_build("aa").unwrap());
        assert!(!s.delete_build("aa").unwrap());
    }
}
