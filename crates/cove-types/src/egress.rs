//! A pod's egress policy: open (the default), blocked, or an allow list of CIDRs.
//!
//! The API speaks it as two fields, `block_network` and `allow_list` (in [`crate::CreatePodRequest`],
//! [`EgressRequest`] and [`crate::Container`]); the daemon works with the checked [`EgressPolicy`].

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

/// Most entries an allow list may have.
pub const MAX_ALLOW_LIST: usize = 256;

/// `PUT /v1/containers/{id}/egress`: change a running pod's egress. Both fields unset (or
/// `false` and `[]`) opens it again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EgressRequest {
    /// No outbound connections at all (requests through the gateway still reach the pod).
    #[serde(default)]
    pub block_network: bool,
    /// Only these destinations (`10.0.0.0/8`, `1.2.3.4/32`, `2001:db8::/32`; at most 256).
    #[serde(default)]
    pub allow_list: Vec<String>,
}

/// Why a requested egress policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    #[error("block_network and allow_list cannot be used together: give one or the other")]
    BlockAndAllow,
    #[error("allow_list has {0} entries: at most {MAX_ALLOW_LIST}")]
    TooMany(usize),
    #[error("allow_list entry {0:?} is not a CIDR like 10.0.0.0/8, 1.2.3.4/32 or 2001:db8::/32")]
    NotCidr(String),
    #[error("allow_list entry {given:?} has host bits set: did you mean {network}?")]
    HostBits { given: String, network: Cidr },
}

/// An IPv4 or IPv6 network, e.g. `10.0.0.0/8`; the address has no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether every address of `other` is in this network (same family, at most as long a prefix).
    pub fn contains(&self, other: &Cidr) -> bool {
        self.addr.is_ipv4() == other.addr.is_ipv4()
            && self.prefix <= other.prefix
            && mask(other.addr, self.prefix) == self.addr
    }

    /// Parses `a.b.c.d/p` or `x::y/p`; a bare address is a single host (`/32`, `/128`).
    /// Host bits must be zero.
    pub fn parse(s: &str) -> Result<Cidr, EgressError> {
        let bad = || EgressError::NotCidr(s.to_string());
        let t = s.trim();
        let (addr, prefix) = match t.split_once('/') {
            Some((a, p)) => {
                let addr: IpAddr = a.parse().map_err(|_| bad())?;
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 3 {
                    return Err(bad());
                }
                (addr, p.parse::<u8>().map_err(|_| bad())?)
            }
            None => {
                let addr: IpAddr = t.parse().map_err(|_| bad())?;
                (addr, max_prefix(addr))
            }
        };
        if prefix > max_prefix(addr) {
            return Err(bad());
        }
        let network = Cidr {
            addr: mask(addr, prefix),
            prefix,
        };
        if network.addr != addr {
            return Err(EgressError::HostBits {
                given: s.to_string(),
                network,
            });
        }
        Ok(network)
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & m).into())
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = EgressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cidr::parse(s)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Cidr::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// What a pod may connect to outside the host. Whatever the policy, a pod never reaches the
/// host, other pods or link-local addresses (cloud metadata).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EgressPolicy {
    /// Anywhere.
    #[default]
    Open,
    /// Nowhere: no outbound connection at all.
    Blocked,
    /// Only these networks (never empty; deduplicated, in the order given).
    AllowList(Vec<Cidr>),
}

impl EgressPolicy {
    /// Checks the API's two fields. An empty allow list means no list (open).
    pub fn from_fields(block_network: bool, allow_list: &[String]) -> Result<Self, EgressError> {
        if block_network && !allow_list.is_empty() {
            return Err(EgressError::BlockAndAllow);
        }
        if block_network {
            return Ok(EgressPolicy::Blocked);
        }
        if allow_list.is_empty() {
            return Ok(EgressPolicy::Open);
        }
        if allow_list.len() > MAX_ALLOW_LIST {
            return Err(EgressError::TooMany(allow_list.len()));
        }
        let mut cidrs: Vec<Cidr> = Vec::with_capacity(allow_list.len());
        for entry in allow_list {
            let c = Cidr::parse(entry)?;
            if !cidrs.contains(&c) {
                cidrs.push(c);
            }
        }
        Ok(EgressPolicy::AllowList(cidrs))
    }

    /// The same, from a change request.
    pub fn from_request(req: &EgressRequest) -> Result<Self, EgressError> {
        Self::from_fields(req.block_network, &req.allow_list)
    }

    /// `block_network` as the API shows it.
    pub fn block_network(&self) -> bool {
        matches!(self, EgressPolicy::Blocked)
    }

    /// `allow_list` as the API shows it (empty unless the policy is an allow list).
    pub fn allow_list(&self) -> Vec<String> {
        match self {
            EgressPolicy::AllowList(c) => c.iter().map(Cidr::to_string).collect(),
            _ => Vec::new(),
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self, EgressPolicy::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn cidrs_parse_v4_v6_and_bare_hosts() {
        assert_eq!(Cidr::parse("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(Cidr::parse("1.2.3.4").unwrap().to_string(), "1.2.3.4/32");
        assert_eq!(Cidr::parse("0.0.0.0/0").unwrap().prefix(), 0);
        assert_eq!(
            Cidr::parse("2001:db8::/32").unwrap().to_string(),
            "2001:db8::/32"
        );
        assert_eq!(Cidr::parse("::1").unwrap().prefix(), 128);
        let c = |s: &str| Cidr::parse(s).unwrap();
        assert!(c("0.0.0.0/0").contains(&c("10.0.0.0/8")));
        assert!(c("10.0.0.0/8").contains(&c("10.2.0.0/16")));
        assert!(c("10.0.0.0/8").contains(&c("10.0.0.0/8")));
        assert!(!c("10.2.0.0/16").contains(&c("10.0.0.0/8")));
        assert!(!c("11.0.0.0/8").contains(&c("10.2.0.0/16")));
        assert!(!c("::/0").contains(&c("10.0.0.0/8")));
        for bad in [
            "",
            "10.0.0.0/",
            "10.0.0.0/33",
            "10.0.0/8",
            "x/8",
            "10.0.0.0/+8",
            "::/129",
            "10.0.0.0/8/8",
            "1.2.3.4/ 8",
        ] {
            assert!(
                matches!(Cidr::parse(bad), Err(EgressError::NotCidr(_))),
                "{bad}"
            );
        }
        assert_eq!(
            Cidr::parse("10.1.2.3/8").unwrap_err().to_string(),
            "allow_list entry \"10.1.2.3/8\" has host bits set: did you mean 10.0.0.0/8?"
        );
    }

    #[test]
    fn policy_from_fields() {
        assert_eq!(
            EgressPolicy::from_fields(false, &[]),
            Ok(EgressPolicy::Open)
        );
        assert_eq!(
            EgressPolicy::from_fields(true, &[]),
            Ok(EgressPolicy::Blocked)
        );
        assert_eq!(
            EgressPolicy::from_fields(true, &list(&["1.2.3.4/32"])),
            Err(EgressError::BlockAndAllow)
        );
        let p =
            EgressPolicy::from_fields(false, &list(&["1.2.3.4/32", "1.2.3.4", "::/0"])).unwrap();
        assert_eq!(p.allow_list(), list(&["1.2.3.4/32", "::/0"]));
        assert!(!p.block_network());
        let many: Vec<String> = (0..=MAX_ALLOW_LIST)
            .map(|i| format!("10.0.{}.{}/32", i / 256, i % 256))
            .collect();
        assert_eq!(
            EgressPolicy::from_fields(false, &many),
            Err(EgressError::TooMany(MAX_ALLOW_LIST + 1))
        );
    }

    #[test]
    fn specs_stored_before_egress_existed_load_open() {
        let req = crate::CreatePodRequest {
            image: "b".into(),
            block_network: true,
            ..Default::default()
        };
        let mut v = serde_json::to_value(crate::validate_pod_spec(&req).unwrap()).unwrap();
        assert_eq!(v["egress"], "blocked");
        v.as_object_mut().unwrap().remove("egress");
        let old: crate::ValidPodSpec = serde_json::from_value(v).unwrap();
        assert_eq!(old.egress, EgressPolicy::Open);
    }

    #[test]
    fn policy_round_trips_through_json() {
        let p = EgressPolicy::from_fields(false, &list(&["10.0.0.0/8"])).unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#"{"allow_list":["10.0.0.0/8"]}"#);
        assert_eq!(serde_json::from_str::<EgressPolicy>(&json).unwrap(), p);
        assert_eq!(
            serde_json::to_string(&EgressPolicy::Blocked).unwrap(),
            r#""blocked""#
        );
    }
}
