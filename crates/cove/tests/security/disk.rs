//! Disk exhaustion stops at the pod's disk limit (`cove run --disk`, the daemon's
//! `--default-disk`, on unless `off`): bytes and inodes. The limit's filesystem and loop
//! device go away on stop, on a failed create, and on the restart after a `kill -9` of the
//! daemon; the pool of formatted disks refills after takes, serves concurrent creates and
//! is removed at shutdown.

use std::path::{Path, PathBuf};
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

/// Where a pod's disk is mounted.
fn disk_mount(d: &Daemon, id: &str) -> String {
    d.data_dir
        .join("containers")
        .join(id)
        .join("disk")
        .to_string_lossy()
        .into_owned()
}

/// Bytes a file takes on the host (its allocated blocks, not its sparse size).
fn allocated(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().blocks() * 512
}

/// The formatted disks waiting in the daemon's pool.
fn pooled(d: &Daemon) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(d.data_dir.join("disk-pool"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "img"));
    v.sort();
    v
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

    // Control: a pod without a limit gets the default (10 GiB) and writes past 64 MiB.
    let free = Attacker::start(&d, iso, &[]);
    let out = free.succeeds(&["fill", "/app/fill", "100"]);
    assert_eq!(wrote_mib(&out), 100, "{out}");
    assert!(d.mounts().contains(&disk_mount(&d, &free.pod.id)));

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
    assert!(out.contains("No space left on device"), "{out}");
    assert!(wrote_mib(&out) <= 48, "{out}");
    // The host paid for what the pod wrote, not more: the sparse image holds at most its size.
    let img = d
        .data_dir
        .join("containers")
        .join(&a.pod.id)
        .join("disk.img");
    assert!(allocated(&img) <= 48 << 20, "{} bytes", allocated(&img));
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

/// The default disk (no `--default-disk`: 10 GiB, one inode per 64 KiB) stops a pod creating
/// 300,000 files well before that, while 100,000 (a large Python environment) fit.
#[test]
fn the_default_disk_stops_a_pod_creating_300_000_files() {
    let d = Daemon::start();
    let pod = d.run_pod(&[
        "--image",
        &registry().image("latest"),
        "--entrypoint",
        "sleep 600",
    ]);
    d.wait_status(&pod.id, ContainerStatus::Running, LONG);
    // Shell built-ins only (no fork per file): `true >` creates an empty file (not `: >`: a
    // failed redirection on a special built-in ends the shell).
    let script = "mkdir /many && i=0; while [ $i -lt 300000 ]; do true > /many/$i || break; \
                  i=$((i+1)); done; echo created $i";
    let o = d.cli(&["container", "exec", &pod.id, "--", "sh", "-c", script]);
    let out = format!("{}{}", stdout(&o), stderr(&o));
    let created: u64 = out
        .split("created ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `created N` in {out}"));
    eprintln!("created {created} files");
    assert!(out.contains("No space left on device"), "{out}");
    assert!((100_000..=163_840).contains(&created), "{out}");
    // The host holds the pod's inodes in its image, not on the data dir's filesystem.
    assert!(!d
        .data_dir
        .join("containers")
        .join(&pod.id)
        .join("upper")
        .exists());
    ok(&d.cli(&["container", "stop", &pod.id]));
    d.wait_status(&pod.id, ContainerStatus::Stopped, LONG);
    assert_eq!(d.leftovers_of(&pod.id), Vec::<String>::new());
}

/// The pool of formatted disks: filled at start, taken by creates of the default size (a
/// take renames one away, the pool makes a new one), shared by concurrent creates (each
/// pod its own filesystem and loop device, the ones the pool lacks formatted on the spot),
/// and removed, with every disk, when the daemon stops.
#[test]
fn the_disk_pool_refills_after_takes_and_serves_concurrent_creates() {
    let mut d = Daemon::start_with(DaemonOpts {
        extra_server_args: ["--default-disk", "40Mi", "--disk-pool", "2"]
            .map(String::from)
            .to_vec(),
        ..Default::default()
    });
    let full = wait_until("the pool to fill", LONG, || {
        let p = pooled(&d);
        (p.len() == 2).then_some(p)
    });
    // Pooled disks are formatted and mounted ahead (each on its own loop device), under the
    // pool's dir only; no pod's mount exists yet.
    assert!(d.loop_devices().is_empty(), "{:?}", d.loop_devices());
    assert!(d.mounts().is_empty(), "{:?}", d.mounts());
    wait_until("the pooled disks to be mounted", LONG, || {
        (d.all_mounts().len() == 2 && d.all_loop_devices().len() == 2).then_some(())
    });

    let first = d.run_httpd("-1");
    d.wait_serving(&first, 8000, "/");
    let refilled = wait_until("the pool to refill", LONG, || {
        let p = pooled(&d);
        (p.len() == 2 && p != full).then_some(p)
    });
    assert_eq!(
        full.iter().filter(|p| !refilled.contains(p)).count(),
        1,
        "one pooled disk taken: {full:?} then {refilled:?}"
    );

    // Six creates at once, more than the pool holds.
    let pods: Vec<Container> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..6).map(|_| s.spawn(|| d.run_httpd("-1"))).collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for p in &pods {
        d.wait_serving(p, 8000, "/");
        assert!(d.mounts().contains(&disk_mount(&d, &p.id)), "{}", p.id);
    }
    assert_eq!(d.loop_devices().len(), 7, "{:?}", d.loop_devices());
    // Each pod's disk is its own: a file written in one is not in another.
    ok(&d.cli(&["container", "exec", &pods[0].id, "--", "touch", "/mine"]));
    let o = d.cli(&["container", "exec", &pods[1].id, "--", "ls", "/mine"]);
    assert!(!o.status.success(), "{}", stdout(&o));
    wait_until("the pool to refill after the burst", LONG, || {
        (pooled(&d).len() == 2).then_some(())
    });

    for p in pods.iter().chain([&first]) {
        ok(&d.cli(&["container", "stop", &p.id]));
    }
    for p in pods.iter().chain([&first]) {
        d.wait_status(&p.id, ContainerStatus::Stopped, LONG);
        assert_eq!(d.leftovers_of(&p.id), Vec::<String>::new());
    }
    assert!(d.loop_devices().is_empty(), "{:?}", d.loop_devices());
    let st = d.terminate();
    assert!(st.is_some_and(|s| s.success()), "{st:?}");
    assert!(
        !d.data_dir.join("disk-pool").exists(),
        "the pool outlived the daemon"
    );
    assert!(d.all_mounts().is_empty(), "{:?}", d.all_mounts());
    assert!(
        d.all_loop_devices().is_empty(),
        "{:?}",
        d.all_loop_devices()
    );
}

/// `--default-disk off` is the explicit way to unlimited pods (no disk, no pool); a bad
/// value is one line naming it.
#[test]
fn default_disk_off_is_explicit_and_bad_values_are_refused() {
    let d = Daemon::start_with(DaemonOpts {
        extra_server_args: vec!["--default-disk".into(), "off".into()],
        ..Default::default()
    });
    let pod = d.run_httpd("-1");
    d.wait_serving(&pod, 8000, "/");
    assert!(!d.mounts().contains(&disk_mount(&d, &pod.id)));
    assert!(d.loop_devices().is_empty(), "{:?}", d.loop_devices());
    assert!(pooled(&d).is_empty());

    // Refused while parsing the flags, before the (unused) data dir is made.
    let o = Command::new(COVE)
        .args(["server", "--default-disk", "lots", "--data-dir"])
        .arg(d.data_dir.join("never"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("--default-disk") && err.contains("lots"),
        "{err}"
    );
    assert!(!d.data_dir.join("never").exists());
}

/// A build step runs code like a pod's: its writable layer has the pods' default disk, so a
/// step filling it fails the build with ENOSPC (and leaves nothing), while a step within it
/// builds an image that runs.
#[test]
fn a_build_step_stops_at_the_default_disk() {
    let d = Daemon::start_with(DaemonOpts {
        extra_server_args: vec!["--default-disk".into(), "40Mi".into()],
        ..Default::default()
    });
    let base = registry().image("latest");
    let o = d.cli(&[
        "image",
        "build",
        "--base",
        &base,
        "--command",
        "dd if=/dev/zero of=/big bs=1M count=200",
    ]);
    let line = failed_with(&o, &["step 1"]);
    assert!(
        format!("{line}{}", stdout(&o)).contains("No space left on device"),
        "{line}"
    );
    assert!(d.mounts().is_empty(), "{:?}", d.mounts());
    assert!(d.loop_devices().is_empty(), "{:?}", d.loop_devices());

    let out = ok(&d.cli(&[
        "image",
        "build",
        "--base",
        &base,
        "--command",
        "dd if=/dev/zero of=/small bs=1M count=4",
    ]));
    let image = built_reference(&out);
    let c = d.run_pod(&["--image", &image, "--entrypoint", "ls -l /small"]);
    d.wait_status(&c.id, ContainerStatus::Exited, LONG);
    let log = ok(&d.cli(&["container", "logs", &c.id]));
    assert!(log.contains("4194304"), "{log}");
}
