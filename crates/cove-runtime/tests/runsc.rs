//! Real containers through gVisor's runsc and the shim (needs root and the runsc package), and
//! [`Runtimes`] routing between runc and runsc.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::Harness;
use cove_runtime::{
    find_runsc, read_exit_file, wait_exit, Isolation, Runc, Runtime, RuntimeError, Runtimes,
};

/// A [`Harness`] whose runtime is runsc (`--platform=ptrace`), in a network namespace of its own
/// (runsc takes over the interfaces of the spec's namespace; it never makes one). Dropping it
/// deletes the runsc container and the namespace, then the harness removes the rest.
struct Gvisor {
    h: Harness,
    netns: String,
}

impl Gvisor {
    fn new(tag: &str, args: &[&str]) -> Gvisor {
        let runsc = find_runsc().expect("runsc is not installed (apt-get install runsc)");
        let mut h = Harness::new(tag, args);
        let netns = format!("cove-rt-{}", h.cfg.id);
        let o = std::process::Command::new("ip")
            .args(["netns", "add", &netns])
            .output()
            .expect("ip netns add");
        assert!(o.status.success(), "ip netns add: {o:?}");
        h.cfg.netns = Some(PathBuf::from("/run/netns").join(&netns));
        h.cfg.isolation = Isolation::Gvisor;
        let shim = PathBuf::from(env!("CARGO_BIN_EXE_cove-shim"));
        h.rt = Runc::gvisor(h.base.join("runsc-root"), shim, runsc, "ptrace");
        Gvisor { h, netns }
    }

    /// Containers runsc still knows in this test's root.
    fn runsc_list(&self) -> String {
        let o = std::process::Command::new("runsc")
            .arg("--root")
            .arg(self.h.rt.root())
            .args(["list", "-quiet"])
            .output()
            .expect("runsc list");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }
}

impl Drop for Gvisor {
    fn drop(&mut self) {
        let _ = std::process::Command::new("runsc")
            .arg("--root")
            .arg(self.h.rt.root())
            .args(["delete", "-force", &self.h.cfg.id])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn exit_code_logs_and_kernel_are_gvisors() {
    let g = Gvisor::new(
        "gv-exit",
        &[
            "sh",
            "-c",
            "echo out-$GREETING; echo err-line >&2; cat /proc/version; exit 3",
        ],
    );
    let h = &g.h;
    let started = h.rt.start(&h.cfg).await.expect("start");
    let st = wait_exit(started.shim_pid, &h.cfg.dir)
        .await
        .expect("wait_exit");
    assert_eq!((st.code, st.signal, st.oom_killed), (3, None, false));
    assert_eq!(read_exit_file(&h.cfg.dir), Some(st));
    let log = h.log();
    assert!(
        log.contains("out-hello") && log.contains("err-line"),
        "{log}"
    );
    let host = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert!(
        log.contains("Linux version") && !log.contains(host.trim()),
        "not gVisor's kernel: {log}"
    );
    h.delete().await;
    assert!(cove_runtime::leftover_dirs(&h.cfg.id).is_empty());
    assert_eq!(g.runsc_list(), "");
}

#[tokio::test]
async fn exec_runs_as_the_containers_user_and_stop_ends_it() {
    let mut g = Gvisor::new("gv-exec", &["sh", "-c", "echo ready; sleep 1000"]);
    g.h.cfg.user = Some("alice".into());
    let h = &g.h;
    let s = h.rt.start(&h.cfg).await.expect("start");
    h.wait_log("ready").await;
    let args = strings(&["sh", "-c", "id -u; id -G; pwd; echo $X; echo e >&2; exit 7"]);
    let out =
        h.rt.exec(&h.cfg.id, &args, &["X=yz".into()], Some("/tmp"))
            .await
            .expect("exec");
    assert_eq!(out.exit_code, 7);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1000\n1000 50\n/tmp\nyz\n"
    );
    assert_eq!(out.stderr, b"e\n");
    // Like runc: a non-root exec has no effective capabilities (the spec's stay the bound).
    let status =
        h.rt.exec(
            &h.cfg.id,
            &strings(&["cat", "/proc/self/status"]),
            &[],
            None,
        )
        .await
        .expect("exec");
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("CapEff:\t0000000000000000"), "{status}");

    let bad =
        h.rt.exec(&h.cfg.id, &strings(&["/nonexistent"]), &[], None)
            .await;
    assert!(
        matches!(
            &bad,
            Err(RuntimeError::Runc {
                runtime: "runsc",
                ..
            })
        ),
        "{bad:?}"
    );
    let gone = h.rt.exec("no-such-container", &args, &[], None).await;
    assert!(matches!(gone, Err(RuntimeError::NotFound(_))), "{gone:?}");
    // `sleep` under sh as init: SIGTERM, then SIGKILL after the grace.
    h.rt.stop(&h.cfg.id, Duration::from_millis(500))
        .await
        .expect("stop");
    let st = wait_exit(s.shim_pid, &h.cfg.dir).await.expect("wait_exit");
    assert!(st.code != 0, "{st:?}");
    h.rt.stop(&h.cfg.id, Duration::from_millis(100))
        .await
        .expect("second stop");
    h.delete().await;
    assert_eq!(g.runsc_list(), "");
}

#[tokio::test]
async fn runtimes_route_by_isolation_and_find_gvisor_containers_after_a_restart() {
    let g = Gvisor::new("gv-route", &["sh", "-c", "echo ready; sleep 1000"]);
    let h = &g.h;
    let shim = PathBuf::from(env!("CARGO_BIN_EXE_cove-shim"));
    let runc = Runc::new(h.base.join("runc-root"), shim);
    let rts = Runtimes::new(runc.clone(), Some(h.rt.clone()));
    rts.start(&h.cfg).await.expect("start through Runtimes");
    h.wait_log("ready").await;
    assert_eq!(g.runsc_list(), h.cfg.id, "started by runsc");
    assert_eq!(runc.list().await.expect("runc list"), Vec::<String>::new());

    // A new Runtimes (a restarted daemon) knows nothing yet: exec and stop still reach runsc.
    let fresh = Runtimes::new(runc, Some(h.rt.clone()));
    let out = fresh
        .exec(&h.cfg.id, &strings(&["cat", "/proc/version"]), &[], None)
        .await
        .expect("exec after restart");
    let host = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(host.trim()),
        "{out:?}"
    );
    assert_eq!(fresh.list().await.expect("list"), vec![h.cfg.id.clone()]);
    fresh
        .stop(&h.cfg.id, Duration::from_millis(300))
        .await
        .expect("stop");
    fresh.delete(&h.cfg.id).await.expect("delete");
    assert_eq!(g.runsc_list(), "");
    assert!(cove_runtime::leftover_dirs(&h.cfg.id).is_empty());
}
