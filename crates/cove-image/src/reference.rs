//! Image references: validation and the canonical form used as the database key.
//!
//! `busybox` → `docker.io/library/busybox:latest`;
//! `127.0.0.1:5000/app` → `127.0.0.1:5000/app:latest`; digests are kept
//! (`repo@sha256:<hex>`). We parse by hand so that every malformed reference is
//! rejected with [`ImageError::InvalidReference`] before any network call.

use crate::ImageError;

const DEFAULT_REGISTRY: &str = "docker.io";

/// A parsed, validated reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedRef {
    /// `docker.io`, `ghcr.io`, `127.0.0.1:5000`, …
    pub registry: String,
    /// `library/busybox`, `org/app`, …
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ParsedRef {
    /// The canonical string form.
    pub fn canonical(&self) -> String {
        let mut s = format!("{}/{}", self.registry, self.repository);
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// The host part without the port, for the loopback check.
    pub fn host(&self) -> &str {
        let r = self.registry.as_str();
        if let Some(rest) = r.strip_prefix('[') {
            return rest.split(']').next().unwrap_or(rest);
        }
        r.split(':').next().unwrap_or(r)
    }
}

/// Parses and validates `reference`, filling in the default registry, the
/// `library/` namespace and the `latest` tag.
pub(crate) fn parse(reference: &str) -> Result<ParsedRef, ImageError> {
    let bad = || ImageError::InvalidReference(reference.to_string());
    if reference.is_empty() || reference.len() > 4096 || reference.chars().any(char::is_whitespace)
    {
        return Err(bad());
    }
    let (name, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (reference, None),
    };
    if let Some(d) = digest {
        let hex = d.strip_prefix("sha256:").ok_or_else(bad)?;
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(bad());
        }
    }
    // The tag is after the last ':' that follows the last '/'.
    let last_slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (name, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            && !t.starts_with(['.', '-']);
        if !ok {
            return Err(bad());
        }
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let registry = if parts.len() > 1
        && (parts[0].contains(['.', ':']) || parts[0] == "localhost" || parts[0].starts_with('['))
    {
        let r = parts.remove(0);
        if !valid_registry(r) {
            return Err(bad());
        }
        r.to_string()
    } else {
        DEFAULT_REGISTRY.to_string()
    };
    if parts.is_empty() || !parts.iter().all(|p| valid_path_component(p)) {
        return Err(bad());
    }
    let registry = if registry == "index.docker.io" || registry == "registry-1.docker.io" {
        DEFAULT_REGISTRY.to_string()
    } else {
        registry
    };
    let mut repository = parts.join("/");
    if registry == DEFAULT_REGISTRY && parts.len() == 1 {
        repository = format!("library/{repository}");
    }
    let tag = match (tag, digest) {
        (Some(t), _) => Some(t.to_string()),
        (None, Some(_)) => None,
        (None, None) => Some("latest".to_string()),
    };
    let parsed = ParsedRef {
        registry,
        repository,
        tag,
        digest: digest.map(str::to_string),
    };
    // The key must parse as well: its length counts, not just the input's (found by fuzzing:
    // 4,090 bytes plus `docker.io/` and `:latest`).
    if parsed.canonical().len() > 4096 {
        return Err(bad());
    }
    Ok(parsed)
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
pub(crate) fn valid_path_component(p: &str) -> bool {
    let b = p.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
    {
        return false;
    }
    // Separators between alphanumeric runs: '.', '_', '__' or any run of '-'.
    let mut sep = String::new();
    for c in p.chars() {
        if c.is_ascii_alphanumeric() {
            let ok = sep.is_empty()
                || sep == "."
                || sep == "_"
                || sep == "__"
                || sep.chars().all(|s| s == '-');
            if !ok {
                return false;
            }
            sep.clear();
        } else {
            sep.push(c);
        }
    }
    true
}

fn valid_registry(r: &str) -> bool {
    let (host, port) = if let Some(rest) = r.strip_prefix('[') {
        // After the `]` only `:<port>` may follow (found by fuzzing: `[::0]<junk>/a`).
        match rest.split_once(']') {
            Some((h, "")) => (h, None),
            Some((h, p)) => match p.strip_prefix(':') {
                Some(port) => (h, Some(port)),
                None => return false,
            },
            None => return false,
        }
    } else {
        match r.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (r, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b))
        && !host.starts_with(['-', '.']);
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// True for registries we talk to over plain HTTP without being told to:
/// loopback addresses and `localhost`.
pub(crate) fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
