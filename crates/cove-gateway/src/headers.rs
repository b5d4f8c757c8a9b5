//! Header rewriting shared by requests and responses: hop-by-hop stripping, upgrade
//! detection, the `X-Forwarded-*` family, and reading or removing one cookie.

use std::net::IpAddr;

use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::Method;

/// Headers that describe one hop and must not be forwarded (RFC 9110 §7.6.1), plus the
/// non-standard ones proxies traditionally drop.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether `headers` ask for a protocol upgrade (`Connection: upgrade` + `Upgrade: …`).
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE) && connection_has(headers, "upgrade")
}

fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Removes hop-by-hop headers, including any named in `Connection`. With `keep_upgrade`,
/// `Upgrade` survives and `Connection` is reset to exactly `upgrade`, which is what the
/// next hop needs to perform the same upgrade.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        if !(keep_upgrade && name == header::UPGRADE) {
            headers.remove(name);
        }
    }
    for name in HOP_BY_HOP {
        if keep_upgrade && name == "upgrade" {
            continue;
        }
        headers.remove(name);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Sets `X-Forwarded-For` (appending the peer to any existing chain), `X-Forwarded-Proto`
/// and `X-Forwarded-Host`.
pub fn set_forwarded(headers: &mut HeaderMap, peer: IpAddr, proto: &'static str, host: &str) {
    let xff = HeaderName::from_static("x-forwarded-for");
    let chain = match headers.get(&xff).and_then(|v| v.to_str().ok()) {
        Some(prev) if !prev.trim().is_empty() => format!("{prev}, {peer}"),
        _ => peer.to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&chain) {
        headers.insert(xff, v);
    }
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static(proto),
    );
    if let Ok(v) = HeaderValue::from_str(host) {
        headers.insert(HeaderName::from_static("x-forwarded-host"), v);
    }
}

/// Whether a request looks like a browser loading a page: a GET or HEAD (not an upgrade)
/// with `Sec-Fetch-Mode: navigate` or an `Accept` that names `text/html`.
pub fn is_navigation(method: &Method, headers: &HeaderMap) -> bool {
    let any = |name: &str, pred: &dyn Fn(&str) -> bool| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| pred(&v.to_ascii_lowercase()))
    };
    (method == Method::GET || method == Method::HEAD)
        && !wants_upgrade(headers)
        && (any("sec-fetch-mode", &|v| v.trim() == "navigate")
            || any("accept", &|v| v.contains("text/html")))
}

/// The values of every cookie called `name` in the `Cookie` header(s), in order
/// (surrounding quotes removed, empty values skipped).
pub fn cookie_values(headers: &HeaderMap, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for v in headers.get_all(header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for pair in v.split(';') {
            let Some((k, val)) = pair.split_once('=') else {
                continue;
            };
            let val = val.trim();
            let val = val
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .unwrap_or(val);
            if k.trim() == name && !val.is_empty() {
                out.push(val.to_string());
            }
        }
    }
    out
}

/// Removes every cookie called `name` from the `Cookie` header(s); the other cookies keep
/// their bytes and order, joined into one header (none is left when nothing remains).
/// Headers without such a cookie are left exactly as they were.
pub fn remove_cookie(headers: &mut HeaderMap, name: &str) {
    let is_ours = |pair: &[u8]| {
        let key = pair.split(|b| *b == b'=').next().unwrap_or_default();
        key.trim_ascii() == name.as_bytes()
    };
    let present = headers
        .get_all(header::COOKIE)
        .iter()
        .any(|v| v.as_bytes().split(|b| *b == b';').any(is_ours));
    if !present {
        return;
    }
    let mut kept: Vec<u8> = Vec::new();
    for v in headers.get_all(header::COOKIE) {
        for pair in v.as_bytes().split(|b| *b == b';') {
            let pair = pair.trim_ascii();
            if pair.is_empty() || is_ours(pair) {
                continue;
            }
            if !kept.is_empty() {
                kept.extend_from_slice(b"; ");
            }
            kept.extend_from_slice(pair);
        }
    }
    headers.remove(header::COOKIE);
    // The kept bytes come from valid header values, so they form one as well.
    if let Ok(v) = HeaderValue::from_bytes(&kept) {
        if !kept.is_empty() {
            headers.insert(header::COOKIE, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn strips_listed_and_standard() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("accept", "*/*"),
        ]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn keeps_upgrade_when_asked() {
        let mut h = map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
        ]);
        assert!(wants_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(
            h.get("upgrade").map(|v| v.as_bytes()),
            Some(&b"websocket"[..])
        );
        assert_eq!(
            h.get("connection").map(|v| v.as_bytes()),
            Some(&b"upgrade"[..])
        );
    }

    #[test]
    fn forwarded_for_appends() {
        let mut h = map(&[("x-forwarded-for", "10.1.1.1")]);
        set_forwarded(&mut h, [127, 0, 0, 1].into(), "https", "a-80.d");
        assert_eq!(
            h.get("x-forwarded-for").map(|v| v.as_bytes()),
            Some(&b"10.1.1.1, 127.0.0.1"[..])
        );
        assert_eq!(
            h.get("x-forwarded-proto").map(|v| v.as_bytes()),
            Some(&b"https"[..])
        );
    }

    #[test]
    fn navigations() {
        let nav =
            |m: Method, pairs: &[(&'static str, &'static str)]| is_navigation(&m, &map(pairs));
        assert!(nav(
            Method::GET,
            &[("accept", "text/html,application/xhtml+xml,*/*;q=0.8")]
        ));
        assert!(nav(Method::HEAD, &[("sec-fetch-mode", "Navigate")]));
        assert!(!nav(Method::GET, &[("accept", "*/*")]));
        assert!(!nav(Method::GET, &[]));
        assert!(!nav(Method::POST, &[("accept", "text/html")]));
        assert!(!nav(
            Method::GET,
            &[
                ("accept", "text/html"),
                ("connection", "upgrade"),
                ("upgrade", "websocket")
            ]
        ));
    }

    #[test]
    fn one_cookie_is_read_and_removed() {
        let mut h = map(&[
            ("cookie", "a=1; cove_auth=t1;b=\"x y\""),
            ("cookie", " cove_auth=\"t2\" ; c=3;cove_auth=; cove_authx=9"),
        ]);
        assert_eq!(cookie_values(&h, "cove_auth"), ["t1", "t2"]);
        remove_cookie(&mut h, "cove_auth");
        let all: Vec<_> = h.get_all("cookie").iter().collect();
        assert_eq!(all, [&"a=1; b=\"x y\"; c=3; cove_authx=9"]);
        let mut h = map(&[("cookie", "cove_auth=t")]);
        remove_cookie(&mut h, "cove_auth");
        assert!(h.get("cookie").is_none());
        let mut h = map(&[("cookie", "a=1;;b=2")]);
        remove_cookie(&mut h, "cove_auth");
        assert_eq!(
            h.get("cookie").map(|v| v.as_bytes()),
            Some(&b"a=1;;b=2"[..])
        );
    }
}
