//! Images some tests build: the SDK's Debian python3 layout, and reading a build's result.

use std::path::PathBuf;

use super::{ok, scripts_dir, stderr, Daemon, DaemonOpts};

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

/// Where [`python_build_daemon`] imports the python image.
pub const PYTHON_BASE: &str = "localhost/cove-test/python:latest";

/// A daemon whose build steps reach PyPI (the host's CA bundle) with the python image imported
/// as [`PYTHON_BASE`]; `None` (with the reason) when the host has no bundle or no image.
pub fn python_build_daemon() -> Option<Daemon> {
    let ca = host_ca_bundle()?;
    let layout = python_image_layout()?;
    let d = Daemon::start_with(DaemonOpts {
        build_ca_bundle: Some(ca),
        ..Default::default()
    });
    import_python_image(&d, &layout);
    Some(d)
}

/// Imports the python image `layout` into `d` as [`PYTHON_BASE`].
#[track_caller]
pub fn import_python_image(d: &Daemon, layout: &std::path::Path) {
    let layout = layout.to_str().expect("a UTF-8 path");
    ok(&d.cli(&["image", "import", layout, "--reference", PYTHON_BASE]));
}
