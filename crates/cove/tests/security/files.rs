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
        "echo neighbour-secret > /root/neighbour-secret; echo written; exec sleep 100000",
    );
    let a = Attacker::start(&d, iso, &[]);
    let n_upper = d
        .data_dir
        .join("containers")
        .join(&n.id)
        .join("upper/root/neighbour-secret");
    wait_until("the neighbour's secret", LONG, || {
        stdout(&d.cli(&["container", "logs", &n.id]))
            .contains("written")
            .then_some(())
    });

    // Control: the pod reads and writes its own files.
    a.succeeds(&["write", "/tmp/own", "mine"]);
    a.succeeds(&["read", "/tmp/own"]);
    a.succeeds(&["read", "/etc/passwd"]);

    a.refused(&["read", &secret]);
    a.refused(&["read", &format!("/proc/1/root{secret}")]);
    a.refused(&["chroot-escape", &secret]);
    a.refused(&["read", "/root/neighbour-secret"]);
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
    // Sysctls and /sys attributes: readable (the control; gVisor has fewer of them), never
    // writable. The pod's own cgroup limits likewise.
    let mut readable = 0;
    for path in [
        "/proc/sys/kernel/core_pattern",
        "/proc/sys/kernel/hostname",
        "/proc/sys/vm/overcommit_memory",
        "/proc/sys/net/ipv4/ip_forward",
        "/sys/class/net/eth0/mtu",
        "/sys/kernel/profiling",
    ] {
        // gVisor's /proc/sys/net belongs to its own network stack, one per pod, and is
        // writable there (runsc 20221219 does not apply the spec's read-only /proc/sys to it):
        // the pod's own stack, not the host's; see README "Security".
        if iso == Isolation::Gvisor && path.starts_with("/proc/sys/net/") {
            continue;
        }
        if a.probe(&["read", path]).code == Some(0) {
            readable += 1;
            a.refused(&["write-same", path]);
        }
    }
    assert!(readable >= 2, "[{iso:?}] too few sysctls to try");
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
