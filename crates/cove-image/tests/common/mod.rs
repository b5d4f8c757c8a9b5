//! Reusable test harness: a throwaway local registry (the Distribution
//! registry, `docker-registry` from Debian), test images built with umoci +
//! busybox-static and pushed with skopeo, and cleanup guards.
//!
//! Needs: `apt-get install -y docker-registry skopeo umoci busybox-static apache2-utils`.
//! Every helper owns its temp dir and child process and cleans up on drop, so
//! tests can run in parallel and fail without leaking registries or mounts.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Installs rustls' ring provider as the process default (the `cove` binary does
/// this at startup).
pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Runs a command, panicking with its stderr on failure.
pub fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A free TCP port on loopback (bind :0, read it, release it).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A `docker-registry` on 127.0.0.1:<port>, killed on drop.
pub struct Registry {
    pub port: u16,
    /// `127.0.0.1:<port>`
    pub addr: String,
    /// Basic-auth credentials, when started with [`Registry::with_auth`].
    pub creds: Option<(String, String)>,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        Self::spawn(None)
    }

    /// A registry requiring basic auth (htpasswd, bcrypt) for every request.
    pub fn with_auth(user: &str, password: &str) -> Registry {
        Self::spawn(Some((user, password)))
    }

    fn spawn(creds: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut auth = String::new();
        if let Some((u, p)) = creds {
            let file = dir.path().join("htpasswd");
            let out = Command::new("htpasswd")
                .args(["-Bbn", u, p])
                .output()
                .expect("htpasswd");
            assert!(out.status.success(), "htpasswd failed");
            std::fs::write(&file, out.stdout).expect("write htpasswd");
            auth = format!(
                "auth:\n  htpasswd:\n    realm: cove-test\n    path: {}\n",
                file.display()
            );
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth}",
            dir.path().join("data").display()
        );
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).expect("write registry config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn docker-registry");
        let reg = Registry {
            port,
            addr: addr.clone(),
            creds: creds.map(|(u, p)| (u.to_string(), p.to_string())),
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry on {addr} did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        reg
    }

    /// Pushes `oci:<layout>:<tag>` to `<addr>/<repo>`, with extra skopeo flags
    /// (`--format v2s2`, `--dest-compress-format zstd`, …).
    pub fn push(&self, layout: &Path, tag: &str, repo: &str, extra: &[&str]) -> String {
        let dest = format!("{}/{repo}", self.addr);
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--quiet", "--dest-tls-verify=false"])
            .args(extra);
        if let Some((u, p)) = &self.creds {
            cmd.arg(format!("--dest-creds={u}:{p}"));
        }
        cmd.arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{dest}"));
        run(&mut cmd);
        dest
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds an OCI layout at `<dir>/layout` with tag `latest`: layer 1 holds
/// /bin/busybox, /bin/sh -> busybox and /etc/deleteme; layer 2 deletes
/// /etc/deleteme (a whiteout) and adds /etc/hello. Entrypoint /bin/busybox,
/// cmd ["sh"], env GREETING=hi, exposed port 8080.
pub fn build_test_layout(dir: &Path) -> PathBuf {
    let layout = dir.join("layout");
    let bundle = dir.join("bundle");
    let image = format!("{}:latest", layout.display());
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    run(Command::new("umoci").args(["new", "--image", &image]));
    run(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).expect("mkdir bin");
    std::fs::create_dir_all(rootfs.join("etc")).expect("mkdir etc");
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy busybox");
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).expect("symlink sh");
    std::fs::write(rootfs.join("etc/deleteme"), "doomed\n").expect("write");
    // --refresh-bundle: the next repack then adds a layer on top of this one.
    run(Command::new("umoci")
        .args(["repack", "--refresh-bundle", "--image", &image])
        .arg(&bundle));
    std::fs::remove_file(rootfs.join("etc/deleteme")).expect("rm");
    std::fs::write(rootfs.join("etc/hello"), "hello\n").expect("write");
    run(Command::new("umoci")
        .args(["repack", "--image", &image])
        .arg(&bundle));
    run(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.entrypoint",
        "/bin/busybox",
        "--config.cmd",
        "sh",
        "--config.env",
        "GREETING=hi",
        "--config.exposedports",
        "8080/tcp",
        "--config.workingdir",
        "/",
    ]));
    let _ = std::fs::remove_dir_all(&bundle);
    layout
}

/// A temp data dir + an `ImageStore` on an in-memory database.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub images: cove_image::ImageStore,
}

impl Env {
    pub fn new() -> Env {
        init();
        let dir = tempfile::tempdir().expect("tempdir");
        let db = std::sync::Arc::new(cove_store::SqliteStore::open_in_memory().expect("store"));
        let images = cove_image::ImageStore::open(dir.path(), db).expect("open image store");
        Env { dir, images }
    }
}

/// Unmounts `<container_dir>/rootfs` on drop (even when the test panics).
pub struct MountGuard(pub PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = cove_image::ImageStore::unmount_rootfs(&self.0);
    }
}

/// True if anything is mounted at `path` (per /proc/mounts).
pub fn is_mounted(path: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let want = path.to_string_lossy();
    mounts.lines().any(|l| l.split(' ').nth(1) == Some(&*want))
}

/// A progress callback that ignores its input.
pub fn quiet(_: String) {}
