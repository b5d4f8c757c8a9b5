//! `cove container list|logs|exec|stop|inspect|egress`.

use anyhow::Result;
use clap::{Subcommand, ValueEnum};
use cove_types::{Container, ExecRequest, ExecResponse};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::client::Client;
use crate::commands::run::parse_env;
use crate::{humanize, print_error, table};

/// How lists are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ListFormat {
    /// A table for people.
    #[default]
    Table,
    /// A pretty-printed JSON array.
    Json,
}

/// `cove container ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum ContainerCmd {
    /// List containers (by default only live ones: PENDING, RUNNING, STOPPING).
    #[command(alias = "ls")]
    List {
        /// Include ended containers.
        #[arg(short, long)]
        all: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Print a container's output.
    Logs {
        /// Container ID.
        id: String,
        /// Keep streaming until the container ends.
        #[arg(short, long)]
        follow: bool,
    },
    /// Run a command in a running container; exits with the command's exit code.
    Exec {
        /// Environment variable KEY=VALUE for the command; repeat for several.
        #[arg(short, long, value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Working directory of the command (default: the container's).
        #[arg(short, long)]
        workdir: Option<String>,
        /// Container ID.
        id: String,
        /// The command and its arguments (after `--`).
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        cmd: Vec<String>,
    },
    /// Stop containers.
    Stop {
        /// Container IDs.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Print a container as JSON.
    Inspect {
        /// Container ID.
        id: String,
    },
    /// Change a running container's egress: --block, --allow CIDR (repeatable) or --open.
    Egress(crate::commands::egress::EgressArgs),
}

/// Runs a `cove container` subcommand.
pub async fn execute(client: &Client, cmd: ContainerCmd) -> Result<i32> {
    match cmd {
        ContainerCmd::List { all, format } => {
            let all = if all { "true" } else { "false" };
            let list: Vec<Container> = client
                .get(client.url(&["v1", "containers"], &[("all", all)]))
                .await?;
            match format {
                ListFormat::Json => println!("{}", serde_json::to_string_pretty(&list)?),
                ListFormat::Table => print!("{}", table::containers(&list, humanize::now_ms())),
            }
            Ok(0)
        }
        ContainerCmd::Logs { id, follow } => {
            let follow = if follow { "true" } else { "false" };
            let url = client.url(&["v1", "containers", &id, "logs"], &[("follow", follow)]);
            let resp = client.get_stream(url).await?;
            let mut body = resp.bytes_stream();
            let mut out = tokio::io::stdout();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| client.transport_error(&e))?;
                out.write_all(&chunk).await?;
                out.flush().await?;
            }
            Ok(0)
        }
        ContainerCmd::Exec {
            env,
            workdir,
            id,
            cmd,
        } => {
            let env = parse_env(&env)?;
            let req = ExecRequest { cmd, env, workdir };
            let url = client.url(&["v1", "containers", &id, "exec"], &[]);
            let resp: ExecResponse = client.post(url, &req).await?;
            let mut out = tokio::io::stdout();
            out.write_all(resp.stdout.as_bytes()).await?;
            out.flush().await?;
            let mut err = tokio::io::stderr();
            err.write_all(resp.stderr.as_bytes()).await?;
            err.flush().await?;
            Ok(resp.exit_code)
        }
        ContainerCmd::Stop { ids } => {
            let mut failed = false;
            for id in ids {
                let url = client.url(&["v1", "containers", &id, "stop"], &[]);
                match client.post_empty::<Container>(url).await {
                    Ok(_) => println!("Stopped {id}"),
                    Err(e) => {
                        failed = true;
                        print_error(&e.into());
                    }
                }
            }
            Ok(if failed { 1 } else { 0 })
        }
        ContainerCmd::Inspect { id } => {
            let c: Container = client
                .get(client.url(&["v1", "containers", &id], &[]))
                .await?;
            println!("{}", serde_json::to_string_pretty(&c)?);
            Ok(0)
        }
        ContainerCmd::Egress(args) => crate::commands::egress::execute(client, args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> ContainerCmd {
        let argv = ["cove", "container"]
            .into_iter()
            .chain(args.iter().copied());
        match Cli::try_parse_from(argv).map(|c| c.cmd) {
            Ok(Command::Container(c)) => c,
            other => panic!("unexpected parse: {other:?}"),
        }
    }

    #[test]
    fn exec_takes_the_rest_as_the_command() {
        let ContainerCmd::Exec { id, cmd, .. } = parse(&["exec", "pod-1", "--", "ls", "-la", "/"])
        else {
            panic!()
        };
        assert_eq!(id, "pod-1");
        assert_eq!(cmd, ["ls", "-la", "/"]);
        let ContainerCmd::Exec { cmd, .. } = parse(&["exec", "pod-1", "sh", "-c", "exit 3"]) else {
            panic!()
        };
        assert_eq!(cmd, ["sh", "-c", "exit 3"]);
        assert!(Cli::try_parse_from(["cove", "container", "exec", "pod-1"]).is_err());
        let ContainerCmd::Exec {
            env, workdir, cmd, ..
        } = parse(&[
            "exec",
            "-e",
            "A=1",
            "--workdir",
            "/w",
            "pod-1",
            "--",
            "env",
            "-w",
        ])
        else {
            panic!()
        };
        assert_eq!(
            (env, workdir, cmd),
            (
                vec!["A=1".to_string()],
                Some("/w".into()),
                vec!["env".to_string(), "-w".into()]
            )
        );
    }

    #[test]
    fn list_flags() {
        assert!(matches!(
            parse(&["list", "-a"]),
            ContainerCmd::List {
                all: true,
                format: ListFormat::Table
            }
        ));
        assert!(matches!(
            parse(&["list", "--format", "json"]),
            ContainerCmd::List {
                all: false,
                format: ListFormat::Json
            }
        ));
        assert!(matches!(
            parse(&["logs", "-f", "pod-1"]),
            ContainerCmd::Logs { follow: true, .. }
        ));
        let ContainerCmd::Stop { ids } = parse(&["stop", "a", "b"]) else {
            panic!()
        };
        assert_eq!(ids, ["a", "b"]);
    }
}
