//! Tunnelling upgraded connections (WebSockets and any other `Upgrade:` protocol).
//!
//! The proxy forwards the upgrade request like any other; when the pod answers 101 both
//! sides are taken over from hyper and bytes are copied both ways until either closes.
//! The request's activity guard lives inside the tunnel task, so an open WebSocket counts as
//! an active request for keep-warm purposes.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tracing::Instrument;

use crate::activity::ActivityGuard;

/// Spawns the byte pump between the client's and the pod's upgraded connections.
pub fn spawn_tunnel(client: OnUpgrade, upstream: OnUpgrade, guard: ActivityGuard) {
    let span = tracing::info_span!("tunnel");
    tokio::spawn(
        async move {
            // Held until the tunnel ends, whatever way it ends.
            let _guard = guard;
            let (client, upstream) = match tokio::try_join!(client, upstream) {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::debug!(error = %e, "upgrade did not complete");
                    return;
                }
            };
            let mut client = TokioIo::new(client);
            let mut upstream = TokioIo::new(upstream);
            match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                Ok((up, down)) => tracing::debug!(up, down, "tunnel closed"),
                Err(e) => tracing::debug!(error = %e, "tunnel ended with error"),
            }
        }
        .instrument(span),
    );
}
