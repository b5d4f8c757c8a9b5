//! Deployments in etcd: `deployments/<id>`, with the index keys `deployment-names/<name>`
//! and `url-keys/<key>` (values: the deployment's id) created only if absent in the same
//! transaction, so a taken name or url key records nothing.

use super::admission;
use super::client::Etcd;
use super::kv::{self, commit, contended, pause, MAX_TRIES};
use super::pods::{self, valid};
use crate::{Admission, ContainerRow, DeploymentRow, PodRow, StoreError};

const TABLE: &str = "deployments";

pub(crate) async fn insert(
    etcd: &Etcd,
    dep: &DeploymentRow,
    pod: &PodRow,
    ctr: &ContainerRow,
    admit: Option<&Admission>,
) -> Result<(), StoreError> {
    kv::id("deployment id", &dep.id)?;
    let keys = etcd.keys();
    let (mut when, mut then) = pods::recording(etcd, Some(pod), ctr)?;
    let id_json = kv::encode("deployment id", &dep.id)?;
    let (name, url) = (
        keys.named("deployment-names", &dep.name),
        keys.named("url-keys", &dep.url_key),
    );
    let dkey = keys.row(TABLE, &dep.id);
    when.extend([kv::absent(&dkey), kv::absent(&name), kv::absent(&url)]);
    then.extend([
        kv::put(&dkey, &kv::encode("deployment", dep)?),
        kv::put(&name, &id_json),
        kv::put(&url, &id_json),
    ]);
    if admission::insert(etcd, &pod.workspace, admit, when, then).await? {
        return Ok(());
    }
    if get(etcd, &dep.id).await?.as_ref() == Some(dep) && pods::landed(etcd, ctr).await? {
        return Ok(());
    }
    let taken = if kv::get::<String>(etcd, &name).await?.is_some() {
        format!("deployment name {:?} is taken", dep.name)
    } else if kv::get::<String>(etcd, &url).await?.is_some() {
        format!("deployment url key {:?} is taken", dep.url_key)
    } else {
        format!(
            "deployment id {}, pod id {} or container id {} is taken",
            dep.id, pod.id, ctr.id
        )
    };
    Err(StoreError::Invalid(taken))
}

/// Edits deployment `id` (nothing if there is none).
pub(crate) async fn update(
    etcd: &Etcd,
    id: &str,
    change: impl FnMut(&mut DeploymentRow),
) -> Result<(), StoreError> {
    if !valid(id) {
        return Ok(());
    }
    let key = etcd.keys().row(TABLE, id);
    kv::update(etcd, &key, "deployment", change).await?;
    Ok(())
}

pub(crate) async fn get(etcd: &Etcd, id: &str) -> Result<Option<DeploymentRow>, StoreError> {
    if !valid(id) {
        return Ok(None);
    }
    Ok(kv::get(etcd, &etcd.keys().row(TABLE, id))
        .await?
        .map(|v| v.row))
}

pub(crate) async fn get_by_name(
    etcd: &Etcd,
    name: &str,
) -> Result<Option<DeploymentRow>, StoreError> {
    let index = etcd.keys().named("deployment-names", name);
    match kv::get::<String>(etcd, &index).await? {
        Some(id) => get(etcd, &id.row).await,
        None => Ok(None),
    }
}

/// Every deployment, by name.
pub(crate) async fn list(etcd: &Etcd) -> Result<Vec<DeploymentRow>, StoreError> {
    let mut rows: Vec<DeploymentRow> = kv::table_rows(etcd, TABLE).await?;
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

/// The deployment's pods that have a container that started, and `current`, oldest first.
pub(crate) async fn versions(
    etcd: &Etcd,
    dep_id: &str,
    current: Option<&str>,
) -> Result<Vec<PodRow>, StoreError> {
    let keys = etcd.keys();
    let gets = kv::read(
        etcd,
        vec![
            kv::prefix_op(&keys.table("pods")),
            kv::prefix_op(&keys.table("containers")),
        ],
    )
    .await?;
    let ctrs = kv::rows::<ContainerRow>(&gets[1])?;
    let ran = |pod: &str| {
        ctrs.iter()
            .any(|c| c.row.pod_id == pod && c.row.started_at.is_some())
    };
    let mut out = kv::rows::<PodRow>(&gets[0])?;
    out.retain(|p| {
        p.row.deployment_id.as_deref() == Some(dep_id)
            && (current == Some(p.row.id.as_str()) || ran(&p.row.id))
    });
    out.sort_by_key(|p| (p.row.created_at, p.created));
    Ok(out.into_iter().map(|p| p.row).collect())
}

/// Removes the row and its name and url key (freeing them); the versions' pods stay.
pub(crate) async fn delete(etcd: &Etcd, id: &str) -> Result<(), StoreError> {
    if !valid(id) {
        return Ok(());
    }
    let keys = etcd.keys();
    let key = keys.row(TABLE, id);
    for attempt in 0..MAX_TRIES {
        let Some(dep) = kv::get::<DeploymentRow>(etcd, &key).await? else {
            return Ok(());
        };
        let then = vec![
            kv::delete(&key),
            kv::delete(&keys.named("deployment-names", &dep.row.name)),
            kv::delete(&keys.named("url-keys", &dep.row.url_key)),
        ];
        if commit(etcd, vec![kv::unchanged(&key, dep.rev)], then).await? {
            return Ok(());
        }
        pause(attempt).await;
    }
    Err(contended("delete of a deployment"))
}
