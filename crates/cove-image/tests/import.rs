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
    assert!(env.images.get("local/busybox:1").await.unwrap().is_some());

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
    assert_eq!(env.images.list().await.unwrap().len(), 2);
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

/// The xattr `name` of `path` (through the overlay mount), if set.
fn xattr(path: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: NUL-terminated strings and a live buffer of its length.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| buf[..len as usize].to_vec())
}

/// An image whose `ping` relies on a file capability keeps it: umoci writes the
/// capability as a `SCHILY.xattr.security.capability` PAX record in the layer.
#[tokio::test(flavor = "multi_thread")]
async fn file_capabilities_and_xattrs_survive_import() {
    let env = Env::new();
    let layout = env.dir.path().join("layout");
    let bundle = env.dir.path().join("bundle");
    let image = format!("{}:latest", layout.display());
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &image]));
    run(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle));
    let ping = bundle.join("rootfs/bin/ping");
    std::fs::create_dir_all(ping.parent().unwrap()).unwrap();
    std::fs::write(&ping, "#!/bin/true\n").unwrap();
    let mut cap = Vec::new();
    for word in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
        cap.extend_from_slice(&word.to_le_bytes()); // cap_net_raw, permitted + effective
    }
    for (name, value) in [("security.capability", &cap[..]), ("user.note", b"kept")] {
        let p = std::ffi::CString::new(ping.to_str().unwrap()).unwrap();
        let n = std::ffi::CString::new(name).unwrap();
        // SAFETY: NUL-terminated strings and a live buffer of its length.
        let rc = unsafe {
            libc::setxattr(
                p.as_ptr(),
                n.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        assert_eq!(
            rc,
            0,
            "setxattr {name}: {}",
            std::io::Error::last_os_error()
        );
    }
    run(Command::new("umoci")
        .args(["repack", "--image", &image])
        .arg(&bundle));
    let imgs = env
        .images
        .import(&layout, Some("local/caps:1"))
        .await
        .expect("import");
    let cdir = env.dir.path().join("c");
    let _g = MountGuard(cdir.clone());
    let rootfs = env.images.mount_rootfs(&imgs[0], &cdir).expect("mount");
    assert_eq!(
        xattr(&rootfs.join("bin/ping"), "security.capability"),
        Some(cap)
    );
    assert_eq!(
        xattr(&rootfs.join("bin/ping"), "user.note"),
        Some(b"kept".to_vec())
    );
    ImageStore::unmount_rootfs(&cdir).unwrap();
}
