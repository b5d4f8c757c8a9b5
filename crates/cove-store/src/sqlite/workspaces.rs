//! Workspaces' limits (the `workspace_limits` table) and the admission of a new container:
//! counting what its workspace holds and recording it happen in one transaction, so
//! concurrent creates cannot pass a limit together.
//!
//! What a workspace holds: its containers that are PENDING, RUNNING or STOPPING, each with the
//! cpu, memory and disk of its pod's spec (a pod without a disk limit counts the default).

use rusqlite::{params, Connection, OptionalExtension};

use crate::{now_ms, Admission, Limits, SqliteStore, StoreError, Usage};

const LIVE: &str = "c.status IN ('PENDING','RUNNING','STOPPING')";

fn int(v: Option<u64>) -> Option<i64> {
    v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

fn uint(v: Option<i64>) -> Option<u64> {
    v.map(|v| u64::try_from(v).unwrap_or(0))
}

/// What `workspace` holds, counting `default_disk_mib` for pods without a disk limit.
fn usage(conn: &Connection, workspace: &str, default_disk_mib: u64) -> Result<Usage, StoreError> {
    let sql = format!(
        "SELECT COUNT(*), \
           COALESCE(SUM(json_extract(p.spec_json, '$.cpu_millis')), 0), \
           COALESCE(SUM(json_extract(p.spec_json, '$.memory_mib')), 0), \
           COALESCE(SUM(COALESCE(json_extract(p.spec_json, '$.disk_mib'), ?2)), 0) \
         FROM containers c JOIN pods p ON p.id = c.pod_id WHERE p.workspace = ?1 AND {LIVE}"
    );
    let dd = int(Some(default_disk_mib));
    Ok(conn.query_row(&sql, params![workspace, dd], |r| {
        let n = |i: usize| r.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
        Ok(Usage {
            pods: n(0)?,
            cpu_millis: n(1)?,
            memory_mib: n(2)?,
            disk_mib: n(3)?,
        })
    })?)
}

/// Refuses the container `a` describes if it would take its workspace over a limit.
pub(crate) fn admit(conn: &Connection, a: &Admission) -> Result<(), StoreError> {
    let used = usage(conn, &a.workspace, a.default_disk_mib)?;
    let shared: i64 = match a.shared_pods_max {
        Some(_) => conn.query_row(
            &format!(
                "SELECT COUNT(*) FROM containers c JOIN pods p ON p.id = c.pod_id \
                 WHERE p.workspace != 'default' AND {LIVE}"
            ),
            [],
            |r| r.get(0),
        )?,
        None => 0,
    };
    Ok(a.check(&used, u64::try_from(shared).unwrap_or(0))?)
}

pub(crate) fn set_limits(conn: &Connection, ws: &str, l: &Limits) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO workspace_limits \
           (workspace, max_pods, max_cpu_millis, max_memory_mib, max_disk_mib, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT(workspace) DO UPDATE SET \
           max_pods = COALESCE(excluded.max_pods, max_pods), \
           max_cpu_millis = COALESCE(excluded.max_cpu_millis, max_cpu_millis), \
           max_memory_mib = COALESCE(excluded.max_memory_mib, max_memory_mib), \
           max_disk_mib = COALESCE(excluded.max_disk_mib, max_disk_mib), \
           updated_at = excluded.updated_at",
        params![
            ws,
            int(l.max_pods),
            int(l.max_cpu_millis),
            int(l.max_memory_mib),
            int(l.max_disk_mib),
            now_ms()
        ],
    )?;
    Ok(())
}

impl SqliteStore {
    /// The limits set on `workspace` (each `None` where none is set).
    pub(crate) fn workspace_limits(&self, workspace: &str) -> Result<Limits, StoreError> {
        let row = self
            .conn()
            .query_row(
                "SELECT max_pods, max_cpu_millis, max_memory_mib, max_disk_mib \
                 FROM workspace_limits WHERE workspace = ?1",
                [workspace],
                |r| {
                    Ok(Limits {
                        max_pods: uint(r.get(0)?),
                        max_cpu_millis: uint(r.get(1)?),
                        max_memory_mib: uint(r.get(2)?),
                        max_disk_mib: uint(r.get(3)?),
                    })
                },
            )
            .optional()?;
        Ok(row.unwrap_or_default())
    }

    /// Sets the limits given in `limits` on `workspace`; those `None` keep their value.
    pub(crate) fn set_workspace_limits(
        &self,
        workspace: &str,
        limits: &Limits,
    ) -> Result<(), StoreError> {
        set_limits(&self.conn(), workspace, limits)
    }

    /// What `workspace` holds now.
    pub(crate) fn workspace_usage(
        &self,
        workspace: &str,
        default_disk_mib: u64,
    ) -> Result<Usage, StoreError> {
        usage(&self.conn(), workspace, default_disk_mib)
    }

    /// Checks an admission without recording anything (a cheap early refusal; the check
    /// that counts is the one made with the insert).
    pub(crate) fn check_admission(&self, a: &Admission) -> Result<(), StoreError> {
        admit(&self.conn(), a)
    }

    /// Every workspace that has a token, a pod or limits, by name, with its number of tokens.
    pub(crate) fn workspaces(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT w, SUM(t) FROM ( \
               SELECT workspace AS w, 1 AS t FROM tokens \
               UNION ALL SELECT DISTINCT workspace, 0 FROM pods \
               UNION ALL SELECT workspace, 0 FROM workspace_limits) \
             GROUP BY w ORDER BY w",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, uint(r.get(1)?).unwrap_or(0)))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ContainerRow, PodRow, Refusal};

    fn pod(id: &str, ws: &str, disk: Option<u64>) -> (PodRow, ContainerRow) {
        let disk = disk
            .map(|d| format!(",\"disk_mib\":{d}"))
            .unwrap_or_default();
        let pod = PodRow {
            id: id.into(),
            name: None,
            deployment_id: None,
            spec_json: format!("{{\"cpu_millis\":500,\"memory_mib\":128{disk}}}"),
            created_at: 1,
            workspace: ws.into(),
        };
        let ctr = ContainerRow {
            id: format!("c-{id}"),
            pod_id: id.into(),
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

    fn admission(ws: &str, limits: Limits) -> Admission {
        Admission {
            workspace: ws.into(),
            limits,
            cpu_millis: 500,
            memory_mib: 128,
            disk_mib: 64,
            default_disk_mib: 64,
            shared_pods_max: Some(3),
        }
    }

    #[test]
    fn admission_counts_live_containers_and_names_the_limit() {
        let s = SqliteStore::open_in_memory().unwrap();
        let lim = Limits {
            max_pods: Some(2),
            ..Default::default()
        };
        let a = admission("team-a", lim);
        let (p1, c1) = pod("p1", "team-a", Some(100));
        s.insert_pod(&p1, &c1, Some(&a)).unwrap();
        let (p2, c2) = pod("p2", "team-a", None);
        s.insert_pod(&p2, &c2, Some(&a)).unwrap();
        let u = s.workspace_usage("team-a", 64).unwrap();
        assert_eq!(
            (u.pods, u.cpu_millis, u.memory_mib, u.disk_mib),
            (2, 1000, 256, 164)
        );
        let (p3, c3) = pod("p3", "team-a", None);
        let err = s.insert_pod(&p3, &c3, Some(&a)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "workspace \"team-a\" is at its limit of 2 pods (max-pods)"
        );
        assert!(s.get_pod("p3").unwrap().is_none(), "nothing recorded");
        // An ended container no longer counts.
        s.set_finished("c-p1", "EXITED", Some(0), None, 2).unwrap();
        s.insert_pod(&p3, &c3, Some(&a)).unwrap();
        // cpu: 1000m in use of 1200m.
        let cpu = admission(
            "team-a",
            Limits {
                max_cpu_millis: Some(1200),
                ..Default::default()
            },
        );
        assert_eq!(
            s.check_admission(&cpu).unwrap_err().to_string(),
            "workspace \"team-a\" is at its limit of 1.2 cpu (max-cpu): 1 in use, the pod asks for 0.5"
        );
        // Workspaces together: 2 live of at most 3.
        let (p4, c4) = pod("p4", "team-b", None);
        s.insert_pod(&p4, &c4, Some(&admission("team-b", Limits::default())))
            .unwrap();
        assert!(matches!(
            s.check_admission(&admission("team-c", Limits::default())),
            Err(StoreError::Refused(Refusal::Pool { max: 3 }))
        ));
    }

    #[test]
    fn limits_are_set_field_by_field() {
        let s = SqliteStore::open_in_memory().unwrap();
        assert_eq!(s.workspace_limits("w").unwrap(), Limits::default());
        s.set_workspace_limits(
            "w",
            &Limits {
                max_pods: Some(5),
                max_cpu_millis: Some(2000),
                ..Default::default()
            },
        )
        .unwrap();
        s.set_workspace_limits(
            "w",
            &Limits {
                max_pods: Some(7),
                ..Default::default()
            },
        )
        .unwrap();
        let l = s.workspace_limits("w").unwrap();
        assert_eq!((l.max_pods, l.max_cpu_millis), (Some(7), Some(2000)));
        assert_eq!(s.workspaces().unwrap(), vec![("w".to_string(), 0)]);
    }
}
