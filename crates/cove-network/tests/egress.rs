//! Egress through the host: the internet is out of reach in tests, so an "outside" namespace linked to the host
//! by a veth plays it. Checks forwarding, masquerading, the link-local block, and that outside cannot dial in.

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;

use common::*;

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("run ip");
    assert!(status.success(), "ip {args:?} failed");
}

/// The fake outside world; removed on drop.
struct Outside {
    name: String,
    host_end: String,
}

impl Outside {
    fn new(n: u8) -> Outside {
        let o = Outside {
            name: format!("cove-out-{n}-{}", std::process::id()),
            host_end: format!("cvo{n}h"),
        };
        let out_addr = format!("10.201.{n}.2/30");
        let host_addr = format!("10.201.{n}.1/30");
        ip(&["netns", "add", &o.name]);
        ip(&[
            "link",
            "add",
            &o.host_end,
            "type",
            "veth",
            "peer",
            "name",
            "out0",
            "netns",
            &o.name,
        ]);
        ip(&["addr", "add", &host_addr, "dev", &o.host_end]);
        ip(&[
            "addr",
            "add",
            &format!("169.254.{n}.1/30"),
            "dev",
            &o.host_end,
        ]);
        ip(&["link", "set", &o.host_end, "up"]);
        ip(&["-n", &o.name, "addr", "add", &out_addr, "dev", "out0"]);
        ip(&[
            "-n",
            &o.name,
            "addr",
            "add",
            &format!("169.254.{n}.2/30"),
            "dev",
            "out0",
        ]);
        ip(&["-n", &o.name, "link", "set", "out0", "up"]);
        ip(&["-n", &o.name, "link", "set", "lo", "up"]);
        o
    }

    fn netns(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_end])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[tokio::test]
async fn pods_reach_outside_masqueraded_but_not_link_local_and_not_the_other_way() {
    let n = 10;
    let t = TestNet::new(n).await;
    let outside = Outside::new(n);
    let pod = t.net.attach("p").await.expect("attach");

    // a listener outside that reports who connected
    let listener = in_netns(&outside.netns(), || {
        TcpListener::bind("0.0.0.0:0").expect("bind outside")
    });
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let _ = tx.send(conn.peer_addr().ok());
        }
    });

    let target = SocketAddr::from((Ipv4Addr::new(10, 201, n, 2), port));
    connect_from_pod(&pod.netns_path, target).expect("pod reaches outside");
    let seen = rx
        .recv_timeout(std::time::Duration::from_secs(2))
        .expect("outside saw a connection");
    assert_eq!(
        seen.map(|a| a.ip()),
        Some(Ipv4Addr::new(10, 201, n, 1).into()),
        "source was not masqueraded"
    );

    let link_local = SocketAddr::from((Ipv4Addr::new(169, 254, n, 2), port));
    assert!(
        connect_from_pod(&pod.netns_path, link_local).is_err(),
        "pod reached link-local"
    );

    // nor the host through any of its addresses
    let host = TcpListener::bind("0.0.0.0:0").expect("host listener");
    let host_port = host.local_addr().expect("addr").port();
    for host_ip in [Ipv4Addr::new(10, 201, n, 1), t.net.gateway()] {
        let to = SocketAddr::from((host_ip, host_port));
        assert!(
            connect_from_pod(&pod.netns_path, to).is_err(),
            "pod reached host at {to}"
        );
        connect_from_host(to).expect("the host listener itself works");
    }

    // outside, even with a route to the pods, cannot open connections to them
    let pod_port = listen_in_pod(&pod.netns_path, 0).port();
    ip(&[
        "-n",
        &outside.name,
        "route",
        "add",
        &t.subnet.to_string(),
        "via",
        &format!("10.201.{n}.1"),
    ]);
    let into_pod = SocketAddr::from((pod.address, pod_port));
    assert!(
        in_netns(&outside.netns(), move || connect_from_host(into_pod)).is_err(),
        "outside reached a pod"
    );
    drop(outside);
    t.finish().await;
}

/// Per-pod egress policies (`Network::set_egress`): blocked, allow list, open again; an allow list of everything
/// still keeps the host and link-local out of reach; the host still reaches a blocked pod; detach removes it.
#[tokio::test]
async fn egress_policies_block_and_allow_but_never_widen_isolation() {
    use cove_types::EgressPolicy;

    let n = 20;
    let t = TestNet::new(n).await;
    let outside = Outside::new(n);
    // A second outside address, for "allowed here but not there".
    ip(&[
        "-n",
        &outside.name,
        "addr",
        "add",
        &format!("10.201.{n}.5/32"),
        "dev",
        "out0",
    ]);
    ip(&[
        "route",
        "add",
        &format!("10.201.{n}.5/32"),
        "dev",
        &outside.host_end,
    ]);
    assert!(matches!(
        t.net.set_egress("nope", &EgressPolicy::Blocked).await,
        Err(cove_network::NetworkError::NotAttached(_))
    ));
    let pod = t.net.attach("p").await.expect("attach");
    let listener = in_netns(&outside.netns(), || {
        TcpListener::bind("0.0.0.0:0").expect("bind outside")
    });
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || for _ in listener.incoming() {});
    let a = SocketAddr::from((Ipv4Addr::new(10, 201, n, 2), port));
    let b = SocketAddr::from((Ipv4Addr::new(10, 201, n, 5), port));
    let reaches = |to: SocketAddr| connect_from_pod(&pod.netns_path, to).is_ok();
    assert!(reaches(a) && reaches(b), "open: both reachable");

    t.net.set_egress("p", &EgressPolicy::Blocked).await.unwrap();
    assert!(!reaches(a) && !reaches(b), "blocked");
    let pod_port = listen_in_pod(&pod.netns_path, 0).port();
    connect_from_host(SocketAddr::from((pod.address, pod_port)))
        .expect("the host (the gateway) still reaches a blocked pod");

    let only_a = EgressPolicy::from_fields(false, &[format!("10.201.{n}.2/32")]).unwrap();
    t.net.set_egress("p", &only_a).await.unwrap();
    assert!(reaches(a), "allowed address");
    assert!(!reaches(b), "address not on the list");
    assert_eq!(t.net.egress_of("p").await, only_a);

    let everything = EgressPolicy::from_fields(false, &["0.0.0.0/0".into()]).unwrap();
    t.net.set_egress("p", &everything).await.unwrap();
    assert!(reaches(a) && reaches(b));
    let host = TcpListener::bind("0.0.0.0:0").expect("host listener");
    let host_port = host.local_addr().expect("addr").port();
    for to in [
        SocketAddr::from((Ipv4Addr::new(169, 254, n, 2), port)),
        SocketAddr::from((Ipv4Addr::new(10, 201, n, 1), host_port)),
        SocketAddr::from((t.net.gateway(), host_port)),
    ] {
        assert!(!reaches(to), "an allow list of 0.0.0.0/0 reached {to}");
    }

    t.net.set_egress("p", &EgressPolicy::Open).await.unwrap();
    assert!(reaches(a) && reaches(b), "open again");

    // Detach removes a policy from the kernel.
    t.net.set_egress("p", &EgressPolicy::Blocked).await.unwrap();
    let set = || nft_set(t.net.firewall_table(), "egress_restricted");
    assert!(set().contains(&pod.address.to_string()), "{}", set());
    t.net.detach("p").await.expect("detach");
    assert!(!set().contains(&pod.address.to_string()), "{}", set());
    drop(outside);
    t.finish().await;
}

fn nft_set(table: &str, set: &str) -> String {
    let o = Command::new("nft")
        .args(["list", "set", "inet", table, set])
        .output()
        .expect("nft");
    String::from_utf8_lossy(&o.stdout).into_owned()
}
