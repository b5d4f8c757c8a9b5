//! The `deployments` table: one row per named deployment, pointing at the pod
//! (stub) of its current version. Each version is a `pods` row whose
//! `deployment_id` is set; older versions' rows are kept.

use rusqlite::{params, OptionalExtension, Row};

use super::containers::{insert_container, insert_pod, pod_from, POD_COLS};
use crate::{ContainerRow, DeploymentRow, PodRow, SqliteStore, StoreError};

const COLS: &str = "id, name, url_key, version, pod_id, status, created_at, updated_at, workspace";

fn from_row(r: &Row<'_>) -> rusqlite::Result<DeploymentRow> {
    Ok(DeploymentRow {
        id: r.get(0)?,
        name: r.get(1)?,
        url_key: r.get(2)?,
        version: r.get(3)?,
        pod_id: r.get(4)?,
        status: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
        workspace: r.get(8)?,
    })
}

impl SqliteStore {
    /// Records a new deployment with its first version's pod and container, together.
    pub(crate) fn insert_deployment(
        &self,
        dep: &DeploymentRow,
        pod: &PodRow,
        ctr: &ContainerRow,
        admit: Option<&crate::Admission>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = super::containers::admission_tx(&mut conn)?;
        if let Some(a) = admit {
            super::workspaces::admit(&tx, a)?;
        }
        tx.execute(
            &format!("INSERT INTO deployments ({COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)"),
            params![
                dep.id,
                dep.name,
                dep.url_key,
                dep.version,
                dep.pod_id,
                dep.status,
                dep.created_at,
                dep.updated_at,
                dep.workspace
            ],
        )?;
        insert_pod(&tx, pod)?;
        insert_container(&tx, ctr)?;
        tx.commit()?;
        Ok(())
    }

    /// Makes `pod_id` the current version `version` of deployment `id`.
    pub(crate) fn set_deployment_version(
        &self,
        id: &str,
        version: i64,
        pod_id: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE deployments SET version = ?2, pod_id = ?3, updated_at = ?4 WHERE id = ?1",
            params![id, version, pod_id, at],
        )?;
        Ok(())
    }

    /// Sets a deployment's status (`ACTIVE` / `STOPPED`).
    pub(crate) fn set_deployment_status(
        &self,
        id: &str,
        status: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE deployments SET status = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, status, at],
        )?;
        Ok(())
    }

    pub(crate) fn get_deployment(&self, id: &str) -> Result<Option<DeploymentRow>, StoreError> {
        self.deployment_where("id", id)
    }

    pub(crate) fn get_deployment_by_name(
        &self,
        name: &str,
    ) -> Result<Option<DeploymentRow>, StoreError> {
        self.deployment_where("name", name)
    }

    fn deployment_where(&self, col: &str, v: &str) -> Result<Option<DeploymentRow>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {COLS} FROM deployments WHERE {col} = ?1"),
                [v],
                from_row,
            )
            .optional()?)
    }

    /// Every deployment, by name.
    pub(crate) fn list_deployments(&self) -> Result<Vec<DeploymentRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {COLS} FROM deployments ORDER BY name"))?;
        let rows = stmt
            .query_map([], from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The pods of a deployment's versions, oldest first: every pod of it that ran (an
    /// interrupted or failed deploy's pod never did), and the current one.
    pub(crate) fn deployment_versions(
        &self,
        dep_id: &str,
        current_pod: Option<&str>,
    ) -> Result<Vec<PodRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {POD_COLS} FROM pods WHERE deployment_id = ?1 AND (id = ?2 OR EXISTS \
             (SELECT 1 FROM containers c WHERE c.pod_id = pods.id AND c.started_at IS NOT NULL)) \
             ORDER BY created_at, rowid"
        ))?;
        let rows = stmt
            .query_map(params![dep_id, current_pod], pod_from)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Removes a deployment's row; its versions' pods and containers stay as history.
    pub(crate) fn delete_deployment(&self, id: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM deployments WHERE id = ?1", [id])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(pod_id: &str) -> (PodRow, ContainerRow) {
        let pod = PodRow {
            id: pod_id.into(),
            name: Some("app".into()),
            deployment_id: Some("d1".into()),
            spec_json: "{}".into(),
            created_at: 1,
            workspace: "default".into(),
        };
        let ctr = ContainerRow {
            id: format!("pod-{pod_id}-0"),
            pod_id: pod_id.into(),
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

    fn dep() -> DeploymentRow {
        DeploymentRow {
            id: "d1".into(),
            name: "app".into(),
            url_key: "app-0123abcd".into(),
            version: 1,
            pod_id: Some("p1".into()),
            status: "ACTIVE".into(),
            created_at: 1,
            updated_at: 1,
            workspace: "default".into(),
        }
    }

    #[test]
    fn versions_and_status() {
        let s = SqliteStore::open_in_memory().unwrap();
        let (pod, ctr) = rows("p1");
        s.insert_deployment(&dep(), &pod, &ctr, None).unwrap();
        let (pod2, ctr2) = rows("p2");
        s.insert_pod(&pod2, &ctr2, None).unwrap();
        s.set_deployment_version("d1", 2, "p2", 5).unwrap();
        s.set_deployment_status("d1", "STOPPED", 6).unwrap();
        let d = s.get_deployment_by_name("app").unwrap().unwrap();
        assert_eq!(
            (
                d.version,
                d.pod_id.as_deref(),
                d.status.as_str(),
                d.updated_at
            ),
            (2, Some("p2"), "STOPPED", 6)
        );
        assert_eq!(s.list_deployments().unwrap().len(), 1);
        s.delete_deployment("d1").unwrap();
        assert!(s.get_deployment("d1").unwrap().is_none());
        assert!(s.get_pod("p1").unwrap().is_some());
    }

    #[test]
    fn versions_are_the_pods_that_ran_and_the_current_one() {
        let s = SqliteStore::open_in_memory().unwrap();
        let (pod, ctr) = rows("p1");
        s.insert_deployment(&dep(), &pod, &ctr, None).unwrap();
        s.set_running(&ctr.id, "10.0.0.2", 1, 2).unwrap();
        // p2 never ran (a failed deploy killed halfway); p3 is current.
        for (id, at) in [("p2", 3), ("p3", 4)] {
            let (mut pod, ctr) = rows(id);
            pod.created_at = at;
            s.insert_pod(&pod, &ctr, None).unwrap();
        }
        let ids = |cur| -> Vec<String> {
            s.deployment_versions("d1", cur)
                .unwrap()
                .into_iter()
                .map(|p| p.id)
                .collect()
        };
        assert_eq!(ids(Some("p3")), ["p1", "p3"]);
        assert_eq!(ids(None), ["p1"]);
        assert!(s.deployment_versions("nope", None).unwrap().is_empty());
    }

    #[test]
    fn a_taken_name_inserts_nothing() {
        let s = SqliteStore::open_in_memory().unwrap();
        let (pod, ctr) = rows("p1");
        s.insert_deployment(&dep(), &pod, &ctr, None).unwrap();
        let (pod2, ctr2) = rows("p2");
        let mut d2 = dep();
        d2.id = "d2".into();
        d2.url_key = "app-ffffffff".into();
        assert!(s.insert_deployment(&d2, &pod2, &ctr2, None).is_err());
        assert!(s.get_pod("p2").unwrap().is_none());
        assert!(s.get_deployment("d2").unwrap().is_none());
    }
}
