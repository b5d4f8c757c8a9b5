//! `cove info`: what the daemon says about itself.

use anyhow::Result;
use clap::Args;
use cove_types::DaemonInfo;

use crate::client::Client;
use crate::commands::run::RunFormat;

/// Arguments of `cove info`.
#[derive(Debug, Clone, Args)]
pub struct InfoArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = RunFormat::Text)]
    pub format: RunFormat,
}

/// Runs `cove info`.
pub async fn execute(client: &Client, args: InfoArgs) -> Result<i32> {
    let info: DaemonInfo = client.get(client.url(&["v1", "info"], &[])).await?;
    if args.format == RunFormat::Json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(0);
    }
    println!(
        "Daemon:       {}",
        client.base_url().as_str().trim_end_matches('/')
    );
    println!("Version:      {}", info.version);
    println!("Runtime:      {}", info.runtime);
    println!("Domain:       {}", info.domain);
    println!("Gateway:      {}", info.gateway_url);
    if let Some(tls) = &info.gateway_tls_url {
        println!("Gateway TLS:  {tls}");
    }
    Ok(0)
}
