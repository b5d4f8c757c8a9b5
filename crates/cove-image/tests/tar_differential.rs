//! Cove's unpacker against GNU tar: the same archive extracted by
//! `tar -xpf --xattrs --xattrs-include='*' --numeric-owner` (as root) and by Cove
//! must give the same tree (type, mode with setuid, owner, size, content, link
//! target, hard links, xattrs, file mtimes); devices are skipped by Cove by design.
//!
//! The corpus is made here: a source tree with every kind of file archived by GNU
//! tar itself in each format (gnu, posix with each sparse version, ustar, v7), the
//! hand-made odd archives of tartree::cases, and seeded random mutations of all of
//! them (`COVE_TAR_SEED=<n>` replays one run; the seed is printed on failure).
//! Needs root and GNU tar (`tar` in scripts/install-deps.sh).

mod tartree;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

use cove_image::{unpack_layer_tar, ImageError};
use tartree::cases;
use tartree::snapshot::{differences, snapshot};

/// Extracts `archive` with GNU tar into `dest`; the error is tar's stderr.
fn gnu_extract(archive: &Path, dest: &Path) -> Result<(), String> {
    let out = Command::new("tar")
        .args(["-xpf"])
        .arg(archive)
        .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-C"])
        .arg(dest)
        .output()
        .expect("running GNU tar (is it installed?)");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// What happened when both extracted one archive.
enum Outcome {
    Same,
    Differ(Vec<String>),
    /// GNU tar refused it (so it is not a valid archive).
    GnuRefused(String),
    /// Cove refused what GNU tar took.
    CoveRefused(ImageError),
}

fn both(data: &[u8]) -> Outcome {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("a.tar");
    std::fs::write(&archive, data).unwrap();
    let (gnu, cove) = (tmp.path().join("gnu"), tmp.path().join("cove"));
    std::fs::create_dir(&gnu).unwrap();
    std::fs::create_dir(&cove).unwrap();
    if let Err(e) = gnu_extract(&archive, &gnu) {
        return Outcome::GnuRefused(e);
    }
    if let Err(e) = unpack_layer_tar(data, &cove) {
        return Outcome::CoveRefused(e);
    }
    let diffs = differences(&snapshot(&gnu), &snapshot(&cove));
    if diffs.is_empty() {
        Outcome::Same
    } else {
        Outcome::Differ(diffs)
    }
}

fn assert_same(name: &str, data: &[u8]) {
    match both(data) {
        Outcome::Same => {}
        Outcome::Differ(d) => panic!(
            "{name}: Cove's tree differs from GNU tar's:\n{}",
            d.join("\n")
        ),
        Outcome::GnuRefused(e) => panic!("{name}: GNU tar refused the archive: {e}"),
        Outcome::CoveRefused(e) => panic!("{name}: Cove refused what GNU tar took: {e}"),
    }
}

#[test]
fn odd_archives_unpack_as_gnu_tar_unpacks_them() {
    for (name, data) in cases::all() {
        assert_same(name, &data);
    }
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn setxattr(p: &Path, name: &str, value: &[u8]) {
    let n = CString::new(name).unwrap();
    // SAFETY: NUL-terminated strings and a live buffer.
    let rc = unsafe {
        libc::setxattr(
            cstr(p).as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        rc,
        0,
        "setxattr {name} on {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

fn set_time(p: &Path, secs: i64, nanos: i64) {
    let t = nix::sys::time::TimeSpec::new(secs, nanos);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        p,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
}

/// A source tree with every kind of member; `full` adds what only the gnu and
/// posix formats hold (long names, sparse files, xattrs, big ids).
fn make_tree(root: &Path, full: bool) {
    use std::os::unix::fs::{chown, lchown, symlink, PermissionsExt};
    let w = |p: &str, data: &[u8], mode: u32| {
        let path = root.join(p);
        std::fs::write(&path, data).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    std::fs::create_dir_all(root.join("etc/conf.d")).unwrap();
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::create_dir(root.join("private")).unwrap();
    std::fs::set_permissions(root.join("private"), std::fs::Permissions::from_mode(0o700)).unwrap();
    w("etc/hosts", b"127.0.0.1 localhost\n", 0o644);
    w("etc/empty", b"", 0o600);
    w("etc/conf.d/big", &cases::bytes(300_000, 9), 0o640);
    w("usr/bin/suid", b"#!/bin/true\n", 0o4755);
    w("usr/bin/sgid", b"#!/bin/true\n", 0o2711);
    w("private/sticky", b"x", 0o1777);
    chown(root.join("etc/hosts"), Some(1000), Some(1001)).unwrap();
    chown(root.join("private"), Some(33), Some(33)).unwrap();
    std::fs::hard_link(root.join("etc/hosts"), root.join("usr/hosts-link")).unwrap();
    symlink("../etc/hosts", root.join("usr/rel-link")).unwrap();
    symlink("/etc/passwd", root.join("usr/abs-link")).unwrap();
    symlink("dangling", root.join("usr/dangling-link")).unwrap();
    lchown(root.join("usr/rel-link"), Some(7), Some(8)).unwrap();
    nix::unistd::mkfifo(
        &root.join("usr/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o666),
    )
    .unwrap();
    std::fs::set_permissions(
        root.join("usr/fifo"),
        std::fs::Permissions::from_mode(0o4662),
    )
    .unwrap();
    nix::sys::stat::mknod(
        &root.join("usr/null"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    w("usr/caf\u{e9} \u{1f600}", b"unicode", 0o644);
    if full {
        let deep = format!("{}/{}", "d".repeat(120), "e".repeat(120));
        std::fs::create_dir_all(root.join(&deep)).unwrap();
        w(&format!("{deep}/{}", "f".repeat(200)), b"long", 0o644);
        symlink("t".repeat(300), root.join("usr/long-target")).unwrap();
        std::fs::hard_link(
            root.join(format!("{deep}/{}", "f".repeat(200))),
            root.join("usr/link-to-long"),
        )
        .unwrap();
        let sparse = std::fs::File::create(root.join("usr/sparse")).unwrap();
        sparse.set_len(50 << 20).unwrap();
        use std::os::unix::fs::FileExt;
        sparse
            .write_all_at(&cases::bytes(5000, 1), 1 << 20)
            .unwrap();
        sparse
            .write_all_at(&cases::bytes(100, 2), (50 << 20) - 100)
            .unwrap();
        w("usr/bin/ping", b"#!/bin/true\n", 0o755);
        setxattr(
            &root.join("usr/bin/ping"),
            "security.capability",
            &cases::cap_net_raw(),
        );
        setxattr(&root.join("etc/hosts"), "user.comment", b"with\nnewline");
        setxattr(&root.join("etc/conf.d"), "user.dir", b"1");
        w("usr/big-ids", b"ids", 0o644);
        chown(root.join("usr/big-ids"), Some(3_000_000), Some(2_097_152)).unwrap();
    }
    for (i, p) in [
        "etc/hosts",
        "etc/empty",
        "usr/bin/suid",
        "usr/caf\u{e9} \u{1f600}",
    ]
    .iter()
    .enumerate()
    {
        set_time(
            &root.join(p),
            1_500_000_000 + i as i64,
            123_456_789 * i as i64 % 1_000_000_000,
        );
    }
}

/// Archives GNU tar makes of a fresh source tree in each format: (name, bytes).
fn gnu_archives() -> Vec<(String, Vec<u8>)> {
    let tmp = tempfile::tempdir().unwrap();
    let (full, short) = (tmp.path().join("full"), tmp.path().join("short"));
    std::fs::create_dir(&full).unwrap();
    std::fs::create_dir(&short).unwrap();
    make_tree(&full, true);
    make_tree(&short, false);
    let mut out = Vec::new();
    let runs: &[(&str, &Path, &[&str])] = &[
        ("gnu", &full, &["--format=gnu"]),
        ("gnu-sparse", &full, &["--format=gnu", "--sparse"]),
        (
            "posix",
            &full,
            &["--format=posix", "--xattrs", "--xattrs-include=*"],
        ),
        (
            "posix-sparse-0.0",
            &full,
            &["--format=posix", "--sparse", "--sparse-version=0.0"],
        ),
        (
            "posix-sparse-0.1",
            &full,
            &["--format=posix", "--sparse", "--sparse-version=0.1"],
        ),
        (
            "posix-sparse-1.0",
            &full,
            &[
                "--format=posix",
                "--sparse",
                "--sparse-version=1.0",
                "--xattrs",
                "--xattrs-include=*",
            ],
        ),
        ("ustar", &short, &["--format=ustar"]),
        ("oldgnu", &short, &["--format=oldgnu"]),
    ];
    for (name, src, args) in runs {
        let archive = tmp.path().join(format!("{name}.tar"));
        let o = Command::new("tar")
            .args(*args)
            .arg("-cf")
            .arg(&archive)
            .arg("-C")
            .arg(src)
            .arg(".")
            .output()
            .expect("running GNU tar");
        assert!(
            o.status.success(),
            "tar {name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        out.push((name.to_string(), std::fs::read(&archive).unwrap()));
    }
    // v7 holds neither FIFOs nor devices: GNU tar warns and leaves them out.
    let archive = tmp.path().join("v7.tar");
    let o = Command::new("tar")
        .args(["--format=v7", "-cf"])
        .arg(&archive)
        .arg("-C")
        .arg(&short)
        .arg(".")
        .output()
        .expect("running GNU tar");
    assert!(
        o.status.code().unwrap_or(9) <= 2,
        "tar v7: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out.push(("v7".to_string(), std::fs::read(&archive).unwrap()));
    out
}

#[test]
fn gnu_tar_archives_of_every_format_unpack_the_same() {
    for (name, data) in gnu_archives() {
        assert_same(&name, &data);
    }
}

/// Offsets of the blocks that pass as headers (valid checksum).
fn header_blocks(data: &[u8]) -> Vec<usize> {
    (0..data.len() / 512)
        .map(|i| i * 512)
        .filter(|&o| {
            let b = &data[o..o + 512];
            b.iter().any(|&x| x != 0)
                && tar::Header::from_byte_slice(b).cksum().ok() == Some(sum(b))
        })
        .collect()
}

fn sum(b: &[u8]) -> u32 {
    b.iter()
        .enumerate()
        .map(|(i, &x)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(x)
            }
        })
        .sum()
}

fn fix_cksum(b: &mut [u8]) {
    let s = sum(b);
    b[148..156].copy_from_slice(format!("{s:06o}\0 ").as_bytes());
}

/// One random change to a header field (checksum fixed up), or to the stream.
fn mutate(rng: &mut fastrand::Rng, data: &mut Vec<u8>) -> String {
    let heads = header_blocks(data);
    if heads.is_empty() {
        return "no headers".into();
    }
    let h = heads[rng.usize(..heads.len())];
    let what = rng.u8(..7);
    let desc = match what {
        0 => {
            let t = *rng.choice(b"0125678LKxgXSDV\0".iter()).unwrap();
            data[h + 156] = t;
            format!("typeflag {:?} at {h}", t as char)
        }
        1 => {
            let size = *rng.choice(&[0u64, 1, 511, 512, 513, 1024, 4096]).unwrap();
            data[h + 124..h + 136].copy_from_slice(format!("{size:011o}\0").as_bytes());
            format!("size {size} at {h}")
        }
        2 => {
            let i = h + rng.usize(..100);
            data[i] = *rng.choice(b"/.a\0x".iter()).unwrap();
            format!("name byte {i}")
        }
        3 => {
            let mode = rng.u32(..0o10000);
            data[h + 100..h + 108].copy_from_slice(format!("{mode:07o}\0").as_bytes());
            format!("mode {mode:o} at {h}")
        }
        5 => {
            let field = *rng.choice(&[100usize, 108, 116, 136]).unwrap();
            data[h + field..h + field + 8].fill(0);
            format!("empty numeric field {field} at {h}")
        }
        4 => {
            let i = h + rng.usize(..512);
            data[i] = rng.u8(..);
            format!("byte {i}")
        }
        _ => {
            let other = heads[rng.usize(..heads.len())];
            let block: Vec<u8> = data[other..other + 512].to_vec();
            data.splice(h..h, block);
            return format!("copied header {other} before {h}");
        }
    };
    fix_cksum(&mut data[h..h + 512]);
    desc
}

#[test]
fn mutated_archives_unpack_as_gnu_tar_unpacks_them_or_are_refused() {
    let seed: u64 = std::env::var("COVE_TAR_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let rounds: usize = std::env::var("COVE_TAR_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut corpus: Vec<(String, Vec<u8>)> = cases::all()
        .into_iter()
        .map(|(n, d)| (n.to_string(), d))
        .collect();
    corpus.extend(gnu_archives());
    let (mut same, mut gnu_refused, mut unsafe_refused) = (0, 0, 0);
    for round in 0..rounds {
        let (name, data) = &corpus[rng.usize(..corpus.len())];
        let mut data = data.clone();
        let mut how = Vec::new();
        for _ in 0..rng.usize(1..=3) {
            how.push(mutate(&mut rng, &mut data));
        }
        match both(&data) {
            Outcome::Same => same += 1,
            Outcome::GnuRefused(_) => gnu_refused += 1,
            // What GNU tar reads one way and Go or Python another, or what
            // escapes the layer (GNU tar strips or skips it with a warning).
            Outcome::CoveRefused(ImageError::Unsafe(e)) => {
                unsafe_refused += 1;
                if std::env::var_os("COVE_TAR_VERBOSE").is_some() {
                    eprintln!("round {round}: {name} with {how:?}: refused as unsafe: {e}");
                }
            }
            Outcome::CoveRefused(e) => panic!(
                "seed {seed} round {round}: {name} with {how:?}: GNU tar took it, Cove refused: {e}"
            ),
            Outcome::Differ(d) => panic!(
                "seed {seed} round {round}: {name} with {how:?}: trees differ:\n{}",
                d.join("\n")
            ),
        }
    }
    eprintln!(
        "seed {seed}: {same} mutants unpacked the same, GNU tar refused {gnu_refused}, \
         Cove refused {unsafe_refused} more as unsafe"
    );
    assert!(
        same > rounds / 4,
        "seed {seed}: too few mutants were valid ({same})"
    );
}
