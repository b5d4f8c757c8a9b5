//! The accept loop both listeners run: admit through [`Connections`], serve each
//! connection in its own task, drop it when it is shed or expires.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::Instrument;

use crate::registry::{Admitted, Conn, Connections};
use crate::tracked::TrackedIo;

/// Accepts on `listener` until `stop` changes (or its sender is gone), never blocking on
/// a full registry: a connection admitted by [`Connections::admit`] runs
/// `serve(socket, peer, conn)` in its own task, which is dropped (closing the socket)
/// when the registry closes the connection; a refused one is closed at once.
pub async fn accept_loop<F, Fut>(
    listener: &TcpListener,
    conns: &Connections,
    mut stop: watch::Receiver<bool>,
    serve: F,
) where
    F: Fn(TrackedIo<TcpStream>, SocketAddr, Conn) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.changed() => return,
            r = listener.accept() => match r {
                Ok(pair) => pair,
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning; never stop serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(Admitted { conn, slot, closed }) = conns.admit(peer) else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let served = serve(TrackedIo::new(stream, slot), peer, conn);
        let span = tracing::debug_span!("connection", %peer);
        tokio::spawn(
            async move {
                tokio::select! {
                    _ = served => {}
                    _ = closed => tracing::debug!("closed: idle past its deadline or shed for a new one"),
                }
            }
            .instrument(span),
        );
    }
}
