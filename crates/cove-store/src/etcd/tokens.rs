//! Tokens in etcd: `tokens/<id>`, with the index keys `token-names/<name>` and
//! `token-hashes/<hash>` (values: the token's id) created only if absent in the same
//! transaction; a token made with limits sets them on its workspace in that transaction too.

use super::client::Etcd;
use super::kv::{self, commit, contended, pause, MAX_TRIES};
use super::pods::valid;
use super::workspaces;
use crate::{Limits, StoreError, TokenRow};

const TABLE: &str = "tokens";

pub(crate) async fn insert(
    etcd: &Etcd,
    row: &TokenRow,
    limits: Option<&Limits>,
) -> Result<(), StoreError> {
    kv::id("token id", &row.id)?;
    kv::id("workspace", &row.workspace)?;
    let keys = etcd.keys();
    let key = keys.row(TABLE, &row.id);
    let name = keys.named("token-names", &row.name);
    let hash = keys.named("token-hashes", &row.hash);
    let id_json = kv::encode("token id", &row.id)?;
    let unique = vec![kv::absent(&key), kv::absent(&name), kv::absent(&hash)];
    let then = vec![
        kv::put(&key, &kv::encode("token", row)?),
        kv::put(&name, &id_json),
        kv::put(&hash, &id_json),
    ];
    for attempt in 0..MAX_TRIES {
        let mut when = unique.clone();
        let mut ops = then.clone();
        if let Some(l) = limits {
            let (compare, put) = workspaces::merge_limits(etcd, &row.workspace, l).await?;
            when.push(compare);
            ops.push(put);
        }
        if commit(etcd, when, ops).await? {
            return Ok(());
        }
        if !commit(etcd, unique.clone(), vec![]).await? {
            if kv::get::<TokenRow>(etcd, &key)
                .await?
                .map(|v| v.row)
                .as_ref()
                == Some(row)
            {
                return Ok(()); // a retried request whose first answer was lost
            }
            let taken = if kv::get::<String>(etcd, &name).await?.is_some() {
                format!("token name {:?} is taken", row.name)
            } else {
                format!("token id {} or its hash is taken", row.id)
            };
            return Err(StoreError::Invalid(taken));
        }
        pause(attempt).await; // the workspace's limits changed meanwhile
    }
    Err(contended("token insert"))
}

pub(crate) async fn name_taken(etcd: &Etcd, name: &str) -> Result<bool, StoreError> {
    let index = etcd.keys().named("token-names", name);
    Ok(kv::get::<String>(etcd, &index).await?.is_some())
}

/// Every token, by name.
pub(crate) async fn list(etcd: &Etcd) -> Result<Vec<TokenRow>, StoreError> {
    let mut rows: Vec<TokenRow> = kv::table_rows(etcd, TABLE).await?;
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

/// Removes the token whose id (or else name) is `id_or_name`, with its index keys.
pub(crate) async fn delete(etcd: &Etcd, id_or_name: &str) -> Result<Option<TokenRow>, StoreError> {
    let keys = etcd.keys();
    for attempt in 0..MAX_TRIES {
        let mut found = None;
        if valid(id_or_name) {
            found = kv::get::<TokenRow>(etcd, &keys.row(TABLE, id_or_name)).await?;
        }
        if found.is_none() {
            let index = keys.named("token-names", id_or_name);
            if let Some(id) = kv::get::<String>(etcd, &index).await? {
                if valid(&id.row) {
                    found = kv::get::<TokenRow>(etcd, &keys.row(TABLE, &id.row)).await?;
                }
            }
        }
        let Some(t) = found else { return Ok(None) };
        let key = keys.row(TABLE, &t.row.id);
        let then = vec![
            kv::delete(&key),
            kv::delete(&keys.named("token-names", &t.row.name)),
            kv::delete(&keys.named("token-hashes", &t.row.hash)),
        ];
        if commit(etcd, vec![kv::unchanged(&key, t.rev)], then).await? {
            return Ok(Some(t.row));
        }
        pause(attempt).await;
    }
    Err(contended("token delete"))
}

pub(crate) async fn set_used(etcd: &Etcd, id: &str, at: i64) -> Result<(), StoreError> {
    if !valid(id) {
        return Ok(());
    }
    let key = etcd.keys().row(TABLE, id);
    kv::update(etcd, &key, "token", |t: &mut TokenRow| {
        t.last_used_at = Some(at)
    })
    .await?;
    Ok(())
}
