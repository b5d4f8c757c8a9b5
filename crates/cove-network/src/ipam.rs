//! In-memory address allocator over a subnet's pod addresses.
//!
//! Offsets are relative to the network address: 0 is the network, 1 the gateway (the bridge), the last one the
//! broadcast; pods get 2..=size-2. Allocation goes round-robin from the last one handed out, so a freed address is
//! not reused at once (fewer surprises from stale ARP entries and conntrack state).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::NetworkError;

#[derive(Debug)]
pub(crate) struct Ipam {
    subnet: Ipv4Net,
    used: BTreeSet<u32>,
    next: u32,
}

impl Ipam {
    /// `subnet` must have at least one pod address (prefix ≤ 30); `Network::setup` checks that.
    pub fn new(subnet: Ipv4Net) -> Self {
        Ipam {
            subnet,
            used: BTreeSet::new(),
            next: 2,
        }
    }

    fn base(&self) -> u32 {
        u32::from(self.subnet.network())
    }

    /// Number of addresses in the subnet, including network and broadcast.
    fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.subnet.prefix_len()))
    }

    fn last_offset(&self) -> u32 {
        // size ≥ 4 because prefix ≤ 30, so this is ≥ 2
        (self.size() - 2) as u32
    }

    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base() + 1)
    }

    pub fn allocate(&mut self) -> Result<Ipv4Addr, NetworkError> {
        let last = self.last_offset();
        let count = last - 1;
        for i in 0..count {
            let off = 2 + (self.next - 2 + i) % count;
            if self.used.insert(off) {
                self.next = if off == last { 2 } else { off + 1 };
                return Ok(Ipv4Addr::from(self.base() + off));
            }
        }
        Err(NetworkError::AddressesExhausted {
            subnet: self.subnet,
            in_use: self.used.len(),
        })
    }

    fn offset(&self, address: Ipv4Addr) -> Result<u32, NetworkError> {
        let out = NetworkError::AddressOutOfRange {
            address,
            subnet: self.subnet,
        };
        if !self.subnet.contains(&address) {
            return Err(out);
        }
        let off = u32::from(address) - self.base();
        if off < 2 || off > self.last_offset() {
            return Err(out);
        }
        Ok(off)
    }

    /// Marks `address` as used (after a daemon restart).
    pub fn reserve(&mut self, address: Ipv4Addr) -> Result<(), NetworkError> {
        let off = self.offset(address)?;
        if !self.used.insert(off) {
            return Err(NetworkError::AddressInUse(address));
        }
        Ok(())
    }

    pub fn release(&mut self, address: Ipv4Addr) {
        if let Ok(off) = self.offset(address) {
            self.used.remove(&off);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_network_gateway_broadcast_and_exhausts() {
        let mut ipam = Ipam::new("10.1.2.0/29".parse().unwrap());
        assert_eq!(ipam.gateway(), Ipv4Addr::new(10, 1, 2, 1));
        let got: Vec<_> = (0..5).map(|_| ipam.allocate().unwrap()).collect();
        assert_eq!(got.first(), Some(&Ipv4Addr::new(10, 1, 2, 2)));
        assert_eq!(got.last(), Some(&Ipv4Addr::new(10, 1, 2, 6)));
        assert!(matches!(
            ipam.allocate(),
            Err(NetworkError::AddressesExhausted { in_use: 5, .. })
        ));
        ipam.release(Ipv4Addr::new(10, 1, 2, 4));
        assert_eq!(ipam.allocate().unwrap(), Ipv4Addr::new(10, 1, 2, 4));
    }

    #[test]
    fn round_robin_and_reserve() {
        let mut ipam = Ipam::new("10.1.2.0/24".parse().unwrap());
        let a = ipam.allocate().unwrap();
        ipam.release(a);
        assert_ne!(
            ipam.allocate().unwrap(),
            a,
            "freed address is not reused at once"
        );
        ipam.reserve(Ipv4Addr::new(10, 1, 2, 50)).unwrap();
        assert!(matches!(
            ipam.reserve(Ipv4Addr::new(10, 1, 2, 50)),
            Err(NetworkError::AddressInUse(_))
        ));
        for bad in [[10, 1, 2, 0], [10, 1, 2, 1], [10, 1, 2, 255], [10, 1, 3, 5]] {
            assert!(matches!(
                ipam.reserve(Ipv4Addr::from(bad)),
                Err(NetworkError::AddressOutOfRange { .. })
            ));
        }
    }
}
