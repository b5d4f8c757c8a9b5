//! The `tokens` table: workspace API tokens, kept as the sha256 of their secret.

use rusqlite::{params, OptionalExtension, Row};

use crate::{SqliteStore, StoreError, TokenRow};

const COLS: &str = "id, name, workspace, hash, created_at, last_used_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: r.get(0)?,
        name: r.get(1)?,
        workspace: r.get(2)?,
        hash: r.get(3)?,
        created_at: r.get(4)?,
        last_used_at: r.get(5)?,
    })
}

impl SqliteStore {
    /// Records a new token, and the limits given on its workspace (in the same transaction);
    /// fails if its name (or hash) is taken.
    pub(crate) fn insert_token(
        &self,
        row: &TokenRow,
        limits: Option<&crate::Limits>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            &format!("INSERT INTO tokens ({COLS}) VALUES (?1,?2,?3,?4,?5,?6)"),
            params![
                row.id,
                row.name,
                row.workspace,
                row.hash,
                row.created_at,
                row.last_used_at
            ],
        )?;
        if let Some(l) = limits {
            super::workspaces::set_limits(&tx, &row.workspace, l)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Whether a token named `name` exists.
    pub(crate) fn token_name_taken(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT 1 FROM tokens WHERE name = ?1", [name], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Every token, by name.
    pub(crate) fn list_tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {COLS} FROM tokens ORDER BY name"))?;
        let rows = stmt
            .query_map([], from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Removes the token whose id or name is `id_or_name`; returns it if it existed.
    pub(crate) fn delete_token(&self, id_or_name: &str) -> Result<Option<TokenRow>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let row = tx
            .query_row(
                &format!("SELECT {COLS} FROM tokens WHERE id = ?1 OR name = ?1"),
                [id_or_name],
                from_row,
            )
            .optional()?;
        if let Some(r) = &row {
            tx.execute("DELETE FROM tokens WHERE id = ?1", [&r.id])?;
        }
        tx.commit()?;
        Ok(row)
    }

    /// Records when a token was last used.
    pub(crate) fn set_token_used(&self, id: &str, at: i64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE tokens SET last_used_at = ?2 WHERE id = ?1",
            params![id, at],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, name: &str) -> TokenRow {
        TokenRow {
            id: id.into(),
            name: name.into(),
            workspace: "team-a".into(),
            hash: format!("hash-{id}"),
            created_at: 1,
            last_used_at: None,
        }
    }

    #[test]
    fn token_round_trip() {
        let s = SqliteStore::open_in_memory().unwrap();
        s.insert_token(&row("t1", "ci"), None).unwrap();
        assert!(
            s.insert_token(&row("t2", "ci"), None).is_err(),
            "names are unique"
        );
        assert!(s.token_name_taken("ci").unwrap());
        s.set_token_used("t1", 9).unwrap();
        assert_eq!(s.list_tokens().unwrap()[0].last_used_at, Some(9));
        assert_eq!(
            s.delete_token("ci").unwrap().map(|r| r.id),
            Some("t1".into())
        );
        assert_eq!(s.delete_token("t1").unwrap(), None);
        assert!(s.list_tokens().unwrap().is_empty());
    }
}
