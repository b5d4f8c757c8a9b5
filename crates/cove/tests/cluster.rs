//! Many hosts on one machine through `scripts/cluster-demo.sh` (the harness in
//! `common/cluster.rs`): every host's daemon in its own network namespace serves its pods from
//! the root namespace, its pods' egress is NATed through the host's veth, the hosts reach each
//! other and etcd, the etcd cluster is healthy, and `down` leaves nothing, also of a host whose
//! daemon was killed. Bad settings and a failed `up` leave nothing either. As root:
//! `cargo test -p cove --test cluster -- --test-threads 2`.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

#[test]
fn every_host_serves_from_its_namespace_and_down_leaves_nothing() {
    let mut c = Cluster::up(3);
    assert_eq!(c.nodes.len(), 3, "{:?}", c.nodes);
    assert_eq!(c.etcd_endpoints.len(), 3, "{:?}", c.etcd_endpoints);
    for n in &c.nodes {
        assert!(
            n.runs_in_its_netns(),
            "{} (pid {}) is not in {}",
            n.name,
            n.pid,
            n.netns
        );
        let own = std::fs::read_to_string(n.data_dir.join("token")).unwrap();
        assert_eq!(
            own.trim(),
            c.nodes[0].token,
            "{} has another admin token",
            n.name
        );
        let api = n.api.trim_start_matches("http://");
        let r = http_get(api, api, "/v1/health").expect("API from the root namespace");
        assert_eq!((r.status, r.body.trim()), (200, "ok"), "{}", n.name);
    }

    // etcd: three healthy members, reached from the root namespace and from every host.
    let health = ok(&c.etcdctl(&["endpoint", "health", "--write-out", "json"]));
    assert_eq!(health.matches(r#""health":true"#).count(), 3, "{health}");
    let members = ok(&c.etcdctl(&["member", "list"]));
    assert_eq!(
        members.lines().filter(|l| l.contains("started")).count(),
        3,
        "{members}"
    );
    for e in &c.etcd_endpoints {
        let addr = e.trim_start_matches("http://");
        let r = http_get(addr, addr, "/health").expect("etcd /health");
        assert!(
            r.status == 200 && r.body.contains(r#""health":"true""#),
            "{e}: {r:?}"
        );
    }
    for (i, n) in c.nodes.iter().enumerate() {
        let next = &c.nodes[(i + 1) % c.nodes.len()];
        let etcd = &c.etcd_endpoints[i % 3];
        for url in [format!("{}/v1/health", next.api), format!("{etcd}/health")] {
            let o = in_netns(&n.netns, &["curl", "-fsS", "--max-time", "5", &url]);
            assert!(
                o.status.success(),
                "{} cannot reach {url}: {}",
                n.name,
                stderr(&o)
            );
        }
    }

    // A pod on every host, served through that host's gateway from the root namespace; its
    // egress reaches the root namespace's bridge address as the host's own address (NAT).
    let image = import_test_image(&c);
    let target = EgressTarget::start(&format!("{}.1", c.net));
    for n in &c.nodes {
        let pod = n.run_pod(&[
            "--image",
            &image,
            "--ports",
            "8000",
            "--keep-warm-seconds",
            "-1",
        ]);
        c.note_id(&pod.id);
        let r = wait_until(
            &format!("{}'s pod served through its gateway", n.name),
            Duration::from_secs(30),
            || n.get(&pod, 8000, "/").ok().filter(|r| r.status == 200),
        );
        assert!(r.body.contains("Hello from a Cove pod"), "{r:?}");
        let pod_addr = pod.address.clone().expect("pod address");
        assert!(
            !pod_addr.starts_with(&format!("{}.", c.net)),
            "{pod_addr} is on the bridge"
        );
        let out = ok(&n.cli(&[
            "container",
            "exec",
            &pod.id,
            "--",
            "wget",
            "-q",
            "-O",
            "-",
            &target.url,
        ]));
        assert!(out.contains(&target.body), "{}: {out}", n.name);
        assert_eq!(
            target.last_peer().as_deref(),
            Some(n.address.as_str()),
            "{}: not NATed",
            n.name
        );
    }

    // A second `up` on the same state dir is refused and leaves the running cluster alone.
    let again = c.script(&["up", "2"]);
    one_line_error(&again, "already up");
    let status = ok(&c.script(&["status"]));
    for n in &c.nodes {
        assert!(
            status.contains(&format!("node {} api={}", n.name, n.api)),
            "{status}"
        );
        assert!(status.contains(&format!("pid={}", n.pid)), "{status}");
        assert!(n.runs_in_its_netns(), "{} after the refused up", n.name);
    }

    // Before `down`: once the bridge is gone, its address would be routed off this machine.
    drop(target);
    // A host whose daemon died (its pod still runs, under its shim) is cleaned up by force.
    let b = &c.nodes[1];
    // SAFETY: plain kill(2) of the daemon this cluster started.
    assert_eq!(unsafe { libc::kill(b.pid as i32, libc::SIGKILL) }, 0);
    wait_until("host-b's daemon gone", Duration::from_secs(10), || {
        (!std::path::Path::new(&format!("/proc/{}/cmdline", b.pid)).exists()
            || std::fs::read(format!("/proc/{}/cmdline", b.pid)).is_ok_and(|c| c.is_empty()))
        .then_some(())
    });
    let out = c.down();
    assert!(out.contains("nothing left"), "{out}");
    let left = c.leftovers();
    assert!(left.is_empty(), "left after down: {left:#?}");
}

#[test]
fn bad_settings_are_one_line_errors_and_make_nothing() {
    let c = Cluster::new(3);
    // (arguments, environment, what the one error line must say)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (&["up", "0"], &[], "host count must be 1-26"),
        (&["up", "27"], &[], "host count must be 1-26"),
        (&["up", "three"], &[], "host count must be 1-26"),
        (
            &["up"],
            &[("COVE_CLUSTER_PREFIX", "Bad-Prefix")],
            "COVE_CLUSTER_PREFIX",
        ),
        (
            &["up"],
            &[("COVE_CLUSTER_NET", "10.300.0")],
            "COVE_CLUSTER_NET",
        ),
        (
            &["up"],
            &[("COVE_CLUSTER_POD_NETS", "10.1.1 10.1.2")],
            "names 2 /24s for 3 hosts",
        ),
        (
            &["up"],
            &[("COVE_CLUSTER_POD_NETS", "10.1.1 10.1.2 10.1.1")],
            "repeats a /24",
        ),
        (
            &["up"],
            &[("COVE_CLUSTER_ETCD_PORT", "70000")],
            "COVE_CLUSTER_ETCD_PORT",
        ),
        (
            &["up"],
            &[("COVE_CLUSTER_API_PORT", "8080")],
            "are both 8080",
        ),
        (&["up"], &[("COVE_BIN", "/nonexistent/cove")], "COVE_BIN"),
        (&["restart"], &[], "usage"),
        (&["status"], &[], "no cluster"),
    ];
    for (args, env, needle) in cases {
        let o = c
            .script_command(args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        one_line_error(&o, needle);
        assert!(!c.dir.exists(), "{args:?} {env:?} made {}", c.dir.display());
    }
    let o = c.script(&["down"]);
    assert!(
        o.status.success() && stdout(&o).contains("no cluster"),
        "{o:?}"
    );
    let left = c.leftovers();
    assert!(left.is_empty(), "{left:#?}");
}

#[test]
fn a_failed_up_removes_everything_it_made() {
    let mut c = Cluster::new(2);
    // The bridge, namespaces, veths and etcd are made before the daemons fail to start.
    c.server_args.push("--no-such-flag".into());
    let o = c.script(&["up", "2"]);
    assert!(
        !o.status.success(),
        "up with a bad daemon flag succeeded: {o:?}"
    );
    let err = stderr(&o);
    assert!(err.contains("cove server on host-a exited"), "{err}");
    assert!(err.contains("up failed; removing what it made"), "{err}");
    assert!(err.contains("nothing left"), "{err}");
    let left = c.leftovers();
    assert!(left.is_empty(), "left after a failed up: {left:#?}");
}

/// Asserts `o` failed with one non-empty stderr line containing `needle`.
#[track_caller]
fn one_line_error(o: &Output, needle: &str) {
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!o.status.success(), "should have failed: {o:?}");
    assert_eq!(lines.len(), 1, "want one error line: {err}");
    assert!(
        lines[0].contains(needle),
        "want {needle:?} in: {}",
        lines[0]
    );
}

fn in_netns(ns: &str, cmd: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(cmd)
        .output()
        .expect("ip netns exec")
}

/// The test image, imported (the hosts reach no registry on loopback) on every host.
fn import_test_image(c: &Cluster) -> String {
    let reference = "cove.test/busybox:cluster";
    let work = scratch_dir("cove-cluster-image");
    let single = work.join("single");
    ok(&Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:latest", test_image_layout().display()))
        .arg(format!("oci:{}:cluster", single.display()))
        .output()
        .unwrap());
    for n in &c.nodes {
        let out = ok(&n.cli(&[
            "image",
            "import",
            single.to_str().unwrap(),
            "--reference",
            reference,
        ]));
        assert!(out.contains(reference), "{}: {out}", n.name);
    }
    reference.to_string()
}

/// An HTTP server in the root namespace on the cluster bridge's address, recording who called.
struct EgressTarget {
    url: String,
    body: String,
    peers: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

impl EgressTarget {
    fn start(ip: &str) -> Self {
        let listener = TcpListener::bind((ip, 0)).expect("binding on the bridge address");
        let addr = listener.local_addr().unwrap();
        let body = format!("egress-ok-{}", addr.port());
        let peers = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        std::thread::spawn({
            let (peers, stop, body) = (peers.clone(), stop.clone(), body.clone());
            move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(mut s) = conn else { continue };
                    if let Ok(peer) = s.peer_addr() {
                        peers.lock().unwrap().push(peer.ip().to_string());
                    }
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf);
                    let _ = write!(
                        s,
                        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                }
            }
        });
        EgressTarget {
            url: format!("http://{addr}/"),
            body,
            peers,
            stop,
            addr,
        }
    }

    fn last_peer(&self) -> Option<String> {
        self.peers.lock().unwrap().last().cloned()
    }
}

impl Drop for EgressTarget {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees `stop` and drops the listener.
        let _ = std::net::TcpStream::connect(self.addr);
    }
}
