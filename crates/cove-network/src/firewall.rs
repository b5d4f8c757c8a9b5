//! The daemon's nftables table: isolation of pods from the host, egress NAT.
//!
//! One `inet` table per daemon (named from the subnet), so two daemons never touch each other's rules and
//! teardown is a single `delete table`. Everything is fed to `nft -f -` as one transaction. A daemon (re)start
//! re-creates the base chains' rules in one transaction but keeps the egress sets, so re-adopted pods keep their
//! egress policy throughout; a table that cannot be refreshed that way is replaced whole.
//!
//! Egress policies (`cove_types::EgressPolicy`) live in two sets keyed by the pod's address: `egress_restricted`
//! (pods that are blocked or have an allow list) and `egress_allow` (pod address . destination network). The
//! forward chain drops pod-to-pod and link-local traffic first, then accepts allowed pairs, then rejects any
//! other traffic of restricted pods. A policy change rewrites both sets in one transaction (atomic: packets see
//! the old or the new policy, never a mix). The host is out of reach of every pod in the input chain, and the
//! gateway's connections to pods (output hook) and their replies (input, established) never pass the forward
//! chain, so a blocked pod is still served.
//!
//! Limitation: netfilter runs every base chain of every table on a hook, and a drop anywhere is final. Our
//! forward chain accepts the pods' traffic, but if other software (Docker does) set the iptables `FORWARD` policy to
//! DROP, pods get no egress until the host also allows it there (e.g. `iptables -I FORWARD -s <subnet> -j ACCEPT`
//! and `iptables -I FORWARD -d <subnet> -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`). `setup` logs a
//! warning when it sees such a policy.

use std::net::Ipv4Addr;
use std::process::Stdio;

use cove_types::EgressPolicy;
use ipnet::Ipv4Net;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::NetworkError;

/// The set of pods whose egress is restricted.
const RESTRICTED: &str = "egress_restricted";
/// The set of (pod, destination network) pairs allow lists let through.
const ALLOW: &str = "egress_allow";

/// The table's sets and base chains, declared without rules ("add" semantics: no-op for what exists).
fn declarations(table: &str) -> String {
    format!(
        r#"table inet {table} {{
    # Pods with a restricted egress (blocked or allow list), by address; see `egress_script`.
    set {RESTRICTED} {{ type ipv4_addr; }}
    # (pod address . destination network) pairs an allow list lets through.
    set {ALLOW} {{ type ipv4_addr . ipv4_addr; flags interval; }}
    chain input {{ type filter hook input priority filter - 10; policy accept; }}
    chain forward {{ type filter hook forward priority filter - 10; policy accept; }}
    chain postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}
}}
"#
    )
}

/// The rules of the base chains.
fn rules(table: &str, bridge: &str, subnet: &Ipv4Net) -> String {
    format!(
        r#"table inet {table} {{
    # Pods may not open connections to the host: not the gateway address, not any other host address, not
    # over IPv6 link-local. Replies to connections the host opened (the gateway proxy) are let through.
    chain input {{
        iifname "{bridge}" ct state established,related accept
        iifname "{bridge}" drop
    }}
    # Pods reach the outside world, never each other through the host, never link-local (cloud metadata).
    # A pod with a restricted egress reaches only what its allow list names (nothing when blocked); the
    # isolation rules come first, so no allow list can undo them. Nothing from outside may open connections
    # to pods.
    chain forward {{
        iifname "{bridge}" oifname "{bridge}" drop
        iifname "{bridge}" ip daddr 169.254.0.0/16 drop
        iifname "{bridge}" ip saddr . ip daddr @{ALLOW} accept
        iifname "{bridge}" ip saddr @{RESTRICTED} reject with icmpx type admin-prohibited
        iifname "{bridge}" ip saddr {subnet} meta nfproto ipv4 accept
        iifname "{bridge}" drop
        oifname "{bridge}" ct state established,related accept
        oifname "{bridge}" drop
    }}
    chain postrouting {{
        ip saddr {subnet} oifname != "{bridge}" masquerade
    }}
}}
"#
    )
}

/// The full ruleset for one daemon, as one `nft -f` transaction that replaces whatever table of that name
/// exists (an older run's, perhaps incompatible), egress sets included.
pub(crate) fn ruleset(table: &str, bridge: &str, subnet: &Ipv4Net) -> String {
    format!(
        "table inet {table} {{}}\ndelete table inet {table}\n{}{}",
        declarations(table),
        rules(table, bridge, subnet)
    )
}

/// One transaction that re-creates the base chains' rules but keeps the egress sets' elements, so the pods
/// of a restarted daemon keep their egress policy while it starts up (no moment of open egress).
fn refresh(table: &str, bridge: &str, subnet: &Ipv4Net) -> String {
    format!(
        "{}flush chain inet {table} input\nflush chain inet {table} forward\nflush chain inet {table} postrouting\n{}",
        declarations(table),
        rules(table, bridge, subnet)
    )
}

/// The egress sets' whole content, as one transaction: `pods` are the restricted pods (address, policy).
/// IPv6 entries of allow lists have no element: pods have no IPv6 egress at all. A network inside another of
/// the same list is left out: the kernel refuses overlapping intervals in one set (and it adds nothing).
pub(crate) fn egress_script<'a>(
    table: &str,
    pods: impl IntoIterator<Item = (Ipv4Addr, &'a EgressPolicy)>,
) -> String {
    let mut restricted = Vec::new();
    let mut allowed = Vec::new();
    for (address, policy) in pods {
        match policy {
            EgressPolicy::Open => continue,
            EgressPolicy::Blocked => {}
            EgressPolicy::AllowList(cidrs) => {
                let v4: Vec<_> = cidrs.iter().filter(|c| c.addr().is_ipv4()).collect();
                for c in &v4 {
                    if !v4.iter().any(|o| o != c && o.contains(c)) {
                        allowed.push(format!("{address} . {c}"));
                    }
                }
            }
        }
        restricted.push(address.to_string());
    }
    let mut script =
        format!("flush set inet {table} {RESTRICTED}\nflush set inet {table} {ALLOW}\n");
    if !restricted.is_empty() {
        script += &format!(
            "add element inet {table} {RESTRICTED} {{ {} }}\n",
            restricted.join(", ")
        );
    }
    if !allowed.is_empty() {
        script += &format!(
            "add element inet {table} {ALLOW} {{ {} }}\n",
            allowed.join(", ")
        );
    }
    script
}

/// Replaces the egress sets' content atomically.
pub(crate) async fn apply_egress<'a>(
    table: &str,
    pods: impl IntoIterator<Item = (Ipv4Addr, &'a EgressPolicy)>,
) -> Result<(), NetworkError> {
    nft(&egress_script(table, pods)).await
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

/// Installs the daemon's table, or atomically replaces the rules of an existing one while keeping its egress
/// sets (see [`refresh`]); a table that cannot be refreshed (another layout) is replaced whole.
#[tracing::instrument(skip(subnet), fields(subnet = %subnet))]
pub(crate) async fn install(
    table: &str,
    bridge: &str,
    subnet: &Ipv4Net,
) -> Result<(), NetworkError> {
    if let Err(e) = nft(&refresh(table, bridge, subnet)).await {
        tracing::warn!(error = %e, "firewall table could not be refreshed in place; replacing it");
        nft(&ruleset(table, bridge, subnet)).await?;
    }
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

    #[test]
    fn isolation_comes_before_any_allow_list() {
        let r = rules("cove_x", "covex", &"10.9.0.0/16".parse().unwrap());
        let at = |needle: &str| r.find(needle).unwrap_or_else(|| panic!("{needle} in {r}"));
        let allow = at("@egress_allow accept");
        assert!(at(r#"oifname "covex" drop"#) < allow);
        assert!(at("169.254.0.0/16 drop") < allow);
        assert!(allow < at("@egress_restricted reject"));
        assert!(at("@egress_restricted reject") < at("meta nfproto ipv4 accept"));
    }

    #[test]
    fn egress_script_lists_restricted_pods_and_their_v4_networks() {
        let open = EgressPolicy::Open;
        let blocked = EgressPolicy::Blocked;
        let list = EgressPolicy::from_fields(
            false,
            &[
                "10.0.0.0/8".into(),
                "1.2.3.4/32".into(),
                "2001:db8::/32".into(),
            ],
        )
        .unwrap();
        let s = egress_script(
            "cove_x",
            [
                ("10.9.0.2".parse().unwrap(), &open),
                ("10.9.0.3".parse().unwrap(), &blocked),
                ("10.9.0.4".parse().unwrap(), &list),
            ],
        );
        assert_eq!(
            s,
            "flush set inet cove_x egress_restricted\nflush set inet cove_x egress_allow\n\
             add element inet cove_x egress_restricted { 10.9.0.3, 10.9.0.4 }\n\
             add element inet cove_x egress_allow { 10.9.0.4 . 10.0.0.0/8, 10.9.0.4 . 1.2.3.4/32 }\n"
        );
        let nested =
            EgressPolicy::from_fields(false, &["10.2.0.0/16".into(), "10.0.0.0/8".into()]).unwrap();
        let s = egress_script("cove_x", [("10.9.0.5".parse().unwrap(), &nested)]);
        assert!(s.contains("{ 10.9.0.5 . 10.0.0.0/8 }"), "{s}");
        let none = egress_script("cove_x", [("10.9.0.2".parse().unwrap(), &open)]);
        assert!(!none.contains("add element"), "{none}");
    }

    /// Loads the real thing into the kernel (needs root and nft): a fresh table, a refresh that keeps the
    /// egress sets, and a teardown.
    #[tokio::test]
    async fn nft_accepts_the_ruleset_and_a_refresh_keeps_egress() {
        let table = format!("cove_unit{}", std::process::id());
        let subnet: Ipv4Net = "10.251.7.0/24".parse().unwrap();
        let blocked = EgressPolicy::Blocked;
        // Nested networks, the broadest first: the kernel refuses overlapping intervals.
        let nested = EgressPolicy::from_fields(
            false,
            &[
                "0.0.0.0/0".into(),
                "10.0.0.0/8".into(),
                "10.2.0.0/16".into(),
                "1.2.3.4".into(),
            ],
        )
        .unwrap();
        install(&table, "coveunit0", &subnet).await.unwrap();
        apply_egress(
            &table,
            [
                ("10.251.7.9".parse().unwrap(), &blocked),
                ("10.251.7.10".parse().unwrap(), &nested),
            ],
        )
        .await
        .unwrap();
        install(&table, "coveunit0", &subnet).await.unwrap();
        let listed = std::process::Command::new("nft")
            .args(["list", "set", "inet", &table, RESTRICTED])
            .output()
            .unwrap();
        remove(&table).await.unwrap();
        let listed = String::from_utf8_lossy(&listed.stdout);
        assert!(listed.contains("10.251.7.9"), "{listed}");
    }
}
