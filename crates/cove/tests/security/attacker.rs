//! The attacking pod: the `cove-probe` executable (crates/cove-probe, built static once per
//! test binary) synced to `/app` of the busybox test image, run under an isolation runtime.
//!
//! The attacks run as the pod's own code: the pod's init is busybox httpd serving
//! `/app/www`, and each probe runs as its CGI child (`GET /cgi-bin/probe?<arg>+<arg>`
//! through the gateway), so it has exactly what the pod's processes have. (Not
//! `cove container exec`: that starts a process from outside, which under gVisor does
//! not get the pod's seccomp filter.)

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::common::*;

pub const LONG: Duration = Duration::from_secs(90);

/// The OCI runtime a pod runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    Runc,
    Gvisor,
}

impl Isolation {
    /// gVisor, if this build of `cove run` offers `--isolation` and `runsc` is installed.
    pub fn gvisor() -> Option<Isolation> {
        static HAS: OnceLock<bool> = OnceLock::new();
        let has = *HAS.get_or_init(|| {
            let help = Command::new(COVE).args(["run", "--help"]).output();
            let offered = help.is_ok_and(|o| stdout(&o).contains("--isolation"));
            let runsc = Command::new("runsc").arg("--version").output();
            offered && runsc.is_ok_and(|o| o.status.success())
        });
        if !has {
            eprintln!("skipped: `cove run --isolation gvisor` is not available in this build");
        }
        has.then_some(Isolation::Gvisor)
    }

    /// The `cove run` arguments selecting this runtime.
    pub fn run_args(self) -> Vec<&'static str> {
        match self {
            Isolation::Runc => vec![],
            Isolation::Gvisor => vec!["--isolation", "gvisor"],
        }
    }
}

/// Makes `runc::<name>` and `gvisor::<name>` tests of `fn <name>(iso: Isolation)` in the
/// calling module; the gVisor one is skipped (and says so) until the runtime exists.
macro_rules! per_runtime {
    ($($f:ident),* $(,)?) => {
        mod runc {
            $( #[test] fn $f() { super::$f($crate::attacker::Isolation::Runc) } )*
        }
        mod gvisor {
            $( #[test] fn $f() {
                if let Some(iso) = $crate::attacker::Isolation::gvisor() { super::$f(iso) }
            } )*
        }
    };
}
pub(crate) use per_runtime;

/// A directory holding only the static `cove-probe`, built once per test binary by a
/// nested cargo with its own target dir (no contention with the outer build's lock).
pub fn probe_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(&tmp).unwrap();
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(tmp.join("cove-probe.lock"))
            .unwrap();
        let lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .expect("locking the probe build");
        let target_dir = tmp.join("cove-probe-target");
        let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let o = Command::new(cargo)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .args(["build", "--release", "--locked", "--offline", "-q"])
            .args(["-p", "cove-probe", "--target", &triple, "--target-dir"])
            .arg(&target_dir)
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET")
            .output()
            .expect("running cargo to build cove-probe");
        assert!(o.status.success(), "building cove-probe: {}", stderr(&o));
        let dir = tmp.join("cove-probe-app");
        std::fs::create_dir_all(dir.join("www/cgi-bin")).unwrap();
        let built = target_dir.join(&triple).join("release").join("cove-probe");
        std::fs::copy(&built, dir.join("cove-probe")).expect("copying cove-probe");
        std::fs::write(dir.join("www/index.html"), "attacker\n").unwrap();
        let cgi = dir.join("www/cgi-bin/probe");
        std::fs::write(&cgi, CGI).unwrap();
        std::fs::set_permissions(&cgi, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        drop(lock);
        dir
    })
    .clone()
}

/// The CGI that runs `/app/cove-probe` with the query's `+`-separated words as arguments
/// and ends its answer with `exit=<code>`.
const CGI: &str = r#"#!/bin/sh
echo "Content-Type: text/plain"
echo
set -f
/app/cove-probe $(echo "$QUERY_STRING" | tr '+' ' ') 2>&1
echo "exit=$?"
"#;

/// What one probe run came to.
#[derive(Debug)]
pub struct ProbeRun {
    pub code: Option<i32>,
    pub output: String,
}

/// A pod serving busybox httpd on port 8000 with `/app/cove-probe`.
pub struct Attacker<'d> {
    pub d: &'d Daemon,
    pub pod: Container,
    pub iso: Isolation,
}

impl<'d> Attacker<'d> {
    /// Starts the attacking pod (keep-warm forever) with `extra` `cove run` arguments.
    pub fn start(d: &'d Daemon, iso: Isolation, extra: &[&str]) -> Self {
        let mut args = probe_pod_args(iso, extra);
        args.extend(["--entrypoint".into(), "httpd -f -p 8000 -h /app/www".into()]);
        let pod = d.run_pod_owned(&args);
        d.wait_serving(&pod, 8000, "/");
        Attacker { d, pod, iso }
    }

    /// Runs `/app/cove-probe <args>` in the pod, as a child of its init.
    pub fn probe(&self, args: &[&str]) -> ProbeRun {
        assert!(
            args.iter().all(|a| !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/._-:".contains(&b))),
            "probe arguments must be plain words: {args:?}"
        );
        let path = format!("/cgi-bin/probe?{}", args.join("+"));
        let r = self.d.get(&self.pod, 8000, &path);
        assert_eq!(r.status, 200, "GET {path}: {r:?}");
        let body = r.body.trim_end();
        let (output, code) = body.rsplit_once("exit=").unwrap_or((body, ""));
        ProbeRun {
            code: code.trim().parse().ok(),
            output: output.trim().to_string(),
        }
    }

    /// Asserts the attempt `args` was refused (probe exit 1); returns its output.
    #[track_caller]
    pub fn refused(&self, args: &[&str]) -> String {
        let r = self.probe(args);
        assert_eq!(
            r.code,
            Some(1),
            "[{:?}] attack {args:?} was not refused: {}",
            self.iso,
            r.output
        );
        eprintln!("[{:?}] {args:?}: {}", self.iso, r.output);
        r.output
    }

    /// Asserts the control `args` succeeded (probe exit 0); returns its output.
    #[track_caller]
    pub fn succeeds(&self, args: &[&str]) -> String {
        let r = self.probe(args);
        assert_eq!(
            r.code,
            Some(0),
            "[{:?}] control {args:?} did not succeed: {}",
            self.iso,
            r.output
        );
        eprintln!("[{:?}] control {args:?}: {}", self.iso, r.output);
        r.output
    }
}

/// `cove run` arguments for a pod on the busybox image with the probe at `/app`.
pub fn probe_pod_args(iso: Isolation, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--sync".into(),
        probe_dir().to_string_lossy().into_owned(),
        "--image".into(),
        registry().image("latest"),
        "--ports".into(),
        "8000".into(),
        "--keep-warm-seconds".into(),
        "-1".into(),
    ];
    args.extend(iso.run_args().into_iter().map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

impl Daemon {
    /// `run_pod` with owned arguments.
    #[track_caller]
    pub fn run_pod_owned(&self, args: &[String]) -> Container {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run_pod(&a)
    }
}

/// A neighbour pod (busybox, `iso`) running `script` under `sh -c`, serving port 8000 if
/// the script starts httpd there.
pub fn neighbour(d: &Daemon, iso: Isolation, script: &str) -> Container {
    let mut args = vec![
        "--image".to_string(),
        registry().image("latest"),
        "--ports".into(),
        "8000".into(),
        "--keep-warm-seconds".into(),
        "-1".into(),
        "--entrypoint".into(),
        format!("sh -c '{script}'"),
    ];
    args.extend(iso.run_args().into_iter().map(String::from));
    let c = d.run_pod_owned(&args);
    d.wait_status(&c.id, ContainerStatus::Running, LONG);
    c
}
