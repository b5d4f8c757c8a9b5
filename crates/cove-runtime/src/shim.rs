//! The per-container shim:
//! `cove shim <id> <dir> <runtime> <runtime-root> <log-path> <oom-counter-file> <log-max-size>
//! <log-max-files> [--hide-host-net-sysctls] [<runtime global flag>...]`.
//!
//! Lifecycle: the daemon spawns it with stdout as a pipe; it forks (the parent exits at once,
//! so the shim is re-parented away from the daemon and survives it), starts a new session,
//! becomes a child subreaper and runs `<runtime> run --detach` (runc or runsc) with the write
//! end of a pipe as stdout/stderr (in detached non-tty mode the runtime hands these fds to the
//! container). It reports `started <init_pid> <shim_pid>` or `error <the runtime's message>` on
//! the daemon's pipe, then copies the container's output into the log at `<log-path>`, rotated
//! within `<log-max-size>` bytes × `<log-max-files>` files (see `shim_io` and `log_files`),
//! until the container's init exits (for runsc: the sandbox process, which exits with the
//! pod's init's status). It reaps it, reads the cgroup's OOM kill counter (before the runtime
//! deletes the cgroup), drains the pipe, records both in `<dir>/exit.json` and exits.
//!
//! Runs before any async runtime starts: std + nix/libc only, a handful of allocations.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{signal, SigHandler, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, setsid, ForkResult, Pid};

use crate::exit::{read_pid_file, write_exit_file, ExitStatus, INIT_PID_FILE, SHIM_PID_FILE};
use crate::log_files::{LogLimit, RotatingLog};
use crate::shim_io::{copy_until_exit, drain, output_pipe};
use crate::{cgroup, runc_cmd};

/// The shim option that runs the runtime with `/proc/sys/net` hidden (see [`hide_host_net_sysctls`]).
pub(crate) const HIDE_HOST_NET_SYSCTLS: &str = "--hide-host-net-sysctls";

/// How long the shim waits, after init exited, for its other children (runsc's gofer) to exit.
const OTHERS_TIMEOUT: Duration = Duration::from_secs(5);

struct ShimArgs<'a> {
    id: &'a str,
    dir: &'a Path,
    runc: &'a str,
    root: &'a str,
    log_path: &'a Path,
    oom_file: &'a Path,
    log_limit: LogLimit,
    hide_net_sysctls: bool,
    /// Flags for every runtime invocation, after `--root`/`--log` (runsc's `--platform=...`).
    global: &'a [String],
}

/// Entry point of `cove shim ...`; `args` are the arguments after `shim`. Returns the exit code.
/// Must be called before any threads (tokio) are started: it forks.
pub fn shim_main(args: &[String]) -> i32 {
    let (Some([id, dir, runc, root, log_path, oom_file, max_size, max_files]), rest) = (
        args.get(..8).and_then(|a| <&[String; 8]>::try_from(a).ok()),
        args.get(8..).unwrap_or_default(),
    ) else {
        eprintln!(
            "usage: cove shim <id> <dir> <runtime> <runtime-root> <log-path> <oom-counter-file> \
             <log-max-size> <log-max-files> [{HIDE_HOST_NET_SYSCTLS}] [<runtime global flag>...]"
        );
        return 2;
    };
    let (Ok(max_size), Ok(max_files)) = (max_size.parse(), max_files.parse()) else {
        eprintln!("cove shim: bad log limit {max_size:?} × {max_files:?}");
        return 2;
    };
    let hide_net_sysctls = rest.first().map(String::as_str) == Some(HIDE_HOST_NET_SYSCTLS);
    let a = ShimArgs {
        id,
        dir: Path::new(dir),
        runc,
        root,
        log_path: Path::new(log_path),
        oom_file: Path::new(oom_file),
        log_limit: LogLimit {
            max_size,
            max_files,
        },
        hide_net_sysctls,
        global: &rest[usize::from(hide_net_sysctls)..],
    };
    // Why fork: the daemon spawned us as its child. Letting that child exit right away re-parents
    // the real shim to init (or the nearest subreaper), so the daemon never has to reap it and
    // waits for it the same way before and after a daemon restart (pidfd + exit.json).
    // SAFETY: called before any other thread exists (see the doc above), so fork is sound.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => return 0,
        Ok(ForkResult::Child) => {}
        Err(e) => {
            report(&format!("error cannot fork the shim: {e}"));
            return 1;
        }
    }
    // New session: no controlling terminal, no signals from the daemon's process group.
    let _ = setsid();
    // SAFETY: installing SIG_IGN has no handler code that could run unsafely.
    unsafe {
        // The daemon may die while we write to the pipe; keep running.
        let _ = signal(Signal::SIGPIPE, SigHandler::SigIgn);
        let _ = signal(Signal::SIGHUP, SigHandler::SigIgn);
    }
    // Subreaper: when `runc run -d` exits, the container's init becomes our child.
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        report(&format!("error cannot become subreaper: {e}"));
        return 1;
    }
    let _ = std::env::set_current_dir("/");
    run(&a)
}

fn run(a: &ShimArgs) -> i32 {
    let shim_pid = std::process::id() as i32;
    if let Err(e) = std::fs::write(a.dir.join(SHIM_PID_FILE), shim_pid.to_string()) {
        report(&format!("error cannot write shim.pid: {e}"));
        return 1;
    }
    let mut log = match RotatingLog::open(a.log_path, a.log_limit) {
        Ok(l) => l,
        Err(e) => {
            report(&format!(
                "error cannot open log {}: {e}",
                a.log_path.display()
            ));
            return 1;
        }
    };
    let runc_log = a.dir.join("runc.log");
    let pid_file = a.dir.join(INIT_PID_FILE);
    // Why a pipe: the shim, not the container, writes the log, so the log's cap holds
    // whatever the container does (a file fd would let it write without limit).
    let (mut pipe, out, err) = match output_pipe().and_then(|p| {
        let err = p.write.try_clone()?;
        Ok((p.read, p.write, err))
    }) {
        Ok(p) => p,
        Err(e) => {
            report(&format!("error cannot make the output pipe: {e}"));
            return 1;
        }
    };
    let mut cmd = Command::new(a.runc);
    cmd.arg("--root")
        .arg(a.root)
        .arg("--log")
        .arg(&runc_log)
        .args(["--log-format", "json"])
        .args(a.global)
        .args(["run", "--detach", "--pid-file"])
        .arg(&pid_file)
        .arg("--bundle")
        .arg(a.dir)
        .arg(a.id)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    if a.hide_net_sysctls {
        // SAFETY: the closure runs in the forked child before exec; the shim is single-threaded
        // (see shim_main), so the few syscalls it makes (and their small allocations) are sound.
        unsafe { cmd.pre_exec(hide_host_net_sysctls) };
    }
    let status = cmd.status();
    // The write ends now belong to the container only: EOF once its processes are gone.
    drop(cmd);
    let failure = match status {
        Ok(s) if s.success() => None,
        Ok(s) => Some(
            runc_cmd::last_error(&runc_log)
                .unwrap_or_else(|| format!("{} run exited with {s}", a.runc)),
        ),
        Err(e) => Some(format!("cannot execute {}: {e}", a.runc)),
    };
    if let Some(msg) = failure {
        report(&format!("error {}", msg.replace('\n', " ")));
        return 1;
    }
    let Some(init_pid) = read_pid_file(&pid_file) else {
        report("error runc did not write the init pid file");
        return 1;
    };
    report(&format!("started {init_pid} {shim_pid}"));
    detach_stdio();
    release_startup_pages();

    copy_until_exit(&mut pipe, &mut log, init_pid);
    let status = reap_until(init_pid);
    let oom_killed = cgroup::read_oom_kills(a.oom_file) > 0;
    drain(&mut pipe, &mut log);
    let status = ExitStatus {
        oom_killed,
        ..status
    };
    if write_exit_file(a.dir, &status).is_err() {
        return 1;
    }
    0
}

/// Runs in the runtime's child process before exec: gives it (and the sandbox and gofer it
/// starts, which inherit it) a mount namespace of its own with an empty, read-only tmpfs over
/// `/proc/sys/net`.
///
/// Why: before it takes over the pod's network namespace, runsc refuses to run if that namespace
/// looks like the host's, and its test is "`/proc/sys/net/core/rmem_default` exists", a file
/// older kernels showed only in the initial namespace. Newer kernels show it in every network
/// namespace, so runsc (20221219, Debian 12) refuses every pod with "cannot run with network
/// enabled in root network namespace". The namespace it checks is the pod's own (cove-network
/// made it), so hiding the file from runsc only is safe: it reads nothing else there (gVisor's
/// network stack has its own settings). Propagation is made private first so the tmpfs never
/// reaches the host's mount table. The copy holds every other pod's overlay and `--disk` mount
/// but pins none for long: only `runsc run` (which exits once the pod runs) stays in it, while
/// runsc's gofer and sandbox pivot into namespaces of their own that hold their pod's root only
/// (tests/gvisor.rs `a_gvisor_pod_does_not_pin_another_pods_mounts`).
fn hide_host_net_sysctls() -> std::io::Result<()> {
    use nix::mount::{mount, MsFlags};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )?;
    mount(
        Some("none"),
        "/proc/sys/net",
        Some("tmpfs"),
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("size=4k"),
    )?;
    Ok(())
}

/// Gives back the pages of the binary that starting up touched. The shim is
/// `cove` itself, a large binary; loading it and running runc faulted in
/// (with the kernel's fault-around) megabytes of code and read-only data the
/// wait loop never uses again. MADV_PAGEOUT drops clean file-backed pages
/// from this process (they stay in the page cache, and are faulted back if
/// needed); it never discards data, unlike MADV_DONTNEED. Private anonymous
/// pages are left alone. Best effort: errors are ignored.
fn release_startup_pages() {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms), Some(_off), Some(_dev), Some(inode)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        // File-backed and not writable: code and read-only data.
        if inode == "0" || perms.as_bytes().get(1) == Some(&b'w') {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        else {
            continue;
        };
        // SAFETY: the range is one of this process's own mappings, read just
        // now from /proc/self/maps; MADV_PAGEOUT only affects residency, not
        // contents, so no memory the program relies on changes.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_PAGEOUT);
        }
    }
}

/// Reaps every child until `init_pid` has exited; returns its status.
fn reap_until(init_pid: i32) -> ExitStatus {
    let init = Pid::from_raw(init_pid);
    // If init was never re-parented to us (should not happen), its status is unknown: 255.
    let mut status = ExitStatus {
        code: 255,
        signal: None,
        oom_killed: false,
    };
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == init => {
                status.code = code;
                break;
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == init => {
                status.code = 128 + sig as i32;
                status.signal = Some(sig as i32);
                break;
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => break, // ECHILD: nothing left to wait for.
        }
    }
    // Reap the other children: with runc the pid namespace dies with its init, so they are
    // already gone; runsc's gofer exits right after its sandbox. Bounded, so a stuck child
    // cannot keep the exit status from the daemon.
    let deadline = Instant::now() + OTHERS_TIMEOUT;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(WaitStatus::StillAlive) => break,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => break, // ECHILD: all reaped.
        }
    }
    status
}

/// One line to the daemon on our stdout (the pipe). Errors are ignored: the daemon may be gone.
fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Points stdin/stdout/stderr at /dev/null so the daemon sees EOF and we hold no pipe open.
fn detach_stdio() {
    if let Ok(null) = OpenOptions::new().read(true).write(true).open("/dev/null") {
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard fds; `null` stays open for the duration of the call.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}
