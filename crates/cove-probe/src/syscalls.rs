//! Calls the seccomp allowlist refuses (io_uring, socket families, personality values) and
//! the everyday calls it must keep allowing (threads, epoll, eventfd, memfd, executable
//! memory, netlink route dumps), each as one subcommand.

use crate::outcome::{errno, from_ret, Outcome};

/// io_uring_setup(2) of an 8-entry ring; a returned fd is a working ring.
pub fn io_uring() -> Outcome {
    let mut params = [0u32; 30]; // struct io_uring_params is 120 bytes
                                 // SAFETY: a zeroed io_uring_params the kernel fills; the fd is freed at exit.
    let r = unsafe { libc::syscall(libc::SYS_io_uring_setup, 8, params.as_mut_ptr()) };
    from_ret("io_uring_setup(8)", r)
}

/// personality(2) to `persona`, restoring the old one if the change worked.
pub fn personality(persona: u64) -> Outcome {
    // SAFETY: 0xffffffff only queries the current persona.
    let old = unsafe { libc::personality(0xffff_ffff) };
    // SAFETY: an integer argument; the old persona is put back below.
    let r = unsafe { libc::personality(persona as libc::c_ulong) };
    if r < 0 {
        return Outcome::Refused(format!("personality({persona:#x}): {}", errno()));
    }
    if old >= 0 {
        // SAFETY: as above.
        unsafe { libc::personality(old as libc::c_ulong) };
    }
    Outcome::Succeeded(format!("personality({persona:#x}) returned {r:#x}"))
}

/// Four threads (glibc tries clone3 first and falls back to clone on ENOSYS), each joined.
pub fn threads() -> Outcome {
    let handles: Vec<_> = (0..4u64)
        .map(|i| std::thread::Builder::new().spawn(move || i * 2))
        .collect();
    let mut sum = 0;
    for h in handles {
        match h {
            Ok(h) => sum += h.join().unwrap_or(0),
            Err(e) => return Outcome::Refused(format!("spawning a thread: {e}")),
        }
    }
    Outcome::Succeeded(format!("4 threads ran (sum {sum})"))
}

/// epoll on an eventfd: the write wakes the wait.
pub fn epoll_eventfd() -> Outcome {
    // SAFETY: eventfd2 and epoll_create1 with integer arguments; fds are freed at exit.
    let (efd, ep) = unsafe { (libc::eventfd(0, libc::EFD_CLOEXEC), libc::epoll_create1(0)) };
    if efd < 0 || ep < 0 {
        return Outcome::Refused(format!("eventfd {efd}, epoll_create1 {ep}: {}", errno()));
    }
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: 7,
    };
    let one = 1u64.to_ne_bytes();
    // SAFETY: valid fds, an epoll_event and an 8-byte buffer that outlive the calls.
    let ready = unsafe {
        libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, efd, &mut ev);
        libc::write(efd, one.as_ptr().cast(), 8);
        libc::epoll_wait(ep, &mut ev, 1, 1000)
    };
    if ready == 1 && ev.u64 == 7 {
        Outcome::Succeeded("epoll_wait saw the eventfd".into())
    } else {
        Outcome::Refused(format!("epoll_wait returned {ready}: {}", errno()))
    }
}

/// memfd_create, then a shared mapping of it made executable (as JITs do).
pub fn memfd_exec() -> Outcome {
    // SAFETY: a NUL-terminated name; the fd is freed at exit.
    let fd = unsafe { libc::memfd_create(c"cove-probe".as_ptr(), libc::MFD_CLOEXEC) };
    // SAFETY: a valid fd and length.
    if fd < 0 || unsafe { libc::ftruncate(fd, 4096) } != 0 {
        return Outcome::Refused(format!("memfd_create/ftruncate: {}", errno()));
    }
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    // SAFETY: a fresh 4 KiB shared mapping of our own memfd, unmapped below.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), 4096, rw, libc::MAP_SHARED, fd, 0) };
    if p == libc::MAP_FAILED {
        return Outcome::Refused(format!("mmap: {}", errno()));
    }
    // SAFETY: the mapping made above.
    let r = unsafe { libc::mprotect(p, 4096, libc::PROT_READ | libc::PROT_EXEC) };
    // SAFETY: as above.
    unsafe { libc::munmap(p, 4096) };
    from_ret("mprotect(memfd mapping, PROT_EXEC)", r as i64)
}

/// An RTM_GETLINK dump over NETLINK_ROUTE (what `ip link` and getaddrinfo's
/// AI_ADDRCONFIG do); succeeds if the kernel answered with at least one link.
pub fn netlink_route() -> Outcome {
    // SAFETY: integer arguments; the fd is freed at exit.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE) };
    if fd < 0 {
        return Outcome::Refused(format!("socket(AF_NETLINK): {}", errno()));
    }
    // nlmsghdr (16 bytes) + ifinfomsg (16 bytes).
    let mut req = [0u8; 32];
    req[0..4].copy_from_slice(&32u32.to_ne_bytes());
    req[4..6].copy_from_slice(&libc::RTM_GETLINK.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    req[6..8].copy_from_slice(&flags.to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    // SAFETY: a valid fd and buffer; the kernel is the default destination of a netlink send.
    if unsafe { libc::send(fd, req.as_ptr().cast(), req.len(), 0) } < 0 {
        return Outcome::Refused(format!("send(RTM_GETLINK): {}", errno()));
    }
    let mut buf = vec![0u8; 32 * 1024];
    // SAFETY: a valid fd and buffer.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 16 {
        return Outcome::Refused(format!("recv(RTM_GETLINK) returned {n}: {}", errno()));
    }
    let typ = u16::from_ne_bytes([buf[4], buf[5]]);
    if typ == libc::RTM_NEWLINK {
        Outcome::Succeeded(format!("RTM_GETLINK answered with {n} bytes of links"))
    } else {
        Outcome::Refused(format!("RTM_GETLINK answered with message type {typ}"))
    }
}
