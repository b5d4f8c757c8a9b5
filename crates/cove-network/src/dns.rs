//! Nameservers a pod can use.

use std::net::Ipv4Addr;

/// The host's IPv4 nameservers that a pod can reach.
///
/// Read from `/etc/resolv.conf`; if that only lists loopback resolvers (systemd-resolved's `127.0.0.53`, a local
/// dnsmasq), the upstream list in `/run/systemd/resolve/resolv.conf` is tried instead. Loopback addresses are
/// dropped (a pod's loopback is its own), and so are link-local ones (169.254.0.0/16 is blocked for pods) and IPv6
/// ones (pods only get IPv4). The result may be empty: then the caller must pick resolvers itself (or leave pods
/// without DNS). Note a nameserver that is one of the host's own addresses is not reachable either: pods cannot
/// open connections to the host.
pub fn nameservers() -> Vec<String> {
    let from = |path: &str| {
        std::fs::read_to_string(path)
            .map(|text| parse_nameservers(&text))
            .unwrap_or_default()
    };
    let found = from("/etc/resolv.conf");
    if found.is_empty() {
        return from("/run/systemd/resolve/resolv.conf");
    }
    found
}

/// The usable `nameserver` entries of a resolv.conf text, in order.
pub(crate) fn parse_nameservers(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("nameserver"), Some(addr)) => addr.parse::<Ipv4Addr>().ok(),
                _ => None,
            }
        })
        .filter(|a| !a.is_loopback() && !a.is_link_local() && !a.is_unspecified())
        .map(|a| a.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_reachable_ipv4() {
        let text = "# c\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver ::1\n\
                    nameserver 2001:db8::1\nnameserver 169.254.169.253\noptions edns0\nnameserver 1.1.1.1 # x\n";
        assert_eq!(parse_nameservers(text), vec!["10.0.0.2", "1.1.1.1"]);
        assert!(parse_nameservers("nameserver 127.0.0.53\n").is_empty());
    }
}
