//! gVisor's `runsc` as a [`Flavor`] of the driver: where to find it and the global flags every
//! invocation gets.
//!
//! What the flags are for, as found on a cgroup-v1 hybrid host with runsc 20221219 (Debian 12):
//! - `--platform=<p>`: how the sentry intercepts the pod's system calls. `ptrace` works anywhere;
//!   `kvm` needs `/dev/kvm` (and hangs on hosts whose KVM cannot nest).
//! - `--network=sandbox`: gVisor's own network stack inside the sandbox. runsc takes over the
//!   interfaces of the pod's network namespace (named in the OCI spec, made by cove-network), so
//!   the pod keeps its veth and address and the gateway reaches it as it reaches a runc pod.
//! - `--oci-seccomp`: apply the spec's seccomp filter inside the sandbox too (runsc otherwise
//!   ignores it and relies on its own host filter).
//!
//! Not needed: `--ignore-cgroups` (runsc puts its sandbox in the spec's `cgroupsPath` on v1 and
//! applies the cpu, memory and pids limits there; `runsc delete` removes those cgroups), and no
//! change to the generated spec: runsc accepts its masked/readonly paths, rlimits, devices rules
//! and mounts as they are. The one work-around lives in the shim (`--hide-host-net-sysctls`).

use std::path::PathBuf;

use super::{Flavor, Runc};

/// Where Debian's `runsc` package and manual installs put the binary.
const RUNSC_PATHS: &[&str] = &[
    "/usr/bin/runsc",
    "/usr/sbin/runsc",
    "/usr/local/bin/runsc",
    "/usr/local/sbin/runsc",
];

/// The installed runsc, if any.
pub fn find_runsc() -> Option<PathBuf> {
    RUNSC_PATHS.iter().map(PathBuf::from).find(|p| p.is_file())
}

impl Runc {
    /// Drives gVisor's `runsc` at `runsc`, with its state in `root` (e.g. `<data-dir>/runsc`) and
    /// the sentry on `platform` (`ptrace` or `kvm`).
    pub fn gvisor(root: PathBuf, shim_exe: PathBuf, runsc: PathBuf, platform: &str) -> Self {
        Runc {
            flavor: Flavor::Runsc,
            runc: runsc,
            root,
            global: vec![
                format!("--platform={platform}"),
                "--network=sandbox".to_string(),
                "--oci-seccomp".to_string(),
            ],
            shim_exe,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Runtime;

    #[test]
    fn runsc_gets_its_platform_and_network() {
        let rt = Runc::gvisor(
            "/tmp/x".into(),
            "/bin/false".into(),
            "/usr/bin/runsc".into(),
            "ptrace",
        );
        assert_eq!(rt.name(), "runsc");
        assert_eq!(rt.flavor(), Flavor::Runsc);
        assert!(rt.global.contains(&"--platform=ptrace".to_string()));
        assert!(rt.global.contains(&"--network=sandbox".to_string()));
    }
}
