//! Admission in etcd: a container insert and the limit check it passed, atomically.
//!
//! An admitted insert reads the pods, the containers and its workspace's guard key (and the
//! shared guard, when the pool is capped) in one transaction, so at one revision; runs
//! [`Admission::check`] (the function SQLite uses) on what it read; then commits its rows in
//! a transaction comparing the guards' mod_revisions. Every container insert bumps its
//! workspace's guard (and, for a workspace but `default`, the shared one), so an insert that
//! landed after the read fails the compare, and the loser reads and checks again. Of 20
//! concurrent creates against max-pods 5, each round admits one, and once 5 are in the rest
//! are refused by the check.

use std::collections::HashMap;

use etcd_client::{Compare, TxnOp};

use super::client::Etcd;
use super::keys::Keys;
use super::kv::{self, commit, contended, pause, MAX_TRIES};
use crate::{Admission, ContainerRow, PodRow, StoreError, Usage};

/// The container statuses whose processes may still exist.
pub(crate) fn is_live(status: &str) -> bool {
    matches!(status, "PENDING" | "RUNNING" | "STOPPING")
}

/// What an admission decision reads, at one revision.
pub(crate) struct Snapshot {
    pods: HashMap<String, PodRow>,
    live: Vec<ContainerRow>,
    guard_rev: i64,
    shared_rev: i64,
}

pub(crate) async fn snapshot(etcd: &Etcd, ws: &str) -> Result<Snapshot, StoreError> {
    let keys = etcd.keys();
    let gets = kv::read(
        etcd,
        vec![
            kv::prefix_op(&keys.table("pods")),
            kv::prefix_op(&keys.table("containers")),
            kv::get_op(&keys.guard(ws)),
            kv::get_op(&keys.shared_guard()),
        ],
    )
    .await?;
    let pods = kv::rows::<PodRow>(&gets[0])?
        .into_iter()
        .map(|p| (p.row.id.clone(), p.row))
        .collect();
    let live = kv::rows::<ContainerRow>(&gets[1])?
        .into_iter()
        .map(|c| c.row)
        .filter(|c| is_live(&c.status))
        .collect();
    let rev = |i: usize| gets[i].kvs().first().map_or(0, |kv| kv.mod_revision());
    Ok(Snapshot {
        pods,
        live,
        guard_rev: rev(2),
        shared_rev: rev(3),
    })
}

impl Snapshot {
    /// What `ws`'s live containers hold, each counting its pod's spec.
    pub(crate) fn usage(&self, ws: &str, default_disk_mib: u64) -> Usage {
        let mut u = Usage::default();
        for c in &self.live {
            let Some(pod) = self.pods.get(&c.pod_id).filter(|p| p.workspace == ws) else {
                continue;
            };
            let spec: serde_json::Value = serde_json::from_str(&pod.spec_json).unwrap_or_default();
            let field = |name: &str| spec.get(name).and_then(|v| v.as_u64());
            u.pods += 1;
            u.cpu_millis = u
                .cpu_millis
                .saturating_add(field("cpu_millis").unwrap_or(0));
            u.memory_mib = u
                .memory_mib
                .saturating_add(field("memory_mib").unwrap_or(0));
            let disk = field("disk_mib").unwrap_or(default_disk_mib);
            u.disk_mib = u.disk_mib.saturating_add(disk);
        }
        u
    }

    /// Live containers of every workspace but `default`.
    fn shared_live(&self) -> u64 {
        let shared = |c: &&ContainerRow| {
            self.pods
                .get(&c.pod_id)
                .is_some_and(|p| p.workspace != "default")
        };
        self.live.iter().filter(shared).count() as u64
    }

    pub(crate) fn check(&self, a: &Admission) -> Result<(), StoreError> {
        let used = self.usage(&a.workspace, a.default_disk_mib);
        Ok(a.check(&used, self.shared_live())?)
    }

    /// What the commit of an admitted insert compares: the guards as read.
    fn compares(&self, keys: &Keys, a: &Admission) -> Vec<Compare> {
        let mut out = vec![kv::unchanged(&keys.guard(&a.workspace), self.guard_rev)];
        if a.shared_pods_max.is_some() {
            out.push(kv::unchanged(&keys.shared_guard(), self.shared_rev));
        }
        out
    }
}

/// The puts that bump the guards an insert of a container of `ws` changes.
pub(crate) fn bumps(keys: &Keys, ws: &str) -> Vec<TxnOp> {
    let now = crate::now_ms().to_string();
    let mut out = vec![kv::put(&keys.guard(ws), &now)];
    if ws != "default" {
        out.push(kv::put(&keys.shared_guard(), &now));
    }
    out
}

/// Commits `then`, which records a container of workspace `ws`, if every compare in `when`
/// holds and `admit` (when given) lets the container in at the revision the commit
/// compares. Returns false, recording nothing, if `when` does not hold (a taken id or
/// name); a refusal is [`StoreError::Refused`].
pub(crate) async fn insert(
    etcd: &Etcd,
    ws: &str,
    admit: Option<&Admission>,
    when: Vec<Compare>,
    then: Vec<TxnOp>,
) -> Result<bool, StoreError> {
    let keys = etcd.keys();
    let mut ops = then;
    ops.extend(bumps(keys, ws));
    for attempt in 0..MAX_TRIES {
        let mut cmp = when.clone();
        if let Some(a) = admit {
            let snap = snapshot(etcd, &a.workspace).await?;
            snap.check(a)?;
            cmp.extend(snap.compares(keys, a));
        }
        if commit(etcd, cmp, ops.clone()).await? {
            return Ok(true);
        }
        // Only the guards can change under a caller: if its own compares fail, it lost.
        if admit.is_none() || !commit(etcd, when.clone(), vec![]).await? {
            return Ok(false);
        }
        tracing::debug!(%ws, attempt, "admission: another insert got in first, checking again");
        pause(attempt).await;
    }
    Err(contended("admission of a container"))
}
