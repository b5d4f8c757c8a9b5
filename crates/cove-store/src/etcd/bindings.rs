//! Bindings: which node runs a pod, and the fencing token that goes with it.
//!
//! A binding is created by a transaction "create if absent" (`create_revision == 0`), so of
//! any number of concurrent callers exactly one wins; the others get the winner's binding.
//! The binding's mod_revision is its fencing token: every write a node makes about the pod
//! compares it, and a rebinding (failover) compares the old one, so once a pod is rebound
//! nothing its former node sends can land. A revision is never reused, so a node that comes
//! back after any pause cannot pass the compare.
//!
//! Each binding carries the claimant's nonce. A retried transaction whose first try did land
//! (the answer was lost) then finds its own nonce and reports the win, not a loss.

use etcd_client::{Compare, CompareOp, KeyValue, Txn, TxnOp, TxnOpResponse, TxnResponse};
use serde::{Deserialize, Serialize};

use super::client::Etcd;
use super::keys;
use crate::StoreError;

/// The value stored at `bindings/<pod>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingRow {
    pub pod: String,
    pub node: String,
    /// A nonce unique to the call that created this binding.
    pub claim: String,
    pub bound_ms: i64,
}

/// A binding as read from etcd, with its fencing token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub row: BindingRow,
    /// The key's mod_revision: the fencing token.
    pub revision: i64,
}

impl Binding {
    pub fn fence(&self) -> Fence {
        Fence {
            pod: self.row.pod.clone(),
            revision: self.revision,
        }
    }
}

/// What a node-side write carries: the binding it acts under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub pod: String,
    pub revision: i64,
}

/// The result of [`bind_if_absent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindOutcome {
    /// This call created the binding.
    Won(Binding),
    /// Another call had bound the pod first; this is its binding.
    Lost(Binding),
}

impl BindOutcome {
    pub fn binding(&self) -> &Binding {
        match self {
            BindOutcome::Won(b) | BindOutcome::Lost(b) => b,
        }
    }
}

/// Binds `pod` to `node` unless it is bound already.
pub async fn bind_if_absent(etcd: &Etcd, pod: &str, node: &str) -> Result<BindOutcome, StoreError> {
    keys::check_name("pod id", pod)?;
    keys::check_name("node name", node)?;
    let key = etcd.keys().binding(pod);
    let row = new_row(pod, node);
    let value = to_json(&row)?;
    let resp = etcd
        .call(|mut c| {
            let txn = Txn::new()
                .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(key.as_str(), value.as_str(), None)])
                .or_else([TxnOp::get(key.as_str(), None)]);
            async move { c.txn(txn).await }
        })
        .await?;
    if resp.succeeded() {
        return Ok(BindOutcome::Won(Binding {
            row,
            revision: txn_revision(&resp)?,
        }));
    }
    let current = first_kv(&resp)
        .as_ref()
        .map(decode)
        .transpose()?
        .ok_or_else(|| StoreError::Etcd(format!("binding of pod {pod} vanished while read")))?;
    if current.row.claim == row.claim {
        Ok(BindOutcome::Won(current))
    } else {
        Ok(BindOutcome::Lost(current))
    }
}

/// Moves a pod to `node` (failover, drain), only if its binding is still `from`.
pub async fn rebind(etcd: &Etcd, from: &Fence, node: &str) -> Result<Binding, StoreError> {
    keys::check_name("node name", node)?;
    let key = etcd.keys().binding(&from.pod);
    let row = new_row(&from.pod, node);
    let value = to_json(&row)?;
    let resp = etcd
        .call(|mut c| {
            let txn = Txn::new()
                .when([Compare::mod_revision(
                    key.as_str(),
                    CompareOp::Equal,
                    from.revision,
                )])
                .and_then([TxnOp::put(key.as_str(), value.as_str(), None)])
                .or_else([TxnOp::get(key.as_str(), None)]);
            async move { c.txn(txn).await }
        })
        .await?;
    if resp.succeeded() {
        return Ok(Binding {
            row,
            revision: txn_revision(&resp)?,
        });
    }
    match first_kv(&resp).as_ref().map(decode).transpose()? {
        Some(current) if current.row.claim == row.claim => Ok(current),
        current => Err(stale(from, current.as_ref())),
    }
}

/// Removes a pod's binding, only if it is still `fence`.
pub async fn unbind(etcd: &Etcd, fence: &Fence) -> Result<(), StoreError> {
    let key = etcd.keys().binding(&fence.pod);
    fenced(etcd, fence, TxnOp::delete(key, None)).await
}

/// The pod's binding, if it has one.
pub async fn get_binding(etcd: &Etcd, pod: &str) -> Result<Option<Binding>, StoreError> {
    keys::check_name("pod id", pod)?;
    let key = etcd.keys().binding(pod);
    let resp = etcd
        .call(|mut c| {
            let key = key.clone();
            async move { c.get(key, None).await }
        })
        .await?;
    resp.kvs().first().map(decode).transpose()
}

/// Puts `key` only while the pod's binding is still `fence`. A repeat is harmless: the put
/// does not change the binding, so a retried put passes the same compare.
pub async fn fenced_put(
    etcd: &Etcd,
    key: &str,
    value: &[u8],
    fence: &Fence,
) -> Result<(), StoreError> {
    fenced(etcd, fence, TxnOp::put(key, value, None)).await
}

/// Deletes `key` only while the pod's binding is still `fence`.
pub async fn fenced_delete(etcd: &Etcd, key: &str, fence: &Fence) -> Result<(), StoreError> {
    fenced(etcd, fence, TxnOp::delete(key, None)).await
}

async fn fenced(etcd: &Etcd, fence: &Fence, op: TxnOp) -> Result<(), StoreError> {
    keys::check_name("pod id", &fence.pod)?;
    let bkey = etcd.keys().binding(&fence.pod);
    let resp = etcd
        .call(|mut c| {
            let txn = Txn::new()
                .when([Compare::mod_revision(
                    bkey.as_str(),
                    CompareOp::Equal,
                    fence.revision,
                )])
                .and_then([op.clone()])
                .or_else([TxnOp::get(bkey.as_str(), None)]);
            async move { c.txn(txn).await }
        })
        .await?;
    if resp.succeeded() {
        return Ok(());
    }
    let current = first_kv(&resp).as_ref().map(decode).transpose()?;
    Err(stale(fence, current.as_ref()))
}

fn stale(fence: &Fence, current: Option<&Binding>) -> StoreError {
    StoreError::Fenced(match current {
        Some(b) => format!(
            "pod {} was bound at revision {}, it is now bound to node {} at revision {}",
            fence.pod, fence.revision, b.row.node, b.revision
        ),
        None => format!(
            "pod {} was bound at revision {}, it is no longer bound",
            fence.pod, fence.revision
        ),
    })
}

fn new_row(pod: &str, node: &str) -> BindingRow {
    BindingRow {
        pod: pod.to_string(),
        node: node.to_string(),
        claim: uuid::Uuid::new_v4().to_string(),
        bound_ms: crate::now_ms(),
    }
}

fn to_json(row: &BindingRow) -> Result<String, StoreError> {
    serde_json::to_string(row).map_err(|e| StoreError::Corrupt(format!("binding: {e}")))
}

fn decode(kv: &KeyValue) -> Result<Binding, StoreError> {
    let row: BindingRow = serde_json::from_slice(kv.value())
        .map_err(|e| StoreError::Corrupt(format!("{}: {e}", String::from_utf8_lossy(kv.key()))))?;
    Ok(Binding {
        row,
        revision: kv.mod_revision(),
    })
}

/// The revision a successful transaction wrote at (the mod_revision of its puts).
fn txn_revision(resp: &TxnResponse) -> Result<i64, StoreError> {
    resp.header()
        .map(|h| h.revision())
        .ok_or_else(|| StoreError::Etcd("transaction answer without a header".into()))
}

/// The key-value a transaction's `or_else` get returned, if any.
fn first_kv(resp: &TxnResponse) -> Option<KeyValue> {
    resp.op_responses().into_iter().find_map(|r| match r {
        TxnOpResponse::Get(g) => g.kvs().first().cloned(),
        _ => None,
    })
}
