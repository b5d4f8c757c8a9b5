//! Container lifecycle: list, logs, exec, stop and its cleanup, OOM, exit codes, keep-warm.
mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

const LONG: Duration = Duration::from_secs(60);

#[test]
fn list_shows_a_table_and_json() {
    let d = Daemon::start();
    let c = d.run_httpd("300");
    let table = ok(&d.cli(&["container", "list"]));
    let header = table
        .lines()
        .find(|l| l.contains("Status"))
        .unwrap_or_else(|| panic!("no header: {table}"));
    let mut at = 0;
    for col in [
        "ID",
        "Status",
        "Stub ID",
        "Deployment ID",
        "Scheduled At",
        "Uptime",
    ] {
        let pos = header[at..]
            .find(col)
            .unwrap_or_else(|| panic!("column {col} missing or out of order: {table}"));
        at += pos + col.len();
    }
    let row = table
        .lines()
        .find(|l| l.contains(&c.id))
        .unwrap_or_else(|| panic!("no row for {}: {table}", c.id));
    assert!(row.contains("RUNNING") || row.contains("PENDING"), "{row}");
    assert!(row.contains(&c.stub_id), "{row}");
    let last = table.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
    assert_eq!(last.trim(), "1 items", "{table}");

    let list = d.list(false);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, c.id);

    ok(&d.cli(&["container", "stop", &c.id]));
    assert!(d.list(false).is_empty());
    let all = d.list(true);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].status, ContainerStatus::Stopped);
    let table = ok(&d.cli(&["container", "list"]));
    assert!(table.trim_end().ends_with("0 items"), "{table}");
    let table = ok(&d.cli(&["container", "list", "--all"]));
    assert!(
        table.contains("STOPPED") && table.trim_end().ends_with("1 items"),
        "{table}"
    );
}

#[test]
fn logs_and_logs_follow_stream() {
    let d = Daemon::start();
    let c = d.run_pod(&[
        "--image",
        &registry().image("bare"),
        "--entrypoint",
        "sh -c 'i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done'",
        "--keep-warm-seconds",
        "-1",
    ]);
    wait_until("line 3 in the logs", LONG, || {
        stdout(&d.cli(&["container", "logs", &c.id]))
            .contains("line 3")
            .then_some(())
    });
    let mut child = d
        .cli_command(&["container", "logs", "-f", &c.id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = line_reader(&mut child);
    // Lines written after `logs -f` started arrive while it runs.
    let first: usize = lines
        .recv_timeout(LONG)
        .unwrap()
        .trim_start_matches("line ")
        .parse()
        .unwrap();
    let mut got = first;
    while got < first + 10 {
        let l = lines
            .recv_timeout(LONG)
            .expect("logs -f should keep streaming");
        if let Some(n) = l.strip_prefix("line ") {
            got = n.parse().unwrap();
        }
    }
    // It ends when the container ends.
    ok(&d.cli(&["container", "stop", &c.id]));
    let st = wait_until("logs -f to end after stop", LONG, || {
        child.try_wait().unwrap()
    });
    assert!(st.success(), "{st}");
    // Logs stay readable after stop.
    assert!(ok(&d.cli(&["container", "logs", &c.id])).contains("line 0"));
}

#[test]
fn exec_runs_in_the_pod_and_passes_the_exit_code() {
    let d = Daemon::start();
    let c = d.run_httpd("300");
    d.wait_status(&c.id, ContainerStatus::Running, LONG);
    let ls = ok(&d.cli(&["container", "exec", &c.id, "--", "ls", "/"]));
    for name in ["bin", "etc", "www", "tmp"] {
        assert!(
            ls.lines().any(|l| l.trim() == name),
            "{name} missing from ls /: {ls}"
        );
    }
    let o = d.cli(&[
        "container",
        "exec",
        &c.id,
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 5",
    ]);
    assert_eq!(o.status.code(), Some(5), "{o:?}");
    assert_eq!(stdout(&o).trim(), "out");
    assert!(stderr(&o).contains("err"));
    // Its own pid namespace and hostname.
    let ps = ok(&d.cli(&["container", "exec", &c.id, "--", "cat", "/proc/1/cmdline"]));
    assert!(
        ps.contains("httpd"),
        "pid 1 should be the entrypoint: {ps:?}"
    );
}

#[test]
fn stop_ends_stopped_and_cleans_up() {
    let d = Daemon::start();
    let c = d.run_httpd("-1");
    d.wait_serving(&c, 8000, "/");
    let rootfs = d.data_dir.join("containers").join(&c.id).join("rootfs");
    assert!(
        d.mounts().iter().any(|m| std::path::Path::new(m) == rootfs),
        "no overlay at {}",
        rootfs.display()
    );
    assert!(
        d.data_dir.join("netns").join(&c.id).exists(),
        "no netns file"
    );
    let veths = d.veths();
    assert_eq!(veths.len(), 1, "one veth on the bridge: {veths:?}");
    assert!(
        !Daemon::cgroups_of(&c.id).is_empty(),
        "no cgroup named {}",
        c.id
    );

    let out = ok(&d.cli(&["container", "stop", &c.id]));
    assert!(out.contains(&c.id), "{out}");
    let s = d.wait_status(&c.id, ContainerStatus::Stopped, LONG);
    assert!(s.ended_at.is_some());
    assert_eq!(d.leftovers_of(&c.id), Vec::<String>::new());
    assert!(d.veths().is_empty(), "veth still on the bridge");
    for v in veths {
        assert!(!std::process::Command::new("ip")
            .args(["link", "show", &v])
            .output()
            .unwrap()
            .status
            .success());
    }
    // The gateway no longer routes to it.
    let r = d.get(&c, 8000, "/");
    assert_ne!(r.status, 200, "{r:?}");
    ok(&d.cli(&["container", "logs", &c.id]));
    // Stopping again is harmless or a clear error, never a crash.
    let again = d.cli(&["container", "stop", &c.id]);
    if !again.status.success() {
        failed_with(&again, &[&c.id, "not running", "already"]);
    }
}

#[test]
fn a_pod_over_its_memory_is_oom_killed() {
    let d = Daemon::start();
    let c = d.run_pod(&[
        "--image",
        &registry().image("bare"),
        "--memory",
        "64",
        "--keep-warm-seconds",
        "-1",
        "--entrypoint",
        r#"sh -c 'a=$(head -c 200000000 /dev/zero | tr "\0" x); echo survived'"#,
    ]);
    let s = d.wait_status(&c.id, ContainerStatus::OomKilled, Duration::from_secs(120));
    assert!(s.ended_at.is_some());
    assert!(!ok(&d.cli(&["container", "logs", &c.id])).contains("survived"));
    assert_eq!(d.leftovers_of(&c.id), Vec::<String>::new());
}

#[test]
fn an_exiting_entrypoint_ends_exited_with_its_code() {
    let d = Daemon::start();
    let c = d.run_pod(&[
        "--image",
        &registry().image("bare"),
        "--entrypoint",
        "sh -c 'echo bye; exit 3'",
    ]);
    let s = d.wait_status(&c.id, ContainerStatus::Exited, LONG);
    assert_eq!(s.exit_code, Some(3), "{s:?}");
    assert!(ok(&d.cli(&["container", "logs", &c.id])).contains("bye"));
    assert_eq!(d.leftovers_of(&c.id), Vec::<String>::new());
    let all = ok(&d.cli(&["container", "list", "--all"]));
    assert!(all.contains("EXITED"), "{all}");
    assert!(d.list(false).is_empty());
}

#[test]
fn keep_warm_stops_idle_pods_but_not_busy_or_forever_ones() {
    let d = Daemon::start();
    let forever = d.run_httpd("-1");
    let idle = d.run_httpd("2");
    let busy = d.run_httpd("3");
    // Hold a connection to `busy` open for 8 s through the gateway.
    let gw = d.gw();
    let host = Daemon::host_for(&busy, 8000);
    let held = std::thread::spawn(move || http_get(&gw, &host, "/cgi-bin/slow?8"));

    let s = d.wait_status(&idle.id, ContainerStatus::Stopped, LONG);
    assert!(
        s.reason.as_deref().unwrap_or("").contains("idle"),
        "reason: {:?}",
        s.reason
    );
    assert_eq!(d.leftovers_of(&idle.id), Vec::<String>::new());
    // 5 s after it opened, the held connection keeps `busy` up past its 3 s keep-warm.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(d.inspect(&busy.id).status, ContainerStatus::Running);
    let r = held.join().unwrap().expect("held request");
    assert_eq!((r.status, r.body.trim()), (200, "slept 8"));
    // After it ends, `busy` goes idle and stops.
    d.wait_status(&busy.id, ContainerStatus::Stopped, LONG);
    // -1 never stops: still up after the others stopped, and still serving.
    assert_eq!(d.inspect(&forever.id).status, ContainerStatus::Running);
    assert_eq!(
        d.wait_serving(&forever, 8000, "/").trim(),
        "Hello from a Cove pod"
    );
}
