//! `cove run`: launch a pod and print where it is hosted.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use cove_types::{
    BuildRequest, BuildStep, Container, CreateEvent, CreatePodRequest, LocalPathStep, Quantity,
};
use futures::StreamExt;

use crate::client::Client;
use crate::commands::registry_login::RegistryLogin;

/// How `cove run` reports the new container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum RunFormat {
    /// Progress lines and the URLs.
    #[default]
    Text,
    /// Only the container, as JSON.
    Json,
}

/// Arguments of `cove run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Image reference, e.g. 127.0.0.1:5000/busybox:latest (pulled if not local).
    #[arg(long)]
    pub image: String,
    /// Port the container listens on; repeat or comma-separate for several (--ports 8000,8001).
    #[arg(long, value_delimiter = ',')]
    pub ports: Vec<i64>,
    /// Environment variable KEY=VALUE; repeat for several.
    #[arg(long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Cores (0.5, 2) or millicores (1000m). Default 1.
    #[arg(long)]
    pub cpu: Option<String>,
    /// Memory in MiB (128) or with a unit (512Mi, 1Gi). Default 128.
    #[arg(long)]
    pub memory: Option<String>,
    /// Largest size of the pod's writable layer, MiB (1024) or with a unit (1Gi); writes past
    /// it fail with "No space left on device". Default: the daemon's --default-disk (unlimited).
    #[arg(long)]
    pub disk: Option<String>,
    /// Largest size of one file of the pod's log, MiB (10) or with a unit (512Ki, 20Mi); the
    /// log is rotated before it grows past it. Default: the daemon's --log-max-size (10Mi).
    #[arg(long, value_name = "SIZE")]
    pub log_max_size: Option<String>,
    /// Log files kept, the current one included (1-100): the pod's log takes at most
    /// --log-max-size × --log-max-files on disk. Default: the daemon's --log-max-files (3).
    #[arg(long, value_name = "N")]
    pub log_max_files: Option<i64>,
    /// Seconds without connections before the container stops; -1 keeps it up. Default 600.
    #[arg(long, allow_hyphen_values = true, value_name = "SECONDS")]
    pub keep_warm_seconds: Option<i64>,
    /// Command line to run instead of the image's, split like a shell does ("httpd -f -p 8000").
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// A name for the pod.
    #[arg(long)]
    pub name: Option<String>,
    /// Working directory inside the container (default: the image's).
    #[arg(long)]
    pub workdir: Option<String>,
    /// The runtime isolating the pod: runc, or gvisor (gVisor's runsc: the pod's system calls
    /// go to gVisor's own kernel). Default: the daemon's --default-isolation.
    #[arg(long, value_name = "runc|gvisor")]
    pub isolation: Option<String>,
    /// No outbound network at all (requests through the gateway still reach the pod).
    #[arg(long)]
    pub block_network: bool,
    /// Serve the pod's URLs only to requests carrying a token of its workspace
    /// (`Authorization: Bearer <token>` or `?auth_token=<token>`); the pod never sees the token.
    #[arg(long)]
    pub authorized: bool,
    /// Only let the pod reach this CIDR (10.0.0.0/8, 1.2.3.4/32, 2001:db8::/32); repeat for several.
    #[arg(long, value_name = "CIDR")]
    pub allow: Vec<String>,
    #[command(flatten)]
    pub login: RegistryLogin,
    /// Upload DIR (default: the current directory) and run the entrypoint in it: the pod's image
    /// is --image plus DIR at /app, built by the daemon, and its working directory is /app
    /// (unless --workdir). .gitignore/.coveignore patterns (in every directory) are left out; the total is
    /// capped (COVE_SYNC_MAX_BYTES, default 100 MiB). Unchanged content is not sent again.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = ".")]
    pub sync: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = RunFormat::Text)]
    pub format: RunFormat,
}

/// Validates the arguments into the API request, before anything is sent.
pub fn build_request(args: &RunArgs) -> Result<CreatePodRequest> {
    let env = parse_env(&args.env)?;
    let entrypoint = match &args.entrypoint {
        Some(line) => {
            let words = shell_words::split(line)
                .map_err(|e| anyhow::anyhow!("--entrypoint {line:?}: {e}"))?;
            if words.is_empty() {
                bail!("--entrypoint is empty");
            }
            Some(words)
        }
        None => None,
    };
    Ok(CreatePodRequest {
        image: args.image.clone(),
        ports: args.ports.clone(),
        cpu: args.cpu.as_deref().map(quantity),
        memory: args.memory.as_deref().map(quantity),
        disk: args.disk.as_deref().map(quantity),
        log_max_size: args.log_max_size.as_deref().map(quantity),
        log_max_files: args.log_max_files,
        env,
        entrypoint,
        name: args.name.clone(),
        keep_warm_seconds: args.keep_warm_seconds,
        workdir: args.workdir.clone(),
        isolation: args.isolation.clone(),
        block_network: args.block_network,
        allow_list: args.allow.clone(),
        authorized: args.authorized,
        registry_auth: args.login.auth(),
    })
}

/// `KEY=VALUE` pairs into a map; anything else is an error naming the bad pair.
pub(crate) fn parse_env(pairs: &[String]) -> Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    for kv in pairs {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => env.insert(k.to_string(), v.to_string()),
            _ => bail!("--env {kv:?} must be KEY=VALUE"),
        };
    }
    Ok(env)
}

/// Plain numbers go as numbers, anything else as text for the daemon to parse.
fn quantity(s: &str) -> Quantity {
    match s.trim().parse::<f64>() {
        Ok(n) if n.is_finite() => Quantity::Number(n),
        _ => Quantity::Text(s.to_string()),
    }
}

fn progress(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout must not abort the launch; the container is what matters.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs `cove run`: the daemon streams its progress (pull, cache, create) as
/// it works, and each step is printed as it arrives.
pub async fn execute(client: &Client, args: RunArgs) -> Result<i32> {
    let mut req = build_request(&args)?;
    let text = args.format == RunFormat::Text;
    if let Some(dir) = &args.sync {
        sync_into(client, dir, &mut req, text).await?;
    }
    let resp = client
        .post_ndjson(client.url(&["v1", "pods"], &[]), &req)
        .await?;
    let mut stream = resp.bytes_stream();
    let mut pending: Vec<u8> = Vec::new();
    let mut created: Option<Container> = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.context("reading the daemon's progress")?;
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let event: CreateEvent = serde_json::from_slice(&line[..end])
                .context("the daemon sent an unreadable progress line")?;
            if let Some(msg) = event.error {
                bail!("{msg}");
            }
            if let Some(p) = event.progress {
                if text {
                    progress(&format!("=> {p}"));
                }
            }
            if let Some(c) = event.container {
                created = Some(c);
            }
        }
    }
    let c = created.context("the daemon ended the stream without a container")?;
    if !text {
        println!("{}", serde_json::to_string_pretty(&c)?);
        return Ok(0);
    }
    progress(&format!("=> Container created successfully ===> {}", c.id));
    if !c.urls.is_empty() {
        progress("");
    }
    for u in &c.urls {
        progress(&format!("✨ Container hosted at: {}", u.url));
    }
    Ok(0)
}

/// Where synced files go, and the pod's working directory.
pub const SYNC_DIR: &str = "/app";

/// `--sync DIR`: sends DIR's files the daemon lacks (content-addressed per file,
/// see [`crate::sync`]), builds `req.image` + DIR at /app, and points `req` at the
/// built image (workdir /app).
async fn sync_into(
    client: &Client,
    dir: &Path,
    req: &mut CreatePodRequest,
    text: bool,
) -> Result<()> {
    if text {
        progress("=> Syncing files");
    }
    let synced = crate::sync::sync_dir(client, dir).await?;
    if text {
        progress(&format!(
            "=> Synced {} files ({} uploaded, {} bytes)",
            synced.files, synced.uploaded, synced.uploaded_bytes
        ));
    }
    let digest = synced.context.digest;
    let build = BuildRequest {
        base_image: req.image.clone(),
        steps: vec![BuildStep::LocalPath(LocalPathStep {
            archive: digest,
            remote: SYNC_DIR.into(),
        })],
        env: BTreeMap::new(),
        registry_auth: req.registry_auth.take(),
    };
    let image = crate::commands::image::build::stream_build(client, &build, text).await?;
    req.image = image.reference;
    req.workdir.get_or_insert_with(|| SYNC_DIR.into());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> RunArgs {
        let argv = std::iter::once("cove")
            .chain(std::iter::once("run"))
            .chain(args.iter().copied());
        match Cli::try_parse_from(argv).map(|c| c.cmd) {
            Ok(Command::Run(a)) => *a,
            other => panic!("unexpected parse: {other:?}"),
        }
    }

    #[test]
    fn entrypoint_is_shell_split() {
        let a = parse(&[
            "--image",
            "busybox",
            "--entrypoint",
            "httpd -f -p 8000 -h '/w w'",
        ]);
        let req = build_request(&a).unwrap();
        assert_eq!(
            req.entrypoint.unwrap(),
            ["httpd", "-f", "-p", "8000", "-h", "/w w"]
        );
        let a = parse(&["--image", "busybox", "--entrypoint", "sh -c 'echo"]);
        let err = build_request(&a).unwrap_err().to_string();
        assert!(
            err.starts_with("--entrypoint") && !err.contains('\n'),
            "{err}"
        );
    }

    #[test]
    fn egress_flags_go_to_the_daemon_to_check() {
        let a = parse(&[
            "--image",
            "b",
            "--allow",
            "10.0.0.0/8",
            "--allow",
            "1.2.3.4/32",
        ]);
        let req = build_request(&a).unwrap();
        assert_eq!(req.allow_list, ["10.0.0.0/8", "1.2.3.4/32"]);
        assert!(!req.block_network);
        let req = build_request(&parse(&["--image", "b", "--block-network"])).unwrap();
        assert!(req.block_network && req.allow_list.is_empty());
        // Both at once is the daemon's one-line 400, not a clap usage error.
        let a = parse(&["--image", "b", "--block-network", "--allow", "1.2.3.4/32"]);
        assert!(build_request(&a).is_ok());
    }

    #[test]
    fn env_must_be_key_value() {
        let a = parse(&[
            "--image", "b", "--env", "A=1", "--env", "B=x=y", "--env", "C=",
        ]);
        let env = build_request(&a).unwrap().env;
        assert_eq!(env["A"], "1");
        assert_eq!(env["B"], "x=y");
        assert_eq!(env["C"], "");
        let a = parse(&["--image", "b", "--env", "FOO"]);
        assert_eq!(
            build_request(&a).unwrap_err().to_string(),
            r#"--env "FOO" must be KEY=VALUE"#
        );
    }

    #[test]
    fn ports_repeat_or_comma() {
        assert_eq!(
            parse(&["--image", "b", "--ports", "8000", "--ports", "8001"]).ports,
            [8000, 8001]
        );
        assert_eq!(
            parse(&["--image", "b", "--ports", "8000,8001"]).ports,
            [8000, 8001]
        );
        let argv = ["cove", "run", "--image", "b", "--ports", "http"];
        assert!(Cli::try_parse_from(argv).is_err());
    }

    #[test]
    fn isolation_is_passed_for_the_daemon_to_check() {
        let a = parse(&["--image", "b", "--isolation", "gvisor"]);
        assert_eq!(
            build_request(&a).unwrap().isolation.as_deref(),
            Some("gvisor")
        );
        assert_eq!(
            build_request(&parse(&["--image", "b"])).unwrap().isolation,
            None
        );
    }

    #[test]
    fn keep_warm_accepts_minus_one() {
        assert_eq!(
            parse(&["--image", "b", "--keep-warm-seconds", "-1"]).keep_warm_seconds,
            Some(-1)
        );
        assert_eq!(
            parse(&["--image", "b", "--keep-warm-seconds", "300"]).keep_warm_seconds,
            Some(300)
        );
    }

    #[test]
    fn quantities_keep_units_as_text() {
        let a = parse(&["--image", "b", "--cpu", "0.5", "--memory", "1Gi"]);
        let req = build_request(&a).unwrap();
        assert_eq!(req.cpu, Some(Quantity::Number(0.5)));
        assert_eq!(req.memory, Some(Quantity::Text("1Gi".into())));
        assert_eq!(quantity("1000m"), Quantity::Text("1000m".into()));
    }

    #[test]
    fn registry_credentials_come_in_pairs() {
        let a = parse(&["--image", "b", "--username", "u", "--password", "p"]);
        let auth = build_request(&a).unwrap().registry_auth.unwrap();
        assert_eq!((auth.username.as_str(), auth.password.as_str()), ("u", "p"));
        if std::env::var_os("COVE_REGISTRY_PASSWORD").is_none() {
            assert!(
                Cli::try_parse_from(["cove", "run", "--image", "b", "--username", "u"]).is_err()
            );
        }
    }
}
