//! `cove`: the client commands and `cove server`, the daemon. This file only
//! parses arguments, sets up tracing and hands over.

mod conn_limits;
mod server;
mod shim;
mod workspace_limits;

use clap::{Parser, Subcommand};

/// Cove: serverless containers ("pods") on your own machine.
#[derive(Parser)]
#[command(name = "cove", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Top,
}

#[derive(Subcommand)]
enum Top {
    /// Run the daemon in the foreground.
    Server(Box<server::ServerArgs>),
    #[command(flatten)]
    Client(cove_cli::Command),
}

fn main() {
    // The per-container shim is this same binary; it must start before any
    // thread exists and stay small, so it is dispatched before clap and tokio.
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("shim") {
        std::process::exit(cove_runtime::shim_main(&argv[2..]));
    }
    let cli = Cli::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let is_server = matches!(cli.cmd, Top::Server(_));
    let default_filter = if is_server { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("COVE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match cli.cmd {
        Top::Server(args) => rt.block_on(server::run(*args)).map(|()| 0),
        Top::Client(cmd) => rt.block_on(cove_cli::run(cmd)),
    };
    match code {
        Ok(c) => std::process::exit(c),
        Err(e) => {
            eprintln!("Error: {}", format!("{e:#}").replace('\n', " "));
            std::process::exit(1);
        }
    }
}
