//! A pod cannot read host or neighbour files, make devices, or write through /proc and /sys.

use crate::attacker::*;
use crate::common::*;

fn host_and_neighbour_files_are_out_of_reach(iso: Isolation) {
    let d = Daemon::start();
    let scratch = scratch_dir("cove-sec-files");
    let secret = scratch.join("secret");
    std::fs::write(&secret, "host-secret\n").unwrap();
    let secret = secret.to_string_lossy().into_owned();
    let n = neighbour(
        &d,
        iso,
        "echo neighbour-secret > /tmp/neighbour-secret; exec sleep 100000",
    );
    let a = Attacker::start(&d, iso, &[]);
    let n_upper = d
        .data_dir
        .join("containers")
        .join(&n.id)
        .join("upper/tmp/neighbour-secret");
    wait_until("the neighbour's secret", LONG, || {
        n_upper.exists().then_some(())
    });

    // Control: the pod reads and writes its own files.
    a.succeeds(&["write", "/tmp/own", "mine"]);
    a.succeeds(&["read", "/tmp/own"]);
    a.succeeds(&["read", "/etc/passwd"]);

    a.refused(&["read", &secret]);
    a.refused(&["read", &format!("/proc/1/root{secret}")]);
    a.refused(&["chroot-escape", &secret]);
    a.refused(&["read", "/tmp/neighbour-secret"]);
    a.refused(&["read", &n_upper.to_string_lossy()]);
    a.refused(&["open-by-handle"]);
}

fn devices_proc_and_sys_are_locked(iso: Isolation) {
    let d = Daemon::start();
    let a = Attacker::start(&d, iso, &[]);

    a.succeeds(&["mkfifo", "/tmp/fifo"]);
    a.refused(&["mknod", "/tmp/sda"]);
    a.refused(&["read", "/dev/sda"]);
    a.refused(&["read", "/dev/vda"]);
    a.refused(&["read", "/dev/mem"]);

    a.refused(&["write", "/proc/sysrq-trigger", "h"]);
    a.refused(&["read", "/proc/kcore"]);
    a.refused(&["read", "/proc/keys"]);
    a.refused(&["read", "/proc/1/root/../../../../etc/shadow"]);
    // Sysctls: readable (the control), not writable.
    for sysctl in [
        "/proc/sys/kernel/core_pattern",
        "/proc/sys/kernel/hostname",
        "/proc/sys/vm/overcommit_memory",
        "/proc/sys/net/ipv4/ip_forward",
    ] {
        a.succeeds(&["read", sysctl]);
        a.refused(&["write-same", sysctl]);
    }
    // /sys attributes and the pod's own cgroup limits: readable, not writable.
    for attr in ["/sys/class/net/eth0/mtu", "/sys/kernel/profiling"] {
        a.succeeds(&["read", attr]);
        a.refused(&["write-same", attr]);
    }
    for limit in [
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        "/sys/fs/cgroup/pids/pids.max",
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/pids.max",
    ] {
        if a.probe(&["read", limit]).code == Some(0) {
            a.refused(&["write-same", limit]);
        }
    }
}

per_runtime!(
    host_and_neighbour_files_are_out_of_reach,
    devices_proc_and_sys_are_locked
);
