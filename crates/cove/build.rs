//! Builds the small `cove-shim` executable (from the cove-runtime crate) and
//! puts it in OUT_DIR, so `cove` can carry it and stay one file to ship.
//!
//! A nested cargo with its own target dir: artifact dependencies are not
//! stable yet, and a separate target dir cannot contend for the outer
//! build's lock. It builds in release whatever the outer profile, with the
//! versions of Cargo.lock and nothing downloaded.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    println!("cargo:rerun-if-changed=../cove-runtime/src");
    println!("cargo:rerun-if-changed=../cove-runtime/Cargo.toml");
    println!("cargo:rerun-if-changed=build.rs");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target_dir = out.join("shim-target");
    let status = Command::new(cargo)
        .current_dir(&root)
        .args(["build", "--release", "--locked", "--offline", "-q"])
        .args(["-p", "cove-runtime", "--bin", "cove-shim", "--target-dir"])
        .arg(&target_dir)
        // The outer build's flags are for the outer build.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .expect("running cargo to build cove-shim");
    assert!(status.success(), "building cove-shim failed");
    let built = target_dir.join("release").join("cove-shim");
    let bytes = std::fs::read(&built).expect("reading the built cove-shim");
    // FNV-1a: names the extracted file, so a new daemon never overwrites a
    // shim that running containers still use.
    let hash = bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    });
    std::fs::write(out.join("cove-shim"), &bytes).expect("writing cove-shim to OUT_DIR");
    println!("cargo:rustc-env=COVE_SHIM_HASH={hash:016x}");
}
