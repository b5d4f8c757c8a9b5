//! [`Network`]: the public API over bridge, namespaces, veths, addresses and firewall.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use ipnet::Ipv4Net;
use tokio::task::JoinHandle;
use tracing::{debug, info, instrument, warn};

use crate::egress::EgressTable;
use crate::ipam::Ipam;
use crate::names::{valid_id, Names};
use crate::{bridge, firewall, netns, veth, NetworkError};

/// How a daemon's network is laid out.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// The pods' subnet, e.g. 10.88.0.0/16 (prefix ≤ 30). Its first host is the gateway (the bridge's address).
    /// Two daemons on one host must use different subnets: the bridge and table names derive from it.
    pub subnet: Ipv4Net,
    /// The daemon's data dir; namespace files live under `<data_dir>/netns/`.
    pub data_dir: PathBuf,
}

/// What a pod got from [`Network::attach`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The namespace file to hand to the OCI runtime (`linux.namespaces: [{type: network, path}]`).
    pub netns_path: PathBuf,
    /// The pod's address on `eth0` (prefix = the subnet's).
    pub address: Ipv4Addr,
    /// The default gateway inside the pod (the bridge's address).
    pub gateway: Ipv4Addr,
    /// The host end of the veth pair.
    pub host_veth: String,
}

/// The pods' network of one daemon. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct Network {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    subnet: Ipv4Net,
    netns_dir: PathBuf,
    pub(crate) names: Names,
    gateway: Ipv4Addr,
    bridge_index: u32,
    nl: rtnetlink::Handle,
    nl_task: JoinHandle<()>,
    state: Mutex<State>,
    /// Restricted pods' egress policies (`egress.rs`); an async lock, held while `nft` applies a change.
    pub(crate) egress: tokio::sync::Mutex<EgressTable>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.nl_task.abort();
    }
}

pub(crate) struct State {
    ipam: Ipam,
    pub(crate) pods: HashMap<String, Slot>,
}

#[derive(Clone, Copy)]
pub(crate) enum Slot {
    /// `attach` is in progress (its address is reserved in the allocator).
    Pending,
    Attached(Ipv4Addr),
}

/// Releases the address and the slot of an attach that did not complete (links and files are undone by `wire`).
struct AttachGuard<'a> {
    net: &'a Network,
    id: &'a str,
    address: Ipv4Addr,
    armed: bool,
}

impl Drop for AttachGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut state = self.net.state();
            state.pods.remove(self.id);
            state.ipam.release(self.address);
        }
    }
}

impl Network {
    /// Creates or reuses the bridge, its gateway address, `ip_forward`, and (atomically replaces) the firewall table.
    /// Idempotent: a restarted daemon calls it again, then [`Network::restore`]s its pods.
    #[instrument(skip(cfg), fields(subnet = %cfg.subnet))]
    pub async fn setup(cfg: NetConfig) -> Result<Network, NetworkError> {
        let subnet = cfg.subnet.trunc();
        if subnet.prefix_len() > 30 {
            return Err(NetworkError::InvalidSubnet {
                subnet: cfg.subnet,
                reason: "prefix must be /30 or shorter to leave room for pods",
            });
        }
        let netns_dir = cfg.data_dir.join("netns");
        tokio::fs::create_dir_all(&netns_dir)
            .await
            .map_err(|e| NetworkError::io(format!("creating {}", netns_dir.display()), e))?;

        let names = Names::for_subnet(&subnet);
        if let Some((iface, network)) = crate::overlap::conflicting_route(subnet, &names.bridge) {
            return Err(NetworkError::SubnetInUse {
                subnet,
                network,
                iface,
            });
        }
        let ipam = Ipam::new(subnet);
        let gateway = ipam.gateway();
        let (conn, nl, _) =
            rtnetlink::new_connection().map_err(|e| NetworkError::io("opening netlink", e))?;
        let nl_task = tokio::spawn(conn);
        let bridge_index =
            match bridge::ensure(&nl, &names.bridge, names.bridge_mac(), gateway, subnet).await {
                Ok(index) => index,
                Err(e) => {
                    nl_task.abort();
                    return Err(e);
                }
            };
        let inner = Inner {
            subnet,
            netns_dir,
            names,
            gateway,
            bridge_index,
            nl,
            nl_task,
            state: Mutex::new(State {
                ipam,
                pods: HashMap::new(),
            }),
            egress: tokio::sync::Mutex::new(EgressTable::default()),
        };
        bridge::enable_ip_forward().await?;
        firewall::install(&inner.names.table, &inner.names.bridge, &subnet).await?;
        info!(bridge = %inner.names.bridge, table = %inner.names.table, %gateway, "network ready");
        Ok(Network {
            inner: Arc::new(inner),
        })
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the maps inconsistent in a harmful way; keep going.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn netns_path(&self, id: &str) -> PathBuf {
        self.inner.netns_dir.join(id)
    }

    /// Gives pod `id` a new namespace, veth pair, address and default route. On any failure everything made so
    /// far is undone.
    ///
    /// Cancellation-safe: the work runs in its own task, so dropping this future never leaves a half-made
    /// attachment; the pod then simply ends up attached (and listed by [`Network::list_attached`]).
    #[instrument(skip(self), fields(pod = %id))]
    pub async fn attach(&self, id: &str) -> Result<Attachment, NetworkError> {
        if !valid_id(id) {
            return Err(NetworkError::InvalidId(id.to_string()));
        }
        let this = self.clone();
        let id = id.to_string();
        let span = tracing::Span::current();
        tokio::spawn(tracing::Instrument::instrument(
            async move { this.attach_now(&id).await },
            span,
        ))
        .await
        .map_err(|e| NetworkError::io("attach task", std::io::Error::other(e)))?
    }

    async fn attach_now(&self, id: &str) -> Result<Attachment, NetworkError> {
        let started = Instant::now();
        let address = {
            let mut state = self.state();
            match state.pods.get(id) {
                Some(Slot::Attached(_)) => {
                    return Err(NetworkError::AlreadyAttached(id.to_string()))
                }
                Some(Slot::Pending) => return Err(NetworkError::Busy(id.to_string())),
                None => {}
            }
            let address = state.ipam.allocate()?;
            state.pods.insert(id.to_string(), Slot::Pending);
            address
        };
        let mut guard = AttachGuard {
            net: self,
            id,
            address,
            armed: true,
        };
        let attachment = Attachment {
            netns_path: self.netns_path(id),
            address,
            gateway: self.inner.gateway,
            host_veth: self.inner.names.host_veth(id),
        };
        // On error the guard frees the address and the slot; `wire` has undone its kernel work.
        self.wire(&attachment).await?;
        guard.armed = false;
        self.state()
            .pods
            .insert(id.to_string(), Slot::Attached(address));
        debug!(%address, elapsed_us = started.elapsed().as_micros() as u64, "attached");
        Ok(attachment)
    }

    /// The steps of `attach` that touch the kernel. Each step undoes its own partial work, and a failure undoes
    /// the earlier steps, so on error nothing of this attach is left (and nothing that was not ours is touched:
    /// a leftover netns file or a veth of the same name stay as they were).
    async fn wire(&self, a: &Attachment) -> Result<(), NetworkError> {
        // The address may have belonged to a pod that just ended: drop the host's stale ARP entry.
        bridge::forget_neighbour(&self.inner.nl, self.inner.bridge_index, a.address).await?;
        let ns = netns::create(&a.netns_path).await?;
        let undo_netns = |e: NetworkError| {
            if let Err(cleanup) = netns::remove(&a.netns_path) {
                warn!(error = %cleanup, "rollback of a failed attach was incomplete");
            }
            e
        };
        let nl = &self.inner.nl;
        let host_index = veth::create(nl, &a.host_veth, self.inner.bridge_index, &a.netns_path)
            .await
            .map_err(undo_netns)?;
        let configured = veth::configure_pod_side(
            &ns.handle,
            a.address,
            self.inner.subnet.prefix_len(),
            a.gateway,
        )
        .await;
        if let Err(e) = configured {
            drop(ns);
            if let Err(cleanup) = veth::delete(nl, host_index).await {
                warn!(error = %cleanup, "rollback of a failed attach was incomplete");
            }
            return Err(undo_netns(e));
        }
        Ok(())
    }

    /// Removes the host veth (which also destroys the pod end) and the namespace file.
    async fn unwire(&self, id: &str) -> Result<(), NetworkError> {
        let veth = bridge::delete_link(&self.inner.nl, &self.inner.names.host_veth(id)).await;
        netns::remove(&self.netns_path(id))?;
        veth
    }

    /// After a daemon restart: records that pod `id` still holds `address` (its namespace file must exist).
    #[instrument(skip(self), fields(pod = %id))]
    pub async fn restore(&self, id: &str, address: Ipv4Addr) -> Result<(), NetworkError> {
        if !valid_id(id) {
            return Err(NetworkError::InvalidId(id.to_string()));
        }
        let path = self.netns_path(id);
        if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Err(NetworkError::NetnsMissing(path));
        }
        let mut state = self.state();
        match state.pods.get(id) {
            Some(Slot::Attached(a)) if *a == address => return Ok(()),
            Some(_) => return Err(NetworkError::AlreadyAttached(id.to_string())),
            None => {}
        }
        state.ipam.reserve(address)?;
        state.pods.insert(id.to_string(), Slot::Attached(address));
        Ok(())
    }

    /// Removes pod `id`'s egress rules, veth, namespace file and mount, and frees its address. Idempotent, and works for ids
    /// this process never attached (leftovers found by [`Network::list_attached`]).
    ///
    /// Cancellation-safe like [`Network::attach`].
    ///
    /// Takes ~20-30 ms, nearly all of it the kernel deleting the veth (`unregister_netdevice` waits for RCU grace
    /// periods); it is done synchronously so that, once this returns, nothing of the pod is left.
    #[instrument(skip(self), fields(pod = %id))]
    pub async fn detach(&self, id: &str) -> Result<(), NetworkError> {
        if !valid_id(id) {
            return Err(NetworkError::InvalidId(id.to_string()));
        }
        let this = self.clone();
        let id = id.to_string();
        let span = tracing::Span::current();
        tokio::spawn(tracing::Instrument::instrument(
            async move { this.detach_now(&id).await },
            span,
        ))
        .await
        .map_err(|e| NetworkError::io("detach task", std::io::Error::other(e)))?
    }

    async fn detach_now(&self, id: &str) -> Result<(), NetworkError> {
        let started = Instant::now();
        if let Some(Slot::Pending) = self.state().pods.get(id) {
            return Err(NetworkError::Busy(id.to_string()));
        }
        // Its egress rules go first: its address may be given to another pod once released. A failure there
        // must not keep the links and files.
        let egress = self.forget_egress(id).await;
        if let Err(e) = &egress {
            warn!(error = %e, "removing the egress rules failed");
        }
        self.unwire(id).await?;
        let mut state = self.state();
        if let Some(Slot::Attached(address)) = state.pods.remove(id) {
            state.ipam.release(address);
        }
        drop(state);
        debug!(
            elapsed_us = started.elapsed().as_micros() as u64,
            "detached"
        );
        egress
    }

    /// The pods' default gateway: the bridge's address, the first host of the subnet.
    pub fn gateway(&self) -> Ipv4Addr {
        self.inner.gateway
    }

    /// The bridge's interface name.
    pub fn bridge_name(&self) -> &str {
        &self.inner.names.bridge
    }

    /// This daemon's nftables table (family `inet`).
    pub fn firewall_table(&self) -> &str {
        &self.inner.names.table
    }

    /// The subnet (normalized to its network address).
    pub fn subnet(&self) -> Ipv4Net {
        self.inner.subnet
    }

    /// Ids with a namespace file under `<data_dir>/netns/`, sorted. For reconciliation: detach those the state
    /// store does not know, restore the others.
    pub async fn list_attached(&self) -> Vec<String> {
        let mut ids = Vec::new();
        let Ok(mut dir) = tokio::fs::read_dir(&self.inner.netns_dir).await else {
            return ids;
        };
        while let Ok(Some(entry)) = dir.next_entry().await {
            if let Some(name) = entry.file_name().to_str() {
                ids.push(name.to_string());
            }
        }
        ids.sort();
        ids
    }

    /// Removes the bridge and this daemon's firewall table. Call on shutdown once no pod is left (pods still
    /// attached lose connectivity; their namespaces stay until detached).
    #[instrument(skip(self), fields(bridge = %self.inner.names.bridge))]
    pub async fn teardown(&self) -> Result<(), NetworkError> {
        let bridge = bridge::delete_link(&self.inner.nl, &self.inner.names.bridge).await;
        let table = firewall::remove(&self.inner.names.table).await;
        // Only succeeds when empty, which is what we want.
        let _ = tokio::fs::remove_dir(&self.inner.netns_dir).await;
        bridge?;
        table
    }
}
