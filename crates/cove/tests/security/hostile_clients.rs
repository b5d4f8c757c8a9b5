//! Hostile clients of the API and the gateway: oversized heads (431), oversized JSON bodies
//! (413), slowloris heads (dropped after the header read timeout, never blocking others)
//! and malformed `Host` headers (400), while a normal client keeps being served.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::*;

/// Sends `head` then `body` in 16 KiB pieces, stopping as soon as the server answers (so it
/// has read everything sent and closes cleanly instead of resetting); returns the status.
fn send_until_answered(addr: &str, head: &[u8], body: &[u8]) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let mut sent = 0;
    let mut data = head.to_vec();
    data.extend_from_slice(body);
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    while sent < data.len() {
        let end = (sent + 16 * 1024).min(data.len());
        if s.write_all(&data[sent..end]).is_err() {
            break;
        }
        sent = end;
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    while !answer.windows(2).any(|w| w == b"\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer from {addr}: {text:?}"))
}

/// A GET with `headers` (each `Name: value`) and `Connection: close`; returns the status.
fn get_with(addr: &str, path: &str, headers: &[&str]) -> u16 {
    let mut head = format!("GET {path} HTTP/1.1\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    send_until_answered(addr, head.as_bytes(), b"")
}

fn api(d: &Daemon) -> String {
    format!("127.0.0.1:{}", d.api_port)
}

/// The normal client: the API's health and the pod through the gateway both answer 200.
fn normal_client_is_served(d: &Daemon, pod: &Container) {
    let h = http_get(&api(d), "127.0.0.1", "/v1/health").expect("API health");
    assert_eq!(h.status, 200, "{h:?}");
    assert_eq!(d.get(pod, 8000, "/").status, 200);
}

#[test]
fn oversized_heads_and_bodies_are_refused() {
    let d = Daemon::start();
    let pod = d.run_httpd("-1");
    d.wait_serving(&pod, 8000, "/");
    let big = format!("X-Big: {}", "a".repeat(128 * 1024));
    let pod_host = format!("Host: {}", Daemon::host_for(&pod, 8000));
    assert_eq!(
        get_with(&api(&d), "/v1/health", &["Host: 127.0.0.1", &big]),
        431
    );
    assert_eq!(get_with(&d.gw(), "/", &[&pod_host, &big]), 431);
    normal_client_is_served(&d, &pod);

    // A JSON route reads at most 2 MiB.
    let body = format!(
        "{{\"image\": \"{}\", \"env\": {{\"PAD\": \"{}\"}}}}",
        registry().image("latest"),
        "p".repeat(3 * 1024 * 1024)
    );
    let head = format!(
        "POST /v1/pods HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        d.token,
        body.len()
    );
    assert_eq!(
        send_until_answered(&api(&d), head.as_bytes(), body.as_bytes()),
        413
    );
    assert_eq!(d.list(true).len(), 1, "the oversized request made a pod");
    normal_client_is_served(&d, &pod);
}

#[test]
fn malformed_host_headers_are_400() {
    let d = Daemon::start();
    let pod = d.run_httpd("-1");
    d.wait_serving(&pod, 8000, "/");
    let pod_host = format!("Host: {}", Daemon::host_for(&pod, 8000));
    let bad: &[&[&str]] = &[
        &["Host: bad host"],
        &["Host: a@b"],
        &["Host: x:99999"],
        &["Host: [::1"],
        &[],
    ];
    for headers in bad {
        assert_eq!(
            get_with(&api(&d), "/v1/health", headers),
            400,
            "API {headers:?}"
        );
        assert_eq!(get_with(&d.gw(), "/", headers), 400, "gateway {headers:?}");
    }
    // Two Hosts, one of them the pod's: ambiguous, so neither is used.
    assert_eq!(
        get_with(
            &api(&d),
            "/v1/health",
            &["Host: 127.0.0.1", "Host: 127.0.0.1"]
        ),
        400
    );
    assert_eq!(
        get_with(&d.gw(), "/", &[&pod_host, "Host: example.org"]),
        400
    );
    assert_eq!(get_with(&d.gw(), "/", &[&pod_host]), 200);
    normal_client_is_served(&d, &pod);
}

/// A slowloris connection: sends a request head one header line a second, never finishing.
/// Returns once the server has dropped it.
fn slowloris(addr: &str) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            Instant::now() < deadline,
            "{addr} kept a slowloris connection for 120 s"
        );
        match s.read(&mut buf) {
            // Dropped (or answered 408 and closing).
            Ok(_) => return,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
        if s.write_all(b"X-Slow: 1\r\n").is_err() {
            return;
        }
    }
}

#[test]
fn slowloris_clients_are_dropped_and_block_no_one() {
    let d = Daemon::start();
    let pod = d.run_httpd("-1");
    d.wait_serving(&pod, 8000, "/");
    let mut slow = Vec::new();
    for addr in [api(&d), d.gw()] {
        for _ in 0..32 {
            let addr = addr.clone();
            slow.push(std::thread::spawn(move || slowloris(&addr)));
        }
    }
    // While they trickle, the normal client keeps being served.
    while slow.iter().any(|t| !t.is_finished()) {
        normal_client_is_served(&d, &pod);
        std::thread::sleep(Duration::from_millis(500));
    }
    for t in slow {
        t.join().expect("a slowloris connection was never dropped");
    }
    normal_client_is_served(&d, &pod);
}
