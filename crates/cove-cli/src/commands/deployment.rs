//! `cove deployment list|stop|start|delete`.

use anyhow::Result;
use clap::Subcommand;
use cove_types::Deployment;

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
    }
    Ok(0)
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
