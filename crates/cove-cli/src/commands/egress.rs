//! `cove container egress ID (--block | --allow CIDR... | --open)`: change a running pod's egress.

use anyhow::Result;
use clap::{ArgGroup, Args};
use cove_types::{Container, EgressRequest};

use crate::client::Client;

/// Arguments of `cove container egress`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("policy").required(true).args(["block", "allow", "open"])))]
pub struct EgressArgs {
    /// Container ID.
    pub id: String,
    /// No outbound connections at all (the pod is still served through the gateway).
    #[arg(long)]
    pub block: bool,
    /// Only let the pod reach this CIDR (10.0.0.0/8, 1.2.3.4/32, 2001:db8::/32); repeat for several.
    #[arg(long, value_name = "CIDR")]
    pub allow: Vec<String>,
    /// Let the pod reach anywhere again.
    #[arg(long)]
    pub open: bool,
}

impl EgressArgs {
    /// The API request (clap makes the three exclusive and one required).
    pub fn request(&self) -> EgressRequest {
        EgressRequest {
            block_network: self.block,
            allow_list: self.allow.clone(),
        }
    }
}

/// Sends the change and prints the policy now in force.
pub async fn execute(client: &Client, args: EgressArgs) -> Result<i32> {
    let url = client.url(&["v1", "containers", &args.id, "egress"], &[]);
    let c: Container = client.put(url, &args.request()).await?;
    println!("Egress of {}: {}", c.id, describe(&c));
    Ok(0)
}

/// `blocked`, `allowed to a, b` or `open`.
pub fn describe(c: &Container) -> String {
    if c.block_network {
        "blocked".to_string()
    } else if !c.allow_list.is_empty() {
        format!("allowed to {}", c.allow_list.join(", "))
    } else {
        "open".to_string()
    }
}

#[cfg(test)]
mod tests {
    use crate::commands::container::ContainerCmd;
    use crate::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<ContainerCmd, clap::Error> {
        let argv = ["cove", "container", "egress"]
            .into_iter()
            .chain(args.iter().copied());
        Cli::try_parse_from(argv).map(|c| match c.cmd {
            Command::Container(c) => c,
            other => panic!("unexpected parse: {other:?}"),
        })
    }

    #[test]
    fn exactly_one_policy_is_required() {
        let Ok(ContainerCmd::Egress(a)) =
            parse(&["pod-1", "--allow", "10.0.0.0/8", "--allow", "1.2.3.4/32"])
        else {
            panic!()
        };
        assert_eq!(a.request().allow_list, ["10.0.0.0/8", "1.2.3.4/32"]);
        assert!(!a.request().block_network);
        let Ok(ContainerCmd::Egress(a)) = parse(&["pod-1", "--block"]) else {
            panic!()
        };
        assert!(a.request().block_network);
        let Ok(ContainerCmd::Egress(a)) = parse(&["pod-1", "--open"]) else {
            panic!()
        };
        assert_eq!(a.request(), cove_types::EgressRequest::default());
        assert!(parse(&["pod-1"]).is_err());
        assert!(parse(&["pod-1", "--block", "--open"]).is_err());
        assert!(parse(&["pod-1", "--block", "--allow", "1.2.3.4/32"]).is_err());
    }
}
