//! The layer unpacker against GNU tar: each input is extracted by
//! `tar -xpf --xattrs --xattrs-include='*' --numeric-owner` and by Cove into two
//! scratch dirs. When GNU tar takes the archive, Cove must make the same tree
//! (type, mode, owner, content, links, xattrs, file mtimes; devices are skipped
//! by Cove by design; so are OCI whiteouts, `.wh.*`) or refuse it as unsafe (an absolute or `..` path, a link
//! out of the layer, which GNU tar rewrites or skips with a warning).
//! Spawns GNU tar per input: slow (a few hundred inputs a second), so run.sh
//! gives it the same time as the others; tests/tar_differential.rs does the same
//! comparison on seeded mutations in the normal test run.
#![no_main]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../crates/cove-image/tests/tartree/snapshot.rs"]
mod snapshot;

/// `<fuzz dir>/target/scratch/diff-<pid>`.
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/scratch")
            .join(format!("diff-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating the scratch dir");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let root = scratch();
    let (archive, gnu, cove) = (root.join("in.tar"), root.join("gnu"), root.join("cove"));
    std::fs::write(&archive, data).expect("writing the input");
    std::fs::create_dir(&gnu).expect("creating gnu/");
    std::fs::create_dir(&cove).expect("creating cove/");
    let gnu_ok = Command::new("tar")
        .arg("-xpf")
        .arg(&archive)
        .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-C"])
        .arg(&gnu)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("running GNU tar")
        .success();
    let cove_result = cove_image::unpack_layer_tar(data, &cove);
    if gnu_ok {
        match cove_result {
            Ok(()) => {
                let g = snapshot::snapshot(&gnu);
                // OCI whiteouts (`.wh.*`) are meant to differ: Cove turns them into
                // overlayfs whiteouts, GNU tar into plain files.
                let whiteouts = g
                    .keys()
                    .any(|p| p.rsplit('/').next().is_some_and(|n| n.starts_with(".wh.")));
                if !whiteouts {
                    let diffs = snapshot::differences(&g, &snapshot::snapshot(&cove));
                    assert!(diffs.is_empty(), "trees differ:\n{}", diffs.join("\n"));
                }
            }
            Err(cove_image::ImageError::Unsafe(_)) => {}
            Err(e) => panic!("GNU tar took the archive, Cove refused it: {e}"),
        }
    }
    std::fs::remove_dir_all(&gnu).expect("removing gnu/");
    std::fs::remove_dir_all(&cove).expect("removing cove/");
});
