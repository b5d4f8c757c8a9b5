//! TLS material and the rustls server configuration (ring provider only).
//!
//! With `tls_cert`/`tls_key` the given PEM files are used. Otherwise a self-signed
//! certificate for `*.<domain>` and `<domain>` is generated once into
//! `<data_dir>/tls/gateway.{crt,key}` (key mode 0600) and reused on later starts.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::GatewayError;

/// File names of the generated pair inside `<data_dir>/tls/`.
pub const CERT_FILE: &str = "gateway.crt";
pub const KEY_FILE: &str = "gateway.key";
/// Records which domain the generated pair was made for, so a domain change regenerates it.
const DOMAIN_FILE: &str = "gateway.domain";

/// Builds the server config: explicit files if given, else the generated pair. ALPN offers
/// h2 and http/1.1.
pub fn server_config(
    cert: Option<&Path>,
    key: Option<&Path>,
    data_dir: &Path,
    domain: &str,
) -> Result<Arc<rustls::ServerConfig>, GatewayError> {
    let (cert_path, key_path) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_path_buf(), k.to_path_buf()),
        (None, None) => ensure_self_signed(data_dir, domain)?,
        _ => return Err(GatewayError::TlsPartial),
    };
    let certs = load_certs(&cert_path)?;
    let key = load_key(&key_path)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Returns the generated pair's paths, generating it first if either file is missing or it
/// was made for another domain.
pub fn ensure_self_signed(
    data_dir: &Path,
    domain: &str,
) -> Result<(PathBuf, PathBuf), GatewayError> {
    let dir = data_dir.join("tls");
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    let domain_path = dir.join(DOMAIN_FILE);
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let same_domain = match fs::read_to_string(&domain_path) {
        Ok(recorded) => recorded.trim() == domain,
        // Pairs from before the domain was recorded are kept.
        Err(_) => true,
    };
    if cert_path.is_file() && key_path.is_file() && same_domain {
        return Ok((cert_path, key_path));
    }
    fs::create_dir_all(&dir).map_err(|source| GatewayError::TlsIo {
        path: dir.clone(),
        source,
    })?;
    let mut params = rcgen::CertificateParams::new(vec![format!("*.{domain}"), domain.clone()])?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("cove gateway {domain}"));
    let key_pair = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key_pair)?;
    // Key first: a crash between the two leaves no certificate without its key.
    write_file(&key_path, key_pair.serialize_pem().as_bytes(), 0o600)?;
    write_file(&cert_path, cert.pem().as_bytes(), 0o644)?;
    write_file(&domain_path, domain.as_bytes(), 0o644)?;
    tracing::info!(cert = %cert_path.display(), "generated self-signed gateway certificate");
    Ok((cert_path, key_path))
}

/// Writes via a temporary file and rename, so readers never see a half-written file.
fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), GatewayError> {
    let io_err = |source| GatewayError::TlsIo {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
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
    fn generates_once_with_private_key_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (c1, k1) = ensure_self_signed(dir.path(), "cove.test").expect("generate");
        let first = fs::read(&c1).expect("read cert");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&k1).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (c2, _) = ensure_self_signed(dir.path(), "cove.test").expect("reuse");
        assert_eq!(first, fs::read(c2).expect("read again"));
        assert!(server_config(None, None, dir.path(), "cove.test").is_ok());
    }

    #[test]
    fn domain_change_regenerates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (c, _) = ensure_self_signed(dir.path(), "a.test").expect("generate");
        let first = fs::read(&c).expect("read");
        ensure_self_signed(dir.path(), "b.test").expect("regenerate");
        assert_ne!(first, fs::read(&c).expect("read"));
    }

    #[test]
    fn explicit_files_are_used_and_nothing_generated() {
        let src = tempfile::tempdir().expect("tempdir");
        let (c, k) = ensure_self_signed(src.path(), "x.test").expect("generate");
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
}
