//! gVisor isolation: pods run by runsc (real containers, `--platform=ptrace`) next to runc pods.
//! Needs the `runsc` package (scripts/install-deps.sh installs it).
mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use cove_types::Isolation;

const LONG: Duration = Duration::from_secs(60);

/// The first line of `/proc/version` inside container `id`.
fn proc_version(d: &Daemon, id: &str) -> String {
    ok(&d.cli(&["container", "exec", id, "--", "cat", "/proc/version"]))
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The host kernel's release, e.g. `6.1.0-18-amd64`.
fn host_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn gvisor_pod_serves_execs_logs_and_stops() {
    let d = Daemon::start();
    let img = registry().image("latest");
    let web = d.run_pod(&[
        "--image",
        &img,
        "--ports",
        "8000",
        "--keep-warm-seconds",
        "-1",
        "--isolation",
        "gvisor",
    ]);
    assert_eq!(web.isolation, Isolation::Gvisor, "{web:?}");
    assert_eq!(d.inspect(&web.id).isolation, Isolation::Gvisor);
    assert_eq!(
        d.wait_serving(&web, 8000, "/").trim(),
        "Hello from a Cove pod"
    );

    // runsc runs it, with its state in the daemon's runsc root.
    let listed = Command::new("runsc")
        .arg("--root")
        .arg(d.data_dir.join("runsc"))
        .args(["list", "-quiet"])
        .output()
        .unwrap();
    assert_eq!(stdout(&listed).trim(), web.id, "{listed:?}");
    // Its kernel is gVisor's, not the host's.
    let dmesg = ok(&d.cli(&["container", "exec", &web.id, "--", "dmesg"]));
    assert!(dmesg.contains("gVisor"), "dmesg: {dmesg}");
    let version = proc_version(&d, &web.id);
    assert!(
        !version.contains(&host_release()),
        "gVisor pod sees the host kernel: {version}"
    );
    // A runc pod on the same daemon sees the host's.
    let plain = d.run_pod(&[
        "--image",
        &img,
        "--keep-warm-seconds",
        "-1",
        "--entrypoint",
        "sleep 1000",
    ]);
    assert_eq!(plain.isolation, Isolation::Runc);
    assert!(proc_version(&d, &plain.id).contains(&host_release()));

    // exec: output, exit code, environment, working dir.
    let o = d.cli(&[
        "container",
        "exec",
        &web.id,
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 5",
    ]);
    assert_eq!(o.status.code(), Some(5), "{o:?}");
    assert_eq!(stdout(&o).trim(), "out");
    let ls = ok(&d.cli(&["container", "exec", &web.id, "--", "ls", "/"]));
    assert!(ls.lines().any(|l| l.trim() == "www"), "{ls}");

    // An entrypoint that ends: its output is in the logs, its exit code is recorded.
    let job = d.run_pod(&[
        "--image",
        &img,
        "--isolation",
        "gvisor",
        "--entrypoint",
        "sh -c 'echo hello-from-gvisor; echo to-stderr >&2; exit 7'",
    ]);
    let ended = d.wait_status(&job.id, ContainerStatus::Exited, LONG);
    assert_eq!(ended.exit_code, Some(7), "{ended:?}");
    let logs = ok(&d.cli(&["container", "logs", &job.id]));
    assert!(
        logs.contains("hello-from-gvisor") && logs.contains("to-stderr"),
        "{logs}"
    );
    assert!(
        d.leftovers_of(&job.id).is_empty(),
        "{:?}",
        d.leftovers_of(&job.id)
    );

    // Stop: SIGTERM (or SIGKILL after the grace), then nothing of it is left.
    ok(&d.cli(&["container", "stop", &web.id]));
    let stopped = d.wait_status(&web.id, ContainerStatus::Stopped, LONG);
    assert!(stopped.ended_at.is_some());
    assert!(
        d.leftovers_of(&web.id).is_empty(),
        "{:?}",
        d.leftovers_of(&web.id)
    );
    ok(&d.cli(&["container", "stop", &plain.id]));
    d.wait_status(&plain.id, ContainerStatus::Stopped, LONG);
    assert!(d.runsc_leftovers().is_empty(), "{:?}", d.runsc_leftovers());
}

#[test]
fn default_isolation_and_restart_after_kill_9() {
    let mut d = Daemon::start_with(DaemonOpts {
        extra_server_args: vec!["--default-isolation".into(), "gvisor".into()],
        ..DaemonOpts::default()
    });
    let img = registry().image("latest");
    let web = d.run_httpd("-1");
    assert_eq!(web.isolation, Isolation::Gvisor, "the daemon's default");
    let runc = d.run_pod(&[
        "--image",
        &img,
        "--isolation",
        "runc",
        "--keep-warm-seconds",
        "-1",
        "--entrypoint",
        "sleep 1000",
    ]);
    assert_eq!(runc.isolation, Isolation::Runc);
    let exiting = d.run_pod(&[
        "--image",
        &img,
        "--keep-warm-seconds",
        "-1",
        "--entrypoint",
        "sh -c 'while [ ! -f /tmp/go ]; do sleep 0.1; done; exit 3'",
    ]);
    d.wait_serving(&web, 8000, "/");

    d.kill9();
    // While the daemon is down, `exiting` ends by itself: tell it to through runsc.
    let runsc = |args: &[&str]| {
        Command::new("runsc")
            .arg("--root")
            .arg(d.data_dir.join("runsc"))
            .args(args)
            .output()
            .unwrap()
    };
    let o = runsc(&["exec", &exiting.id, "touch", "/tmp/go"]);
    assert!(o.status.success(), "runsc exec: {o:?}");
    wait_until(
        "the gVisor pod to exit while the daemon is down",
        LONG,
        || {
            let o = runsc(&["state", &exiting.id]);
            (!stdout(&o).contains("\"running\"")).then_some(())
        },
    );

    d.restart();
    // Re-adopted: still served, still gVisor, exec and stop reach it through runsc.
    assert_eq!(
        d.wait_serving(&web, 8000, "/").trim(),
        "Hello from a Cove pod"
    );
    assert_eq!(d.inspect(&web.id).isolation, Isolation::Gvisor);
    let dmesg = ok(&d.cli(&["container", "exec", &web.id, "--", "dmesg"]));
    assert!(dmesg.contains("gVisor"), "dmesg: {dmesg}");
    assert!(proc_version(&d, &runc.id).contains(&host_release()));
    let e = d.wait_status(&exiting.id, ContainerStatus::Exited, LONG);
    assert_eq!(e.exit_code, Some(3), "{e:?}");
    assert!(d.leftovers_of(&exiting.id).is_empty());
    for c in [&web, &runc] {
        ok(&d.cli(&["container", "stop", &c.id]));
        d.wait_status(&c.id, ContainerStatus::Stopped, LONG);
        assert!(
            d.leftovers_of(&c.id).is_empty(),
            "{:?}",
            d.leftovers_of(&c.id)
        );
    }
    assert!(d.runsc_leftovers().is_empty(), "{:?}", d.runsc_leftovers());
}

#[test]
fn bad_isolation_is_a_400_and_leaves_nothing() {
    let d = Daemon::start();
    let img = registry().image("latest");
    let o = d.cli(&["run", "--image", &img, "--isolation", "kata"]);
    failed_with(&o, &["isolation \"kata\" is invalid"]);

    // The API answers 400 with a one-line JSON error.
    let body = format!(r#"{{"image": "{img}", "isolation": "GVISOR"}}"#);
    let o = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {}", d.token))
        .args(["-H", "Content-Type: application/json", "-d", &body])
        .arg(format!("http://127.0.0.1:{}/v1/pods", d.api_port))
        .output()
        .unwrap();
    let out = ok(&o);
    let (json, code) = out.trim().rsplit_once('\n').unwrap();
    assert_eq!(code, "400", "{out}");
    let err: serde_json::Value = serde_json::from_str(json).unwrap();
    let msg = err["error"].as_str().unwrap();
    assert_eq!(
        msg,
        "isolation \"GVISOR\" is invalid: use \"runc\" or \"gvisor\""
    );

    // The OpenAPI document describes the field and its values.
    let doc = http_get(
        &format!("127.0.0.1:{}", d.api_port),
        "127.0.0.1",
        "/v1/openapi.json",
    )
    .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&doc.body).unwrap();
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["CreatePodRequest"]["properties"]["isolation"].is_object(),
        "{}",
        schemas["CreatePodRequest"]
    );
    assert_eq!(
        schemas["Isolation"]["enum"],
        serde_json::json!(["runc", "gvisor"]),
        "{}",
        schemas["Isolation"]
    );

    assert!(d.list(true).is_empty(), "{:?}", d.list(true));
    assert!(d.mounts().is_empty(), "{:?}", d.mounts());
    assert!(d.netns_files().is_empty(), "{:?}", d.netns_files());
    assert!(d.veths().is_empty(), "{:?}", d.veths());
    assert!(d.runsc_leftovers().is_empty(), "{:?}", d.runsc_leftovers());
}

#[test]
fn gvisor_pod_over_its_memory_is_oom_killed() {
    let d = Daemon::start();
    let c = d.run_pod(&[
        "--image",
        &registry().image("bare"),
        "--isolation",
        "gvisor",
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
    assert!(d.runsc_leftovers().is_empty(), "{:?}", d.runsc_leftovers());
}

#[test]
fn deployments_and_the_sdk_ask_for_gvisor() {
    let d = Daemon::start();
    let img = registry().image("latest");

    // A deployment file names its isolation; a container woken after scale-to-zero keeps it.
    let file = d.root.join("web.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"gweb\"\nimage = \"{img}\"\nports = [8000]\nkeep_warm_seconds = 1\n\
             isolation = \"gvisor\"\n"
        ),
    )
    .unwrap();
    let out = ok(&d.cli(&["deploy", file.to_str().unwrap(), "--format", "json"]));
    let dep: cove_types::Deployment = serde_json::from_str(&out).unwrap();
    let first = dep.container.clone().expect("an awake container");
    assert_eq!(first.isolation, Isolation::Gvisor, "{first:?}");
    d.wait_status(&first.id, ContainerStatus::Stopped, LONG);
    let host = format!("{}-8000.localhost", dep.url_key);
    let woken = http_get(&d.gw(), &host, "/").unwrap();
    assert_eq!(woken.status, 200, "{woken:?}");
    let again = d
        .list(false)
        .into_iter()
        .find(|c| c.deployment_id.as_deref() == Some(dep.id.as_str()))
        .expect("the woken container");
    assert_ne!(again.id, first.id);
    assert_eq!(again.isolation, Isolation::Gvisor, "{again:?}");
    let dmesg = ok(&d.cli(&["container", "exec", &again.id, "--", "dmesg"]));
    assert!(dmesg.contains("gVisor"), "dmesg: {dmesg}");
    ok(&d.cli(&["deployment", "delete", "gweb"]));

    // The Python SDK: Pod(..., isolation="gvisor").create().
    let sdk = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/python/src");
    let script = format!(
        "from cove import Pod\n\
         nb = Pod(image=\"{img}\", ports=[8000], isolation=\"gvisor\").create()\n\
         print(\"ID\", nb.container_id)\n"
    );
    let o = Command::new("python3")
        .args(["-c", &script])
        .env("PYTHONPATH", &sdk)
        .env("COVE_API_URL", format!("http://127.0.0.1:{}", d.api_port))
        .env("COVE_TOKEN", &d.token)
        .output()
        .unwrap();
    let out = ok(&o);
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("ID "))
        .unwrap_or_else(|| panic!("no id in {out}"))
        .to_string();
    // Remembered by the harness for its leftover checks.
    let c = d.inspect(&id);
    assert_eq!(c.isolation, Isolation::Gvisor, "{c:?}");
    assert_eq!(
        d.wait_serving(&c, 8000, "/").trim(),
        "Hello from a Cove pod"
    );
    ok(&d.cli(&["container", "stop", &id]));
    d.wait_status(&id, ContainerStatus::Stopped, LONG);
    assert!(d.leftovers_of(&id).is_empty(), "{:?}", d.leftovers_of(&id));
}

/// The shim gives `runsc run` a private copy of the host's mount namespace (to hide
/// `/proc/sys/net`); that copy must not keep another pod's overlay or `--disk` loop device alive.
/// runsc's gofer and sandbox move into namespaces of their own holding only their pod's root, so
/// a runc pod started before a gVisor pod and stopped while it runs leaves nothing anywhere.
#[test]
fn a_gvisor_pod_does_not_pin_another_pods_mounts() {
    let d = Daemon::start();
    let img = registry().image("latest");
    let pod = |extra: &[&str]| {
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
    };
    let disk = pod(&["--disk", "64Mi"]);
    assert_eq!(d.loop_devices().len(), 1, "{:?}", d.loop_devices());
    let sandboxed = pod(&["--isolation", "gvisor"]);
    ok(&d.cli(&["container", "stop", &disk.id]));

    assert_eq!(d.leftovers_of(&disk.id), Vec::<String>::new());
    // The one loop device left is the gVisor pod's own default disk.
    let loops = d.loop_devices();
    assert!(
        loops.len() == 1 && loops[0].contains(&sandboxed.id),
        "{loops:?}"
    );
    // No process, in any mount namespace, still sees one of its mounts.
    let mut holders = Vec::new();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(mountinfo) = std::fs::read_to_string(p.path().join("mountinfo")) else {
            continue;
        };
        if mountinfo.contains(&disk.id) {
            let cmd = std::fs::read_to_string(p.path().join("cmdline")).unwrap_or_default();
            holders.push(format!("{:?}: {}", p.file_name(), cmd.replace('\0', " ")));
        }
    }
    assert_eq!(holders, Vec::<String>::new());
    assert_eq!(d.inspect(&sandboxed.id).status, ContainerStatus::Running);
}
