//! A node's lease: granting it, keeping it alive, and the self-fence deadline.
//!
//! etcd expires a lease on the server's clock, some time after the last keep-alive it
//! *received*. The node cannot know when that was, but it knows when it *sent* its last
//! renewal that was answered: the server received it later, so it cannot expire the lease
//! before `sent + TTL`. The node fences itself (stops its containers) at
//! `sent + TTL - margin` by its own clock, which is therefore always before the cluster can
//! declare it LOST and replace its pods. The clock is CLOCK_BOOTTIME, which keeps counting
//! while the machine is suspended (CLOCK_MONOTONIC does not).

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{LeaseKeepAliveStream, LeaseKeeper};
use tokio::sync::watch;

use super::client::{one_line, Etcd};
use crate::StoreError;

/// A point on the node's boot clock (CLOCK_BOOTTIME): monotonic, and counting through
/// suspend, so a suspended node does not wake up believing its lease is still held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BootInstant(Duration);

impl BootInstant {
    pub fn now() -> BootInstant {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec through a valid pointer; CLOCK_BOOTTIME
        // exists on every Linux Cove supports (2.6.39+), so it cannot fail here.
        unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
        BootInstant(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    }

    /// How long until `self`, zero if it has passed.
    pub fn remaining(self) -> Duration {
        self.0.saturating_sub(BootInstant::now().0)
    }

    pub fn plus(self, d: Duration) -> BootInstant {
        BootInstant(self.0 + d)
    }

    pub fn minus(self, d: Duration) -> BootInstant {
        BootInstant(self.0.saturating_sub(d))
    }
}

/// What the node may do, as its lease stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// The lease is held. Unless renewed, the node must stop its containers at `fence_at`.
    Live { lease: i64, fence_at: BootInstant },
    /// The deadline passed without a renewal (or the lease is gone): stop every container.
    /// The cluster may give this node's pods to other nodes once the lease expires.
    Fenced { lease: i64 },
}

/// Lease timings, checked so a healthy node never fences itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Times {
    pub ttl: Duration,
    pub interval: Duration,
    pub margin: Duration,
}

/// Grants a lease; returns its id and the fence deadline it gives.
pub(crate) async fn grant(etcd: &Etcd, times: &Times) -> Result<(i64, BootInstant), StoreError> {
    let sent = BootInstant::now();
    let ttl_secs = times.ttl.as_secs() as i64;
    let resp = etcd
        .call(|mut c| async move { c.lease_grant(ttl_secs, None).await })
        .await?;
    if !resp.error().is_empty() {
        return Err(StoreError::Etcd(format!("lease grant: {}", resp.error())));
    }
    Ok((resp.id(), deadline(sent, resp.ttl(), times)))
}

/// The fence deadline a renewal sent at `sent` and answered with `ttl` seconds gives.
fn deadline(sent: BootInstant, ttl_secs: i64, times: &Times) -> BootInstant {
    // The server enforces the TTL it reports; never assume more than was asked for.
    let ttl = Duration::from_secs(ttl_secs.max(0) as u64).min(times.ttl);
    sent.plus(ttl).minus(times.margin)
}

/// Renews `lease` every interval until it is gone (expired or revoked), moving the fence
/// deadline forward after each answered renewal. Returns when the lease no longer exists.
pub(crate) async fn keep_alive(
    etcd: &Etcd,
    lease: i64,
    times: &Times,
    health: &watch::Sender<Health>,
) {
    let attempt = (etcd.config().request_timeout / 3).max(Duration::from_millis(300));
    let mut stream: Option<(LeaseKeeper, LeaseKeepAliveStream)> = None;
    let mut wait = times.interval;
    loop {
        tokio::time::sleep(wait).await;
        let sent = BootInstant::now();
        match tokio::time::timeout(attempt, renew(etcd, lease, times, &mut stream)).await {
            Ok(Ok(ttl)) if ttl > 0 => {
                let fence_at = deadline(sent, ttl, times);
                health.send_modify(|h| {
                    let later = match *h {
                        Health::Live {
                            lease: l,
                            fence_at: f,
                        } if l == lease => f.max(fence_at),
                        _ => fence_at,
                    };
                    *h = Health::Live {
                        lease,
                        fence_at: later,
                    };
                });
                wait = times.interval;
            }
            Ok(Ok(_)) => return,
            // The server answers TTL 0 for a lease it does not have; opening a stream on one
            // fails with "lease not found". Anything else may pass: try again soon.
            Ok(Err(e)) if one_line(&e).contains("lease not found") => {
                tracing::warn!(lease, error = %one_line(&e), "lease is gone");
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(lease, error = %one_line(&e), "lease keep-alive failed");
                stream = None;
                wait = times.interval.min(Duration::from_millis(500));
            }
            Err(_) => {
                tracing::warn!(lease, "lease keep-alive unanswered");
                stream = None;
                wait = times.interval.min(Duration::from_millis(500));
            }
        }
    }
}

/// One renewal on the open stream, or on a new one. Returns the TTL the server answered.
async fn renew(
    etcd: &Etcd,
    lease: i64,
    times: &Times,
    stream: &mut Option<(LeaseKeeper, LeaseKeepAliveStream)>,
) -> Result<i64, etcd_client::Error> {
    if let Some((keeper, answers)) = stream {
        keeper.keep_alive().await?;
        return match answers.message().await? {
            Some(answer) => Ok(answer.ttl()),
            None => Err(etcd_client::Error::LeaseKeepAliveError(
                "keep-alive stream closed".into(),
            )),
        };
    }
    // Opening the stream sends the first renewal and waits for its answer; the client keeps
    // that answer's TTL to itself, but it fails with "lease not found" when there is none.
    let opened = etcd.client().lease_keep_alive(lease).await?;
    *stream = Some(opened);
    Ok(times.ttl.as_secs() as i64)
}

/// Flips `health` to Fenced when its deadline passes. Sleeps in short steps and re-reads
/// the boot clock, so time spent suspended counts.
pub(crate) async fn fence_when_due(health: Arc<watch::Sender<Health>>) {
    let mut rx = health.subscribe();
    loop {
        let current = *rx.borrow_and_update();
        match current {
            Health::Live { fence_at, .. } => {
                let step = fence_at.remaining().min(Duration::from_millis(250));
                tokio::select! {
                    _ = tokio::time::sleep(step) => {
                        health.send_if_modified(|h| match *h {
                            Health::Live { lease, fence_at } if fence_at.remaining().is_zero() => {
                                tracing::warn!(lease, "lease not renewed in time: self-fencing");
                                *h = Health::Fenced { lease };
                                true
                            }
                            _ => false,
                        });
                    }
                    changed = rx.changed() => if changed.is_err() { return },
                }
            }
            Health::Fenced { .. } => {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times() -> Times {
        Times {
            ttl: Duration::from_secs(10),
            interval: Duration::from_secs(3),
            margin: Duration::from_secs(2),
        }
    }

    #[test]
    fn the_fence_deadline_counts_from_the_send_and_never_trusts_a_longer_ttl() {
        let sent = BootInstant::now();
        assert_eq!(
            deadline(sent, 10, &times()),
            sent.plus(Duration::from_secs(8))
        );
        // A server answering a longer TTL than asked (its minimum TTL) is not believed.
        assert_eq!(
            deadline(sent, 60, &times()),
            sent.plus(Duration::from_secs(8))
        );
        // A shorter one is: the server will expire the lease sooner.
        assert_eq!(
            deadline(sent, 5, &times()),
            sent.plus(Duration::from_secs(3))
        );
        // An expired lease (TTL 0 or less) gives a deadline already passed.
        assert!(deadline(sent, -1, &times()) <= sent);
    }

    #[test]
    fn the_boot_clock_moves_forward() {
        let a = BootInstant::now();
        std::thread::sleep(Duration::from_millis(5));
        let b = BootInstant::now();
        assert!(b > a);
        assert!(a.remaining().is_zero());
        assert!(b.plus(Duration::from_secs(60)).remaining() > Duration::from_secs(59));
    }
}
