//! `cove run` and the gateway: the URL answers (Host and path forms), env reaches the pod,
//! two pods share a port number, HTTPS, 404 and 502.
mod common;

use std::process::Command;

use common::*;

#[test]
fn run_prints_progress_and_the_url_answers() {
    let d = Daemon::start();
    let img = registry().image("latest");
    let out = ok(&d.cli(&[
        "run",
        "--image",
        &img,
        "--ports",
        "8000",
        "--env",
        "GREETING=hi",
        "--cpu",
        "0.5",
        "--memory",
        "128",
        "--keep-warm-seconds",
        "300",
        "--entrypoint",
        "httpd -f -p 8000 -h /www",
    ]));
    assert!(out.contains("=> Creating container"), "{out}");
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("=> Container created successfully ===> "))
        .unwrap_or_else(|| panic!("no created line: {out}"))
        .trim()
        .to_string();
    // pod-<uuid>-<8 hex>
    let rest = id.strip_prefix("pod-").expect("id starts with pod-");
    let (uuid, suffix) = rest.rsplit_once('-').unwrap();
    assert_eq!(uuid.len(), 36, "{id}");
    assert!(
        suffix.len() == 8 && suffix.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    let url = format!("http://{uuid}-8000.localhost:{}", d.gw_port);
    assert!(
        out.contains(&format!("✨ Container hosted at: {url}")),
        "{out}"
    );

    let c = d.inspect(&id);
    assert_eq!(c.stub_id, uuid);
    assert_eq!(c.cpu_millis, 500);
    assert_eq!(c.memory_mib, 128);
    assert_eq!(c.keep_warm_seconds, 300);
    assert_eq!(c.urls.len(), 1);
    assert_eq!(c.urls[0].port, 8000);
    assert_eq!(c.urls[0].url, url);

    // Host form, as a user's curl sends it (curl resolves *.localhost itself).
    let body = d.wait_serving(&c, 8000, "/");
    assert_eq!(body.trim(), "Hello from a Cove pod");
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "30", &format!("{url}/")])
        .output()
        .unwrap();
    assert_eq!(ok(&o).trim(), "Hello from a Cove pod");
    // Path form.
    let r = http_get(&d.gw(), "127.0.0.1", &format!("/pod/{uuid}/8000/")).unwrap();
    assert_eq!((r.status, r.body.trim()), (200, "Hello from a Cove pod"));
    // The env var reached the process.
    let env = ok(&d.cli(&["container", "exec", &id, "--", "sh", "-c", "echo $GREETING"]));
    assert_eq!(env.trim(), "hi");
}

#[test]
fn env_reaches_the_pod_and_two_pods_share_port_8888() {
    let d = Daemon::start();
    let img = registry().image("latest");
    let ep = "sh -c 'mkdir -p /tmp/w && echo $GREETING > /tmp/w/index.html && exec httpd -f -p 8888 -h /tmp/w'";
    let a = d.run_pod(&[
        "--image",
        &img,
        "--ports",
        "8888",
        "--env",
        "GREETING=one",
        "--entrypoint",
        ep,
    ]);
    let b = d.run_pod(&[
        "--image",
        &img,
        "--ports",
        "8888",
        "--env",
        "GREETING=two",
        "--entrypoint",
        ep,
    ]);
    assert_ne!(a.address, b.address);
    assert_eq!(d.wait_serving(&a, 8888, "/").trim(), "one");
    assert_eq!(d.wait_serving(&b, 8888, "/").trim(), "two");
    assert_eq!(d.get(&a, 8888, "/").body.trim(), "one");
}

#[test]
fn unknown_pod_is_404_and_a_closed_port_is_502() {
    let d = Daemon::start();
    let r = http_get(
        &d.gw(),
        "00000000-0000-4000-8000-000000000000-8000.localhost",
        "/",
    )
    .unwrap();
    assert_eq!(r.status, 404, "{r:?}");
    let r = http_get(
        &d.gw(),
        "127.0.0.1",
        "/pod/00000000-0000-4000-8000-000000000000/8000/",
    )
    .unwrap();
    assert_eq!(r.status, 404, "{r:?}");
    // Exposes 9000, but httpd listens on 8000.
    let c = d.run_pod(&[
        "--image",
        &registry().image("latest"),
        "--ports",
        "9000,8000",
    ]);
    d.wait_serving(&c, 8000, "/");
    let r = d.get(&c, 9000, "/");
    assert_eq!(r.status, 502, "{r:?}");
    assert!(!r.body.trim().is_empty(), "502 should say why");
    // A port the pod does not expose is not served.
    let r = d.get(&c, 22, "/");
    assert!(r.status == 404 || r.status == 502, "{r:?}");
}

#[test]
fn https_gateway_serves_with_the_generated_certificate() {
    let d = Daemon::start_with(DaemonOpts {
        tls: true,
        ..Default::default()
    });
    let c = d.run_httpd("300");
    d.wait_serving(&c, 8000, "/");
    let url = format!(
        "https://{}-8000.localhost:{}/",
        c.stub_id,
        d.tls_port.unwrap()
    );
    // The daemon keeps what a client can trust: a local CA (`tls/ca.crt`) that signs the
    // gateway's certificate, or the self-signed gateway certificate itself (`tls/gateway.crt`).
    let ca = d.data_dir.join("tls/ca.crt");
    let own = d.data_dir.join("tls/gateway.crt");
    let pem_path = if ca.is_file() { &ca } else { &own };
    assert!(
        pem_path.is_file(),
        "neither {} nor {}",
        ca.display(),
        own.display()
    );
    let pem = std::fs::read_to_string(pem_path).unwrap();
    assert!(pem.contains("BEGIN CERTIFICATE"));
    let curl = |extra: &[&str]| {
        Command::new("curl")
            .args(["-sS", "--max-time", "30"])
            .args(extra)
            .arg(&url)
            .output()
            .unwrap()
    };
    if ca.is_file() {
        // A CA-signed leaf verifies without -k.
        let o = curl(&["--cacert", ca.to_str().unwrap()]);
        assert_eq!(ok(&o).trim(), "Hello from a Cove pod");
    }
    let o = curl(&["-k"]);
    assert_eq!(ok(&o).trim(), "Hello from a Cove pod");
    let info = ok(&d.cli(&["info"]));
    assert!(info.contains(&format!("{}", d.tls_port.unwrap())), "{info}");
    assert!(info.contains(&format!("{}", d.gw_port)), "{info}");
}
