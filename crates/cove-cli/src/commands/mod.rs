//! One module per command group; each has an `execute(client, args) -> exit code`.

pub mod container;
pub mod deploy;
pub mod deployment;
pub mod egress;
pub mod image;
pub mod info;
pub mod registry_login;
pub mod run;
pub mod token;
pub mod workspace;
