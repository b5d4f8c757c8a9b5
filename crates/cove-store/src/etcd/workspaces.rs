//! Workspaces in etcd: limits at `workspaces/<ws>/limits` (JSON of [`Limits`]), usage and
//! admission checks (see `admission.rs`), and the list of workspaces.

use std::collections::BTreeMap;

use etcd_client::{Compare, TxnOp};

use super::admission::snapshot;
use super::client::Etcd;
use super::kv::{self, commit, contended, pause, MAX_TRIES};
use super::pods::valid;
use crate::{Admission, Limits, PodRow, StoreError, TokenRow, Usage};

/// The write that sets the limits given in `new` on `ws` (the others keep their value), and
/// the compare under which it is right: the limits are still as read.
pub(crate) async fn merge_limits(
    etcd: &Etcd,
    ws: &str,
    new: &Limits,
) -> Result<(Compare, TxnOp), StoreError> {
    kv::id("workspace", ws)?;
    let key = etcd.keys().limits(ws);
    let cur = kv::get::<Limits>(etcd, &key).await?;
    let rev = cur.as_ref().map_or(0, |v| v.rev);
    let old = cur.map(|v| v.row).unwrap_or_default();
    let merged = Limits {
        max_pods: new.max_pods.or(old.max_pods),
        max_cpu_millis: new.max_cpu_millis.or(old.max_cpu_millis),
        max_memory_mib: new.max_memory_mib.or(old.max_memory_mib),
        max_disk_mib: new.max_disk_mib.or(old.max_disk_mib),
    };
    let value = kv::encode("workspace limits", &merged)?;
    Ok((kv::unchanged(&key, rev), kv::put(&key, &value)))
}

pub(crate) async fn limits(etcd: &Etcd, ws: &str) -> Result<Limits, StoreError> {
    if !valid(ws) {
        return Ok(Limits::default());
    }
    let got = kv::get::<Limits>(etcd, &etcd.keys().limits(ws)).await?;
    Ok(got.map(|v| v.row).unwrap_or_default())
}

pub(crate) async fn set_limits(etcd: &Etcd, ws: &str, new: &Limits) -> Result<(), StoreError> {
    for attempt in 0..MAX_TRIES {
        let (compare, put) = merge_limits(etcd, ws, new).await?;
        if commit(etcd, vec![compare], vec![put]).await? {
            return Ok(());
        }
        pause(attempt).await;
    }
    Err(contended("workspace limits"))
}

pub(crate) async fn usage(etcd: &Etcd, ws: &str, default_disk: u64) -> Result<Usage, StoreError> {
    if !valid(ws) {
        return Ok(Usage::default());
    }
    Ok(snapshot(etcd, ws).await?.usage(ws, default_disk))
}

pub(crate) async fn check(etcd: &Etcd, a: &Admission) -> Result<(), StoreError> {
    kv::id("workspace", &a.workspace)?;
    snapshot(etcd, &a.workspace).await?.check(a)
}

/// Every workspace with a token, a pod or limits, by name, with its token count.
pub(crate) async fn list(etcd: &Etcd) -> Result<Vec<(String, u64)>, StoreError> {
    let keys = etcd.keys();
    let prefix = keys.workspaces();
    let gets = kv::read(
        etcd,
        vec![
            kv::prefix_op(&keys.table("tokens")),
            kv::prefix_op(&keys.table("pods")),
            kv::prefix_op(&prefix),
        ],
    )
    .await?;
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for t in kv::rows::<TokenRow>(&gets[0])? {
        *out.entry(t.row.workspace).or_default() += 1;
    }
    for p in kv::rows::<PodRow>(&gets[1])? {
        out.entry(p.row.workspace).or_default();
    }
    for entry in gets[2].kvs() {
        let key = String::from_utf8_lossy(entry.key());
        let rest = key.strip_prefix(prefix.as_str()).unwrap_or_default();
        if let Some(ws) = rest.strip_suffix("/limits") {
            out.entry(ws.to_string()).or_default();
        }
    }
    Ok(out.into_iter().collect())
}
