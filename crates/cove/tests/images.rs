//! `cove image pull|list|rm|import`, and running imported images.
mod common;

use std::process::Command;

use common::*;

#[test]
fn pull_list_rm() {
    let d = Daemon::start();
    let img = registry().image("latest");
    let out = ok(&d.cli(&["image", "pull", &img]));
    assert!(out.contains(&img), "{out}");
    let table = ok(&d.cli(&["image", "list"]));
    assert!(table.contains(&img), "{table}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&d.cli(&["image", "list", "--format", "json"]))).unwrap();
    let entry = json
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["reference"] == img.as_str())
        .expect("listed");
    assert!(entry["digest"].as_str().unwrap().starts_with("sha256:"));
    // Pulling again is fine; running uses the cached image.
    ok(&d.cli(&["image", "pull", &img]));
    let run = ok(&d.cli(&[
        "run",
        "--image",
        &img,
        "--ports",
        "8000",
        "--keep-warm-seconds",
        "300",
    ]));
    assert!(run.contains("=> Using cached image"), "{run}");
    // An image in use by a running pod is kept, with a clear error.
    let c = d.list(false).remove(0);
    assert_eq!(
        d.wait_serving(&c, 8000, "/").trim(),
        "Hello from a Cove pod"
    );
    failed_with(
        &d.cli(&["image", "rm", &img]),
        &[&c.id, "in use", "used by"],
    );
    assert!(ok(&d.cli(&["image", "list"])).contains(&img));
    // Once the pod is stopped it can go.
    ok(&d.cli(&["container", "stop", &c.id]));
    ok(&d.cli(&["image", "rm", &img]));
    assert!(!ok(&d.cli(&["image", "list"])).contains(&img));
    let o = d.cli(&["image", "rm", &img]);
    failed_with(&o, &["busybox", "not found", "no such", "unknown"]);
}

#[test]
fn import_oci_layout_and_docker_archive() {
    let d = Daemon::start();
    let layout = test_image_layout();
    let work = scratch_dir("cove-test-import");
    // A one-tag OCI layout.
    let single = work.join("single");
    let o = Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(format!("oci:{}:imported", single.display()))
        .output()
        .unwrap();
    ok(&o);
    let out = ok(&d.cli(&[
        "image",
        "import",
        single.to_str().unwrap(),
        "--reference",
        "cove.test/busybox:imported",
    ]));
    assert!(out.contains("cove.test/busybox:imported"), "{out}");
    // A docker-archive tar.
    let tar = work.join("image.tar");
    let o = Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(format!(
            "docker-archive:{}:cove.test/busybox:archived",
            tar.display()
        ))
        .output()
        .unwrap();
    ok(&o);
    let out = ok(&d.cli(&["image", "import", tar.to_str().unwrap()]));
    assert!(out.contains("busybox:archived"), "{out}");
    let list = ok(&d.cli(&["image", "list"]));
    assert!(
        list.contains("cove.test/busybox:imported") && list.contains("busybox:archived"),
        "{list}"
    );

    for image in ["cove.test/busybox:imported", "cove.test/busybox:archived"] {
        let c = d.run_pod(&[
            "--image",
            image,
            "--ports",
            "8000",
            "--keep-warm-seconds",
            "300",
        ]);
        assert_eq!(
            d.wait_serving(&c, 8000, "/").trim(),
            "Hello from a Cove pod"
        );
    }
    // Garbage is rejected with one line.
    let junk = work.join("junk.tar");
    std::fs::write(&junk, b"this is not a tar").unwrap();
    failed_with(
        &d.cli(&["image", "import", junk.to_str().unwrap()]),
        &["import", "tar", "layout", "archive", "invalid"],
    );
    failed_with(
        &d.cli(&["image", "import", "/nonexistent/layout"]),
        &["/nonexistent/layout"],
    );
    let _ = std::fs::remove_dir_all(&work);
}
