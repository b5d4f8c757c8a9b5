//! Many Cove hosts on this machine, brought up and removed by `scripts/cluster-demo.sh` (the
//! mechanism a user runs): each host a `cove server` in its own network namespace with its own
//! data dir and pod /24, the hosts on a bridge of their own, a real 3-member etcd cluster on the
//! bridge's root address. A [`Cluster`] leases its bridge /24 and its pods' /24s like a
//! [`Daemon`] does and names its links and namespaces after the bridge's /24, so clusters run
//! in parallel with each other and with single-host tests. Its `Drop` runs `down` and checks,
//! independently of the script, that nothing is left.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use super::*;

/// One host of a [`Cluster`], as `cluster-demo.sh up` printed it.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    /// `http://<address>:<port>`.
    pub api: String,
    /// `http://<address>:<port>`.
    pub gateway: String,
    pub netns: String,
    pub pid: u32,
    pub token_file: PathBuf,
    pub token: String,
    /// The host's address on the cluster bridge.
    pub address: String,
    pub data_dir: PathBuf,
}

/// Hosts in network namespaces plus etcd, up until dropped.
pub struct Cluster {
    /// `COVE_CLUSTER_DIR`: all of the cluster's state.
    pub dir: PathBuf,
    /// Names of its namespaces and links start with `<prefix>-`.
    pub prefix: String,
    /// The bridge's /24 as `a.b.c`; the root namespace has `a.b.c.1`.
    pub net: String,
    pub nodes: Vec<Node>,
    pub etcd_endpoints: Vec<String>,
    etcd_port: u16,
    pod_nets: Vec<String>,
    /// More `cove server` arguments (`COVE_CLUSTER_SERVER_ARGS`).
    pub server_args: Vec<String>,
    /// Container ids seen, for the cgroup check.
    ids: Mutex<Vec<String>>,
    is_up: bool,
    _leases: Vec<SubnetLease>,
}

impl Cluster {
    /// `cluster-demo.sh up <hosts>` with this cluster's own subnets, names and ports.
    pub fn up(hosts: usize) -> Cluster {
        let mut c = Cluster::new(hosts);
        let o = c.script(&["up", &hosts.to_string()]);
        assert!(
            o.status.success(),
            "cluster-demo.sh up failed: {}",
            out_str(&o)
        );
        c.is_up = true;
        c.parse(&stdout(&o));
        c
    }

    /// The settings of a cluster of `hosts`, nothing started.
    pub fn new(hosts: usize) -> Cluster {
        let leases: Vec<SubnetLease> = (0..=hosts).map(|_| SubnetLease::take()).collect();
        let net = leases[0].prefix.clone();
        let octets: Vec<u8> = net.split('.').map(|o| o.parse().unwrap()).collect();
        // A fresh path the script makes itself: bad settings must leave no directory.
        let dir = tempdir("cove-cluster");
        std::fs::remove_dir(&dir).unwrap();
        Cluster {
            dir,
            prefix: format!("c{:02x}{:02x}", octets[1], octets[2]),
            net,
            nodes: Vec::new(),
            etcd_endpoints: Vec::new(),
            // Six ports below the ephemeral range, on the bridge's own address.
            etcd_port: 20000 + 6 * (free_port() % 1600),
            pod_nets: leases[1..].iter().map(|l| l.prefix.clone()).collect(),
            server_args: vec!["--stop-grace-seconds".into(), "2".into()],
            ids: Mutex::new(Vec::new()),
            is_up: false,
            _leases: leases,
        }
    }

    /// `bash scripts/cluster-demo.sh <args>` with this cluster's environment.
    pub fn script(&self, args: &[&str]) -> Output {
        self.script_command(args)
            .output()
            .expect("running cluster-demo.sh")
    }

    /// The `Command` behind [`Cluster::script`], to change its environment.
    pub fn script_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(scripts_dir().join("cluster-demo.sh"))
            .args(args)
            .env("COVE_BIN", COVE)
            .env("COVE_CLUSTER_DIR", &self.dir)
            .env("COVE_CLUSTER_PREFIX", &self.prefix)
            .env("COVE_CLUSTER_NET", &self.net)
            .env("COVE_CLUSTER_POD_NETS", self.pod_nets.join(" "))
            .env("COVE_CLUSTER_ETCD_PORT", self.etcd_port.to_string())
            .env("COVE_CLUSTER_SERVER_ARGS", self.server_args.join(" "))
            .env_remove("COVE_API_URL")
            .env_remove("COVE_TOKEN")
            .stdin(Stdio::null());
        cmd
    }

    fn parse(&mut self, out: &str) {
        for line in out.lines() {
            let mut words = line.split_whitespace();
            let kind = words.next();
            let first = words.next().unwrap_or_default();
            let kv = |key: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(&format!("{key}=")).map(str::to_string))
                    .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
            };
            match kind {
                Some("node") => {
                    let api = kv("api");
                    let address = api
                        .trim_start_matches("http://")
                        .split(':')
                        .next()
                        .unwrap()
                        .to_string();
                    let token_file = PathBuf::from(kv("token"));
                    let token = std::fs::read_to_string(&token_file)
                        .unwrap_or_else(|e| panic!("token file {}: {e}", token_file.display()));
                    self.nodes.push(Node {
                        name: first.to_string(),
                        data_dir: self.dir.join("hosts").join(first).join("data"),
                        api,
                        gateway: kv("gateway"),
                        netns: kv("netns"),
                        pid: kv("pid").parse().expect("pid"),
                        token: token.trim().to_string(),
                        token_file,
                        address,
                    });
                }
                Some("etcd") => {
                    self.etcd_endpoints = kv("endpoints").split(',').map(str::to_string).collect()
                }
                _ => panic!("unexpected line from cluster-demo.sh up: {line:?}"),
            }
        }
    }

    /// `cluster-demo.sh down`, asserting success; returns its stdout.
    #[track_caller]
    pub fn down(&mut self) -> String {
        let o = self.script(&["down"]);
        self.is_up = false;
        ok(&o)
    }

    /// `etcdctl endpoint health` over every member.
    pub fn etcdctl(&self, args: &[&str]) -> Output {
        Command::new("etcdctl")
            .arg("--endpoints")
            .arg(self.etcd_endpoints.join(","))
            .args(["--dial-timeout", "2s", "--command-timeout", "5s"])
            .args(args)
            .env("ETCDCTL_API", "3")
            .output()
            .expect("running etcdctl")
    }

    /// Remembers a container id, so `Drop` can look for its cgroups.
    pub fn note_id(&self, id: &str) {
        self.ids.lock().unwrap().push(id.to_string());
    }

    /// What of this cluster is still on the machine, looked for without the script.
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        let dir = self.dir.to_string_lossy().into_owned();
        if self.dir.exists() {
            left.push(format!("state dir {dir}"));
        }
        for n in &self.nodes {
            if cmdline(n.pid).is_some_and(|c| c.contains(&*n.data_dir.to_string_lossy())) {
                left.push(format!("daemon of {} (pid {})", n.name, n.pid));
            }
        }
        for ns in stdout(&sh("ip netns list")).lines() {
            if ns.starts_with(&format!("{}-", self.prefix)) {
                left.push(format!("network namespace {ns}"));
            }
        }
        for link in stdout(&sh("ip -o link show")).lines() {
            let name = link.split(": ").nth(1).unwrap_or_default();
            if name.starts_with(&format!("{}-", self.prefix)) {
                left.push(format!("link {name}"));
            }
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for m in mounts.lines().filter_map(|l| l.split(' ').nth(4)) {
            if m.starts_with(&dir) {
                left.push(format!("mount {m}"));
            }
        }
        for l in stdout(&sh("losetup -n -l -O NAME,BACK-FILE")).lines() {
            if l.contains(&dir) {
                left.push(format!("loop device {l}"));
            }
        }
        for (pid, cmd) in processes() {
            if cmd.contains(&dir) {
                left.push(format!(
                    "process {pid}: {}",
                    cmd.chars().take(120).collect::<String>()
                ));
            }
        }
        let route = format!("{}.0/24 ", self.net);
        if stdout(&sh("ip -4 route show"))
            .lines()
            .any(|l| l.starts_with(&route))
        {
            left.push(format!("route to {}.0/24", self.net));
        }
        for n in &self.nodes {
            for cg in cgroup_parents(&n.data_dir.to_string_lossy()) {
                left.push(format!("cgroup parent {}", cg.display()));
            }
        }
        for id in self.ids.lock().unwrap().iter() {
            for cg in Daemon::cgroups_of(id) {
                left.push(format!("cgroup {}", cg.display()));
            }
        }
        left
    }
}

impl Node {
    /// `cove <args>` against this host's API with the cluster's admin token.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(COVE)
            .args(args)
            .env("COVE_API_URL", &self.api)
            .env("COVE_TOKEN", &self.token)
            .env_remove("COVE_LOG")
            .stdin(Stdio::null())
            .output()
            .expect("running cove")
    }

    /// `cove run <args> --format json` on this host, asserting success.
    #[track_caller]
    pub fn run_pod(&self, args: &[&str]) -> Container {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--format", "json"]);
        let out = ok(&self.cli(&all));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("cove run --format json: {e}: {out}"))
    }

    /// `<address>:<port>` of the gateway.
    pub fn gw(&self) -> String {
        self.gateway.trim_start_matches("http://").to_string()
    }

    /// GET through this host's gateway with the pod's Host header, from the root namespace.
    pub fn get(&self, c: &Container, port: u16, path: &str) -> std::io::Result<Response> {
        http_get(&self.gw(), &Daemon::host_for(c, port), path)
    }

    /// Whether the daemon's network namespace is `netns` (and not the caller's).
    pub fn runs_in_its_netns(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let ino = |p: String| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
        let daemon = ino(format!("/proc/{}/ns/net", self.pid));
        daemon.is_some()
            && daemon == ino(format!("/run/netns/{}", self.netns))
            && daemon != ino("/proc/self/ns/net".into())
    }
}

/// The daemon's cgroup parent (`cove-<FNV-1a of the data dir>`, as `cove server` names it) in
/// every hierarchy where it exists.
fn cgroup_parents(data_dir: &str) -> Vec<PathBuf> {
    let h = data_dir.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    let name = format!("cove-{:08x}", h as u32);
    let root = std::path::Path::new("/sys/fs/cgroup");
    let mut dirs = vec![root.join(&name)];
    if let Ok(rd) = std::fs::read_dir(root) {
        dirs.extend(rd.flatten().map(|e| e.path().join(&name)));
    }
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}

fn processes() -> Vec<(u32, String)> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, cmdline(pid)?)))
        .collect()
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut problems = Vec::new();
        if self.is_up || self.dir.join("cluster.env").exists() {
            let o = self.script(&["down"]);
            if !o.status.success() {
                problems.push(format!("cluster-demo.sh down failed: {}", out_str(&o)));
            }
        }
        problems.extend(self.leftovers());
        if !problems.is_empty() {
            let msg = format!(
                "left behind by the cluster in {}:\n  {}",
                self.dir.display(),
                problems.join("\n  ")
            );
            if std::thread::panicking() {
                eprintln!("{msg}");
            } else {
                panic!("{msg}");
            }
        }
    }
}
