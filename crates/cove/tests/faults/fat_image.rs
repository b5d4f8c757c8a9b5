//! A second image in the test registry, `fat:latest`: one 32 MiB layer of random bytes, so that
//! pulling it takes long enough to be interrupted and fills a small disk.

use std::process::Command;
use std::sync::OnceLock;

use crate::common::{registry, scratch_dir};

/// Bytes of random data in the fat image's layer.
pub const FAT_BYTES: u64 = 32 << 20;

fn run(cmd: &mut Command) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `<registry>/fat:latest`, built and pushed once per test binary.
pub fn fat_image() -> String {
    static REF: OnceLock<String> = OnceLock::new();
    REF.get_or_init(|| {
        let reg = registry();
        let work = scratch_dir("cove-test-fat");
        let layout = work.join("layout");
        let bundle = work.join("bundle");
        run(Command::new("umoci")
            .arg("init")
            .arg("--layout")
            .arg(&layout));
        let image = format!("{}:fat", layout.display());
        run(Command::new("umoci").args(["new", "--image", &image]));
        run(Command::new("umoci")
            .args(["unpack", "--image", &image])
            .arg(&bundle));
        run(Command::new("sh").arg("-c").arg(format!(
            "head -c {FAT_BYTES} /dev/urandom > '{}/rootfs/fat.bin'",
            bundle.display()
        )));
        run(Command::new("umoci")
            .args(["repack", "--image", &image])
            .arg(&bundle));
        let reference = format!("{}/fat:latest", reg.addr);
        run(Command::new("skopeo").args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            &format!("oci:{image}"),
            &format!("docker://{reference}"),
        ]));
        reference
    })
    .clone()
}
