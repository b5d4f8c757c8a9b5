//! Changing a pod's stored spec after it was created (e.g. its egress policy on a live pod).

use crate::{SqliteStore, StoreError};

impl SqliteStore {
    /// Replaces pod `id`'s `spec_json`. Returns whether the pod exists.
    pub(crate) fn set_pod_spec(&self, id: &str, spec_json: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "UPDATE pods SET spec_json = ?2 WHERE id = ?1",
            [id, spec_json],
        )?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use crate::SqliteStore;

    #[test]
    fn a_pods_spec_can_be_replaced() {
        let store = SqliteStore::open_in_memory().unwrap();
        assert!(!store.set_pod_spec("nope", "{}").unwrap());
        let conn = store.conn();
        conn.execute(
            "INSERT INTO pods (id, spec_json, created_at) VALUES ('p1', '{\"a\":1}', 1)",
            [],
        )
        .unwrap();
        drop(conn);
        assert!(store.set_pod_spec("p1", "{\"a\":2}").unwrap());
        assert_eq!(store.get_pod("p1").unwrap().unwrap().spec_json, "{\"a\":2}");
    }
}
