//! Builds the OCI runtime spec (`config.json`) for a container, modelled on `runc spec`'s
//! defaults plus Cove's limits: no NET_RAW/MKNOD, `noNewPrivileges`, deny-all device cgroup
//! (runc adds its default allowed devices), CFS quota, memory without swap, pids, NOFILE.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder,
    LinuxMemoryBuilder, LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimitBuilder,
    PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use crate::etc_files::etc_files;
use crate::user::ResolvedUser;
use crate::{cgroup, ContainerConfig, RuntimeError};

/// CFS period used for every container; quota = millicores * 100.
pub const CPU_PERIOD_US: u64 = 100_000;
/// NOFILE we would like to give containers; clamped to the host's hard limit.
pub const WANTED_NOFILE: u64 = 1_048_576;
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Host facts that change the spec. [`HostInfo::detect`] reads them; tests construct them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostInfo {
    pub cgroup_v2: bool,
    pub swap_accounting: bool,
    pub nofile_hard: u64,
}

impl HostInfo {
    pub fn detect() -> Self {
        let v2 = cgroup::is_v2();
        HostInfo {
            cgroup_v2: v2,
            swap_accounting: cgroup::has_swap_accounting(v2),
            nofile_hard: host_nofile_hard_limit(),
        }
    }
}

/// The hard RLIMIT_NOFILE of this process (runc refuses rlimits above the host's hard limit).
pub fn host_nofile_hard_limit() -> u64 {
    match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        Ok((_, hard)) => hard,
        Err(_) => 1024,
    }
}

/// Paths under /proc and /sys a pod sees as empty: runc's and Docker's list (host hardware,
/// kernel memory and timers, other tenants' keys, interrupt counts that leak neighbours'
/// activity), plus `/proc/kpage*`, which show the flags, map counts and cgroup of every
/// physical page on the host.
const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/kpagecgroup",
    "/proc/kpagecount",
    "/proc/kpageflags",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// Paths a pod may read but not write, as Docker's.
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// [`MASKED_PATHS`] and, as Docker, each CPU's `thermal_throttle` directory this host has
/// (its counters leak other tenants' load).
fn masked_paths() -> Vec<String> {
    let mut out = strings(MASKED_PATHS);
    let cpus = std::fs::read_dir("/sys/devices/system/cpu")
        .into_iter()
        .flatten()
        .flatten();
    let mut throttle: Vec<String> = cpus
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.strip_prefix("cpu")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|e| e.path().join("thermal_throttle"))
        .filter(|p| p.exists())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    throttle.sort();
    out.extend(throttle);
    out
}

/// Builds the spec for `cfg`, running as `user`.
pub fn build_spec(
    cfg: &ContainerConfig,
    user: &ResolvedUser,
    host: &HostInfo,
) -> Result<Spec, RuntimeError> {
    if cfg.args.is_empty() {
        return Err(RuntimeError::InvalidConfig("args must not be empty".into()));
    }
    let caps: HashSet<Capability> = [
        Capability::Chown,
        Capability::DacOverride,
        Capability::Fsetid,
        Capability::Fowner,
        Capability::Setgid,
        Capability::Setuid,
        Capability::Setfcap,
        Capability::Setpcap,
        Capability::NetBindService,
        Capability::SysChroot,
        Capability::Kill,
        Capability::AuditWrite,
    ]
    .into_iter()
    .collect();
    let nofile = WANTED_NOFILE.min(host.nofile_hard);
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(
            UserBuilder::default()
                .uid(user.uid)
                .gid(user.gid)
                .additional_gids(user.additional_gids.clone())
                .build()?,
        )
        .args(cfg.args.clone())
        .env(process_env(cfg, user))
        .cwd(if cfg.cwd.is_empty() {
            "/"
        } else {
            cfg.cwd.as_str()
        })
        .capabilities(
            LinuxCapabilitiesBuilder::default()
                .bounding(caps.clone())
                .effective(caps.clone())
                .permitted(caps)
                .build()?,
        )
        .rlimits(vec![PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .soft(nofile)
            .hard(nofile)
            .build()?])
        .no_new_privileges(true)
        .build()?;

    let linux = LinuxBuilder::default()
        .namespaces(namespaces(cfg.netns.as_deref(), host.cgroup_v2)?)
        .seccomp(crate::seccomp::default_profile(cfg.isolation)?)
        .resources(resources(cfg, host)?)
        .cgroups_path(PathBuf::from(cfg.cgroups_path()))
        .masked_paths(masked_paths())
        .readonly_paths(strings(READONLY_PATHS))
        .build()?;

    Ok(SpecBuilder::default()
        .version("1.0.2-dev")
        .process(process)
        .root(
            RootBuilder::default()
                .path(cfg.rootfs.clone())
                .readonly(false)
                .build()?,
        )
        .hostname(cfg.hostname.clone())
        .mounts(mounts(cfg)?)
        .linux(linux)
        .build()?)
}

/// The image/user env plus `PATH`, `HOSTNAME` and `HOME` when missing.
fn process_env(cfg: &ContainerConfig, user: &ResolvedUser) -> Vec<String> {
    let mut env = cfg.env.clone();
    let has = |env: &[String], key: &str| {
        env.iter()
            .any(|e| e.split_once('=').is_some_and(|(k, _)| k == key))
    };
    if !has(&env, "PATH") {
        env.push(DEFAULT_PATH.to_string());
    }
    if !has(&env, "HOSTNAME") {
        env.push(format!("HOSTNAME={}", cfg.hostname));
    }
    if !has(&env, "HOME") {
        let home = user
            .home
            .as_deref()
            .filter(|h| !h.is_empty())
            .unwrap_or("/");
        env.push(format!("HOME={home}"));
    }
    env
}

fn namespaces(netns: Option<&Path>, cgroup_v2: bool) -> Result<Vec<LinuxNamespace>, RuntimeError> {
    let mut out = Vec::new();
    for typ in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
    ] {
        out.push(LinuxNamespaceBuilder::default().typ(typ).build()?);
    }
    let mut net = LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Network);
    if let Some(path) = netns {
        net = net.path(path.to_path_buf());
    }
    out.push(net.build()?);
    // A cgroup namespace on v1 would hide nothing useful and breaks some hybrid setups.
    if cgroup_v2 {
        out.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Cgroup)
                .build()?,
        );
    }
    Ok(out)
}

fn resources(
    cfg: &ContainerConfig,
    host: &HostInfo,
) -> Result<oci_spec::runtime::LinuxResources, RuntimeError> {
    let mut r = LinuxResourcesBuilder::default().devices(vec![LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()?]);
    if cfg.cpu_millis > 0 {
        let quota =
            i64::try_from(cfg.cpu_millis.saturating_mul(CPU_PERIOD_US / 1000)).unwrap_or(i64::MAX);
        r = r.cpu(
            LinuxCpuBuilder::default()
                .quota(quota)
                .period(CPU_PERIOD_US)
                .build()?,
        );
    }
    if cfg.memory_mib > 0 {
        let bytes = i64::try_from(cfg.memory_mib.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX);
        let mut m = LinuxMemoryBuilder::default().limit(bytes);
        if host.swap_accounting {
            // memory+swap == memory: no swap at all.
            m = m.swap(bytes);
        }
        r = r.memory(m.build()?);
    }
    if cfg.pids_limit > 0 {
        r = r.pids(LinuxPidsBuilder::default().limit(cfg.pids_limit).build()?);
    }
    Ok(r.build()?)
}

fn mounts(cfg: &ContainerConfig) -> Result<Vec<Mount>, RuntimeError> {
    let m = |dest: &str, typ: &str, src: &str, opts: &[&str]| {
        MountBuilder::default()
            .destination(dest)
            .typ(typ)
            .source(src)
            .options(strings(opts))
            .build()
    };
    let mut out = vec![
        m("/proc", "proc", "proc", &[])?,
        m(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        m(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        m(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        m(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        m(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
        m(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        )?,
    ];
    for (src, dest) in etc_files(&cfg.dir) {
        out.push(
            MountBuilder::default()
                .destination(dest)
                .typ("bind")
                .source(src)
                .options(strings(&["rbind", "ro", "nosuid", "nodev", "noexec"]))
                .build()?,
        );
    }
    for (src, dest, ro) in &cfg.extra_mounts {
        let mut opts = vec!["rbind", "nosuid", "nodev"];
        if *ro {
            opts.push("ro");
        }
        out.push(
            MountBuilder::default()
                .destination(dest)
                .typ("bind")
                .source(src)
                .options(strings(&opts))
                .build()?,
        );
    }
    Ok(out)
}

fn strings(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

/// Writes `spec` as `<dir>/config.json` (the bundle's config).
pub fn write_spec(dir: &Path, spec: &Spec) -> Result<(), RuntimeError> {
    let path = dir.join("config.json");
    let json = serde_json::to_vec_pretty(spec)
        .map_err(|e| RuntimeError::io("serializing config.json", std::io::Error::other(e)))?;
    std::fs::write(&path, json)
        .map_err(|e| RuntimeError::io(format!("writing {}", path.display()), e))
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
