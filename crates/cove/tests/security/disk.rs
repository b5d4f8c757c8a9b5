//! Disk exhaustion stops at the pod's disk limit (`cove run --disk`, the daemon's
//! `--default-disk`); the limit's filesystem and loop device go away on stop, on a failed
//! create, and on the restart after a `kill -9` of the daemon.

use std::process::Command;

use crate::attacker::*;
use crate::common::*;

/// Parses "wrote N MiB" from a `fill` probe's output.
fn wrote_mib(out: &str) -> u64 {
    out.split("wrote ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `wrote N MiB` in {out}"))
}

fn disk_exhaustion_stops_at_the_pod_limit(iso: Isolation) {
    let d = Daemon::start();
    let n = neighbour(&d, iso, "exec httpd -f -p 8000 -h /www");
    let a = Attacker::start(&d, iso, &["--disk", "64Mi"]);
    assert!(
        !d.loop_devices().is_empty(),
        "the limited pod has no loop device"
    );
    let out = a.refused(&["fill", "/app/fill", "512"]);
    assert!(out.contains("No space left on device"), "{out}");
    assert!(wrote_mib(&out) <= 64, "{out}");
    // The rest of the pod, the neighbour and the host carry on.
    d.wait_serving(&a.pod, 8000, "/");
    d.wait_serving(&n, 8000, "/");
    // Freeing space works again.
    ok(&d.cli(&["container", "exec", &a.pod.id, "--", "rm", "/app/fill"]));
    a.succeeds(&["write", "/app/after", "room"]);

    // Control: a pod without a limit writes past 64 MiB (and gets no loop device).
    let free = Attacker::start(&d, iso, &[]);
    let out = free.succeeds(&["fill", "/app/fill", "100"]);
    assert_eq!(wrote_mib(&out), 100, "{out}");
    assert!(d
        .leftovers_of(&free.pod.id)
        .iter()
        .all(|l| !l.starts_with("loop")));

    ok(&d.cli(&["container", "stop", &a.pod.id]));
    d.wait_status(&a.pod.id, ContainerStatus::Stopped, LONG);
    assert_eq!(d.leftovers_of(&a.pod.id), Vec::<String>::new());
    assert!(!d
        .data_dir
        .join("containers")
        .join(&a.pod.id)
        .join("disk.img")
        .exists());
}

per_runtime!(disk_exhaustion_stops_at_the_pod_limit);

#[test]
fn bad_disk_sizes_are_one_clear_error_and_make_nothing() {
    let d = Daemon::start();
    for bad in ["8Mi", "lots", "0"] {
        let o = d.cli(&["run", "--image", &registry().image("latest"), "--disk", bad]);
        let line = failed_with(&o, &["disk"]);
        assert!(line.contains(bad), "{line}");
    }
    assert!(d.list(true).is_empty());
    assert!(d.loop_devices().is_empty());
    // A create that fails after the disk was made rolls it back.
    let o = d.cli(&[
        "run",
        "--image",
        &registry().image("latest"),
        "--disk",
        "64Mi",
        "--entrypoint",
        "/no/such/program",
    ]);
    if o.status.success() {
        // The runtime may report the missing program as an exit instead of a failed start.
        let id = stdout(&o)
            .split_whitespace()
            .find(|w| w.starts_with("pod-"))
            .map(str::to_string)
            .expect("a container id");
        wait_until("the pod to end", LONG, || {
            (d.inspect(&id).status != ContainerStatus::Running).then_some(())
        });
    }
    wait_until("no disk left", LONG, || {
        (d.loop_devices().is_empty() && d.mounts().is_empty()).then_some(())
    });
}

#[test]
fn the_daemon_default_disk_applies_and_a_restart_after_kill_9_cleans_up() {
    let mut d = Daemon::start_with(DaemonOpts {
        extra_server_args: vec!["--default-disk".into(), "48Mi".into()],
        ..Default::default()
    });
    let a = Attacker::start(&d, Isolation::Runc, &[]);
    let out = a.refused(&["fill", "/app/fill", "512"]);
    assert!(wrote_mib(&out) <= 48, "{out}");
    let id = a.pod.id.clone();
    drop(a);

    // The daemon dies, and the pod ends while it is down.
    d.kill9();
    let runc_root = d.data_dir.join("runc");
    let o = Command::new("runc")
        .arg("--root")
        .arg(&runc_root)
        .args(["kill", &id, "KILL"])
        .output()
        .unwrap();
    assert!(o.status.success(), "runc kill: {}", stderr(&o));
    wait_until("the container to end", LONG, || {
        let o = Command::new("runc")
            .arg("--root")
            .arg(&runc_root)
            .args(["state", &id])
            .output()
            .unwrap();
        (!stdout(&o).contains("\"running\"")).then_some(())
    });
    d.restart();
    let c = wait_until("the restarted daemon to record the end", LONG, || {
        let c = d.inspect(&id);
        (c.status != ContainerStatus::Running).then_some(c)
    });
    assert_ne!(c.status, ContainerStatus::Running);
    wait_until("the disk of the ended pod to be gone", LONG, || {
        d.leftovers_of(&id).is_empty().then_some(())
    });
    assert!(d.loop_devices().is_empty(), "{:?}", d.loop_devices());
}
