//! `cove image build`: sends a [`BuildRequest`] and prints the daemon's stream
//! (`=> Building image`, step output, `=> Built <reference>`).

use std::io::Write;

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;

use cove_types::{BuildContext, BuildRequest, BuildStep, ImageInfo, LocalPathStep};
use futures::StreamExt;
use serde::Deserialize;

use crate::client::Client;
use crate::commands::registry_login::RegistryLogin;
use crate::commands::run::parse_env;

/// `cove image build` arguments. Steps run in this order: the python check, added paths,
/// commands, python packages.
#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// Image to build on, e.g. 127.0.0.1:5000/busybox:latest.
    #[arg(long)]
    pub base: String,
    /// Check that the image has python3 of this version (e.g. 3.11) before the other steps.
    #[arg(long)]
    pub python_version: Option<String>,
    /// LOCAL[:REMOTE]: upload a file or directory and add it at REMOTE (default /<its name>),
    /// one step each, before the commands (repeat for more).
    #[arg(long = "add-path")]
    pub add_paths: Vec<String>,
    /// A shell command; each is one step (repeat for more).
    #[arg(long = "command")]
    pub commands: Vec<String>,
    /// Python packages to pip install, as one step (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub python_packages: Vec<String>,
    /// KEY=VALUE set while building and kept in the image (repeat for more).
    #[arg(long = "env")]
    pub env: Vec<String>,
    #[command(flatten)]
    pub login: RegistryLogin,
}

/// One line of the build stream.
#[derive(Debug, Default, Deserialize)]
struct BuildLine {
    progress: Option<String>,
    log: Option<String>,
    image: Option<ImageInfo>,
    error: Option<String>,
}

/// The request for `args`.
pub fn build_request(args: &BuildArgs) -> Result<BuildRequest> {
    let mut steps: Vec<BuildStep> = args
        .python_version
        .iter()
        .map(|v| BuildStep::PythonVersion(v.clone()))
        .collect();
    steps.extend(
        args.commands
            .iter()
            .map(|c| BuildStep::Commands(vec![c.clone()])),
    );
    if !args.python_packages.is_empty() {
        steps.push(BuildStep::PythonPackages(args.python_packages.clone()));
    }
    Ok(BuildRequest {
        base_image: args.base.clone(),
        steps,
        env: parse_env(&args.env)?,
        registry_auth: args.login.auth(),
    })
}

/// Runs the build, printing its stream; the built reference is the last line.
pub async fn execute(client: &Client, args: BuildArgs) -> Result<i32> {
    let mut req = build_request(&args)?;
    // Uploads go first; their steps come right after the python check.
    let at = usize::from(args.python_version.is_some());
    for (i, spec) in args.add_paths.iter().enumerate() {
        let step = upload_path(client, spec).await?;
        req.steps.insert(at + i, step);
    }
    let img = stream_build(client, &req, true).await?;
    let mut out = std::io::stdout();
    writeln!(out, "=> Built {}", img.reference)?;
    Ok(0)
}

/// Sends `req` to `POST /v1/images/build` and prints its stream as it comes: progress as
/// `=> ...`, step output as is (unless `!print`). Returns the built image; a build error is the error.
pub(crate) async fn stream_build(
    client: &Client,
    req: &BuildRequest,
    print: bool,
) -> Result<ImageInfo> {
    let resp = client
        .post_ndjson(client.url(&["v1", "images", "build"], &[]), req)
        .await?;
    let mut stream = resp.bytes_stream();
    let mut pending: Vec<u8> = Vec::new();
    let mut built: Option<ImageInfo> = None;
    let mut out = std::io::stdout();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.context("reading the daemon's build output")?;
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let ev: BuildLine = serde_json::from_slice(&line[..end])
                .context("the daemon sent an unreadable build line")?;
            if let Some(msg) = ev.error {
                bail!("{msg}");
            }
            if let Some(p) = ev.progress.filter(|_| print) {
                writeln!(out, "=> {p}")?;
            }
            if let Some(l) = ev.log.filter(|_| print) {
                writeln!(out, "{l}")?;
            }
            if let Some(i) = ev.image {
                built = Some(i);
            }
            out.flush().ok();
        }
    }
    built.context("the daemon ended the build stream without an image")
}

/// `LOCAL[:REMOTE]` → (local path, remote path).
fn split_add_path(spec: &str) -> (PathBuf, String) {
    let (local, remote) = match spec.split_once(':') {
        Some((l, r)) if !r.is_empty() => (l, Some(r.to_string())),
        _ => (spec.trim_end_matches(':'), None),
    };
    let local = PathBuf::from(local);
    let remote = remote.unwrap_or_else(|| {
        let name = local
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        format!("/{name}")
    });
    (local, remote)
}

/// Uploads a file or directory as a tar; the step that adds it at its remote path.
async fn upload_path(client: &Client, spec: &str) -> Result<BuildStep> {
    let (local, remote) = split_add_path(spec);
    let meta = tokio::fs::metadata(&local)
        .await
        .with_context(|| format!("cannot read {}", local.display()))?;
    let url = client.url(&["v1", "images", "build", "context"], &[]);
    let (body, dir) = if meta.is_dir() {
        (super::tar_stream(local.clone()), remote)
    } else {
        // A file: a tar of that one file under its remote name, unpacked in its remote dir.
        let remote_path = std::path::Path::new(&remote);
        let name = remote_path
            .file_name()
            .context("--add-path for a file needs a file name at REMOTE")?
            .to_owned();
        let mut b = tar::Builder::new(Vec::new());
        b.append_path_with_name(&local, &name)
            .with_context(|| format!("cannot read {}", local.display()))?;
        let parent = remote_path
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        (reqwest::Body::from(b.into_inner()?), parent)
    };
    let ctx: BuildContext = client.post_body(url, "application/x-tar", body).await?;
    Ok(BuildStep::LocalPath(LocalPathStep {
        archive: ctx.digest,
        remote: dir,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_steps_in_order_then_packages() {
        let args = BuildArgs {
            base: "b".into(),
            python_version: None,
            add_paths: vec![],
            commands: vec!["echo a".into(), "echo b".into()],
            python_packages: vec!["x==1".into(), "y".into()],
            env: vec!["K=V".into()],
            login: Default::default(),
        };
        let req = build_request(&args).unwrap();
        assert_eq!(
            req.steps,
            vec![
                BuildStep::Commands(vec!["echo a".into()]),
                BuildStep::Commands(vec!["echo b".into()]),
                BuildStep::PythonPackages(vec!["x==1".into(), "y".into()]),
            ]
        );
        assert_eq!(req.env["K"], "V");
    }
}
