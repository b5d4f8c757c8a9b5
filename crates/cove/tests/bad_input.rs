//! Bad input: a one-line error naming the problem, a non-zero exit, and nothing created.
mod common;

use common::*;

/// Runs `cove run <args>` expecting failure naming one of `needles`, then checks that no
/// container, mount, netns file or veth appeared.
#[track_caller]
fn rejected(d: &Daemon, args: &[&str], needles: &[&str]) {
    for format in [None, Some("json")] {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        if let Some(f) = format {
            all.extend_from_slice(&["--format", f]);
        }
        let o = d.cli(&all);
        failed_with(&o, needles);
        assert!(
            stdout(&o).lines().all(|l| !l.contains("Container created")),
            "{}",
            stdout(&o)
        );
        nothing_created(d);
    }
}

#[track_caller]
fn nothing_created(d: &Daemon) {
    let all = d.list(true);
    assert!(all.is_empty(), "a container row appeared: {all:?}");
    assert!(d.mounts().is_empty(), "mounts appeared: {:?}", d.mounts());
    assert!(
        d.netns_files().is_empty(),
        "netns files appeared: {:?}",
        d.netns_files()
    );
    assert!(d.veths().is_empty(), "veths appeared: {:?}", d.veths());
}

#[test]
fn bad_images_are_rejected() {
    let d = Daemon::start();
    let reg = registry();
    rejected(
        &d,
        &[
            "--image",
            &format!("{}/nosuchimage:latest", reg.addr),
            "--ports",
            "8000",
        ],
        &["nosuchimage", "not found", "unknown"],
    );
    rejected(
        &d,
        &[
            "--image",
            &format!("{}/busybox:nosuchtag", reg.addr),
            "--ports",
            "8000",
        ],
        &["nosuchtag", "not found", "unknown"],
    );
    rejected(
        &d,
        &["--image", "127.0.0.1:1/busybox:latest", "--ports", "8000"],
        &["127.0.0.1:1"],
    );
    for bad in [
        "not a reference",
        "Busybox:UPPER",
        "busybox:",
        "127.0.0.1:5000/../x:latest",
        "",
    ] {
        rejected(
            &d,
            &["--image", bad, "--ports", "8000"],
            &["reference", "invalid", "image"],
        );
    }
    // An image without entrypoint or cmd needs --entrypoint.
    rejected(
        &d,
        &["--image", &reg.image("bare"), "--ports", "8000"],
        &["entrypoint"],
    );
    rejected(
        &d,
        &["--image", &reg.image("bare"), "--entrypoint", ""],
        &["entrypoint"],
    );
    let o = d.cli(&["image", "pull", &format!("{}/busybox:nosuchtag", reg.addr)]);
    failed_with(&o, &["nosuchtag", "not found", "unknown"]);
}

#[test]
fn bad_ports_are_rejected() {
    let d = Daemon::start();
    let img = registry().image("latest");
    for ports in ["0", "70000", "-1", "8000,8000"] {
        rejected(
            &d,
            &["--image", &img, &format!("--ports={ports}")],
            &["port"],
        );
    }
}

#[test]
fn bad_cpu_memory_env_are_rejected() {
    let d = Daemon::start();
    let img = registry().image("latest");
    for cpu in ["abc", "0", "0.001", "65", "1000x", "-1"] {
        rejected(
            &d,
            &["--image", &img, "--ports", "8000", &format!("--cpu={cpu}")],
            &["cpu"],
        );
    }
    for mem in ["lots", "0", "4", "2Ti", "-5", "1Xi"] {
        rejected(
            &d,
            &[
                "--image",
                &img,
                "--ports",
                "8000",
                &format!("--memory={mem}"),
            ],
            &["memory"],
        );
    }
    rejected(
        &d,
        &["--image", &img, "--ports", "8000", "--env", "FOO"],
        &["FOO"],
    );
    rejected(
        &d,
        &["--image", &img, "--ports", "8000", "--env", "=x"],
        &["=x", "env"],
    );
    rejected(
        &d,
        &["--image", &img, "--entrypoint", "sh -c 'unterminated"],
        &["entrypoint"],
    );
}

#[test]
fn unknown_container_ids_are_rejected() {
    let d = Daemon::start();
    let id = "pod-00000000-0000-4000-8000-000000000000-deadbeef";
    for args in [
        vec!["container", "stop", id],
        vec!["container", "logs", id],
        vec!["container", "logs", "-f", id],
        vec!["container", "inspect", id],
        vec!["container", "exec", id, "--", "ls", "/"],
    ] {
        let o = d.cli(&args);
        failed_with(&o, &[id, "not found", "no such", "unknown"]);
    }
    nothing_created(&d);
}

#[test]
fn client_errors_are_one_line() {
    let d = Daemon::start();
    // Wrong token.
    let o = d
        .cli_command(&["container", "list"])
        .env("COVE_TOKEN", "wrong")
        .output()
        .unwrap();
    failed_with(&o, &["token", "unauthorized", "401"]);
    // No daemon there.
    let o = d
        .cli_command(&["container", "list"])
        .env("COVE_API_URL", format!("http://127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    failed_with(&o, &["127.0.0.1", "connect", "daemon"]);
    // The token is read from $COVE_DATA_DIR/token when COVE_TOKEN is unset.
    let o = d
        .cli_command(&["container", "list"])
        .env_remove("COVE_TOKEN")
        .output()
        .unwrap();
    ok(&o);
    nothing_created(&d);
}

/// `POST /v1/containers/{id}/exec` with `cmd`; returns (status, body).
fn exec_api(d: &Daemon, id: &str, cmd: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let body = format!(r#"{{"cmd": ["{cmd}"]}}"#);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", d.api_port)).unwrap();
    write!(
        s,
        "POST /v1/containers/{id}/exec HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        d.token,
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        status,
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    )
}

#[test]
fn exec_of_a_missing_command_names_it_and_a_stopped_container_is_a_conflict() {
    let d = Daemon::start();
    let c = d.run_httpd("600");
    let o = d.cli(&["container", "exec", &c.id, "--", "no-such-command"]);
    let line = failed_with(&o, &["no-such-command"]);
    assert!(line.contains("executable file not found"), "{line}");
    let (st, body) = exec_api(&d, &c.id, "no-such-command");
    assert_eq!(st, 400, "{body}");
    let (st, body) = exec_api(&d, &c.id, "/no/such/path");
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("/no/such/path"), "{body}");
    // The container is still there and exec still works.
    assert_eq!(d.inspect(&c.id).status, ContainerStatus::Running);
    ok(&d.cli(&["container", "exec", &c.id, "--", "ls", "/"]));
    // Stopped: a 409 saying so; unknown: a 404.
    ok(&d.cli(&["container", "stop", &c.id]));
    d.wait_status(
        &c.id,
        ContainerStatus::Stopped,
        std::time::Duration::from_secs(60),
    );
    let (st, body) = exec_api(&d, &c.id, "ls");
    assert_eq!(st, 409, "{body}");
    assert!(body.contains("not running"), "{body}");
    let unknown = "pod-00000000-0000-4000-8000-000000000000-deadbeef";
    let (st, body) = exec_api(&d, unknown, "ls");
    assert_eq!(st, 404, "{body}");
}
