//! Pulls from a real registry on loopback.

mod common;

use common::{build_test_layout, is_mounted, quiet, Env, MountGuard, Registry};
use cove_image::{ImageError, ImageStore};

#[tokio::test(flavor = "multi_thread")]
async fn pull_get_list_mount_remove() {
    let env = Env::new();
    let reg = Registry::start();
    let layout = build_test_layout(env.dir.path());
    let name = reg.push(&layout, "latest", "busybox", &["--format", "oci"]);

    let lines = std::sync::Mutex::new(Vec::new());
    let progress = |s: String| lines.lock().unwrap().push(s);
    let img = env.images.pull(&name, None, &progress).await.expect("pull");
    assert_eq!(img.reference, format!("{name}:latest"));
    assert_eq!(img.layers.len(), 2);
    assert_eq!(img.config.entrypoint, vec!["/bin/busybox"]);
    assert_eq!(img.config.cmd, vec!["sh"]);
    assert!(img.config.env.contains(&"GREETING=hi".to_string()));
    assert_eq!(img.config.exposed_ports, vec![8080]);
    assert!(lines
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.starts_with("Pulling ")));

    assert_eq!(env.images.get(&name).await.unwrap().as_ref(), Some(&img));
    let list = env.images.list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].layers, 2);
    // ensure() is local once pulled; a second pull reuses blobs and layers.
    assert_eq!(env.images.ensure(&name, None, &quiet).await.unwrap(), img);
    env.images.pull(&name, None, &quiet).await.expect("re-pull");

    // Mount: busybox present, whited-out file gone, the upper layer writable.
    let cdir = env.dir.path().join("c1");
    let guard = MountGuard(cdir.clone());
    let rootfs = env.images.mount_rootfs(&img, &cdir).expect("mount");
    assert!(rootfs.join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/hello")).unwrap(),
        "hello\n"
    );
    assert!(
        !rootfs.join("etc/deleteme").exists(),
        "whiteout not applied"
    );
    std::fs::write(rootfs.join("etc/new"), "x").expect("write into rootfs");
    assert!(cdir.join("upper/etc/new").is_file());

    // A mounted layer survives GC even if the caller says it is unused.
    let layer0 = env.images.layer_path(&img.layers[0]).unwrap();
    env.images.remove(&name, &|_| false).await.expect("remove");
    assert!(layer0.is_dir(), "mounted layer was collected");
    assert!(env.images.get(&name).await.unwrap().is_none());
    assert!(matches!(
        env.images.remove(&name, &|_| false).await,
        Err(ImageError::NotFound(_))
    ));

    ImageStore::unmount_rootfs(&cdir).expect("unmount");
    ImageStore::unmount_rootfs(&cdir).expect("unmount is idempotent");
    drop(guard);
    assert!(!is_mounted(&rootfs));
    assert!(!rootfs.exists() && !cdir.join("upper").exists() && !cdir.join("work").exists());

    // Pull again, remove with nothing mounted: blobs and layers are collected.
    let img = env
        .images
        .pull(&name, None, &quiet)
        .await
        .expect("pull again");
    env.images.remove(&name, &|_| false).await.expect("remove");
    for l in &img.layers {
        assert!(!env.images.layer_path(l).unwrap().exists());
    }
    let blobs = env.dir.path().join("images/blobs/sha256");
    assert_eq!(std::fs::read_dir(blobs).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn in_use_layers_and_shared_layers_are_kept() {
    let env = Env::new();
    let reg = Registry::start();
    let layout = build_test_layout(env.dir.path());
    let a = reg.push(&layout, "latest", "a", &[]);
    let b = reg.push(&layout, "latest", "b", &[]);
    let img = env.images.pull(&a, None, &quiet).await.unwrap();
    env.images.pull(&b, None, &quiet).await.unwrap();
    env.images.remove(&a, &|_| false).await.unwrap();
    for l in &img.layers {
        assert!(
            env.images.layer_path(l).unwrap().is_dir(),
            "shared layer removed"
        );
    }
    let top = img.layers[1].clone();
    env.images.remove(&b, &|k| k == top).await.unwrap();
    assert!(env.images.layer_path(&img.layers[1]).unwrap().is_dir());
    assert!(!env.images.layer_path(&img.layers[0]).unwrap().exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_v2s2_and_zstd() {
    let env = Env::new();
    let reg = Registry::start();
    let layout = build_test_layout(env.dir.path());
    let v2 = reg.push(&layout, "latest", "v2", &["--format", "v2s2"]);
    let img = env.images.pull(&v2, None, &quiet).await.expect("pull v2s2");
    assert_eq!(img.layers.len(), 2);
    let z = reg.push(
        &layout,
        "latest",
        "zst",
        &["--format", "oci", "--dest-compress-format", "zstd"],
    );
    let img2 = env.images.pull(&z, None, &quiet).await.expect("pull zstd");
    // Same uncompressed layers, whatever the compression.
    assert_eq!(img.layers, img2.layers);
    let row = env.images.list().await.unwrap();
    assert_eq!(row.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_tag_is_not_found() {
    let env = Env::new();
    let reg = Registry::start();
    let layout = build_test_layout(env.dir.path());
    let name = reg.push(&layout, "latest", "busybox", &[]);
    let err = env
        .images
        .pull(&format!("{name}:nope"), None, &quiet)
        .await
        .unwrap_err();
    assert!(matches!(err, ImageError::NotFound(_)), "{err}");
    let err = env
        .images
        .pull(&format!("{}/missing", reg.addr), None, &quiet)
        .await
        .unwrap_err();
    assert!(matches!(err, ImageError::NotFound(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_port_is_unreachable() {
    let env = Env::new();
    let port = common::free_port();
    let err = env
        .images
        .pull(&format!("127.0.0.1:{port}/x"), None, &quiet)
        .await
        .unwrap_err();
    match err {
        ImageError::RegistryUnreachable { registry, .. } => {
            assert_eq!(registry, format!("127.0.0.1:{port}"))
        }
        e => panic!("expected RegistryUnreachable, got {e}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth() {
    let env = Env::new();
    let reg = Registry::with_auth("alice", "s3cret");
    let layout = build_test_layout(env.dir.path());
    let name = reg.push(&layout, "latest", "private", &[]);
    let bad = cove_types::RegistryAuth {
        username: "alice".into(),
        password: "wrong".into(),
    };
    let err = env
        .images
        .pull(&name, Some(&bad), &quiet)
        .await
        .unwrap_err();
    assert!(matches!(err, ImageError::Unauthorized(_)), "{err}");
    let err = env.images.pull(&name, None, &quiet).await.unwrap_err();
    assert!(matches!(err, ImageError::Unauthorized(_)), "{err}");
    let good = cove_types::RegistryAuth {
        username: "alice".into(),
        password: "s3cret".into(),
    };
    let img = env
        .images
        .pull(&name, Some(&good), &quiet)
        .await
        .expect("pull with creds");
    assert_eq!(img.layers.len(), 2);
}

#[test]
fn normalize_and_reject() {
    let n = |r: &str| ImageStore::normalize(r);
    assert_eq!(n("busybox").unwrap(), "docker.io/library/busybox:latest");
    assert_eq!(
        n("127.0.0.1:5000/busybox").unwrap(),
        "127.0.0.1:5000/busybox:latest"
    );
    assert_eq!(n("localhost/a/b:v1.2").unwrap(), "localhost/a/b:v1.2");
    assert_eq!(n("ghcr.io/org/app:1").unwrap(), "ghcr.io/org/app:1");
    let d = format!("sha256:{}", "a".repeat(64));
    assert_eq!(
        n(&format!("busybox@{d}")).unwrap(),
        format!("docker.io/library/busybox@{d}")
    );
    for bad in [
        "",
        "Busybox",
        "busy box",
        "busybox:",
        "busybox:bad/tag",
        "busybox:-x",
        "busybox@sha256:123",
        "a//b",
        "a/../b",
        "[::1]x/a",
        "[::1]\u{f}\0/a",
    ] {
        match n(bad) {
            Err(ImageError::InvalidReference(r)) => assert_eq!(r, bad),
            other => panic!("{bad:?} gave {other:?}"),
        }
    }
    // Short enough itself, but not its key (docker.io/library/...:latest).
    let long = "a".repeat(4090);
    assert!(matches!(n(&long), Err(ImageError::InvalidReference(_))));
    let fits = "a".repeat(4096 - "docker.io/library/:latest".len());
    assert_eq!(n(&n(&fits).unwrap()).unwrap().len(), 4096);
}
