//! Images between hosts: the daemon's internal OCI distribution read endpoint (`/v2/` on
//! the API listener), read by real clients (skopeo, curl), its token checks and its
//! refusals of hostile names and digests; and a second daemon that gets an image only the
//! first one has through `ImageStore::fetch_from_peer`, then serves a pod made from it.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use cove_image::{ImageStore, Peer};
use cove_types::ImageInfo;

use common::*;

/// `cove image list --format json`: the image named `reference`.
#[track_caller]
fn image_info(d: &Daemon, reference: &str) -> ImageInfo {
    let out = ok(&d.cli(&["image", "list", "--format", "json"]));
    let list: Vec<ImageInfo> = serde_json::from_str(&out).unwrap();
    list.into_iter()
        .find(|i| i.reference == reference)
        .unwrap_or_else(|| panic!("{reference} not in {out}"))
}

fn skopeo(args: &[&str]) -> Output {
    Command::new("skopeo")
        .args(args)
        .output()
        .expect("running skopeo")
}

/// `curl` against the daemon's API: (status, headers and body as text).
fn curl(d: &Daemon, method: &str, path: &str, token: Option<&str>) -> (u16, String, String) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "--path-as-is",
        "-D",
        "/dev/stderr",
        "-w",
        "\n%{http_code}",
    ]);
    if method == "HEAD" {
        cmd.args(["-I", "-o", "/dev/null"]);
    } else {
        cmd.args(["-o", "/dev/stdout", "-X", method]);
    }
    if let Some(t) = token {
        cmd.arg("-H").arg(format!("Authorization: Bearer {t}"));
    }
    let o = cmd
        .arg(format!("http://127.0.0.1:{}{path}", d.api_port))
        .output()
        .unwrap();
    let out = stdout(&o);
    let (body, code) = out.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), stderr(&o), body.to_string())
}

/// The `code` of a `{"errors": [...]}` body, which must be one line.
#[track_caller]
fn error_code(body: &str) -> String {
    assert_eq!(body.trim().lines().count(), 1, "one line: {body}");
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn sha256_file(p: &Path) -> String {
    let o = Command::new("sha256sum").arg(p).output().unwrap();
    format!("sha256:{}", ok(&o).split_whitespace().next().unwrap())
}

#[test]
fn skopeo_reads_a_pulled_image_and_the_endpoint_refuses_what_it_should() {
    let d = Daemon::start();
    let reg = registry();
    let image = reg.image("latest");
    ok(&d.cli(&["image", "pull", &image]));
    let info = image_info(&d, &image);
    let name = format!("{}/busybox", reg.addr.replace(':', "_"));
    let api = format!("127.0.0.1:{}", d.api_port);
    let token = d.token.clone();

    // skopeo with the admin token as its bearer token: the digest the registry has.
    let at_registry: serde_json::Value = serde_json::from_str(&ok(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{image}"),
    ])))
    .unwrap();
    for src in [format!("{name}:latest"), format!("{name}@{}", info.digest)] {
        let o = skopeo(&[
            "inspect",
            "--tls-verify=false",
            "--registry-token",
            &token,
            &format!("docker://{api}/{src}"),
        ]);
        let v: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
        assert_eq!(v["Digest"], info.digest.as_str(), "{src}");
        assert_eq!(v["Digest"], at_registry["Digest"]);
        assert_eq!(v["Layers"], at_registry["Layers"]);
        assert_eq!(v["RepoTags"], serde_json::json!(["latest"]));
    }

    // skopeo copy to an OCI layout, logging in with the token as a password (the token
    // flow through /v2/token): same manifest digest, every blob hashes to its name.
    let work = scratch_dir("cove-test-peer-copy");
    let out = work.join("copy");
    ok(&skopeo(&[
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--src-creds",
        &format!("cove:{token}"),
        &format!("docker://{api}/{name}:latest"),
        &format!("oci:{}:copied", out.display()),
    ]));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], info.digest.as_str());
    let blobs: Vec<_> = std::fs::read_dir(out.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(blobs.len() >= 3, "manifest, config and a layer: {blobs:?}");
    for b in &blobs {
        let want = format!("sha256:{}", b.file_name().unwrap().to_str().unwrap());
        assert_eq!(sha256_file(b), want);
    }

    // HEAD of a layer: its size and digest, no body.
    let layer = at_registry["Layers"][0].as_str().unwrap();
    let (code, headers, _) = curl(
        &d,
        "HEAD",
        &format!("/v2/{name}/blobs/{layer}"),
        Some(&token),
    );
    assert_eq!(code, 200, "{headers}");
    let headers = headers.to_lowercase();
    assert!(
        headers.contains(&format!("docker-content-digest: {layer}")),
        "{headers}"
    );
    let size = std::fs::metadata(out.join("blobs/sha256").join(&layer[7..]))
        .unwrap()
        .len();
    assert!(
        headers.contains(&format!("content-length: {size}")),
        "{headers}"
    );

    // No token, a wrong one: 401 with a challenge skopeo follows (and fails).
    for t in [None, Some("cove_not-a-token")] {
        let (code, headers, body) = curl(&d, "GET", &format!("/v2/{name}/manifests/latest"), t);
        assert_eq!(code, 401, "{body}");
        assert_eq!(error_code(&body), "UNAUTHORIZED");
        let h = headers.to_lowercase();
        assert!(
            h.contains(&format!(
                "www-authenticate: bearer realm=\"http://{api}/v2/token\""
            )),
            "{headers}"
        );
    }
    let o = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{api}/{name}:latest"),
    ]);
    assert!(
        !o.status.success(),
        "skopeo without a token: {}",
        stdout(&o)
    );
    let o = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        "cove:cove_wrong",
        &format!("docker://{api}/{name}:latest"),
    ]);
    assert!(!o.status.success(), "skopeo with a wrong password");

    // A workspace token: 403, also at the token endpoint.
    let ws_token = ok(&d.cli(&["token", "create", "peer-reader", "--workspace", "team-a"]))
        .trim()
        .to_string();
    let (code, _, body) = curl(&d, "GET", "/v2/", Some(&ws_token));
    assert_eq!((code, error_code(&body).as_str()), (403, "DENIED"));
    let (code, _, body) = curl(
        &d,
        "GET",
        &format!("/v2/{name}/blobs/{layer}"),
        Some(&ws_token),
    );
    assert_eq!((code, error_code(&body).as_str()), (403, "DENIED"));
    let (code, _, _) = curl(&d, "GET", "/v2/token", Some(&ws_token));
    assert_eq!(code, 403);
    let (code, _, _) = curl(&d, "GET", "/v2/", Some(&token));
    assert_eq!(code, 200);

    // Hostile and unknown names, digests and tags: 400/404 with one line, nothing read.
    let zeros = format!("sha256:{}", "0".repeat(64));
    let long = "a".repeat(300);
    let cases: Vec<(String, u16, &str)> = vec![
        (
            format!("/v2/{name}/blobs/sha256:..%2F..%2F..%2Fetc%2Fpasswd"),
            400,
            "DIGEST_INVALID",
        ),
        (
            format!("/v2/{name}/blobs/sha256:../../../../etc/passwd"),
            404,
            "NAME_UNKNOWN",
        ),
        (
            format!("/v2/{name}/blobs/SHA256:{}", "A".repeat(64)),
            400,
            "DIGEST_INVALID",
        ),
        (
            format!("/v2/{name}/blobs/sha512:{}", "0".repeat(128)),
            400,
            "UNSUPPORTED",
        ),
        (format!("/v2/{name}/blobs/{zeros}"), 404, "BLOB_UNKNOWN"),
        (
            format!("/v2/{name}/manifests/{zeros}"),
            404,
            "MANIFEST_UNKNOWN",
        ),
        (
            format!("/v2/{name}/manifests/no-such-tag"),
            404,
            "MANIFEST_UNKNOWN",
        ),
        (
            format!("/v2/{name}/manifests/..%2F..%2Fx"),
            400,
            "TAG_INVALID",
        ),
        ("/v2/../../etc/manifests/latest".into(), 400, "NAME_INVALID"),
        (
            "/v2/%2e%2e/%2e%2e/etc/blobs/".to_string() + &zeros,
            400,
            "NAME_INVALID",
        ),
        (format!("/v2/{long}/manifests/latest"), 400, "NAME_INVALID"),
        (
            "/v2/Upper/Case/manifests/latest".into(),
            400,
            "NAME_INVALID",
        ),
        (
            "/v2/no/such/repo/manifests/latest".into(),
            404,
            "NAME_UNKNOWN",
        ),
        (format!("/v2/{name}/tags/other"), 404, "NAME_UNKNOWN"),
        ("/v2/no/such/repo/tags/list".into(), 404, "NAME_UNKNOWN"),
    ];
    for (path, status, code) in &cases {
        let (got, _, body) = curl(&d, "GET", path, Some(&token));
        assert_eq!(
            (got, error_code(&body).as_str()),
            (*status, *code),
            "{path}: {body}"
        );
        assert!(body.len() < 400, "{path}: short error: {body}");
        assert!(!body.contains("root:"), "{path}: {body}");
    }
    // The endpoint only reads.
    for m in ["PUT", "DELETE", "POST"] {
        let (got, _, body) = curl(&d, m, &format!("/v2/{name}/manifests/latest"), Some(&token));
        assert_eq!(
            (got, error_code(&body).as_str()),
            (405, "UNSUPPORTED"),
            "{m}"
        );
    }
    // A build context shares the blob store but is never served.
    let ctx = work.join("ctx.tar");
    ok(&Command::new("tar")
        .arg("-cf")
        .arg(&ctx)
        .arg("-C")
        .arg(&*work)
        .arg("copy/index.json")
        .output()
        .unwrap());
    let o = Command::new("curl")
        .args(["-s", "-X", "POST", "--data-binary"])
        .arg(format!("@{}", ctx.display()))
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .arg(format!("http://{api}/v1/images/build/context"))
        .output()
        .unwrap();
    let uploaded: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    let ctx_digest = uploaded["digest"].as_str().expect("the context's digest");
    assert!(d
        .data_dir
        .join("images/blobs/sha256")
        .join(&ctx_digest[7..])
        .is_file());
    let (got, _, body) = curl(
        &d,
        "GET",
        &format!("/v2/{name}/blobs/{ctx_digest}"),
        Some(&token),
    );
    assert_eq!((got, error_code(&body).as_str()), (404, "BLOB_UNKNOWN"));
}

#[test]
fn a_second_daemon_fetches_an_image_from_the_first_and_serves_a_pod_from_it() {
    // An image only daemon A has: imported under a name no registry serves.
    let a = Daemon::start();
    let work = scratch_dir("cove-test-peer-fetch");
    let single = work.join("single");
    ok(&skopeo(&[
        "copy",
        "--quiet",
        &format!("oci:{}:latest", test_image_layout().display()),
        &format!("oci:{}:v1", single.display()),
    ]));
    let reference = "localhost/peer/busybox:v1";
    ok(&a.cli(&[
        "image",
        "import",
        single.to_str().unwrap(),
        "--reference",
        reference,
    ]));
    let info = image_info(&a, reference);
    let peer = Peer {
        url: format!("http://127.0.0.1:{}", a.api_port),
        token: a.token.clone(),
    };

    // Daemon B, stopped while the fetch writes into its data dir (the fetch is a library
    // call for now: the cluster's node agent will make it in-process).
    let mut b = Daemon::start();
    b.terminate();
    let ws_token = ok(&a.cli(&["token", "create", "fetcher", "--workspace", "team-b"]))
        .trim()
        .to_string();
    // As the daemon does at start: the registry client's TLS needs a crypto provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fetched = rt.block_on(async {
        let store: cove_store::StoreHandle = std::sync::Arc::new(
            cove_store::SqliteStore::open(&b.data_dir.join("state.db")).unwrap(),
        );
        let images = ImageStore::open(&b.data_dir, store.clone()).unwrap();
        let progress = |m: String| eprintln!("fetch: {m}");
        // Refused: a wrong token, a workspace token, a digest A does not have, a peer
        // that is not one; nothing lands.
        let zeros = format!("sha256:{}", "0".repeat(64));
        let wrong = Peer {
            token: "cove_wrong".into(),
            ..peer.clone()
        };
        let ws = Peer {
            token: ws_token.clone(),
            ..peer.clone()
        };
        for (p, digest) in [(&wrong, &info.digest), (&ws, &info.digest), (&peer, &zeros)] {
            let err = images
                .fetch_from_peer(p, reference, digest, &progress)
                .await
                .unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains("not authorized") || msg.contains("not found"),
                "{msg}"
            );
            assert!(!msg.contains('\n'), "{msg}");
        }
        let https = Peer {
            url: format!("https://127.0.0.1:{}", a.api_port),
            ..peer.clone()
        };
        assert!(images
            .fetch_from_peer(&https, reference, &info.digest, &progress)
            .await
            .is_err());
        assert!(images.get(reference).await.unwrap().is_none());
        let started = std::time::Instant::now();
        let img = images
            .fetch_from_peer(&peer, reference, &info.digest, &progress)
            .await
            .unwrap();
        eprintln!(
            "fetched {reference} ({} bytes of layers) from the peer in {:?}",
            img.size,
            started.elapsed()
        );
        // A second fetch finds it here and asks nobody.
        let dead = Peer {
            url: format!("http://127.0.0.1:{}", free_port()),
            ..peer.clone()
        };
        let again = images
            .fetch_from_peer(&dead, reference, &info.digest, &progress)
            .await
            .unwrap();
        assert_eq!(again, img);
        // Which workspaces hold a name is not the image store's business: here the admin's
        // workspace does, as after its own import (in a cluster it is cluster state).
        store.add_image_ref("default", reference).await.unwrap();
        img
    });
    assert_eq!(fetched.digest, info.digest);
    assert_eq!(fetched.config_digest, info.config_digest);
    // Nothing half-written is left in B's temp dir.
    let tmp: Vec<_> = std::fs::read_dir(b.data_dir.join("images/tmp"))
        .unwrap()
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");

    b.restart();
    let there = image_info(&b, reference);
    assert_eq!((there.digest, there.size), (info.digest.clone(), info.size));
    let c = b.run_pod(&[
        "--image",
        reference,
        "--ports",
        "8000",
        "--keep-warm-seconds",
        "300",
    ]);
    assert_eq!(
        b.wait_serving(&c, 8000, "/").trim(),
        "Hello from a Cove pod"
    );
}
