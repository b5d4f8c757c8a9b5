//! [`Connections`]: the shared registry of one listener group's connections, its reaper,
//! and the handles a connection's task holds.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::limits::Limits;
use crate::table::{Entry, Phase, Table};

struct Shared {
    name: &'static str,
    limits: Limits,
    table: Mutex<Table>,
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock leaves plain counters behind: still usable.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The connections of one listener, or of several sharing one cap (the gateway's HTTP
/// and HTTPS listeners). Cheap to clone.
#[derive(Clone)]
pub struct Connections {
    shared: Arc<Shared>,
}

/// A newly admitted connection: serve it on a [`crate::TrackedIo`] holding `slot`, mark its
/// requests through `conn`, and drop it when `closed` fires (it was shed or timed out).
pub struct Admitted {
    pub conn: Conn,
    pub slot: Slot,
    pub closed: oneshot::Receiver<()>,
}

impl Connections {
    /// A registry for a listener called `name` (in logs). Starts its reaper, which closes
    /// expired connections and ends when the registry and every connection are gone; so
    /// it must be called inside a tokio runtime.
    pub fn new(name: &'static str, limits: Limits) -> Self {
        let shared = Arc::new(Shared {
            name,
            limits,
            table: Mutex::new(Table::default()),
        });
        tokio::spawn(reap(Arc::downgrade(&shared)));
        Connections { shared }
    }

    /// The limits this registry enforces.
    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// Admits a connection from `peer`, closing older fresh or idle ones to make room;
    /// `None` when every slot is busy or upgraded (drop the socket).
    pub fn admit(&self, peer: SocketAddr) -> Option<Admitted> {
        let mut closed = Vec::new();
        let admitted =
            self.shared
                .table()
                .admit(peer.ip(), Instant::now(), &self.shared.limits, &mut closed);
        if !closed.is_empty() {
            tracing::debug!(listener = self.shared.name, %peer, shed = closed.len(), "closed old connections to admit a new one");
        }
        // Dropped outside the lock: each drop wakes the closed connection's task.
        drop(closed);
        match admitted {
            Ok((id, closed)) => {
                let conn = Conn {
                    shared: Arc::clone(&self.shared),
                    id,
                };
                Some(Admitted {
                    slot: Slot { conn: conn.clone() },
                    conn,
                    closed,
                })
            }
            Err(_) => {
                tracing::debug!(listener = self.shared.name, %peer, "connection refused: every slot is busy");
                None
            }
        }
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        self.shared.table().len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Open connections in `phase`.
    pub fn count(&self, phase: Phase) -> usize {
        self.shared.table().count(phase)
    }
}

/// Every reap interval, closes the connections past their deadline.
async fn reap(shared: Weak<Shared>) {
    let every = match shared.upgrade() {
        Some(s) => s.limits.reap_interval(),
        None => return,
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut closed: Vec<Entry> = Vec::new();
        shared
            .table()
            .expire(Instant::now(), &shared.limits, &mut closed);
        if !closed.is_empty() {
            tracing::debug!(
                listener = shared.name,
                closed = closed.len(),
                "closed connections idle past their deadline"
            );
        }
    }
}

/// A connection's handle for marking its requests. Cheap to clone.
#[derive(Clone)]
pub struct Conn {
    shared: Arc<Shared>,
    id: u64,
}

impl Conn {
    /// Marks a request in flight until the returned guard drops.
    pub fn request_started(&self) -> RequestGuard {
        self.shared.table().request_started(self.id);
        RequestGuard { conn: self.clone() }
    }

    /// Marks the connection upgraded: a tunnel, never shed.
    pub fn upgraded(&self) {
        self.shared.table().upgraded(self.id);
    }
}

/// A request in flight; when dropped (the response body is done or abandoned) the
/// connection becomes idle unless another request is in flight.
pub struct RequestGuard {
    conn: Conn,
}

impl RequestGuard {
    /// The connection this request belongs to.
    pub fn conn(&self) -> &Conn {
        &self.conn
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.conn
            .shared
            .table()
            .request_ended(self.conn.id, Instant::now());
    }
}

/// A connection's place in the registry, held by its socket ([`crate::TrackedIo`]): the
/// slot is freed when the socket closes, also after an upgrade hands the socket on.
pub struct Slot {
    conn: Conn,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let entry = self.conn.shared.table().remove(self.conn.id);
        drop(entry);
    }
}
