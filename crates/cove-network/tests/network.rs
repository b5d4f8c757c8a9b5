//! Real network tests (root). Each test has its own subnet 10.200.<n>.0/24 and data dir, so they run in parallel.

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::Instant;

use common::*;
use cove_network::{NetConfig, Network, NetworkError};

#[tokio::test]
async fn two_attachments_get_different_addresses_and_detach_cleans_up() {
    let t = TestNet::new(1).await;
    let a = t.net.attach("a").await.expect("attach a");
    let b = t.net.attach("b").await.expect("attach b");
    assert_ne!(a.address, b.address);
    assert_eq!(a.gateway, Ipv4Addr::new(10, 200, 1, 1));
    assert!(t.subnet.contains(&a.address) && t.subnet.contains(&b.address));
    assert!(link_exists(&a.host_veth) && link_exists(&b.host_veth));
    assert_eq!(t.net.list_attached().await, vec!["a", "b"]);
    assert!(matches!(
        t.net.attach("a").await,
        Err(NetworkError::AlreadyAttached(_))
    ));

    t.net.detach("a").await.expect("detach a");
    t.net.detach("a").await.expect("detach is idempotent");
    t.net
        .detach("never-attached")
        .await
        .expect("detach of unknown id");
    assert!(!link_exists(&a.host_veth), "veth left");
    assert!(!a.netns_path.exists(), "netns file left");
    assert!(mounts_under(&t.data_dir)
        .iter()
        .all(|m| !m.contains("/netns/a ")));
    assert_eq!(t.net.list_attached().await, vec!["b"]);
    t.finish().await;
}

#[tokio::test]
async fn host_reaches_pods_but_pods_reach_neither_each_other_nor_host() {
    let t = TestNet::new(2).await;
    let a = t.net.attach("a").await.expect("attach a");
    let b = t.net.attach("b").await.expect("attach b");
    let b_port = listen_in_pod(&b.netns_path, 0).port();
    let b_addr = SocketAddr::from((b.address, b_port));

    connect_from_host(b_addr).expect("host reaches pod b");
    assert!(
        connect_from_pod(&a.netns_path, b_addr).is_err(),
        "pod a reached pod b"
    );

    let host = TcpListener::bind((t.net.gateway(), 0)).expect("listen on gateway");
    let gw = SocketAddr::from((t.net.gateway(), host.local_addr().expect("addr").port()));
    assert!(
        connect_from_pod(&a.netns_path, gw).is_err(),
        "pod reached the gateway address"
    );
    // still reachable from the host itself: the listener works
    connect_from_host(gw).expect("host reaches its own listener");
    t.finish().await;
}

#[tokio::test]
async fn setup_twice_is_idempotent() {
    let t = TestNet::new(3).await;
    let before = nft_table(t.net.firewall_table());
    let again = Network::setup(NetConfig {
        subnet: t.subnet,
        data_dir: t.data_dir.clone(),
    })
    .await
    .expect("second setup");
    assert_eq!(again.bridge_name(), t.net.bridge_name());
    assert_eq!(nft_table(again.firewall_table()), before, "ruleset changed");
    let p = again.attach("p").await.expect("attach after second setup");
    connect_from_host(listen_in_pod(&p.netns_path, 0))
        .map(|_| ())
        .unwrap_or(());
    let port = listen_in_pod(&p.netns_path, 0).port();
    connect_from_host(SocketAddr::from((p.address, port))).expect("host reaches pod");
    again.detach("p").await.expect("detach");
    t.finish().await;
}

#[tokio::test]
async fn two_networks_coexist_and_teardown_touches_only_its_own() {
    let one = TestNet::new(4).await;
    let two = TestNet::new(5).await;
    assert_ne!(one.net.bridge_name(), two.net.bridge_name());
    assert_ne!(one.net.firewall_table(), two.net.firewall_table());
    let p1 = one.net.attach("same-id").await.expect("attach on one");
    let p2 = two.net.attach("same-id").await.expect("attach on two");
    assert_ne!(p1.host_veth, p2.host_veth);

    one.finish().await;
    assert!(link_exists(two.net.bridge_name()));
    assert!(table_exists(two.net.firewall_table()));
    let port = listen_in_pod(&p2.netns_path, 0).port();
    connect_from_host(SocketAddr::from((p2.address, port))).expect("two still works");
    two.finish().await;
}

#[tokio::test]
async fn firewall_masquerades_the_subnet_and_isolates_the_bridge() {
    let t = TestNet::new(6).await;
    let rules = nft_table(t.net.firewall_table());
    let br = t.net.bridge_name();
    assert!(
        rules.contains(&format!(
            "ip saddr 10.200.6.0/24 oifname != \"{br}\" masquerade"
        )),
        "{rules}"
    );
    assert!(rules.contains(&format!("iifname \"{br}\" drop")), "{rules}");
    assert!(rules.contains("ip daddr 169.254.0.0/16 drop"), "{rules}");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
            .map(|s| s.trim().to_string())
            .ok(),
        Some("1".to_string())
    );
    t.finish().await;
}

#[tokio::test]
async fn restore_after_restart() {
    let t = TestNet::new(7).await;
    let a = t.net.attach("a").await.expect("attach");
    // a "restarted daemon": a fresh Network over the same subnet and data dir
    let net = Network::setup(NetConfig {
        subnet: t.subnet,
        data_dir: t.data_dir.clone(),
    })
    .await
    .expect("setup after restart");
    assert_eq!(net.list_attached().await, vec!["a"]);
    net.restore("a", a.address).await.expect("restore");
    net.restore("a", a.address)
        .await
        .expect("restore is idempotent");
    assert!(matches!(
        net.restore("ghost", Ipv4Addr::new(10, 200, 7, 9)).await,
        Err(NetworkError::NetnsMissing(_))
    ));
    let b = net.attach("b").await.expect("attach b");
    assert_ne!(b.address, a.address);
    let port = listen_in_pod(&a.netns_path, 0).port();
    connect_from_host(SocketAddr::from((a.address, port))).expect("restored pod reachable");
    net.detach("a").await.expect("detach a");
    net.detach("b").await.expect("detach b");
    t.finish().await;
}

#[tokio::test]
async fn failed_attach_leaves_nothing_behind() {
    // a /30 has exactly one pod address
    let t = TestNet::with_prefix(8, 30).await;
    let a = t.net.attach("a").await.expect("attach a");
    assert_eq!(a.address, Ipv4Addr::new(10, 200, 8, 2));
    assert!(matches!(
        t.net.attach("b").await,
        Err(NetworkError::AddressesExhausted { .. })
    ));
    assert!(!t.data_dir.join("netns/b").exists());
    t.net.detach("a").await.expect("detach");

    // a leftover file makes attach fail; the address is freed and no veth stays
    let stale = t.data_dir.join("netns/c");
    std::fs::write(&stale, b"").expect("write stale file");
    assert!(matches!(
        t.net.attach("c").await,
        Err(NetworkError::NetnsExists(_))
    ));
    assert!(
        stale.exists(),
        "attach must not delete a file it did not make"
    );
    std::fs::remove_file(&stale).expect("remove stale");
    let c = t.net.attach("c").await.expect("attach c after the failure");
    assert_eq!(
        c.address, a.address,
        "the address was freed by the failed attach"
    );

    assert!(matches!(
        t.net.attach("../x").await,
        Err(NetworkError::InvalidId(_))
    ));
    t.finish().await;
}

#[tokio::test]
async fn attach_and_detach_are_fast() {
    let t = TestNet::new(9).await;
    let n = 20;
    let (mut attach, mut detach) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    for i in 0..n {
        let id = format!("p{i}");
        let started = Instant::now();
        t.net.attach(&id).await.expect("attach");
        attach += started.elapsed();
        let started = Instant::now();
        t.net.detach(&id).await.expect("detach");
        detach += started.elapsed();
    }
    eprintln!("attach avg {:?}, detach avg {:?}", attach / n, detach / n);
    t.finish().await;
}

#[tokio::test]
async fn concurrent_attaches_get_distinct_addresses_and_working_loopback() {
    let t = TestNet::new(11).await;
    let attaches = (0..8).map(|i| {
        let net = t.net.clone();
        async move { net.attach(&format!("c{i}")).await }
    });
    let got: Vec<_> = futures::future::join_all(attaches)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("all attaches succeed");
    let mut addrs: Vec<_> = got.iter().map(|a| a.address).collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 8);

    // lo is up inside the pod
    let lo_port = listen_in_pod(&got[0].netns_path, 0).port();
    connect_from_pod(
        &got[0].netns_path,
        SocketAddr::from((Ipv4Addr::LOCALHOST, lo_port)),
    )
    .expect("pod loopback works");
    t.finish().await;
}
