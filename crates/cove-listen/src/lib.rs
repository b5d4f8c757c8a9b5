//! `cove-listen`: the connection guard shared by the gateway and the API listeners.
//!
//! One hostile client must not lock everyone else out by opening connections and sending
//! nothing (or trickling). Every accepted connection is registered in [`Connections`] with
//! its phase and the time it last made progress:
//! - **fresh**: accepted, no complete request head yet (TLS handshake included); closed
//!   [`Limits::first_request_timeout`] after accept;
//! - **busy**: a request in flight (its response body still streaming counts); never shed;
//! - **idle**: a keep-alive connection between requests; closed after
//!   [`Limits::idle_timeout`];
//! - **upgraded**: answered `101` (WebSocket, `Upgrade:`); never shed, counted until its
//!   socket closes.
//!
//! At [`Limits::max_connections`] a new connection is admitted by closing the oldest fresh
//! or idle one, so accept never blocks; it is refused only when every slot is busy or
//! upgraded. One client address may hold at most [`Limits::max_pending_per_address`] fresh
//! connections: past that its own oldest fresh one is closed (once it is
//! [`PENDING_GRACE`] old, so a burst of real requests not yet parsed is not cut).
//!
//! Map: [`limits`] (the knobs and their defaults), `table` (the bookkeeping, no I/O),
//! [`registry`] ([`Connections`], the reaper, per-connection handles), [`tracked`] (the
//! socket wrapper that holds a slot for the socket's life, and the service and body
//! wrappers that mark requests), [`accept`] (the accept loop both listeners run).

pub mod accept;
pub mod limits;
pub mod registry;
mod table;
pub mod tracked;

pub use accept::accept_loop;
pub use limits::{Limits, PENDING_GRACE};
pub use registry::{Admitted, Conn, Connections, Slot};
pub use table::Phase;
pub use tracked::{TrackedBody, TrackedIo, TrackedService};
