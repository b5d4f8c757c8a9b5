//! Attempts on kernel-global state: signals and ptrace across the pid namespace, mounts,
//! modules, keyrings, bpf, perf, new namespaces.

use std::ffi::CString;

use crate::outcome::{errno, from_ret, Outcome};

/// SIGKILL to `pid` (a host process the test started, invisible from a pod).
pub fn signal(pid: i32) -> Outcome {
    // SAFETY: kill(2) with plain integers.
    from_ret(
        &format!("kill({pid}, SIGKILL)"),
        unsafe { libc::kill(pid, libc::SIGKILL) } as i64,
    )
}

/// PTRACE_ATTACH to `pid`, detaching again if it worked.
pub fn ptrace(pid: i32) -> Outcome {
    // SAFETY: ptrace(2) attach/detach with null addr/data; the tracee is only stopped.
    let r = unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, 0, 0) };
    if r < 0 {
        return Outcome::Refused(format!("ptrace(PTRACE_ATTACH, {pid}): {}", errno()));
    }
    // SAFETY: as above; reap the attach stop, then let it go.
    unsafe {
        libc::waitpid(pid, std::ptr::null_mut(), libc::__WALL);
        libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0);
    }
    Outcome::Succeeded(format!("attached to {pid}"))
}

/// pidfd_getfd(2): a copy of one of `pid`'s open file descriptors (the lowest it has), which needs
/// the same permission as attaching with ptrace.
pub fn pidfd_getfd(pid: i32) -> Outcome {
    // SAFETY: pidfd_open(2) with plain integers; the returned fd is ours.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        return Outcome::Refused(format!("pidfd_open({pid}): {}", errno()));
    }
    for fd in 0..1024 {
        // SAFETY: pidfd_getfd(2) with plain integers; a returned fd is ours (freed at exit).
        let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) };
        if r >= 0 {
            return Outcome::Succeeded(format!("pidfd_getfd({pid}, fd {fd}) returned fd {r}"));
        }
        let e = errno();
        if e.raw_os_error() != Some(libc::EBADF) {
            return Outcome::Refused(format!("pidfd_getfd({pid}, fd {fd}): {e}"));
        }
    }
    Outcome::Refused(format!("pidfd_getfd({pid}): no open fd below 1024"))
}

/// process_vm_readv(2): 8 bytes from the start of `pid`'s first readable mapping.
pub fn process_vm_read(pid: i32) -> Outcome {
    let maps = match std::fs::read_to_string(format!("/proc/{pid}/maps")) {
        Ok(m) => m,
        Err(e) => return Outcome::Refused(format!("reading /proc/{pid}/maps: {e}")),
    };
    let start = maps
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|p| p.starts_with('r'))
        })
        .find_map(|l| usize::from_str_radix(l.split('-').next()?, 16).ok());
    let Some(start) = start else {
        return Outcome::Refused(format!("no readable mapping in /proc/{pid}/maps"));
    };
    let mut buf = [0u8; 8];
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: start as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: one local iovec over `buf`, which outlives the call; the remote one is only read.
    let r = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    from_ret(&format!("process_vm_readv({pid}, {start:#x})"), r as i64)
}

/// The control for [`ptrace`]: tracing within our own tree (a child that asks for it with
/// PTRACE_TRACEME, as debuggers that start their debuggee do) works.
pub fn ptrace_child() -> Outcome {
    // SAFETY: fork in a single-threaded program; the child only makes raw syscalls and _exits.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Outcome::Refused(format!("fork: {}", errno()));
    }
    if child == 0 {
        // SAFETY: async-signal-safe calls in the forked child.
        unsafe {
            if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) != 0 {
                libc::_exit(3);
            }
            libc::raise(libc::SIGSTOP);
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child; a traced child's stop is reported without WUNTRACED.
    unsafe { libc::waitpid(child, &mut status, 0) };
    let traced = libc::WIFSTOPPED(status);
    // SAFETY: our own child.
    unsafe {
        libc::kill(child, libc::SIGKILL);
        libc::waitpid(child, std::ptr::null_mut(), 0);
    }
    if traced {
        Outcome::Succeeded(format!("traced child {child} (PTRACE_TRACEME)"))
    } else {
        Outcome::Refused(format!(
            "child {child} could not be traced (status {status:#x})"
        ))
    }
}

/// mount(2) of a tmpfs on `dir`.
pub fn mount_tmpfs(dir: &str) -> Outcome {
    let _ = std::fs::create_dir_all(dir);
    let (Ok(src), Ok(target), Ok(fstype)) = (
        CString::new("none"),
        CString::new(dir),
        CString::new("tmpfs"),
    ) else {
        return Outcome::Usage(format!("bad path {dir:?}"));
    };
    // SAFETY: NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    from_ret(&format!("mount tmpfs on {dir}"), r as i64)
}

/// A module call is refused only if it fails the permission check (EPERM) or the
/// call does not exist (ENOSYS); any other error means the kernel looked at the module.
fn module_outcome(what: &str, ret: i64) -> Outcome {
    if ret >= 0 {
        return Outcome::Succeeded(format!("{what} loaded a module"));
    }
    let e = errno();
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::ENOSYS) => Outcome::Refused(format!("{what}: {e}")),
        _ => Outcome::Succeeded(format!("{what} got past the permission check: {e}")),
    }
}

/// init_module(2) of a (bogus) image.
pub fn init_module() -> Outcome {
    let image = [0u8; 64];
    let params = c"";
    // SAFETY: a valid buffer and length, a NUL-terminated parameter string.
    let r = unsafe {
        libc::syscall(
            libc::SYS_init_module,
            image.as_ptr(),
            image.len(),
            params.as_ptr(),
        )
    };
    module_outcome("init_module", r)
}

/// finit_module(2) of /bin/busybox (not a module, so only the permission check matters).
pub fn finit_module() -> Outcome {
    let path = c"/proc/self/exe";
    // SAFETY: open(2) of a NUL-terminated path.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Outcome::Usage(format!("open /proc/self/exe: {}", errno()));
    }
    // SAFETY: a valid fd and an empty parameter string.
    let r = unsafe { libc::syscall(libc::SYS_finit_module, fd, c"".as_ptr(), 0) };
    module_outcome("finit_module", r)
}

/// keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, create).
pub fn keyctl() -> Outcome {
    // SAFETY: integer arguments only.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, 0, -3i64, 1) };
    from_ret("keyctl(GET_KEYRING_ID, session)", r)
}

/// add_key("user", ...) into the process keyring.
pub fn add_key() -> Outcome {
    let payload = b"x";
    // SAFETY: NUL-terminated type and description, a valid payload buffer.
    let r = unsafe {
        libc::syscall(
            libc::SYS_add_key,
            c"user".as_ptr(),
            c"cove-probe".as_ptr(),
            payload.as_ptr(),
            payload.len(),
            -2i64,
        )
    };
    from_ret("add_key(user)", r)
}

/// bpf(BPF_MAP_CREATE) of a one-entry array map.
pub fn bpf() -> Outcome {
    let mut attr = [0u32; 32];
    attr[0] = 2; // BPF_MAP_TYPE_ARRAY
    attr[1] = 4; // key_size
    attr[2] = 4; // value_size
    attr[3] = 1; // max_entries
                 // SAFETY: a zero-padded bpf_attr of 128 bytes that outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, 0, attr.as_ptr(), 128) };
    from_ret("bpf(BPF_MAP_CREATE)", r)
}

/// perf_event_open of a user-space-only software counter on ourselves (allowed to
/// unprivileged users at perf_event_paranoid <= 2, so only the filter stops it).
pub fn perf() -> Outcome {
    let mut attr = [0u64; 16];
    attr[0] = 1 | (128 << 32); // type PERF_TYPE_SOFTWARE, size 128
    attr[1] = 0; // config PERF_COUNT_SW_CPU_CLOCK
    attr[5] = 1 | (1 << 5) | (1 << 6); // disabled, exclude_kernel, exclude_hv
                                       // SAFETY: a zero-padded perf_event_attr of 128 bytes.
    let r = unsafe { libc::syscall(libc::SYS_perf_event_open, attr.as_ptr(), 0, -1, -1, 0) };
    from_ret("perf_event_open(software, self)", r)
}

/// unshare(2) with `flags`.
pub fn unshare(flags: i32) -> Outcome {
    // SAFETY: integer argument only.
    from_ret(
        &format!("unshare({flags:#x})"),
        unsafe { libc::unshare(flags) } as i64,
    )
}

/// Raw clone(2) with `flags | SIGCHLD`; the child exits at once. `fork` is `flags == 0`.
pub fn clone_with(flags: i32) -> Outcome {
    let f = (flags | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: clone without CLONE_VM behaves like fork; the child only calls _exit.
    let r = unsafe { libc::syscall(libc::SYS_clone, f, 0, 0, 0, 0) };
    reap_clone(&format!("clone({flags:#x})"), r)
}

/// clone3(2) with CLONE_NEWUSER (the flags are in memory, out of a seccomp filter's sight).
pub fn clone3_newuser() -> Outcome {
    let mut args = [0u64; 11];
    args[0] = libc::CLONE_NEWUSER as u64;
    args[4] = libc::SIGCHLD as u64; // exit_signal
                                    // SAFETY: a zeroed clone_args of 88 bytes; the child only calls _exit.
    let r = unsafe { libc::syscall(libc::SYS_clone3, args.as_ptr(), 88) };
    reap_clone("clone3(CLONE_NEWUSER)", r)
}

fn reap_clone(what: &str, r: i64) -> Outcome {
    if r == 0 {
        // SAFETY: in the child: leave without running anything of the parent's.
        unsafe { libc::_exit(0) };
    }
    if r < 0 {
        return Outcome::Refused(format!("{what}: {}", errno()));
    }
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(r as i32, std::ptr::null_mut(), 0) };
    Outcome::Succeeded(format!("{what} made child {r}"))
}

/// uname(2): an allowed syscall, the control of the kernel family.
pub fn uname() -> Outcome {
    // SAFETY: utsname is plain data; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to utsname.
    from_ret("uname", unsafe { libc::uname(&mut u) } as i64)
}
