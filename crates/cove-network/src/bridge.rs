//! The daemon's bridge: create or reuse, gateway address, up; and its removal.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::{Handle, LinkBridge, LinkUnspec};

use crate::error::netlink_errno;
use crate::NetworkError;

/// The index of link `name`, or `None` if there is no such link.
pub(crate) async fn link_index(handle: &Handle, name: &str) -> Result<Option<u32>, NetworkError> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(msg)) => Ok(Some(msg.header.index)),
        Ok(None) => Ok(None),
        Err(e) if netlink_errno(&e) == Some(libc_enodev()) => Ok(None),
        Err(e) => Err(NetworkError::netlink(format!("looking up link {name}"), e)),
    }
}

pub(crate) const fn libc_enodev() -> i32 {
    nix::errno::Errno::ENODEV as i32
}

pub(crate) const fn libc_eexist() -> i32 {
    nix::errno::Errno::EEXIST as i32
}

/// Creates the bridge if missing (with a fixed MAC), gives it the gateway address, brings it up.
/// Returns its index.
#[tracing::instrument(skip(handle, mac))]
pub(crate) async fn ensure(
    handle: &Handle,
    name: &str,
    mac: Vec<u8>,
    gateway: Ipv4Addr,
    subnet: Ipv4Net,
) -> Result<u32, NetworkError> {
    let index = match link_index(handle, name).await? {
        Some(index) => index,
        None => {
            let add = handle
                .link()
                .add(LinkBridge::new(name).address(mac).build())
                .execute()
                .await;
            match add {
                Ok(()) => {}
                // another caller created it concurrently: reuse it
                Err(e) if netlink_errno(&e) == Some(libc_eexist()) => {}
                Err(e) => return Err(NetworkError::netlink(format!("creating bridge {name}"), e)),
            }
            link_index(handle, name)
                .await?
                .ok_or_else(|| NetworkError::LinkNotFound(name.to_string()))?
        }
    };

    let has_gateway = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_any(|msg| {
            let found = msg.header.prefix_len == subnet.prefix_len()
                && msg.attributes.iter().any(
                    |a| matches!(a, AddressAttribute::Local(IpAddr::V4(ip)) if *ip == gateway),
                );
            futures::future::ready(found)
        })
        .await
        .map_err(|e| NetworkError::netlink(format!("listing addresses of {name}"), e))?;
    if !has_gateway {
        match handle
            .address()
            .add(index, IpAddr::V4(gateway), subnet.prefix_len())
            .execute()
            .await
        {
            Ok(()) => {}
            Err(e) if netlink_errno(&e) == Some(libc_eexist()) => {}
            Err(e) => {
                return Err(NetworkError::netlink(
                    format!("adding {gateway}/{} to {name}", subnet.prefix_len()),
                    e,
                ))
            }
        }
    }

    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| NetworkError::netlink(format!("bringing {name} up"), e))?;
    Ok(index)
}

/// Deletes link `name`; fine if it does not exist.
/// Removes the bridge's neighbour (ARP) entry for `address`, if any. A pod that gets the address
/// of one that just ended would otherwise be unreachable from the host until the old entry (the
/// old veth's MAC, which nothing answers to any more) expires: up to a minute. Addresses are handed
/// out round-robin, but a restarted daemon starts over, so reuse right after an end happens.
pub(crate) async fn forget_neighbour(
    handle: &Handle,
    bridge_index: u32,
    address: Ipv4Addr,
) -> Result<(), NetworkError> {
    use rtnetlink::packet_route::neighbour::{
        NeighbourAddress, NeighbourAttribute, NeighbourMessage,
    };
    use rtnetlink::packet_route::AddressFamily;
    let mut msg = NeighbourMessage::default();
    msg.header.family = AddressFamily::Inet;
    msg.header.ifindex = bridge_index;
    msg.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
            address,
        )));
    match handle.neighbours().del(msg).execute().await {
        Ok(()) => Ok(()),
        Err(e) if netlink_errno(&e) == Some(nix::errno::Errno::ENOENT as i32) => Ok(()),
        Err(e) => Err(NetworkError::netlink(
            format!("forgetting the neighbour {address}"),
            e,
        )),
    }
}

pub(crate) async fn delete_link(handle: &Handle, name: &str) -> Result<(), NetworkError> {
    let Some(index) = link_index(handle, name).await? else {
        return Ok(());
    };
    match handle.link().del(index).execute().await {
        Ok(()) => Ok(()),
        Err(e) if netlink_errno(&e) == Some(libc_enodev()) => Ok(()),
        Err(e) => Err(NetworkError::netlink(format!("deleting link {name}"), e)),
    }
}

/// `net.ipv4.ip_forward = 1`, needed for pods' egress. Host-wide: never reset on teardown, other software may
/// rely on it.
pub(crate) async fn enable_ip_forward() -> Result<(), NetworkError> {
    const PATH: &str = "/proc/sys/net/ipv4/ip_forward";
    if tokio::fs::read_to_string(PATH)
        .await
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
    {
        return Ok(());
    }
    tokio::fs::write(PATH, b"1")
        .await
        .map_err(|e| NetworkError::io("enabling net.ipv4.ip_forward", e))
}
