//! The limits one listener (or a group of listeners sharing a cap) enforces.

use std::time::Duration;

/// A fresh connection younger than this is not closed to make room for a newer one from
/// the same address: it may hold a real request the server has not parsed yet (a burst).
pub const PENDING_GRACE: Duration = Duration::from_secs(1);

/// Connection limits; see the crate docs for what each one does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at most (busy, idle, fresh and upgraded together).
    pub max_connections: usize,
    /// Fresh (no request yet) connections one client address may hold.
    pub max_pending_per_address: usize,
    /// Time from accept to a complete first request head, TLS handshake included.
    pub first_request_timeout: Duration,
    /// Time a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
}

impl Limits {
    /// The gateway's defaults: 8,192 connections (each proxied request also holds an
    /// upstream socket, so the gateway stays well under a 20,000 open-file limit), 2,048
    /// fresh per address (more than a burst of 1,000 real requests from one host).
    pub const GATEWAY: Limits = Limits {
        max_connections: 8192,
        max_pending_per_address: 2048,
        first_request_timeout: Duration::from_secs(15),
        idle_timeout: Duration::from_secs(60),
    };

    /// The API's defaults: 1,024 connections, 256 fresh per address.
    pub const API: Limits = Limits {
        max_connections: 1024,
        max_pending_per_address: 256,
        first_request_timeout: Duration::from_secs(15),
        idle_timeout: Duration::from_secs(60),
    };

    /// How often the reaper looks for expired connections: a quarter of the shorter
    /// timeout, between 50 ms and 1 s.
    pub fn reap_interval(&self) -> Duration {
        (self.first_request_timeout.min(self.idle_timeout) / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(1))
    }
}
