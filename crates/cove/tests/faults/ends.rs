//! A container that crashes, is killed by a signal or runs out of memory says why, in
//! `cove container list` and the API, and its logs stay readable.

use std::process::Command;
use std::time::Duration;

use crate::api;
use crate::common::*;

const LONG: Duration = Duration::from_secs(120);

#[test]
fn crash_signal_and_oom_say_why_and_keep_their_logs() {
    let d = Daemon::start();
    let bare = registry().image("bare");
    let crash = d.run_pod(&[
        "--image",
        &bare,
        "--entrypoint",
        "sh -c 'echo about to crash; exit 3'",
    ]);
    let killed = d.run_pod(&[
        "--image",
        &bare,
        "--keep-warm-seconds",
        "-1",
        "--entrypoint",
        "sh -c 'echo waiting for a signal; exec sleep 1000'",
    ]);
    let oom = d.run_pod(&[
        "--image",
        &bare,
        "--memory",
        "64",
        "--keep-warm-seconds",
        "-1",
        "--entrypoint",
        r#"sh -c 'echo eating memory; a=$(head -c 200000000 /dev/zero | tr "\0" x); echo survived'"#,
    ]);
    wait_until("the signal pod's output", LONG, || {
        stdout(&d.cli(&["container", "logs", &killed.id]))
            .contains("waiting for a signal")
            .then_some(())
    });
    // Killed from outside the daemon, as the kernel or an operator would.
    let o = Command::new("runc")
        .arg("--root")
        .arg(d.data_dir.join("runc"))
        .args(["kill", &killed.id, "KILL"])
        .output()
        .unwrap();
    assert!(o.status.success(), "runc kill: {o:?}");

    let crash = d.wait_status(&crash.id, ContainerStatus::Exited, LONG);
    let killed = d.wait_status(&killed.id, ContainerStatus::Exited, LONG);
    let oom = d.wait_status(&oom.id, ContainerStatus::OomKilled, LONG);
    assert_eq!(crash.exit_code, Some(3), "{crash:?}");
    assert_eq!(
        crash.reason.as_deref(),
        Some("exited with code 3"),
        "{crash:?}"
    );
    assert_eq!(
        killed.reason.as_deref(),
        Some("killed by signal 9"),
        "{killed:?}"
    );
    assert!(
        oom.reason
            .as_deref()
            .unwrap_or("")
            .contains("out of memory"),
        "{oom:?}"
    );

    // The same through `container list --all` (table and JSON) and the API.
    let table = ok(&d.cli(&["container", "list", "--all"]));
    for (c, status) in [
        (&crash, "EXITED"),
        (&killed, "EXITED"),
        (&oom, "OOM_KILLED"),
    ] {
        let row = table
            .lines()
            .find(|l| l.contains(&c.id))
            .unwrap_or_else(|| panic!("{} not listed: {table}", c.id));
        assert!(row.contains(status), "{row}");
    }
    let listed = d.list(true);
    for c in [&crash, &killed, &oom] {
        let l = listed.iter().find(|l| l.id == c.id).expect("listed");
        assert_eq!(l.reason, c.reason, "list vs inspect of {}", c.id);
        let (status, body) = api::get(&d, &format!("/v1/containers/{}", c.id)).unwrap();
        assert_eq!(status, 200, "{body}");
        let from_api: Container =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(
            (from_api.status, from_api.reason.clone()),
            (c.status, c.reason.clone())
        );
    }

    // Their logs are intact, through the CLI and the API, after the end.
    for (c, line) in [
        (&crash, "about to crash"),
        (&killed, "waiting for a signal"),
        (&oom, "eating memory"),
    ] {
        let logs = ok(&d.cli(&["container", "logs", &c.id]));
        assert!(logs.contains(line), "logs of {}: {logs:?}", c.id);
        let (status, body) = api::get(&d, &format!("/v1/containers/{}/logs", c.id)).unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(line), "API logs of {}: {body:?}", c.id);
        assert_eq!(d.leftovers_of(&c.id), Vec::<String>::new());
    }
    assert!(!ok(&d.cli(&["container", "logs", &oom.id])).contains("survived"));
}
