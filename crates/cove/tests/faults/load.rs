//! Load: many creates at once, many connections at once, and a stream of gigabytes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cove_types::CreatePodResponse;

use crate::api;
use crate::common::*;

const LONG: Duration = Duration::from_secs(120);

/// Sets this process's open-file soft limit to `soft` (at most the hard limit); returns it.
fn set_nofile(soft: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max.min(soft);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    lim.rlim_cur
}

#[test]
fn a_hundred_concurrent_creates_all_succeed_or_fail_cleanly() {
    let d = Arc::new(Daemon::start());
    let body = serde_json::json!({
        "image": registry().image("latest"),
        "ports": [8000],
        "keep_warm_seconds": -1,
        "memory": 32,
    })
    .to_string();
    // The image is local before the burst: the burst measures creates, not one pull.
    ok(&d.cli(&["image", "pull", &registry().image("latest")]));
    let threads: Vec<_> = (0..100)
        .map(|_| {
            let (d, body) = (d.clone(), body.clone());
            std::thread::spawn(move || api::post(&d, "/v1/pods", &body))
        })
        .collect();
    let mut created = Vec::new();
    let mut failed = Vec::new();
    for t in threads {
        match t.join().unwrap() {
            Ok((200 | 201, body)) => {
                let r: CreatePodResponse =
                    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
                created.push(r.container);
            }
            Ok((status, body)) => {
                assert!(
                    body.contains("\"error\""),
                    "a failed create must say why: {status} {body}"
                );
                failed.push(format!("{status} {body}"));
            }
            Err(e) => panic!("a create got no answer: {e}"),
        }
    }
    eprintln!(
        "{} created, {} failed: {failed:?}",
        created.len(),
        failed.len()
    );
    // None is left half-made: every container listed is one that was created, and running.
    let all = d.list(true);
    assert_eq!(all.len(), created.len(), "rows of failed creates remain");
    assert!(
        all.iter().all(|c| c.status == ContainerStatus::Running),
        "not all running: {:?}",
        all.iter()
            .filter(|c| c.status != ContainerStatus::Running)
            .collect::<Vec<_>>()
    );
    for c in &created {
        d.wait_serving(c, 8000, "/");
    }
    assert_eq!(d.veths().len(), created.len());
    assert_eq!(d.netns_files().len(), created.len());
    // On an idle 2-core machine all 100 fit; a failure must at least be a clean one.
    assert!(failed.is_empty(), "creates failed: {failed:?}");
}

/// A threaded Python HTTP server whose listen backlog takes a burst of 1,000 connections (busybox
/// httpd listens with a backlog of 9: a burst overflows it, the kernel drops SYNs and the
/// clients' retransmissions stretch over minutes, whoever connects, the gateway or a client
/// straight at the pod).
const BURST_SERVER: &str = "python3 -c \"import http.server as h, os; os.chdir('/tmp'); \
     open('index.html', 'w').write('Hello from a Cove pod'); \
     h.ThreadingHTTPServer.request_queue_size = 2048; \
     h.ThreadingHTTPServer(('', 8000), h.SimpleHTTPRequestHandler).serve_forever()\"";

#[test]
fn a_thousand_concurrent_gateway_connections_are_all_answered() {
    const N: usize = 1000;
    let Some(layout) = python_image_layout() else {
        return;
    };
    // The daemon starts with the open-file soft limit services commonly get (systemd: 1024), as
    // it would in production; this process, the client, raises its own to the hard limit (at most
    // 20,000) for its 1,000 sockets.
    set_nofile(1024);
    let d = Daemon::start();
    import_python_image(&d, &layout);
    let limit = set_nofile(20_000);
    assert!(
        limit >= 2 * N as u64 + 100,
        "RLIMIT_NOFILE hard limit {limit} is too low"
    );
    // The daemon raised its own soft limit (each proxied connection takes two descriptors;
    // with 1024, a slow pod's 1,000 connections got `Too many open files`).
    let pid = d.pid().expect("daemon pid");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let nofile: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .map(|l| l.split_whitespace().skip(3).take(2).collect())
        .unwrap_or_default();
    assert!(
        nofile.len() == 2 && nofile[0] == nofile[1] && nofile[0] != "1024",
        "the daemon kept its open-file soft limit: {nofile:?}"
    );
    let c = d.run_pod(&[
        "--image",
        PYTHON_BASE,
        "--ports",
        "8000",
        "--memory",
        "1024",
        "--keep-warm-seconds",
        "-1",
        "--entrypoint",
        BURST_SERVER,
    ]);
    d.wait_serving(&c, 8000, "/");
    let host = Daemon::host_for(&c, 8000);
    // All N connections are open before any sends its request, and all requests are sent
    // before any answer is read: the gateway holds N client connections at once.
    let mut conns: Vec<TcpStream> = (0..N)
        .map(|i| {
            let s = TcpStream::connect(d.gw()).unwrap_or_else(|e| panic!("connection {i}: {e}"));
            s.set_read_timeout(Some(LONG)).unwrap();
            s
        })
        .collect();
    for (i, s) in conns.iter_mut().enumerate() {
        write!(
            s,
            "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap_or_else(|e| panic!("request {i}: {e}"));
    }
    let mut bad = Vec::new();
    for (i, s) in conns.iter_mut().enumerate() {
        let mut resp = String::new();
        match s.read_to_string(&mut resp) {
            Ok(_) if resp.starts_with("HTTP/1.1 200") && resp.contains("Hello from a Cove pod") => {
            }
            Ok(_) => bad.push(format!(
                "{i}: {} {}",
                resp.lines().next().unwrap_or("(empty)"),
                resp.lines().last().unwrap_or("")
            )),
            Err(e) => bad.push(format!("{i}: {e}")),
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {N} connections not answered 200, e.g. {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
}

fn vm_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Reads a response to the end, discarding the body; returns the body's byte count
/// (chunked, sized or close-delimited).
fn drain(addr: &str, host: &str, path: &str) -> u64 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LONG)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::with_capacity(1 << 20, s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    let (mut chunked, mut length) = (false, None);
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let l = line.trim_end().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        chunked |= l == "transfer-encoding: chunked";
        if let Some(v) = l.strip_prefix("content-length:") {
            length = v.trim().parse::<u64>().ok();
        }
    }
    let skip = |r: &mut BufReader<TcpStream>, mut n: u64| {
        while n > 0 {
            let buf = r.fill_buf().unwrap();
            assert!(!buf.is_empty(), "the stream ended early");
            let k = (buf.len() as u64).min(n) as usize;
            r.consume(k);
            n -= k as u64;
        }
    };
    if chunked {
        let mut total = 0;
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            let size = u64::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .unwrap_or_else(|e| panic!("chunk size {line:?}: {e}"));
            if size == 0 {
                return total;
            }
            skip(&mut r, size);
            total += size;
            line.clear();
            r.read_line(&mut line).unwrap();
        }
    }
    if let Some(n) = length {
        skip(&mut r, n);
        return n;
    }
    let mut total = 0;
    loop {
        let k = r.fill_buf().unwrap().len();
        if k == 0 {
            return total;
        }
        r.consume(k);
        total += k as u64;
    }
}

#[test]
fn streaming_gigabytes_does_not_grow_the_daemon() {
    const GIB: u64 = 1 << 30;
    let d = Daemon::start();
    // httpd with a CGI that writes $QUERY_STRING bytes of zeros.
    let script = r#"mkdir -p /tmp/w/cgi-bin && cd /tmp/w/cgi-bin && echo '#!/bin/sh' > zero && echo 'printf "Content-Type: application/octet-stream\r\n\r\n"; exec head -c "$QUERY_STRING" /dev/zero' >> zero && chmod 755 zero && exec httpd -f -p 8000 -h /tmp/w"#;
    let body = serde_json::json!({
        "image": registry().image("latest"),
        "ports": [8000],
        "keep_warm_seconds": -1,
        "entrypoint": ["sh", "-c", script],
    })
    .to_string();
    let (status, resp) = api::post(&d, "/v1/pods", &body).unwrap();
    assert!(status == 200 || status == 201, "{status} {resp}");
    let c: CreatePodResponse = serde_json::from_str(&resp).unwrap();
    let c = c.container;
    let host = Daemon::host_for(&c, 8000);
    wait_until("the zero CGI", LONG, || {
        http_get(&d.gw(), &host, "/cgi-bin/zero?10")
            .ok()
            .filter(|r| r.status == 200)
    });
    let pid = d.pid().expect("daemon pid");
    // Warm up buffers and pools with a first 64 MiB, then measure.
    assert_eq!(drain(&d.gw(), &host, "/cgi-bin/zero?67108864"), 64 << 20);
    let before = vm_kib(pid, "VmRSS:");
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(vm_kib(pid, "VmRSS:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let n = drain(&d.gw(), &host, &format!("/cgi-bin/zero?{}", 2 * GIB));
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    assert_eq!(n, 2 * GIB, "the stream was cut short");
    let after = vm_kib(pid, "VmRSS:");
    let peak = peak.load(Ordering::Relaxed);
    eprintln!("daemon VmRSS before {before} kB, peak {peak} kB, after {after} kB");
    // 2 GiB went through; the daemon may grow by buffers, not by the stream.
    let slack = 64 * 1024;
    assert!(
        peak <= before + slack,
        "daemon RSS grew from {before} kB to {peak} kB"
    );
    assert!(
        after <= before + slack,
        "daemon RSS grew from {before} kB to {after} kB"
    );
}
