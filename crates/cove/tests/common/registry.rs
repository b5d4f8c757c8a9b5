//! The test image and the registry holding it.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use super::*;

// ---------------------------------------------------------------- test image and registry

/// The test image's OCI layout, built (once, cached by busybox version) by
/// `scripts/build-test-image.sh` under a file lock shared by all test binaries.
pub fn test_image_layout() -> PathBuf {
    static LAYOUT: OnceLock<PathBuf> = OnceLock::new();
    LAYOUT
        .get_or_init(|| {
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
            std::fs::create_dir_all(&dir).unwrap();
            let out = dir.join("cove-test-image");
            let lock = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(dir.join("cove-test-image.lock"))
                .unwrap();
            // flock: concurrent test binaries build it once, the others wait.
            let lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
                .map_err(|(_, e)| e)
                .expect("locking the test image cache");
            let o = Command::new("bash")
                .arg(scripts_dir().join("build-test-image.sh"))
                .arg(&out)
                .output()
                .expect("running build-test-image.sh");
            assert!(
                o.status.success(),
                "build-test-image.sh failed: {}",
                out_str(&o)
            );
            drop(lock);
            out
        })
        .clone()
}

/// A registry serving the test image for the life of this test binary.
pub struct Registry {
    /// `127.0.0.1:<port>`.
    pub addr: String,
}

impl Registry {
    /// `127.0.0.1:<port>/busybox:<tag>`.
    pub fn image(&self, tag: &str) -> String {
        format!("{}/busybox:{tag}", self.addr)
    }
}

/// The registry of this test binary, started on first use.
pub fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(|| {
        let layout = test_image_layout();
        let dir = tempdir("cove-test-registry");
        let port = free_port();
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        // The registry must die with this process, not with the test thread that happened to
        // start it: a keeper thread that never ends spawns it with a parent-death signal.
        // A shell in between removes the storage when that signal comes.
        let (tx, rx) = mpsc::channel();
        let dir2 = dir.clone();
        std::thread::spawn(move || {
            let script = r#"docker-registry serve "$1" >"$2/registry.log" 2>&1 & pid=$!
trap 'kill $pid 2>/dev/null; wait $pid; rm -rf "$2"; exit 0' TERM INT HUP
wait $pid"#;
            let mut cmd = Command::new("bash");
            cmd.arg("-c").arg(script).arg("registry").arg(&config).arg(&dir2);
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
            // SAFETY: prctl is async-signal-safe; the closure touches nothing else.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let mut child = cmd.spawn().expect("starting docker-registry");
            tx.send(child.id()).unwrap();
            // This thread must outlive every test: it waits on the registry, then parks.
            let _ = child.wait();
            loop {
                std::thread::park();
            }
        });
        let _pid = rx.recv().unwrap();
        let addr = format!("127.0.0.1:{port}");
        wait_until("the registry to answer", Duration::from_secs(30), || {
            http_get(&addr, "127.0.0.1", "/v2/").ok().filter(|r| r.status == 200)
        });
        let o = Command::new("bash")
            .arg(scripts_dir().join("registry.sh"))
            .args(["push"])
            .arg(&layout)
            .arg(port.to_string())
            .output()
            .unwrap();
        assert!(o.status.success(), "pushing the test image: {}", out_str(&o));
        Registry { addr }
    })
}
