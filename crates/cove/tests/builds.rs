//! Image builds end to end: steps run in containers on the test busybox image, their changes
//! (new files and deletions) become layers, identical builds come from the cache, a changed
//! step rebuilds only from there, and a failing step or base leaves nothing behind.

mod common;

use std::time::{Duration, Instant};

use common::*;

const LONG: Duration = Duration::from_secs(60);

fn image_refs(d: &Daemon) -> Vec<String> {
    let out = ok(&d.cli(&["image", "list", "--format", "json"]));
    let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let mut refs: Vec<String> = list
        .iter()
        .map(|i| i["reference"].as_str().unwrap().to_string())
        .collect();
    refs.sort();
    refs
}

fn build(d: &Daemon, args: &[&str]) -> std::process::Output {
    let base = registry().image("latest");
    let mut all = vec!["image", "build", "--base", base.as_str()];
    all.extend_from_slice(args);
    d.cli(&all)
}

/// Runs `script` in a pod of `image` and returns its log once it has exited.
fn run_and_log(d: &Daemon, image: &str, script: &str) -> String {
    let c = d.run_pod(&["--image", image, "--entrypoint", script]);
    d.wait_status(&c.id, ContainerStatus::Exited, LONG);
    ok(&d.cli(&["container", "logs", &c.id]))
}

#[test]
fn built_image_runs_is_cached_and_a_changed_step_reuses_earlier_ones() {
    let d = Daemon::start();
    let steps = [
        "--command",
        "echo hi > /built.txt",
        "--command",
        "rm /www/index.html",
    ];
    let out = ok(&build(&d, &steps));
    assert!(out.contains("=> Building image"), "{out}");
    assert!(out.contains("=> Step 1/2: echo hi > /built.txt"), "{out}");
    let reference = built_reference(&out);
    assert!(
        reference.starts_with("localhost/cove-build/"),
        "{reference}"
    );

    // The new file is there and the deleted one is gone (an OCI whiteout in the layer).
    let log = run_and_log(
        &d,
        &reference,
        "sh -c 'cat /built.txt; test -e /www/index.html || echo index-gone; ls /www'",
    );
    assert!(log.contains("hi"), "{log}");
    assert!(log.contains("index-gone"), "{log}");
    assert!(log.contains("cgi-bin"), "the rest of /www stays: {log}");

    // The same request again: from the cache, same reference, no step runs. Timed (printed,
    // not asserted): the whole `cove image build` process, API call and cache lookup.
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let again = ok(&build(&d, &steps));
        times.push(t.elapsed());
        assert!(again.contains("=> Using cached image"), "{again}");
        assert!(!again.contains("Step "), "{again}");
        assert_eq!(built_reference(&again), reference);
    }
    times.sort();
    eprintln!(
        "cached `cove image build`, 20 runs: p50 {:?}, p90 {:?}, max {:?}",
        times[10], times[18], times[19]
    );

    // A changed second step: the first comes from the cache, the second runs.
    let changed = ok(&build(
        &d,
        &[
            "--command",
            "echo hi > /built.txt",
            "--command",
            "echo other > /other.txt",
        ],
    ));
    assert!(
        changed.contains("=> Step 1/2: echo hi > /built.txt (cached)"),
        "{changed}"
    );
    assert!(
        changed.contains("=> Step 2/2: echo other > /other.txt\n"),
        "{changed}"
    );
    let other = built_reference(&changed);
    assert_ne!(other, reference);
    let log = run_and_log(
        &d,
        &other,
        "sh -c 'cat /built.txt /other.txt; cat /www/index.html'",
    );
    assert!(log.contains("hi") && log.contains("other"), "{log}");
    assert!(
        log.contains("Hello from a Cove pod"),
        "this build keeps index.html: {log}"
    );
}

#[test]
fn step_output_streams_and_env_is_kept_in_the_image() {
    let d = Daemon::start();
    let out = ok(&build(
        &d,
        &[
            "--command",
            "echo step-says-$GREETING; mkdir -p /opt/x && ln -s /opt/x /opt/link && echo f > /opt/x/f && ln /opt/x/f /opt/x/hard",
            "--env",
            "GREETING=hello",
        ],
    ));
    assert!(out.contains("step-says-hello"), "{out}");
    let reference = built_reference(&out);
    let log = run_and_log(
        &d,
        &reference,
        "sh -c 'echo env-$GREETING; cat /opt/link/f; cat /opt/x/hard'",
    );
    assert!(log.contains("env-hello"), "{log}");
    assert_eq!(log.matches("f\n").count(), 2, "{log}");
}

#[test]
fn a_failing_step_fails_the_build_and_keeps_nothing() {
    let d = Daemon::start();
    let before = image_refs(&d);
    let o = build(
        &d,
        &[
            "--command",
            "echo made > /made.txt",
            "--command",
            "echo about-to-fail; exit 3",
        ],
    );
    let line = failed_with(&o, &["exit code 3"]);
    assert!(line.contains("step 2"), "{line}");
    assert!(
        line.contains("about-to-fail"),
        "the step's output is quoted: {line}"
    );
    // Streamed output came before the error.
    assert!(stdout(&o).contains("about-to-fail"), "{}", stdout(&o));
    // The base was pulled; nothing else is left: no image of step 1, no mount, no netns.
    let after: Vec<String> = image_refs(&d)
        .into_iter()
        .filter(|r| !before.contains(r))
        .collect();
    assert!(
        after.iter().all(|r| !r.contains("cove-build")),
        "a failed build left images: {after:?}"
    );
    assert!(d.mounts().is_empty(), "mounts left: {:?}", d.mounts());
    assert!(
        d.netns_files().is_empty(),
        "netns left: {:?}",
        d.netns_files()
    );
    let containers = std::fs::read_dir(d.data_dir.join("containers"))
        .map(|rd| rd.count())
        .unwrap_or(0);
    assert_eq!(containers, 0, "build container dirs left");
}

#[test]
fn bad_build_requests_are_refused_clearly() {
    let d = Daemon::start();
    let unknown = format!("{}/busybox:no-such-tag", registry().addr);
    let o = d.cli(&["image", "build", "--base", &unknown, "--command", "true"]);
    failed_with(&o, &["not found"]);
    let o = build(&d, &["--python-version", "3.11"]);
    let line = failed_with(&o, &["exit code 127"]);
    assert!(line.contains("python3 is not installed"), "{line}");
    let o = build(&d, &["--command", " "]);
    failed_with(&o, &["empty command"]);
    let o = d.cli(&["image", "build", "--base", "", "--command", "true"]);
    failed_with(&o, &["base_image must not be empty"]);
    assert!(image_refs(&d).iter().all(|r| !r.contains("cove-build")));
}

/// Real PyPI through this host's intercepting proxy: the daemon's `--build-ca-bundle` gives
/// build containers the host's CA bundle. pip comes from Debian's python3-pip in a first step.
#[test]
fn python_packages_install_from_pypi_with_the_host_ca_bundle() {
    let Some(d) = python_build_daemon() else {
        return;
    };
    let base = PYTHON_BASE;
    let pip = APT_PIP;
    let out = ok(&d.cli(&[
        "image",
        "build",
        "--base",
        base,
        "--python-version",
        "python3.11",
        "--command",
        pip,
        "--python-packages",
        "six==1.16.0",
    ]));
    assert!(
        out.contains("Python 3."),
        "the python check prints the version: {out}"
    );
    assert!(out.contains("Successfully installed six-1.16.0"), "{out}");
    let reference = built_reference(&out);
    let log = run_and_log(
        &d,
        &reference,
        "python3 -c 'import six; print(\"six\", six.__version__)'",
    );
    assert!(log.contains("six 1.16.0"), "{log}");

    // A package that does not exist: the pip step fails with pip's own words; the apt step
    // before it comes from the cache.
    let o = d.cli(&[
        "image",
        "build",
        "--base",
        base,
        "--python-version",
        "python3.11",
        "--command",
        pip,
        "--python-packages",
        "cove-no-such-package-4f1d==0.0.1",
    ]);
    assert!(stdout(&o).contains("(cached)"), "{}", stdout(&o));
    let line = failed_with(&o, &["exit code 1"]);
    assert!(line.contains("step 3 (pip install"), "{line}");
    assert!(
        line.to_ascii_lowercase()
            .contains("no matching distribution"),
        "{line}"
    );
}

#[test]
fn identical_builds_at_the_same_time_run_once() {
    let d = Daemon::start();
    let base = registry().image("latest");
    let args = [
        "image",
        "build",
        "--base",
        base.as_str(),
        "--command",
        "sleep 1; echo once > /once.txt",
    ];
    let outs: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..3)
            .map(|_| s.spawn(|| d.cli_command(&args).output().unwrap()))
            .collect();
        hs.into_iter().map(|h| ok(&h.join().unwrap())).collect()
    });
    let reference = built_reference(&outs[0]);
    assert!(
        outs.iter().all(|o| built_reference(o) == reference),
        "{outs:?}"
    );
    let ran = outs.iter().filter(|o| o.contains("=> Step 1/1")).count();
    let cached = outs
        .iter()
        .filter(|o| o.contains("=> Using cached image"))
        .count();
    assert_eq!((ran, cached), (1, 2), "{outs:?}");
}

#[test]
fn a_build_cut_by_a_daemon_crash_leaves_nothing_after_the_restart() {
    let mut d = Daemon::start();
    let base = registry().image("latest");
    let mut child = d
        .cli_command(&[
            "image",
            "build",
            "--base",
            &base,
            "--command",
            "echo started; sleep 60",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = line_reader(&mut child);
    wait_until("the step to start", LONG, || {
        lines
            .recv_timeout(Duration::from_millis(100))
            .ok()
            .filter(|l| l == "started")
    });
    d.kill9();
    let _ = child.wait();
    d.restart();
    let containers: Vec<String> = std::fs::read_dir(d.data_dir.join("containers"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(containers.is_empty(), "build dirs left: {containers:?}");
    assert!(d.mounts().is_empty(), "mounts left: {:?}", d.mounts());
    assert!(
        d.netns_files().is_empty(),
        "netns left: {:?}",
        d.netns_files()
    );
    assert!(image_refs(&d).iter().all(|r| !r.contains("cove-build")));
}

#[test]
fn local_paths_are_uploaded_added_and_keyed_by_content() {
    let d = Daemon::start();
    let src = scratch_dir("cove-build-context");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a.txt"), "from-a\n").unwrap();
    std::fs::write(src.join("sub/b.txt"), "from-b\n").unwrap();
    let single = src.join("single.txt");
    std::fs::write(&single, "one-file\n").unwrap();
    let dir_arg = format!("{}:/app", src.display());
    let file_arg = format!("{}:/etc/single.txt", single.display());
    let args = [
        "--add-path",
        dir_arg.as_str(),
        "--add-path",
        file_arg.as_str(),
        "--command",
        "cat /app/sub/b.txt > /copied.txt",
    ];
    let out = ok(&build(&d, &args));
    assert!(out.contains("=> Step 1/3: add sha256:"), "{out}");
    let reference = built_reference(&out);
    let log = run_and_log(
        &d,
        &reference,
        "cat /app/a.txt /copied.txt /etc/single.txt /etc/passwd",
    );
    for want in ["from-a", "from-b", "one-file", "root:"] {
        assert!(log.contains(want), "{want}: {log}");
    }
    // Same content: cached. Changed content: a new build from that step on.
    assert!(ok(&build(&d, &args)).contains("=> Using cached image"));
    std::fs::write(src.join("a.txt"), "changed\n").unwrap();
    let out = ok(&build(&d, &args));
    assert!(out.contains("=> Step 1/3: add sha256:"), "{out}");
    assert!(!out.contains("(cached)"), "new content, new keys: {out}");
    assert_ne!(built_reference(&out), reference);
    let log = run_and_log(&d, &built_reference(&out), "cat /app/a.txt");
    assert!(log.contains("changed"), "{log}");
    let _ = std::fs::remove_dir_all(&src);
}
