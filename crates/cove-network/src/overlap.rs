//! Refusing a subnet that another interface already routes: two bridges on
//! one subnet make both unreachable (podman's default network is 10.88.0.0/16,
//! for instance).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// The first route (interface, network) in `/proc/net/route` that overlaps
/// `subnet` on an interface other than `own_bridge`.
pub(crate) fn conflicting_route(subnet: Ipv4Net, own_bridge: &str) -> Option<(String, Ipv4Net)> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    parse_routes(&table)
        .into_iter()
        .find(|(iface, net)| iface != own_bridge && net.prefix_len() > 0 && overlaps(*net, subnet))
}

fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// `/proc/net/route` rows as (interface, network); addresses are little-endian hex.
fn parse_routes(table: &str) -> Vec<(String, Ipv4Net)> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (iface, dest, mask) = (f.first()?, f.get(1)?, f.get(7)?);
            let dest = Ipv4Addr::from(u32::from_str_radix(dest, 16).ok()?.swap_bytes());
            let mask = Ipv4Addr::from(u32::from_str_radix(mask, 16).ok()?.swap_bytes());
            let prefix = u32::from(mask).count_ones() as u8;
            Some((iface.to_string(), Ipv4Net::new(dest, prefix).ok()?.trunc()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
        eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
        podman0\t0000580A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";

    #[test]
    fn finds_podman_style_overlap_but_not_the_default_route() {
        let routes = parse_routes(TABLE);
        assert_eq!(
            routes[1],
            ("podman0".to_string(), "10.88.0.0/16".parse().unwrap())
        );
        let hit = |s: &str| {
            let subnet: Ipv4Net = s.parse().unwrap();
            routes
                .iter()
                .any(|(i, n)| i != "mine" && n.prefix_len() > 0 && overlaps(*n, subnet))
        };
        assert!(hit("10.88.5.0/24"));
        assert!(hit("10.0.0.0/8"));
        assert!(!hit("10.89.0.0/16"));
    }
}
