//! `cove deployment list|stop|start|delete|inspect|versions|rollback`.

use anyhow::Result;
use clap::Subcommand;
use cove_types::{Deployment, DeploymentVersion, RollbackRequest};

use crate::client::Client;
use crate::commands::container::ListFormat;
use crate::{humanize, table};

/// `cove deployment ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum DeploymentCmd {
    /// List deployments.
    #[command(alias = "ls")]
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Stop a deployment's container; its URL answers 503 until `start`.
    Stop {
        /// Deployment name.
        name: String,
    },
    /// Start a stopped deployment.
    Start {
        /// Deployment name.
        name: String,
    },
    /// Stop and remove a deployment; its URL then answers 404.
    #[command(alias = "rm")]
    Delete {
        /// Deployment name.
        name: String,
    },
    /// Print a deployment as JSON.
    Inspect {
        /// Deployment name.
        name: String,
    },
    /// List a deployment's kept versions (the current one is marked).
    Versions {
        /// Deployment name.
        name: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Serve an earlier version again (as a new version), draining requests in flight.
    Rollback {
        /// Deployment name.
        name: String,
        /// The version to return to (default: the one before the current version).
        #[arg(long = "to", value_name = "VERSION")]
        version: Option<i64>,
    },
}

/// Runs a `cove deployment` subcommand.
pub async fn execute(client: &Client, cmd: DeploymentCmd) -> Result<i32> {
    match cmd {
        DeploymentCmd::List { format } => {
            let list: Vec<Deployment> = client.get(client.url(&["v1", "deployments"], &[])).await?;
            match format {
                ListFormat::Json => println!("{}", serde_json::to_string_pretty(&list)?),
                ListFormat::Table => print!("{}", render(&list, humanize::now_ms())),
            }
        }
        DeploymentCmd::Stop { name } => {
            let url = client.url(&["v1", "deployments", &name, "stop"], &[]);
            let d: Deployment = client.post_empty(url).await?;
            println!("Stopped {} (version {})", d.name, d.version);
        }
        DeploymentCmd::Start { name } => {
            let url = client.url(&["v1", "deployments", &name, "start"], &[]);
            let d: Deployment = client.post_empty(url).await?;
            println!("Started {} (version {})", d.name, d.version);
            for u in &d.urls {
                println!("✨ Deployment hosted at: {}", u.url);
            }
        }
        DeploymentCmd::Delete { name } => {
            client
                .delete(client.url(&["v1", "deployments", &name], &[]))
                .await?;
            println!("Deleted {name}");
        }
        DeploymentCmd::Inspect { name } => {
            let d: Deployment = client
                .get(client.url(&["v1", "deployments", &name], &[]))
                .await?;
            println!("{}", serde_json::to_string_pretty(&d)?);
        }
        DeploymentCmd::Versions { name, format } => {
            let url = client.url(&["v1", "deployments", &name, "versions"], &[]);
            let list: Vec<DeploymentVersion> = client.get(url).await?;
            match format {
                ListFormat::Json => println!("{}", serde_json::to_string_pretty(&list)?),
                ListFormat::Table => print!("{}", render_versions(&list, humanize::now_ms())),
            }
        }
        DeploymentCmd::Rollback { name, version } => {
            let url = client.url(&["v1", "deployments", &name, "rollback"], &[]);
            let req = RollbackRequest { version };
            let d = crate::commands::deploy::stream_deploy(client, url, &req, true).await?;
            crate::commands::deploy::report(&d, true)?;
        }
    }
    Ok(0)
}

/// The versions table: Version, Current, Image, Entrypoint, Created.
fn render_versions(list: &[DeploymentVersion], now_ms: i64) -> String {
    let mut t = table::new_table(&["Version", "Current", "Image", "Entrypoint", "Created"]);
    for v in list {
        t.add_row(vec![
            v.version.to_string(),
            if v.current { "*" } else { "" }.to_string(),
            v.image.clone(),
            v.entrypoint.join(" "),
            humanize::ago(v.created_at, now_ms),
        ]);
    }
    table::render(&t, list.len())
}

/// The deployments table: Name, Version, Status, URL, Container, Updated.
fn render(list: &[Deployment], now_ms: i64) -> String {
    let mut t = table::new_table(&["Name", "Version", "Status", "URL", "Container", "Updated"]);
    for d in list {
        t.add_row(vec![
            d.name.clone(),
            d.version.to_string(),
            d.status.as_str().to_string(),
            d.urls.first().map(|u| u.url.clone()).unwrap_or_default(),
            d.container
                .as_ref()
                .map(|c| c.id.clone())
                .unwrap_or_else(|| "(asleep)".into()),
            humanize::ago(d.updated_at, now_ms),
        ]);
    }
    table::render(&t, list.len())
}
