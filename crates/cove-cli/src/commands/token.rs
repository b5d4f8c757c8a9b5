//! `cove token create|list|revoke`: workspace API tokens (needs the admin token).

use anyhow::Result;
use clap::Subcommand;
use cove_types::{CreateTokenRequest, CreatedToken, TokenInfo};

use crate::client::Client;
use crate::commands::container::ListFormat;
use crate::commands::workspace::LimitArgs;
use crate::{humanize, table};

/// `cove token ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum TokenCmd {
    /// Make a token for a workspace and print its secret (shown only this once).
    Create {
        /// A unique name for the token (lowercase letters, digits, '-').
        name: String,
        /// The workspace the token acts in; it sees and controls only that workspace's
        /// pods and deployments. Required: `default` (the admin's own things) only on purpose.
        #[arg(long)]
        workspace: String,
        /// Limits to set on the workspace with the token (as `cove workspace set-limits`).
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// List tokens: name, workspace, created, last used (never secrets).
    #[command(alias = "ls")]
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Revoke a token: it is refused from the next request on.
    #[command(alias = "rm")]
    Revoke {
        /// The token's name or id.
        token: String,
    },
}

/// Runs a `cove token` subcommand.
pub async fn execute(client: &Client, cmd: TokenCmd) -> Result<i32> {
    match cmd {
        TokenCmd::Create {
            name,
            workspace,
            limits,
        } => {
            let req = CreateTokenRequest {
                name,
                workspace: Some(workspace),
                limits: limits.request(),
            };
            let t: CreatedToken = client
                .post(client.url(&["v1", "tokens"], &[]), &req)
                .await?;
            eprintln!(
                "Created token {} ({}) for workspace {}; store the secret now, it is not shown again:",
                t.info.name, t.info.id, t.info.workspace
            );
            println!("{}", t.secret);
        }
        TokenCmd::List { format } => {
            let list: Vec<TokenInfo> = client.get(client.url(&["v1", "tokens"], &[])).await?;
            match format {
                ListFormat::Json => println!("{}", serde_json::to_string_pretty(&list)?),
                ListFormat::Table => print!("{}", render(&list, humanize::now_ms())),
            }
        }
        TokenCmd::Revoke { token } => {
            let url = client.url(&["v1", "tokens", &token], &[]);
            let t: TokenInfo = client.delete_json(url).await?;
            println!("Revoked {} ({})", t.name, t.id);
        }
    }
    Ok(0)
}

/// The tokens table: Name, ID, Workspace, Created, Last used.
fn render(list: &[TokenInfo], now_ms: i64) -> String {
    let mut t = table::new_table(&["Name", "ID", "Workspace", "Created", "Last used"]);
    for tok in list {
        t.add_row(vec![
            tok.name.clone(),
            tok.id.clone(),
            tok.workspace.clone(),
            humanize::ago(tok.created_at, now_ms),
            tok.last_used_at
                .map(|u| humanize::ago(u, now_ms))
                .unwrap_or_else(|| "never".into()),
        ]);
    }
    table::render(&t, list.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_no_secret_and_never_used() {
        let now = 1_700_000_000_000;
        let out = render(
            &[TokenInfo {
                id: "tok-0123456789ab".into(),
                name: "ci".into(),
                workspace: "team-a".into(),
                created_at: now - 120_000,
                last_used_at: None,
            }],
            now,
        );
        assert!(out.contains("team-a") && out.contains("never") && out.contains("ci"));
    }
}
