//! Deployments: a stable URL that scales to zero and wakes on the next request, versions
//! replacing each other without dropping requests, stop/start/delete, daemon restarts, and
//! bad input that leaves nothing behind.
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use cove_types::{Deployment, DeploymentStatus};

const LONG: Duration = Duration::from_secs(60);
const HTTPD: &str = "httpd -f -p 8000 -h /www";

/// Writes a TOML manifest for the busybox httpd under `name` and returns its path.
fn manifest(d: &Daemon, name: Option<&str>, keep_warm: i64, entrypoint: &str) -> String {
    let mut text = format!(
        "image = \"{}\"\nports = [8000]\nkeep_warm_seconds = {keep_warm}\nentrypoint = {entrypoint:?}\n",
        registry().image("latest")
    );
    if let Some(n) = name {
        text = format!("name = \"{n}\"\n{text}");
    }
    let file = d
        .root
        .join(format!("{}-{}.toml", name.unwrap_or("noname"), free_port()));
    std::fs::write(&file, text).unwrap();
    file.to_string_lossy().into_owned()
}

#[track_caller]
fn deploy(d: &Daemon, file: &str) -> Deployment {
    let out = ok(&d.cli(&["deploy", file, "--format", "json"]));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("deploy json: {e}: {out}"))
}

#[track_caller]
fn deployments(d: &Daemon) -> Vec<Deployment> {
    let out = ok(&d.cli(&["deployment", "list", "--format", "json"]));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("deployment list json: {e}: {out}"))
}

fn host(dep: &Deployment) -> String {
    format!("{}-8000.localhost", dep.url_key)
}

fn get(d: &Daemon, dep: &Deployment) -> Response {
    http_get(&d.gw(), &host(dep), "/").unwrap_or_else(|e| panic!("GET {}: {e}", host(dep)))
}

/// Waits until the deployment's URL answers 200; returns the body.
fn wait_answering(d: &Daemon, dep: &Deployment) -> String {
    wait_until("the deployment to answer 200", LONG, || {
        http_get(&d.gw(), &host(dep), "/")
            .ok()
            .filter(|r| r.status == 200)
            .map(|r| r.body)
    })
}

/// Every container (ended ones too) of deployment `dep`.
fn containers_of(d: &Daemon, dep: &Deployment) -> Vec<Container> {
    d.list(true)
        .into_iter()
        .filter(|c| c.deployment_id.as_deref() == Some(dep.id.as_str()))
        .collect()
}

fn live_of(d: &Daemon, dep: &Deployment) -> Vec<Container> {
    containers_of(d, dep)
        .into_iter()
        .filter(|c| c.status.is_live())
        .collect()
}

/// `POST path` with a JSON body to the API; returns (status, body).
fn api_post(d: &Daemon, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", d.api_port)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        d.token,
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
    (status, body.unwrap_or_default())
}

#[test]
fn idle_deployment_sleeps_and_one_request_burst_wakes_one_container() {
    let d = Daemon::start();
    let dep = deploy(&d, &manifest(&d, Some("web"), 2, HTTPD));
    assert_eq!(dep.version, 1);
    assert!(
        dep.url_key.starts_with("web-") && dep.url_key.len() == "web-".len() + 8,
        "{dep:?}"
    );
    assert_eq!(
        dep.urls[0].url,
        format!("http://{}-8000.localhost:{}", dep.url_key, d.gw_port)
    );
    // The container is served at the deployment's URL, also in its own view.
    let first = dep.container.clone().expect("a container after deploy");
    assert_eq!(first.urls[0].url, dep.urls[0].url);
    assert_eq!(first.deployment_id.as_deref(), Some(dep.id.as_str()));
    assert!(wait_answering(&d, &dep).contains("Hello"));
    let path = http_get(&d.gw(), "127.0.0.1", &format!("/pod/{}/8000/", dep.url_key)).unwrap();
    assert_eq!(path.status, 200, "{path:?}");

    // Idle: the container stops, the deployment stays ACTIVE and asleep.
    d.wait_status(&first.id, ContainerStatus::Stopped, LONG);
    let listed = deployments(&d);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, DeploymentStatus::Active);
    assert!(listed[0].container.is_none(), "{:?}", listed[0]);
    let table = ok(&d.cli(&["deployment", "list"]));
    assert!(table.contains("web") && table.contains("ACTIVE"), "{table}");

    // A burst of requests while asleep: all answered, one container started.
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8).map(|_| s.spawn(|| get(&d, &dep).status)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let all = containers_of(&d, &dep);
    assert_eq!(all.len(), 2, "one wake, one new container: {all:?}");
    // And it sleeps again.
    let woken = all.iter().find(|c| c.id != first.id).unwrap();
    d.wait_status(&woken.id, ContainerStatus::Stopped, LONG);
    assert_eq!(get(&d, &dep).status, 200);
}

#[test]
fn new_version_keeps_the_url_and_drops_nothing_then_stop_start_delete() {
    let d = Daemon::start();
    let v1 = deploy(&d, &manifest(&d, Some("app"), -1, HTTPD));
    wait_answering(&d, &v1);
    let old = v1.container.clone().unwrap();

    // Requests keep flowing while version 2 replaces version 1.
    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (stop, served, failed) = (stop.clone(), served.clone(), failed.clone());
        let (gw, host) = (d.gw(), host(&v1));
        std::thread::spawn(move || {
            let mut bad = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                match http_get(&gw, &host, "/") {
                    Ok(r) if r.status == 200 => served.fetch_add(1, Ordering::SeqCst),
                    other => {
                        bad.push(format!("{other:?}"));
                        failed.fetch_add(1, Ordering::SeqCst)
                    }
                };
            }
            bad
        })
    };
    let v2_entry = "sh -c 'mkdir -p /tmp/w && echo version-two > /tmp/w/index.html \
                    && exec httpd -f -p 8000 -h /tmp/w'";
    let v2 = deploy(&d, &manifest(&d, Some("app"), -1, v2_entry));
    assert_eq!((v2.version, &v2.url_key, &v2.id), (2, &v1.url_key, &v1.id));
    assert_ne!(v2.stub_id, v1.stub_id);
    assert_eq!(get(&d, &v2).body.trim(), "version-two");
    // The replaced container ends once idle.
    d.wait_status(&old.id, ContainerStatus::Stopped, LONG);
    stop.store(true, Ordering::SeqCst);
    let bad = load.join().unwrap();
    assert!(served.load(Ordering::SeqCst) > 0);
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "dropped requests: {bad:?}"
    );

    // Stop: 503 and no wake; start: served again.
    ok(&d.cli(&["deployment", "stop", "app"]));
    let r = get(&d, &v2);
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.body.contains("deployment app is stopped"), "{r:?}");
    assert!(live_of(&d, &v2).is_empty());
    assert_eq!(deployments(&d)[0].status, DeploymentStatus::Stopped);
    ok(&d.cli(&["deployment", "start", "app"]));
    assert_eq!(wait_answering(&d, &v2).trim(), "version-two");

    // Delete: 404, nothing live, the name is gone.
    ok(&d.cli(&["deployment", "delete", "app"]));
    assert_eq!(get(&d, &v2).status, 404);
    assert!(live_of(&d, &v2).is_empty());
    assert!(deployments(&d).is_empty());
    failed_with(
        &d.cli(&["deployment", "stop", "app"]),
        &["no deployment app"],
    );
}

/// An entrypoint serving `text` on port 8000.
fn serving(text: &str) -> String {
    format!(
        "sh -c 'mkdir -p /tmp/w && echo {text} > /tmp/w/index.html && exec httpd -f -p 8000 -h /tmp/w'"
    )
}

#[track_caller]
fn versions(d: &Daemon, name: &str) -> Vec<cove_types::DeploymentVersion> {
    let out = ok(&d.cli(&["deployment", "versions", name, "--format", "json"]));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("versions json: {e}: {out}"))
}

#[test]
fn versions_are_kept_and_rollback_serves_an_earlier_one_at_the_same_url() {
    let d = Daemon::start();
    let v1 = deploy(&d, &manifest(&d, Some("roll"), -1, &serving("one")));
    assert_eq!(wait_answering(&d, &v1).trim(), "one");
    failed_with(
        &d.cli(&["deployment", "rollback", "roll"]),
        &["no version before its current one"],
    );
    let v2 = deploy(&d, &manifest(&d, Some("roll"), -1, &serving("two")));
    assert_eq!(get(&d, &v2).body.trim(), "two");

    let list = versions(&d, "roll");
    let shown: Vec<(i64, bool)> = list.iter().map(|v| (v.version, v.current)).collect();
    assert_eq!(shown, [(1, false), (2, true)]);
    assert_eq!(
        (&list[0].stub_id, &list[1].stub_id),
        (&v1.stub_id, &v2.stub_id)
    );
    assert!(
        list[0].entrypoint.join(" ").contains("echo one"),
        "{list:?}"
    );
    let table = ok(&d.cli(&["deployment", "versions", "roll"]));
    assert!(
        table.contains("echo two") && table.contains("2 items"),
        "{table}"
    );

    // Rollback (default: the previous version) is version 3, at the same URL, serving one.
    let out = ok(&d.cli(&["deployment", "rollback", "roll"]));
    assert!(out.contains("=> Rolling back roll to version 1"), "{out}");
    assert!(out.contains(&v1.urls[0].url), "{out}");
    assert_eq!(get(&d, &v1).body.trim(), "one");
    let list = versions(&d, "roll");
    assert_eq!(list.len(), 3);
    assert!(
        list[2].current && list[2].entrypoint == list[0].entrypoint,
        "{list:?}"
    );
    // ... and forward again to an explicit version.
    ok(&d.cli(&["deployment", "rollback", "roll", "--to", "2"]));
    assert_eq!(get(&d, &v1).body.trim(), "two");
    assert_eq!(versions(&d, "roll").len(), 4);

    // Bad versions, unknown deployments: one line, nothing changes.
    failed_with(
        &d.cli(&["deployment", "rollback", "roll", "--to", "9"]),
        &["no version 9", "1 to 4"],
    );
    failed_with(
        &d.cli(&["deployment", "rollback", "roll", "--to", "4"]),
        &["already"],
    );
    failed_with(
        &d.cli(&["deployment", "rollback", "nope"]),
        &["no deployment nope"],
    );
    failed_with(
        &d.cli(&["deployment", "versions", "nope"]),
        &["no deployment nope"],
    );
    let (status, body) = api_post(&d, "/v1/deployments/roll/rollback", "{\"version\": \"x\"}");
    assert_eq!(status, 400, "{body}");
    for v in [i64::MIN, 0, -1] {
        let (status, body) = api_post(
            &d,
            "/v1/deployments/roll/rollback",
            &format!("{{\"version\": {v}}}"),
        );
        assert_eq!(status, 400, "version {v}: {body}");
        assert!(body.contains(&format!("no version {v}")), "{body}");
    }
    assert_eq!(versions(&d, "roll").len(), 4);
    assert_eq!(get(&d, &v1).body.trim(), "two");

    // The image of a deployment, even one with no container, cannot be removed from
    // under it (a wake would have to pull it again, without the deploy's credentials).
    ok(&d.cli(&["deployment", "stop", "roll"]));
    let image = registry().image("latest");
    failed_with(
        &d.cli(&["image", "rm", &image]),
        &["used by deployment roll"],
    );
    ok(&d.cli(&["deployment", "delete", "roll"]));
    ok(&d.cli(&["image", "rm", &image]));
}

#[test]
fn deployments_survive_a_daemon_restart_awake_or_asleep() {
    let mut d = Daemon::start();
    let up = deploy(&d, &manifest(&d, Some("up"), -1, HTTPD));
    let nap = deploy(&d, &manifest(&d, Some("nap"), 2, HTTPD));
    wait_answering(&d, &up);
    d.wait_status(
        &nap.container.clone().unwrap().id,
        ContainerStatus::Stopped,
        LONG,
    );

    assert!(d.terminate().unwrap().success());
    d.restart();
    // The awake one was re-adopted under its URL; the asleep one wakes.
    let before = up.container.clone().unwrap().id;
    assert!(wait_answering(&d, &up).contains("Hello"));
    assert_eq!(
        live_of(&d, &up).iter().map(|c| &c.id).collect::<Vec<_>>(),
        [&before]
    );
    assert_eq!(get(&d, &nap).status, 200);
    let again = deploy(&d, &manifest(&d, Some("nap"), 2, HTTPD));
    assert_eq!((again.version, &again.url_key), (2, &nap.url_key));
    assert_eq!(get(&d, &again).status, 200);
}

#[test]
fn bad_deploys_say_why_and_leave_nothing() {
    let d = Daemon::start();
    // No name: refused by the CLI and by the API.
    failed_with(
        &d.cli(&["deploy", &manifest(&d, None, 2, HTTPD)]),
        &["needs a name"],
    );
    let body = format!(
        r#"{{"image": "{}", "ports": [8000]}}"#,
        registry().image("latest")
    );
    let (status, text) = api_post(&d, "/v1/deployments", &body);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("a deployment needs a name"), "{text}");
    // Invalid spec, unknown image, an entrypoint the image lacks.
    let bad_port = d.root.join("bad.toml");
    std::fs::write(
        &bad_port,
        "name = \"bad\"\nimage = \"busybox\"\nports = [0]\n",
    )
    .unwrap();
    failed_with(
        &d.cli(&["deploy", bad_port.to_str().unwrap()]),
        &["out of range"],
    );
    let missing = d.root.join("missing.toml");
    std::fs::write(
        &missing,
        format!(
            "name = \"gone\"\nimage = \"{}\"\n",
            registry().image("nope")
        ),
    )
    .unwrap();
    failed_with(
        &d.cli(&["deploy", missing.to_str().unwrap()]),
        &["nope", "not found"],
    );
    failed_with(
        &d.cli(&[
            "deploy",
            &manifest(&d, Some("noexec"), 2, "/no/such/binary"),
        ]),
        &["could not start", "no such file"],
    );
    // Unknown names; a file of no known kind.
    failed_with(
        &d.cli(&["deployment", "start", "ghost"]),
        &["no deployment ghost"],
    );
    failed_with(
        &d.cli(&["deployment", "delete", "ghost"]),
        &["no deployment ghost"],
    );
    failed_with(&d.cli(&["deploy", "app.json"]), &["cannot deploy"]);
    // Nothing was made.
    assert!(deployments(&d).is_empty());
    let doc = http_get(
        &format!("127.0.0.1:{}", d.api_port),
        "127.0.0.1",
        "/v1/openapi.json",
    )
    .unwrap();
    for path in [
        "/v1/deployments",
        "/v1/deployments/{name}",
        "/v1/deployments/{name}/stop",
        "/v1/deployments/{name}/start",
    ] {
        assert!(
            doc.body.contains(&format!("\"{path}\"")),
            "{path} not in the OpenAPI document"
        );
    }
    assert!(d.list(true).is_empty(), "{:?}", d.list(true));
    let r = http_get(&d.gw(), "noexec-00000000-8000.localhost", "/").unwrap();
    assert_eq!(r.status, 404);
}

#[test]
fn python_app_deploys_like_the_guide() {
    let d = Daemon::start();
    let dir = d.root.join("app");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("app.py"),
        format!(
            "from beam import Pod\n\npod = Pod(\n    name=\"my-deployed-pod\",\n    image=\"{}\",\n    \
             cpu=2,\n    memory=\"1Gi\",\n    ports=[8000],\n    entrypoint=[\"httpd\", \"-f\", \"-p\", \
             \"8000\", \"-h\", \"/www\"],\n)\nnameless = Pod(image=\"busybox\", ports=[8000])\n",
            registry().image("latest")
        ),
    )
    .unwrap();
    let sdk = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/python/src");
    let run = |target: &str, pythonpath: &std::path::Path| {
        let o = d
            .cli_command(&["deploy", target])
            .current_dir(&dir)
            .env("PYTHONPATH", pythonpath)
            .output()
            .unwrap();
        o
    };
    let out = ok(&run("app.py:pod", &sdk));
    assert!(
        out.contains("=> Deploying my-deployed-pod (version 1)"),
        "{out}"
    );
    let url = out
        .lines()
        .find_map(|l| l.strip_prefix("✨ Deployment hosted at: "))
        .unwrap_or_else(|| panic!("no URL in {out}"));
    let dep = deployments(&d).pop().unwrap();
    assert_eq!(url, dep.urls[0].url);
    assert_eq!(dep.container.as_ref().unwrap().cpu_millis, 2000);
    assert!(wait_answering(&d, &dep).contains("Hello"));
    failed_with(&run("app.py:nameless", &sdk), &["needs a name"]);
    failed_with(&run("app.py:missing", &sdk), &["missing"]);
    // Without the SDK: say how to get it.
    let bare = Command::new("python3").args(["-c", "import cove"]).output();
    if bare.is_ok_and(|o| !o.status.success()) {
        failed_with(&run("app.py:pod", &d.root), &["pip install ./sdk/python"]);
    }
    assert_eq!(deployments(&d).len(), 1);
}
