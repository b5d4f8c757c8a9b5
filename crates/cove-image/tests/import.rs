//! Importing OCI layouts, OCI archives and docker archives.

mod common;

use std::process::Command;

use common::{build_test_layout, run, Env, MountGuard};
use cove_image::{ImageError, ImageStore};

#[tokio::test(flavor = "multi_thread")]
async fn oci_layout_dir_and_archive() {
    let env = Env::new();
    let layout = build_test_layout(env.dir.path());
    // skopeo/umoci store only a tag ("latest") as ref.name: a name is required.
    let err = env.images.import(&layout, None).await.unwrap_err();
    assert!(matches!(err, ImageError::InvalidReference(_)), "{err}");
    let imgs = env
        .images
        .import(&layout, Some("local/busybox:1"))
        .await
        .expect("import dir");
    assert_eq!(imgs.len(), 1);
    assert_eq!(imgs[0].reference, "docker.io/local/busybox:1");
    assert_eq!(imgs[0].layers.len(), 2);
    assert!(env.images.get("local/busybox:1").unwrap().is_some());

    // The same layout as a tar (an OCI archive).
    let tarball = env.dir.path().join("oci.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&tarball)
        .arg("."));
    let imgs2 = env
        .images
        .import(&tarball, Some("local/busybox:2"))
        .await
        .expect("import archive");
    assert_eq!(imgs2[0].layers, imgs[0].layers);
    assert_eq!(env.images.list().unwrap().len(), 2);
    // The extraction dir is gone.
    assert_eq!(
        std::fs::read_dir(env.dir.path().join("images/tmp"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_archive_uses_repo_tags() {
    let env = Env::new();
    let layout = build_test_layout(env.dir.path());
    let archive = env.dir.path().join("docker.tar");
    run(Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(format!(
            "docker-archive:{}:example.com/team/busybox:v1",
            archive.display()
        )));
    let imgs = env
        .images
        .import(&archive, None)
        .await
        .expect("import docker archive");
    assert_eq!(imgs.len(), 1);
    let img = &imgs[0];
    assert_eq!(img.reference, "example.com/team/busybox:v1");
    assert_eq!(img.config.entrypoint, vec!["/bin/busybox"]);

    let cdir = env.dir.path().join("c");
    let _g = MountGuard(cdir.clone());
    let rootfs = env.images.mount_rootfs(img, &cdir).expect("mount");
    assert!(rootfs.join("bin/busybox").is_file());
    assert!(!rootfs.join("etc/deleteme").exists());
    ImageStore::unmount_rootfs(&cdir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_and_bogus_files() {
    let env = Env::new();
    let err = env
        .images
        .import(&env.dir.path().join("nope.tar"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, ImageError::NotFound(_)), "{err}");
    let empty = env.dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = env.images.import(&empty, Some("x")).await.unwrap_err();
    assert!(matches!(err, ImageError::Unsupported(_)), "{err}");
}
