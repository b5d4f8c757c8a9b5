//! Valid archives other tools accept and Cove once got wrong, one test per case of
//! the issue, checked on the unpacked tree; and the hostile ones refused with a
//! one-line error naming the entry. (tar_differential.rs compares the same
//! archives against GNU tar.)

mod tartree;

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use cove_image::unpack_layer_tar;
use tartree::build::*;
use tartree::cases::{self, bytes, cap_net_raw};
use tartree::snapshot::xattrs;

/// Unpacks case `name` into a fresh dir.
fn unpack_case(name: &str) -> tempfile::TempDir {
    let (_, tar) = cases::all()
        .into_iter()
        .find(|(n, _)| *n == name)
        .expect("case");
    let dir = tempfile::tempdir().unwrap();
    unpack_layer_tar(&tar[..], dir.path()).unwrap_or_else(|e| panic!("{name}: {e}"));
    dir
}

fn content(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

/// The expected content of a sparse file: zeros with `runs` at their offsets.
fn sparse_content(size: usize, runs: &[(usize, Vec<u8>)]) -> Vec<u8> {
    let mut v = vec![0u8; size];
    for (off, d) in runs {
        v[*off..off + d.len()].copy_from_slice(d);
    }
    v
}

#[test]
fn gnu_sparse_member_is_written_with_holes() {
    let d = unpack_case("gnu_sparse");
    let p = d.path().join("sparse");
    let want = sparse_content(
        (1 << 20) + 100,
        &[
            (0, bytes(512, 1)),
            (8192, bytes(1024, 2)),
            (1 << 20, bytes(100, 3)),
        ],
    );
    assert!(content(&p) == want, "sparse content differs");
    let md = std::fs::metadata(&p).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o640);
    assert!(
        md.blocks() * 512 < 512 * 1024,
        "holes were written as data: {} blocks",
        md.blocks()
    );
    let d = unpack_case("gnu_sparse_extended");
    let runs: Vec<(usize, Vec<u8>)> = (0..30).map(|i| (i * 8192, bytes(512, i as u8))).collect();
    assert!(content(&d.path().join("many")) == sparse_content(29 * 8192 + 512, &runs));
}

#[test]
fn pax_sparse_formats_get_their_real_name_and_content() {
    let want = sparse_content(200000, &[(4096, bytes(512, 4)), (150000, bytes(700, 5))]);
    for (case, name) in [
        ("pax_sparse_0_0", "s00"),
        ("pax_sparse_0_1", "s01"),
        ("pax_sparse_1_0", "s10"),
    ] {
        let d = unpack_case(case);
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![name], "{case}");
        assert!(
            content(&d.path().join(name)) == want,
            "{case}: content differs"
        );
    }
}

#[test]
fn xattrs_and_file_capabilities_are_applied() {
    let d = unpack_case("xattrs");
    let ping = d.path().join("bin/ping");
    let x = xattrs(&ping);
    assert_eq!(
        x.get("user.test").map(Vec::as_slice),
        Some(&b"hello\0world"[..])
    );
    assert_eq!(x.get("security.capability"), Some(&cap_net_raw()));
    // The capability survived chown, and setuid survived too.
    assert_eq!(std::fs::metadata(&ping).unwrap().mode() & 0o7777, 0o4755);
    assert_eq!(
        xattrs(&d.path().join("bin"))
            .get("user.dirattr")
            .map(Vec::as_slice),
        Some(&b"d"[..])
    );
}

#[test]
fn overlay_xattrs_are_not_taken_from_a_layer() {
    let tar = tar(&[
        pax(b'x', &[("SCHILY.xattr.trusted.overlay.opaque", b"y")]),
        dir("d"),
    ]);
    let d = tempfile::tempdir().unwrap();
    unpack_layer_tar(&tar[..], d.path()).unwrap();
    assert_eq!(
        xattrs(&d.path().join("d")).get("trusted.overlay.opaque"),
        None
    );
}

#[test]
fn header_only_members_carry_no_data_whatever_their_size() {
    let d = unpack_case("header_only_with_size");
    for name in ["d", "sym", "hard", "fifo"] {
        let after = d.path().join(format!("after_{name}"));
        assert_eq!(content(&after), b"read as a header", "{name}");
        assert!(d.path().join(format!("next_{name}")).exists(), "{name}");
    }
    let md = |n: &str| std::fs::symlink_metadata(d.path().join(n)).unwrap();
    assert!(md("d").is_dir());
    assert!(md("sym").file_type().is_symlink());
    assert_eq!(md("hard").ino(), md("base").ino());
    assert!(md("fifo").file_type().is_fifo());
    assert!(!d.path().join("chr").exists(), "devices stay skipped");
}

#[test]
fn global_solaris_signed_and_duplicate_headers_are_accepted() {
    let d = unpack_case("global_pax");
    assert_eq!(content(&d.path().join("g1")), b"one");
    assert_eq!(content(&d.path().join("g2")), b"two");
    let d = unpack_case("solaris_x");
    assert_eq!(content(&d.path().join("solaris/long/name")), b"x");
    let d = unpack_case("signed_checksum");
    assert_eq!(content(&d.path().join("caf\u{e9}-\u{fc}")), b"abc");
    let d = unpack_case("duplicate_long_name");
    assert_eq!(content(&d.path().join("second-name")), b"x");
    assert!(!d.path().join("first-name").exists());
    let d = unpack_case("duplicate_pax");
    let p = d.path().join("pax-second");
    assert_eq!(content(&p), b"x");
    assert_eq!(std::fs::metadata(&p).unwrap().uid(), UID as u32);
}

#[test]
fn old_v7_directories_and_fifo_modes_are_kept() {
    let d = unpack_case("v7_directory");
    let md = std::fs::symlink_metadata(d.path().join("olddir")).unwrap();
    assert!(md.is_dir());
    assert_eq!(md.mode() & 0o7777, 0o750);
    assert!(std::fs::symlink_metadata(d.path().join("olddir2"))
        .unwrap()
        .is_dir());
    assert_eq!(content(&d.path().join("olddir/f")), b"in old dir");
    let d = unpack_case("fifo_modes");
    for (n, mode) in [("fifo1", 0o666), ("fifo2", 0o4670)] {
        let md = std::fs::symlink_metadata(d.path().join(n)).unwrap();
        assert!(md.file_type().is_fifo());
        assert_eq!(md.mode() & 0o7777, mode, "{n}");
        assert_eq!((md.uid(), md.gid()), (UID as u32, GID as u32));
    }
}

#[test]
fn long_name_is_cut_at_nul_and_pax_times_and_ids_apply() {
    let d = unpack_case("long_name_with_nul");
    assert_eq!(content(&d.path().join("before-nul")), b"x");
    let d = unpack_case("empty_numeric_fields");
    let md = std::fs::metadata(d.path().join("empty-fields")).unwrap();
    assert_eq!(
        (md.mode() & 0o7777, md.uid(), md.gid(), md.mtime()),
        (0, 0, 0, 0)
    );
    let d = unpack_case("pax_mtime_and_ids");
    let md = std::fs::metadata(d.path().join("nanos")).unwrap();
    assert_eq!((md.mtime(), md.mtime_nsec()), (1_600_000_000, 123_456_789));
    assert_eq!((md.uid(), md.gid()), (3_000_000, 4_000_000));
}

/// The error of a refused archive: one line, short, naming the entry, never `dir`.
fn refused(tar: impl Read, entry: &str) -> String {
    let d = tempfile::tempdir().unwrap();
    let e = unpack_layer_tar(tar, d.path()).expect_err("must be refused");
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "{msg}");
    assert!(msg.len() < 400, "{} bytes: {}", msg.len(), &msg[..400]);
    assert!(msg.contains(entry), "{msg:?} does not name {entry:?}");
    let dir = d.path().to_string_lossy().into_owned();
    assert!(!msg.contains(&dir), "{msg:?} names the temp dir");
    msg
}

#[test]
fn huge_extended_headers_are_refused_without_reading_them() {
    // 64 MiB of PAX path: streamed, never held in memory (Go caps at 1 MiB too).
    let size: u64 = 64 << 20;
    let h = header(b"././@PaxHeader", b'x', size, 0o644, b"");
    let body = std::io::repeat(b'a').take(size);
    let tar = h.as_bytes().chain(body).chain(&[0u8; 1024][..]);
    let msg = refused(tar, "1 MiB limit");
    assert!(
        !msg.contains("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        "{msg}"
    );
    let long = vec![b'n'; (1 << 20) + 1];
    let tar2 = tar_bytes(&[gnu_long(b'L', &long), file("x", b"")]);
    refused(&tar2[..], "1 MiB limit");
}

fn tar_bytes(m: &[Vec<u8>]) -> Vec<u8> {
    tar(m)
}

#[test]
fn errors_name_the_entry_escaped_and_truncated() {
    // A 600 KiB name of newlines and quotes: refused (too long for the file
    // system), shown truncated and escaped on one line.
    let mut long = b"dir/".to_vec();
    long.extend(std::iter::repeat_n(b"\n\"x", 200_000).flatten());
    let t = tar(&[pax(b'x', &[("path", &long)]), file("x", b"")]);
    let msg = refused(&t[..], "dir/\\n\\\"x");
    assert!(msg.contains("..."), "{msg}");
    // A hard link to nothing names the link and its target.
    let t = tar(&[member(b"the-link", b'1', b"", 0o644, b"no-such-target")]);
    let msg = refused(&t[..], "the-link");
    assert!(msg.contains("no-such-target"), "{msg}");
    // A corrupt header says where it is.
    let mut bad = file("f", b"x");
    bad[0] = b'g';
    let msg = refused(&tar(&[bad])[..], "checksum");
    assert!(msg.contains("byte 0"), "{msg}");
    // Truncated data names the entry.
    let mut t = file("cut-short", &[7u8; 4000]);
    t.truncate(1024);
    refused(&t[..], "cut-short");
    // A sparse map past the file's end names the entry.
    let t = tar(&[gnu_sparse("bad-sparse", 10, &[(8, vec![1u8; 5])])]);
    refused(&t[..], "bad-sparse");
    // A sparse map ending before the size: GNU tar and Go disagree on the size.
    let t = tar(&[gnu_sparse("short-map", 5000, &[(0, vec![1u8; 512])])]);
    refused(&t[..], "short-map");
    // A partial run before the last: GNU tar and Go disagree on the content.
    let t = tar(&[gnu_sparse(
        "partial-run",
        2000,
        &[(0, vec![1u8; 100]), (1000, vec![2u8; 1000])],
    )]);
    refused(&t[..], "partial-run");
}

#[test]
fn failed_imports_report_errors_not_success() {
    // An unknown PAX sparse version is refused, not written raw under GNUSparseFile.0/.
    let t = tar(&[
        pax(
            b'x',
            &[
                ("GNU.sparse.major", b"2"),
                ("GNU.sparse.minor", b"0"),
                ("GNU.sparse.name", b"weird"),
                ("GNU.sparse.realsize", b"10"),
            ],
        ),
        member(b"GNUSparseFile.0/weird", b'0', b"x", 0o644, b""),
    ]);
    refused(&t[..], "weird");
}

#[test]
fn global_records_that_would_change_members_are_refused() {
    // GNU tar would put every later member at "elsewhere"; Docker ignores it.
    let t = tar(&[pax(b'g', &[("path", b"elsewhere")]), file("f", b"x")]);
    let d = tempfile::tempdir().unwrap();
    match unpack_layer_tar(&t[..], d.path()) {
        Err(cove_image::ImageError::Unsafe(m)) => {
            assert!(m.contains("global PAX record \"path\""), "{m}")
        }
        other => panic!("expected Unsafe, got {other:?}"),
    }
}

#[test]
fn unreadable_pax_values_are_refused_as_unsafe() {
    // Found by the unpack_differential fuzz target: GNU tar warns and ignores
    // the value, Go refuses the archive.
    for (key, value) in [
        ("mtime", &b"12.5\n30 atime=1"[..]),
        ("uid", b"x"),
        ("size", b"-1"),
    ] {
        let t = tar(&[pax(b'x', &[(key, value)]), file("f", b"x")]);
        let d = tempfile::tempdir().unwrap();
        match unpack_layer_tar(&t[..], d.path()) {
            Err(cove_image::ImageError::Unsafe(m)) => assert!(m.contains(key), "{m}"),
            other => panic!("{key}: expected Unsafe, got {other:?}"),
        }
    }
}

#[test]
fn a_partial_block_after_the_last_member_ends_the_archive() {
    // Found by the unpack_differential fuzz target: GNU tar and Python stop there.
    let mut t = file("f", b"data");
    t.extend_from_slice(&[7u8; 100]);
    let d = tempfile::tempdir().unwrap();
    unpack_layer_tar(&t[..], d.path()).unwrap();
    assert_eq!(content(&d.path().join("f")), b"data");
}
