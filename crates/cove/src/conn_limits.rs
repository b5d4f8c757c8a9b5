//! `cove server`'s connection-limit flags for the gateway and the API (`cove_listen`).

use std::time::Duration;

use cove_listen::Limits;

/// Connection caps and deadlines; each flag can also come from `COVE_<FLAG>`.
#[derive(clap::Args, Debug)]
pub struct ConnLimitArgs {
    /// Open client connections the gateway holds (HTTP and HTTPS together); at the cap a
    /// new connection closes the oldest idle one.
    #[arg(long, env = "COVE_GATEWAY_MAX_CONNECTIONS", default_value_t = Limits::GATEWAY.max_connections as u32,
        value_parser = clap::value_parser!(u32).range(1..))]
    gateway_max_connections: u32,
    /// Gateway connections one client address may hold before its first request.
    #[arg(long, env = "COVE_GATEWAY_MAX_PENDING_PER_ADDRESS", default_value_t = Limits::GATEWAY.max_pending_per_address as u32,
        value_parser = clap::value_parser!(u32).range(1..))]
    gateway_max_pending_per_address: u32,
    /// Open client connections the API holds; at the cap a new connection closes the
    /// oldest idle one.
    #[arg(long, env = "COVE_API_MAX_CONNECTIONS", default_value_t = Limits::API.max_connections as u32,
        value_parser = clap::value_parser!(u32).range(1..))]
    api_max_connections: u32,
    /// API connections one client address may hold before its first request.
    #[arg(long, env = "COVE_API_MAX_PENDING_PER_ADDRESS", default_value_t = Limits::API.max_pending_per_address as u32,
        value_parser = clap::value_parser!(u32).range(1..))]
    api_max_pending_per_address: u32,
    /// Seconds from accept to a complete first request head (TLS handshake included),
    /// gateway and API; then the connection is closed.
    #[arg(long, env = "COVE_FIRST_REQUEST_TIMEOUT_SECONDS",
        default_value_t = Limits::GATEWAY.first_request_timeout.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..))]
    first_request_timeout_seconds: u64,
    /// Seconds a keep-alive connection may wait for its next request, gateway and API.
    #[arg(long, env = "COVE_IDLE_TIMEOUT_SECONDS",
        default_value_t = Limits::GATEWAY.idle_timeout.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout_seconds: u64,
}

impl ConnLimitArgs {
    pub fn gateway(&self) -> Limits {
        self.limits(
            self.gateway_max_connections,
            self.gateway_max_pending_per_address,
        )
    }

    pub fn api(&self) -> Limits {
        self.limits(self.api_max_connections, self.api_max_pending_per_address)
    }

    fn limits(&self, max_connections: u32, max_pending_per_address: u32) -> Limits {
        Limits {
            max_connections: max_connections as usize,
            max_pending_per_address: max_pending_per_address as usize,
            first_request_timeout: Duration::from_secs(self.first_request_timeout_seconds),
            idle_timeout: Duration::from_secs(self.idle_timeout_seconds),
        }
    }
}
