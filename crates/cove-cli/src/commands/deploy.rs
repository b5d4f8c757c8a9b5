//! `cove deploy <manifest.toml | manifest.yaml | app.py:pod>`: create or update a deployment.
//!
//! A TOML or YAML manifest holds the fields of `cove run` (name, image, ports, cpu, memory,
//! env, entrypoint as a list or a command line, keep_warm_seconds, workdir, block_network,
//! allow_list). For `app.py:pod`
//! the Python SDK's `python3 -m cove.deploy_spec app.py:pod` prints the Pod's request.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use clap::Args;
use cove_types::{CreatePodRequest, DeployEvent, Deployment, Quantity};
use futures::StreamExt;
use serde::Deserialize;

use crate::client::Client;
use crate::commands::run::RunFormat;

/// Arguments of `cove deploy`.
#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// A manifest (`.toml`, `.yaml`/`.yml`) or a Python `FILE.py:POD`.
    pub target: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = RunFormat::Text)]
    pub format: RunFormat,
}

/// A deployment manifest: the fields of a pod request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    name: Option<String>,
    image: String,
    #[serde(default)]
    ports: Vec<i64>,
    cpu: Option<Quantity>,
    memory: Option<Quantity>,
    disk: Option<Quantity>,
    /// Largest size of one log file; default: the daemon's.
    log_max_size: Option<Quantity>,
    /// Log files kept; default: the daemon's.
    log_max_files: Option<i64>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    entrypoint: Option<Entrypoint>,
    keep_warm_seconds: Option<i64>,
    workdir: Option<String>,
    /// `runc` or `gvisor`; default: the daemon's.
    isolation: Option<String>,
    /// Only requests with a token of the deployment's workspace reach it.
    #[serde(default)]
    authorized: bool,
    /// No outbound connections at all.
    #[serde(default)]
    block_network: bool,
    /// Only these destinations (CIDRs).
    #[serde(default)]
    allow_list: Vec<String>,
}

/// `["httpd", "-f"]` or `"httpd -f"` (split like a shell does).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Entrypoint {
    List(Vec<String>),
    Line(String),
}

impl Manifest {
    fn into_request(self) -> Result<CreatePodRequest> {
        let entrypoint = match self.entrypoint {
            None => None,
            Some(Entrypoint::List(v)) => Some(v),
            Some(Entrypoint::Line(line)) => Some(
                shell_words::split(&line)
                    .map_err(|e| anyhow::anyhow!("entrypoint {line:?}: {e}"))?,
            ),
        };
        Ok(CreatePodRequest {
            image: self.image,
            ports: self.ports,
            cpu: self.cpu,
            memory: self.memory,
            disk: self.disk,
            log_max_size: self.log_max_size,
            log_max_files: self.log_max_files,
            env: self.env,
            entrypoint,
            name: self.name,
            keep_warm_seconds: self.keep_warm_seconds,
            workdir: self.workdir,
            isolation: self.isolation,
            block_network: self.block_network,
            allow_list: self.allow_list,
            authorized: self.authorized,
            registry_auth: None,
        })
    }
}

/// Reads the deployment request `target` names; `progress` gets the SDK's
/// progress lines (an image it builds first) as they come.
pub fn load_request(target: &str, progress: &dyn Fn(&str)) -> Result<CreatePodRequest> {
    let ext = Path::new(target)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let req = match ext.as_str() {
        "toml" | "yaml" | "yml" => {
            let text =
                std::fs::read_to_string(target).with_context(|| format!("reading {target}"))?;
            let manifest: Manifest = if ext == "toml" {
                toml::from_str(&text).map_err(|e| anyhow::anyhow!("{target}: {}", e.message()))?
            } else {
                serde_norway::from_str(&text).map_err(|e| anyhow::anyhow!("{target}: {e}"))?
            };
            manifest.into_request()?
        }
        _ if target.contains(".py:") => python_request(target, progress)?,
        _ => bail!("cannot deploy {target:?}: give a .toml or .yaml manifest or FILE.py:POD"),
    };
    if req.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
        bail!("{target}: a deployment needs a name (set `name`)");
    }
    Ok(req)
}

/// Runs the SDK's `cove.deploy_spec` on `file.py:obj`: the request comes on
/// stdout; on stderr, `=> ...` progress lines, or the one-line error.
fn python_request(target: &str, progress: &dyn Fn(&str)) -> Result<CreatePodRequest> {
    let mut child = Command::new("python3")
        .args(["-m", "cove.deploy_spec", target])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run python3 (needed to deploy a FILE.py:POD)")?;
    let mut stdout = child.stdout.take().context("python3 stdout")?;
    // Read stdout on a thread so neither pipe can fill up and block the child.
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stdout.read_to_end(&mut buf).map(|_| buf)
    });
    let mut errors = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let line = line.context("reading python3's output")?;
            match line.strip_prefix("=> ") {
                Some(p) => progress(p),
                None if !line.trim().is_empty() => errors.push(line),
                None => {}
            }
        }
    }
    let status = child.wait().context("waiting for python3")?;
    let out = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reading python3's output failed"))??;
    if !status.success() {
        let all = errors.join("\n");
        if all.contains("No module named cove") || all.contains("No module named 'cove") {
            bail!("the Cove Python SDK is not installed: pip install ./sdk/python");
        }
        let last = errors.last().map(|l| l.trim().to_string());
        bail!(
            "{}",
            last.unwrap_or_else(|| "python3 -m cove.deploy_spec failed".into())
        );
    }
    serde_json::from_slice(&out)
        .with_context(|| format!("{target}: the SDK printed an unreadable pod spec"))
}

fn say(text: bool, line: &str) {
    // Progress goes to stdout for people, to stderr when stdout carries JSON.
    if text {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    } else {
        eprintln!("{line}");
    }
}

/// Runs `cove deploy`: the daemon streams its progress as it works.
pub async fn execute(client: &Client, args: DeployArgs) -> Result<i32> {
    let text = args.format == RunFormat::Text;
    let req = load_request(&args.target, &|p| say(text, &format!("=> {p}")))?;
    let d = stream_deploy(client, client.url(&["v1", "deployments"], &[]), &req, text).await?;
    report(&d, text)?;
    Ok(0)
}

/// POSTs `body` to a deploying route (`/v1/deployments`, `.../rollback`), shows its
/// progress lines (on stdout for text, stderr otherwise) and returns the deployment.
pub(crate) async fn stream_deploy(
    client: &Client,
    url: reqwest::Url,
    body: &impl serde::Serialize,
    text: bool,
) -> Result<Deployment> {
    let resp = client.post_ndjson(url, body).await?;
    let mut stream = resp.bytes_stream();
    let mut pending: Vec<u8> = Vec::new();
    let mut done: Option<Deployment> = None;
    while let Some(chunk) = stream.next().await {
        pending.extend_from_slice(&chunk.context("reading the daemon's progress")?);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let event: DeployEvent = serde_json::from_slice(&line[..end])
                .context("the daemon sent an unreadable progress line")?;
            if let Some(msg) = event.error {
                bail!("{msg}");
            }
            if let Some(p) = event.progress {
                if text {
                    say(true, &format!("=> {p}"));
                }
            }
            if let Some(d) = event.deployment {
                done = Some(d);
            }
        }
    }
    done.context("the daemon ended the stream without a deployment")
}

/// Prints a deployed deployment: its container and URLs, or JSON.
pub(crate) fn report(d: &Deployment, text: bool) -> Result<()> {
    if !text {
        println!("{}", serde_json::to_string_pretty(d)?);
        return Ok(());
    }
    if let Some(c) = &d.container {
        say(
            true,
            &format!("=> Container created successfully ===> {}", c.id),
        );
    }
    if !d.urls.is_empty() {
        say(true, "");
    }
    for u in &d.urls {
        say(true, &format!("✨ Deployment hosted at: {}", u.url));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifest file, removed when dropped (each test uses its own names).
    struct Manifest(std::path::PathBuf);

    impl Manifest {
        fn path(&self) -> String {
            self.0.to_string_lossy().into_owned()
        }
    }

    impl Drop for Manifest {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn write(name: &str, text: &str) -> Manifest {
        let p =
            std::env::temp_dir().join(format!("cove-deploy-test-{}-{name}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        Manifest(p)
    }

    #[test]
    fn toml_and_yaml_manifests() {
        let t = write(
            "app.toml",
            "name = \"web\"\nimage = \"busybox\"\nports = [8000]\ncpu = 0.5\nmemory = \"1Gi\"\n\
             entrypoint = \"httpd -f -p 8000\"\nkeep_warm_seconds = -1\n[env]\nA = \"1\"\n",
        );
        let r = load_request(&t.path(), &|_| {}).unwrap();
        assert_eq!(r.name.as_deref(), Some("web"));
        assert_eq!(r.entrypoint.unwrap(), ["httpd", "-f", "-p", "8000"]);
        assert_eq!(r.memory, Some(Quantity::Text("1Gi".into())));
        assert_eq!(r.keep_warm_seconds, Some(-1));
        assert_eq!(r.env["A"], "1");
        let y = write(
            "app.yaml",
            "name: web\nimage: busybox\nports: [8000]\nentrypoint: [httpd, -f]\n",
        );
        let r = load_request(&y.path(), &|_| {}).unwrap();
        assert_eq!(r.entrypoint.unwrap(), ["httpd", "-f"]);
        assert_eq!(r.ports, [8000]);
        let e = write(
            "egress.toml",
            "name = \"web\"\nimage = \"busybox\"\nallow_list = [\"10.0.0.0/8\"]\n",
        );
        let r = load_request(&e.path(), &|_| {}).unwrap();
        assert_eq!(
            (r.block_network, r.allow_list),
            (false, vec!["10.0.0.0/8".into()])
        );
    }

    #[test]
    fn bad_manifests_name_the_problem() {
        let t = write("noname.toml", "image = \"busybox\"\n");
        assert!(load_request(&t.path(), &|_| {})
            .unwrap_err()
            .to_string()
            .contains("needs a name"));
        let t = write("typo.toml", "name = \"a\"\nimage = \"b\"\nprots = [1]\n");
        assert!(load_request(&t.path(), &|_| {})
            .unwrap_err()
            .to_string()
            .contains("prots"));
        assert!(load_request("app.json", &|_| {}).is_err());
    }
}
