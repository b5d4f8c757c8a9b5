//! The bookkeeping behind [`crate::Connections`]: every open connection's phase and age,
//! ordered so the oldest sheddable one is found at once. No I/O and no clock of its own
//! (callers pass `now`), so it is tested directly.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::limits::{Limits, PENDING_GRACE};

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Accepted, no complete request head yet.
    Fresh,
    /// At least one request in flight.
    Busy,
    /// Keep-alive, between requests.
    Idle,
    /// Switched protocols (WebSocket); a tunnel now.
    Upgraded,
}

/// One open connection. Dropping it drops `close`, which tells the connection's task to
/// drop the connection (and with it the socket).
pub(crate) struct Entry {
    peer: IpAddr,
    phase: Phase,
    /// When it entered its phase (accept time for fresh ones).
    since: Instant,
    in_flight: u32,
    _close: oneshot::Sender<()>,
}

/// Why a connection was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Full;

#[derive(Default)]
pub(crate) struct Table {
    next_id: u64,
    conns: HashMap<u64, Entry>,
    /// Fresh and idle connections, oldest first: the ones that may be shed.
    sheddable: BTreeSet<(Instant, u64)>,
    /// Fresh connections per client address, oldest first.
    fresh: HashMap<IpAddr, BTreeSet<(Instant, u64)>>,
}

impl Table {
    pub(crate) fn len(&self) -> usize {
        self.conns.len()
    }

    pub(crate) fn count(&self, phase: Phase) -> usize {
        self.conns.values().filter(|e| e.phase == phase).count()
    }

    /// Admits a connection from `peer`, first removing (into `closed`) the connections that
    /// must make room for it. Returns its id and the receiver that fires when it must close.
    pub(crate) fn admit(
        &mut self,
        peer: IpAddr,
        now: Instant,
        limits: &Limits,
        closed: &mut Vec<Entry>,
    ) -> Result<(u64, oneshot::Receiver<()>), Full> {
        let oldest_fresh = self
            .fresh
            .get(&peer)
            .filter(|set| set.len() >= limits.max_pending_per_address)
            .and_then(|set| set.first().copied());
        if let Some((since, id)) = oldest_fresh {
            if now.saturating_duration_since(since) >= PENDING_GRACE {
                closed.extend(self.remove(id));
            }
        }
        if self.conns.len() >= limits.max_connections {
            // An address at its pending limit pays for its own new connection; otherwise
            // the oldest fresh or idle connection anywhere does.
            let own = self
                .fresh
                .get(&peer)
                .filter(|set| set.len() >= limits.max_pending_per_address)
                .and_then(|set| set.first().copied());
            match own.or_else(|| self.sheddable.first().copied()) {
                Some((_, id)) => closed.extend(self.remove(id)),
                None => return Err(Full),
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let (tx, rx) = oneshot::channel();
        self.conns.insert(
            id,
            Entry {
                peer,
                phase: Phase::Fresh,
                since: now,
                in_flight: 0,
                _close: tx,
            },
        );
        self.sheddable.insert((now, id));
        self.fresh.entry(peer).or_default().insert((now, id));
        Ok((id, rx))
    }

    /// Forgets a connection; the returned entry, once dropped, closes it.
    pub(crate) fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.conns.remove(&id)?;
        self.unlist(id, &entry);
        Some(entry)
    }

    /// Takes `id` out of the sheddable and fresh sets.
    fn unlist(&mut self, id: u64, entry: &Entry) {
        self.sheddable.remove(&(entry.since, id));
        if entry.phase == Phase::Fresh {
            if let Some(set) = self.fresh.get_mut(&entry.peer) {
                set.remove(&(entry.since, id));
                if set.is_empty() {
                    self.fresh.remove(&entry.peer);
                }
            }
        }
    }

    pub(crate) fn request_started(&mut self, id: u64) {
        let Some(entry) = self.conns.remove(&id) else {
            return;
        };
        self.unlist(id, &entry);
        let mut entry = entry;
        entry.in_flight += 1;
        if entry.phase != Phase::Upgraded {
            entry.phase = Phase::Busy;
        }
        self.conns.insert(id, entry);
    }

    pub(crate) fn request_ended(&mut self, id: u64, now: Instant) {
        let Some(entry) = self.conns.get_mut(&id) else {
            return;
        };
        entry.in_flight = entry.in_flight.saturating_sub(1);
        if entry.in_flight == 0 && entry.phase == Phase::Busy {
            entry.phase = Phase::Idle;
            entry.since = now;
            self.sheddable.insert((now, id));
        }
    }

    pub(crate) fn upgraded(&mut self, id: u64) {
        if let Some(entry) = self.conns.get_mut(&id) {
            entry.phase = Phase::Upgraded;
        }
    }

    /// Removes (into `closed`) the fresh connections older than the first-request timeout
    /// and the idle ones older than the idle timeout.
    pub(crate) fn expire(&mut self, now: Instant, limits: &Limits, closed: &mut Vec<Entry>) {
        let shortest = limits.first_request_timeout.min(limits.idle_timeout);
        let mut expired = Vec::new();
        for &(since, id) in &self.sheddable {
            let age = now.saturating_duration_since(since);
            if age < shortest {
                break;
            }
            let limit = match self.conns.get(&id).map(|e| e.phase) {
                Some(Phase::Fresh) => limits.first_request_timeout,
                _ => limits.idle_timeout,
            };
            if age >= limit {
                expired.push(id);
            }
        }
        // Addresses over their pending limit (a burst admitted within the grace) are
        // trimmed back to it, oldest first, once those are past the grace.
        for set in self.fresh.values() {
            let excess = set.len().saturating_sub(limits.max_pending_per_address);
            expired.extend(
                set.iter()
                    .take(excess)
                    .take_while(|(since, _)| now.saturating_duration_since(*since) >= PENDING_GRACE)
                    .map(|&(_, id)| id),
            );
        }
        for id in expired {
            closed.extend(self.remove(id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn limits(max: usize, per_addr: usize) -> Limits {
        Limits {
            max_connections: max,
            max_pending_per_address: per_addr,
            first_request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
        }
    }

    fn admit(t: &mut Table, peer: IpAddr, now: Instant, l: &Limits) -> (u64, Vec<Entry>) {
        let mut closed = Vec::new();
        let (id, rx) = t.admit(peer, now, l, &mut closed).expect("admitted");
        std::mem::forget(rx);
        (id, closed)
    }

    #[test]
    fn full_table_sheds_the_oldest_idle_or_fresh_never_busy_or_upgraded() {
        let l = limits(4, 100);
        let t0 = Instant::now();
        let mut t = Table::default();
        let (busy, _) = admit(&mut t, A, t0, &l);
        t.request_started(busy);
        let (upgraded, _) = admit(&mut t, A, t0, &l);
        t.request_started(upgraded);
        t.upgraded(upgraded);
        t.request_ended(upgraded, t0);
        let (fresh, _) = admit(&mut t, B, t0 + Duration::from_secs(2), &l);
        let (idle, _) = admit(&mut t, B, t0 + Duration::from_secs(1), &l);
        t.request_started(idle);
        t.request_ended(idle, t0 + Duration::from_secs(3));
        assert_eq!(t.len(), 4);

        // The fresh one (since 2 s) is older than the idle one (idle since 3 s).
        let (_, closed) = admit(&mut t, A, t0 + Duration::from_secs(4), &l);
        assert_eq!(closed.len(), 1);
        assert!(!t.conns.contains_key(&fresh));
        let (_, closed) = admit(&mut t, A, t0 + Duration::from_secs(5), &l);
        assert_eq!(closed.len(), 1);
        assert!(!t.conns.contains_key(&idle));
        assert!(t.conns.contains_key(&busy) && t.conns.contains_key(&upgraded));
        assert_eq!(t.count(Phase::Upgraded), 1);
    }

    #[test]
    fn full_of_busy_connections_refuses() {
        let l = limits(2, 100);
        let now = Instant::now();
        let mut t = Table::default();
        for _ in 0..2 {
            let (id, _) = admit(&mut t, A, now, &l);
            t.request_started(id);
        }
        let mut closed = Vec::new();
        assert_eq!(t.admit(B, now, &l, &mut closed).map(|_| ()), Err(Full));
        assert!(closed.is_empty());
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn one_address_sheds_its_own_oldest_fresh_after_the_grace() {
        let l = limits(100, 2);
        let t0 = Instant::now();
        let mut t = Table::default();
        let (b, _) = admit(&mut t, B, t0, &l);
        let (a1, _) = admit(&mut t, A, t0, &l);
        let (a2, _) = admit(&mut t, A, t0, &l);
        // Within the grace: a burst, admitted over the per-address limit.
        let (_, closed) = admit(&mut t, A, t0 + Duration::from_millis(10), &l);
        assert!(closed.is_empty());
        // Later, A's oldest fresh one makes room; B's is untouched.
        let (_, closed) = admit(&mut t, A, t0 + Duration::from_secs(2), &l);
        assert_eq!(closed.len(), 1);
        assert!(!t.conns.contains_key(&a1));
        assert!(t.conns.contains_key(&a2) && t.conns.contains_key(&b));
        // The reaper trims A back to its limit; B keeps its own.
        t.admit(A, t0 + Duration::from_secs(2), &l, &mut Vec::new())
            .map(std::mem::forget)
            .unwrap();
        assert_eq!(t.fresh[&A].len(), 3);
        let mut closed = Vec::new();
        t.expire(t0 + Duration::from_secs(3), &l, &mut closed);
        assert_eq!(closed.len(), 1);
        assert_eq!(t.fresh[&A].len(), 2);
        assert_eq!(t.fresh[&B].len(), 1);
        // A connection that has made a request no longer counts as fresh.
        let (_, a4) = *t.fresh[&A].first().unwrap();
        t.request_started(a4);
        assert_eq!(t.fresh[&A].len(), 1);
    }

    #[test]
    fn a_full_table_makes_an_address_over_its_limit_pay_first() {
        let l = limits(3, 2);
        let t0 = Instant::now();
        let mut t = Table::default();
        let (b, _) = admit(&mut t, B, t0, &l);
        let (a1, _) = admit(&mut t, A, t0 + Duration::from_millis(1), &l);
        admit(&mut t, A, t0 + Duration::from_millis(2), &l);
        let (_, closed) = admit(&mut t, A, t0 + Duration::from_millis(3), &l);
        assert_eq!(closed.len(), 1);
        assert!(!t.conns.contains_key(&a1), "A's oldest, not B's older one");
        assert!(t.conns.contains_key(&b));
    }

    #[test]
    fn expiry_closes_fresh_and_idle_after_their_timeouts() {
        let l = limits(100, 100);
        let t0 = Instant::now();
        let mut t = Table::default();
        let (fresh, _) = admit(&mut t, A, t0, &l);
        let (idle, _) = admit(&mut t, A, t0, &l);
        t.request_started(idle);
        t.request_ended(idle, t0 + Duration::from_secs(1));
        let (busy, _) = admit(&mut t, A, t0, &l);
        t.request_started(busy);

        let mut closed = Vec::new();
        t.expire(t0 + Duration::from_secs(9), &l, &mut closed);
        assert!(closed.is_empty());
        t.expire(t0 + Duration::from_secs(10), &l, &mut closed);
        assert_eq!(closed.len(), 1);
        assert!(!t.conns.contains_key(&fresh));
        t.expire(t0 + Duration::from_secs(30), &l, &mut closed);
        assert_eq!(closed.len(), 1, "idle for 29 s of 30");
        t.expire(t0 + Duration::from_secs(31), &l, &mut closed);
        assert_eq!(closed.len(), 2);
        t.expire(t0 + Duration::from_secs(3600), &l, &mut closed);
        assert_eq!(closed.len(), 2, "a busy connection never expires");
        assert_eq!(t.len(), 1);
        assert!(t.fresh.is_empty() && t.sheddable.is_empty());
    }
}
