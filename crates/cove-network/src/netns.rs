//! Persistent network namespaces as bind-mounted files under `<data_dir>/netns/`.
//!
//! The namespace juggling, and why it is done this way:
//! - A network namespace lives as long as something references it: a process/thread in it, an open fd to it, a
//!   socket created in it, or a bind mount of its nsfs file. We keep it alive with a bind mount of
//!   `/proc/thread-self/ns/net` onto `<data_dir>/netns/<id>`; runc then joins it by path.
//! - `unshare(CLONE_NEWNET)` moves only the calling *thread* into a fresh namespace. Doing that on a tokio worker
//!   would leave the worker (and every task later scheduled on it) in the pod's namespace, so it runs on a fresh
//!   std thread that exits right afterwards: the thread's membership ends with it, the mount keeps the namespace.
//! - Before exiting, that thread opens a netlink socket: a socket belongs to the namespace it was created in,
//!   whatever thread later uses it, so the async code configures the pod's side (lo, eth0, route) through it from
//!   ordinary tokio tasks, without ever entering the namespace. The socket also pins the namespace; the caller
//!   drops it (aborts the connection task) once configured.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use tokio::task::JoinHandle;

use crate::NetworkError;

/// A netlink connection whose socket lives inside a pod's namespace.
pub(crate) struct NsNetlink {
    pub handle: rtnetlink::Handle,
    task: JoinHandle<()>,
}

impl Drop for NsNetlink {
    fn drop(&mut self) {
        // Dropping the connection future closes the socket, which releases its hold on the namespace.
        self.task.abort();
    }
}

/// Creates a new network namespace bind-mounted at `path` and returns a netlink connection into it.
///
/// On error nothing is left behind (no file, no mount).
pub(crate) async fn create(path: &Path) -> Result<NsNetlink, NetworkError> {
    let rt = tokio::runtime::Handle::current();
    let target = path.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("cove-netns".into())
        .spawn(move || {
            let result = create_on_this_thread(&target, &rt);
            // Never leave a half-made namespace file behind (but a leftover we refused to reuse is not ours).
            if let Err(e) = &result {
                if !matches!(e, NetworkError::NetnsExists(_)) {
                    let _ = remove(&target);
                }
            }
            let _ = tx.send(result);
            // The thread exits here, leaving the namespace; the bind mount (and the socket) keep it alive.
        })
        .map_err(|e| NetworkError::io("spawning the netns thread", e))?;
    rx.await
        .map_err(|_| NetworkError::io("netns thread", std::io::Error::other("thread died")))?
}

/// Runs on a dedicated, short-lived thread: see the module doc.
fn create_on_this_thread(
    path: &PathBuf,
    rt: &tokio::runtime::Handle,
) -> Result<NsNetlink, NetworkError> {
    // The mount point must exist as a file; create_new refuses to reuse a leftover.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => NetworkError::NetnsExists(path.clone()),
            _ => NetworkError::io(format!("creating {}", path.display()), e),
        })?;
    // Only this thread moves into the new namespace (see module doc).
    unshare(CloneFlags::CLONE_NEWNET).map_err(|e| NetworkError::ns("unshare(CLONE_NEWNET)", e))?;
    // /proc/thread-self, not /proc/self: /proc/self/ns/net is the main thread's namespace, not ours.
    mount(
        Some("/proc/thread-self/ns/net"),
        path.as_path(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| NetworkError::ns(format!("bind-mounting netns on {}", path.display()), e))?;
    // The socket is created here, inside the new namespace; registering it with the reactor needs a runtime
    // context, which entering the handle provides without running anything on this thread.
    let _guard = rt.enter();
    let (conn, handle, _) = rtnetlink::new_connection()
        .map_err(|e| NetworkError::io("opening netlink inside the netns", e))?;
    let task = rt.spawn(conn);
    Ok(NsNetlink { handle, task })
}

/// Unmounts and deletes a namespace file. Idempotent: a missing mount or file is fine.
pub(crate) fn remove(path: &Path) -> Result<(), NetworkError> {
    // MNT_DETACH: succeed even if something still has the mount busy; the namespace itself goes away once the
    // last process/fd/socket referencing it is gone.
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
        Err(e) => {
            return Err(NetworkError::ns(
                format!("unmounting {}", path.display()),
                e,
            ))
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetworkError::io(format!("removing {}", path.display()), e)),
    }
}
