//! A pod's veth pair: host end on the bridge (isolated port), pod end `eth0` inside the pod's namespace.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{Handle, LinkBridgePort, LinkMessageBuilder, LinkUnspec, RouteMessageBuilder};

use crate::bridge::link_index;
use crate::error::netlink_errno;
use crate::NetworkError;

/// Name of the pod's interface inside its namespace.
pub const POD_IFACE: &str = "eth0";

/// Index of the loopback device: always 1 in every network namespace (`LOOPBACK_IFINDEX` in the kernel).
const LO_INDEX: u32 = 1;

/// Creates the pair with the peer born directly inside the namespace at `netns_path` under the name `eth0` (no
/// rename step, and no clash with the host's own `eth0`), the host end already enslaved to the bridge and up;
/// then marks the host end an isolated bridge port, so pods cannot talk to each other over the bridge.
#[tracing::instrument(skip(handle))]
pub(crate) async fn create(
    handle: &Handle,
    host_name: &str,
    bridge_index: u32,
    netns_path: &Path,
) -> Result<u32, NetworkError> {
    let ns = std::fs::File::open(netns_path)
        .map_err(|e| NetworkError::io(format!("opening {}", netns_path.display()), e))?;
    let peer = LinkUnspec::new_with_name(POD_IFACE)
        .setns_by_fd(ns.as_raw_fd())
        .build();
    let msg = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth)
        .name(host_name.to_string())
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .controller(bridge_index)
        .up()
        .build();
    handle
        .link()
        .add(msg)
        .execute()
        .await
        .map_err(|e| NetworkError::netlink(format!("creating veth {host_name}"), e))?;
    // `ns` must stay open until the kernel has used the fd above.
    drop(ns);

    // From here on the pair is ours: undo it if the rest fails.
    let index = link_index(handle, host_name)
        .await?
        .ok_or_else(|| NetworkError::LinkNotFound(host_name.to_string()))?;
    let isolated = handle
        .link()
        .set_port(LinkBridgePort::new(index).isolated(true).build())
        .execute()
        .await;
    if let Err(e) = isolated {
        let _ = delete(handle, index).await;
        return Err(NetworkError::netlink(
            format!("isolating bridge port {host_name}"),
            e,
        ));
    }
    Ok(index)
}

/// Deletes the veth pair by its host end's index (deleting one end removes both).
pub(crate) async fn delete(handle: &Handle, index: u32) -> Result<(), NetworkError> {
    match handle.link().del(index).execute().await {
        Ok(()) => Ok(()),
        Err(e) if netlink_errno(&e) == Some(crate::bridge::libc_enodev()) => Ok(()),
        Err(e) => Err(NetworkError::netlink("deleting veth", e)),
    }
}

/// Inside the pod's namespace (through a netlink socket opened there): lo up, address on eth0, eth0 up,
/// default route via the gateway.
#[tracing::instrument(skip(ns))]
pub(crate) async fn configure_pod_side(
    ns: &Handle,
    address: Ipv4Addr,
    prefix_len: u8,
    gateway: Ipv4Addr,
) -> Result<(), NetworkError> {
    let eth0 = link_index(ns, POD_IFACE)
        .await?
        .ok_or_else(|| NetworkError::LinkNotFound(POD_IFACE.to_string()))?;
    let lo_up = async {
        ns.link()
            .set(LinkUnspec::new_with_index(LO_INDEX).up().build())
            .execute()
            .await
            .map_err(|e| NetworkError::netlink("bringing lo up in the pod", e))
    };
    let addr = async {
        ns.address()
            .add(eth0, IpAddr::V4(address), prefix_len)
            .execute()
            .await
            .map_err(|e| {
                NetworkError::netlink(format!("adding {address}/{prefix_len} to pod eth0"), e)
            })?;
        ns.link()
            .set(LinkUnspec::new_with_index(eth0).up().build())
            .execute()
            .await
            .map_err(|e| NetworkError::netlink("bringing pod eth0 up", e))
    };
    futures::try_join!(lo_up, addr)?;
    ns.route()
        .add(
            RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gateway)
                .output_interface(eth0)
                .build(),
        )
        .execute()
        .await
        .map_err(|e| NetworkError::netlink(format!("adding default route via {gateway}"), e))
}
