//! A pod cannot mount, load modules, use keyrings, bpf or perf, or make new namespaces.

use crate::attacker::*;
use crate::common::*;

fn kernel_global_calls_are_refused(iso: Isolation) {
    let d = Daemon::start();
    let a = Attacker::start(&d, iso, &[]);

    // Control: ordinary syscalls and processes work.
    a.succeeds(&["uname"]);
    a.succeeds(&["fork"]);
    a.succeeds(&["socket-udp"]);

    for attack in [
        &["mount", "/tmp/m"][..],
        &["init-module"],
        &["finit-module"],
        &["keyctl"],
        &["add-key"],
        &["bpf"],
        &["perf"],
        &["unshare-user"],
        &["unshare-mount"],
        &["clone-newuser"],
        &["clone3-newuser"],
        &["raise-nofile"],
        &["socket-raw"],
        &["socket-packet"],
    ] {
        a.refused(attack);
    }
    // busybox's own tools fail the same way.
    let o = d.cli(&[
        "container",
        "exec",
        &a.pod.id,
        "--",
        "mount",
        "-t",
        "tmpfs",
        "none",
        "/mnt",
    ]);
    assert!(!o.status.success(), "busybox mount worked: {o:?}");
}

per_runtime!(kernel_global_calls_are_refused);
