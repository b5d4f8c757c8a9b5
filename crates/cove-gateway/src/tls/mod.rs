//! TLS material and the rustls server configuration (ring provider only).
//!
//! Two modes:
//! - `tls_cert`/`tls_key` given: that static certificate chain is served for every name.
//! - neither given: a local certificate authority ([`ca`]) is created once in
//!   `<data_dir>/tls/ca.{crt,key}` and reused on later starts; [`resolver`] then issues,
//!   per SNI name under the gateway domain, a leaf certificate for exactly that name. Users
//!   trust [`ca_cert_path`] once. (A wildcard `*.<domain>` would not do: clients refuse a
//!   wildcard directly under a single-label name such as `localhost`.)
//!
//! Files named `gateway.{crt,key,domain}` in `<data_dir>/tls/` come from earlier versions,
//! which served one self-signed wildcard certificate; they are no longer read.

mod ca;
mod resolver;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub use ca::ca_cert_path;

use crate::error::GatewayError;

/// Builds the server config: the explicit files if given, else certificates issued on
/// demand by the local CA. ALPN offers h2 and http/1.1.
pub fn server_config(
    cert: Option<&Path>,
    key: Option<&Path>,
    data_dir: &Path,
    domain: &str,
) -> Result<Arc<rustls::ServerConfig>, GatewayError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth();
    let mut config = match (cert, key) {
        (Some(c), Some(k)) => builder.with_single_cert(load_certs(c)?, load_key(k)?)?,
        (None, None) => {
            let domain = normalize_domain(domain)?;
            let ca = ca::LocalCa::load_or_create(data_dir, &domain)?;
            let resolver =
                resolver::LeafResolver::new(ca, domain, resolver::MAX_CACHED_LEAVES, &provider)?;
            builder.with_cert_resolver(Arc::new(resolver))
        }
        _ => return Err(GatewayError::TlsPartial),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Lowercases the domain, drops a trailing dot and checks it is a DNS name.
fn normalize_domain(domain: &str) -> Result<String, GatewayError> {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    if is_dns_name(&d) {
        Ok(d)
    } else {
        Err(GatewayError::InvalidDomain(domain.to_string()))
    }
}

/// A lowercase LDH host name: at most 253 bytes, labels of 1–63 `[a-z0-9-]` not starting or
/// ending with `-`. No wildcards, no trailing dot, no underscores.
pub(crate) fn is_dns_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Writes via a temporary file and rename, so readers never see a half-written file.
fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), GatewayError> {
    let io_err = |source| GatewayError::TlsIo {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    // A leftover from a crash may have other permissions; `mode` only applies on create.
    let _ = fs::remove_file(&tmp);
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(&tmp).map_err(io_err)?;
    f.write_all(data).map_err(io_err)?;
    f.sync_all().map_err(io_err)?;
    fs::rename(&tmp, path).map_err(io_err)
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, GatewayError> {
    let invalid = |reason: String| GatewayError::TlsInvalid {
        path: path.to_path_buf(),
        reason,
    };
    let pem = fs::read(path).map_err(|source| GatewayError::TlsIo {
        path: path.to_path_buf(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(e.to_string()))?;
    if certs.is_empty() {
        return Err(invalid("no certificate found".into()));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, GatewayError> {
    let pem = fs::read(path).map_err(|source| GatewayError::TlsIo {
        path: path.to_path_buf(),
        source,
    })?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| GatewayError::TlsInvalid {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_files_are_used_and_nothing_generated() {
        let src = tempfile::tempdir().expect("tempdir");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["x.test".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let (c, k) = (src.path().join("c.pem"), src.path().join("k.pem"));
        fs::write(&c, cert.pem()).expect("write cert");
        fs::write(&k, key.serialize_pem()).expect("write key");
        let data = tempfile::tempdir().expect("tempdir");
        assert!(server_config(Some(&c), Some(&k), data.path(), "x.test").is_ok());
        assert!(!data.path().join("tls").exists());
        let bad = server_config(Some(&k), Some(&c), data.path(), "x.test");
        assert!(matches!(bad, Err(GatewayError::TlsInvalid { .. })));
    }

    #[test]
    fn partial_config_is_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = server_config(Some(Path::new("/x")), None, dir.path(), "d");
        assert!(matches!(r, Err(GatewayError::TlsPartial)));
    }

    #[test]
    fn dns_names() {
        for ok in ["localhost", "a-8000.localhost", "cove.test", "0f8f-1.x.y"] {
            assert!(is_dns_name(ok), "{ok}");
        }
        let long = format!("{}.localhost", "a".repeat(64));
        for bad in [
            "",
            ".",
            "a..b",
            "*.localhost",
            "-a.b",
            "a-.b",
            "A.b",
            "a_b.c",
            "a b",
            &long,
        ] {
            assert!(!is_dns_name(bad), "{bad}");
        }
        assert_eq!(normalize_domain("Cove.Test.").expect("ok"), "cove.test");
        assert!(matches!(
            normalize_domain("*.x"),
            Err(GatewayError::InvalidDomain(_))
        ));
    }
}
