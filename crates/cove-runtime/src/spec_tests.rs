//! Unit tests for spec generation.

use super::*;

fn cfg() -> ContainerConfig {
    ContainerConfig {
        id: "pod-x-1234abcd".into(),
        dir: PathBuf::from("/data/pods/x"),
        rootfs: PathBuf::from("/data/pods/x/rootfs"),
        args: vec!["/bin/sh".into(), "-c".into(), "true".into()],
        env: vec!["FOO=bar".into()],
        cwd: String::new(),
        user: None,
        hostname: "x".into(),
        netns: None,
        cpu_millis: 250,
        memory_mib: 128,
        pids_limit: 1024,
        log_path: PathBuf::from("/data/pods/x/log"),
        log_limit: Default::default(),
        cgroup_parent: "cove-t1".into(),
        dns: vec![],
        extra_mounts: Vec::new(),
        isolation: crate::Isolation::Runc,
    }
}

const V1: HostInfo = HostInfo {
    cgroup_v2: false,
    swap_accounting: true,
    nofile_hard: 20_000,
};

fn ns_types(spec: &Spec) -> Vec<LinuxNamespaceType> {
    spec.linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| n.typ())
        .collect()
}

#[test]
fn namespaces_follow_cgroup_version_and_netns() {
    let user = ResolvedUser::default();
    let spec = build_spec(&cfg(), &user, &V1).unwrap();
    let t = ns_types(&spec);
    assert_eq!(t.len(), 5);
    assert!(!t.contains(&LinuxNamespaceType::Cgroup));
    let v2 = HostInfo {
        cgroup_v2: true,
        ..V1
    };
    assert!(
        ns_types(&build_spec(&cfg(), &user, &v2).unwrap()).contains(&LinuxNamespaceType::Cgroup)
    );

    let mut c = cfg();
    c.netns = Some(PathBuf::from("/run/netns/cove-1"));
    let spec = build_spec(&c, &user, &V1).unwrap();
    let net = spec
        .linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::Network)
        .unwrap()
        .clone();
    assert_eq!(net.path().as_deref(), Some(Path::new("/run/netns/cove-1")));
}

#[test]
fn rlimit_nofile_is_clamped_to_host_hard_limit() {
    let spec = build_spec(&cfg(), &ResolvedUser::default(), &V1).unwrap();
    let r = spec
        .process()
        .as_ref()
        .unwrap()
        .rlimits()
        .as_ref()
        .unwrap()
        .clone();
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].soft(), r[0].hard()), (20_000, 20_000));
    let big = HostInfo {
        nofile_hard: u64::MAX,
        ..V1
    };
    let spec = build_spec(&cfg(), &ResolvedUser::default(), &big).unwrap();
    let r = spec
        .process()
        .as_ref()
        .unwrap()
        .rlimits()
        .as_ref()
        .unwrap()
        .clone();
    assert_eq!(r[0].hard(), WANTED_NOFILE);
}

#[test]
fn cpu_memory_pids_math() {
    let spec = build_spec(&cfg(), &ResolvedUser::default(), &V1).unwrap();
    let res = spec
        .linux()
        .as_ref()
        .unwrap()
        .resources()
        .as_ref()
        .unwrap()
        .clone();
    let cpu = res.cpu().as_ref().unwrap();
    assert_eq!((cpu.quota(), cpu.period()), (Some(25_000), Some(100_000)));
    let mem = res.memory().as_ref().unwrap();
    assert_eq!(mem.limit(), Some(128 * 1024 * 1024));
    assert_eq!(mem.swap(), Some(128 * 1024 * 1024));
    assert_eq!(res.pids().as_ref().unwrap().limit(), 1024);
    assert_eq!(
        spec.linux().as_ref().unwrap().cgroups_path().as_deref(),
        Some(Path::new("/cove-t1/pod-x-1234abcd"))
    );

    let no_swap = HostInfo {
        swap_accounting: false,
        ..V1
    };
    let spec = build_spec(&cfg(), &ResolvedUser::default(), &no_swap).unwrap();
    let res = spec
        .linux()
        .as_ref()
        .unwrap()
        .resources()
        .as_ref()
        .unwrap()
        .clone();
    assert_eq!(res.memory().as_ref().unwrap().swap(), None);

    let mut c = cfg();
    (c.cpu_millis, c.memory_mib, c.pids_limit) = (0, 0, 0);
    let spec = build_spec(&c, &ResolvedUser::default(), &V1).unwrap();
    let res = spec
        .linux()
        .as_ref()
        .unwrap()
        .resources()
        .as_ref()
        .unwrap()
        .clone();
    assert!(res.cpu().is_none() && res.memory().is_none() && res.pids().is_none());
}

#[test]
fn process_user_env_caps() {
    let user = ResolvedUser {
        uid: 1000,
        gid: 100,
        additional_gids: vec![10],
        home: Some("/home/j".into()),
    };
    let spec = build_spec(&cfg(), &user, &V1).unwrap();
    let p = spec.process().as_ref().unwrap();
    assert_eq!((p.user().uid(), p.user().gid()), (1000, 100));
    assert_eq!(p.user().additional_gids().as_deref(), Some(&[10u32][..]));
    assert_eq!(p.cwd(), Path::new("/"));
    assert_eq!(p.no_new_privileges(), Some(true));
    assert_eq!(p.terminal(), Some(false));
    let env = p.env().as_ref().unwrap();
    assert!(env.contains(&"FOO=bar".to_string()));
    assert!(env.iter().any(|e| e.starts_with("PATH=")));
    assert!(env.contains(&"HOSTNAME=x".to_string()));
    assert!(env.contains(&"HOME=/home/j".to_string()));
    let caps = p.capabilities().as_ref().unwrap();
    let eff = caps.effective().as_ref().unwrap();
    assert!(!eff.contains(&Capability::NetRaw) && !eff.contains(&Capability::Mknod));
    assert!(eff.contains(&Capability::NetBindService));
    assert_eq!(caps.bounding(), caps.permitted());
}

#[test]
fn mounts_include_etc_binds_and_json_shape() {
    let spec = build_spec(&cfg(), &ResolvedUser::default(), &V1).unwrap();
    let json = serde_json::to_value(&spec).unwrap();
    let mounts = json["mounts"].as_array().unwrap();
    let dests: Vec<&str> = mounts
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect();
    for d in [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/sys/fs/cgroup",
        "/etc/resolv.conf",
        "/etc/hosts",
        "/etc/hostname",
    ] {
        assert!(dests.contains(&d), "missing mount {d}");
    }
    let resolv = mounts
        .iter()
        .find(|m| m["destination"] == "/etc/resolv.conf")
        .unwrap();
    assert_eq!(resolv["source"], "/data/pods/x/etc/resolv.conf");
    assert_eq!(json["linux"]["resources"]["devices"][0]["allow"], false);
    assert_eq!(json["root"]["path"], "/data/pods/x/rootfs");
    assert!(json["linux"]["maskedPaths"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "/sys/devices/virtual/powercap"));
}

#[test]
fn empty_args_rejected() {
    let mut c = cfg();
    c.args.clear();
    assert!(matches!(
        build_spec(&c, &ResolvedUser::default(), &V1),
        Err(RuntimeError::InvalidConfig(_))
    ));
}

#[test]
fn extra_mounts_are_binds_read_only_when_asked() {
    let mut c = cfg();
    c.extra_mounts = vec![
        (
            PathBuf::from("/host/ca.crt"),
            "/etc/ssl/certs/x.crt".into(),
            true,
        ),
        (PathBuf::from("/host/rw"), "/rw".into(), false),
    ];
    let spec = build_spec(&c, &ResolvedUser::default(), &V1).unwrap();
    let mounts = spec.mounts().as_ref().unwrap();
    let find = |dest: &str| {
        mounts
            .iter()
            .find(|m| m.destination() == Path::new(dest))
            .unwrap_or_else(|| panic!("no mount at {dest}"))
    };
    let ca = find("/etc/ssl/certs/x.crt");
    assert_eq!(ca.typ().as_deref(), Some("bind"));
    assert_eq!(ca.source().as_deref(), Some(Path::new("/host/ca.crt")));
    let opts = |m: &Mount| m.options().clone().unwrap_or_default();
    assert!(opts(ca).contains(&"ro".to_string()));
    assert!(!opts(find("/rw")).contains(&"ro".to_string()));
}

#[test]
fn proc_kpage_and_docker_paths_are_masked() {
    let spec = build_spec(&cfg(), &ResolvedUser::default(), &V1).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    let masked = linux.masked_paths().as_ref().unwrap();
    for p in [
        "/proc/kpageflags",
        "/proc/kpagecount",
        "/proc/kpagecgroup",
        "/proc/kcore",
        "/proc/keys",
        "/proc/interrupts",
        "/proc/asound",
        "/proc/timer_list",
        "/proc/sched_debug",
        "/sys/firmware",
    ] {
        assert!(masked.iter().any(|m| m == p), "{p} not masked");
    }
    let readonly = linux.readonly_paths().as_ref().unwrap();
    for p in [
        "/proc/sys",
        "/proc/sysrq-trigger",
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
    ] {
        assert!(readonly.iter().any(|m| m == p), "{p} not read-only");
    }
}

#[test]
fn seccomp_is_an_allowlist_for_both_runtimes() {
    let mut c = cfg();
    for iso in [crate::Isolation::Runc, crate::Isolation::Gvisor] {
        c.isolation = iso;
        let spec = build_spec(&c, &ResolvedUser::default(), &V1).unwrap();
        let json = serde_json::to_value(&spec).unwrap();
        let seccomp = &json["linux"]["seccomp"];
        assert_eq!(seccomp["defaultAction"], "SCMP_ACT_ERRNO", "{iso:?}");
        assert_eq!(seccomp["defaultErrnoRet"], 1, "{iso:?}");
    }
}
