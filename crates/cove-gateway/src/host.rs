//! Strict parsing of the two ways a request names a pod port:
//! - `Host: <stub-id>-<port>.<domain>[:<gateway port>]`
//! - path `/pod/<stub-id>/<port>/<rest>` on any host.
//!
//! A stub id is `[a-z0-9-]`, starting and ending with an alphanumeric, so a UUID and later
//! deployment names like `my-app-1a2b3c4d` both work; in the host form the *last* `-<digits>`
//! is the port. Matching is case-insensitive; ids come back lowercase.

/// Longest accepted stub id (a DNS label is at most 63 bytes, the port suffix included).
pub const MAX_ID_LEN: usize = 56;
/// Longest DNS label.
const MAX_LABEL_LEN: usize = 63;
/// Longest Host header we even look at.
const MAX_HOST_LEN: usize = 253 + 6;

/// What a `Host` header means to the gateway.
#[derive(Debug, PartialEq, Eq)]
pub enum HostMatch {
    /// `<id>-<port>.<domain>`.
    Pod(String, u16),
    /// Syntactically a host, but not one of ours (or the bare domain).
    Foreign,
    /// Under our domain (or not a host at all) but malformed.
    Malformed,
}

/// Parses `"<id>-<port>.<domain>[:gwport]"` into `(stub id, port)`. Returns `None` for
/// anything else, including hosts of other domains and malformed input.
pub fn parse_host(host: &str, domain: &str) -> Option<(String, u16)> {
    match classify_host(host, domain) {
        HostMatch::Pod(id, port) => Some((id, port)),
        HostMatch::Foreign | HostMatch::Malformed => None,
    }
}

/// Like [`parse_host`] but tells a foreign host (404) from a malformed one (400).
pub fn classify_host(host: &str, domain: &str) -> HostMatch {
    if host.is_empty() || host.len() > MAX_HOST_LEN || !host.is_ascii() {
        return HostMatch::Malformed;
    }
    if let Some(rest) = host.strip_prefix('[') {
        // An IPv6 literal, `[addr]` or `[addr]:port`: a valid host, just never one of ours.
        let valid = rest.split_once(']').is_some_and(|(addr, after)| {
            addr.parse::<std::net::Ipv6Addr>().is_ok()
                && (after.is_empty() || after.strip_prefix(':').and_then(parse_port).is_some())
        });
        return if valid {
            HostMatch::Foreign
        } else {
            HostMatch::Malformed
        };
    }
    let host = host.to_ascii_lowercase();
    let name = match host.rsplit_once(':') {
        Some((name, gw_port)) => {
            if parse_port(gw_port).is_none() {
                return HostMatch::Malformed;
            }
            name
        }
        None => host.as_str(),
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return HostMatch::Malformed;
    }
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty() {
        return HostMatch::Foreign;
    }
    let Some(label) = name
        .strip_suffix(domain.as_str())
        .and_then(|rest| rest.strip_suffix('.'))
    else {
        return HostMatch::Foreign;
    };
    if label.is_empty() || label.contains('.') || label.len() > MAX_LABEL_LEN {
        return HostMatch::Malformed;
    }
    let Some((id, port)) = label.rsplit_once('-') else {
        return HostMatch::Malformed;
    };
    match (valid_id(id), parse_port(port)) {
        (true, Some(port)) => HostMatch::Pod(id.to_string(), port),
        _ => HostMatch::Malformed,
    }
}

/// A pod named by the path form: the stub id, the port, and the path + query to forward.
#[derive(Debug, PartialEq, Eq)]
pub struct PodPath {
    pub id: String,
    pub port: u16,
    pub rest: String,
}

/// Parses `/pod/<id>/<port>[/<rest>][?query]`. `None` when the path does not start with
/// `/pod/`; `Some(Err(()))` when it does but is malformed.
#[allow(clippy::result_unit_err)]
pub fn parse_pod_path(path: &str, query: Option<&str>) -> Option<Result<PodPath, ()>> {
    let after = path.strip_prefix("/pod/")?;
    let mut parts = after.splitn(3, '/');
    let id = parts.next().unwrap_or_default().to_ascii_lowercase();
    let port = parts.next().unwrap_or_default();
    let rest = parts.next();
    let (true, Some(port)) = (valid_id(&id), parse_port(port)) else {
        return Some(Err(()));
    };
    let mut forwarded = format!("/{}", rest.unwrap_or_default());
    if let Some(q) = query {
        forwarded.push('?');
        forwarded.push_str(q);
    }
    Some(Ok(PodPath {
        id,
        port,
        rest: forwarded,
    }))
}

/// `[a-z0-9-]`, 1..=MAX_ID_LEN, no leading/trailing/double hyphen run at the ends.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id.starts_with('-')
        && !id.ends_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Decimal 1..=65535, digits only, no leading zero.
fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|p| *p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "cove.example";
    const UUID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

    #[test]
    fn uuid_host_with_and_without_gateway_port() {
        let h = format!("{UUID}-8888.{D}");
        assert_eq!(parse_host(&h, D), Some((UUID.to_string(), 8888)));
        let h = format!("{UUID}-8888.{D}:8080");
        assert_eq!(parse_host(&h, D), Some((UUID.to_string(), 8888)));
    }

    #[test]
    fn uppercase_is_accepted_and_lowered() {
        let h = format!("{}-80.COVE.Example:443", UUID.to_uppercase());
        assert_eq!(parse_host(&h, D), Some((UUID.to_string(), 80)));
        assert!(parse_host(&format!("{UUID}-80.{D}"), "COVE.EXAMPLE").is_some());
    }

    #[test]
    fn deployment_names_use_last_dash_digits() {
        let h = format!("my-app-1a2b3c4d-8000.{D}");
        assert_eq!(parse_host(&h, D), Some(("my-app-1a2b3c4d".into(), 8000)));
        assert_eq!(
            parse_host(&format!("a-1-2.{D}"), D),
            Some(("a-1".into(), 2))
        );
    }

    #[test]
    fn hostile_inputs_are_rejected() {
        let huge = format!("{}-80.{D}", "a".repeat(10_000));
        let cases = [
            String::new(),
            ":".into(),
            D.into(),
            format!(".{D}"),
            format!("{UUID}.{D}"),
            format!("{UUID}-.{D}"),
            format!("{UUID}-0.{D}"),
            format!("{UUID}-70000.{D}"),
            format!("{UUID}-65536.{D}"),
            format!("{UUID}-080.{D}"),
            format!("{UUID}-+80.{D}"),
            format!("{UUID}-80.{D}:"),
            format!("{UUID}-80.{D}:0"),
            format!("{UUID}-80.{D}:99999"),
            format!("{UUID}-80.{D}:80:80"),
            format!("{UUID}-80.other.example"),
            format!("{UUID}-80.x{D}"),
            format!("{UUID}-80.{D}.evil.com"),
            format!("a.{UUID}-80.{D}"),
            format!("..{UUID}-80.{D}"),
            format!("{UUID}-80..{D}"),
            format!("-80.{D}"),
            format!("-x-80.{D}"),
            format!("x_y-80.{D}"),
            format!("ünïcode-80.{D}"),
            format!("{UUID}-８０.{D}"),
            format!("{UUID}-80.{D}\0"),
            format!("[::1]-80.{D}"),
            huge,
        ];
        for c in &cases {
            assert_eq!(parse_host(c, D), None, "accepted {c:?}");
        }
    }

    #[test]
    fn classify_tells_foreign_from_malformed() {
        assert_eq!(classify_host("example.org", D), HostMatch::Foreign);
        assert_eq!(classify_host("127.0.0.1:8080", D), HostMatch::Foreign);
        assert_eq!(classify_host(D, D), HostMatch::Foreign);
        assert_eq!(classify_host(&format!("x.{D}"), D), HostMatch::Malformed);
        assert_eq!(classify_host("bad host", D), HostMatch::Malformed);
        assert_eq!(classify_host("[::1]:8080", D), HostMatch::Foreign);
        assert_eq!(classify_host("[::1", D), HostMatch::Malformed);
        assert_eq!(classify_host("[::1]x", D), HostMatch::Malformed);
        assert_eq!(classify_host("[nope]", D), HostMatch::Malformed);
        assert_eq!(classify_host("", D), HostMatch::Malformed);
    }

    #[test]
    fn pod_paths() {
        let p = parse_pod_path(&format!("/pod/{UUID}/8888/api/x"), Some("a=1"));
        assert_eq!(
            p,
            Some(Ok(PodPath {
                id: UUID.into(),
                port: 8888,
                rest: "/api/x?a=1".into()
            }))
        );
        let p = parse_pod_path(&format!("/pod/{UUID}/8888"), None);
        assert_eq!(p.and_then(Result::ok).map(|p| p.rest), Some("/".into()));
        assert_eq!(parse_pod_path("/api", None), None);
        assert_eq!(parse_pod_path("/pod/", None), Some(Err(())));
        assert_eq!(parse_pod_path("/pod/x/0/", None), Some(Err(())));
        assert_eq!(parse_pod_path("/pod/x/99999/", None), Some(Err(())));
        assert_eq!(parse_pod_path("/pod/../80/", None), Some(Err(())));
        assert_eq!(parse_pod_path("/pod/x_y/80/", None), Some(Err(())));
    }
}
