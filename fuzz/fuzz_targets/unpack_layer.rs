//! The layer unpacker (`crates/cove-image/src/unpack.rs`), the boundary against hostile
//! registries: arbitrary bytes fed as a layer tar into a scratch directory never panic it and
//! never write outside that directory. Next to the destination sits `outside/` with a victim
//! file; `../` paths, absolute paths, symlinks and hard links planted by earlier entries all aim
//! there. After every input `outside/` must hold exactly the victim, unchanged, and the
//! scratch parent nothing else.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

const VICTIM: &[u8] = b"not yours\n";

/// `<fuzz dir>/target/scratch/<pid>`: under the fuzz crate's (ignored) target dir, not /tmp.
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/scratch")
            .join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("outside")).expect("creating the scratch dir");
        std::fs::write(dir.join("outside/victim"), VICTIM).expect("writing the victim");
        dir
    })
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

fuzz_target!(|data: &[u8]| {
    let root = scratch();
    let dest = root.join("dest");
    std::fs::create_dir(&dest).expect("creating dest");
    let _ = cove_image::unpack_layer_tar(data, &dest);
    assert_eq!(
        names(root),
        ["dest", "outside"],
        "something was written next to dest"
    );
    assert_eq!(
        names(&root.join("outside")),
        ["victim"],
        "something was written in outside/"
    );
    let victim = root.join("outside/victim");
    let meta = std::fs::symlink_metadata(&victim).expect("victim");
    assert!(meta.file_type().is_file(), "the victim was replaced");
    assert_eq!(
        std::fs::read(&victim).expect("victim"),
        VICTIM,
        "the victim was changed"
    );
    // Reset for the next input (run as root, like the daemon: read-only modes a layer set do
    // not stop the removal).
    std::fs::remove_dir_all(&dest).expect("removing dest");
});
