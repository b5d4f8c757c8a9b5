//! Exhausting processes, memory or open files stays inside the pod's own limits: the host
//! and a neighbour pod keep working.

use std::process::Command;
use std::time::Duration;

use crate::attacker::*;
use crate::common::*;

/// The pids limit the daemon gives every pod (crates/cove/src/server.rs).
const PIDS_LIMIT: u64 = 4096;

fn neighbour_httpd(d: &Daemon, iso: Isolation) -> Container {
    let n = neighbour(d, iso, "exec httpd -f -p 8000 -h /www");
    d.wait_serving(&n, 8000, "/");
    n
}

fn a_fork_bomb_stops_at_the_pids_limit(iso: Isolation) {
    let d = Daemon::start();
    let n = neighbour_httpd(&d, iso);
    let mut args = probe_pod_args(
        iso,
        &[
            "--memory",
            "2048",
            "--entrypoint",
            "/app/cove-probe forkbomb",
        ],
    );
    args.retain(|a| a != "8000" && a != "--ports");
    let bomb = d.run_pod_owned(&args);
    // runc: forks fail (EAGAIN) below the limit and the bomb holds what it has. gVisor: its
    // kernel's helper processes count against the same host limit, and the sandbox gives up
    // and ends; either way the bomb stays inside the pod.
    let line = wait_until("the fork bomb to hit its limit", LONG, || {
        let logs = stdout(&d.cli(&["container", "logs", &bomb.id]));
        if let Some(l) = logs.lines().find(|l| l.starts_with("forkbomb:")) {
            return Some(l.to_string());
        }
        let ended = d.inspect(&bomb.id).status != ContainerStatus::Running;
        (iso == Isolation::Gvisor && ended).then(String::new)
    });
    if !line.is_empty() {
        let forked: u64 = line
            .split_whitespace()
            .nth(2)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count in {line:?}"));
        assert!(forked < PIDS_LIMIT, "{line}");
        assert!(line.contains("Resource temporarily unavailable"), "{line}");
    }
    // The host still forks, the neighbour still serves.
    assert!(Command::new("true").status().unwrap().success());
    d.wait_serving(&n, 8000, "/");
    if d.inspect(&bomb.id).status == ContainerStatus::Running {
        ok(&d.cli(&["container", "stop", &bomb.id]));
        d.wait_status(&bomb.id, ContainerStatus::Stopped, LONG);
    }
    assert!(!stdout(&d.cli(&["container", "logs", &bomb.id])).contains("SUCCEEDED"));
    wait_until("the bomb's cleanup", LONG, || {
        d.leftovers_of(&bomb.id).is_empty().then_some(())
    });
}

fn memory_exhaustion_is_oom_killed_inside_the_pod(iso: Isolation) {
    let d = Daemon::start();
    let n = neighbour_httpd(&d, iso);
    let mut args = probe_pod_args(
        iso,
        &["--memory", "64", "--entrypoint", "/app/cove-probe memhog"],
    );
    args.retain(|a| a != "8000" && a != "--ports");
    let hog = d.run_pod_owned(&args);
    d.wait_status(
        &hog.id,
        ContainerStatus::OomKilled,
        Duration::from_secs(120),
    );
    assert!(!stdout(&d.cli(&["container", "logs", &hog.id])).contains("SUCCEEDED"));
    d.wait_serving(&n, 8000, "/");
    assert_eq!(d.inspect(&n.id).status, ContainerStatus::Running);
}

fn open_files_stop_at_rlimit_nofile(iso: Isolation) {
    let d = Daemon::start();
    let a = Attacker::start(&d, iso, &["--memory", "512"]);
    let out = a.refused(&["nofile"]);
    assert!(out.contains("Too many open files"), "{out}");
    let num = |after: &str| -> u64 {
        out.split(after)
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.trim_end_matches([',', ';']).parse().ok())
            .unwrap_or_else(|| panic!("no {after:?} in {out}"))
    };
    let (opened, soft) = (num("opened "), num("soft "));
    assert!(opened > 0 && opened <= soft, "{out}");
    a.refused(&["raise-nofile"]);
    // The pod still works.
    d.wait_serving(&a.pod, 8000, "/");
}

per_runtime!(
    a_fork_bomb_stops_at_the_pids_limit,
    memory_exhaustion_is_oom_killed_inside_the_pod,
    open_files_stop_at_rlimit_nofile
);
