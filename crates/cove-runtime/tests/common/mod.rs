//! Shared harness: a busybox rootfs in a unique temp dir, a `Runc` with its own root, and a drop
//! guard that deletes the container and removes everything even when the test fails.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cove_runtime::{ContainerConfig, Runc, Runtime};

static N: AtomicU32 = AtomicU32::new(0);

pub struct Harness {
    pub base: PathBuf,
    pub rt: Runc,
    pub cfg: ContainerConfig,
}

impl Harness {
    /// A container config running `args` in a fresh busybox rootfs.
    pub fn new(tag: &str, args: &[&str]) -> Harness {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let id = format!("it-{tag}-{}-{n}", std::process::id());
        let base = std::env::temp_dir().join(format!("cove-rt-it-{id}"));
        let rootfs = base.join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).expect("mkdir rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).expect("mkdir etc");
        std::fs::create_dir_all(rootfs.join("tmp")).expect("mkdir tmp");
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
            .expect("copy busybox (apt-get install busybox-static)");
        // `busybox --install -s` would link to the host path; make relative links instead.
        let list = std::process::Command::new("/bin/busybox")
            .arg("--list")
            .output()
            .expect("busybox --list");
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" {
                let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
            }
        }
        std::fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
        )
        .expect("passwd");
        std::fs::write(
            rootfs.join("etc/group"),
            "root:x:0:\nalice:x:1000:\nstaff:x:50:alice\n",
        )
        .expect("group");
        let shim = PathBuf::from(env!("CARGO_BIN_EXE_cove-shim"));
        let rt = Runc::new(base.join("runc-root"), shim);
        let cfg = ContainerConfig {
            id: id.clone(),
            dir: base.join("ctr"),
            rootfs,
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec!["GREETING=hello".into()],
            cwd: "/".into(),
            user: None,
            hostname: format!("h{n}"),
            netns: None,
            cpu_millis: 500,
            memory_mib: 64,
            pids_limit: 128,
            log_path: base.join("logs/container.log"),
            log_limit: Default::default(),
            // A parent per test: with one shared parent, a test that ended could rmdir it
            // between another test's runc creating it and creating its own child in it.
            cgroup_parent: format!("cove-it-{id}"),
            dns: vec!["10.0.0.53".into()],
            extra_mounts: Vec::new(),
            isolation: cove_runtime::Isolation::Runc,
        };
        Harness { base, rt, cfg }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.cfg.log_path).unwrap_or_default()
    }

    /// Polls until the container log contains `needle` (or panics after 10s).
    pub async fn wait_log(&self, needle: &str) {
        for _ in 0..200 {
            if self.log().contains(needle) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("log never contained {needle:?}; log: {:?}", self.log());
    }

    pub async fn delete(&self) {
        self.rt.delete(&self.cfg.id).await.expect("delete");
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // Synchronous cleanup (no runtime in Drop): force-delete, kill a stray shim, remove dirs.
        let _ = std::process::Command::new("runc")
            .arg("--root")
            .arg(self.rt.root())
            .args(["delete", "--force", &self.cfg.id])
            .stderr(std::process::Stdio::null())
            .status();
        if let Ok(pid) = std::fs::read_to_string(self.cfg.dir.join("shim.pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                if cove_runtime::shim_is_alive(pid, &self.cfg.id) {
                    // SAFETY: plain kill(2) of a pid we verified is our test's shim.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        for d in cove_runtime::leftover_dirs(&self.cfg.id) {
            let _ = std::fs::remove_dir(d);
        }
        // The test's own parent goes with its container.
        cove_runtime::remove_cgroup_parent(&self.cfg.cgroup_parent);
        let _ = std::fs::remove_dir_all(&self.base);
    }
}
