//! Images some tests build: the SDK's Debian python3 layout, and reading a build's result.

use std::path::PathBuf;

use super::{scripts_dir, stderr};

/// The reference in a build's `=> Built <reference>` line.
#[track_caller]
pub fn built_reference(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("=> Built "))
        .unwrap_or_else(|| panic!("no `=> Built` line in:\n{out}"))
        .trim()
        .to_string()
}

/// The SDK's Debian image with python3 (no pip) as an OCI layout, built and cached by
/// `sdk/python/tests/images/build-python-image.sh`; `None` (with the reason) when it cannot be.
pub fn python_image_layout() -> Option<PathBuf> {
    let script = scripts_dir().join("../sdk/python/tests/images/build-python-image.sh");
    if !script.is_file() {
        eprintln!("skipping: {} is missing", script.display());
        return None;
    }
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cove-python-image");
    let o = std::process::Command::new("bash")
        .arg(&script)
        .arg(&out)
        .output()
        .expect("running build-python-image.sh");
    match o.status.code() {
        Some(0) => Some(out),
        Some(75) => {
            eprintln!("skipping: the Debian mirror is unreachable: {}", stderr(&o));
            None
        }
        _ => panic!("build-python-image.sh failed: {}", stderr(&o)),
    }
}

/// A build step that installs pip from Debian's packages (the python image has none).
pub const APT_PIP: &str = "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip >/dev/null && rm -rf /var/lib/apt/lists/*";

/// The host's CA bundle, for daemons whose build steps reach PyPI through this host's
/// intercepting proxy; `None` (with the reason) on a host without one.
pub fn host_ca_bundle() -> Option<PathBuf> {
    let ca = PathBuf::from("/etc/ssl/certs/ca-certificates.crt");
    if ca.is_file() {
        Some(ca)
    } else {
        eprintln!("skipping: no host CA bundle at {}", ca.display());
        None
    }
}
