//! Raw requests to a daemon's API (for what the CLI cannot do at once, like 100 parallel creates).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::Daemon;

/// `POST path` with a JSON body; returns (status, body).
pub fn post(d: &Daemon, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    request(d, "POST", path, body)
}

/// `GET path`; returns (status, body).
pub fn get(d: &Daemon, path: &str) -> std::io::Result<(u16, String)> {
    request(d, "GET", path, "")
}

fn request(d: &Daemon, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", d.api_port))?;
    s.set_read_timeout(Some(Duration::from_secs(300)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        d.token,
        body.len()
    )?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let out = String::from_utf8_lossy(&out).into_owned();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad response {out:?}")))?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
    Ok((status, body.unwrap_or_default()))
}
