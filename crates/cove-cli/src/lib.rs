//! The `cove` client commands: a thin layer over the daemon's HTTP/JSON API.
//!
//! - [`client`]: base URL (`COVE_API_URL`) and token (`COVE_TOKEN`, else `$COVE_DATA_DIR/token`)
//!   discovery, requests, and the single mapping of failures to one-line errors.
//! - [`commands`]: one module per command group (`run`, `container`, `image`, `info`), each
//!   turning parsed arguments into requests and printing the answers.
//! - `table` and `humanize`: the guide's borderless tables, relative times and sizes.
//!
//! The `cove` binary flattens [`Command`] next to `cove server` and calls [`run`]; the wire
//! types all come from `cove-types`.

pub mod client;
pub mod commands;
mod humanize;
pub mod sync;
mod table;

pub use client::{Client, ClientError};
pub use commands::container::{ContainerCmd, ListFormat};
pub use commands::deploy::DeployArgs;
pub use commands::deployment::DeploymentCmd;
pub use commands::image::ImageCmd;
pub use commands::info::InfoArgs;
pub use commands::run::{RunArgs, RunFormat};
pub use commands::token::TokenCmd;
pub use commands::workspace::WorkspaceCmd;

/// The client commands, for the binary to `#[command(flatten)]`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Launch a container from an image and print the URLs it is hosted at.
    Run(Box<RunArgs>),
    /// List, inspect, stop containers; read their logs; run commands in them.
    #[command(subcommand)]
    Container(ContainerCmd),
    /// Deploy a pod under its name at a stable URL (a TOML/YAML manifest or FILE.py:POD).
    Deploy(DeployArgs),
    /// List, stop, start and delete deployments.
    #[command(subcommand)]
    Deployment(DeploymentCmd),
    /// Pull, list, remove and import images.
    #[command(subcommand)]
    Image(ImageCmd),
    /// Show the daemon's version, runtime and gateway URLs.
    Info(InfoArgs),
    /// Create, list and revoke workspace API tokens (with the admin token).
    #[command(subcommand)]
    Token(TokenCmd),
    /// List workspaces' limits and usage; set their limits (with the admin token).
    #[command(subcommand)]
    Workspace(WorkspaceCmd),
}

/// Runs a client command against the daemon configured by the environment.
///
/// Returns the process exit code (`exec` passes the remote command's through); an `Err` is
/// meant to be printed with [`print_error`] and exit code 1.
pub async fn run(cmd: Command) -> anyhow::Result<i32> {
    let client = Client::from_env()?;
    run_with(&client, cmd).await
}

/// Runs a client command against `client`'s daemon.
pub async fn run_with(client: &Client, cmd: Command) -> anyhow::Result<i32> {
    match cmd {
        Command::Run(args) => commands::run::execute(client, *args).await,
        Command::Container(c) => commands::container::execute(client, c).await,
        Command::Deploy(args) => commands::deploy::execute(client, args).await,
        Command::Deployment(c) => commands::deployment::execute(client, c).await,
        Command::Image(c) => commands::image::execute(client, c).await,
        Command::Info(args) => commands::info::execute(client, args).await,
        Command::Token(c) => commands::token::execute(client, c).await,
        Command::Workspace(c) => commands::workspace::execute(client, c).await,
    }
}

/// Prints `Error: <message>` on one line to stderr.
pub fn print_error(e: &anyhow::Error) {
    let msg = format!("{e:#}");
    eprintln!(
        "Error: {}",
        msg.split_whitespace().collect::<Vec<_>>().join(" ")
    );
}

/// The binary's shape, for parsing tests.
#[cfg(test)]
#[derive(Debug, clap::Parser)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) cmd: Command,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_tree_is_consistent_and_documented() {
        let mut cmd = super::Cli::command();
        cmd.build();
        cmd.clone().debug_assert();
        fn check(cmd: &clap::Command, path: &str) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" {
                    assert!(arg.get_help().is_some(), "{path} {id} has no help");
                }
            }
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                assert!(
                    sub.get_about().is_some(),
                    "{path} {} has no about",
                    sub.get_name()
                );
                check(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        check(&cmd, "cove");
    }

    /// The binary's shape: `cove server` next to the flattened client commands.
    #[derive(Debug, clap::Parser)]
    struct Binary {
        #[command(subcommand)]
        cmd: Top,
    }

    // A parsed command line lives once per process, so its size does not matter (the real
    // binary's `Top` may need the same allow if its `ServerArgs` is small).
    #[allow(clippy::large_enum_variant)]
    #[derive(Debug, clap::Subcommand)]
    enum Top {
        /// Run the daemon.
        Server,
        #[command(flatten)]
        Client(super::Command),
    }

    #[test]
    fn flattens_next_to_server() {
        use clap::Parser;
        Binary::command().debug_assert();
        let parsed = Binary::try_parse_from(["cove", "run", "--image", "b"]).unwrap();
        assert!(matches!(parsed.cmd, Top::Client(super::Command::Run(_))));
        let parsed = Binary::try_parse_from(["cove", "server"]).unwrap();
        assert!(matches!(parsed.cmd, Top::Server));
        let err = Binary::try_parse_from(["cove", "run", "--help"]).unwrap_err();
        assert!(err.to_string().contains("--keep-warm-seconds <SECONDS>"));
    }
}
