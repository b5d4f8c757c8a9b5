//! Workspaces and tokens: each workspace's token sees and controls only its own pods and
//! deployments (another workspace's are 404), tokens are stored hashed and revoked at once,
//! and authorized pods answer only requests with a token of their workspace, which the
//! gateway removes before the pod sees the request.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::*;
use cove_types::{Deployment, TokenInfo};

const LONG: Duration = Duration::from_secs(60);
/// Answers every request with `ok` once it has read the request's head, and prints the head
/// (request line and headers) to its log, so the test sees exactly what reached the pod. It
/// reads before it answers: a server that answered at connect raced the gateway's write of
/// the request (hyper then fails it as "received unexpected message from connection").
const ECHO: &str = r#"sh -c 'rm -f /tmp/f; mkfifo /tmp/f; while true; do cat /tmp/f | nc -l -p 8000 | (while read -r l; do echo "$l"; [ ${#l} -le 1 ] && break; done; printf "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok" > /tmp/f); done'"#;

/// `cove <args>` with `token` instead of the admin token.
fn cli_as(d: &Daemon, token: &str, args: &[&str]) -> Output {
    d.cli_command(args)
        .env("COVE_TOKEN", token)
        .output()
        .expect("running cove")
}

/// `cove token create NAME --workspace WS`; returns the secret.
#[track_caller]
fn create_token(d: &Daemon, name: &str, ws: &str) -> String {
    let secret = ok(&d.cli(&["token", "create", name, "--workspace", ws]))
        .trim()
        .to_string();
    assert!(
        secret.starts_with("cove_") && secret.len() >= 5 + 64,
        "{secret}"
    );
    secret
}

#[track_caller]
fn run_as(d: &Daemon, token: &str, extra: &[&str]) -> Container {
    let image = registry().image("latest");
    let mut args = vec!["run", "--ports", "8000"];
    if !extra.contains(&"--image") {
        args.extend_from_slice(&["--image", &image]);
    }
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--format", "json"]);
    let out = ok(&cli_as(d, token, &args));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("cove run json: {e}: {out}"))
}

#[track_caller]
fn deploy_as(d: &Daemon, token: &str, name: &str, extra_toml: &str) -> Deployment {
    let file = d.root.join(format!("{name}.toml"));
    std::fs::write(
        &file,
        format!(
            "name = \"{name}\"\nimage = \"{}\"\nports = [8000]\nentrypoint = {ECHO:?}\n{extra_toml}",
            registry().image("latest")
        ),
    )
    .unwrap();
    let out = ok(&cli_as(
        d,
        token,
        &["deploy", &file.to_string_lossy(), "--format", "json"],
    ));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("deploy json: {e}: {out}"))
}

#[track_caller]
fn containers_as(d: &Daemon, token: &str) -> Vec<String> {
    let out = ok(&cli_as(
        d,
        token,
        &["container", "list", "--format", "json"],
    ));
    let list: Vec<Container> = serde_json::from_str(&out).unwrap();
    list.into_iter().map(|c| c.id).collect()
}

#[track_caller]
fn deployments_as(d: &Daemon, token: &str) -> Vec<String> {
    let out = ok(&cli_as(
        d,
        token,
        &["deployment", "list", "--format", "json"],
    ));
    let list: Vec<Deployment> = serde_json::from_str(&out).unwrap();
    list.into_iter().map(|d| d.name).collect()
}

/// One HTTP/1.1 request with extra headers and an optional JSON body; returns status and body.
fn request(
    addr: &str,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LONG)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method != "GET" {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut rest = String::new();
    let _ = r.read_to_string(&mut rest);
    let body = rest.split_once("\r\n\r\n").map(|x| x.1).unwrap_or_default();
    (status, body.to_string())
}

/// An API request with `token`.
fn api(d: &Daemon, token: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let auth = format!("Bearer {token}");
    request(
        &format!("127.0.0.1:{}", d.api_port),
        method,
        "127.0.0.1",
        path,
        &[("Authorization", &auth)],
        body,
    )
}

#[test]
fn each_workspace_sees_and_controls_only_its_own() {
    let d = Daemon::start();
    let a = create_token(&d, "alice", "team-a");
    let b = create_token(&d, "bob", "team-b");

    // Only the admin token manages tokens; listing shows no secret.
    let listed = ok(&d.cli(&["token", "list", "--format", "json"]));
    let tokens: Vec<TokenInfo> = serde_json::from_str(&listed).unwrap();
    let summary: Vec<(&str, &str)> = tokens
        .iter()
        .map(|t| (t.name.as_str(), t.workspace.as_str()))
        .collect();
    assert_eq!(summary, [("alice", "team-a"), ("bob", "team-b")]);
    assert!(!listed.contains(&a[5..]) && !listed.contains(&b[5..]));
    let table = ok(&d.cli(&["token", "list"]));
    assert!(
        table.contains("alice") && table.contains("team-b"),
        "{table}"
    );
    failed_with(&cli_as(&d, &a, &["token", "list"]), &["admin"]);
    failed_with(
        &cli_as(&d, &a, &["token", "create", "x", "--workspace", "team-a"]),
        &["admin"],
    );
    // A token's workspace is never `default` by omission.
    let o = d.cli(&["token", "create", "nows"]);
    assert!(
        !o.status.success() && stderr(&o).contains("--workspace"),
        "{}",
        stderr(&o)
    );
    let (status, text) = api(
        &d,
        &d.token,
        "POST",
        "/v1/tokens",
        Some(r#"{"name":"nows"}"#),
    );
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("`workspace`") && text.lines().count() == 1,
        "{text}"
    );

    // Each workspace makes a pod and a deployment.
    let pa = run_as(&d, &a, &["--entrypoint", "httpd -f -p 8000 -h /www"]);
    let pb = run_as(&d, &b, &["--entrypoint", "httpd -f -p 8000 -h /www"]);
    assert_eq!(
        (pa.workspace.as_str(), pb.workspace.as_str()),
        ("team-a", "team-b")
    );
    let da = deploy_as(&d, &a, "web-a", "");
    let db = deploy_as(&d, &b, "web-b", "");
    assert_eq!(da.workspace, "team-a");
    let ca = da.container.clone().expect("web-a runs").id;
    let cb = db.container.clone().expect("web-b runs").id;

    // Lists show only one's own; the admin sees everything.
    let mut mine = containers_as(&d, &a);
    mine.sort();
    let mut want = vec![pa.id.clone(), ca.clone()];
    want.sort();
    assert_eq!(mine, want);
    assert!(!containers_as(&d, &b).contains(&pa.id));
    assert_eq!(deployments_as(&d, &a), ["web-a"]);
    assert_eq!(deployments_as(&d, &b), ["web-b"]);
    let all = containers_as(&d, &d.token);
    assert!([&pa.id, &pb.id, &ca, &cb].iter().all(|id| all.contains(id)));
    assert_eq!(deployments_as(&d, &d.token), ["web-a", "web-b"]);

    // Another workspace's things answer 404, exactly like things that do not exist.
    let cross = [
        ("GET", format!("/v1/containers/{}", pb.id), None),
        ("GET", format!("/v1/containers/{}/logs", pb.id), None),
        ("POST", format!("/v1/containers/{}/stop", pb.id), None),
        (
            "POST",
            format!("/v1/containers/{}/exec", pb.id),
            Some(r#"{"cmd":["true"]}"#),
        ),
        ("GET", format!("/v1/containers/{cb}"), None),
        ("GET", "/v1/deployments/web-b".to_string(), None),
        ("POST", "/v1/deployments/web-b/stop".to_string(), None),
        ("DELETE", "/v1/deployments/web-b".to_string(), None),
    ];
    for (method, path, body) in &cross {
        let (status, text) = api(&d, &a, method, path, *body);
        assert_eq!(status, 404, "{method} {path} as team-a: {text}");
        assert!(
            text.contains("no container") || text.contains("no deployment"),
            "{text}"
        );
    }
    let (status, _) = api(&d, &a, "GET", "/v1/containers/pod-nope", None);
    assert_eq!(status, 404);
    failed_with(
        &cli_as(&d, &a, &["container", "inspect", &pb.id]),
        &["no container"],
    );
    failed_with(
        &cli_as(&d, &a, &["container", "stop", &pb.id]),
        &["no container"],
    );
    failed_with(
        &cli_as(&d, &a, &["deployment", "delete", "web-b"]),
        &["no deployment"],
    );
    // A name another workspace has is refused, and changes nothing of it.
    let file = d.root.join("web-b.toml");
    failed_with(
        &cli_as(&d, &a, &["deploy", &file.to_string_lossy()]),
        &["taken"],
    );
    // Nothing of team-b's was touched; its owner controls it.
    let still = ok(&cli_as(&d, &b, &["container", "inspect", &pb.id]));
    assert!(still.contains("RUNNING"), "{still}");
    assert_eq!(deployments_as(&d, &b), ["web-b"]);
    let out = ok(&cli_as(
        &d,
        &b,
        &["container", "exec", &pb.id, "--", "echo", "hi"],
    ));
    assert_eq!(out.trim(), "hi");
    ok(&cli_as(&d, &a, &["container", "logs", &pa.id]));

    // Secrets are not in the database, only their hashes.
    for f in ["state.db", "state.db-wal"] {
        let bytes = std::fs::read(d.data_dir.join(f)).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        for secret in [&a, &b] {
            assert!(!text.contains(&secret[5..]), "{f} holds a token secret");
        }
    }

    // Revoked: refused at once; the other token still works.
    ok(&d.cli(&["token", "revoke", "alice"]));
    let (status, text) = api(&d, &a, "GET", "/v1/containers", None);
    assert_eq!(status, 401, "{text}");
    failed_with(
        &cli_as(&d, &a, &["container", "list"]),
        &["invalid", "token"],
    );
    assert!(containers_as(&d, &b).contains(&pb.id));
    let left = ok(&d.cli(&["token", "list", "--format", "json"]));
    assert!(!left.contains("alice"), "{left}");
    failed_with(&d.cli(&["token", "revoke", "alice"]), &["no token"]);

    for name in ["web-a", "web-b"] {
        ok(&d.cli(&["deployment", "delete", name]));
    }
}

/// Waits until `path` through the gateway answers 200 with `headers`; returns the body.
fn wait_ok(d: &Daemon, host: &str, path: &str, headers: &[(&str, &str)]) -> String {
    wait_until(&format!("{host}{path} to answer 200"), LONG, || {
        let (status, body) = request(&d.gw(), "GET", host, path, headers, None);
        (status == 200).then_some(body)
    })
}

#[test]
fn authorized_pods_need_a_token_of_their_workspace_and_never_see_it() {
    let d = Daemon::start();
    let a = create_token(&d, "alice", "team-a");
    let b = create_token(&d, "bob", "team-b");
    let pod = run_as(&d, &a, &["--authorized", "--entrypoint", ECHO]);
    assert!(pod.authorized);
    let host = Daemon::host_for(&pod, 8000);
    let bearer = |t: &str| format!("Bearer {t}");

    // The owner's token gets through (the pod may still be binding its port).
    assert_eq!(
        wait_ok(&d, &host, "/h?x=1", &[("Authorization", &bearer(&a))]),
        "ok"
    );

    // No token, another workspace's token, a revoked or made-up one: 401, also for upgrades.
    let gw = d.gw();
    let refused = [
        ("/", vec![]),
        ("/", vec![("Authorization", bearer(&b))]),
        ("/", vec![("Authorization", bearer("cove_made_up"))]),
        ("/?auth_token=nope", vec![]),
        (&*format!("/?auth_token={b}"), vec![]),
        (
            "/ws",
            vec![
                ("Upgrade", "websocket".to_string()),
                ("Connection", "Upgrade".to_string()),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==".to_string()),
                ("Sec-WebSocket-Version", "13".to_string()),
            ],
        ),
    ];
    for (path, headers) in &refused {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, body) = request(&gw, "GET", &host, path, &h, None);
        assert_eq!(status, 401, "{path} {headers:?}: {body}");
        assert_eq!(body.lines().count(), 1, "one line: {body}");
    }
    let (status, _) = request(
        &gw,
        "GET",
        "127.0.0.1",
        &format!("/pod/{}/8000/", pod.stub_id),
        &[],
        None,
    );
    assert_eq!(status, 401, "the path form is guarded too");

    // The token as a query parameter (host and path forms), and the admin token.
    let q = format!("/q?x=1&auth_token={a}&y=two%20words");
    assert_eq!(wait_ok(&d, &host, &q, &[]), "ok");
    let p = format!("/pod/{}/8000/p?auth_token={a}", pod.stub_id);
    assert_eq!(wait_ok(&d, "127.0.0.1", &p, &[]), "ok");
    assert_eq!(
        wait_ok(&d, &host, "/admin", &[("Authorization", &bearer(&d.token))]),
        "ok"
    );

    // What reached the pod: the requests, other parameters intact, and never the token.
    let log = wait_until("the pod to log the requests", LONG, || {
        let log = ok(&cli_as(&d, &a, &["container", "logs", &pod.id]));
        log.contains("GET /admin ").then_some(log)
    });
    assert!(log.contains("GET /h?x=1 HTTP/1.1"), "{log}");
    assert!(log.contains("GET /q?x=1&y=two%20words HTTP/1.1"), "{log}");
    assert!(log.contains("GET /p HTTP/1.1"), "{log}");
    let lower = log.to_lowercase();
    assert!(
        !lower.contains("authorization"),
        "the pod saw a token header: {log}"
    );
    assert!(
        !lower.contains("auth_token"),
        "the pod saw a token parameter: {log}"
    );
    for secret in [&a, &b, &d.token] {
        assert!(!log.contains(&secret[5..]), "the pod saw a secret: {log}");
    }

    // Revoking the token closes the pod to it at once.
    ok(&d.cli(&["token", "revoke", "alice"]));
    let (status, _) = request(
        &gw,
        "GET",
        &host,
        "/",
        &[("Authorization", &bearer(&a))],
        None,
    );
    assert_eq!(status, 401);

    // A public pod stays open, and its requests are forwarded as they came.
    let open = run_as(&d, &b, &["--entrypoint", ECHO]);
    assert!(!open.authorized);
    let open_host = Daemon::host_for(&open, 8000);
    assert_eq!(
        wait_ok(
            &d,
            &open_host,
            "/?auth_token=mine",
            &[("Authorization", "Bearer own")]
        ),
        "ok"
    );
    // ...except a Cove token, which no pod is given.
    assert_eq!(
        wait_ok(&d, &open_host, "/cove", &[("Authorization", &bearer(&b))]),
        "ok"
    );
    // ...nor in its URL, in either form: the URL may have belonged to an authorized pod.
    let in_url = format!("/u?x=1&auth_token={b}&y=2");
    assert_eq!(wait_ok(&d, &open_host, &in_url, &[]), "ok");
    let path_form = format!("/pod/{}/8000/p?auth%5Ftoken={a}", open.stub_id);
    assert_eq!(wait_ok(&d, "127.0.0.1", &path_form, &[]), "ok");
    let log = wait_until("the public pod to log the requests", LONG, || {
        let log = ok(&cli_as(&d, &b, &["container", "logs", &open.id]));
        (log.contains("GET /cove ") && log.contains("GET /u?") && log.contains("GET /p"))
            .then_some(log)
    });
    assert!(log.contains("GET /?auth_token=mine HTTP/1.1"), "{log}");
    assert!(log.contains("GET /u?x=1&y=2 HTTP/1.1"), "{log}");
    assert!(log.contains("GET /p HTTP/1.1"), "{log}");
    assert!(!log.contains(&a[5..]), "the pod saw a secret: {log}");
    assert!(
        log.to_lowercase().contains("authorization: bearer own"),
        "the app's own Authorization is the app's: {log}"
    );
    assert!(!log.contains(&b[5..]), "the pod saw a secret: {log}");

    // An authorized deployment: guarded by its stable URL, also while scaled to zero.
    let dep = deploy_as(
        &d,
        &b,
        "private",
        "authorized = true\nkeep_warm_seconds = 1\n",
    );
    let dep_host = format!("{}-8000.localhost", dep.url_key);
    let (status, _) = request(&gw, "GET", &dep_host, "/", &[], None);
    assert_eq!(status, 401);
    assert_eq!(
        wait_ok(&d, &dep_host, "/", &[("Authorization", &bearer(&b))]),
        "ok"
    );
    let c = dep.container.expect("deployment runs").id;
    d.wait_status(&c, ContainerStatus::Stopped, LONG);
    let (status, _) = request(&gw, "GET", &dep_host, "/", &[], None);
    assert_eq!(status, 401, "a request without a token does not wake it");
    let listed: Vec<Deployment> =
        serde_json::from_str(&ok(&d.cli(&["deployment", "list", "--format", "json"]))).unwrap();
    assert!(
        listed.iter().all(|x| x.container.is_none()),
        "still asleep: {listed:?}"
    );
    assert_eq!(
        wait_ok(
            &d,
            &dep_host,
            "/?auth_token={}".replace("{}", &b).as_str(),
            &[]
        ),
        "ok"
    );
    ok(&d.cli(&["deployment", "delete", "private"]));
}

#[track_caller]
fn images_as(d: &Daemon, token: &str) -> Vec<String> {
    let out = ok(&cli_as(d, token, &["image", "list", "--format", "json"]));
    let list: Vec<cove_types::ImageInfo> = serde_json::from_str(&out).unwrap();
    list.into_iter().map(|i| i.reference).collect()
}

#[test]
fn image_references_belong_to_their_workspace() {
    let d = Daemon::start();
    let a = create_token(&d, "alice", "team-a");
    let b = create_token(&d, "bob", "team-b");
    let image = registry().image("latest");

    // team-a pulls and builds; team-b sees neither, and cannot remove or run them.
    ok(&cli_as(&d, &a, &["image", "pull", &image]));
    let built = ok(&cli_as(
        &d,
        &a,
        &[
            "image",
            "build",
            "--base",
            &image,
            "--command",
            "echo secret-a > /a.txt",
        ],
    ));
    let built = built
        .lines()
        .find_map(|l| l.strip_prefix("=> Built "))
        .unwrap_or_else(|| panic!("no built reference: {built}"))
        .trim()
        .to_string();
    let mine = images_as(&d, &a);
    assert!(mine.contains(&built) && mine.iter().any(|r| r.ends_with("busybox:latest")));
    assert!(images_as(&d, &b).is_empty(), "team-b sees nothing yet");
    failed_with(&cli_as(&d, &b, &["image", "rm", &built]), &["not found"]);
    failed_with(
        &cli_as(
            &d,
            &b,
            &["run", "--image", &built, "--entrypoint", "cat /a.txt"],
        ),
        &["not found"],
    );
    let all = images_as(&d, &d.token);
    assert!(all.contains(&built), "the admin sees every image: {all:?}");

    // team-b gets the registry image by pulling it itself (running it pulls it too); both
    // hold it, and team-b removing its reference leaves team-a's.
    let pb = run_as(&d, &b, &["--entrypoint", "httpd -f -p 8000 -h /www"]);
    assert_eq!(pb.workspace, "team-b");
    let theirs = images_as(&d, &b);
    assert!(
        theirs.iter().all(|r| r.ends_with("busybox:latest")),
        "{theirs:?}"
    );
    assert_eq!(theirs.len(), 1);
    ok(&cli_as(&d, &b, &["container", "stop", &pb.id]));
    ok(&cli_as(&d, &b, &["image", "rm", &image]));
    assert!(images_as(&d, &b).is_empty());
    assert!(images_as(&d, &a)
        .iter()
        .any(|r| r.ends_with("busybox:latest")));

    // team-a still runs what it built.
    let pa = run_as(&d, &a, &["--image", &built, "--entrypoint", "cat /a.txt"]);
    let logs = wait_until("the built file in the logs", LONG, || {
        let l = ok(&cli_as(&d, &a, &["container", "logs", &pa.id]));
        l.contains("secret-a").then_some(l)
    });
    assert!(logs.contains("secret-a"));
}

#[test]
fn tokens_and_guards_survive_a_daemon_restart() {
    let mut d = Daemon::start();
    let a = create_token(&d, "alice", "team-a");
    let gone = create_token(&d, "gone", "team-a");
    ok(&d.cli(&["token", "revoke", "gone"]));
    let pod = run_as(
        &d,
        &a,
        &[
            "--authorized",
            "--keep-warm-seconds",
            "-1",
            "--entrypoint",
            ECHO,
        ],
    );
    let dep = deploy_as(&d, &a, "private", "authorized = true\n");
    let st = d.terminate().expect("the daemon ran");
    assert!(st.success(), "{st:?}");
    d.restart();

    // The pod was re-adopted and is still guarded; so is the deployment's stable URL.
    let host = Daemon::host_for(&pod, 8000);
    let bearer = format!("Bearer {a}");
    assert_eq!(wait_ok(&d, &host, "/", &[("Authorization", &bearer)]), "ok");
    let (status, _) = request(&d.gw(), "GET", &host, "/", &[], None);
    assert_eq!(status, 401);
    let dep_host = format!("{}-8000.localhost", dep.url_key);
    let (status, _) = request(&d.gw(), "GET", &dep_host, "/", &[], None);
    assert_eq!(status, 401);
    assert_eq!(
        wait_ok(&d, &dep_host, "/", &[("Authorization", &bearer)]),
        "ok"
    );
    // Tokens were reloaded: the live one works, the revoked one does not.
    assert_eq!(containers_as(&d, &a).len(), 2);
    let (status, _) = api(&d, &gone, "GET", "/v1/containers", None);
    assert_eq!(status, 401);
    ok(&d.cli(&["deployment", "delete", "private"]));
}

/// A docker-archive of the test image named `tags`, as `docker save` writes it.
fn docker_archive(dir: &Path, file: &str, tags: &[&str]) -> PathBuf {
    let tar = dir.join(file);
    let mut cmd = Command::new("skopeo");
    cmd.args(["copy", "--quiet"]);
    for extra in &tags[1..] {
        cmd.args(["--additional-tag", extra]);
    }
    cmd.arg(format!("oci:{}:latest", test_image_layout().display()))
        .arg(format!("docker-archive:{}:{}", tar.display(), tags[0]));
    ok(&cmd.output().expect("running skopeo"));
    tar
}

/// `(reference, digest)` of every image the admin sees.
fn all_images(d: &Daemon) -> Vec<(String, String)> {
    let out = ok(&d.cli(&["image", "list", "--format", "json"]));
    let list: Vec<cove_types::ImageInfo> = serde_json::from_str(&out).unwrap();
    list.into_iter().map(|i| (i.reference, i.digest)).collect()
}

#[test]
fn imports_never_change_another_workspaces_images() {
    let d = Daemon::start();
    let a = create_token(&d, "alice", "team-a");
    let b = create_token(&d, "bob", "team-b");
    let image = registry().image("latest");
    let work = scratch_dir("cove-test-tenant-import");
    ok(&cli_as(&d, &a, &["image", "pull", &image]));
    let before = all_images(&d);

    // team-b cannot import over team-a's registry image, nor into the build cache's names,
    // and a refused name refuses the whole archive before anything is named.
    let over = docker_archive(&work, "over.tar", &["cove.test/b-own:1", &image]);
    let cache = docker_archive(
        &work,
        "cache.tar",
        &["localhost/cove-build/0123456789abcdef:latest"],
    );
    for (tar, why) in [(&over, "another workspace"), (&cache, "build cache")] {
        let o = cli_as(&d, &b, &["image", "import", tar.to_str().unwrap()]);
        let line = failed_with(&o, &[why]);
        assert!(line.contains("cannot import as"), "{line}");
    }
    assert_eq!(all_images(&d), before, "nothing was named or changed");
    assert!(images_as(&d, &b).is_empty());

    // An archive whose second image fails leaves none of its names behind.
    let good = docker_archive(&work, "good.tar", &["cove.test/b-good:1"]);
    let x = work.join("x");
    std::fs::create_dir_all(&x).unwrap();
    ok(&Command::new("tar")
        .arg("-xf")
        .arg(&good)
        .arg("-C")
        .arg(&x)
        .output()
        .unwrap());
    let mf = x.join("manifest.json");
    let mut items: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&mf).unwrap()).unwrap();
    let mut bad = items[0].clone();
    bad["RepoTags"] = serde_json::json!(["cove.test/b-bad:1"]);
    bad["Layers"] = serde_json::json!([]);
    items.push(bad);
    std::fs::write(&mf, serde_json::to_vec(&items).unwrap()).unwrap();
    let two = work.join("two.tar");
    let names: Vec<String> = std::fs::read_dir(&x)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    ok(&Command::new("tar")
        .arg("-cf")
        .arg(&two)
        .arg("-C")
        .arg(&x)
        .args(&names)
        .output()
        .unwrap());
    failed_with(
        &cli_as(&d, &b, &["image", "import", two.to_str().unwrap()]),
        &["diff_ids"],
    );
    assert_eq!(all_images(&d), before, "a failed import names nothing");

    // A free name imports; team-b may import it again, and the admin may import anything.
    let out = ok(&cli_as(
        &d,
        &b,
        &["image", "import", good.to_str().unwrap()],
    ));
    assert!(out.contains("cove.test/b-good:1"), "{out}");
    ok(&cli_as(
        &d,
        &b,
        &["image", "import", good.to_str().unwrap()],
    ));
    assert_eq!(images_as(&d, &b), ["cove.test/b-good:1"]);
    failed_with(
        &cli_as(&d, &a, &["image", "import", good.to_str().unwrap()]),
        &["another workspace"],
    );
    ok(&d.cli(&["image", "import", cache.to_str().unwrap()]));
}

#[test]
fn image_in_use_by_another_workspace_is_not_named() {
    let d = Daemon::start();
    let a = create_token(&d, "alice", "team-a");
    let b = create_token(&d, "bob", "team-b");
    let image = registry().image("latest");
    ok(&cli_as(&d, &a, &["image", "pull", &image]));
    // team-b runs the image, then drops its reference (team-a still holds it)...
    let pb = run_as(&d, &b, &["--entrypoint", "httpd -f -p 8000 -h /www"]);
    ok(&cli_as(&d, &b, &["image", "rm", &image]));
    // ...so team-a removing it is refused without naming team-b's pod.
    let line = failed_with(&cli_as(&d, &a, &["image", "rm", &image]), &["in use"]);
    assert!(!line.contains(&pb.id) && !line.contains("pod-"), "{line}");
    // The admin is told which.
    let line = failed_with(&d.cli(&["image", "rm", &image]), &["in use", "used by"]);
    assert!(line.contains(&pb.id), "{line}");
}

#[test]
fn uploads_over_the_limit_are_refused_and_leave_nothing() {
    let d = Daemon::start_with(DaemonOpts {
        extra_server_args: vec!["--max-upload-bytes".into(), "65536".into()],
        ..Default::default()
    });
    let work = scratch_dir("cove-test-upload-cap");
    let tar = docker_archive(&work, "big.tar", &["cove.test/big:1"]);
    assert!(std::fs::metadata(&tar).unwrap().len() > 65536);
    let line = failed_with(
        &d.cli(&["image", "import", tar.to_str().unwrap()]),
        &["--max-upload-bytes"],
    );
    assert!(line.contains("65536"), "{line}");
    let left: Vec<_> = std::fs::read_dir(d.data_dir.join("tmp"))
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "upload files left: {left:?}");
    assert!(all_images(&d).is_empty());
    // Under the limit it works.
    let roomy = Daemon::start();
    ok(&roomy.cli(&["image", "import", tar.to_str().unwrap()]));
}

/// One GET through the gateway; returns the status, the response head (lowercased) and body.
fn get_head(d: &Daemon, host: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let mut s = TcpStream::connect(d.gw()).unwrap();
    s.set_read_timeout(Some(LONG)).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    s.write_all(format!("{req}\r\n").as_bytes()).unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_lowercase(), body.to_string())
}

#[test]
fn browsers_trade_the_url_token_for_a_cookie_the_pod_never_sees() {
    let d = Daemon::start();
    let a = create_token(&d, "alice", "team-a");
    let pod = run_as(&d, &a, &["--authorized", "--entrypoint", ECHO]);
    let host = Daemon::host_for(&pod, 8000);
    wait_ok(
        &d,
        &host,
        "/up",
        &[("Authorization", &format!("Bearer {a}"))],
    );
    let html = ("Accept", "text/html,application/xhtml+xml,*/*;q=0.8");
    let navigate = ("Sec-Fetch-Mode", "navigate");

    // A browser opening a link with the token: back to the same URL without it, with a cookie.
    let (status, head, _) = get_head(&d, &host, &format!("/b?x=1&auth_token={a}&y=2"), &[html]);
    assert_eq!(status, 302, "{head}");
    assert!(head.contains("\r\nlocation: /b?x=1&y=2\r\n"), "{head}");
    let set_cookie = format!("\r\nset-cookie: cove_auth={a}; path=/; httponly; samesite=lax\r\n");
    assert!(head.contains(&set_cookie), "{head}");
    // The path form scopes the cookie to the pod's prefix, as the client spelled it.
    let upper = pod.stub_id.to_uppercase();
    let p = format!("/pod/{upper}/8000/pp?auth_token={a}");
    let (status, head, _) = get_head(&d, "127.0.0.1", &p, &[navigate]);
    assert_eq!(status, 302, "{head}");
    let loc = format!("\r\nlocation: /pod/{}/8000/pp\r\n", pod.stub_id);
    assert!(head.contains(&loc), "{head}");
    assert!(
        head.contains(&format!("path=/pod/{}/8000;", pod.stub_id)),
        "{head}"
    );
    assert!(!head.contains("domain="), "{head}");

    // Following it: the cookie is the token; the pod's own cookies still arrive, and the
    // Referer (the URL the browser came from) loses the token.
    let cookie = format!("pod_session=keep; cove_auth={a}; theme=dark");
    let referer = format!("http://{host}/b?x=1&auth_token={a}&y=2");
    let browsing = [html, ("Cookie", &cookie), ("Referer", &referer)];
    let (status, _, body) = get_head(&d, &host, "/b?x=1&y=2", &browsing);
    assert_eq!((status, body.as_str()), (200, "ok"));

    // API clients keep sending the token in the URL without a redirect.
    let (status, _, body) = get_head(
        &d,
        &host,
        &format!("/c?auth_token={a}"),
        &[("Accept", "*/*")],
    );
    assert_eq!((status, body.as_str()), (200, "ok"));

    // No cookie, or a made-up one: 401, and the bad cookie is cleared.
    let (status, head, _) = get_head(&d, &host, "/", &[html, ("Cookie", "pod_session=keep")]);
    assert_eq!(status, 401, "{head}");
    let (status, head, _) = get_head(&d, &host, "/", &[html, ("Cookie", "cove_auth=cove_nope")]);
    assert_eq!(status, 401, "{head}");
    assert!(
        head.contains("set-cookie: cove_auth=; path=/; max-age=0"),
        "{head}"
    );

    // What reached the pod: never the token, in no header and no URL.
    let log = wait_until("the pod to log the requests", LONG, || {
        let log = ok(&cli_as(&d, &a, &["container", "logs", &pod.id]));
        log.contains("GET /c ").then_some(log)
    });
    assert!(log.contains("GET /b?x=1&y=2 HTTP/1.1"), "{log}");
    assert!(log.contains("pod_session=keep; theme=dark"), "{log}");
    assert!(
        log.contains(&format!("http://{host}/b?x=1&y=2")),
        "the referer: {log}"
    );
    assert!(
        !log.contains("GET /pp") && !log.contains("GET / "),
        "redirects and refusals: {log}"
    );
    let lower = log.to_lowercase();
    assert!(
        !lower.contains("auth_token") && !lower.contains("cove_auth"),
        "{log}"
    );
    assert!(!log.contains(&a[5..]), "the pod saw the secret: {log}");

    // Revoked: the cookie stops working at once.
    ok(&d.cli(&["token", "revoke", "alice"]));
    let (status, _, _) = get_head(&d, &host, "/", &[html, ("Cookie", &cookie)]);
    assert_eq!(status, 401);
}
