//! The gateway's local certificate authority (the mkcert / Caddy "local CA" approach).
//!
//! Created once as `<data_dir>/tls/ca.crt` (0644, the file users trust) and `ca.key`
//! (0600), then reused. The CA is ECDSA P-256, valid ten years, may only sign leaves
//! (path length 0) and carries a name constraint limiting it to `<domain>` and its
//! subdomains, so trusting it does not let a leaked `ca.key` impersonate any other site.
//! Because of that constraint, a CA made for another domain is replaced, as is one that
//! does not load, does not match its key or expires within [`RENEW_BEFORE`].

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints, SanType, SerialNumber,
};
use rustls::crypto::SecureRandom;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::GeneralName;

use crate::error::GatewayError;

/// File names inside `<data_dir>/tls/`.
const CA_CERT_FILE: &str = "ca.crt";
const CA_KEY_FILE: &str = "ca.key";
const CA_VALIDITY: Duration = Duration::days(3650);
/// A CA or leaf this close to expiry is replaced.
pub(super) const RENEW_BEFORE: Duration = Duration::days(30);
const LEAF_VALIDITY: Duration = Duration::days(365);
/// Leaves are back-dated so clients with a slightly slow clock accept them.
const BACKDATE: Duration = Duration::days(1);

/// The CA certificate users must trust for the generated HTTPS certificates:
/// `<data_dir>/tls/ca.crt`.
pub fn ca_cert_path(data_dir: &Path) -> PathBuf {
    data_dir.join("tls").join(CA_CERT_FILE)
}

/// A loaded CA: issues leaf certificates.
pub(crate) struct LocalCa {
    issuer: Issuer<'static, KeyPair>,
    random: &'static dyn SecureRandom,
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCa").finish_non_exhaustive()
    }
}

impl LocalCa {
    /// Loads the CA from `<data_dir>/tls/`, creating (or replacing) it when needed.
    pub fn load_or_create(data_dir: &Path, domain: &str) -> Result<LocalCa, GatewayError> {
        let random = rustls::crypto::ring::default_provider().secure_random;
        let cert_path = ca_cert_path(data_dir);
        let key_path = data_dir.join("tls").join(CA_KEY_FILE);
        match load(&cert_path, &key_path, domain)? {
            Loaded::Usable(issuer) => {
                return Ok(LocalCa {
                    issuer: *issuer,
                    random,
                })
            }
            Loaded::Missing => {}
            Loaded::Unusable(reason) => {
                tracing::warn!(cert = %cert_path.display(), %reason, "replacing the gateway's local CA; clients must trust the new one");
            }
        }
        let dir = data_dir.join("tls");
        fs::create_dir_all(&dir).map_err(|source| GatewayError::TlsIo { path: dir, source })?;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("Cove local CA ({domain})"));
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Cove");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::DnsName(domain.to_string())],
            excluded_subtrees: Vec::new(),
        });
        params.not_before = now - BACKDATE;
        params.not_after = now + CA_VALIDITY;
        params.serial_number = Some(serial(random)?);
        let cert = params.self_signed(&key)?;
        // Key first: a crash between the two leaves a mismatched pair, replaced next start.
        super::write_file(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
        super::write_file(&cert_path, cert.pem().as_bytes(), 0o644)?;
        tracing::info!(cert = %cert_path.display(), "created the gateway's local CA; trust this file for HTTPS");
        Ok(LocalCa {
            issuer: Issuer::new(params, key),
            random,
        })
    }

    /// Issues a leaf for exactly `name` (already validated), signed with `leaf_key`.
    /// Returns the certificate and when it should be replaced.
    pub fn issue(
        &self,
        name: &str,
        leaf_key: &KeyPair,
    ) -> Result<(CertificateDer<'static>, OffsetDateTime), GatewayError> {
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        // X.509 caps a CommonName at 64 characters; the SAN is what clients check anyway.
        if name.len() <= 64 {
            params.distinguished_name.push(DnType::CommonName, name);
        }
        params.subject_alt_names = vec![SanType::DnsName(name.try_into()?)];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = now - BACKDATE;
        params.not_after = now + LEAF_VALIDITY;
        // All leaves share one key, and rcgen's default serial is a hash of the key: use a
        // random one, as issuer + serial must identify a certificate.
        params.serial_number = Some(serial(self.random)?);
        let cert = params.signed_by(leaf_key, &self.issuer)?;
        Ok((cert.der().clone(), params.not_after - RENEW_BEFORE))
    }
}

fn serial(random: &dyn SecureRandom) -> Result<SerialNumber, GatewayError> {
    let mut bytes = [0u8; 16];
    random
        .fill(&mut bytes)
        .map_err(|_| GatewayError::CertGen(rcgen::Error::RingUnspecified))?;
    bytes[0] &= 0x7f; // positive
    Ok(SerialNumber::from_slice(&bytes))
}

enum Loaded {
    Usable(Box<Issuer<'static, KeyPair>>),
    Missing,
    Unusable(String),
}

/// Reads the stored CA. Only a missing file means "create"; other I/O errors are errors,
/// so a permissions problem never silently replaces a CA users already trust.
fn load(cert_path: &Path, key_path: &Path, domain: &str) -> Result<Loaded, GatewayError> {
    let read = |path: &Path| match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(GatewayError::TlsIo {
            path: path.to_path_buf(),
            source,
        }),
    };
    let (Some(cert_pem), Some(key_pem)) = (read(cert_path)?, read(key_path)?) else {
        return Ok(Loaded::Missing);
    };
    let Ok(key) = KeyPair::from_pem(&key_pem) else {
        return Ok(Loaded::Unusable(
            "ca.key is not a usable private key".into(),
        ));
    };
    let Ok(der) = CertificateDer::from_pem_slice(cert_pem.as_bytes()) else {
        return Ok(Loaded::Unusable("ca.crt holds no certificate".into()));
    };
    if let Err(reason) = check(&der, &key, domain) {
        return Ok(Loaded::Unusable(reason));
    }
    match Issuer::from_ca_cert_der(&der, key) {
        Ok(issuer) => Ok(Loaded::Usable(Box::new(issuer))),
        Err(e) => Ok(Loaded::Unusable(format!("ca.crt: {e}"))),
    }
}

/// Checks the stored certificate belongs to `key`, is valid long enough and is constrained
/// to exactly `domain`.
fn check(der: &[u8], key: &KeyPair, domain: &str) -> Result<(), String> {
    use rcgen::PublicKeyData;
    let (_, x509) = x509_parser::parse_x509_certificate(der).map_err(|e| format!("ca.crt: {e}"))?;
    if x509.public_key().raw != key.subject_public_key_info().as_slice() {
        return Err("ca.crt does not match ca.key".into());
    }
    let remaining =
        x509.validity().not_after.timestamp() - OffsetDateTime::now_utc().unix_timestamp();
    if remaining < RENEW_BEFORE.whole_seconds() {
        return Err("the CA expires within 30 days".into());
    }
    let permitted: Vec<&str> = match x509.name_constraints() {
        Ok(Some(nc)) => nc
            .value
            .permitted_subtrees
            .iter()
            .flatten()
            .filter_map(|s| match s.base {
                GeneralName::DNSName(d) => Some(d),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if permitted != [domain] {
        return Err(format!(
            "the CA is for {permitted:?}, the gateway domain is {domain:?}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).expect("meta").permissions().mode() & 0o777
    }

    #[test]
    fn created_once_then_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        LocalCa::load_or_create(dir.path(), "cove.test").expect("create");
        let crt = ca_cert_path(dir.path());
        let first = fs::read(&crt).expect("ca.crt");
        assert_eq!(mode(&crt), 0o644);
        assert_eq!(mode(&dir.path().join("tls/ca.key")), 0o600);
        LocalCa::load_or_create(dir.path(), "cove.test").expect("reuse");
        assert_eq!(first, fs::read(&crt).expect("ca.crt"), "reused");
    }

    #[test]
    fn replaced_for_another_domain_or_a_mismatched_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let crt = ca_cert_path(dir.path());
        LocalCa::load_or_create(dir.path(), "a.test").expect("create");
        let a = fs::read(&crt).expect("ca.crt");
        LocalCa::load_or_create(dir.path(), "b.test").expect("replace");
        let b = fs::read(&crt).expect("ca.crt");
        assert_ne!(a, b, "domain change");
        let other = KeyPair::generate().expect("key").serialize_pem();
        fs::write(dir.path().join("tls/ca.key"), other).expect("write");
        LocalCa::load_or_create(dir.path(), "b.test").expect("replace");
        assert_ne!(b, fs::read(&crt).expect("ca.crt"), "key mismatch");
    }

    #[test]
    fn leaves_have_distinct_serials() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = LocalCa::load_or_create(dir.path(), "cove.test").expect("create");
        let key = KeyPair::generate().expect("key");
        let serial = |name: &str| {
            let (der, _) = ca.issue(name, &key).expect("issue");
            let (_, x) = x509_parser::parse_x509_certificate(&der).expect("parse");
            x.raw_serial().to_vec()
        };
        assert_ne!(serial("a.cove.test"), serial("b.cove.test"));
    }
}
