//! A full disk: a pull or a build that runs out of space fails cleanly (one error, nothing
//! half-written), and the daemon keeps working once there is room again.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::check;
use crate::common::*;
use crate::fat_image::fat_image;

/// The data dir's filesystem, in MiB: room for the daemon and the busybox image, not for the
/// 32 MiB fat image nor a 14 MiB build layer on top of its container's 14 MiB upper dir.
const DISK_MIB: u64 = 24;

fn run(cmd: &str) {
    let o = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        o.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Unmounts the small filesystem if the test ends early (lazily: the daemon may still hold
/// files on it); the normal path unmounts it itself once the daemon is stopped.
struct SmallDisk<'a>(&'a Path);

impl Drop for SmallDisk<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0).output();
    }
}

/// Nothing half-made: no temp file, no partial blob, no build dir, no mount, no stray row.
fn nothing_half_written(d: &Daemon, images_before: &str) {
    let tmp = d.data_dir.join("images/tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "half-written files left: {left:?}");
    check::blobs_match_their_digests(d, "after a full disk");
    let containers = d.data_dir.join("containers");
    if let Ok(rd) = std::fs::read_dir(&containers) {
        let names: Vec<_> = rd.flatten().map(|e| e.file_name()).collect();
        assert!(names.is_empty(), "container dirs left: {names:?}");
    }
    assert_eq!(d.mounts(), vec![d.data_dir.to_string_lossy().into_owned()]);
    assert_eq!(
        ok(&d.cli(&["image", "list", "--format", "json"])),
        images_before
    );
    assert!(d.list(true).is_empty());
}

#[test]
fn a_full_disk_fails_pulls_and_builds_cleanly_and_the_daemon_recovers() {
    let fat = fat_image();
    let mut d = Daemon::start();
    // Move the data dir onto a small tmpfs while the daemon is down.
    assert!(d.terminate().is_some_and(|s| s.success()));
    let data = d.data_dir.clone();
    let aside = d.root.join("data.aside");
    std::fs::rename(&data, &aside).unwrap();
    std::fs::create_dir(&data).unwrap();
    run(&format!(
        "mount -t tmpfs -o size={DISK_MIB}m cove-test-full '{}'",
        data.display()
    ));
    let disk = SmallDisk(&data);
    run(&format!(
        "cp -a '{}/.' '{}/'",
        aside.display(),
        data.display()
    ));
    std::fs::remove_dir_all(&aside).unwrap();
    d.restart();

    let latest = registry().image("latest");
    ok(&d.cli(&["image", "pull", &latest]));
    let images_before = ok(&d.cli(&["image", "list", "--format", "json"]));

    // A pull that does not fit.
    let o = d.cli(&["image", "pull", &fat]);
    let err = failed_with(&o, &["no space", "space left"]);
    eprintln!("pull on a full disk: {err}");
    nothing_half_written(&d, &images_before);

    // A build whose layer does not fit (its step writes 14 MiB; the layer needs as much again).
    let o = d.cli(&[
        "image",
        "build",
        "--base",
        &latest,
        "--command",
        "head -c 14000000 /dev/urandom > /big",
    ]);
    let err = failed_with(&o, &["no space", "space left", "failed"]);
    eprintln!("build on a full disk: {err}");
    nothing_half_written(&d, &images_before);

    // Room enough again (the failures freed what they had written): work goes on.
    let o = ok(&d.cli(&[
        "image",
        "build",
        "--base",
        &latest,
        "--command",
        "echo fits > /small",
    ]));
    let built = o
        .lines()
        .find_map(|l| l.trim().strip_prefix("=> Built "))
        .unwrap_or_else(|| panic!("no `Built` line: {o}"))
        .to_string();
    let c = d.run_pod(&["--image", &built, "--entrypoint", "cat /small"]);
    let c = d.wait_status(&c.id, ContainerStatus::Exited, Duration::from_secs(60));
    assert_eq!(c.exit_code, Some(0));
    assert_eq!(ok(&d.cli(&["container", "logs", &c.id])).trim(), "fits");
    let p = d.run_httpd("-1");
    d.wait_serving(&p, 8000, "/");
    ok(&d.cli(&["container", "stop", &p.id]));

    // Stop the daemon before its filesystem goes (the harness then finds nothing left).
    assert!(d.terminate().is_some_and(|s| s.success()));
    run(&format!("umount '{}'", data.display()));
    drop(disk);
}
