//! Real containers through runc and the shim (needs root and runc).

mod common;

use std::time::{Duration, Instant};

use common::Harness;
use cove_runtime::{read_exit_file, wait_exit, Runtime, RuntimeError};

#[tokio::test]
async fn echo_lands_in_log_and_exit_code_is_recorded() {
    let h = Harness::new(
        "echo",
        &[
            "sh",
            "-c",
            "echo out-$GREETING; echo err-line >&2; cat /etc/resolv.conf; hostname; exit 3",
        ],
    );
    let started = h.rt.start(&h.cfg).await.expect("start");
    assert!(started.init_pid > 0 && started.shim_pid > 0);
    let st = wait_exit(started.shim_pid, &h.cfg.dir)
        .await
        .expect("wait_exit");
    assert_eq!((st.code, st.signal, st.oom_killed), (3, None, false));
    assert_eq!(read_exit_file(&h.cfg.dir), Some(st));
    let log = h.log();
    assert!(log.contains("out-hello"), "{log}");
    assert!(log.contains("err-line"), "{log}");
    assert!(log.contains("nameserver 10.0.0.53"), "{log}");
    assert!(log.contains(&h.cfg.hostname), "{log}");
    h.delete().await;
    assert!(cove_runtime::leftover_dirs(&h.cfg.id).is_empty());
}

#[tokio::test]
async fn stop_with_trap_exits_on_term() {
    let h = Harness::new(
        "trap",
        &[
            "sh",
            "-c",
            "trap 'echo got-term; exit 0' TERM; echo ready; sleep 1000 & wait",
        ],
    );
    let s = h.rt.start(&h.cfg).await.expect("start");
    h.wait_log("ready").await;
    let t = Instant::now();
    h.rt.stop(&h.cfg.id, Duration::from_secs(10))
        .await
        .expect("stop");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    let st = wait_exit(s.shim_pid, &h.cfg.dir).await.expect("wait_exit");
    assert_eq!(st.code, 0);
    h.wait_log("got-term").await;
    // Stopping again is fine.
    h.rt.stop(&h.cfg.id, Duration::from_secs(1))
        .await
        .expect("second stop");
    h.delete().await;
}

#[tokio::test]
async fn init_without_term_handler_is_killed_without_waiting_the_grace() {
    // pid 1 without a TERM handler never receives SIGTERM: stop must not wait
    // out a grace period that cannot help.
    let h = Harness::new(
        "nohandler",
        &["sh", "-c", "echo ready; while true; do sleep 1; done"],
    );
    let s = h.rt.start(&h.cfg).await.expect("start");
    h.wait_log("ready").await;
    let t = Instant::now();
    h.rt.stop(&h.cfg.id, Duration::from_secs(600))
        .await
        .expect("stop");
    assert!(t.elapsed() < Duration::from_secs(600));
    let st = wait_exit(s.shim_pid, &h.cfg.dir).await.expect("wait_exit");
    assert_eq!((st.code, st.signal), (137, Some(9)));
    h.delete().await;
}

#[tokio::test]
async fn stubborn_container_is_killed_after_grace() {
    // A TERM handler that does not exit: only SIGKILL after the grace ends it.
    let h = Harness::new(
        "stubborn",
        &[
            "sh",
            "-c",
            "trap 'echo term-ignored' TERM; echo ready; while true; do sleep 1; done",
        ],
    );
    let s = h.rt.start(&h.cfg).await.expect("start");
    h.wait_log("ready").await;
    let t = Instant::now();
    h.rt.stop(&h.cfg.id, Duration::from_millis(700))
        .await
        .expect("stop");
    assert!(t.elapsed() >= Duration::from_millis(700));
    let st = wait_exit(s.shim_pid, &h.cfg.dir).await.expect("wait_exit");
    assert_eq!((st.code, st.signal), (137, Some(9)));
    h.delete().await;
    assert!(cove_runtime::leftover_dirs(&h.cfg.id).is_empty());
}

#[tokio::test]
async fn oom_is_detected() {
    let mut h = Harness::new(
        "oom",
        &[
            "sh",
            "-c",
            "echo ready; head -c 200000000 /dev/zero | tail >/dev/null; echo survived",
        ],
    );
    h.cfg.memory_mib = 24;
    let s = h.rt.start(&h.cfg).await.expect("start");
    let st = wait_exit(s.shim_pid, &h.cfg.dir).await.expect("wait_exit");
    assert!(st.oom_killed, "{st:?}; log: {}", h.log());
    h.delete().await;
}

#[tokio::test]
async fn exec_returns_output_and_code() {
    let mut h = Harness::new("exec", &["sleep", "1000"]);
    h.cfg.user = Some("alice".into());
    h.rt.start(&h.cfg).await.expect("start");
    let args: Vec<String> = ["sh", "-c", "id -u; id -G; pwd; echo $X; echo e >&2; exit 7"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let out =
        h.rt.exec(&h.cfg.id, &args, &["X=yz".into()], Some("/tmp"))
            .await
            .expect("exec");
    assert_eq!(out.exit_code, 7);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout, "1000\n1000 50\n/tmp\nyz\n");
    assert_eq!(out.stderr, b"e\n");
    let bad =
        h.rt.exec(&h.cfg.id, &["/nonexistent".to_string()], &[], None)
            .await;
    // A missing executable is the caller's mistake (a 400 at the API), named in the error.
    assert!(
        matches!(&bad, Err(RuntimeError::BadCommand(m)) if m.contains("/nonexistent")),
        "{bad:?}"
    );
    let gone = h.rt.exec("no-such-container", &args, &[], None).await;
    assert!(matches!(gone, Err(RuntimeError::NotFound(_))), "{gone:?}");
    h.rt.stop(&h.cfg.id, Duration::from_millis(200))
        .await
        .expect("stop");
    h.delete().await;
}

#[tokio::test]
async fn wait_exit_works_from_another_process_view() {
    // The shim is never our child (it forks away), so this is the post-restart situation.
    let h = Harness::new("nonchild", &["sh", "-c", "sleep 1; exit 5"]);
    let s = h.rt.start(&h.cfg).await.expect("start");
    let ppid = std::fs::read_to_string(format!("/proc/{}/stat", s.shim_pid)).expect("shim alive");
    let ppid: i32 = ppid
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(
        ppid,
        std::process::id() as i32,
        "shim must not be our child"
    );
    assert!(cove_runtime::shim_is_alive(s.shim_pid, &h.cfg.id));
    let (a, b) = tokio::join!(
        wait_exit(s.shim_pid, &h.cfg.dir),
        wait_exit(s.shim_pid, &h.cfg.dir)
    );
    assert_eq!(a.expect("a").code, 5);
    assert_eq!(b.expect("b").code, 5);
    assert!(!cove_runtime::shim_is_alive(s.shim_pid, &h.cfg.id));
    // After the shim is gone the file answers.
    assert_eq!(
        wait_exit(s.shim_pid, &h.cfg.dir).await.expect("again").code,
        5
    );
    h.delete().await;
}

#[tokio::test]
async fn failed_start_reports_runc_error_and_cleans_up() {
    let h = Harness::new("badcmd", &["/no/such/binary"]);
    let err = h.rt.start(&h.cfg).await.expect_err("must fail");
    let msg = err.to_string();
    assert!(
        msg.contains("no such file") || msg.contains("not found"),
        "{msg}"
    );
    assert!(h.rt.list().await.expect("list").is_empty());
    assert!(cove_runtime::leftover_dirs(&h.cfg.id).is_empty());
}

#[tokio::test]
async fn list_and_idempotent_delete() {
    let h = Harness::new("list", &["sleep", "1000"]);
    h.rt.start(&h.cfg).await.expect("start");
    assert_eq!(h.rt.list().await.expect("list"), vec![h.cfg.id.clone()]);
    h.rt.stop(&h.cfg.id, Duration::from_millis(100))
        .await
        .expect("stop");
    h.delete().await;
    h.delete().await;
    assert!(h.rt.list().await.expect("list").is_empty());
    assert!(cove_runtime::leftover_dirs(&h.cfg.id).is_empty());
    h.rt.stop("never-existed", Duration::from_millis(10))
        .await
        .expect("stop unknown");
}

#[tokio::test]
async fn shim_stays_small() {
    let h = Harness::new("rss", &["sleep", "1000"]);
    let s = h.rt.start(&h.cfg).await.expect("start");
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", s.shim_pid)).expect("shim status");
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    eprintln!("shim VmRSS = {rss_kb} kB");
    h.rt.stop(&h.cfg.id, Duration::from_millis(100))
        .await
        .expect("stop");
    h.delete().await;
    assert!(rss_kb < 4096, "shim RSS {rss_kb} kB");
}

#[tokio::test]
async fn a_restarted_daemon_finds_and_controls_the_container() {
    let h = Harness::new(
        "restart",
        &[
            "sh",
            "-c",
            "trap 'exit 4' TERM; echo ready; sleep 1000 & wait",
        ],
    );
    let s = h.rt.start(&h.cfg).await.expect("start");
    h.wait_log("ready").await;
    // A second Runc over the same root stands in for the restarted daemon; it only has `dir`.
    let again = cove_runtime::Runc::new(h.rt.root().to_path_buf(), "/bin/false".into());
    assert_eq!(again.list().await.expect("list"), vec![h.cfg.id.clone()]);
    let shim_pid: i32 = std::fs::read_to_string(h.cfg.dir.join("shim.pid"))
        .expect("shim.pid")
        .trim()
        .parse()
        .expect("pid");
    assert_eq!(shim_pid, s.shim_pid);
    let out = again
        .exec(&h.cfg.id, &["hostname".into()], &[], None)
        .await
        .expect("exec");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), h.cfg.hostname);
    let dir_with_slash = std::path::PathBuf::from(format!("{}/", h.cfg.dir.display()));
    let waiter = tokio::spawn(async move { wait_exit(shim_pid, &dir_with_slash).await });
    again
        .stop(&h.cfg.id, Duration::from_secs(5))
        .await
        .expect("stop");
    assert_eq!(waiter.await.expect("join").expect("wait_exit").code, 4);
    again.delete(&h.cfg.id).await.expect("delete");
    assert!(cove_runtime::leftover_dirs(&h.cfg.id).is_empty());
}
