//! Stable names derived from the subnet, so two daemons never share a bridge, firewall table or veth name.
//!
//! The hash is FNV-1a (not `DefaultHasher`, whose output may change between Rust releases): a daemon restarted
//! with a newer binary must find its old bridge and table again.

use ipnet::Ipv4Net;

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The names one daemon's network uses.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    tag: String,
    /// Bridge interface: `cove` + 8 hex (12 characters, Linux allows 15).
    pub bridge: String,
    /// nftables table (family `inet`): `cove_` + 8 hex.
    pub table: String,
}

impl Names {
    pub fn for_subnet(subnet: &Ipv4Net) -> Self {
        let tag = format!("{:08x}", fnv1a64(subnet.to_string().as_bytes()) as u32);
        Names {
            bridge: format!("cove{tag}"),
            table: format!("cove_{tag}"),
            tag,
        }
    }

    /// Host end of a pod's veth pair: `cv` + 12 hex of (subnet tag, id) = 14 characters.
    pub fn host_veth(&self, id: &str) -> String {
        let h = fnv1a64(format!("{}/{}", self.tag, id).as_bytes());
        format!("cv{:012x}", h & 0xffff_ffff_ffff)
    }

    /// A fixed, locally administered MAC for the bridge. Without one the bridge takes the lowest MAC of its
    /// ports, so the gateway's MAC would change as pods come and go and stale pod ARP caches would drop traffic.
    pub fn bridge_mac(&self) -> Vec<u8> {
        let h = fnv1a64(self.bridge.as_bytes()).to_be_bytes();
        vec![0x02, h[0], h[1], h[2], h[3], h[4]]
    }
}

/// Pod ids become file names under `<data_dir>/netns/`.
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_linux_limits_and_differ_per_subnet() {
        let a = Names::for_subnet(&"10.88.0.0/16".parse().unwrap());
        let b = Names::for_subnet(&"10.89.0.0/16".parse().unwrap());
        assert!(a.bridge.len() <= 15 && a.host_veth("x").len() <= 15);
        assert_ne!(a.bridge, b.bridge);
        assert_ne!(a.table, b.table);
        assert_ne!(a.host_veth("p1"), b.host_veth("p1"));
        assert_ne!(a.host_veth("p1"), a.host_veth("p2"));
        assert_eq!(
            a.bridge,
            Names::for_subnet(&"10.88.0.0/16".parse().unwrap()).bridge
        );
        assert_eq!(a.bridge_mac()[0], 0x02);
    }

    #[test]
    fn ids_are_file_name_safe() {
        assert!(valid_id("pod-1_a.b"));
        assert!(!valid_id(""));
        assert!(!valid_id(".."));
        assert!(!valid_id("a/b"));
        assert!(!valid_id(&"x".repeat(129)));
    }
}
