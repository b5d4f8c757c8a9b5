//! The idle timer: a pod stops `keep_warm_seconds` after its last gateway
//! connection ended (or after it started, if none came); an open connection
//! keeps it alive; `-1` never stops it.

use std::time::Duration;

use cove_store::now_ms;
use tracing::{info, warn};

use crate::Lifecycle;

/// Whether a pod idle since `idle_since_ms` (and whose last connection ended
/// at `last_end_ms`, if any) has passed its keep-warm deadline at `now_ms`.
pub fn idle_deadline_passed(
    now_ms: i64,
    idle_since_ms: i64,
    last_end_ms: Option<i64>,
    active: usize,
    keep_warm_seconds: i64,
) -> bool {
    if keep_warm_seconds < 0 || active > 0 {
        return false;
    }
    let since = last_end_ms.map_or(idle_since_ms, |l| l.max(idle_since_ms));
    now_ms - since >= keep_warm_seconds.saturating_mul(1000)
}

impl Lifecycle {
    /// Runs the idle timer until the process ends: checks every live
    /// container twice a second and stops the idle ones.
    pub async fn run_keep_warm(&self) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut persisted: std::collections::HashMap<String, i64> = Default::default();
        loop {
            tick.tick().await;
            let now = now_ms();
            let live: Vec<_> = self
                .live()
                .iter()
                .map(|(id, l)| (id.clone(), l.clone()))
                .collect();
            persisted.retain(|id, _| live.iter().any(|(l, _)| l == id));
            for (id, l) in live {
                let last = l.activity.last_end_ms();
                // Keep the last connection's end on disk so a restarted daemon
                // keeps the same deadline.
                if let Some(last) = last {
                    if persisted.get(&id) != Some(&last) {
                        if let Err(e) = self.inner.store.set_last_active(&id, last).await {
                            warn!(error = %e, "cannot persist last activity");
                        }
                        persisted.insert(id.clone(), last);
                    }
                }
                if idle_deadline_passed(
                    now,
                    l.idle_since_ms,
                    last,
                    l.activity.active(),
                    l.keep_warm_seconds,
                ) {
                    if l.deployment_id.is_some() && !self.unroute_idle(&l) {
                        continue;
                    }
                    // Take it out of the timer's view at once so it is stopped once.
                    if let Some(entry) = self.live().get_mut(&id) {
                        entry.keep_warm_seconds = -1;
                    }
                    let this = self.clone();
                    let reason = format!("idle for {}s", l.keep_warm_seconds);
                    tokio::spawn(async move {
                        info!(container = %id, "stopping idle container");
                        if let Err(e) = this.stop(&id, &reason).await {
                            warn!(container = %id, error = %e, "idle stop failed");
                        }
                    });
                }
            }
        }
    }
}

impl Lifecycle {
    /// Takes an idle deployment container out of the route table before it is
    /// stopped, so the next request wakes a fresh one instead of reaching it as
    /// it ends. False (and routed again) if a request got in meanwhile.
    fn unroute_idle(&self, l: &crate::Live) -> bool {
        let routes = &self.inner.routes;
        routes.remove_if_current(&l.route_key, &l.activity);
        if l.activity.active() == 0 {
            return true;
        }
        if routes.get(&l.route_key).is_none() {
            routes.insert(&l.route_key, l.target.clone());
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::idle_deadline_passed as passed;

    #[test]
    fn deadline_rules() {
        // No connection: counted from the start.
        assert!(!passed(10_000, 5_000, None, 0, 10));
        assert!(passed(15_000, 5_000, None, 0, 10));
        // An open connection keeps it alive however long.
        assert!(!passed(1_000_000, 5_000, None, 1, 10));
        // Counted from the end of the last connection.
        assert!(!passed(20_000, 5_000, Some(12_000), 0, 10));
        assert!(passed(22_000, 5_000, Some(12_000), 0, 10));
        // -1 never stops; 0 stops at once when idle.
        assert!(!passed(i64::MAX / 2, 0, None, 0, -1));
        assert!(passed(5_000, 5_000, None, 0, 0));
    }
}
