//! Daemon restarts lose nothing; data dirs are exclusive; daemons run side by side.
mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

const LONG: Duration = Duration::from_secs(60);

#[test]
fn kill_9_and_restart_loses_nothing() {
    let mut d = Daemon::start();
    let img = registry().image("latest");
    let running = d.run_httpd("-1");
    let warm = d.run_httpd("8");
    let exiting = d.run_pod(&[
        "--image",
        &registry().image("bare"),
        "--entrypoint",
        "sh -c 'while [ ! -f /tmp/go ]; do sleep 0.1; done; exit 7'",
        "--keep-warm-seconds",
        "-1",
    ]);
    d.wait_serving(&running, 8000, "/");
    d.wait_status(&exiting.id, ContainerStatus::Running, LONG);

    d.kill9();
    // While the daemon is down, `exiting` ends by itself: tell it to through runc.
    let runc_root = d.data_dir.join("runc");
    let o = Command::new("runc")
        .arg("--root")
        .arg(&runc_root)
        .args(["exec", &exiting.id, "touch", "/tmp/go"])
        .output()
        .unwrap();
    assert!(o.status.success(), "runc exec: {o:?}");
    wait_until("the pod to exit while the daemon is down", LONG, || {
        let o = Command::new("runc")
            .arg("--root")
            .arg(&runc_root)
            .args(["state", &exiting.id])
            .output()
            .unwrap();
        (!String::from_utf8_lossy(&o.stdout).contains("\"running\"")).then_some(())
    });

    d.restart();
    let live: Vec<String> = d.list(false).into_iter().map(|c| c.id).collect();
    assert!(live.contains(&running.id), "{live:?}");
    assert_eq!(
        d.wait_serving(&running, 8000, "/").trim(),
        "Hello from a Cove pod"
    );
    let e = d.wait_status(&exiting.id, ContainerStatus::Exited, LONG);
    assert_eq!(e.exit_code, Some(7), "{e:?}");
    // Keep-warm still runs for pods started before the restart.
    d.wait_status(&warm.id, ContainerStatus::Stopped, LONG);
    assert_eq!(d.inspect(&running.id).status, ContainerStatus::Running);
    // New pods work after a restart.
    let c = d.run_pod(&[
        "--image",
        &img,
        "--ports",
        "8000",
        "--keep-warm-seconds",
        "300",
    ]);
    d.wait_serving(&c, 8000, "/");
}

/// runc, except that each container start pauses inside runc (a createRuntime hook) after
/// touching `<dir>/in-hook-<container id>`: the window in which runc's list does not show the
/// container yet.
const SLOW_RUNC: &str = r#"#!/bin/sh
prev=""; bundle=""
for a in "$@"; do [ "$prev" = --bundle ] && bundle=$a; prev=$a; done
if [ -n "$bundle" ]; then
python3 - "$bundle/config.json" "$(dirname "$0")/in-hook-$(basename "$bundle")" <<'PY'
import json, sys
path, marker = sys.argv[1], sys.argv[2]
c = json.load(open(path))
hook = {"path": "/bin/sh", "args": ["sh", "-c", "touch '%s'; sleep 4" % marker]}
c.setdefault("hooks", {}).setdefault("createRuntime", []).append(hook)
json.dump(c, open(path, "w"))
PY
fi
# The real runc, from PATH (this wrapper is not on it).
exec runc "$@"
"#;

#[test]
fn starts_in_flight_when_the_daemon_dies_leave_no_container() {
    let dir = tempdir("cove-test-slow-runc");
    let wrapper = dir.join("runc");
    std::fs::write(&wrapper, SLOW_RUNC).unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut d = Daemon::start_with(DaemonOpts {
        extra_server_args: vec!["--runc".into(), wrapper.display().to_string()],
        ..Default::default()
    });
    let img = registry().image("latest");
    let quiet = |mut c: Command| {
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // A pod (its container has a row) and a build step (its container has none).
    let mut clients = [
        quiet(d.cli_command(&[
            "run",
            "--image",
            &img,
            "--ports",
            "8000",
            "--keep-warm-seconds",
            "-1",
        ])),
        quiet(d.cli_command(&["image", "build", "--base", &img, "--command", "sleep 30"])),
    ];
    // The daemon dies while runc is in the middle of both starts: their shims live on.
    wait_until("runc to be inside both starts", LONG, || {
        let n = std::fs::read_dir(&dir).unwrap().flatten().count();
        (n == 3).then_some(())
    });
    d.kill9();
    for c in &mut clients {
        assert!(!c.wait().unwrap().success());
    }
    d.restart();
    // Past the moment the old starts would have finished: neither container runs anywhere.
    std::thread::sleep(Duration::from_secs(6));
    let all = d.list(true);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].status, ContainerStatus::Failed, "{all:?}");
    let o = Command::new("runc")
        .arg("--root")
        .arg(d.data_dir.join("runc"))
        .args(["list", "-q"])
        .output()
        .unwrap();
    let runc = String::from_utf8_lossy(&o.stdout);
    assert_eq!(runc.trim(), "", "runc still has containers");
    let left = d.leftovers_of(&all[0].id);
    assert!(left.is_empty(), "{left:?}");
    let log = d.log();
    assert!(!log.contains("runtime delete failed"), "{log}");
    assert_eq!(
        log.matches("killing a start the last daemon left unfinished")
            .count(),
        2,
        "{log}"
    );
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_leaves_pods_running_and_the_next_start_adopts_them() {
    let mut d = Daemon::start();
    let c = d.run_httpd("-1");
    d.wait_serving(&c, 8000, "/");
    let st = d.terminate().unwrap();
    assert!(st.success(), "{st}");
    // The pod survived the daemon.
    let o = Command::new("runc")
        .arg("--root")
        .arg(d.data_dir.join("runc"))
        .args(["state", &c.id])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("\"running\""),
        "{o:?}"
    );
    d.restart();
    assert_eq!(d.inspect(&c.id).status, ContainerStatus::Running);
    assert_eq!(
        d.wait_serving(&c, 8000, "/").trim(),
        "Hello from a Cove pod"
    );
}

#[test]
fn a_second_daemon_on_the_same_data_dir_fails() {
    let d = Daemon::start();
    // Same data dir, other ports and subnet; configured through the COVE_<FLAG> variables.
    let other = SubnetLease::take();
    let mut cmd = Command::new(COVE);
    cmd.arg("server")
        .env("COVE_DATA_DIR", &d.data_dir)
        .env("COVE_API_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("COVE_GATEWAY_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("COVE_SUBNET", &other.cidr)
        .env("NO_COLOR", "1");
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let st = wait_until("the second daemon to exit", LONG, || {
        child.try_wait().unwrap()
    });
    let o = child.wait_with_output().unwrap();
    assert!(!st.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "want one line: {err}");
    assert!(
        lines[0].starts_with("Error:") && lines[0].contains(d.data_dir.to_str().unwrap()),
        "{err}"
    );
    // The first one is unharmed.
    let c = d.run_httpd("300");
    d.wait_serving(&c, 8000, "/");
}

#[test]
fn two_daemons_run_side_by_side() {
    let a = Daemon::start();
    let b = Daemon::start();
    let pa = a.run_httpd("300");
    let pb = b.run_httpd("300");
    a.wait_serving(&pa, 8000, "/");
    b.wait_serving(&pb, 8000, "/");
    // Each gateway serves only its own pods.
    assert_eq!(b.get(&pa, 8000, "/").status, 404);
    assert_eq!(a.list(false).len(), 1);
    assert_eq!(b.list(false).len(), 1);
}
