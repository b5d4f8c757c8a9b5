//! `cove-probe`: escape attempts, one per subcommand, run inside a pod by the security
//! tests (`crates/cove/tests/security/`).
//!
//! Each subcommand tries one thing a pod must not be able to do, with raw syscalls, and
//! exits **0 only if the attempt succeeded**, 1 if it was refused (printing why), 2 on a
//! usage error. The `control-*`-style subcommands (`fork`, `socket-udp`, `mkfifo`, ...) are
//! the same code paths doing something allowed, so a test can show the probe works.
//! Built as a static executable (`-C target-feature=+crt-static`) so it runs in any image.

mod exhaust;
mod fs;
mod kernel;
mod net;
mod outcome;
mod syscalls;

use outcome::Outcome;

const USAGE: &str = "usage: cove-probe <attack> [args...]
  processes:  find-proc NEEDLE | signal PID | ptrace PID | ptrace-child | pidfd-getfd PID
              process-vm-read PID
  files:      read PATH | write PATH DATA | write-same PATH | mknod PATH | mkfifo PATH
              chroot-escape PATH | open-by-handle
  kernel:     mount DIR | init-module | finit-module | keyctl | add-key | bpf | perf
              unshare-user | unshare-mount | clone-newuser | clone3-newuser | fork
              raise-nofile | uname
  network:    connect IP PORT | socket-raw | socket-packet | socket-udp
  seccomp:    io-uring | socket DOMAIN TYPE PROTO | personality PERSONA | threads
              epoll-eventfd | memfd-exec | netlink-route
  exhaustion: forkbomb | memhog | nofile | fill PATH MAX_MIB
exit 0: the attempt succeeded; 1: it was refused; 2: usage error";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let outcome = match a.as_slice() {
        ["find-proc", needle] => fs::find_proc(needle),
        ["signal", pid] => parse(pid).map_or_else(usage, kernel::signal),
        ["ptrace", pid] => parse(pid).map_or_else(usage, kernel::ptrace),
        ["ptrace-child"] => kernel::ptrace_child(),
        ["pidfd-getfd", pid] => parse(pid).map_or_else(usage, kernel::pidfd_getfd),
        ["process-vm-read", pid] => parse(pid).map_or_else(usage, kernel::process_vm_read),
        ["read", path] => fs::read(path),
        ["write", path, data] => fs::write(path, data.as_bytes()),
        ["write-same", path] => fs::write_same(path),
        ["mknod", path] => fs::mknod(path),
        ["mkfifo", path] => fs::mkfifo(path),
        ["chroot-escape", path] => fs::chroot_escape(path),
        ["open-by-handle"] => fs::open_by_handle(),
        ["mount", dir] => kernel::mount_tmpfs(dir),
        ["init-module"] => kernel::init_module(),
        ["finit-module"] => kernel::finit_module(),
        ["keyctl"] => kernel::keyctl(),
        ["add-key"] => kernel::add_key(),
        ["bpf"] => kernel::bpf(),
        ["perf"] => kernel::perf(),
        ["unshare-user"] => kernel::unshare(libc::CLONE_NEWUSER),
        ["unshare-mount"] => kernel::unshare(libc::CLONE_NEWNS),
        ["clone-newuser"] => kernel::clone_with(libc::CLONE_NEWUSER),
        ["clone3-newuser"] => kernel::clone3_newuser(),
        ["fork"] => kernel::clone_with(0),
        ["raise-nofile"] => exhaust::raise_nofile(),
        ["uname"] => kernel::uname(),
        ["connect", ip, port] => parse(port).map_or_else(usage, |p| net::connect(ip, p)),
        ["socket-raw"] => net::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP),
        ["socket-packet"] => net::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW,
            i32::from((libc::ETH_P_ALL as u16).to_be()),
        ),
        ["socket-udp"] => net::socket(libc::AF_INET, libc::SOCK_DGRAM, 0),
        ["io-uring"] => syscalls::io_uring(),
        ["socket", d, t, p] => match (parse(d), parse(t), parse(p)) {
            (Ok(d), Ok(t), Ok(p)) => net::socket(d, t, p),
            _ => usage(()),
        },
        ["personality", v] => parse_hex(v).map_or_else(usage, syscalls::personality),
        ["threads"] => syscalls::threads(),
        ["epoll-eventfd"] => syscalls::epoll_eventfd(),
        ["memfd-exec"] => syscalls::memfd_exec(),
        ["netlink-route"] => syscalls::netlink_route(),
        ["forkbomb"] => exhaust::forkbomb(),
        ["memhog"] => exhaust::memhog(),
        ["nofile"] => exhaust::nofile(),
        ["fill", path, max] => parse(max).map_or_else(usage, |m| exhaust::fill(path, m)),
        _ => usage(()),
    };
    std::process::exit(outcome.report());
}

fn parse<T: std::str::FromStr>(s: &str) -> Result<T, ()> {
    s.parse().map_err(|_| ())
}

/// A number written in decimal or, with `0x`, in hex.
fn parse_hex(s: &str) -> Result<u64, ()> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).map_err(|_| ()),
        None => parse(s),
    }
}

fn usage(_: ()) -> Outcome {
    Outcome::Usage(USAGE.to_string())
}
