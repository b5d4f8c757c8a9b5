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
mod table;

pub use client::{Client, ClientError};
pub use commands::container::{ContainerCmd, ListFormat};
pub use commands::image::ImageCmd;
pub use commands::info::InfoArgs;
pub use commands::run::{RunArgs, RunFormat};

/// The client commands, for the binary to `#[command(flatten)]`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Launch a container from an image and print the URLs it is hosted at.
    Run(RunArgs),
    /// List, inspect, stop containers; read their logs; run commands in them.
    #[command(subcommand)]
    Container(ContainerCmd),
    /// Pull, list, remove and import images.
    #[command(subcommand)]
    Image(ImageCmd),
    /// Show the daemon's version, runtime and gateway URLs.
    Info(InfoArgs),
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
        Command::Run(args) => commands::run::execute(client, args).await,
        Command::Container(c) => commands::container::execute(client, c).await,
        Command::Image(c) => commands::image::execute(client, c).await,
        Command::Info(args) => commands::info::execute(client, args).await,
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
