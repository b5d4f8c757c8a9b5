//! Fetching an image from another Cove host: by manifest digest, over that host's internal
//! OCI distribution endpoint (`/v2/`, see [`crate::distribution`]), with its bearer token.
//!
//! The pull's own code does the work ([`crate::pull::fetch`]): the manifest is checked
//! against the digest asked for, the config and every layer blob against theirs while
//! they stream into the blob store, each layer against its diff_id while it unpacks; the
//! image lands under its own reference exactly as a pull would. Peers are reached over
//! plain HTTP: the hosts of a cluster talk over their own network, as their API does.

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use tracing::Instrument;

use crate::blobs::digest_hex;
use crate::distribution::peer_name;
use crate::pull::{fetch, Source};
use crate::reference::{self, ParsedRef};
use crate::{Image, ImageError, ImageStore};

/// A host that serves its images: its API's base URL and a token it accepts.
#[derive(Clone)]
pub struct Peer {
    /// `http://<host>:<port>` (a trailing `/` is fine).
    pub url: String,
    /// A bearer token the peer takes as admin (in a cluster: the cluster's own token).
    pub token: String,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl Peer {
    /// The `host:port` of an `http://host:port` URL; anything else is refused.
    fn authority(&self) -> Result<String, ImageError> {
        let bad = || {
            ImageError::Unsupported(format!(
                "peer URL {:?}: want http://<host>:<port>",
                self.url
            ))
        };
        let rest = self.url.strip_prefix("http://").ok_or_else(bad)?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = authority.rsplit_once(':').ok_or_else(bad)?;
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b));
        if !host_ok || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(bad());
        }
        Ok(authority.to_string())
    }
}

impl ImageStore {
    /// Fetches the image `reference` whose manifest digest is `digest` from `peer` and
    /// stores it under `reference`, as a pull would; an image already here with that
    /// digest is returned as it is. Every byte is verified against its digest.
    pub async fn fetch_from_peer(
        &self,
        peer: &Peer,
        reference: &str,
        digest: &str,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<Image, ImageError> {
        digest_hex(digest)?;
        let parsed = reference::parse(reference)?;
        if parsed.digest.as_deref().is_some_and(|d| d != digest) {
            return Err(ImageError::InvalidReference(format!(
                "{reference} names another digest than {digest}"
            )));
        }
        let canonical = parsed.canonical();
        if let Some(image) = self.get(&canonical).await?.filter(|i| i.digest == digest) {
            return Ok(image);
        }
        let host = peer.authority()?;
        let name = peer_name(&canonical)?;
        let span =
            tracing::info_span!("fetch_from_peer", reference = %canonical, %digest, peer = %host);
        async {
            progress(format!("Fetching {canonical} from {host}"));
            let oref = Reference::with_digest(host.clone(), name.clone(), digest.to_string());
            let client = Client::new(ClientConfig {
                protocol: ClientProtocol::Http,
                platform_resolver: None,
                connect_timeout: Some(std::time::Duration::from_secs(10)),
                read_timeout: Some(std::time::Duration::from_secs(120)),
                ..Default::default()
            });
            let source = Source {
                client,
                oref,
                auth: RegistryAuth::Bearer(peer.token.clone()),
                origin: ParsedRef {
                    registry: host.clone(),
                    repository: name.clone(),
                    tag: None,
                    digest: Some(digest.to_string()),
                },
            };
            fetch(&self.inner, &source, &canonical, Some(digest), progress).await
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_urls_are_plain_http_host_and_port() {
        let p = |url: &str| Peer {
            url: url.into(),
            token: "t".into(),
        };
        assert_eq!(
            p("http://10.0.0.11:7310").authority().unwrap(),
            "10.0.0.11:7310"
        );
        assert_eq!(p("http://host-a:7310/").authority().unwrap(), "host-a:7310");
        for bad in [
            "https://a:1",
            "http://a",
            "http://a:0",
            "http://a:99999",
            "http://a:1/v2",
            "http://a/b:1",
            "http://:1",
            "ftp://a:1",
        ] {
            assert!(p(bad).authority().is_err(), "{bad}");
        }
        assert!(!format!("{:?}", p("http://a:1")).contains("\"t\""));
    }
}
