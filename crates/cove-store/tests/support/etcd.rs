//! A real 3-member etcd cluster (Debian's `etcd` binary) for tests.
//!
//! Each cluster listens on its own loopback address (127.A.B.C, picked from the test
//! process's id and a counter, checked free) with its own temp data dirs, so clusters of
//! tests running in parallel never meet. Members can be killed and restarted. Dropping the
//! cluster kills every member and removes the data dirs.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct EtcdCluster {
    dir: tempfile::TempDir,
    ip: String,
    members: Vec<Member>,
}

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

impl EtcdCluster {
    /// Starts `n` members and waits until every one reports healthy (a leader exists).
    pub fn start(n: usize) -> EtcdCluster {
        let (ip, ports) = pick_address(n);
        let dir = tempfile::Builder::new()
            .prefix("cove-etcd-test-")
            .tempdir()
            .expect("temp dir");
        let members = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: ports[2 * i],
                peer_port: ports[2 * i + 1],
                child: None,
            })
            .collect();
        let mut cluster = EtcdCluster { dir, ip, members };
        for i in 0..n {
            cluster.spawn(i);
        }
        for i in 0..n {
            cluster.wait_healthy(i);
        }
        cluster
    }

    /// Every member's client URL.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.members.len()).map(|i| self.endpoint(i)).collect()
    }

    pub fn endpoint(&self, i: usize) -> String {
        format!("http://{}:{}", self.ip, self.members[i].client_port)
    }

    pub fn client_addr(&self, i: usize) -> SocketAddr {
        format!("{}:{}", self.ip, self.members[i].client_port)
            .parse()
            .expect("address")
    }

    /// SIGKILLs member `i` (its data dir stays, as after a crash).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts member `i` again from its data dir and waits until it is healthy.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_healthy(i);
    }

    /// Starts member `i` again without waiting (for when it cannot be healthy alone).
    pub fn restart_no_wait(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
    }

    fn spawn(&mut self, i: usize) {
        let cluster: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}=http://{}:{}", m.name, self.ip, m.peer_port))
            .collect();
        let m = &self.members[i];
        let data: PathBuf = self.dir.path().join(&m.name);
        let client = format!("http://{}:{}", self.ip, m.client_port);
        let peer = format!("http://{}:{}", self.ip, m.peer_port);
        let log =
            std::fs::File::create(self.dir.path().join(format!("{}.log", m.name))).expect("log");
        let child = Command::new("etcd")
            .args(["--name", &m.name, "--data-dir"])
            .arg(&data)
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &cluster.join(",")])
            .args(["--initial-cluster-state", "new", "--initial-cluster-token"])
            .arg(format!("cove-test-{}", self.ip))
            // Fast elections so a killed leader is replaced within a second.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args([
                "--logger",
                "zap",
                "--log-level",
                "warn",
                "--enable-v2=false",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect(
                "the etcd binary (Debian package etcd-server; scripts/install-deps.sh installs it)",
            );
        self.members[i].child = Some(child);
    }

    /// Waits (bounded) until member `i` answers /health with a leader.
    pub fn wait_healthy(&self, i: usize) {
        let give_up = Instant::now() + Duration::from_secs(30);
        let addr = self.client_addr(i);
        loop {
            if health(addr) {
                return;
            }
            if Instant::now() > give_up {
                let log = std::fs::read_to_string(self.dir.path().join(format!("m{i}.log")))
                    .unwrap_or_default();
                panic!("etcd member {i} at {addr} not healthy within 30 s; its log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        // The TempDir removes the data dirs and logs.
    }
}

/// GET /health: `{"health":"true"}` once the member sees a leader.
fn health(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.0\r\nHost: etcd\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.contains("\"health\":\"true\"")
}

/// A loopback address no other cluster of this machine's tests uses, and 2n free ports on it.
fn pick_address(n: usize) -> (String, Vec<u16>) {
    let pid = std::process::id();
    for _ in 0..50 {
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let ip = format!(
            "127.{}.{}.{}",
            100 + pid % 100,
            1 + (pid / 100) % 250,
            1 + k % 250
        );
        let ports: Vec<u16> = (0..2 * n as u16).map(|p| 23790 + p).collect();
        let free = ports
            .iter()
            .all(|p| TcpListener::bind(format!("{ip}:{p}")).is_ok());
        if free {
            return (ip, ports);
        }
    }
    panic!("no free loopback address for an etcd cluster");
}
