//! Unit tests of the profile's shape, read back through a small evaluator of OCI seccomp
//! rules (what the pod tests in crates/cove/tests/security/seccomp.rs prove for real).

use std::collections::HashSet;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};

use super::*;

/// What the profile answers to `name(args)`: `None` for allowed, `Some(errno)` otherwise.
/// Allow rules are tried first (the profile's rules never overlap), then errno rules, then
/// the default.
fn verdict(p: &LinuxSeccomp, name: &str, args: &[u64]) -> Option<u32> {
    let rules = p.syscalls().as_ref().unwrap();
    let matching = rules
        .iter()
        .filter(|r| r.names().iter().any(|n| n == name))
        .filter(|r| {
            r.args().iter().flatten().all(|a| {
                let v = args[a.index()];
                match a.op() {
                    LinuxSeccompOperator::ScmpCmpEq => v == a.value(),
                    LinuxSeccompOperator::ScmpCmpLt => v < a.value(),
                    LinuxSeccompOperator::ScmpCmpGt => v > a.value(),
                    LinuxSeccompOperator::ScmpCmpMaskedEq => {
                        v & a.value() == a.value_two().unwrap()
                    }
                    op => panic!("evaluator lacks {op:?}"),
                }
            })
        });
    let mut errno = None;
    for r in matching {
        match r.action() {
            LinuxSeccompAction::ScmpActAllow => return None,
            LinuxSeccompAction::ScmpActErrno => errno = r.errno_ret(),
            a => panic!("unexpected action {a:?}"),
        }
    }
    Some(errno.unwrap_or_else(|| p.default_errno_ret().unwrap()))
}

fn profile() -> LinuxSeccomp {
    default_profile(Isolation::Runc).unwrap()
}

#[test]
fn default_is_eperm() {
    let p = profile();
    assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(p.default_errno_ret(), Some(EPERM));
    // The native architecture only: compat ABIs (i386, x32) are refused as a bad arch.
    assert_eq!(p.architectures().as_ref().unwrap().len(), 1);
}

#[test]
fn names_are_unique_and_well_formed() {
    let names = allowed_names();
    let unique: HashSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "a name is listed twice");
    for n in &names {
        assert!(
            n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{n:?}"
        );
    }
    // The conditional calls are not also allowed outright.
    for n in [
        "socket",
        "clone",
        "clone3",
        "personality",
        "ptrace",
        "mknod",
        "mknodat",
    ] {
        assert!(
            !unique.contains(&n.to_string()),
            "{n} allowed without conditions"
        );
    }
}

#[test]
fn ordinary_calls_are_allowed() {
    let p = profile();
    for n in [
        "read",
        "write",
        "openat",
        "close",
        "mmap",
        "mprotect",
        "futex",
        "execve",
        "wait4",
        "epoll_pwait",
        "eventfd2",
        "memfd_create",
        "rseq",
        "statx",
        "getrandom",
        "chroot",
        "io_setup",
        "sendmmsg",
        "setsockopt",
        "prctl",
        "seccomp",
        "exit_group",
    ] {
        assert_eq!(verdict(&p, n, &[0; 6]), None, "{n} refused");
    }
}

#[test]
fn kernel_surface_is_refused() {
    let p = profile();
    for n in [
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "bpf",
        "perf_event_open",
        "keyctl",
        "add_key",
        "request_key",
        "init_module",
        "finit_module",
        "kexec_load",
        "mount",
        "umount2",
        "fsopen",
        "open_tree",
        "move_mount",
        "unshare",
        "setns",
        "userfaultfd",
        "open_by_handle_at",
        "name_to_handle_at",
        "socketcall",
        "modify_ldt",
        "process_vm_readv",
        "process_vm_writev",
        "pidfd_getfd",
        "kcmp",
        "clock_settime",
        "settimeofday",
        "adjtimex",
        "reboot",
        "swapon",
        "syslog",
        "acct",
        "pivot_root",
        "sethostname",
        "mbind",
        "vhangup",
        "lookup_dcookie",
        "quotactl",
    ] {
        assert_eq!(verdict(&p, n, &[0; 6]), Some(EPERM), "{n} not refused");
    }
}

#[test]
fn socket_families_are_unix_inet_inet6_netlink() {
    let p = profile();
    for family in 0..64u64 {
        let want = if [1, 2, 10, 16].contains(&family) {
            None
        } else {
            Some(EPERM)
        };
        assert_eq!(
            verdict(&p, "socket", &[family, 1, 0, 0, 0, 0]),
            want,
            "family {family}"
        );
    }
    // AF_VSOCK with garbage in the upper half of the register is still refused.
    assert_eq!(
        verdict(&p, "socket", &[40 | 1 << 32, 1, 0, 0, 0, 0]),
        Some(EPERM)
    );
}

#[test]
fn clone_without_namespaces_only_and_clone3_is_enosys() {
    let p = profile();
    let thread = 0x3d0f00; // glibc's pthread_create flags
    assert_eq!(verdict(&p, "clone", &[thread, 0, 0, 0, 0, 0]), None);
    assert_eq!(verdict(&p, "clone", &[17, 0, 0, 0, 0, 0]), None); // fork: SIGCHLD
    for flag in [
        0x2_0000u64,
        0x200_0000,
        0x400_0000,
        0x800_0000,
        0x1000_0000,
        0x2000_0000,
        0x4000_0000,
    ] {
        assert_eq!(
            verdict(&p, "clone", &[flag | 17, 0, 0, 0, 0, 0]),
            Some(EPERM),
            "{flag:#x}"
        );
    }
    assert_eq!(verdict(&p, "clone3", &[0; 6]), Some(ENOSYS));
    // Under gVisor its kernel answers ENOSYS (runsc would turn the rule's ENOSYS into EPERM).
    let g = default_profile(Isolation::Gvisor).unwrap();
    assert_eq!(verdict(&g, "clone3", &[0; 6]), None);
    assert_eq!(
        verdict(&g, "clone", &[0x1000_0011, 0, 0, 0, 0, 0]),
        Some(EPERM)
    );
}

#[test]
fn personality_ptrace_and_mknod_arguments() {
    let p = profile();
    for v in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
        assert_eq!(
            verdict(&p, "personality", &[v, 0, 0, 0, 0, 0]),
            None,
            "{v:#x}"
        );
    }
    for v in [
        0x0040_0000u64, /* READ_IMPLIES_EXEC */
        0x0004_0000,    /* ADDR_NO_RANDOMIZE */
        1,
    ] {
        assert_eq!(
            verdict(&p, "personality", &[v, 0, 0, 0, 0, 0]),
            Some(EPERM),
            "{v:#x}"
        );
    }
    for req in [0u64, 1, 7, 12, 17, 24, 0x4200, 0x4204, 0x4207, 0x420e] {
        assert_eq!(
            verdict(&p, "ptrace", &[req, 0, 0, 0, 0, 0]),
            None,
            "{req:#x}"
        );
    }
    for req in [PTRACE_ATTACH, PTRACE_SEIZE] {
        assert_eq!(verdict(&p, "ptrace", &[req, 1, 0, 0, 0, 0]), Some(EPERM));
    }
    for (name, i) in [("mknod", 1), ("mknodat", 2)] {
        let call = |mode: u64| {
            let mut a = [0; 6];
            a[i] = mode;
            verdict(&p, name, &a)
        };
        assert_eq!(call(0o010_644), None, "{name} fifo");
        assert_eq!(call(0o140_644), None, "{name} socket");
        assert_eq!(call(0o020_666), Some(EPERM), "{name} char device");
        assert_eq!(call(0o060_660), Some(EPERM), "{name} block device");
    }
}

/// Prints the runc profile as JSON (`cargo test -p cove-runtime --lib print_profile -- --ignored
/// --nocapture`), for trying it with runc or runsc by hand.
#[test]
#[ignore]
fn print_profile() {
    println!("{}", serde_json::to_string_pretty(&profile()).unwrap());
}
