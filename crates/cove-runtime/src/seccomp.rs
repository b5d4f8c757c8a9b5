//! The default seccomp filter: everything a normal program uses is allowed;
//! the syscalls that reach kernel-global state or widen the attack surface
//! (module loading, kexec, keyrings, bpf, perf, namespace creation, clock
//! setting, ...) fail with EPERM, as in Docker's and Podman's default
//! profiles. Dropped capabilities already deny most of them; the filter makes
//! that hold even if a capability check has a bug. `ptrace` may not attach to other
//! processes (PTRACE_ATTACH, PTRACE_SEIZE); a child may still ask to be traced. The other calls
//! that need ptrace-attach permission over another process fail too: `process_vm_readv`,
//! `process_vm_writev`, `pidfd_getfd`, `kcmp`. (`/proc/<pid>/mem` cannot be filtered by
//! syscall: a process may still open it for a same-user process of its own pod, as on any
//! Linux host without Yama; nothing outside the pod's pid namespace is visible.) `mknod`
//! of block and character devices fails too (fifos and sockets are fine).

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

use crate::RuntimeError;

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// Syscalls that always fail with EPERM inside a pod.
const DENIED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pidfd_getfd",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "syslog",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vhangup",
    "adjtimex",
];

const S_IFMT: u64 = 0o170_000;
const S_IFBLK: u64 = 0o060_000;
const S_IFCHR: u64 = 0o020_000;
const PTRACE_ATTACH: u64 = 16;
const PTRACE_SEIZE: u64 = 0x4206;

/// `clone` flags that create namespaces; a clone asking for any is refused.
const CLONE_NAMESPACE_FLAGS: &[u64] = &[
    0x0002_0000, // CLONE_NEWNS
    0x0200_0000, // CLONE_NEWCGROUP
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x1000_0000, // CLONE_NEWUSER
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
];

/// The filter written into every container's spec.
pub(crate) fn default_profile() -> Result<LinuxSeccomp, RuntimeError> {
    let mut syscalls: Vec<LinuxSyscall> = vec![LinuxSyscallBuilder::default()
        .names(DENIED.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(EPERM)
        .build()?];
    for &flag in CLONE_NAMESPACE_FLAGS {
        syscalls.push(
            LinuxSyscallBuilder::default()
                .names(vec!["clone".to_string()])
                .action(LinuxSeccompAction::ScmpActErrno)
                .errno_ret(EPERM)
                .args(vec![LinuxSeccompArgBuilder::default()
                    .index(0usize)
                    .value(flag)
                    .value_two(flag)
                    .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
                    .build()?])
                .build()?,
        );
    }
    // ptrace only within the caller's own tree: a debuggee may ask its parent to trace it
    // (PTRACE_TRACEME), but nothing may attach to a process it did not start that way —
    // not the pod's init, not a process `cove container exec` started. (Yama's
    // ptrace_scope=1 gives descendants-only on hosts that have it; this holds everywhere.)
    for request in [PTRACE_ATTACH, PTRACE_SEIZE] {
        syscalls.push(
            LinuxSyscallBuilder::default()
                .names(vec!["ptrace".to_string()])
                .action(LinuxSeccompAction::ScmpActErrno)
                .errno_ret(EPERM)
                .args(vec![LinuxSeccompArgBuilder::default()
                    .index(0usize)
                    .value(request)
                    .op(LinuxSeccompOperator::ScmpCmpEq)
                    .build()?])
                .build()?,
        );
    }
    // Device nodes: CAP_MKNOD is dropped, but a runtime with its own kernel (gVisor)
    // checks that itself; refuse block and character devices here for every runtime.
    for (name, mode_arg) in [("mknod", 1usize), ("mknodat", 2)] {
        for kind in [S_IFBLK, S_IFCHR] {
            syscalls.push(
                LinuxSyscallBuilder::default()
                    .names(vec![name.to_string()])
                    .action(LinuxSeccompAction::ScmpActErrno)
                    .errno_ret(EPERM)
                    .args(vec![LinuxSeccompArgBuilder::default()
                        .index(mode_arg)
                        .value(S_IFMT)
                        .value_two(kind)
                        .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
                        .build()?])
                    .build()?,
            );
        }
    }
    // clone3 passes its flags in memory, where a filter cannot look: make it
    // unavailable so libc falls back to clone, which is filtered above.
    syscalls.push(
        LinuxSyscallBuilder::default()
            .names(vec!["clone3".to_string()])
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(ENOSYS)
            .build()?,
    );
    Ok(LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(vec![
            Arch::ScmpArchX86_64,
            Arch::ScmpArchX86,
            Arch::ScmpArchX32,
            Arch::ScmpArchAarch64,
        ])
        .syscalls(syscalls)
        .build()?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn profile_denies_module_loading_and_namespaces() {
        let p = super::default_profile().unwrap();
        let names: Vec<String> = p
            .syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .flat_map(|s| s.names().clone())
            .collect();
        for n in [
            "init_module",
            "kexec_load",
            "unshare",
            "setns",
            "bpf",
            "clone",
            "clone3",
            "mount",
            "ptrace",
            "pidfd_getfd",
            "process_vm_readv",
            "process_vm_writev",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} not filtered");
        }
    }
}
