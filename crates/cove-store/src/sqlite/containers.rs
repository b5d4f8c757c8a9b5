//! The `pods` and `containers` tables. A pod (the "stub") holds the spec; each
//! run of it is a container row with its own status and exit.

use rusqlite::{params, OptionalExtension, Row, Transaction, TransactionBehavior};

use crate::{Admission, ContainerRow, PodRow, SqliteStore, StoreError};

pub(crate) const POD_COLS: &str = "id, name, deployment_id, spec_json, created_at, workspace";
const CTR_COLS: &str = "id, pod_id, status, image, address, shim_pid, exit_code, reason, \
                        scheduled_at, started_at, ended_at, last_active_at";

pub(crate) fn pod_from(r: &Row<'_>) -> rusqlite::Result<PodRow> {
    Ok(PodRow {
        id: r.get(0)?,
        name: r.get(1)?,
        deployment_id: r.get(2)?,
        spec_json: r.get(3)?,
        created_at: r.get(4)?,
        workspace: r.get(5)?,
    })
}

fn ctr_from(r: &Row<'_>) -> rusqlite::Result<ContainerRow> {
    Ok(ContainerRow {
        id: r.get(0)?,
        pod_id: r.get(1)?,
        status: r.get(2)?,
        image: r.get(3)?,
        address: r.get(4)?,
        shim_pid: r.get(5)?,
        exit_code: r.get(6)?,
        reason: r.get(7)?,
        scheduled_at: r.get(8)?,
        started_at: r.get(9)?,
        ended_at: r.get(10)?,
        last_active_at: r.get(11)?,
    })
}

impl SqliteStore {
    /// Records a new pod and its first container together, if `admit` (when given) lets
    /// the container in: the check and the insert are one transaction.
    pub(crate) fn insert_pod(
        &self,
        pod: &PodRow,
        ctr: &ContainerRow,
        admit: Option<&Admission>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = admission_tx(&mut conn)?;
        if let Some(a) = admit {
            super::workspaces::admit(&tx, a)?;
        }
        insert_pod(&tx, pod)?;
        insert_container(&tx, ctr)?;
        tx.commit()?;
        Ok(())
    }

    /// Records another container of an existing pod, if `admit` (when given) lets it in.
    pub(crate) fn insert_container(
        &self,
        ctr: &ContainerRow,
        admit: Option<&Admission>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = admission_tx(&mut conn)?;
        if let Some(a) = admit {
            super::workspaces::admit(&tx, a)?;
        }
        insert_container(&tx, ctr)?;
        tx.commit()?;
        Ok(())
    }

    pub(crate) fn get_pod(&self, id: &str) -> Result<Option<PodRow>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {POD_COLS} FROM pods WHERE id = ?1"),
                [id],
                pod_from,
            )
            .optional()?)
    }

    /// Removes a pod and (by cascade) its containers: used to undo a failed create.
    pub(crate) fn delete_pod(&self, id: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM pods WHERE id = ?1", [id])?;
        Ok(())
    }

    pub(crate) fn get_container(&self, id: &str) -> Result<Option<ContainerRow>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {CTR_COLS} FROM containers WHERE id = ?1"),
                [id],
                ctr_from,
            )
            .optional()?)
    }

    /// Every container, newest first.
    pub(crate) fn list_containers(&self) -> Result<Vec<ContainerRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {CTR_COLS} FROM containers ORDER BY scheduled_at DESC, id"
        ))?;
        let rows = stmt
            .query_map([], ctr_from)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Containers whose processes may still exist (PENDING, RUNNING, STOPPING).
    pub(crate) fn live_containers(&self) -> Result<Vec<ContainerRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {CTR_COLS} FROM containers \
             WHERE status IN ('PENDING','RUNNING','STOPPING') ORDER BY scheduled_at"
        ))?;
        let rows = stmt
            .query_map([], ctr_from)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Marks a container as running at `address`, watched through `shim_pid`.
    pub(crate) fn set_running(
        &self,
        id: &str,
        address: &str,
        shim_pid: i32,
        started_at: i64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE containers SET status = 'RUNNING', address = ?2, shim_pid = ?3, started_at = ?4 \
             WHERE id = ?1",
            params![id, address, shim_pid, started_at],
        )?;
        Ok(())
    }

    /// Sets the status of a live container (e.g. STOPPING) and optionally why.
    pub(crate) fn set_status(
        &self,
        id: &str,
        status: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE containers SET status = ?2, reason = COALESCE(?3, reason) WHERE id = ?1",
            params![id, status, reason],
        )?;
        Ok(())
    }

    /// Records the end of a container: its final status, exit code and reason.
    pub(crate) fn set_finished(
        &self,
        id: &str,
        status: &str,
        exit_code: Option<i32>,
        reason: Option<&str>,
        ended_at: i64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE containers SET status = ?2, exit_code = ?3, reason = COALESCE(?4, reason), \
             ended_at = ?5 WHERE id = ?1",
            params![id, status, exit_code, reason, ended_at],
        )?;
        Ok(())
    }

    /// Persists the time the last gateway connection to a container ended.
    pub(crate) fn set_last_active(&self, id: &str, at: i64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE containers SET last_active_at = ?2 WHERE id = ?1",
            params![id, at],
        )?;
        Ok(())
    }
}

/// The transaction an admitted insert runs in. IMMEDIATE takes the write lock before the
/// count, so even two connections to one database file (the daemon has one) cannot both
/// count the same usage and pass a limit together: the second waits, then counts the first.
pub(crate) fn admission_tx(conn: &mut rusqlite::Connection) -> Result<Transaction<'_>, StoreError> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

pub(crate) fn insert_pod(conn: &rusqlite::Connection, pod: &PodRow) -> Result<(), StoreError> {
    conn.execute(
        &format!("INSERT INTO pods ({POD_COLS}) VALUES (?1,?2,?3,?4,?5,?6)"),
        params![
            pod.id,
            pod.name,
            pod.deployment_id,
            pod.spec_json,
            pod.created_at,
            pod.workspace
        ],
    )?;
    Ok(())
}

pub(crate) fn insert_container(
    conn: &rusqlite::Connection,
    c: &ContainerRow,
) -> Result<(), StoreError> {
    conn.execute(
        &format!(
            "INSERT INTO containers ({CTR_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)"
        ),
        params![
            c.id,
            c.pod_id,
            c.status,
            c.image,
            c.address,
            c.shim_pid,
            c.exit_code,
            c.reason,
            c.scheduled_at,
            c.started_at,
            c.ended_at,
            c.last_active_at
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> (PodRow, ContainerRow) {
        let pod = PodRow {
            id: "p1".into(),
            name: None,
            deployment_id: None,
            spec_json: "{}".into(),
            created_at: 1,
            workspace: "default".into(),
        };
        let ctr = ContainerRow {
            id: "pod-p1-0".into(),
            pod_id: "p1".into(),
            status: "PENDING".into(),
            image: "img".into(),
            address: None,
            shim_pid: None,
            exit_code: None,
            reason: None,
            scheduled_at: 1,
            started_at: None,
            ended_at: None,
            last_active_at: None,
        };
        (pod, ctr)
    }

    #[test]
    fn lifecycle_of_a_row() {
        let s = SqliteStore::open_in_memory().unwrap();
        let (pod, ctr) = rows();
        s.insert_pod(&pod, &ctr, None).unwrap();
        assert_eq!(s.live_containers().unwrap().len(), 1);
        s.set_running("pod-p1-0", "10.0.0.2", 42, 5).unwrap();
        let c = s.get_container("pod-p1-0").unwrap().unwrap();
        assert_eq!((c.status.as_str(), c.shim_pid), ("RUNNING", Some(42)));
        s.set_finished("pod-p1-0", "EXITED", Some(3), Some("exited"), 9)
            .unwrap();
        assert!(s.live_containers().unwrap().is_empty());
        assert_eq!(
            s.get_container("pod-p1-0").unwrap().unwrap().exit_code,
            Some(3)
        );
        s.delete_pod("p1").unwrap();
        assert!(s.get_container("pod-p1-0").unwrap().is_none());
    }

    #[test]
    fn duplicate_pod_inserts_nothing() {
        let s = SqliteStore::open_in_memory().unwrap();
        let (pod, ctr) = rows();
        s.insert_pod(&pod, &ctr, None).unwrap();
        let mut ctr2 = ctr.clone();
        ctr2.id = "pod-p1-1".into();
        assert!(s.insert_pod(&pod, &ctr2, None).is_err());
        assert!(s.get_container("pod-p1-1").unwrap().is_none());
    }
}
