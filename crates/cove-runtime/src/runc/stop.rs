//! `stop`: SIGTERM to init, SIGKILL to every process after the grace period, waiting on a pidfd.

use std::time::Duration;

use tracing::{debug, instrument};

use super::Runc;
use crate::exit::{async_pidfd, pidfd_open};
use crate::RuntimeError;

/// How long `stop` waits for init to die after SIGKILL.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

impl Runc {
    #[instrument(skip(self), fields(pod = %id))]
    pub(super) async fn stop_inner(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let Some(state) = self.state(id).await? else {
            return Ok(());
        };
        if state.status == "stopped" || state.pid <= 0 {
            return Ok(());
        }
        // Open the pidfd before signalling so a reused pid can never be mistaken for init.
        let Some(fd) = pidfd_open(state.pid) else {
            return Ok(());
        };
        let init = async_pidfd(fd)?;
        // As pid 1 of its namespace, an init without a TERM handler never sees
        // SIGTERM (the kernel drops it): waiting out the grace period would
        // only delay the SIGKILL. (Under runsc `state.pid` is the sandbox, a Go
        // process that handles every signal, so gVisor pods always get the grace.)
        if catches_sigterm(state.pid) {
            self.kill(id, "TERM", false).await?;
            if tokio::time::timeout(grace, init.readable()).await.is_ok() {
                return Ok(());
            }
            debug!("grace period over, sending SIGKILL to all processes");
        } else {
            debug!("init has no SIGTERM handler, sending SIGKILL at once");
        }
        // --all: on cgroup v1 this reaches every process in the container's cgroup.
        self.kill(id, "KILL", true).await?;
        match tokio::time::timeout(KILL_TIMEOUT, init.readable()).await {
            Ok(_) => Ok(()),
            Err(_) => Err(RuntimeError::Timeout {
                what: format!("container {id} to die after SIGKILL"),
                secs: KILL_TIMEOUT.as_secs(),
            }),
        }
    }

    /// `<runtime> kill [--all] <id> <sig>`; a container that is gone or stopped is not an error.
    pub(super) async fn kill(&self, id: &str, sig: &str, all: bool) -> Result<(), RuntimeError> {
        let args: Vec<&str> = if all {
            vec!["kill", "--all", id, sig]
        } else {
            vec!["kill", id, sig]
        };
        let out = self.call(&args).await?;
        if out.success() || out.not_found() {
            return Ok(());
        }
        let msg = out.message();
        if msg.contains("not running") || msg.contains("process already finished") {
            return Ok(());
        }
        Err(self.err("kill", id, msg))
    }
}

/// Whether process `pid` has a handler for SIGTERM (bit 15 of `SigCgt` in
/// /proc/<pid>/status). Unknown counts as yes, so the grace period applies.
fn catches_sigterm(pid: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_none_or(|mask| mask & (1 << (15 - 1)) != 0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_process_handlers_are_read() {
        // The test process has no SIGTERM handler by default.
        assert!(!super::catches_sigterm(std::process::id() as i32));
        assert!(super::catches_sigterm(-5));
    }
}
