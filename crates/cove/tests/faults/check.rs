//! The invariants that must hold after any fault, once the daemon is back up.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cove_types::{Deployment, DeploymentStatus};

use crate::common::*;

const LONG: Duration = Duration::from_secs(60);

fn sh(cmd: &str) -> String {
    let o = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The state database opens and passes `PRAGMA integrity_check` and `foreign_key_check`
/// (run while the daemon is down, as a later start would find it).
pub fn store_is_sound(d: &Daemon) {
    let db = d.data_dir.join("state.db");
    let o = Command::new("sqlite3")
        .arg(&db)
        .arg("PRAGMA integrity_check; PRAGMA foreign_key_check;")
        .output()
        .expect("running sqlite3");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.trim() == "ok",
        "{} is damaged: {out}{}",
        db.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Lines of the daemon's nftables table (its rules do not depend on the pods, so the count
/// must not change from round to round).
pub fn nft_lines(d: &Daemon) -> usize {
    let br = d.bridge().expect("the daemon's bridge");
    let table = format!("cove_{}", br.trim_start_matches("cove"));
    sh(&format!("nft list table inet {table} 2>/dev/null"))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

/// Container ids runc knows under the daemon's runc root.
pub fn runc_ids(d: &Daemon) -> BTreeSet<String> {
    let root = d.data_dir.join("runc");
    sh(&format!(
        "runc --root '{}' list -q 2>/dev/null",
        root.display()
    ))
    .lines()
    .map(str::to_string)
    .collect()
}

fn dir_names(p: &Path) -> BTreeSet<String> {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `cove deployment list --format json`.
pub fn deployments(d: &Daemon) -> Vec<Deployment> {
    let out = ok(&d.cli(&["deployment", "list", "--format", "json"]));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("deployment list json: {e}: {out}"))
}

/// `Host` of a deployment's port 8000.
pub fn deployment_host(dep: &Deployment) -> String {
    format!("{}-8000.localhost", dep.url_key)
}

/// The daemon's cgroup parent directories (one per controller), found from a running container.
pub fn cgroup_parents(id: &str) -> Vec<PathBuf> {
    Daemon::cgroups_of(id)
        .iter()
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect()
}

/// Checks everything after a restart; `nft_baseline` is [`nft_lines`] of a healthy daemon and
/// `cgroups` its [`cgroup_parents`].
pub fn everything(d: &Daemon, nft_baseline: usize, cgroups: &[PathBuf], what: &str) {
    // Every active deployment answers through the gateway (waking it if it sleeps).
    for dep in deployments(d) {
        if dep.status != DeploymentStatus::Active {
            continue;
        }
        let host = deployment_host(&dep);
        let mut last = String::new();
        let answered = (0..300).any(|_| {
            match http_get(&d.gw(), &host, "/") {
                Ok(r) if r.status == 200 => return true,
                Ok(r) => last = format!("{} {}", r.status, r.body),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(200));
            false
        });
        assert!(
            answered,
            "{what}: deployment {} ({host}) does not answer: {last}\n{}",
            dep.name,
            tail(&d.log(), 40)
        );
    }
    // No container stays PENDING or STOPPING (an interrupted stop is finished after restart).
    let all = wait_until(
        &format!("{what}: no container PENDING or STOPPING"),
        LONG,
        || {
            let all = d.list(true);
            all.iter()
                .all(|c| {
                    !matches!(
                        c.status,
                        ContainerStatus::Pending | ContainerStatus::Stopping
                    )
                })
                .then_some(all)
        },
    );
    for c in &all {
        if c.status == ContainerStatus::Running {
            if c.deployment_id.is_none() && !c.urls.is_empty() {
                let served = wait_until_or_none(LONG, || {
                    http_get(&d.gw(), &Daemon::host_for(c, 8000), "/")
                        .ok()
                        .filter(|r| r.status == 200)
                });
                assert!(
                    served.is_some(),
                    "{what}: running {} is not served: {}\n{}",
                    c.id,
                    network_of(d, c),
                    tail(&d.log(), 30)
                );
            }
            continue;
        }
        assert!(
            c.ended_at.is_some() && c.reason.as_deref().is_some_and(|r| !r.is_empty()),
            "{what}: ended without a reason: {c:?}"
        );
        let left = d.leftovers_of(&c.id);
        assert!(left.is_empty(), "{what}: {} ended but left {left:?}", c.id);
        let logs = d.cli(&["container", "logs", &c.id]);
        assert!(
            logs.status.success(),
            "{what}: logs of ended {} unreadable: {}",
            c.id,
            stderr(&logs)
        );
        if c.status == ContainerStatus::Exited && c.exit_code == Some(3) {
            assert!(
                stdout(&logs).contains("marker-"),
                "{what}: logs of {} lost their output: {:?}",
                c.id,
                stdout(&logs)
            );
        }
    }
    // The runtime, the mounts and the network hold exactly the running ones. A pod may end
    // between two looks (the exiting ones do): compare fresh looks until they agree.
    let mut last = String::new();
    let agreed = (0..100).any(|_| match runtime_matches_store(d, cgroups) {
        Ok(()) => true,
        Err(e) => {
            last = e;
            std::thread::sleep(Duration::from_millis(300));
            false
        }
    });
    assert!(agreed, "{what}: {last}");
    assert_eq!(nft_lines(d), nft_baseline, "{what}: firewall table changed");
    // No half-written image, layer, blob or upload.
    let img_tmp = dir_names(&d.data_dir.join("images/tmp"));
    assert!(img_tmp.is_empty(), "{what}: images/tmp holds {img_tmp:?}");
    let up_tmp = dir_names(&d.data_dir.join("tmp"));
    assert!(up_tmp.is_empty(), "{what}: tmp holds {up_tmp:?}");
    let known: BTreeSet<String> = all.iter().map(|c| c.id.clone()).collect();
    for name in dir_names(&d.data_dir.join("containers")) {
        assert!(
            known.contains(&name),
            "{what}: containers/{name} belongs to no container"
        );
    }
    blobs_match_their_digests(d, what);
}

fn wait_until_or_none<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What the host and the pod's namespace say about its network, for a failure message.
fn network_of(d: &Daemon, c: &Container) -> String {
    let br = d.bridge().unwrap_or_default();
    let ns = d.data_dir.join("netns").join(&c.id);
    let ns = ns.display();
    sh(&format!(
        "echo '--- bridge links'; ip -o link show master {br}; echo '--- all links'; ip -o link | grep -E 'cv|cove' ; \
         echo '--- neigh'; ip neigh show dev {br}; echo '--- pod ns'; nsenter --net='{ns}' ip -o addr; \
         nsenter --net='{ns}' ip -o link; nsenter --net='{ns}' netstat -tln 2>/dev/null; \
         echo '--- address {:?}'",
        c.address
    ))
}

/// runc's containers, the mounts under the data dir, the netns files and the veths on the bridge
/// are those of the containers the store calls RUNNING, no more, no less.
fn runtime_matches_store(d: &Daemon, cgroups: &[PathBuf]) -> Result<(), String> {
    let running: BTreeSet<String> = d
        .list(false)
        .into_iter()
        .filter(|c| c.status == ContainerStatus::Running)
        .map(|c| c.id)
        .collect();
    let runc = runc_ids(d);
    if runc != running {
        return Err(format!("runc has {runc:?}, the store runs {running:?}"));
    }
    // A running container has three mounts: its root filesystem, its disk (the writable
    // layer's own filesystem) and its netns bind mount.
    let rootfs_of = |id: &str| d.data_dir.join("containers").join(id).join("rootfs");
    let disk_of = |id: &str| d.data_dir.join("containers").join(id).join("disk");
    let netns_of = |id: &str| d.data_dir.join("netns").join(id);
    for m in d.mounts() {
        let m = Path::new(&m);
        if !running
            .iter()
            .any(|id| m == rootfs_of(id) || m == disk_of(id) || m == netns_of(id))
        {
            return Err(format!(
                "mount {} belongs to no running container",
                m.display()
            ));
        }
    }
    let netns: BTreeSet<String> = d.netns_files().into_iter().collect();
    if netns != running {
        return Err(format!("netns files {netns:?}, the store runs {running:?}"));
    }
    let veths = d.veths();
    if veths.len() != running.len() {
        return Err(format!(
            "veths {veths:?} on the bridge, the store runs {running:?}"
        ));
    }
    for parent in cgroups {
        let stray: Vec<String> = dir_names(parent)
            .into_iter()
            .filter(|n| parent.join(n).is_dir() && !running.contains(n))
            .collect();
        if !stray.is_empty() {
            return Err(format!("cgroups {stray:?} left in {}", parent.display()));
        }
    }
    Ok(())
}

/// Every stored blob's sha256 is its file name: no blob is half-written.
pub fn blobs_match_their_digests(d: &Daemon, what: &str) {
    let dir = d.data_dir.join("images/blobs/sha256");
    let out = sh(&format!(
        "cd '{}' && find . -type f -exec sha256sum {{}} +",
        dir.display()
    ));
    for line in out.lines() {
        let mut parts = line.split_whitespace();
        let (Some(sum), Some(name)) = (parts.next(), parts.next()) else {
            continue;
        };
        assert_eq!(
            sum,
            name.trim_start_matches("./"),
            "{what}: blob {name} does not match its digest"
        );
    }
}
