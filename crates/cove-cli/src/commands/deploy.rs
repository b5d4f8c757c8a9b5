//! `cove deploy <manifest.toml | manifest.yaml | app.py:pod>`: create or update a deployment.
//!
//! A TOML or YAML manifest holds the fields of `cove run` (name, image, ports, cpu, memory,
//! env, entrypoint as a list or a command line, keep_warm_seconds, workdir). For `app.py:pod`
//! the Python SDK's `python3 -m cove.deploy_spec app.py:pod` prints the Pod's request.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::Args;
use cove_types::{CreatePodRequest, Deployment, Quantity};
use serde::Deserialize;

use crate::client::{Client, ClientError};
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
    #[serde(default)]
    env: BTreeMap<String, String>,
    entrypoint: Option<Entrypoint>,
    keep_warm_seconds: Option<i64>,
    workdir: Option<String>,
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
            env: self.env,
            entrypoint,
            name: self.name,
            keep_warm_seconds: self.keep_warm_seconds,
            workdir: self.workdir,
            registry_auth: None,
        })
    }
}

/// Reads the deployment request `target` names.
pub fn load_request(target: &str) -> Result<CreatePodRequest> {
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
        _ if target.contains(".py:") => python_request(target)?,
        _ => bail!("cannot deploy {target:?}: give a .toml or .yaml manifest or FILE.py:POD"),
    };
    if req.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
        bail!("{target}: a deployment needs a name (set `name`)");
    }
    Ok(req)
}

/// Runs the SDK's `cove.deploy_spec` on `file.py:obj`.
fn python_request(target: &str) -> Result<CreatePodRequest> {
    let out = Command::new("python3")
        .args(["-m", "cove.deploy_spec", target])
        .output()
        .context("cannot run python3 (needed to deploy a FILE.py:POD)")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if stderr.contains("No module named cove") || stderr.contains("No module named 'cove") {
            bail!("the Cove Python SDK is not installed: pip install ./sdk/python");
        }
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
        bail!(
            "{}",
            last.unwrap_or("python3 -m cove.deploy_spec failed").trim()
        );
    }
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{target}: the SDK printed an unreadable pod spec"))
}

/// Runs `cove deploy`.
pub async fn execute(client: &Client, args: DeployArgs) -> Result<i32> {
    let req = load_request(&args.target)?;
    let text = args.format == RunFormat::Text;
    let name = req.name.clone().unwrap_or_default();
    if text {
        let current: Result<Deployment, ClientError> = client
            .get(client.url(&["v1", "deployments", &name], &[]))
            .await;
        let version = match current {
            Ok(d) => d.version + 1,
            Err(ClientError::Api { status, .. }) if status == reqwest::StatusCode::NOT_FOUND => 1,
            Err(e) => return Err(e.into()),
        };
        println!("=> Deploying {name} (version {version})");
    }
    let d: Deployment = client
        .post(client.url(&["v1", "deployments"], &[]), &req)
        .await?;
    if !text {
        println!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(0);
    }
    if let Some(c) = &d.container {
        println!("=> Container created successfully ===> {}", c.id);
    }
    println!("=> Deployed {} version {}", d.name, d.version);
    if !d.urls.is_empty() {
        println!();
    }
    for u in &d.urls {
        println!("✨ Deployment hosted at: {}", u.url);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> String {
        let dir = std::env::temp_dir().join(format!("cove-deploy-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    }

    #[test]
    fn toml_and_yaml_manifests() {
        let t = write(
            "app.toml",
            "name = \"web\"\nimage = \"busybox\"\nports = [8000]\ncpu = 0.5\nmemory = \"1Gi\"\n\
             entrypoint = \"httpd -f -p 8000\"\nkeep_warm_seconds = -1\n[env]\nA = \"1\"\n",
        );
        let r = load_request(&t).unwrap();
        assert_eq!(r.name.as_deref(), Some("web"));
        assert_eq!(r.entrypoint.unwrap(), ["httpd", "-f", "-p", "8000"]);
        assert_eq!(r.memory, Some(Quantity::Text("1Gi".into())));
        assert_eq!(r.keep_warm_seconds, Some(-1));
        assert_eq!(r.env["A"], "1");
        let y = write(
            "app.yaml",
            "name: web\nimage: busybox\nports: [8000]\nentrypoint: [httpd, -f]\n",
        );
        let r = load_request(&y).unwrap();
        assert_eq!(r.entrypoint.unwrap(), ["httpd", "-f"]);
        assert_eq!(r.ports, [8000]);
    }

    #[test]
    fn bad_manifests_name_the_problem() {
        let t = write("noname.toml", "image = \"busybox\"\n");
        assert!(load_request(&t)
            .unwrap_err()
            .to_string()
            .contains("needs a name"));
        let t = write("typo.toml", "name = \"a\"\nimage = \"b\"\nprots = [1]\n");
        assert!(load_request(&t).unwrap_err().to_string().contains("prots"));
        assert!(load_request("app.json").is_err());
    }
}
