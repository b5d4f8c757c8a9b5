//! The `images` table: one row per local image reference.

use rusqlite::{params, OptionalExtension, Row};

use crate::{ImageRow, SqliteStore, StoreError};

fn from_row(r: &Row<'_>) -> rusqlite::Result<ImageRow> {
    Ok(ImageRow {
        reference: r.get(0)?,
        digest: r.get(1)?,
        config_digest: r.get(2)?,
        manifest_json: r.get(3)?,
        config_json: r.get(4)?,
        layers_json: r.get(5)?,
        size: r.get::<_, i64>(6)? as u64,
        created_at: r.get(7)?,
    })
}

const COLS: &str =
    "reference, digest, config_digest, manifest_json, config_json, layers_json, size, created_at";

impl SqliteStore {
    /// Inserts or replaces the row for `row.reference`.
    pub(crate) fn put_image(&self, row: &ImageRow) -> Result<(), StoreError> {
        self.conn().execute(
            &format!("INSERT OR REPLACE INTO images ({COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)"),
            params![
                row.reference,
                row.digest,
                row.config_digest,
                row.manifest_json,
                row.config_json,
                row.layers_json,
                row.size as i64,
                row.created_at
            ],
        )?;
        Ok(())
    }

    pub(crate) fn get_image(&self, reference: &str) -> Result<Option<ImageRow>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {COLS} FROM images WHERE reference = ?1"),
                [reference],
                from_row,
            )
            .optional()?)
    }

    pub(crate) fn list_images(&self) -> Result<Vec<ImageRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {COLS} FROM images ORDER BY reference"))?;
        let rows = stmt
            .query_map([], from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Removes a reference; returns whether it existed.
    pub(crate) fn delete_image(&self, reference: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .execute("DELETE FROM images WHERE reference = ?1", [reference])?
            > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_round_trip() {
        let s = SqliteStore::open_in_memory().unwrap();
        let row = ImageRow {
            reference: "r:1".into(),
            digest: "sha256:a".into(),
            config_digest: "sha256:b".into(),
            manifest_json: "{}".into(),
            config_json: "{}".into(),
            layers_json: "[]".into(),
            size: 42,
            created_at: 7,
        };
        s.put_image(&row).unwrap();
        assert_eq!(s.get_image("r:1").unwrap(), Some(row.clone()));
        assert_eq!(s.list_images().unwrap().len(), 1);
        assert!(s.delete_image("r:1").unwrap());
        assert!(!s.delete_image("r:1").unwrap());
        assert_eq!(s.get_image("r:1").unwrap(), None);
    }
}
