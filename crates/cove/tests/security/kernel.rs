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
    // Under runc a process `cove container exec` starts gets the same filter. (Under gVisor it
    // does not: runsc applies the filter to the container's init and its children only; see
    // README "Security".)
    if iso == Isolation::Runc {
        for attack in [&["unshare-user"][..], &["ptrace", "1"], &["keyctl"]] {
            let mut args = vec!["container", "exec", &a.pod.id, "--", "/app/cove-probe"];
            args.extend_from_slice(attack);
            let o = d.cli(&args);
            assert_eq!(o.status.code(), Some(1), "exec {attack:?}: {o:?}");
        }
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
