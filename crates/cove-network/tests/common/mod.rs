//! Test harness: a network on its own subnet and data dir, with a drop guard that removes everything even when
//! the test fails, and probes that run sockets inside a pod's namespace.
#![allow(dead_code)]

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cove_network::{NetConfig, Network};
use nix::sched::{setns, CloneFlags};

/// One test's network: subnet 10.200.<n>.0/24 (or `prefix`), data dir under the temp dir.
pub struct TestNet {
    pub net: Network,
    pub data_dir: PathBuf,
    pub subnet: ipnet::Ipv4Net,
    bridge: String,
    table: String,
}

pub fn subnet(n: u8, prefix: u8) -> ipnet::Ipv4Net {
    ipnet::Ipv4Net::new(Ipv4Addr::new(10, 200, n, 0), prefix).expect("valid subnet")
}

pub fn data_dir(n: u8) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cove-net-test-{n}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create data dir");
    dir
}

impl TestNet {
    pub async fn new(n: u8) -> TestNet {
        Self::with_prefix(n, 24).await
    }

    pub async fn with_prefix(n: u8, prefix: u8) -> TestNet {
        let subnet = subnet(n, prefix);
        let data_dir = data_dir(n);
        let net = Network::setup(NetConfig {
            subnet,
            data_dir: data_dir.clone(),
        })
        .await
        .expect("setup");
        TestNet {
            bridge: net.bridge_name().to_string(),
            table: net.firewall_table().to_string(),
            net,
            data_dir,
            subnet,
        }
    }

    /// Detaches everything, tears down, and asserts nothing is left.
    pub async fn finish(self) {
        for id in self.net.list_attached().await {
            self.net.detach(&id).await.expect("detach");
        }
        self.net.teardown().await.expect("teardown");
        assert_clean(&self.bridge, &self.table, &self.data_dir);
    }
}

impl Drop for TestNet {
    /// Best-effort cleanup with command-line tools, for tests that fail half-way. Harmless after `finish`.
    fn drop(&mut self) {
        if let Ok(dir) = std::fs::read_dir(self.data_dir.join("netns")) {
            for entry in dir.flatten() {
                let _ = nix::mount::umount2(&entry.path(), nix::mount::MntFlags::MNT_DETACH);
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.table])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

pub fn table_exists(table: &str) -> bool {
    Command::new("nft")
        .args(["list", "table", "inet", table])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

pub fn nft_table(table: &str) -> String {
    let out = Command::new("nft")
        .args(["list", "table", "inet", table])
        .output()
        .expect("run nft");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn mounts_under(dir: &Path) -> Vec<String> {
    let mounts = std::fs::read_to_string("/proc/mounts").expect("read /proc/mounts");
    let dir = dir.to_string_lossy().into_owned();
    mounts
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|m| m.starts_with(&dir))
        })
        .map(str::to_string)
        .collect()
}

pub fn assert_clean(bridge: &str, table: &str, data_dir: &Path) {
    assert!(!link_exists(bridge), "bridge {bridge} left behind");
    assert!(!table_exists(table), "nft table {table} left behind");
    assert!(
        mounts_under(data_dir).is_empty(),
        "mounts left: {:?}",
        mounts_under(data_dir)
    );
    let files: Vec<_> = std::fs::read_dir(data_dir.join("netns"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(files.is_empty(), "netns files left: {files:?}");
}

/// Runs `f` on a fresh thread that joined the namespace at `netns`; sockets made there stay in that namespace.
pub fn in_netns<T: Send + 'static>(netns: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let file = File::open(netns).expect("open netns file");
    std::thread::spawn(move || {
        setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("netns thread")
}

/// A TCP listener inside the pod, on all its addresses; accepts (and drops) connections in the background.
pub fn listen_in_pod(netns: &Path, port: u16) -> SocketAddr {
    let listener = in_netns(netns, move || {
        TcpListener::bind(("0.0.0.0", port)).expect("bind in pod")
    });
    let addr = listener.local_addr().expect("local addr");
    std::thread::spawn(move || for _ in listener.incoming() {});
    addr
}

/// Tries a TCP connection from inside the pod.
pub fn connect_from_pod(netns: &Path, to: SocketAddr) -> std::io::Result<TcpStream> {
    in_netns(netns, move || {
        TcpStream::connect_timeout(&to, Duration::from_millis(1500))
    })
}

pub fn connect_from_host(to: SocketAddr) -> std::io::Result<TcpStream> {
    TcpStream::connect_timeout(&to, Duration::from_millis(1500))
}
