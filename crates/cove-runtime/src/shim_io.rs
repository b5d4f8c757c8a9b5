//! The shim's side of the container's stdout/stderr: a pipe whose write end the runtime hands
//! to the container and whose read end the shim copies into the [`RotatingLog`], so the log
//! stays within its cap whether or not the daemon runs.
//!
//! A slow shim slows the container down (the pipe fills and its writes wait), like Docker's
//! and containerd's shims; it never loses output. Std + libc only: the shim is single-threaded.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::exit::pidfd_open;
use crate::log_files::RotatingLog;

/// The pipe's size: the kernel's default is 64 KiB; a bigger pipe means fewer wake-ups of the
/// shim and of a container writing in bursts (kernel memory, not the shim's).
const PIPE_SIZE: libc::c_int = 256 * 1024;
/// Bytes copied per read: the shim's one buffer (its RSS while copying).
const CHUNK: usize = 64 * 1024;
/// How long the shim keeps draining the pipe after the container's init exited, waiting for
/// the last writers (e.g. runsc's) to close it.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The container's output pipe: `read` stays with the shim (close-on-exec, so the runtime does
/// not inherit it), `write` becomes the runtime's stdout and stderr.
pub(crate) struct OutputPipe {
    pub read: File,
    pub write: OwnedFd,
}

pub(crate) fn output_pipe() -> io::Result<OutputPipe> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: F_SETPIPE_SZ on a pipe we own; on failure the pipe keeps its default size.
    unsafe { libc::fcntl(read.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE) };
    Ok(OutputPipe {
        read: File::from(read),
        write,
    })
}

/// Copies the pipe into `log` until every writer has closed it or process `init_pid` has
/// exited. Write errors (a full host disk) drop that chunk: the container is never blocked on
/// the log's disk.
pub(crate) fn copy_until_exit(pipe: &mut File, log: &mut RotatingLog, init_pid: i32) {
    // Readable once init has exited. Without it (pidfd needs Linux 5.3), copy until EOF.
    let pidfd = pidfd_open(init_pid);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let mut fds = [
            libc::pollfd {
                fd: pipe.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: pidfd.as_ref().map_or(-1, |f| f.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of two pollfds that outlives the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if fds[0].revents != 0 && !copy_once(pipe, log, &mut buf) {
            return; // EOF: no writer left.
        }
        if fds[1].revents != 0 && fds[0].revents == 0 {
            return; // init exited and the pipe has nothing buffered right now.
        }
    }
}

/// After init's exit: copies what is left in the pipe until EOF (every writer gone) or
/// [`DRAIN_TIMEOUT`], so output written just before the exit is in the log before the exit is
/// recorded.
pub(crate) fn drain(pipe: &mut File, log: &mut RotatingLog) {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let mut fds = [libc::pollfd {
            fd: pipe.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
        // SAFETY: `fds` is a valid array of one pollfd that outlives the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 || !copy_once(pipe, log, &mut buf) {
            return;
        }
    }
}

/// One read from the (readable) pipe into the log; false at EOF or on a read error.
fn copy_once(pipe: &mut File, log: &mut RotatingLog, buf: &mut [u8]) -> bool {
    match pipe.read(buf) {
        Ok(0) => false,
        Ok(n) => {
            let _ = log.write(&buf[..n]);
            true
        }
        Err(e) => e.kind() == io::ErrorKind::Interrupted,
    }
}
