//! The build cache (`builds/<hash>`), image rows (`images/<ref>`) and which workspace holds
//! which reference: `image-refs/<ws>/<ref>` and `image-holders/<ref>/<ws>`, written and
//! removed together. Hashes and references are hex in keys (references hold `/` and `:`).

use std::collections::HashSet;

use etcd_client::{Compare, CompareOp, DeleteOptions, GetOptions, TxnOp};

use super::client::Etcd;
use super::keys::dec;
use super::kv::{self, commit, contended, pause, MAX_TRIES};
use super::pods::valid;
use crate::{now_ms, BuildRow, ImageRow, StoreError};

async fn put_row(etcd: &Etcd, key: &str, value: &str) -> Result<(), StoreError> {
    commit(etcd, vec![], vec![kv::put(key, value)]).await?;
    Ok(())
}

/// Deletes `key`; returns whether it existed.
async fn delete_key(etcd: &Etcd, key: &str) -> Result<bool, StoreError> {
    let resp = etcd
        .call(|mut c| {
            let key = key.to_string();
            async move { c.delete(key, None).await }
        })
        .await?;
    Ok(resp.deleted() > 0)
}

pub(crate) async fn get_build(etcd: &Etcd, hash: &str) -> Result<Option<BuildRow>, StoreError> {
    let key = etcd.keys().named("builds", hash);
    Ok(kv::get(etcd, &key).await?.map(|v| v.row))
}

pub(crate) async fn put_build(etcd: &Etcd, hash: &str, reference: &str) -> Result<(), StoreError> {
    let row = BuildRow {
        hash: hash.to_string(),
        image_reference: reference.to_string(),
        created_at: now_ms(),
    };
    let key = etcd.keys().named("builds", hash);
    put_row(etcd, &key, &kv::encode("build", &row)?).await
}

pub(crate) async fn delete_build(etcd: &Etcd, hash: &str) -> Result<bool, StoreError> {
    delete_key(etcd, &etcd.keys().named("builds", hash)).await
}

/// Every cached step, oldest first (then by hash).
pub(crate) async fn list_builds(etcd: &Etcd) -> Result<Vec<BuildRow>, StoreError> {
    let mut rows: Vec<BuildRow> = kv::table_rows(etcd, "builds").await?;
    rows.sort_by(|a, b| (a.created_at, &a.hash).cmp(&(b.created_at, &b.hash)));
    Ok(rows)
}

pub(crate) async fn put_image(etcd: &Etcd, row: &ImageRow) -> Result<(), StoreError> {
    let key = etcd.keys().named("images", &row.reference);
    put_row(etcd, &key, &kv::encode("image", row)?).await
}

pub(crate) async fn get_image(
    etcd: &Etcd,
    reference: &str,
) -> Result<Option<ImageRow>, StoreError> {
    let key = etcd.keys().named("images", reference);
    Ok(kv::get(etcd, &key).await?.map(|v| v.row))
}

/// Every image, by reference.
pub(crate) async fn list_images(etcd: &Etcd) -> Result<Vec<ImageRow>, StoreError> {
    let mut rows: Vec<ImageRow> = kv::table_rows(etcd, "images").await?;
    rows.sort_by(|a, b| a.reference.cmp(&b.reference));
    Ok(rows)
}

pub(crate) async fn delete_image(etcd: &Etcd, reference: &str) -> Result<bool, StoreError> {
    delete_key(etcd, &etcd.keys().named("images", reference)).await
}

pub(crate) async fn add_ref(etcd: &Etcd, ws: &str, reference: &str) -> Result<(), StoreError> {
    kv::id("workspace", ws)?;
    let keys = etcd.keys();
    let then = vec![
        kv::put(&keys.image_ref(ws, reference), ""),
        kv::put(&keys.image_holder(reference, ws), ""),
    ];
    commit(etcd, vec![], then).await?;
    Ok(())
}

pub(crate) async fn has_ref(etcd: &Etcd, ws: &str, reference: &str) -> Result<bool, StoreError> {
    if !valid(ws) {
        return Ok(false);
    }
    let key = etcd.keys().image_ref(ws, reference);
    let resp = etcd
        .call(|mut c| {
            let key = key.clone();
            async move { c.get(key, Some(GetOptions::new().with_count_only())).await }
        })
        .await?;
    Ok(resp.count() > 0)
}

pub(crate) async fn refs_of(etcd: &Etcd, ws: &str) -> Result<HashSet<String>, StoreError> {
    if !valid(ws) {
        return Ok(HashSet::new());
    }
    let gets = kv::read(etcd, vec![kv::prefix_op(&etcd.keys().image_refs(ws))]).await?;
    gets[0].kvs().iter().map(|kv| dec(kv.key())).collect()
}

pub(crate) async fn holders(etcd: &Etcd, reference: &str) -> Result<i64, StoreError> {
    let prefix = etcd.keys().image_holders(reference);
    let resp = etcd
        .call(|mut c| {
            let prefix = prefix.clone();
            let options = GetOptions::new().with_prefix().with_count_only();
            async move { c.get(prefix, Some(options)).await }
        })
        .await?;
    Ok(resp.count())
}

/// Drops `ws`'s hold on `reference`, or every workspace's (unless one was added meanwhile:
/// then it reads again).
pub(crate) async fn remove_ref(
    etcd: &Etcd,
    ws: Option<&str>,
    reference: &str,
) -> Result<(), StoreError> {
    let keys = etcd.keys();
    if let Some(ws) = ws {
        if !valid(ws) {
            return Ok(());
        }
        let then = vec![
            kv::delete(&keys.image_ref(ws, reference)),
            kv::delete(&keys.image_holder(reference, ws)),
        ];
        commit(etcd, vec![], then).await?;
        return Ok(());
    }
    let prefix = keys.image_holders(reference);
    for attempt in 0..MAX_TRIES {
        let gets = kv::read(etcd, vec![kv::prefix_op(&prefix)]).await?;
        let at = gets[0].header().map_or(0, |h| h.revision());
        let mut then = vec![TxnOp::delete(
            prefix.as_str(),
            Some(DeleteOptions::new().with_prefix()),
        )];
        for holder in gets[0].kvs() {
            let key = String::from_utf8_lossy(holder.key());
            let ws = key.rsplit('/').next().unwrap_or_default();
            then.push(kv::delete(&keys.image_ref(ws, reference)));
        }
        let when =
            vec![Compare::create_revision(prefix.as_str(), CompareOp::Less, at + 1).with_prefix()];
        if commit(etcd, when, then).await? {
            return Ok(());
        }
        pause(attempt).await;
    }
    Err(contended("image reference removal"))
}
