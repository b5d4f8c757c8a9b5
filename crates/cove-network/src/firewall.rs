//! The daemon's nftables table: isolation of pods from the host, egress NAT.
//!
//! One `inet` table per daemon (named from the subnet), so two daemons never touch each other's rules and
//! teardown is a single `delete table`. The ruleset is fed to `nft -f -` as one transaction: "create if missing,
//! delete, re-create with the full content", so a daemon restart atomically replaces whatever an older run left.
//!
//! Limitation: netfilter runs every base chain of every table on a hook, and a drop anywhere is final. Our
//! forward chain accepts the pods' traffic, but if other software (Docker does) set the iptables `FORWARD` policy to
//! DROP, pods get no egress until the host also allows it there (e.g. `iptables -I FORWARD -s <subnet> -j ACCEPT`
//! and `iptables -I FORWARD -d <subnet> -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`). `setup` logs a
//! warning when it sees such a policy.

use std::process::Stdio;

use ipnet::Ipv4Net;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::NetworkError;

/// The full ruleset for one daemon, as one `nft -f` transaction.
pub(crate) fn ruleset(table: &str, bridge: &str, subnet: &Ipv4Net) -> String {
    format!(
        r#"table inet {table} {{}}
delete table inet {table}
table inet {table} {{
    # Pods may not open connections to the host: not the gateway address, not any other host address, not
    # over IPv6 link-local. Replies to connections the host opened (the gateway proxy) are let through.
    chain input {{
        type filter hook input priority filter - 10; policy accept;
        iifname "{bridge}" ct state established,related accept
        iifname "{bridge}" drop
    }}
    # Pods reach the outside world, never each other through the host, never link-local (cloud metadata).
    # Nothing from outside may open connections to pods.
    chain forward {{
        type filter hook forward priority filter - 10; policy accept;
        iifname "{bridge}" oifname "{bridge}" drop
        iifname "{bridge}" ip daddr 169.254.0.0/16 drop
        iifname "{bridge}" ip saddr {subnet} meta nfproto ipv4 accept
        iifname "{bridge}" drop
        oifname "{bridge}" ct state established,related accept
        oifname "{bridge}" drop
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr {subnet} oifname != "{bridge}" masquerade
    }}
}}
"#
    )
}

async fn nft(script: &str) -> Result<(), NetworkError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetworkError::io("spawning nft", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(|e| NetworkError::io("writing to nft", e))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| NetworkError::io("waiting for nft", e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetworkError::Firewall(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

/// Installs (or atomically replaces) the daemon's table.
#[tracing::instrument(skip(subnet), fields(subnet = %subnet))]
pub(crate) async fn install(
    table: &str,
    bridge: &str,
    subnet: &Ipv4Net,
) -> Result<(), NetworkError> {
    nft(&ruleset(table, bridge, subnet)).await?;
    warn_if_forward_dropped().await;
    Ok(())
}

/// Deletes the daemon's table; fine if it is already gone.
pub(crate) async fn remove(table: &str) -> Result<(), NetworkError> {
    nft(&format!(
        "table inet {table} {{}}\ndelete table inet {table}\n"
    ))
    .await
}

/// See the module doc: an iptables FORWARD policy of DROP overrides our accepts.
async fn warn_if_forward_dropped() {
    let Ok(out) = Command::new("iptables")
        .args(["-w", "-S", "FORWARD"])
        .stderr(Stdio::null())
        .output()
        .await
    else {
        return;
    };
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == "-P FORWARD DROP")
    {
        tracing::warn!(
            "iptables FORWARD policy is DROP: pods will have no egress unless the host accepts their traffic there"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruleset_names_table_bridge_and_subnet() {
        let r = ruleset("cove_x", "covex", &"10.9.0.0/16".parse().unwrap());
        assert!(r.starts_with("table inet cove_x {}\ndelete table inet cove_x\n"));
        assert!(r.contains(r#"ip saddr 10.9.0.0/16 oifname != "covex" masquerade"#));
        assert!(r.contains(r#"iifname "covex" drop"#));
    }
}
