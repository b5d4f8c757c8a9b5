//! The seccomp profile of every pod: an allowlist. A syscall not named here fails with
//! EPERM (the profile's default action, as in Docker's and containerd's default profiles).
//!
//! What is allowed is Docker's default profile resolved against the capabilities Cove grants
//! (see `spec.rs`: no CAP_SYS_ADMIN, SYS_PTRACE, SYS_MODULE, SYS_TIME, SYS_NICE, BPF, PERFMON,
//! ...), so of Docker's capability-conditional groups only `chroot` (CAP_SYS_CHROOT) is in;
//! the unconditional names are in [`allowed::ALLOWED`]. On top of that, calls allowed only
//! with certain arguments:
//!
//! - `socket`: the families a pod needs, AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK. Docker
//!   allows every family but AF_ALG and AF_VSOCK; vsock traffic bypasses the pod's network
//!   namespace and firewall, and the other families (packet, bluetooth, alg, rds, tipc, ...)
//!   are kernel surface no web workload uses.
//! - `clone`: only without namespace flags, as Docker; `clone3` (flags in memory, where a
//!   filter cannot look) answers ENOSYS, so libc falls back to `clone`. (Under gVisor, gVisor's
//!   kernel answers that ENOSYS: see [`default_profile`].)
//! - `personality`: only the values Docker allows (query, Linux, ADDR_NO_RANDOMIZE, ...).
//! - `ptrace`: every request but PTRACE_ATTACH and PTRACE_SEIZE, so a process may trace a
//!   child that asks for it (PTRACE_TRACEME, as debuggers start their debuggee) but attach to
//!   nothing else. Docker allows all of ptrace on kernels >= 4.8; Cove keeps the stricter rule
//!   it had, and refuses the other calls that need ptrace-attach permission too:
//!   `process_vm_readv`, `process_vm_writev`, `pidfd_getfd`, `kcmp`.
//! - `mknod`, `mknodat`: regular files, fifos and sockets, never device nodes (CAP_MKNOD is
//!   dropped, but a runtime with its own kernel, gVisor, checks that itself).
//!
//! Not allowed, among others: `io_uring_*` (as Docker), `bpf`, `perf_event_open`, keyrings,
//! module loading, `mount` and the new mount API, `unshare`, `setns`, `userfaultfd`,
//! `open_by_handle_at`, clock setting, `reboot`, `kexec_*`, `socketcall`, `modify_ldt`.
//!
//! The default errno is EPERM, as Docker's `defaultErrnoRet`: a syscall the profile refuses
//! looks like one the caller lacks privilege for, which programs report clearly. Syscalls
//! newer than the profile do not need ENOSYS from the profile: runc answers ENOSYS itself for
//! every syscall number above the highest its libseccomp knows, so libc's fallbacks to older
//! calls keep working.

#[path = "seccomp_allowed.rs"]
mod allowed;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

use crate::{Isolation, RuntimeError};

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// The socket families a pod may open: AF_UNIX, AF_INET, AF_INET6, AF_NETLINK.
pub(crate) const SOCKET_FAMILIES: &[u64] = &[1, 2, 10, 16];

/// `personality` values Docker allows: PER_LINUX, PER_LINUX32, UNAME26, PER_LINUX32|UNAME26,
/// and 0xffffffff (query the current persona).
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// `clone` flags that create namespaces: NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID,
/// NEWNET. A clone asking for any of them is refused.
const CLONE_NAMESPACE_FLAGS: u64 =
    0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000;

const PTRACE_ATTACH: u64 = 16;
const PTRACE_SEIZE: u64 = 0x4206;
/// The ptrace requests between ATTACH and SEIZE that exist (DETACH .. SINGLEBLOCK, and
/// SETOPTIONS .. SETREGSET); everything below ATTACH and above SEIZE is allowed by range.
const PTRACE_MIDDLE: &[std::ops::RangeInclusive<u64>] = &[17..=33, 0x4200..=0x4205];

const S_IFMT: u64 = 0o170_000;
/// File types `mknod` may make: a regular file (also type 0), a fifo, a socket.
const MKNOD_TYPES: &[u64] = &[0, 0o100_000, 0o010_000, 0o140_000];

/// Syscalls allowed on this architecture only (Docker's per-arch groups).
#[cfg(target_arch = "x86_64")]
const ARCH_ALLOWED: &[&str] = &["arch_prctl"];
#[cfg(target_arch = "aarch64")]
const ARCH_ALLOWED: &[&str] = &[
    "arm_fadvise64_64",
    "arm_sync_file_range",
    "sync_file_range2",
    "breakpoint",
    "cacheflush",
    "set_tls",
];
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ARCH_ALLOWED: &[&str] = &[];

/// The filter's architectures: the native one only, where Docker also lists the compat ABIs
/// (i386 and x32 on x86_64, arm on aarch64). A system call made through a compat ABI is
/// refused by the filter's bad-architecture action: those entry points are a frequent home of
/// kernel bugs, few images need them, and each extra architecture made runc's filter build
/// cost about 7 ms more per container start (measured: ~15 ms for three against ~1 ms for one).
#[cfg(target_arch = "x86_64")]
const ARCHES: &[Arch] = &[Arch::ScmpArchX86_64];
#[cfg(target_arch = "aarch64")]
const ARCHES: &[Arch] = &[Arch::ScmpArchAarch64];
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ARCHES: &[Arch] = &[Arch::ScmpArchNative];

/// Every syscall name allowed without conditions.
pub(crate) fn allowed_names() -> Vec<String> {
    allowed::ALLOWED
        .iter()
        .flat_map(|line| line.split_whitespace())
        .chain(ARCH_ALLOWED.iter().copied())
        // The one capability-conditional group of Docker's whose capability Cove grants.
        .chain(["chroot"])
        .map(str::to_string)
        .collect()
}

/// The filter written into the spec of every container `isolation` runs.
pub(crate) fn default_profile(isolation: Isolation) -> Result<LinuxSeccomp, RuntimeError> {
    let mut names = allowed_names();
    let mut syscalls = Vec::new();
    match isolation {
        Isolation::Runc => syscalls.push(
            LinuxSyscallBuilder::default()
                .names(vec!["clone3".to_string()])
                .action(LinuxSeccompAction::ScmpActErrno)
                .errno_ret(ENOSYS)
                .build()?,
        ),
        // runsc 20221219 ignores a rule's errnoRet and would answer EPERM, on which glibc
        // does not fall back to clone, so no thread could start. Its kernel has no clone3 and
        // answers ENOSYS itself; the namespaces a later gVisor's clone3 could make would be
        // its own kernel's, not the host's.
        Isolation::Gvisor => names.push("clone3".to_string()),
    }
    syscalls.insert(
        0,
        LinuxSyscallBuilder::default()
            .names(names)
            .action(LinuxSeccompAction::ScmpActAllow)
            .build()?,
    );
    for &family in SOCKET_FAMILIES {
        syscalls.push(allow_if(
            "socket",
            0,
            LinuxSeccompOperator::ScmpCmpEq,
            family,
        )?);
    }
    for &persona in PERSONALITIES {
        syscalls.push(allow_if(
            "personality",
            0,
            LinuxSeccompOperator::ScmpCmpEq,
            persona,
        )?);
    }
    syscalls.push(allow_masked("clone", 0, CLONE_NAMESPACE_FLAGS, 0)?);
    syscalls.push(allow_if(
        "ptrace",
        0,
        LinuxSeccompOperator::ScmpCmpLt,
        PTRACE_ATTACH,
    )?);
    for request in PTRACE_MIDDLE.iter().cloned().flatten() {
        syscalls.push(allow_if(
            "ptrace",
            0,
            LinuxSeccompOperator::ScmpCmpEq,
            request,
        )?);
    }
    syscalls.push(allow_if(
        "ptrace",
        0,
        LinuxSeccompOperator::ScmpCmpGt,
        PTRACE_SEIZE,
    )?);
    for (name, mode_arg) in [("mknod", 1), ("mknodat", 2)] {
        for &kind in MKNOD_TYPES {
            syscalls.push(allow_masked(name, mode_arg, S_IFMT, kind)?);
        }
    }
    Ok(LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(EPERM)
        .architectures(ARCHES.to_vec())
        .syscalls(syscalls)
        .build()?)
}

/// Allows `name` when its argument `index` compares to `value` by `op`.
fn allow_if(
    name: &str,
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
) -> Result<LinuxSyscall, RuntimeError> {
    allow_when(
        name,
        LinuxSeccompArgBuilder::default()
            .index(index)
            .value(value)
            .op(op)
            .build()?,
    )
}

/// Allows `name` when its argument `index` masked with `mask` equals `value`.
fn allow_masked(
    name: &str,
    index: usize,
    mask: u64,
    value: u64,
) -> Result<LinuxSyscall, RuntimeError> {
    let arg = LinuxSeccompArgBuilder::default()
        .index(index)
        .value(mask)
        .value_two(value)
        .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
        .build()?;
    allow_when(name, arg)
}

/// Allows `name` when its one argument rule holds.
fn allow_when(name: &str, arg: LinuxSeccompArg) -> Result<LinuxSyscall, RuntimeError> {
    Ok(LinuxSyscallBuilder::default()
        .names(vec![name.to_string()])
        .action(LinuxSeccompAction::ScmpActAllow)
        .args(vec![arg])
        .build()?)
}

#[cfg(test)]
#[path = "seccomp_tests.rs"]
mod tests;
