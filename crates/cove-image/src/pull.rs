//! Pulling from an OCI distribution registry with `oci-client`.
//!
//! We fetch the manifest raw (so we pick the platform ourselves and can say
//! clearly when it is missing), then the config, then the layers concurrently;
//! each blob is verified while streamed into the blob store and unpacked once.

use std::sync::Arc;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use tracing::Instrument;

use crate::config::RawConfig;
use crate::manifest::{self, Compression, Descriptor, Manifest};
use crate::reference::{self, ParsedRef};
use crate::store::{make_row, Inner, StoredLayer};
use crate::{Image, ImageError, ImageStore};

type Progress<'a> = &'a (dyn Fn(String) + Send + Sync);

impl ImageStore {
    /// Pulls `reference` (always asks the registry) and stores it locally.
    pub async fn pull(
        &self,
        reference: &str,
        auth: Option<&cove_types::RegistryAuth>,
        progress: Progress<'_>,
    ) -> Result<Image, ImageError> {
        let parsed = reference::parse(reference)?;
        let span = tracing::info_span!("pull", reference = %parsed.canonical());
        pull(&self.inner, &parsed, auth, progress)
            .instrument(span)
            .await
    }
}

/// Human-readable size: "1.2 MB".
pub(crate) fn human(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.1} GB", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1} kB", n as f64 / 1e3),
        n => format!("{n} B"),
    }
}

/// `sha256:abcdef012345…`
pub(crate) fn short(digest: &str) -> String {
    format!("{}…", &digest[..digest.len().min(19)])
}

fn client_for(inner: &Inner, r: &ParsedRef) -> Client {
    let insecure = inner
        .insecure
        .read()
        .map(|l| l.contains(&r.registry))
        .unwrap_or(false);
    let protocol = if insecure || reference::is_loopback(r.host()) {
        ClientProtocol::Http
    } else {
        ClientProtocol::Https
    };
    Client::new(ClientConfig {
        protocol,
        platform_resolver: None,
        connect_timeout: Some(std::time::Duration::from_secs(10)),
        read_timeout: Some(std::time::Duration::from_secs(120)),
        ..Default::default()
    })
}

/// Maps an oci-client error onto ours.
fn map_err(r: &ParsedRef, e: OciDistributionError) -> ImageError {
    let name = r.canonical();
    let unreachable = |reason: String| ImageError::RegistryUnreachable {
        registry: r.registry.clone(),
        reason,
    };
    match e {
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => {
            ImageError::Unauthorized(format!("registry {} refused access to {name}", r.registry))
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            let code = envelope.errors.first().map(|e| &e.code);
            match code {
                Some(
                    OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::NotFound
                    | OciErrorCode::BlobUnknown,
                ) => ImageError::NotFound(name),
                Some(OciErrorCode::Unauthorized | OciErrorCode::Denied) => {
                    ImageError::Unauthorized(format!(
                        "registry {} refused access to {name}",
                        r.registry
                    ))
                }
                _ => unreachable(format!("{:?}", envelope.errors)),
            }
        }
        OciDistributionError::ServerError { code: 404, .. } => ImageError::NotFound(name),
        OciDistributionError::ServerError {
            code: 401 | 403, ..
        } => ImageError::Unauthorized(format!("registry {} refused access to {name}", r.registry)),
        OciDistributionError::RequestError(e) => {
            // The useful part ("connection refused", "dns error") is in the sources.
            let mut reason = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                reason = format!("{reason}: {s}");
                src = s.source();
            }
            unreachable(reason)
        }
        e => unreachable(e.to_string()),
    }
}

async fn pull(
    inner: &Arc<Inner>,
    r: &ParsedRef,
    auth: Option<&cove_types::RegistryAuth>,
    progress: Progress<'_>,
) -> Result<Image, ImageError> {
    let canonical = r.canonical();
    progress(format!("Pulling {canonical}"));
    let client = client_for(inner, r);
    let oref = Reference::try_from(canonical.as_str())
        .map_err(|_| ImageError::InvalidReference(canonical.clone()))?;
    let auth = match auth {
        Some(a) => RegistryAuth::Basic(a.username.clone(), a.password.clone()),
        None => RegistryAuth::Anonymous,
    };
    let (bytes, mut digest) = client
        .pull_manifest_raw(&oref, &auth, manifest::ACCEPTED)
        .await
        .map_err(|e| map_err(r, e))?;
    let mut raw_manifest = bytes.to_vec();
    let mut m = Manifest::parse(&raw_manifest)?;
    if m.is_index(None) {
        let chosen = manifest::select_platform(&m, &canonical)?.digest.clone();
        let by_digest = Reference::with_digest(
            oref.registry().to_string(),
            oref.repository().to_string(),
            chosen.clone(),
        );
        let (bytes, d) = client
            .pull_manifest_raw(&by_digest, &auth, manifest::ACCEPTED)
            .await
            .map_err(|e| map_err(r, e))?;
        raw_manifest = bytes.to_vec();
        m = Manifest::parse(&raw_manifest)?;
        digest = d;
    }
    let config_desc = m
        .config
        .clone()
        .ok_or_else(|| ImageError::Invalid(format!("manifest of {canonical} has no config")))?;
    if !inner.blobs.has(&config_desc.digest) {
        let stream = client
            .pull_blob_stream(&oref, config_desc.digest.as_str())
            .await
            .map_err(|e| map_err(r, e))?;
        inner
            .blobs
            .write_stream(&config_desc.digest, stream)
            .await?;
    }
    let config_bytes = inner.blobs.read(&config_desc.digest)?;
    let mut tasks = tokio::task::JoinSet::new();
    for layer in m.layers.clone() {
        let (client, oref, inner, r) = (client.clone(), oref.clone(), inner.clone(), r.clone());
        tasks.spawn(async move {
            if inner.blobs.has(&layer.digest) {
                return Ok((layer, false));
            }
            let stream = client
                .pull_blob_stream(&oref, layer.digest.as_str())
                .await
                .map_err(|e| map_err(&r, e))?;
            inner.blobs.write_stream(&layer.digest, stream).await?;
            Ok::<_, ImageError>((layer, true))
        });
    }
    while let Some(res) = tasks.join_next().await {
        let (layer, fetched) =
            res.map_err(|e| ImageError::Invalid(format!("layer download task: {e}")))??;
        let verb = if fetched { "pulled" } else { "already present" };
        progress(format!(
            "Layer {} {} {verb}",
            short(&layer.digest),
            human(layer.size.max(0) as u64)
        ));
    }
    let image = install(
        inner,
        &canonical,
        &digest,
        String::from_utf8_lossy(&raw_manifest).into_owned(),
        &config_desc.digest,
        &config_bytes,
        &m.layers,
    )
    .await?;
    progress(format!("Pulled {canonical} {}", short(&image.digest)));
    Ok(image)
}

/// Unpacks the (stored) layers, checks them against the config's diff_ids and
/// records the image under `reference`. Shared by pull and import.
pub(crate) async fn install(
    inner: &Arc<Inner>,
    reference: &str,
    manifest_digest: &str,
    manifest_json: String,
    config_digest: &str,
    config_bytes: &[u8],
    layers: &[Descriptor],
) -> Result<Image, ImageError> {
    let raw = RawConfig::parse(config_bytes)?;
    if let Some(os) = raw.os.as_deref().filter(|os| *os != "linux") {
        return Err(ImageError::Unsupported(format!(
            "{reference} is a {os} image"
        )));
    }
    let diff_ids = raw.diff_ids();
    if diff_ids.len() != layers.len() {
        return Err(ImageError::Invalid(format!(
            "{reference}: manifest has {} layers, config has {} diff_ids",
            layers.len(),
            diff_ids.len()
        )));
    }
    let mut stored = Vec::with_capacity(layers.len());
    let mut tasks = tokio::task::JoinSet::new();
    for (l, diff_id) in layers.iter().zip(diff_ids) {
        let hint = if l.media_type.is_empty() {
            None
        } else {
            Some(Compression::from_media_type(&l.media_type).ok_or_else(|| {
                ImageError::Unsupported(format!("layer media type {}", l.media_type))
            })?)
        };
        stored.push(StoredLayer {
            diff_id: diff_id.clone(),
            blob: l.digest.clone(),
            media_type: l.media_type.clone(),
            size: l.size.max(0) as u64,
        });
        let (inner, blob) = (inner.clone(), l.digest.clone());
        let span = tracing::info_span!("unpack", layer = %diff_id);
        tasks.spawn_blocking(move || span.in_scope(|| inner.ensure_layer(&diff_id, &blob, hint)));
    }
    while let Some(res) = tasks.join_next().await {
        res.map_err(|e| ImageError::Invalid(format!("unpack task: {e}")))??;
    }
    let config = raw.image_config();
    let row = make_row(
        reference,
        manifest_digest,
        manifest_json,
        config_digest,
        &config,
        &stored,
    )?;
    inner.commit(row).await
}
