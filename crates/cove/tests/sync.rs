//! `cove run --sync DIR`: DIR's files are sent once per content (the daemon is asked which
//! digests it lacks), built onto the image at /app, and the pod runs there; nested
//! `.gitignore`/`.coveignore` patterns are left out; over the size cap is one clear error and
//! nothing is created; a hostile manifest or upload is a 400 that stores nothing.

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

/// How many uploads of synced files the daemon has logged (its request log line has
/// `method=POST path=/v1/images/build/files` then ` ` or `}`; manifest requests, whose paths
/// go on, are not counted).
fn uploads(d: &Daemon) -> usize {
    d.log()
        .lines()
        .filter(|l| l.contains("cove_api: request"))
        .filter_map(|l| {
            l.split_once("method=POST path=/v1/images/build/files")
                .map(|(_, r)| r)
        })
        .filter(|rest| rest.starts_with([' ', '}']))
        .count()
}

/// The file counts of the daemon's `stored synced files files=N` log lines, in order.
fn stored_counts(d: &Daemon) -> Vec<u64> {
    d.log()
        .lines()
        .filter_map(|l| l.split_once("stored synced files files=").map(|(_, r)| r))
        .map(|r| r.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

/// Synced files the daemon stores (one per content).
fn stored_files(d: &Daemon) -> usize {
    std::fs::read_dir(d.data_dir.join("images/files/sha256"))
        .map(|r| r.count())
        .unwrap_or(0)
}

#[test]
fn run_sync_sends_only_changed_files_and_runs_in_the_dir() {
    let d = Daemon::start();
    let dir = scratch_dir("cove-sync");
    let w = |p: &str, content: &str| {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    };
    w("hello.txt", "hello from cove run --sync\n");
    for i in 0..20 {
        w(&format!("src/mod{i}.py"), &format!("value = {i}\n"));
    }
    w("secret.txt", "must not be synced\n");
    w("cache/x", "ignored dir\n");
    w(".git/HEAD", "always skipped\n");
    w(".coveignore", "secret.txt\ncache/\n**/gen/*.out\n");
    // A nested ignore file applies under its own directory only.
    w("src/.gitignore", "/local.cfg\n");
    w("src/local.cfg", "ignored under src\n");
    w("local.cfg", "kept at the top\n");
    w("src/a/gen/x.out", "ignored by **\n");
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

    // 1 + 20 + .coveignore + src/.gitignore + local.cfg = 24 files, all new.
    let out = run("cat /app/hello.txt");
    assert!(out.starts_with("=> Syncing files\n"), "{out}");
    assert!(out.contains("=> Synced 24 files (24 uploaded, "), "{out}");
    assert!(out.contains("=> Building image"), "{out}");
    let log = logs_of(&d, &out);
    assert!(log.contains("hello from cove run --sync"), "{log}");
    assert_eq!((uploads(&d), stored_counts(&d)), (1, vec![24]));

    // Unchanged files: nothing is sent, the same context, the cached build. Ignored entries
    // are absent; the pod's working directory is /app.
    let out = run("sh -c 'pwd; ls -a; test -e secret.txt || echo no-secret; test -e cache || echo no-cache; test -e .git || echo no-git; test -e src/local.cfg || echo no-src-cfg; test -e src/a/gen/x.out || echo no-gen; cat local.cfg src/mod7.py'");
    assert!(
        out.contains("=> Synced 24 files (0 uploaded, 0 bytes)"),
        "{out}"
    );
    assert!(
        out.contains("=> Using cached image"),
        "unchanged files, same build: {out}"
    );
    assert!(
        !out.contains("=> Step"),
        "unchanged files, no step runs: {out}"
    );
    assert_eq!(uploads(&d), 1, "unchanged files were sent again");
    let log = logs_of(&d, &out);
    for want in [
        "/app",
        "hello.txt",
        ".coveignore",
        "no-secret",
        "no-cache",
        "no-git",
        "no-src-cfg",
        "no-gen",
        "kept at the top",
        "value = 7",
    ] {
        assert!(log.contains(want), "{want}: {log}");
    }

    // One file of many changed: only it is sent; a new context and build; the pod sees it.
    w("src/mod3.py", "value = 'changed'\n");
    let out = run("cat /app/src/mod3.py /app/src/mod4.py");
    assert!(
        out.contains("=> Synced 24 files (1 uploaded, 18 bytes)"),
        "{out}"
    );
    assert!(
        out.contains("=> Step 1/1: add sha256:"),
        "a new build: {out}"
    );
    let log = logs_of(&d, &out);
    assert!(
        log.contains("value = 'changed'") && log.contains("value = 4"),
        "{log}"
    );
    assert_eq!((uploads(&d), stored_counts(&d)), (2, vec![24, 1]));
    assert_eq!(stored_files(&d), 25);
}

/// `POST path` to the API with a raw body; returns (status, body).
fn api_post(d: &Daemon, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", d.api_port)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        d.token,
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
    (status, body.unwrap_or_default())
}

#[test]
fn hostile_manifests_and_lying_uploads_are_refused_and_store_nothing() {
    let d = Daemon::start();
    let digest = |c: &str| {
        // sha256 of "a" and of "b", computed once by sha256sum.
        match c {
            "a" => "sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb",
            _ => "sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d",
        }
    };
    let file = |path: &str| {
        format!(
            r#"{{"path":"{path}","kind":"file","mode":420,"size":1,"digest":"{}"}}"#,
            digest("a")
        )
    };
    for (entries, why) in [
        (file("/etc/passwd"), "is absolute"),
        (file("../escape"), "'..' component"),
        (format!("{},{}", file("a"), file("a")), "listed twice"),
        (file("nodir/a"), "before (or without) its parent"),
        (
            r#"{"path":"x","kind":"file","mode":420,"size":1,"digest":"sha256:nothex"}"#.into(),
            "not sha256:",
        ),
    ] {
        let body = format!(r#"{{"entries":[{entries}]}}"#);
        for route in ["missing", "context"] {
            let (status, answer) = api_post(
                &d,
                &format!("/v1/images/build/files/{route}"),
                "application/json",
                body.as_bytes(),
            );
            assert_eq!(status, 400, "{route} {body}: {answer}");
            assert!(answer.contains(why) && !answer.contains('\n'), "{answer}");
        }
    }

    // An upload whose second entry lies about its content: refused whole.
    let up = scratch_dir("cove-sync-upload");
    std::fs::write(up.join(digest("a")), "a").unwrap();
    std::fs::write(up.join(digest("b")), "not b").unwrap();
    let tar = std::process::Command::new("tar")
        .args(["--format=gnu", "--owner=0", "--group=0", "-cf", "-", "-C"])
        .arg(&*up)
        .args([digest("a"), digest("b")])
        .output()
        .unwrap();
    assert!(tar.status.success(), "{}", stderr(&tar));
    let (status, answer) = api_post(
        &d,
        "/v1/images/build/files",
        "application/x-tar",
        &tar.stdout,
    );
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("has content with digest"), "{answer}");
    assert_eq!(stored_files(&d), 0, "a refused upload stored a file");

    // A manifest naming a file that was never uploaded is no context.
    let (status, answer) = api_post(
        &d,
        "/v1/images/build/files/context",
        "application/json",
        format!(r#"{{"entries":[{}]}}"#, file("a")).as_bytes(),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("not uploaded"), "{answer}");
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
    assert_eq!((uploads(&d), stored_files(&d)), (0, 0));
}

#[test]
fn run_sync_of_an_unreadable_file_is_one_error_and_sends_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let d = Daemon::start();
    let dir = scratch_dir("cove-sync-unreadable");
    std::fs::set_permissions(&*dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("ok.txt"), "fine\n").unwrap();
    let locked = dir.join("locked.txt");
    std::fs::write(&locked, "secret\n").unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let image = registry().image("latest");
    let before = d.list(true).len();
    // root reads anything: the CLI runs as nobody, for whom the file is unreadable.
    let o = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", COVE])
        .args([
            "run",
            "--sync",
            &dir.display().to_string(),
            "--image",
            &image,
        ])
        .args(["--entrypoint", "true"])
        .env("COVE_API_URL", format!("http://127.0.0.1:{}", d.api_port))
        .env("COVE_TOKEN", &d.token)
        .env_remove("COVE_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let line = failed_with(&o, &["Permission denied"]);
    assert!(
        line.contains(&format!("cannot sync {}", locked.display())),
        "{line}"
    );
    assert_eq!(d.list(true).len(), before);
    assert_eq!((uploads(&d), stored_files(&d)), (0, 0));
}
