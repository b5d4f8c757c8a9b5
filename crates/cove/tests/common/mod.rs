//! The one test harness for Cove's end-to-end tests.
//!
//! - [`registry()`]: a real `docker-registry` on a free loopback port, started once per test
//!   binary, holding the test image (`busybox:latest` and `busybox:bare`) that
//!   `scripts/build-test-image.sh` builds from Debian's busybox-static. It dies with the test
//!   binary (parent-death signal) and removes its storage.
//! - [`Daemon`]: the real `cove` binary as `cove server`, with its own data dir (under /tmp),
//!   API and gateway ports and /24 subnet, so tests run in parallel, also across test binaries.
//!   Its `Drop` stops every container, SIGTERMs the daemon and checks that nothing is left:
//!   no mount under the data dir, no netns file, no veth the daemon made, no bridge, no firewall
//!   table, no cgroup; then it removes the data dir.
//! - [`Cluster`]: several hosts in network namespaces plus a 3-member etcd, through
//!   `scripts/cluster-demo.sh` (see `cluster.rs`).
//! - [`wait_until`] polls; tests never sleep where a poll works and never assert on timing.
#![allow(dead_code)]

mod cluster;
mod daemon;
mod http;
mod images;
mod registry;
mod subnet;

#[allow(unused_imports)] // only the cluster tests use it
pub use cluster::*;
pub use daemon::*;
pub use http::*;
#[allow(unused_imports)] // only the tests that build images use it
pub use images::*;
pub use registry::*;
pub use subnet::*;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use cove_types::{Container, ContainerStatus};

/// The cove binary under test.
pub const COVE: &str = env!("CARGO_BIN_EXE_cove");

/// `<repo>/scripts`.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts")
}

/// Polls `cond` every 100 ms until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sh(cmd: &str) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .expect("running sh")
}

fn out_str(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Stdout of an `Output` as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stderr of an `Output` as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts `o` succeeded and returns its stdout.
#[track_caller]
pub fn ok(o: &Output) -> String {
    assert!(o.status.success(), "command failed: {}", out_str(o));
    stdout(o)
}

/// Asserts `o` failed with exactly one `Error: ...` line on stderr that contains one of
/// `needles` (case-insensitive); returns that line.
#[track_caller]
pub fn failed_with(o: &Output, needles: &[&str]) -> String {
    assert!(
        !o.status.success(),
        "command should have failed: {}",
        out_str(o)
    );
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "want one error line: {}", out_str(o));
    let line = lines[0];
    assert!(
        line.starts_with("Error: "),
        "want `Error: ...`: {}",
        out_str(o)
    );
    let lower = line.to_lowercase();
    assert!(
        needles.iter().any(|n| lower.contains(&n.to_lowercase())),
        "error should name the problem (one of {needles:?}): {line}"
    );
    line.to_string()
}

/// A fresh directory under /tmp, removed with its content when dropped
/// (also when the test fails).
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh scratch directory for a test's own files, removed when dropped.
pub fn scratch_dir(prefix: &str) -> TempDir {
    TempDir(tempdir(prefix))
}

/// A fresh directory under /tmp that its owner removes (the daemon's data
/// dir, the registry's storage).
pub fn tempdir(prefix: &str) -> PathBuf {
    let mut buf = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut buf)
        .unwrap();
    let p = PathBuf::from(format!("/tmp/{prefix}-{:016x}", u64::from_le_bytes(buf)));
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Reads lines of a child's stdout on a thread; lines arrive on the returned channel.
pub fn line_reader(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
