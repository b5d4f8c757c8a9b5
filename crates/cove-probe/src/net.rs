//! Attempts on the network: connecting where a pod must not reach, raw and packet sockets.

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use crate::outcome::{from_ret, Outcome};

/// A TCP connection to `ip:port` within 3 s.
pub fn connect(ip: &str, port: u16) -> Outcome {
    let Ok(ip) = ip.parse::<IpAddr>() else {
        return Outcome::Usage(format!("bad ip {ip:?}"));
    };
    let addr = SocketAddr::new(ip, port);
    match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
        Ok(_) => Outcome::Succeeded(format!("connected to {addr}")),
        Err(e) => Outcome::Refused(format!("connect {addr}: {e}")),
    }
}

/// socket(2) of `domain`/`typ`/`proto`.
pub fn socket(domain: i32, typ: i32, proto: i32) -> Outcome {
    // SAFETY: integer arguments; the fd is left to the process's exit.
    let r = unsafe { libc::socket(domain, typ, proto) };
    from_ret(&format!("socket({domain}, {typ}, {proto})"), r as i64)
}
