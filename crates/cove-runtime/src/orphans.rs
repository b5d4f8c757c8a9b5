//! Shims a killed daemon left in flight. The shim outlives the daemon on purpose (its container
//! keeps running), so a shim spawned just before a SIGKILL goes on to start its container after
//! the next daemon has listed the runtime's containers: a container nobody owns. The next daemon
//! finds these shims by their command line (`<exe> shim <id> <dir> ...` with `<dir>` inside its
//! containers dir) and kills every one it does not re-adopt, with its process group (the runtime
//! invocation it runs), before it looks at the runtime.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// How long [`kill_shim_group`] waits for the shim's process group to be gone.
const GONE_TIMEOUT: Duration = Duration::from_secs(5);

/// A live shim process and the container id it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimProcess {
    pub pid: i32,
    pub id: String,
}

/// The live shims whose container dir is directly inside `containers_dir`.
pub fn shims_under(containers_dir: &Path) -> Vec<ShimProcess> {
    let want = canonical(containers_dir);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let id = shim_of(&cmdline, &want)?;
            crate::shim_is_alive(pid, &id).then_some(ShimProcess { pid, id })
        })
        .collect()
}

/// The container id in `cmdline` if it is a shim's whose dir is inside `containers_dir`.
fn shim_of(cmdline: &[u8], containers_dir: &Path) -> Option<String> {
    let mut args = cmdline.split(|b| *b == 0);
    let (_exe, verb, id, dir) = (args.next()?, args.next()?, args.next()?, args.next()?);
    if verb != b"shim" {
        return None;
    }
    let dir = Path::new(std::ffi::OsStr::from_bytes(dir));
    let id = std::str::from_utf8(id).ok()?;
    (dir.file_name().map(|n| n.as_bytes()) == Some(id.as_bytes())
        && dir.parent().map(canonical).as_deref() == Some(containers_dir))
    .then(|| id.to_string())
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// SIGKILLs shim `pid` and its process group (the shim leads its own session, so the group holds
/// the runtime invocation it started), then waits until the group is gone. The caller deletes the
/// container the runtime may have half-made.
pub async fn kill_shim_group(pid: i32) {
    let group = Pid::from_raw(pid);
    let _ = killpg(group, Signal::SIGKILL);
    let _ = kill(group, Signal::SIGKILL);
    let deadline = Instant::now() + GONE_TIMEOUT;
    while group_has_live_member(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether any process of process group `pgid` is alive. Zombies do not count: the killed
/// processes were re-parented away from this daemon, and whoever reaps them may be slow to.
fn group_has_live_member(pgid: i32) -> bool {
    if killpg(Pid::from_raw(pgid), None) == Err(Errno::ESRCH) {
        return false;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // "<pid> (<comm>) <state> <ppid> <pgrp> ...": comm may hold spaces, so split after ')'.
        let mut rest = stat
            .rsplit_once(')')
            .map_or("", |(_, r)| r)
            .split_whitespace();
        let state = rest.next();
        let pgrp = rest.nth(1).and_then(|g| g.parse::<i32>().ok());
        pgrp == Some(pgid) && !matches!(state, Some("Z" | "X") | None)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(args: &[&str]) -> Vec<u8> {
        args.iter()
            .flat_map(|a| [a.as_bytes(), b"\0"].concat())
            .collect()
    }

    #[test]
    fn recognises_only_shims_of_this_containers_dir() {
        let dir = Path::new("/nonexistent/data/containers");
        let shim = line(&[
            "/usr/bin/cove",
            "shim",
            "pod-1",
            "/nonexistent/data/containers/pod-1",
            "runc",
        ]);
        assert_eq!(shim_of(&shim, dir).as_deref(), Some("pod-1"));
        let other_dir = line(&[
            "/usr/bin/cove",
            "shim",
            "pod-1",
            "/elsewhere/containers/pod-1",
        ]);
        assert_eq!(shim_of(&other_dir, dir), None);
        let not_shim = line(&[
            "/usr/bin/cove",
            "server",
            "pod-1",
            "/nonexistent/data/containers/pod-1",
        ]);
        assert_eq!(shim_of(&not_shim, dir), None);
        let id_mismatch = line(&[
            "/usr/bin/cove",
            "shim",
            "pod-2",
            "/nonexistent/data/containers/pod-1",
        ]);
        assert_eq!(shim_of(&id_mismatch, dir), None);
        assert_eq!(shim_of(b"", dir), None);
    }

    #[test]
    fn a_group_of_only_zombies_is_gone() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .expect("spawning sleep");
        let pgid = child.id() as i32;
        assert!(group_has_live_member(pgid));
        kill(Pid::from_raw(pgid), Signal::SIGKILL).expect("kill");
        // Killed but not reaped yet: a zombie, which no longer counts.
        let deadline = Instant::now() + Duration::from_secs(5);
        while group_has_live_member(pgid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!group_has_live_member(pgid));
        child.wait().expect("reaping sleep");
        assert!(!group_has_live_member(pgid));
    }
}
