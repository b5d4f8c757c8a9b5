//! `cove run --sync DIR`: DIR is uploaded (once per content, by digest), built onto the image
//! at /app, and the pod runs there; `.coveignore` patterns are left out; over the size cap is
//! one clear error and nothing is created.

mod common;

use std::time::Duration;

use common::*;

const LONG: Duration = Duration::from_secs(60);

/// The id in `=> Container created successfully ===> <id>`.
#[track_caller]
fn created_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("=> Container created successfully ===> "))
        .unwrap_or_else(|| panic!("no created line in:\n{out}"))
        .trim()
        .to_string()
}

fn logs_of(d: &Daemon, out: &str) -> String {
    let id = created_id(out);
    d.wait_status(&id, ContainerStatus::Exited, LONG);
    ok(&d.cli(&["container", "logs", &id]))
}

/// How many uploads of a build context the daemon has logged (its request log has
/// `method=POST path=/v1/images/build/context}` per upload; HEAD checks are not counted).
fn uploads(d: &Daemon) -> usize {
    d.log()
        .matches("method=POST path=/v1/images/build/context}")
        .count()
}

#[test]
fn run_sync_uploads_the_dir_and_runs_in_it() {
    let d = Daemon::start();
    let dir = scratch_dir("cove-sync");
    std::fs::write(dir.join("hello.txt"), "hello from cove run --sync\n").unwrap();
    std::fs::write(dir.join("secret.txt"), "must not be synced\n").unwrap();
    std::fs::create_dir_all(dir.join("cache")).unwrap();
    std::fs::write(dir.join("cache/x"), "ignored dir\n").unwrap();
    std::fs::create_dir_all(dir.join(".git")).unwrap();
    std::fs::write(dir.join(".git/HEAD"), "always skipped\n").unwrap();
    std::fs::write(dir.join(".coveignore"), "secret.txt\ncache/\n").unwrap();
    let image = registry().image("latest");
    let dir_arg = dir.display().to_string();
    let run = |entrypoint: &str| {
        ok(&d.cli(&[
            "run",
            "--sync",
            dir_arg.as_str(),
            "--image",
            image.as_str(),
            "--entrypoint",
            entrypoint,
        ]))
    };

    let out = run("cat /app/hello.txt");
    assert!(out.starts_with("=> Syncing files\n"), "{out}");
    assert!(out.contains("=> Building image"), "{out}");
    let log = logs_of(&d, &out);
    assert!(log.contains("hello from cove run --sync"), "{log}");
    assert_eq!(uploads(&d), 1);

    // Ignored entries are absent; the pod's working directory is /app.
    let out = run("sh -c 'pwd; ls -a; test -e secret.txt || echo no-secret; test -e cache || echo no-cache; test -e .git || echo no-git'");
    assert!(
        out.contains("=> Using cached image"),
        "unchanged files, same build: {out}"
    );
    assert!(
        !out.contains("=> Step"),
        "unchanged files, no step runs: {out}"
    );
    let log = logs_of(&d, &out);
    for want in [
        "/app",
        "hello.txt",
        ".coveignore",
        "no-secret",
        "no-cache",
        "no-git",
    ] {
        assert!(log.contains(want), "{want}: {log}");
    }

    // Changed content: a new digest and a new build.
    std::fs::write(dir.join("hello.txt"), "changed content\n").unwrap();
    let out = run("cat /app/hello.txt");
    assert!(
        out.contains("=> Step 1/1: add sha256:"),
        "a new build: {out}"
    );
    assert!(logs_of(&d, &out).contains("changed content"));
    assert_eq!(uploads(&d), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_sync_over_the_cap_is_one_error_and_creates_nothing() {
    let d = Daemon::start();
    let dir = scratch_dir("cove-sync-big");
    std::fs::write(dir.join("big.bin"), vec![b'x'; 4096]).unwrap();
    let image = registry().image("latest");
    let before = d.list(true).len();
    let o = d
        .cli_command(&[
            "run",
            "--sync",
            &dir.display().to_string(),
            "--image",
            &image,
            "--entrypoint",
            "true",
        ])
        .env("COVE_SYNC_MAX_BYTES", "1000")
        .output()
        .unwrap();
    let line = failed_with(&o, &["over the cap"]);
    assert!(
        line.contains("4096 bytes") && line.contains("1000 bytes"),
        "{line}"
    );
    assert_eq!(d.list(true).len(), before);
    let _ = std::fs::remove_dir_all(&dir);
}
