//! The `image_refs` table: which workspace holds which image reference. Image rows and
//! blobs are shared by digest; a workspace sees and runs only the references it pulled,
//! imported or built itself.

use std::collections::HashSet;

use rusqlite::{params, OptionalExtension};

use crate::{SqliteStore, StoreError};

impl SqliteStore {
    /// Records that `workspace` holds `reference` (idempotent).
    pub(crate) fn add_image_ref(&self, workspace: &str, reference: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR IGNORE INTO image_refs (workspace, reference) VALUES (?1, ?2)",
            params![workspace, reference],
        )?;
        Ok(())
    }

    pub(crate) fn has_image_ref(
        &self,
        workspace: &str,
        reference: &str,
    ) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM image_refs WHERE workspace = ?1 AND reference = ?2",
                params![workspace, reference],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// The references `workspace` holds.
    pub(crate) fn image_refs_of(&self, workspace: &str) -> Result<HashSet<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT reference FROM image_refs WHERE workspace = ?1")?;
        let refs = stmt
            .query_map([workspace], |r| r.get(0))?
            .collect::<Result<HashSet<String>, _>>()?;
        Ok(refs)
    }

    /// How many workspaces hold `reference`.
    pub(crate) fn image_ref_holders(&self, reference: &str) -> Result<i64, StoreError> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*) FROM image_refs WHERE reference = ?1",
            [reference],
            |r| r.get(0),
        )?)
    }

    /// Drops `workspace`'s hold on `reference` (or every workspace's with `None`).
    pub(crate) fn remove_image_ref(
        &self,
        workspace: Option<&str>,
        reference: &str,
    ) -> Result<(), StoreError> {
        match workspace {
            Some(ws) => self.conn().execute(
                "DELETE FROM image_refs WHERE workspace = ?1 AND reference = ?2",
                params![ws, reference],
            )?,
            None => self
                .conn()
                .execute("DELETE FROM image_refs WHERE reference = ?1", [reference])?,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_per_workspace() {
        let s = SqliteStore::open_in_memory().unwrap();
        s.add_image_ref("a", "r:1").unwrap();
        s.add_image_ref("a", "r:1").unwrap();
        s.add_image_ref("b", "r:1").unwrap();
        assert!(s.has_image_ref("a", "r:1").unwrap());
        assert!(!s.has_image_ref("c", "r:1").unwrap());
        assert_eq!(s.image_ref_holders("r:1").unwrap(), 2);
        s.remove_image_ref(Some("a"), "r:1").unwrap();
        assert!(s.image_refs_of("a").unwrap().is_empty());
        assert_eq!(s.image_refs_of("b").unwrap().len(), 1);
        s.remove_image_ref(None, "r:1").unwrap();
        assert_eq!(s.image_ref_holders("r:1").unwrap(), 0);
    }
}
