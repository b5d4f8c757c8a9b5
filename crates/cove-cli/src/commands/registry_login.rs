//! `--username` / `--password` for a private registry, shared by `run`, `image pull` and
//! `image build`.

use clap::Args;
use cove_types::RegistryAuth;

/// Registry credentials; clap makes each part require the other.
#[derive(Debug, Clone, Default, Args)]
pub struct RegistryLogin {
    /// Registry username, if the image must be pulled from a private registry.
    #[arg(long, requires = "password", env = "COVE_REGISTRY_USERNAME")]
    pub username: Option<String>,
    /// Registry password (prefer the environment variable to keep it out of shell history).
    #[arg(
        long,
        requires = "username",
        env = "COVE_REGISTRY_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
}

impl RegistryLogin {
    /// The credentials, when both parts are given.
    pub fn auth(&self) -> Option<RegistryAuth> {
        match (&self.username, &self.password) {
            (Some(username), Some(password)) => Some(RegistryAuth {
                username: username.clone(),
                password: password.clone(),
            }),
            _ => None,
        }
    }
}
