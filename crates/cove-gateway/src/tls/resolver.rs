//! Per-SNI leaf certificates issued by the local CA.
//!
//! For an SNI name equal to the domain or under it, the handshake gets a leaf for exactly
//! that name. Without SNI (clients connecting by IP address) or for a name outside the
//! domain, it gets the leaf for the domain itself rather than a failed handshake: such a
//! client will not verify it by name anyway, and one that pins it or skips verification
//! (`curl -k https://127.0.0.1/pod/…`) still works.
//!
//! Leaves are cached in memory, at most `capacity` of them: SNI is chosen by the client, so
//! without a bound every new name would grow the map. When full, an arbitrary entry is
//! evicted. Issuing costs one ECDSA signature (~100 µs), done inline in the connection's
//! own task, never in the accept loop. All leaves share one P-256 key made at startup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rcgen::KeyPair;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::PrivateKeyDer;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use time::OffsetDateTime;

use super::ca::LocalCa;
use crate::error::GatewayError;

/// Default bound on cached leaves.
pub(super) const MAX_CACHED_LEAVES: usize = 10_000;

struct Leaf {
    key: Arc<CertifiedKey>,
    renew_at: OffsetDateTime,
}

/// Serves a CA-issued leaf per SNI name.
pub(crate) struct LeafResolver {
    ca: LocalCa,
    domain: String,
    leaf_key: KeyPair,
    signing_key: Arc<dyn rustls::sign::SigningKey>,
    capacity: usize,
    cache: Mutex<HashMap<String, Leaf>>,
}

impl std::fmt::Debug for LeafResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeafResolver")
            .field("domain", &self.domain)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl LeafResolver {
    /// `domain` must be normalized (lowercase, no trailing dot). Issues the domain's own
    /// leaf up front so signing problems surface at startup.
    pub fn new(
        ca: LocalCa,
        domain: String,
        capacity: usize,
        provider: &CryptoProvider,
    ) -> Result<LeafResolver, GatewayError> {
        let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let der = PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let signing_key = provider.key_provider.load_private_key(der)?;
        let resolver = LeafResolver {
            ca,
            domain,
            leaf_key,
            signing_key,
            capacity: capacity.max(1),
            cache: Mutex::new(HashMap::new()),
        };
        resolver.leaf_for(&resolver.domain.clone())?;
        Ok(resolver)
    }

    /// The name a leaf is issued for: the SNI name if it is a DNS name at or under the
    /// domain, else the domain.
    fn cert_name<'a>(&'a self, sni: Option<&str>) -> std::borrow::Cow<'a, str> {
        if let Some(sni) = sni {
            let sni = sni.trim_end_matches('.').to_ascii_lowercase();
            let under = sni
                .strip_suffix(self.domain.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'));
            if under && super::is_dns_name(&sni) {
                return sni.into();
            }
        }
        self.domain.as_str().into()
    }

    /// The cached leaf for `name`, issuing (and caching) one if absent or due for renewal.
    fn leaf_for(&self, name: &str) -> Result<Arc<CertifiedKey>, GatewayError> {
        let now = OffsetDateTime::now_utc();
        if let Some(leaf) = self.lock().get(name) {
            if now < leaf.renew_at {
                return Ok(Arc::clone(&leaf.key));
            }
        }
        // Issued outside the lock; two handshakes racing for a new name both sign, and the
        // later insert wins. Harmless.
        let (der, renew_at) = self.ca.issue(name, &self.leaf_key)?;
        let key = Arc::new(CertifiedKey::new(vec![der], Arc::clone(&self.signing_key)));
        let mut cache = self.lock();
        if cache.len() >= self.capacity && !cache.contains_key(name) {
            if let Some(victim) = cache.keys().next().cloned() {
                cache.remove(&victim);
            }
        }
        cache.insert(
            name.to_string(),
            Leaf {
                key: Arc::clone(&key),
                renew_at,
            },
        );
        Ok(key)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Leaf>> {
        // The map holds no invariant a panicking holder could break.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn cached(&self) -> usize {
        self.lock().len()
    }
}

impl ResolvesServerCert for LeafResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = self.cert_name(client_hello.server_name());
        match self.leaf_for(&name) {
            Ok(key) => Some(key),
            Err(e) => {
                tracing::warn!(%name, error = %e, "cannot issue a gateway certificate");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(capacity: usize) -> (tempfile::TempDir, LeafResolver) {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = LocalCa::load_or_create(dir.path(), "cove.test").expect("ca");
        let provider = rustls::crypto::ring::default_provider();
        let r = LeafResolver::new(ca, "cove.test".into(), capacity, &provider).expect("new");
        (dir, r)
    }

    #[test]
    fn names_outside_the_domain_get_the_domain_leaf() {
        let (_dir, r) = resolver(8);
        assert_eq!(r.cert_name(Some("a-1.cove.test")), "a-1.cove.test");
        assert_eq!(r.cert_name(Some("A-1.Cove.Test.")), "a-1.cove.test");
        assert_eq!(r.cert_name(Some("cove.test")), "cove.test");
        for other in [
            None,
            Some("evil.test"),
            Some("xcove.test"),
            Some("a_b.cove.test"),
        ] {
            assert_eq!(r.cert_name(other), "cove.test", "{other:?}");
        }
    }

    #[test]
    fn cache_is_bounded_and_reused() {
        let (_dir, r) = resolver(4);
        let first = r.leaf_for("n0.cove.test").expect("issue");
        let again = r.leaf_for("n0.cove.test").expect("cached");
        assert!(Arc::ptr_eq(&first, &again));
        for i in 0..50 {
            r.leaf_for(&format!("n{i}.cove.test")).expect("issue");
            assert!(r.cached() <= 4, "cache grew to {}", r.cached());
        }
        assert_eq!(r.cached(), 4);
    }
}
