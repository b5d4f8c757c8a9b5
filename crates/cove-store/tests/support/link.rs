//! A TCP link between a test's client and one etcd member that the test can cut.
//!
//! `cut` closes every connection through the link and refuses new ones (closes them on
//! accept), as a host whose network went away; `heal` lets connections through again. The
//! client and etcd on either side are the real ones: only the path between them breaks.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

pub struct Link {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Link {
    /// Listens on a free port of 127.0.0.1 and forwards every connection to `target`.
    pub async fn start(target: SocketAddr) -> Link {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind link");
        let addr = listener.local_addr().expect("link address");
        let (cut, _) = watch::channel(false);
        let task = tokio::spawn(accept(listener, target, cut.subscribe()));
        Link { addr, cut, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn heal(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every pump.
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, target: SocketAddr, cut: watch::Receiver<bool>) {
    let mut pumps = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                if *cut.borrow() {
                    drop(client);
                    continue;
                }
                pumps.spawn(pump(client, target, cut.clone()));
            }
            Some(_) = pumps.join_next(), if !pumps.is_empty() => {}
        }
    }
}

async fn pump(mut client: TcpStream, target: SocketAddr, mut cut: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = cut.wait_for(|c| *c) => {}
    }
}
