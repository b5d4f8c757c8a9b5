//! Exit status of a container as recorded by its shim in `<dir>/exit.json`, and waiting for a
//! shim that is not (necessarily) our child: `pidfd_open` works for any pid, so a daemon that
//! restarted can wait for containers started by its predecessor.

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::RuntimeError;

/// How a container ended. `code` is the exit status, or 128+signal when killed by a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    pub code: i32,
    pub signal: Option<i32>,
    pub oom_killed: bool,
}

pub(crate) const EXIT_FILE: &str = "exit.json";
pub(crate) const SHIM_PID_FILE: &str = "shim.pid";
pub(crate) const INIT_PID_FILE: &str = "init.pid";

/// Reads `<dir>/exit.json`; `None` if the shim has not written it (yet).
pub fn read_exit_file(dir: &Path) -> Option<ExitStatus> {
    let bytes = std::fs::read(dir.join(EXIT_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Writes `<dir>/exit.json` atomically: tmp file, fsync, rename, fsync of the directory.
pub(crate) fn write_exit_file(dir: &Path, status: &ExitStatus) -> std::io::Result<()> {
    let tmp = dir.join("exit.json.tmp");
    let json = serde_json::to_vec(status).map_err(std::io::Error::other)?;
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&json)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(EXIT_FILE))?;
    std::fs::File::open(dir)?.sync_all()
}

/// Reads a pid file written by the shim or runc (`shim.pid`, `init.pid`).
pub fn read_pid_file(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// True if `shim_pid` is a live (non-zombie) process whose command line mentions `id`;
/// guards against the pid having been reused by an unrelated process.
pub fn shim_is_alive(shim_pid: i32, id: &str) -> bool {
    live_with_arg(shim_pid, |arg| arg == id.as_bytes())
}

/// Like [`shim_is_alive`], but identifies the shim by its `dir` argument (compared after
/// canonicalizing, so `/data/x/` and `/data/x` match).
fn shim_of_dir_is_alive(shim_pid: i32, dir: &Path) -> bool {
    let want = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    live_with_arg(shim_pid, |arg| {
        let p = Path::new(std::ffi::OsStr::from_bytes(arg));
        p == dir || std::fs::canonicalize(p).is_ok_and(|c| c == want)
    })
}

/// True if `pid` is alive, not a zombie, and one of its argv entries satisfies `matches`.
fn live_with_arg(pid: i32, matches: impl Fn(&[u8]) -> bool) -> bool {
    if pid <= 0 {
        return false;
    }
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let Ok(cmdline) = std::fs::read(proc_dir.join("cmdline")) else {
        return false;
    };
    if !cmdline.split(|b| *b == 0).any(matches) {
        return false;
    }
    // "<pid> (<comm>) <state> ...": comm may contain spaces, so look after the last ')'.
    let stat = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z') | Some('X') | None)
}

/// Opens a pidfd for `pid`; `None` if the process no longer exists.
pub(crate) fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is shared.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the fd was just created by the kernel for us and nobody else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Registers a pidfd with tokio's reactor; it becomes readable when the process exits.
pub(crate) fn async_pidfd(fd: OwnedFd) -> Result<AsyncFd<OwnedFd>, RuntimeError> {
    // SAFETY: the AsyncFd takes ownership of the OwnedFd, so the fd stays open and refers to
    // the same pidfd for the AsyncFd's whole lifetime.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
        .map_err(|e| RuntimeError::io("registering a pidfd", e.into()))
}

/// Resolves once process `pid` has exited (a pidfd becomes readable when its process exits,
/// even if it is a zombie or not our child). Returns immediately if the pid is gone.
pub(crate) async fn wait_pid(pid: i32) -> Result<(), RuntimeError> {
    let Some(fd) = pidfd_open(pid) else {
        return Ok(());
    };
    let afd = async_pidfd(fd)?;
    let _ready = afd
        .readable()
        .await
        .map_err(|e| RuntimeError::io(format!("waiting on pidfd of {pid}"), e))?;
    Ok(())
}

/// Waits until the shim `shim_pid` has exited, then returns the status it recorded in `dir`.
/// Works for shims started by a previous daemon. If the shim is already gone, reads the exit file.
pub async fn wait_exit(shim_pid: i32, dir: &Path) -> Result<ExitStatus, RuntimeError> {
    // The shim's argv contains `dir`; a different process behind a reused pid does not.
    if shim_of_dir_is_alive(shim_pid, dir) {
        wait_pid(shim_pid).await?;
    }
    read_exit_file(dir).ok_or_else(|| RuntimeError::ExitUnknown {
        shim_pid,
        dir: dir.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_file_roundtrip() {
        let dir = std::env::temp_dir().join(format!("cove-rt-exit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(read_exit_file(&dir), None);
        let st = ExitStatus {
            code: 137,
            signal: Some(9),
            oom_killed: true,
        };
        write_exit_file(&dir, &st).unwrap();
        assert_eq!(read_exit_file(&dir), Some(st));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn alive_checks_cmdline() {
        let me = std::process::id() as i32;
        assert!(!shim_is_alive(me, "definitely-not-in-my-cmdline-xyz"));
        assert!(!shim_is_alive(-1, "x"));
    }

    #[tokio::test]
    async fn wait_exit_of_gone_shim_reads_file() {
        let dir = std::env::temp_dir().join(format!("cove-rt-wait-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(matches!(
            wait_exit(i32::MAX, &dir).await,
            Err(RuntimeError::ExitUnknown { .. })
        ));
        let st = ExitStatus {
            code: 3,
            signal: None,
            oom_killed: false,
        };
        write_exit_file(&dir, &st).unwrap();
        assert_eq!(wait_exit(i32::MAX, &dir).await.unwrap(), st);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
