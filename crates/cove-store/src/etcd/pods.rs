//! Pods and their containers in etcd: `pods/<id>`, `containers/<id>`, and the index
//! `pod-containers/<pod>/<ctr>` that lets a pod be deleted with its containers atomically.

use etcd_client::{Compare, CompareOp, DeleteOptions, TxnOp};

use super::admission::{self, is_live};
use super::client::Etcd;
use super::kv::{self, commit, contended, pause, Versioned, MAX_TRIES};
use crate::{Admission, ContainerRow, PodRow, StoreError};

/// Whether `id` can be a key segment; an id that cannot was never recorded.
pub(crate) fn valid(id: &str) -> bool {
    super::keys::check_name("id", id).is_ok()
}

/// The compares and puts that record `pod` (if given) and `ctr` if their ids are free.
pub(crate) fn recording(
    etcd: &Etcd,
    pod: Option<&PodRow>,
    ctr: &ContainerRow,
) -> Result<(Vec<Compare>, Vec<TxnOp>), StoreError> {
    let keys = etcd.keys();
    kv::id("container id", &ctr.id)?;
    kv::id("pod id", &ctr.pod_id)?;
    let ckey = keys.row("containers", &ctr.id);
    let mut when = vec![kv::absent(&ckey)];
    let mut then = vec![
        kv::put(&ckey, &kv::encode("container", ctr)?),
        kv::put(&keys.pod_container(&ctr.pod_id, &ctr.id), ""),
    ];
    if let Some(pod) = pod {
        kv::id("pod id", &pod.id)?;
        kv::id("workspace", &pod.workspace)?;
        let pkey = keys.pod(&pod.id);
        when.push(kv::absent(&pkey));
        then.push(kv::put(&pkey, &kv::encode("pod", pod)?));
    }
    Ok((when, then))
}

/// After a failed insert: whether `ctr` is recorded exactly as given (a retried request
/// whose first answer was lost), which counts as success.
pub(crate) async fn landed(etcd: &Etcd, ctr: &ContainerRow) -> Result<bool, StoreError> {
    Ok(get_container(etcd, &ctr.id).await?.as_ref() == Some(ctr))
}

pub(crate) async fn insert_pod(
    etcd: &Etcd,
    pod: &PodRow,
    ctr: &ContainerRow,
    admit: Option<&Admission>,
) -> Result<(), StoreError> {
    let (when, then) = recording(etcd, Some(pod), ctr)?;
    if admission::insert(etcd, &pod.workspace, admit, when, then).await?
        || landed(etcd, ctr).await?
    {
        return Ok(());
    }
    Err(StoreError::Invalid(format!(
        "pod id {} or container id {} is taken",
        pod.id, ctr.id
    )))
}

pub(crate) async fn insert_container(
    etcd: &Etcd,
    ctr: &ContainerRow,
    admit: Option<&Admission>,
) -> Result<(), StoreError> {
    let pod = match valid(&ctr.pod_id) {
        true => kv::get::<PodRow>(etcd, &etcd.keys().pod(&ctr.pod_id)).await?,
        false => None,
    };
    let Some(pod) = pod else {
        return Err(StoreError::Invalid(format!(
            "container {}: no pod {}",
            ctr.id, ctr.pod_id
        )));
    };
    let (mut when, then) = recording(etcd, None, ctr)?;
    // The pod is still the one read (not deleted, or deleted and made again).
    let pkey = etcd.keys().pod(&pod.row.id);
    when.push(Compare::create_revision(
        pkey,
        CompareOp::Equal,
        pod.created,
    ));
    let ws = &pod.row.workspace;
    if admission::insert(etcd, ws, admit, when, then).await? || landed(etcd, ctr).await? {
        return Ok(());
    }
    Err(StoreError::Invalid(format!(
        "container id {} is taken, or pod {} was deleted",
        ctr.id, ctr.pod_id
    )))
}

pub(crate) async fn get_pod(etcd: &Etcd, id: &str) -> Result<Option<PodRow>, StoreError> {
    if !valid(id) {
        return Ok(None);
    }
    Ok(kv::get(etcd, &etcd.keys().pod(id)).await?.map(|v| v.row))
}

pub(crate) async fn get_container(
    etcd: &Etcd,
    id: &str,
) -> Result<Option<ContainerRow>, StoreError> {
    if !valid(id) {
        return Ok(None);
    }
    let key = etcd.keys().row("containers", id);
    Ok(kv::get(etcd, &key).await?.map(|v| v.row))
}

/// Removes the pod and every container of it, unless a container was added meanwhile
/// (then it reads again).
pub(crate) async fn delete_pod(etcd: &Etcd, id: &str) -> Result<(), StoreError> {
    if !valid(id) {
        return Ok(());
    }
    let keys = etcd.keys();
    let (pkey, index) = (keys.pod(id), keys.pod_containers(id));
    for attempt in 0..MAX_TRIES {
        let gets = kv::read(etcd, vec![kv::get_op(&pkey), kv::prefix_op(&index)]).await?;
        let at = gets[0].header().map_or(0, |h| h.revision());
        let pod_rev = gets[0].kvs().first().map_or(0, |kv| kv.mod_revision());
        let mut then = vec![
            kv::delete(&pkey),
            TxnOp::delete(index.as_str(), Some(DeleteOptions::new().with_prefix())),
        ];
        for entry in gets[1].kvs() {
            let ctr = String::from_utf8_lossy(entry.key());
            let ctr = ctr.rsplit('/').next().unwrap_or_default();
            then.push(kv::delete(&keys.row("containers", ctr)));
        }
        let when = vec![
            kv::unchanged(&pkey, pod_rev),
            Compare::create_revision(index.as_str(), CompareOp::Less, at + 1).with_prefix(),
        ];
        if commit(etcd, when, then).await? {
            return Ok(());
        }
        pause(attempt).await;
    }
    Err(contended("delete of a pod"))
}

/// Replaces the pod's spec; its workspace's guards are bumped, as its usage may change.
pub(crate) async fn set_pod_spec(etcd: &Etcd, id: &str, spec: &str) -> Result<bool, StoreError> {
    if !valid(id) {
        return Ok(false);
    }
    let key = etcd.keys().pod(id);
    for attempt in 0..MAX_TRIES {
        let Some(mut pod) = kv::get::<PodRow>(etcd, &key).await? else {
            return Ok(false);
        };
        pod.row.spec_json = spec.to_string();
        let mut then = vec![kv::put(&key, &kv::encode("pod", &pod.row)?)];
        then.extend(admission::bumps(etcd.keys(), &pod.row.workspace));
        if commit(etcd, vec![kv::unchanged(&key, pod.rev)], then).await? {
            return Ok(true);
        }
        pause(attempt).await;
    }
    Err(contended("pod spec"))
}

async fn all_containers(etcd: &Etcd) -> Result<Vec<Versioned<ContainerRow>>, StoreError> {
    kv::list(etcd, &etcd.keys().table("containers")).await
}

/// Every container, newest first (then by id).
pub(crate) async fn list_containers(etcd: &Etcd) -> Result<Vec<ContainerRow>, StoreError> {
    let mut rows: Vec<ContainerRow> = all_containers(etcd)
        .await?
        .into_iter()
        .map(|v| v.row)
        .collect();
    rows.sort_by(|a, b| {
        b.scheduled_at
            .cmp(&a.scheduled_at)
            .then_with(|| a.id.cmp(&b.id))
    });
    Ok(rows)
}

/// Live containers, oldest first (then in insertion order).
pub(crate) async fn live_containers(etcd: &Etcd) -> Result<Vec<ContainerRow>, StoreError> {
    let mut rows = all_containers(etcd).await?;
    rows.retain(|v| is_live(&v.row.status));
    rows.sort_by_key(|v| (v.row.scheduled_at, v.created));
    Ok(rows.into_iter().map(|v| v.row).collect())
}

/// Edits container `id` (nothing if there is none).
pub(crate) async fn update_container(
    etcd: &Etcd,
    id: &str,
    change: impl FnMut(&mut ContainerRow),
) -> Result<(), StoreError> {
    if !valid(id) {
        return Ok(());
    }
    let key = etcd.keys().row("containers", id);
    kv::update(etcd, &key, "container", change).await?;
    Ok(())
}
