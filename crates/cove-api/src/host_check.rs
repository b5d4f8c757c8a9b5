//! A request whose `Host` is malformed, repeated or missing (HTTP/1.1) is answered 400
//! before any handler or token check runs: the API never acts on an ambiguous target.

use axum::extract::Request;
use axum::http::{header::HOST, StatusCode, Version};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::ApiError;

/// Middleware: 400 for a bad `Host`, else the next layer.
pub(crate) async fn require_valid_host(req: Request, next: Next) -> Response {
    if let Err(why) = check(&req) {
        tracing::debug!(%why, "bad Host header");
        return ApiError::new(StatusCode::BAD_REQUEST, why).into_response();
    }
    next.run(req).await
}

fn check(req: &Request) -> Result<(), String> {
    let mut hosts = req.headers().get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => Err("more than one Host header".into()),
        (Some(h), None) => match h.to_str() {
            Ok(s) if valid_host(s) => Ok(()),
            _ => Err(format!(
                "malformed Host header {:?}",
                String::from_utf8_lossy(h.as_bytes())
            )),
        },
        // HTTP/2 carries the authority in the URI; HTTP/1.0 may omit Host.
        (None, _) if req.version() == Version::HTTP_11 && req.uri().authority().is_none() => {
            Err("missing Host header".into())
        }
        (None, _) => Ok(()),
    }
}

/// `host[:port]`: a DNS name or IPv4 address, or a bracketed IPv6 address; the port 1-65535.
fn valid_host(s: &str) -> bool {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(p) => ("v6", Some(p)),
                None => return false,
            },
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok_and(|n| n > 0)
    });
    host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::valid_host;

    #[test]
    fn hosts() {
        for good in [
            "127.0.0.1:7310",
            "localhost",
            "api.example.org",
            "[::1]:7310",
            "[::1]",
        ] {
            assert!(valid_host(good), "{good}");
        }
        for bad in [
            "",
            "bad host",
            "a@b",
            "x:",
            "x:0",
            "x:99999",
            "x:80:80",
            "[::1",
            "[nope]",
            "[::1]x",
            "ex\u{e4}mple.org",
            "a/b",
        ] {
            assert!(!valid_host(bad), "{bad}");
        }
    }
}
