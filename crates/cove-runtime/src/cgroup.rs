//! Host cgroup facts the spec and the shim need: version, swap accounting, where the container's
//! OOM-kill counter lives, and removal of cgroup directories runc may leave behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// True when `/sys/fs/cgroup` is a cgroup v2 (unified) mount.
pub(crate) fn is_v2() -> bool {
    Path::new(CGROUP_ROOT).join("cgroup.controllers").exists()
}

/// The mount point of the v1 memory hierarchy, from `/proc/self/mountinfo`.
pub(crate) fn v1_memory_mount() -> PathBuf {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in info.lines() {
        // "<id> <parent> <maj:min> <root> <mountpoint> <opts> ... - <fstype> <source> <superopts>"
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut r = right.split(' ');
        let (fstype, superopts) = (r.next(), r.nth(1));
        if fstype == Some("cgroup")
            && superopts.is_some_and(|o| o.split(',').any(|x| x == "memory"))
        {
            if let Some(mp) = left.split(' ').nth(4) {
                return PathBuf::from(mp);
            }
        }
    }
    Path::new(CGROUP_ROOT).join("memory")
}

/// True when the v1 memory controller has swap accounting (`memory.memsw.*`); runc fails if
/// a swap limit is requested without it. On v2 runc maps swap to `memory.swap.max` itself.
pub(crate) fn has_swap_accounting(v2: bool) -> bool {
    v2 || v1_memory_mount()
        .join("memory.memsw.limit_in_bytes")
        .exists()
}

/// The file holding the container's `oom_kill N` counter.
pub(crate) fn oom_counter_file(cgroups_path: &str) -> PathBuf {
    let rel = cgroups_path.trim_start_matches('/');
    if is_v2() {
        Path::new(CGROUP_ROOT).join(rel).join("memory.events")
    } else {
        v1_memory_mount().join(rel).join("memory.oom_control")
    }
}

/// Reads the `oom_kill` counter from a v1 `memory.oom_control` or v2 `memory.events` file.
pub(crate) fn read_oom_kills(file: &Path) -> u64 {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Removes `<hierarchy>/cove-*/<id>` cgroup directories in every hierarchy (v1 has one per
/// controller, plus the hybrid `unified` one). Processes may still be exiting after
/// `runc delete --force`, so EBUSY is retried briefly. Returns the dirs that could not be removed.
pub(crate) async fn remove_leftovers(id: &str) -> Vec<PathBuf> {
    let mut left = Vec::new();
    for dir in leftover_dirs(id) {
        let mut removed = false;
        for _ in 0..50 {
            match std::fs::remove_dir(&dir) {
                Ok(()) => {
                    removed = true;
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    removed = true;
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        if !removed {
            left.push(dir);
        }
    }
    left
}

/// Existing cgroup directories named `<id>` under a `cove-*` parent in any hierarchy.
pub fn leftover_dirs(id: &str) -> Vec<PathBuf> {
    let root = Path::new(CGROUP_ROOT);
    let mut hierarchies = vec![root.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(root) {
        for e in rd.flatten() {
            // Skip the "cpu -> cpu,cpuacct" style symlinks: the real dir is scanned anyway.
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                hierarchies.push(e.path());
            }
        }
    }
    let mut found = Vec::new();
    for h in hierarchies {
        let Ok(rd) = std::fs::read_dir(&h) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with("cove-") {
                let dir = e.path().join(id);
                if dir.is_dir() {
                    found.push(dir);
                }
            }
        }
    }
    found
}

/// Removes the daemon's parent cgroup (`<hierarchy>/<parent>`) in every
/// hierarchy where it is empty. Called when the daemon stops with no container
/// left; a non-empty one (containers still running) is kept.
pub fn remove_cgroup_parent(parent: &str) {
    let parent = parent.trim_matches('/');
    if parent.is_empty() || parent.contains("..") {
        return;
    }
    let mut dirs = vec![Path::new(CGROUP_ROOT).join(parent)];
    if let Ok(entries) = std::fs::read_dir(CGROUP_ROOT) {
        dirs.extend(entries.flatten().map(|e| e.path().join(parent)));
    }
    for dir in dirs {
        // rmdir only succeeds on an empty cgroup, which is what we want.
        let _ = std::fs::remove_dir(&dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_counter_parse() {
        let p = std::env::temp_dir().join(format!("cove-rt-oom-{}", std::process::id()));
        std::fs::write(&p, "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n").unwrap();
        assert_eq!(read_oom_kills(&p), 3);
        std::fs::write(&p, "low 0\nhigh 0\nmax 5\noom 2\noom_kill 1\n").unwrap();
        assert_eq!(read_oom_kills(&p), 1);
        let _ = std::fs::remove_file(&p);
        assert_eq!(read_oom_kills(Path::new("/nonexistent/x")), 0);
    }
}
