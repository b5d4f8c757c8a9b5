//! `cove image pull|list|rm|import|build`.

pub(crate) mod build;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Subcommand;
use cove_types::{ImageInfo, PullRequest};
use tokio::sync::mpsc;

use crate::client::Client;
use crate::commands::container::ListFormat;
use crate::commands::registry_login::RegistryLogin;
use crate::{humanize, print_error, table};

/// `cove image ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum ImageCmd {
    /// Pull an image from a registry into the daemon's store.
    Pull {
        /// Image reference, e.g. 127.0.0.1:5000/busybox:latest.
        reference: String,
        #[command(flatten)]
        login: RegistryLogin,
    },
    /// List the daemon's images.
    #[command(alias = "ls")]
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Remove images from the daemon's store.
    Rm {
        /// Image references.
        #[arg(required = true)]
        references: Vec<String>,
    },
    /// Import an OCI image layout (a directory, or a tar of one) into the daemon's store.
    Import {
        /// An OCI layout directory, or a tar archive of one.
        path: PathBuf,
        /// Reference to store the image under (default: the layout's own annotation).
        #[arg(long)]
        reference: Option<String>,
    },
    /// Build an image: run commands / pip installs on a base image, each step cached as a layer.
    Build(build::BuildArgs),
}

/// Runs a `cove image` subcommand.
pub async fn execute(client: &Client, cmd: ImageCmd) -> Result<i32> {
    match cmd {
        ImageCmd::Build(args) => build::execute(client, args).await,
        ImageCmd::Pull { reference, login } => {
            println!("=> Pulling {reference}");
            io::stdout().flush().ok();
            let req = PullRequest {
                reference,
                auth: login.auth(),
            };
            let img: ImageInfo = client
                .post(client.url(&["v1", "images", "pull"], &[]), &req)
                .await?;
            println!("Pulled {} ({})", img.reference, img.digest);
            Ok(0)
        }
        ImageCmd::List { format } => {
            let list: Vec<ImageInfo> = client.get(client.url(&["v1", "images"], &[])).await?;
            match format {
                ListFormat::Json => println!("{}", serde_json::to_string_pretty(&list)?),
                ListFormat::Table => print!("{}", table::images(&list, humanize::now_ms())),
            }
            Ok(0)
        }
        ImageCmd::Rm { references } => {
            let mut failed = false;
            for r in references {
                match client
                    .delete(client.url(&["v1", "images"], &[("reference", &r)]))
                    .await
                {
                    Ok(()) => println!("Removed {r}"),
                    Err(e) => {
                        failed = true;
                        print_error(&e.into());
                    }
                }
            }
            Ok(if failed { 1 } else { 0 })
        }
        ImageCmd::Import { path, reference } => {
            let meta = tokio::fs::metadata(&path)
                .await
                .with_context(|| format!("cannot read {}", path.display()))?;
            let body = if meta.is_dir() {
                tar_stream(path)
            } else {
                let file = tokio::fs::File::open(&path)
                    .await
                    .with_context(|| format!("cannot open {}", path.display()))?;
                reqwest::Body::from(file)
            };
            let query: Vec<(&str, &str)> = reference
                .iter()
                .map(|r| ("reference", r.as_str()))
                .collect();
            let url = client.url(&["v1", "images", "import"], &query);
            let images: Vec<ImageInfo> = client.post_body(url, "application/x-tar", body).await?;
            for img in images {
                println!("Imported {} ({})", img.reference, img.digest);
            }
            Ok(0)
        }
    }
}

/// A request body that is `dir` as a tar, built on a blocking thread as the upload reads it,
/// so a large image is never held in memory.
fn tar_stream(dir: PathBuf) -> reqwest::Body {
    let mut rx = tar_chunks(dir);
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    reqwest::Body::wrap_stream(stream)
}

/// Chunks of `dir` as a tar archive, produced by a blocking task; an error ends the stream.
fn tar_chunks(dir: PathBuf) -> mpsc::Receiver<io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel::<io::Result<Vec<u8>>>(8);
    tokio::task::spawn_blocking(move || {
        let writer = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let result = (|| {
            let mut builder = tar::Builder::new(writer);
            builder.follow_symlinks(false);
            append_tree(&mut builder, &dir, Path::new(""))?;
            builder.into_inner()?.flush()
        })();
        if let Err(e) = result {
            // Fails the upload instead of sending a truncated archive; if the receiver is
            // gone the request already ended and there is no one to tell.
            let _ = tx.blocking_send(Err(e));
        }
    });
    rx
}

const CHUNK: usize = 256 * 1024;

/// Appends the contents of `dir` under `prefix` (relative paths, sorted, no `./`).
fn append_tree<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: &Path,
    prefix: &Path,
) -> io::Result<()> {
    let mut entries = std::fs::read_dir(dir)?.collect::<io::Result<Vec<_>>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = prefix.join(entry.file_name());
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            builder.append_dir(&name, &path)?;
            append_tree(builder, &path, &name)?;
        } else {
            builder.append_path_with_name(&path, &name)?;
        }
    }
    Ok(())
}

/// Buffers writes into chunks sent over a channel; a dropped receiver is a broken pipe.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "upload ended"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[tokio::test]
    async fn directories_stream_as_tar_with_relative_paths() {
        let dir = std::env::temp_dir().join(format!("cove-cli-tar-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        std::fs::write(dir.join("index.json"), b"{}").unwrap();
        let big = vec![7u8; CHUNK * 2 + 17];
        std::fs::write(dir.join("blobs/sha256/abc"), &big).unwrap();

        let mut chunks = tar_chunks(dir.clone());
        let mut bytes = Vec::new();
        while let Some(chunk) = chunks.recv().await {
            bytes.extend_from_slice(&chunk.unwrap());
        }
        std::fs::remove_dir_all(&dir).unwrap();

        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().display().to_string();
            if name == "blobs/sha256/abc" {
                let mut content = Vec::new();
                io::Read::read_to_end(&mut entry, &mut content).unwrap();
                assert_eq!(content, big);
            }
            names.push(name);
        }
        assert_eq!(
            names,
            [
                "blobs",
                "blobs/sha256",
                "blobs/sha256/abc",
                "index.json",
                "oci-layout"
            ]
        );
    }
}
