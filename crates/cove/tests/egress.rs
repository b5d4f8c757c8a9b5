//! Egress policies: open, `--block-network`, `--allow CIDR`, changed on a running pod, kept across a
//! kill -9 and restart, and refused when malformed.
//!
//! The outside world is a network namespace of the test's own, linked to the host by a veth pair on a
//! /24 of its own (leased like the daemons' subnets), with busybox httpd answering on two addresses.
mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

const LONG: Duration = Duration::from_secs(60);

/// The test's "internet": a netns at `<prefix>.2` and `<prefix>.3`, reached from the host through
/// `<prefix>.1`; httpd on port 8080 answers `outside`. Everything is removed on drop.
struct Outside {
    netns: String,
    host_end: String,
    httpd: Option<Child>,
    lease: SubnetLease,
    _www: TempDir,
}

fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().expect("running ip");
    assert!(o.status.success(), "ip {args:?}: {}", stderr(&o));
}

impl Outside {
    fn new() -> Outside {
        let lease = SubnetLease::take();
        let tag: String = lease
            .prefix
            .split('.')
            .skip(1)
            .map(|n| format!("{:02x}", n.parse::<u8>().unwrap()))
            .collect();
        let www = scratch_dir("cove-egress-www");
        std::fs::write(www.join("index.html"), "outside\n").unwrap();
        let mut o = Outside {
            netns: format!("cove-egress-{tag}"),
            host_end: format!("cveo{tag}"),
            httpd: None,
            lease,
            _www: www,
        };
        let p = o.lease.prefix.clone();
        ip(&["netns", "add", &o.netns]);
        ip(&[
            "link",
            "add",
            &o.host_end,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &o.netns,
        ]);
        ip(&["addr", "add", &format!("{p}.1/24"), "dev", &o.host_end]);
        ip(&["link", "set", &o.host_end, "up"]);
        for a in [2, 3] {
            ip(&[
                "-n",
                &o.netns,
                "addr",
                "add",
                &format!("{p}.{a}/24"),
                "dev",
                "eth0",
            ]);
        }
        // A link-local address outside too (like a cloud metadata service), routed from the host.
        let ll = o.link_local();
        ip(&[
            "-n",
            &o.netns,
            "addr",
            "add",
            &format!("{ll}/32"),
            "dev",
            "eth0",
        ]);
        ip(&["route", "add", &format!("{ll}/32"), "dev", &o.host_end]);
        ip(&["-n", &o.netns, "link", "set", "eth0", "up"]);
        ip(&["-n", &o.netns, "link", "set", "lo", "up"]);
        let httpd = Command::new("ip")
            .args([
                "netns", "exec", &o.netns, "busybox", "httpd", "-f", "-p", "8080", "-h",
            ])
            .arg(&*o._www)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting httpd in the outside netns");
        o.httpd = Some(httpd);
        wait_until("the outside httpd to answer", LONG, || {
            let addr = format!("{}.2:8080", o.lease.prefix);
            let r = http_get(&addr, "outside", "/").ok()?;
            (r.status == 200 && r.body == "outside\n").then_some(())
        });
        o
    }

    /// `169.254.<a>.<b>` for the leased `10.<a>.<b>.0/24`: unique like the lease.
    fn link_local(&self) -> String {
        format!("169.254.{}", self.lease.prefix.trim_start_matches("10."))
    }

    /// `http://<prefix>.<host>:8080/`.
    fn url(&self, host: u8) -> String {
        format!("http://{}.{host}:8080/", self.lease.prefix)
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        if let Some(mut c) = self.httpd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_end])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .output();
    }
}

/// Whether container `id` can fetch `url` (busybox wget inside it, at most 10 s; busybox 1.35's own
/// `wget -T` crashes).
fn fetches(d: &Daemon, id: &str, url: &str) -> bool {
    let o = d.cli(&[
        "container",
        "exec",
        id,
        "--",
        "timeout",
        "10",
        "wget",
        "-q",
        "-O",
        "-",
        url,
    ]);
    if o.status.success() {
        assert_eq!(stdout(&o), "outside\n", "unexpected answer from {url}");
    }
    o.status.success()
}

/// A long-running pod that serves `/www` on port 8000, with extra `cove run` flags.
fn pod(d: &Daemon, extra: &[&str]) -> Container {
    let img = registry().image("latest");
    let mut args = vec![
        "--image",
        &img,
        "--ports",
        "8000",
        "--keep-warm-seconds",
        "-1",
    ];
    args.extend_from_slice(extra);
    let c = d.run_pod(&args);
    d.wait_serving(&c, 8000, "/");
    c
}

/// `cove container egress <id> <args>`, asserting success; returns its output line.
fn set_egress(d: &Daemon, id: &str, args: &[&str]) -> String {
    let mut all = vec!["container", "egress", id];
    all.extend_from_slice(args);
    ok(&d.cli(&all)).trim().to_string()
}

/// The elements of the daemon's `egress_restricted` set (pod addresses), as `nft` prints them.
fn restricted_set(d: &Daemon) -> String {
    let br = d.bridge().expect("bridge");
    let table = format!("cove_{}", br.trim_start_matches("cove"));
    let o = Command::new("nft")
        .args(["list", "set", "inet", &table, "egress_restricted"])
        .output()
        .unwrap();
    let text = stdout(&o);
    text.split_once("elements = {")
        .map(|(_, rest)| rest.split('}').next().unwrap_or("").trim().to_string())
        .unwrap_or_default()
}

/// A raw `PUT /v1/containers/{id}/egress`; returns the status and body.
fn put_egress(d: &Daemon, id: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", d.api_port)).unwrap();
    write!(
        s,
        "PUT /v1/containers/{id}/egress HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        d.token,
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_string())
}

#[test]
fn open_blocked_and_allow_listed_pods() {
    let d = Daemon::start();
    let out = Outside::new();

    let open = pod(&d, &[]);
    assert!(
        !open.block_network && open.allow_list.is_empty(),
        "{open:?}"
    );
    assert!(
        fetches(&d, &open.id, &out.url(2)),
        "an open pod reaches outside"
    );

    let blocked = pod(&d, &["--block-network"]);
    assert!(blocked.block_network, "{blocked:?}");
    assert!(
        !fetches(&d, &blocked.id, &out.url(2)),
        "a blocked pod reached outside"
    );
    // Still served through the gateway.
    assert_eq!(d.get(&blocked, 8000, "/").status, 200);
    assert!(d.inspect(&blocked.id).block_network);

    let target = format!("{}.2/32", out.lease.prefix);
    let listed = pod(&d, &["--allow", &target, "--allow", "192.0.2.0/24"]);
    assert_eq!(listed.allow_list, [target.as_str(), "192.0.2.0/24"]);
    assert!(fetches(&d, &listed.id, &out.url(2)), "the allowed address");
    assert!(
        !fetches(&d, &listed.id, &out.url(3)),
        "another address of the same host"
    );
    assert_eq!(d.get(&listed, 8000, "/").status, 200);

    // An allow list of everything still keeps the host and link-local out of reach.
    let host = TcpListener::bind("0.0.0.0:0").unwrap();
    let host_port = host.local_addr().unwrap().port();
    let everything = pod(&d, &["--allow", "0.0.0.0/0"]);
    assert!(fetches(&d, &everything.id, &out.url(3)));
    let nc = |to: &str, port: u16| {
        let port = port.to_string();
        d.cli(&[
            "container",
            "exec",
            &everything.id,
            "--",
            "nc",
            "-w",
            "3",
            to,
            &port,
        ])
        .status
        .success()
    };
    assert!(
        nc(&format!("{}.2", out.lease.prefix), 8080),
        "nc reaches outside"
    );
    for host_ip in [
        format!("{}.1", out.lease.prefix),
        format!("{}.1", d.subnet.prefix),
    ] {
        assert!(
            !nc(&host_ip, host_port),
            "pod reached the host at {host_ip}"
        );
    }
    let ll = format!("{}:8080", out.link_local());
    assert_eq!(
        http_get(&ll, "outside", "/").unwrap().status,
        200,
        "the host reaches {ll}"
    );
    assert!(
        !fetches(&d, &everything.id, &format!("http://{ll}/")),
        "pod reached link-local"
    );

    // Stopping a restricted pod removes its rules; the open ones never had any.
    let before = restricted_set(&d);
    let addr = blocked.address.clone().unwrap();
    assert!(before.contains(&addr), "{before}");
    ok(&d.cli(&["container", "stop", &blocked.id]));
    let after = restricted_set(&d);
    assert!(!after.contains(&addr), "{after}");
    assert!(!after.contains(open.address.as_deref().unwrap()), "{after}");
}

#[test]
fn a_running_pods_egress_changes_without_a_restart() {
    let d = Daemon::start();
    let out = Outside::new();
    let c = pod(&d, &[]);
    assert!(fetches(&d, &c.id, &out.url(2)));

    assert_eq!(
        set_egress(&d, &c.id, &["--block"]),
        format!("Egress of {}: blocked", c.id)
    );
    assert!(
        !fetches(&d, &c.id, &out.url(2)),
        "still reached outside after --block"
    );
    assert_eq!(d.get(&c, 8000, "/").status, 200);

    let only3 = format!("{}.3/32", out.lease.prefix);
    set_egress(&d, &c.id, &["--allow", &only3]);
    assert!(!fetches(&d, &c.id, &out.url(2)));
    assert!(fetches(&d, &c.id, &out.url(3)));
    assert_eq!(d.inspect(&c.id).allow_list, [only3.as_str()]);

    assert_eq!(
        set_egress(&d, &c.id, &["--open"]),
        format!("Egress of {}: open", c.id)
    );
    assert!(fetches(&d, &c.id, &out.url(2)), "open again");
    let now = d.inspect(&c.id);
    assert_eq!(now.status, ContainerStatus::Running);
    assert_eq!(
        now.started_at, c.started_at,
        "the container was not restarted"
    );
    assert!(!now.block_network && now.allow_list.is_empty());
}

#[test]
fn bad_policies_are_refused_and_leave_nothing() {
    let d = Daemon::start();
    let img = registry().image("latest");
    let cases: [(&[&str], &str); 4] = [
        (
            &["--block-network", "--allow", "1.2.3.4/32"],
            "cannot be used together",
        ),
        (&["--allow", "10.0.0.1/8"], "host bits set"),
        (&["--allow", "example.com"], "is not a CIDR"),
        (&["--allow", "10.0.0.0/33"], "is not a CIDR"),
    ];
    for (flags, needle) in cases {
        let mut args = vec!["run", "--image", &img, "--ports", "8000"];
        args.extend_from_slice(flags);
        failed_with(&d.cli(&args), &[needle]);
    }
    let too_many: Vec<String> = (0..257)
        .map(|i| format!("10.{}.{}.0/24", 1 + i / 256, i % 256))
        .collect();
    let mut args = vec!["run", "--image", &img];
    for c in &too_many {
        args.extend_from_slice(&["--allow", c]);
    }
    failed_with(&d.cli(&args), &["at most 256"]);
    assert!(d.list(true).is_empty(), "a refused pod left a row");
    assert_eq!(d.veths(), Vec::<String>::new());
    assert_eq!(restricted_set(&d), "");

    // The live change: bad input is a one-line 400 and the policy stays as it was.
    let c = pod(&d, &["--block-network"]);
    let (status, body) = put_egress(
        &d,
        &c.id,
        r#"{"block_network":true,"allow_list":["1.2.3.4/32"]}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("cannot be used together") && !body.contains('\n'),
        "{body}"
    );
    let (status, body) = put_egress(&d, &c.id, r#"{"allow_list":["300.1.1.1/32"]}"#);
    assert_eq!(status, 400, "{body}");
    let (status, _) = put_egress(&d, &c.id, r#"{"allow":["1.2.3.4/32"]}"#);
    assert!((400..500).contains(&status), "unknown fields are refused");
    assert!(
        d.inspect(&c.id).block_network,
        "a refused change changed the policy"
    );
    assert!(restricted_set(&d).contains(c.address.as_deref().unwrap()));

    let api = format!("127.0.0.1:{}", d.api_port);
    let doc = http_get(&api, "127.0.0.1", "/v1/openapi.json")
        .unwrap()
        .body;
    assert!(
        doc.contains("/v1/containers/{id}/egress") && doc.contains("EgressRequest"),
        "the OpenAPI document lists the egress route"
    );

    let (status, body) = put_egress(&d, "pod-nope", r#"{"block_network":true}"#);
    assert_eq!(status, 404, "{body}");
    failed_with(
        &d.cli(&["container", "egress", "pod-nope", "--block"]),
        &["no container"],
    );
    ok(&d.cli(&["container", "stop", &c.id]));
    let (status, body) = put_egress(&d, &c.id, r#"{"block_network":true}"#);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("not running"), "{body}");
    assert_eq!(restricted_set(&d), "");
}

#[test]
fn egress_rules_survive_kill_9_and_restart() {
    let mut d = Daemon::start();
    let out = Outside::new();
    let blocked = pod(&d, &["--block-network"]);
    // Changed live before the crash: the change must have been persisted.
    let changed = pod(&d, &[]);
    set_egress(&d, &changed.id, &["--block"]);
    let open = pod(&d, &[]);
    assert!(!fetches(&d, &blocked.id, &out.url(2)));

    d.kill9();
    d.restart();
    assert_eq!(d.inspect(&blocked.id).status, ContainerStatus::Running);
    assert!(
        !fetches(&d, &blocked.id, &out.url(2)),
        "blocked pod reached outside after a restart"
    );
    assert!(
        !fetches(&d, &changed.id, &out.url(2)),
        "a live change was lost in the restart"
    );
    assert!(d.inspect(&changed.id).block_network);
    assert!(fetches(&d, &open.id, &out.url(2)));
    assert_eq!(d.get(&blocked, 8000, "/").status, 200);
    // The re-adopted pod's policy can still be changed and removed.
    set_egress(&d, &blocked.id, &["--open"]);
    assert!(fetches(&d, &blocked.id, &out.url(2)));
    ok(&d.cli(&["container", "stop", &changed.id]));
    assert_eq!(restricted_set(&d), "");
}

/// A restricted pod whose network cannot be restored after a restart (its netns file vanished while the
/// daemon was down) must end, not keep running with its address out of the egress sets (open egress).
#[test]
fn a_pod_whose_network_is_lost_in_a_restart_ends() {
    let mut d = Daemon::start();
    let blocked = pod(&d, &["--block-network"]);
    let addr = blocked.address.clone().unwrap();
    assert!(restricted_set(&d).contains(&addr));

    d.kill9();
    let netns = d.data_dir.join("netns").join(&blocked.id);
    let o = Command::new("umount")
        .arg("-l")
        .arg(&netns)
        .output()
        .unwrap();
    assert!(o.status.success(), "umount: {o:?}");
    std::fs::remove_file(&netns).unwrap();
    d.restart();

    let c = d.wait_status(&blocked.id, ContainerStatus::Failed, LONG);
    let reason = c.reason.unwrap_or_default();
    assert!(reason.contains("network could not be restored"), "{reason}");
    let o = Command::new("runc")
        .arg("--root")
        .arg(d.data_dir.join("runc"))
        .args(["state", &blocked.id])
        .output()
        .unwrap();
    assert!(!o.status.success(), "runc still knows the pod: {o:?}");
    assert_eq!(d.leftovers_of(&blocked.id), Vec::<String>::new());
    // It was the daemon's only pod.
    assert_eq!(d.veths(), Vec::<String>::new());
    assert_eq!(restricted_set(&d), "");
}

#[test]
fn a_deployments_next_container_keeps_its_egress() {
    let d = Daemon::start();
    let out = Outside::new();
    let file = d.root.join("egress-web.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"egress-web\"\nimage = \"{}\"\nports = [8000]\nkeep_warm_seconds = -1\n\
             block_network = true\n",
            registry().image("latest")
        ),
    )
    .unwrap();
    let out_json = ok(&d.cli(&["deploy", &file.to_string_lossy(), "--format", "json"]));
    let dep: cove_types::Deployment = serde_json::from_str(&out_json).unwrap();
    let host = format!("{}-8000.localhost", dep.url_key);
    let live = || -> Vec<Container> {
        d.list(false)
            .into_iter()
            .filter(|c| c.deployment_id.as_deref() == Some(dep.id.as_str()))
            .collect()
    };
    let first = wait_until("the deployment's container", LONG, || {
        live()
            .into_iter()
            .find(|c| c.status == ContainerStatus::Running)
    });
    assert!(first.block_network, "{first:?}");
    assert!(!fetches(&d, &first.id, &out.url(2)));

    // A live change is kept for the deployment's next container.
    let only2 = format!("{}.2/32", out.lease.prefix);
    set_egress(&d, &first.id, &["--allow", &only2]);
    ok(&d.cli(&["deployment", "stop", "egress-web"]));
    d.wait_status(&first.id, ContainerStatus::Stopped, LONG);
    ok(&d.cli(&["deployment", "start", "egress-web"]));
    wait_until("the deployment to wake and answer", LONG, || {
        let r = http_get(&d.gw(), &host, "/").ok()?;
        (r.status == 200).then_some(())
    });
    let next = wait_until("the deployment's next container", LONG, || {
        live()
            .into_iter()
            .find(|c| c.status == ContainerStatus::Running && c.id != first.id)
    });
    assert_eq!(next.allow_list, [only2.as_str()], "{next:?}");
    assert!(fetches(&d, &next.id, &out.url(2)));
    assert!(!fetches(&d, &next.id, &out.url(3)));
    ok(&d.cli(&["deployment", "delete", "egress-web"]));
    d.wait_status(&next.id, ContainerStatus::Stopped, LONG);
    assert_eq!(restricted_set(&d), "");
}
