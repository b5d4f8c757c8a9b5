//! Workspace limits: one workspace cannot exhaust the host or the address pool for everyone.
//! Concurrent creates stop exactly at `max-pods`; cpu limits name themselves; a deployment's
//! wake over a limit is a 429 through the gateway; workspaces together leave the admin the
//! last addresses; a full address pool is a 503 naming the subnet; a refused create leaves
//! nothing behind.
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Output;
use std::time::Duration;

use common::*;
use cove_types::{Deployment, WorkspaceInfo};

const LONG: Duration = Duration::from_secs(60);

/// One request to the API with `token`; returns (status, body).
fn api(d: &Daemon, token: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", d.api_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
    (status, body.unwrap_or_default())
}

/// `POST /v1/pods` of the busybox httpd with `token`; returns (status, body).
fn create(d: &Daemon, token: &str, extra: &str) -> (u16, String) {
    let body = format!(
        r#"{{"image": "{}", "ports": [8000]{extra}}}"#,
        registry().image("latest")
    );
    api(d, token, "POST", "/v1/pods", &body)
}

fn cli_as(d: &Daemon, token: &str, args: &[&str]) -> Output {
    d.cli_command(args)
        .env("COVE_TOKEN", token)
        .output()
        .expect("running cove")
}

/// `cove token create NAME --workspace WS <limits>`; returns the secret.
#[track_caller]
fn token(d: &Daemon, name: &str, ws: &str, limits: &[&str]) -> String {
    let mut args = vec!["token", "create", name, "--workspace", ws];
    args.extend_from_slice(limits);
    ok(&d.cli(&args)).trim().to_string()
}

#[track_caller]
fn workspace(d: &Daemon, name: &str) -> WorkspaceInfo {
    let out = ok(&d.cli(&["workspace", "list", "--format", "json"]));
    let list: Vec<WorkspaceInfo> = serde_json::from_str(&out).unwrap();
    list.into_iter()
        .find(|w| w.name == name)
        .unwrap_or_else(|| panic!("no workspace {name} in {out}"))
}

fn live_count(d: &Daemon) -> usize {
    d.list(false).len()
}

#[test]
fn twenty_concurrent_creates_against_max_pods_5_give_exactly_5() {
    let d = Daemon::start();
    let t = token(&d, "ta", "team-a", &["--max-pods", "5"]);
    // The workspace's own reference to the image first, so the race is about the limit.
    ok(&cli_as(
        &d,
        &t,
        &["image", "pull", &registry().image("latest")],
    ));
    let answers: Vec<(u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20).map(|_| s.spawn(|| create(&d, &t, ""))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let created = answers.iter().filter(|(st, _)| *st == 201).count();
    let refused: Vec<_> = answers.iter().filter(|(st, _)| *st == 429).collect();
    assert_eq!(created, 5, "{answers:?}");
    assert_eq!(refused.len(), 15, "{answers:?}");
    for (_, body) in &refused {
        assert!(
            body.contains(r#"workspace \"team-a\" is at its limit of 5 pods (max-pods)"#),
            "{body}"
        );
    }
    // Nothing half-made: exactly the 5 containers exist, all running.
    let all = d.list(true);
    assert_eq!(all.len(), 5, "{all:?}");
    assert!(all.iter().all(|c| c.status == ContainerStatus::Running));
    let w = workspace(&d, "team-a");
    assert_eq!((w.usage.pods, w.limits.max_pods), (5, Some(5)), "{w:?}");
    assert_eq!(w.tokens, 1);

    // The CLI says the same in one line.
    let o = cli_as(
        &d,
        &t,
        &[
            "run",
            "--image",
            &registry().image("latest"),
            "--ports",
            "8000",
        ],
    );
    failed_with(&o, &["is at its limit of 5 pods (max-pods)"]);
    // The admin is not held back by a tenant at its limit.
    let (st, body) = create(&d, &d.token, "");
    assert_eq!(st, 201, "{body}");
    // A stopped pod no longer counts.
    ok(&d.cli(&["container", "stop", &all[0].id]));
    let (st, body) = create(&d, &t, "");
    assert_eq!(st, 201, "{body}");
    let (st, _) = create(&d, &t, "");
    assert_eq!(st, 429);
    assert_eq!(live_count(&d), 6);
}

#[test]
fn cpu_memory_limits_name_themselves_and_set_limits_is_admin_only() {
    let d = Daemon::start();
    let t = token(&d, "tb", "team-b", &[]);
    let out = ok(&d.cli(&[
        "workspace",
        "set-limits",
        "team-b",
        "--max-cpu",
        "1.5",
        "--max-memory",
        "1Gi",
    ]));
    assert!(out.contains("team-b") && out.contains("0 / 1.5"), "{out}");
    // Only the admin sets limits or lists workspaces.
    let o = cli_as(
        &d,
        &t,
        &["workspace", "set-limits", "team-b", "--max-pods", "99"],
    );
    failed_with(&o, &["admin"]);
    let (st, _) = api(&d, &t, "GET", "/v1/workspaces", "");
    assert_eq!(st, 403);
    // Bad limits are one error naming the field, and change nothing.
    let o = d.cli(&["workspace", "set-limits", "team-b", "--max-memory", "lots"]);
    failed_with(&o, &["max-memory \"lots\""]);
    assert_eq!(workspace(&d, "team-b").limits.max_memory_mib, Some(1024));

    let (st, body) = create(&d, &t, r#", "cpu": 1"#);
    assert_eq!(st, 201, "{body}");
    let (st, body) = create(&d, &t, r#", "cpu": 1"#);
    assert_eq!(st, 429, "{body}");
    assert!(
        body.contains(
            r#"workspace \"team-b\" is at its limit of 1.5 cpu (max-cpu): 1 in use, the pod asks for 1"#
        ),
        "{body}"
    );
    let (st, body) = create(&d, &t, r#", "cpu": 0.5, "memory": "1Gi""#);
    assert_eq!(st, 429, "{body}");
    assert!(body.contains("(max-memory)"), "{body}");
    let (st, body) = create(&d, &t, r#", "cpu": 0.5, "memory": 512"#);
    assert_eq!(st, 201, "{body}");
    let w = workspace(&d, "team-b");
    assert_eq!(
        (w.usage.cpu_millis, w.usage.memory_mib),
        (1500, 640),
        "{w:?}"
    );
    assert_eq!(d.list(true).len(), 2);
}

#[test]
fn a_wake_over_the_limit_is_a_429_through_the_gateway() {
    let d = Daemon::start();
    let t = token(&d, "tc", "team-c", &["--max-pods", "1"]);
    let file = d.root.join("web.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"web\"\nimage = \"{}\"\nports = [8000]\nkeep_warm_seconds = 2\n\
             entrypoint = \"httpd -f -p 8000 -h /www\"\n",
            registry().image("latest")
        ),
    )
    .unwrap();
    let out = ok(&cli_as(
        &d,
        &t,
        &["deploy", &file.to_string_lossy(), "--format", "json"],
    ));
    let dep: Deployment = serde_json::from_str(&out).unwrap();
    let first = dep.container.clone().unwrap();
    // Idle: it scales to zero, and another pod of the workspace takes its one slot.
    d.wait_status(&first.id, ContainerStatus::Stopped, LONG);
    let (st, body) = create(&d, &t, "");
    assert_eq!(st, 201, "{body}");
    let host = format!("{}-8000.localhost", dep.url_key);
    let r = http_get(&d.gw(), &host, "/").unwrap();
    assert_eq!(r.status, 429, "{r:?}");
    assert!(
        r.body
            .contains("workspace \"team-c\" is at its limit of 1 pod (max-pods)"),
        "{r:?}"
    );
    // The refused wake left no container.
    let of_dep = d
        .list(true)
        .into_iter()
        .filter(|c| c.deployment_id.as_deref() == Some(dep.id.as_str()))
        .count();
    assert_eq!(of_dep, 1);
}

#[test]
fn workspaces_leave_the_admin_the_last_address_and_a_full_pool_is_a_503() {
    // A /29: five pod addresses; one is kept for the admin by default.
    let d = Daemon::start_with(DaemonOpts {
        subnet_prefix_len: Some(29),
        ..Default::default()
    });
    // Above the default (half the pool) on purpose: the pool's share still holds.
    let t = token(&d, "td", "team-d", &["--max-pods", "10"]);
    for _ in 0..4 {
        let (st, body) = create(&d, &t, "");
        assert_eq!(st, 201, "{body}");
    }
    let (st, body) = create(&d, &t, "");
    assert_eq!(st, 503, "{body}");
    assert!(
        body.contains("no pod address left for workspaces"),
        "{body}"
    );
    let (st, body) = create(&d, &d.token, "");
    assert_eq!(st, 201, "{body}");
    // Every address is taken now: a 503 naming the subnet, never a 500.
    let (st, body) = create(&d, &d.token, "");
    assert_eq!(st, 503, "{body}");
    let subnet = format!("{}.0/29", d.subnet.prefix);
    assert!(
        body.contains(&format!(
            "no free pod address left in {subnet} (5 pods running)"
        )),
        "{body}"
    );
    let o = d.cli(&["run", "--image", &registry().image("latest")]);
    failed_with(&o, &["no free pod address left"]);
    // Refused creates left nothing: no row, no veth, no netns beyond the five.
    assert_eq!(d.list(true).len(), 5);
    assert_eq!(d.netns_files().len(), 5, "{:?}", d.netns_files());
}
