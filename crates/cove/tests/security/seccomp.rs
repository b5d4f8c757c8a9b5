//! The seccomp allowlist, attacked from inside a pod: io_uring, socket families other than
//! unix/inet/inet6/netlink (vsock, packet, alg, bluetooth, ...), personality flags, and the
//! masked `/proc/kpage*`; next to the everyday calls the allowlist must keep (threads through
//! the clone3 fallback, epoll, eventfd, memfd, executable memory, netlink route dumps), in the
//! static probe and in a real Python workload.

use crate::attacker::*;
use crate::common::*;

/// EPERM in the probe's output: the errno the filter answers with. The kernel itself (the
/// host's under runc, gVisor's) would answer these calls with success, EAFNOSUPPORT or
/// ENOSYS, so EPERM shows the filter refused them.
const EPERM: &str = "(os error 1)";

fn allowlist_refuses_what_pods_do_not_need(iso: Isolation) {
    let d = Daemon::start();
    let a = Attacker::start(&d, iso, &[]);

    // Controls: what ordinary programs do still works.
    for control in [
        &["threads"][..],
        &["fork"],
        &["ptrace-child"],
        &["epoll-eventfd"],
        &["memfd-exec"],
        &["netlink-route"],
        &["socket", "1", "1", "0"],  // AF_UNIX stream
        &["socket", "2", "2", "0"],  // AF_INET datagram
        &["socket", "10", "1", "0"], // AF_INET6 stream
        &["socket", "16", "3", "0"], // AF_NETLINK raw, NETLINK_ROUTE
    ] {
        a.succeeds(control);
    }
    // The personalities the filter allows. (gVisor's kernel answers EINVAL to every one.)
    if iso == Isolation::Runc {
        a.succeeds(&["personality", "0x0"]);
        a.succeeds(&["personality", "0xffffffff"]);
    }

    for attack in [
        &["io-uring"][..],
        &["socket", "40", "1", "0"], // AF_VSOCK: around the netns and the firewall
        &["socket", "17", "2", "0"], // AF_PACKET
        &["socket", "38", "5", "0"], // AF_ALG: the kernel's crypto API
        &["socket", "31", "3", "1"], // AF_BLUETOOTH
        &["socket", "21", "5", "0"], // AF_RDS
        &["socket", "30", "5", "0"], // AF_TIPC
        &["socket", "44", "3", "0"], // AF_XDP
        &["socket", "3", "5", "0"],  // AF_AX25
        &["personality", "0x400000"], // READ_IMPLIES_EXEC
        &["personality", "0x40000"], // ADDR_NO_RANDOMIZE
    ] {
        let out = a.refused(attack);
        assert!(
            out.contains(EPERM),
            "[{iso:?}] {attack:?} refused by the kernel, not the filter: {out}"
        );
    }

    // Masked: they read as empty (runc binds /dev/null over them).
    for path in [
        "/proc/kpageflags",
        "/proc/kpagecount",
        "/proc/kpagecgroup",
        "/proc/kcore",
        "/proc/interrupts",
        "/proc/timer_list",
        "/proc/sched_debug",
    ] {
        a.refused(&["read", path]);
    }
    // Control: /proc itself is readable.
    a.succeeds(&["read", "/proc/self/status"]);
}

/// A Python workload under the allowlist: threads, subprocess, multiprocessing, asyncio,
/// sockets of every allowed family, epoll, eventfd, memfd, executable mmap; and, through
/// ctypes, the refused calls answering EPERM. The pod serves its findings as JSON.
const PYTHON_CHECKS: &str = r#"
import asyncio, ctypes, json, mmap, multiprocessing, os, select, socket, subprocess, threading
import http.server

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
works, refused = {}, {}

def check(name, fn):
    try:
        fn()
        works[name] = "ok"
    except Exception as e:
        works[name] = repr(e)

def errno_of(name, fn):
    try:
        fn()
        refused[name] = "allowed"
    except OSError as e:
        refused[name] = e.errno

def syscall(*args):
    r = libc.syscall(*[ctypes.c_long(a) for a in args])
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r

def threads():
    out = []
    ts = [threading.Thread(target=out.append, args=(i,)) for i in range(8)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert sorted(out) == list(range(8))

def tcp(family, host):
    with socket.socket(family, socket.SOCK_STREAM) as srv:
        srv.bind((host, 0))
        srv.listen()
        with socket.create_connection(srv.getsockname()[:2]) as c, srv.accept()[0] as s:
            c.sendall(b"ping")
            assert s.recv(4) == b"ping"

def unix():
    a, b = socket.socketpair(socket.AF_UNIX)
    a.sendall(b"x")
    assert b.recv(1) == b"x"

def netlink():
    assert "lo" in [name for _, name in socket.if_nameindex()]

def epoll_eventfd():
    ep, fd = select.epoll(), os.eventfd(0)
    ep.register(fd, select.EPOLLIN)
    os.eventfd_write(fd, 1)
    assert ep.poll(1)

def memfd_exec():
    fd = os.memfd_create("cove")
    os.ftruncate(fd, 4096)
    mmap.mmap(fd, 4096, prot=mmap.PROT_READ | mmap.PROT_EXEC).close()

def square(x):
    return x * x

def pool():
    with multiprocessing.get_context("fork").Pool(2) as p:
        assert p.map(square, range(4)) == [0, 1, 4, 9]

async def echo():
    srv = await asyncio.start_server(lambda r, w: w.write(b"hi"), "127.0.0.1", 0)
    r, w = await asyncio.open_connection(*srv.sockets[0].getsockname())
    assert await r.read(2) == b"hi"
    w.close()
    srv.close()

check("threads", threads)
check("subprocess", lambda: subprocess.run(["/bin/true"], check=True))
check("multiprocessing", pool)
check("asyncio", lambda: asyncio.run(echo()))
check("tcp4", lambda: tcp(socket.AF_INET, "127.0.0.1"))
check("udp6", lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close())
check("unix", unix)
check("netlink", netlink)
check("epoll_eventfd", epoll_eventfd)
check("memfd_exec", memfd_exec)
check("urandom", lambda: os.urandom(16))

params = ctypes.create_string_buffer(120)
errno_of("io_uring_setup", lambda: syscall(425, 8, ctypes.addressof(params)))
errno_of("vsock", lambda: socket.socket(40, socket.SOCK_STREAM))
errno_of("packet", lambda: socket.socket(17, socket.SOCK_DGRAM))
errno_of("alg", lambda: socket.socket(38, socket.SOCK_SEQPACKET))
errno_of("unshare_user", lambda: syscall(272, 0x10000000))
errno_of("keyctl", lambda: syscall(250, 0, -3, 1))
errno_of("bpf", lambda: syscall(321, 0, 0, 0))
errno_of("personality", lambda: syscall(135, 0x400000))
try:
    with open("/proc/kpageflags", "rb") as f:
        refused["kpageflags_bytes"] = len(f.read(64))
except FileNotFoundError:  # gVisor's /proc has none
    refused["kpageflags_bytes"] = 0

body = json.dumps({"works": works, "refused": refused}).encode()

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

http.server.HTTPServer(("", 8000), H).serve_forever()
"#;

/// Syscall numbers in the script are x86_64's.
fn python_workload_runs_under_the_allowlist(iso: Isolation) {
    let Some(layout) = python_image_layout() else {
        return;
    };
    let d = Daemon::start();
    import_python_image(&d, &layout);
    let app = scratch_dir("cove-sec-seccomp-py");
    std::fs::write(app.as_ref().join("checks.py"), PYTHON_CHECKS).unwrap();
    let sync = app.as_ref().to_string_lossy().into_owned();
    let mut args = vec![
        "--image",
        PYTHON_BASE,
        "--sync",
        &sync,
        "--ports",
        "8000",
        "--keep-warm-seconds",
        "-1",
        "--entrypoint",
        "python3 /app/checks.py",
    ];
    args.extend(iso.run_args());
    let c = d.run_pod(&args);
    let body = d.wait_serving(&c, 8000, "/");
    eprintln!("{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("the pod's JSON");
    for (name, result) in v["works"].as_object().unwrap() {
        assert_eq!(
            result, "ok",
            "[{iso:?}] {name} failed under the allowlist: {body}"
        );
    }
    let refused = v["refused"].as_object().unwrap();
    for name in [
        "io_uring_setup",
        "vsock",
        "packet",
        "alg",
        "unshare_user",
        "keyctl",
        "bpf",
        "personality",
    ] {
        assert_eq!(refused[name], libc::EPERM, "[{iso:?}] {name}: {body}");
    }
    assert_eq!(
        refused["kpageflags_bytes"], 0,
        "kpageflags is not masked: {body}"
    );
}

per_runtime!(
    allowlist_refuses_what_pods_do_not_need,
    python_workload_runs_under_the_allowlist
);
