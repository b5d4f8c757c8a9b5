//! Container logs on disk are capped: a pod writing gigabytes to stdout keeps at most
//! `--log-max-size × --log-max-files` of log on the host, keeps running, and `logs` / `logs -f`
//! read the newest output across rotations.
mod common;

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

const LONG: Duration = Duration::from_secs(60);
const MIB: u64 = 1024 * 1024;

/// The container's directory in the daemon's data dir.
fn container_dir(d: &Daemon, id: &str) -> PathBuf {
    d.data_dir.join("containers").join(id)
}

/// The log files in `dir` (`container.log*`), by inode (a file renamed while listing counts
/// once): (apparent size, allocated bytes).
fn log_files(dir: &Path) -> HashMap<u64, (u64, u64)> {
    let mut files = HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for e in entries.flatten() {
        if !e.file_name().to_string_lossy().starts_with("container.log") {
            continue;
        }
        // Gone between listing and stat: it was rotated away.
        if let Ok(m) = std::fs::metadata(e.path()) {
            files.insert(m.ino(), (m.len(), m.blocks() * 512));
        }
    }
    files
}

/// Resident memory of process `pid` in KiB (0 if it is gone).
fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The numbers of the `<prefix><n>[ ...]` lines of `text`, in order.
fn numbers(text: &str, prefix: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix)?.split(' ').next()?.parse().ok())
        .collect()
}

#[test]
fn a_pod_writing_gigabytes_keeps_at_most_the_cap_on_disk() {
    let d = Daemon::start();
    // Each round: a counter line, then ~1 MB of 37-byte lines, as fast as busybox can.
    let c = d.run_pod(&[
        "--image",
        &registry().image("bare"),
        "--entrypoint",
        "sh -c 'i=0; while :; do echo \"count $i\"; \
         yes 0123456789abcdefghijklmnopqrstuvwxyz | head -n 28000; i=$((i+1)); done'",
        "--keep-warm-seconds",
        "-1",
        "--log-max-size",
        "1Mi",
        "--log-max-files",
        "2",
    ]);
    let (max_size, max_files) = (MIB, 2u64);
    let dir = container_dir(&d, &c.id);

    // `logs -f` from the start: it must keep delivering across the rotations.
    let mut follow = d
        .cli_command(&["container", "logs", "-f", &c.id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let followed = line_reader(&mut follow);

    // ~2 GB: 2,000 rounds of 1,036,000 bytes.
    const ROUNDS: u64 = 2000;
    let deadline = Instant::now() + Duration::from_secs(900);
    let started = Instant::now();
    let (mut most_files, mut most_total, mut most_allocated, mut polls) = (0, 0u64, 0u64, 0u64);
    let mut followed_counts: Vec<u64> = Vec::new();
    let mut last_logs_check = Instant::now();
    let mut newest = 0;
    let shim_pid = std::fs::read_to_string(dir.join("shim.pid")).unwrap();
    let mut most_shim_rss_kib = 0u64;
    while newest < ROUNDS {
        assert!(
            Instant::now() < deadline,
            "the pod wrote only {newest} MB in {:?}",
            started.elapsed()
        );
        // The cap holds at every moment: every file at most max-size, all together at most
        // max-size × max-files (no slack: the shim cuts files before they would pass it).
        let files = log_files(&dir);
        let total: u64 = files.values().map(|(len, _)| len).sum();
        let allocated: u64 = files.values().map(|(_, blocks)| blocks).sum();
        assert!(
            files.values().all(|(len, _)| *len <= max_size),
            "a log file above {max_size}: {files:?}"
        );
        assert!(
            total <= max_size * max_files,
            "{total} bytes of log: {files:?}"
        );
        // On disk: at most one partly used 4 KiB block per file more.
        assert!(
            allocated <= max_size * max_files + 4096 * max_files,
            "{allocated} bytes allocated: {files:?}"
        );
        (most_files, most_total, most_allocated) = (
            most_files.max(files.len()),
            most_total.max(total),
            most_allocated.max(allocated),
        );
        polls += 1;
        most_shim_rss_kib = most_shim_rss_kib.max(rss_kib(shim_pid.trim()));
        while let Ok(line) = followed.try_recv() {
            followed_counts.extend(numbers(&line, "count "));
        }
        if last_logs_check.elapsed() > Duration::from_secs(2) {
            last_logs_check = Instant::now();
            let logs = ok(&d.cli(&["container", "logs", &c.id]));
            assert!(logs.len() as u64 <= max_size * max_files, "{}", logs.len());
            let counts = numbers(&logs, "count ");
            // The newest output, in order (a file the writer removed while `logs` was still
            // reading an older one is skipped, never repeated).
            assert!(
                counts.windows(2).all(|w| w[1] > w[0]),
                "counts out of order: {counts:?}"
            );
            if let Some(&last) = counts.last() {
                assert!(last >= newest, "logs went back from {newest} to {last}");
                newest = last;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "wrote {newest} rounds (~{} MB) in {secs:.1} s: ~{:.0} MB/s; {polls} polls: at most \
         {most_files} files, {most_total} bytes, {most_allocated} allocated; shim RSS at most \
         {most_shim_rss_kib} KiB",
        newest * 1_036_000 / 1_000_000,
        newest as f64 * 1.036 / secs
    );
    // The shim copies through one fixed buffer: its memory does not grow with the output.
    assert!(
        most_shim_rss_kib > 0 && most_shim_rss_kib < 8 * 1024,
        "shim RSS {most_shim_rss_kib} KiB"
    );
    // It was never stopped or throttled to death: it still runs and still writes.
    assert_eq!(d.inspect(&c.id).status, ContainerStatus::Running);
    wait_until("the pod to write on", LONG, || {
        let logs = ok(&d.cli(&["container", "logs", &c.id]));
        numbers(&logs, "count ")
            .last()
            .filter(|n| **n > newest)
            .map(|_| ())
    });
    // `logs -f` kept delivering across rotations: counts from the start to near the end,
    // never repeated or out of order (it may skip output removed before it read it).
    while let Ok(line) = followed.try_recv() {
        followed_counts.extend(numbers(&line, "count "));
    }
    assert!(
        followed_counts.windows(2).all(|w| w[1] > w[0]),
        "logs -f repeated or reordered: {followed_counts:?}"
    );
    assert!(
        followed_counts.len() > 10 && followed_counts.last() > Some(&(ROUNDS / 2)),
        "logs -f stopped delivering: {followed_counts:?}"
    );
    assert!(follow.try_wait().unwrap().is_none(), "logs -f ended early");
    ok(&d.cli(&["container", "stop", &c.id]));
    let st = wait_until("logs -f to end after stop", LONG, || {
        follow.try_wait().unwrap()
    });
    assert!(st.success(), "{st}");
    // After the stop: still within the cap, the last output readable.
    let files = log_files(&dir);
    assert!(files.values().map(|(len, _)| len).sum::<u64>() <= max_size * max_files);
    let counts = numbers(&ok(&d.cli(&["container", "logs", &c.id])), "count ");
    assert!(counts.last() > Some(&newest), "{counts:?}");
}

#[test]
fn logs_follow_crosses_rotations_without_losing_or_repeating_lines() {
    let d = Daemon::start_with(DaemonOpts {
        // The daemon's default cap, set small: 64 KiB × 3.
        extra_server_args: vec![
            "--log-max-size".into(),
            "64Ki".into(),
            "--log-max-files".into(),
            "3".into(),
        ],
        ..Default::default()
    });
    // ~100-byte lines, about a thousand a second: a rotation every ~0.7 s.
    let c = d.run_pod(&[
        "--image",
        &registry().image("bare"),
        "--entrypoint",
        "sh -c 'i=0; while [ $i -lt 6000 ]; do \
         echo \"line $i ................................................................................\"; \
         i=$((i+1)); [ $((i % 10)) = 0 ] && usleep 10000; done; echo done'",
        "--keep-warm-seconds",
        "-1",
    ]);
    let mut follow = d
        .cli_command(&["container", "logs", "-f", &c.id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = line_reader(&mut follow);
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("logs -f should deliver every line until `done`");
        if line == "done" {
            break;
        }
        got.extend(numbers(&line, "line "));
    }
    // Every line exactly once, in order, across about nine rotations.
    let want: Vec<u64> = (0..6000).collect();
    if got != want {
        let first_bad = got.iter().zip(&want).position(|(a, b)| a != b);
        panic!(
            "logs -f lost or repeated lines: {} lines, first difference at {first_bad:?}",
            got.len()
        );
    }
    // The files on disk hold only the newest output: the cap applies.
    let dir = container_dir(&d, &c.id);
    let total: u64 = log_files(&dir).values().map(|(len, _)| len).sum();
    assert!(total <= 3 * 64 * 1024, "{total}");
    let kept = ok(&d.cli(&["container", "logs", &c.id]));
    let kept_numbers = numbers(&kept, "line ");
    assert!(kept.ends_with("done\n"), "{}", tail(&kept, 3));
    assert_eq!(kept_numbers.last(), Some(&5999));
    assert!(
        kept_numbers.first() > Some(&0),
        "the oldest output was not dropped"
    );
    assert!(kept_numbers.windows(2).all(|w| w[1] == w[0] + 1));
    let _ = follow.wait();
}

#[test]
fn bad_log_limits_are_rejected() {
    let d = Daemon::start();
    let img = registry().image("bare");
    for (args, needle) in [
        (["--log-max-size", "1Ki"], "log max size"),
        (["--log-max-size", "lots"], "log max size"),
        (["--log-max-size", "2Ti"], "log max size"),
        (["--log-max-files", "0"], "log max files"),
        (["--log-max-files", "1000"], "log max files"),
    ] {
        let mut all = vec!["run", "--image", &img];
        all.extend_from_slice(&args);
        let o = d.cli(&all);
        failed_with(&o, &[needle]);
        assert!(
            d.list(true).is_empty(),
            "a container was created for {args:?}"
        );
    }
    // The daemon refuses a bad default at start, with one line.
    let o = d
        .server_command()
        .args(["--log-max-size", "12 parsecs"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("log-max-size"), "{}", stderr(&o));
}

#[test]
fn the_cap_holds_while_the_daemon_is_down() {
    let mut d = Daemon::start();
    let c = d.run_pod(&[
        "--image",
        &registry().image("bare"),
        "--entrypoint",
        "sh -c 'i=0; while :; do echo \"count $i\"; \
         yes 0123456789abcdefghijklmnopqrstuvwxyz | head -n 2800; i=$((i+1)); done'",
        "--keep-warm-seconds",
        "-1",
        "--log-max-size",
        "256Ki",
        "--log-max-files",
        "2",
    ]);
    let dir = container_dir(&d, &c.id);
    // The newest count in the files themselves (no daemon to ask).
    let newest_on_disk = || {
        let mut text = String::new();
        for name in ["container.log.1", "container.log"] {
            text += &String::from_utf8_lossy(&std::fs::read(dir.join(name)).unwrap_or_default());
        }
        numbers(&text, "count ").into_iter().max().unwrap_or(0)
    };
    d.kill9();
    let before = newest_on_disk();
    // The shim, not the daemon, rotates: the pod writes on (~100 KB a round) within the cap.
    let mut total_max = 0;
    wait_until(
        "the pod to write 200 rounds with the daemon down",
        LONG,
        || {
            let total: u64 = log_files(&dir).values().map(|(len, _)| len).sum();
            assert!(total <= 2 * 256 * 1024, "{total} bytes of log");
            total_max = total_max.max(total);
            (newest_on_disk() > before + 200).then_some(())
        },
    );
    d.restart();
    // The restarted daemon adopts the pod; its logs show the newest output.
    let counts = numbers(&ok(&d.cli(&["container", "logs", &c.id])), "count ");
    assert!(counts.last() > Some(&(before + 200)), "{counts:?}");
    assert_eq!(d.inspect(&c.id).status, ContainerStatus::Running);
    assert!(total_max > 256 * 1024, "the log never rotated: {total_max}");
}
