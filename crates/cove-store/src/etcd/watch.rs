//! A prefix watch that survives dropped connections and compaction.
//!
//! It first lists the prefix (a Get at one revision R) and delivers that as a
//! [`WatchEvent::Snapshot`], then watches from R+1. After every event it remembers the
//! event's revision; when the stream breaks (a member dies, a partition, a leader loss) it
//! watches again from last+1 on any member, so nothing is missed or repeated. If that
//! revision has been compacted away, etcd refuses with a compact revision: the watcher lists
//! again and delivers a fresh Snapshot, which replaces everything the consumer knew. So the
//! consumer always holds a state that was true at some revision, plus the events after it.

use std::time::Duration;

use etcd_client::{EventType, GetOptions, WatchOptions};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::client::{one_line, Etcd};
use crate::StoreError;

/// What a [`PrefixWatch`] delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// Every key under the prefix at `revision`; replaces what the consumer held.
    Snapshot {
        revision: i64,
        items: Vec<(String, Vec<u8>)>,
    },
    Put {
        key: String,
        value: Vec<u8>,
        revision: i64,
    },
    Delete {
        key: String,
        revision: i64,
    },
}

/// A running watch; stops when dropped.
pub struct PrefixWatch {
    events: mpsc::Receiver<WatchEvent>,
    task: JoinHandle<()>,
}

impl PrefixWatch {
    /// Starts watching `prefix` (a key prefix built in `keys`), beginning with a Snapshot.
    pub fn start(etcd: &Etcd, prefix: &str) -> PrefixWatch {
        let (tx, events) = mpsc::channel(1024);
        let task = tokio::spawn(run(etcd.clone(), prefix.to_string(), tx));
        PrefixWatch { events, task }
    }

    /// The next event; None only if the watcher task ended (it does not end on errors).
    pub async fn next(&mut self) -> Option<WatchEvent> {
        self.events.recv().await
    }
}

impl Drop for PrefixWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why a watch stream ended.
enum End {
    /// The consumer is gone.
    Closed,
    /// The stream broke; watch again from the remembered revision.
    Broken(String),
    /// The remembered revision was compacted: list again.
    Compacted(i64),
}

async fn run(etcd: Etcd, prefix: String, tx: mpsc::Sender<WatchEvent>) {
    let mut next: Option<i64> = None;
    let mut backoff = Duration::from_millis(50);
    loop {
        let from = match next {
            Some(rev) => rev,
            None => match list(&etcd, &prefix).await {
                Ok((revision, items)) => {
                    if tx
                        .send(WatchEvent::Snapshot { revision, items })
                        .await
                        .is_err()
                    {
                        return;
                    }
                    next = Some(revision + 1);
                    revision + 1
                }
                Err(e) => {
                    tracing::warn!(%prefix, error = %e, "watch: cannot list, retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            },
        };
        match stream(&etcd, &prefix, from, &tx, &mut next).await {
            End::Closed => return,
            End::Compacted(at) => {
                tracing::info!(%prefix, from, compacted = at, "watch: revision compacted, listing again");
                next = None;
                backoff = Duration::from_millis(50);
            }
            End::Broken(why) => {
                tracing::debug!(%prefix, from, error = %why, "watch: stream broke, resuming");
                // A stream that delivered something was healthy: start the backoff over.
                if next != Some(from) {
                    backoff = Duration::from_millis(50);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Every key under `prefix`, and the revision they were read at.
async fn list(etcd: &Etcd, prefix: &str) -> Result<(i64, Vec<(String, Vec<u8>)>), StoreError> {
    let resp = etcd
        .call(|mut c| {
            let prefix = prefix.to_string();
            async move { c.get(prefix, Some(GetOptions::new().with_prefix())).await }
        })
        .await?;
    let revision = resp
        .header()
        .map(|h| h.revision())
        .ok_or_else(|| StoreError::Etcd("list answer without a header".into()))?;
    let items = resp
        .kvs()
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(kv.key()).into_owned(),
                kv.value().to_vec(),
            )
        })
        .collect();
    Ok((revision, items))
}

/// Watches from `from`, delivering events and advancing `next` past each one.
async fn stream(
    etcd: &Etcd,
    prefix: &str,
    from: i64,
    tx: &mpsc::Sender<WatchEvent>,
    next: &mut Option<i64>,
) -> End {
    let options = WatchOptions::new().with_prefix().with_start_revision(from);
    let opened = tokio::time::timeout(
        etcd.config().request_timeout,
        etcd.client().watch(prefix, Some(options)),
    )
    .await;
    let mut watch = match opened {
        Ok(Ok(w)) => w,
        Ok(Err(e)) => return End::Broken(one_line(&e)),
        Err(_) => return End::Broken("watch not opened in time".into()),
    };
    loop {
        let resp = match watch.message().await {
            Ok(Some(resp)) => resp,
            Ok(None) => return End::Broken("stream ended".into()),
            Err(e) => return End::Broken(one_line(&e)),
        };
        if resp.compact_revision() != 0 {
            return End::Compacted(resp.compact_revision());
        }
        if resp.canceled() {
            return End::Broken(format!("canceled: {}", resp.cancel_reason()));
        }
        // All events of one revision arrive in one answer, so resuming after the last
        // revision of an answer neither skips nor repeats.
        let mut last = None;
        for event in resp.events() {
            let Some(kv) = event.kv() else { continue };
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            let revision = kv.mod_revision();
            let out = match event.event_type() {
                EventType::Put => WatchEvent::Put {
                    key,
                    value: kv.value().to_vec(),
                    revision,
                },
                EventType::Delete => WatchEvent::Delete { key, revision },
            };
            if tx.send(out).await.is_err() {
                return End::Closed;
            }
            last = Some(revision);
        }
        if let Some(revision) = last {
            *next = Some(revision + 1);
        }
    }
}
