//! JSON rows in etcd: reads at one revision, conditional commits, and read-modify-write
//! with a bounded retry. The building blocks of [`super::EtcdStore`].

use std::time::Duration;

use etcd_client::{
    Compare, CompareOp, GetOptions, GetResponse, KeyValue, Txn, TxnOp, TxnOpResponse,
};
use serde::{de::DeserializeOwned, Serialize};

use super::client::Etcd;
use crate::StoreError;

/// How many times a write whose compare failed (another writer got in between) is tried.
/// Every failed compare means another writer succeeded, so n contenders need at most n.
pub(crate) const MAX_TRIES: usize = 200;

/// A row with the revisions of its key.
#[derive(Debug, Clone)]
pub(crate) struct Versioned<T> {
    pub row: T,
    /// The key's mod_revision: what an update compares.
    pub rev: i64,
    /// The key's create_revision: the row's insertion order (SQLite's rowid).
    pub created: i64,
}

pub(crate) fn encode<T: Serialize>(what: &str, row: &T) -> Result<String, StoreError> {
    serde_json::to_string(row).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

pub(crate) fn decode<T: DeserializeOwned>(kv: &KeyValue) -> Result<T, StoreError> {
    serde_json::from_slice(kv.value())
        .map_err(|e| StoreError::Corrupt(format!("{}: {e}", String::from_utf8_lossy(kv.key()))))
}

pub(crate) fn versioned<T: DeserializeOwned>(kv: &KeyValue) -> Result<Versioned<T>, StoreError> {
    Ok(Versioned {
        row: decode(kv)?,
        rev: kv.mod_revision(),
        created: kv.create_revision(),
    })
}

/// Every row a get answered.
pub(crate) fn rows<T: DeserializeOwned>(g: &GetResponse) -> Result<Vec<Versioned<T>>, StoreError> {
    g.kvs().iter().map(versioned).collect()
}

/// The one row a get answered, if any.
pub(crate) fn first<T: DeserializeOwned>(
    g: &GetResponse,
) -> Result<Option<Versioned<T>>, StoreError> {
    g.kvs().first().map(versioned).transpose()
}

pub(crate) fn get_op(key: &str) -> TxnOp {
    TxnOp::get(key, None)
}

pub(crate) fn prefix_op(prefix: &str) -> TxnOp {
    TxnOp::get(prefix, Some(GetOptions::new().with_prefix()))
}

pub(crate) fn put(key: &str, value: &str) -> TxnOp {
    TxnOp::put(key, value, None)
}

pub(crate) fn delete(key: &str) -> TxnOp {
    TxnOp::delete(key, None)
}

/// The key does not exist (its create_revision is 0).
pub(crate) fn absent(key: &str) -> Compare {
    Compare::create_revision(key, CompareOp::Equal, 0)
}

/// The key is as read at `rev` (0: still absent).
pub(crate) fn unchanged(key: &str, rev: i64) -> Compare {
    Compare::mod_revision(key, CompareOp::Equal, rev)
}

/// The gets in `ops`, answered in one transaction: all at one revision.
pub(crate) async fn read(etcd: &Etcd, ops: Vec<TxnOp>) -> Result<Vec<GetResponse>, StoreError> {
    let n = ops.len();
    let resp = etcd
        .call(|mut c| {
            let txn = Txn::new().and_then(ops.clone());
            async move { c.txn(txn).await }
        })
        .await?;
    let gets: Vec<GetResponse> = resp
        .op_responses()
        .into_iter()
        .filter_map(|r| match r {
            TxnOpResponse::Get(g) => Some(g),
            _ => None,
        })
        .collect();
    if gets.len() != n {
        return Err(StoreError::Etcd("short transaction answer".into()));
    }
    Ok(gets)
}

pub(crate) async fn get<T: DeserializeOwned>(
    etcd: &Etcd,
    key: &str,
) -> Result<Option<Versioned<T>>, StoreError> {
    let resp = etcd
        .call(|mut c| {
            let key = key.to_string();
            async move { c.get(key, None).await }
        })
        .await?;
    first(&resp)
}

/// Every row of `table`, without their versions, in key order.
pub(crate) async fn table_rows<T: DeserializeOwned>(
    etcd: &Etcd,
    table: &str,
) -> Result<Vec<T>, StoreError> {
    let rows = list(etcd, &etcd.keys().table(table)).await?;
    Ok(rows.into_iter().map(|v: Versioned<T>| v.row).collect())
}

/// Every row under `prefix`, in key order.
pub(crate) async fn list<T: DeserializeOwned>(
    etcd: &Etcd,
    prefix: &str,
) -> Result<Vec<Versioned<T>>, StoreError> {
    let resp = etcd
        .call(|mut c| {
            let prefix = prefix.to_string();
            async move { c.get(prefix, Some(GetOptions::new().with_prefix())).await }
        })
        .await?;
    rows(&resp)
}

/// Applies `then` if every compare in `when` holds; returns whether it did.
pub(crate) async fn commit(
    etcd: &Etcd,
    when: Vec<Compare>,
    then: Vec<TxnOp>,
) -> Result<bool, StoreError> {
    let resp = etcd
        .call(|mut c| {
            let txn = Txn::new().when(when.clone()).and_then(then.clone());
            async move { c.txn(txn).await }
        })
        .await?;
    Ok(resp.succeeded())
}

/// Reads row `key`, lets `change` edit it and writes it back if nobody wrote it in between
/// (retrying otherwise). Returns the row as written, or `None` if there is no such row.
pub(crate) async fn update<T, F>(
    etcd: &Etcd,
    key: &str,
    what: &str,
    mut change: F,
) -> Result<Option<T>, StoreError>
where
    T: Serialize + DeserializeOwned,
    F: FnMut(&mut T),
{
    for attempt in 0..MAX_TRIES {
        let Some(mut cur) = get::<T>(etcd, key).await? else {
            return Ok(None);
        };
        change(&mut cur.row);
        let value = encode(what, &cur.row)?;
        if commit(etcd, vec![unchanged(key, cur.rev)], vec![put(key, &value)]).await? {
            return Ok(Some(cur.row));
        }
        pause(attempt).await;
    }
    Err(contended(what))
}

/// The error when other writers kept winning for [`MAX_TRIES`] tries.
pub(crate) fn contended(what: &str) -> StoreError {
    StoreError::Unavailable(format!(
        "{what}: gave up after {MAX_TRIES} tries, other writers kept changing it"
    ))
}

/// A short random wait before another try, so contenders spread out.
pub(crate) async fn pause(attempt: usize) {
    let cap = 2u128 << attempt.min(5); // 2..64 ms
    let ms = uuid::Uuid::new_v4().as_u128() % cap;
    tokio::time::sleep(Duration::from_millis(ms as u64)).await;
}

/// Checks an id or workspace name before it becomes part of a key.
pub(crate) fn id(what: &str, value: &str) -> Result<(), StoreError> {
    super::keys::check_name(what, value)
}
