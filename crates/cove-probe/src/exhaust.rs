//! Exhaustion attempts: processes, memory, file descriptors, disk. Each should end at the
//! pod's own limit; "success" means it went past where a limit should have stopped it.

use std::io::Write;

use crate::outcome::{errno, Outcome};

/// Processes after which a fork bomb counts as unbounded.
const FORK_CEILING: u64 = 100_000;
/// Memory after which a hog counts as unbounded.
const MEM_CEILING_MIB: u64 = 64 * 1024;

fn say(msg: &str) {
    println!("{msg}");
    let _ = std::io::stdout().flush();
}

fn hold() -> ! {
    loop {
        // SAFETY: pause(2) has no arguments; the test stops the pod.
        unsafe { libc::pause() };
    }
}

/// Forks children that sleep until fork fails, reports the count, then holds them all
/// until the pod is stopped.
pub fn forkbomb() -> Outcome {
    let mut n: u64 = 0;
    loop {
        // SAFETY: fork in a single-threaded program; the child only sleeps.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            hold();
        }
        if pid < 0 {
            say(&format!(
                "forkbomb: forked {n} processes, then: {}",
                errno()
            ));
            hold();
        }
        n += 1;
        if n >= FORK_CEILING {
            return Outcome::Succeeded(format!("forked {n} processes"));
        }
    }
}

/// Allocates and touches memory, 16 MiB at a time, until something stops it.
pub fn memhog() -> Outcome {
    let mut held: Vec<Vec<u8>> = Vec::new();
    for i in 1..=MEM_CEILING_MIB / 16 {
        held.push(vec![0x5a; 16 << 20]);
        if i % 4 == 0 {
            say(&format!("memhog: {} MiB", i * 16));
        }
    }
    Outcome::Succeeded(format!(
        "held {MEM_CEILING_MIB} MiB ({} blocks)",
        held.len()
    ))
}

fn nofile_limit() -> (u64, u64) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    (r.rlim_cur, r.rlim_max)
}

/// Opens /dev/null until open fails. Refused when it stops at RLIMIT_NOFILE (EMFILE);
/// succeeded if the host's file table ran out (ENFILE) first.
pub fn nofile() -> Outcome {
    let (soft, hard) = nofile_limit();
    let mut opened: u64 = 0;
    loop {
        // SAFETY: open(2) of a NUL-terminated path; fds are left to the process's exit.
        let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
        if fd >= 0 {
            opened += 1;
            continue;
        }
        let e = errno();
        let msg =
            format!("opened {opened} files, then: {e}; RLIMIT_NOFILE soft {soft} hard {hard}");
        return match e.raw_os_error() {
            Some(libc::EMFILE) => Outcome::Refused(msg),
            _ => Outcome::Succeeded(msg),
        };
    }
}

/// setrlimit(NOFILE) above the hard limit (needs CAP_SYS_RESOURCE).
pub fn raise_nofile() -> Outcome {
    let (_, hard) = nofile_limit();
    let r = libc::rlimit {
        rlim_cur: hard + 1,
        rlim_max: hard + 1,
    };
    // SAFETY: a valid rlimit pointer.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } == 0 {
        Outcome::Succeeded(format!("raised RLIMIT_NOFILE above its hard limit {hard}"))
    } else {
        Outcome::Refused(format!("setrlimit NOFILE {}: {}", hard + 1, errno()))
    }
}

/// Writes 1 MiB blocks to `path` until the disk is full or `max_mib` are written.
pub fn fill(path: &str, max_mib: u64) -> Outcome {
    let mut f = match std::fs::File::create(path) {
        Ok(f) => f,
        Err(e) => return Outcome::Usage(format!("create {path}: {e}")),
    };
    let block = vec![0xa5u8; 1 << 20];
    let mut written: u64 = 0;
    while written < max_mib << 20 {
        match f.write(&block) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) => {
                return Outcome::Refused(format!(
                    "wrote {} MiB to {path}, then: {e}",
                    written >> 20
                ))
            }
        }
    }
    match f.sync_all() {
        Ok(()) => Outcome::Succeeded(format!("wrote {} MiB to {path}", written >> 20)),
        Err(e) => Outcome::Refused(format!(
            "wrote {} MiB to {path}, then fsync: {e}",
            written >> 20
        )),
    }
}
