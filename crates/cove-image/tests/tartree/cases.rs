//! Valid archives with the odd headers the tar test corpora have, one per case
//! of the issue. GNU tar, Go and Python agree on each; so must Cove.

use super::build::*;

/// A capability set with `cap_net_raw` permitted and effective (VFS v2).
pub fn cap_net_raw() -> Vec<u8> {
    let mut v = Vec::new();
    for word in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
        v.extend_from_slice(&word.to_le_bytes());
    }
    v
}

pub fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// (name, archive) for each case.
pub fn all() -> Vec<(&'static str, Vec<u8>)> {
    let mut v: Vec<(&'static str, Vec<u8>)> = Vec::new();
    v.push((
        "gnu_sparse",
        tar(&[gnu_sparse(
            "sparse",
            (1 << 20) + 100,
            &[
                (0, bytes(512, 1)),
                (8192, bytes(1024, 2)),
                (1 << 20, bytes(100, 3)),
            ],
        )]),
    ));
    let many: Vec<(u64, Vec<u8>)> = (0..30).map(|i| (i * 8192, bytes(512, i as u8))).collect();
    v.push((
        "gnu_sparse_extended",
        tar(&[gnu_sparse("many", 29 * 8192 + 512, &many)]),
    ));
    let (d1, d2) = (bytes(512, 4), bytes(700, 5));
    let stored = [d1.clone(), d2.clone()].concat();
    v.push((
        "pax_sparse_0_0",
        tar(&[
            pax(
                b'x',
                &[
                    ("GNU.sparse.size", b"200000"),
                    ("GNU.sparse.numblocks", b"3"),
                    ("GNU.sparse.offset", b"4096"),
                    ("GNU.sparse.numbytes", b"512"),
                    ("GNU.sparse.offset", b"150000"),
                    ("GNU.sparse.numbytes", b"700"),
                    ("GNU.sparse.offset", b"200000"),
                    ("GNU.sparse.numbytes", b"0"),
                ],
            ),
            member(b"s00", b'0', &stored, 0o600, b""),
        ]),
    ));
    v.push((
        "pax_sparse_0_1",
        tar(&[
            pax(
                b'x',
                &[
                    ("GNU.sparse.size", b"200000"),
                    ("GNU.sparse.numblocks", b"3"),
                    ("GNU.sparse.map", b"4096,512,150000,700,200000,0"),
                    ("GNU.sparse.name", b"s01"),
                ],
            ),
            member(b"GNUSparseFile.0/s01", b'0', &stored, 0o600, b""),
        ]),
    ));
    let data10 = [
        sparse_1_0_map(&[(4096, 512), (150000, 700), (200000, 0)]),
        stored.clone(),
    ]
    .concat();
    v.push((
        "pax_sparse_1_0",
        tar(&[
            pax(
                b'x',
                &[
                    ("GNU.sparse.major", b"1"),
                    ("GNU.sparse.minor", b"0"),
                    ("GNU.sparse.name", b"s10"),
                    ("GNU.sparse.realsize", b"200000"),
                ],
            ),
            member(b"GNUSparseFile.0/s10", b'0', &data10, 0o600, b""),
        ]),
    ));
    let cap = cap_net_raw();
    v.push((
        "xattrs",
        tar(&[
            pax(b'x', &[("SCHILY.xattr.user.dirattr", b"d")]),
            dir("bin"),
            pax(
                b'x',
                &[
                    ("SCHILY.xattr.user.test", b"hello\0world"),
                    ("SCHILY.xattr.security.capability", &cap),
                ],
            ),
            member(b"bin/ping", b'0', b"#!/bin/true\n", 0o4755, b""),
        ]),
    ));
    let mut m = vec![file("base", b"base")];
    for (name, t, link) in [
        ("d", b'5', ""),
        ("sym", b'2', "base"),
        ("hard", b'1', "base"),
        ("fifo", b'6', ""),
        ("chr", b'3', ""),
    ] {
        m.push(header_only_with_size(name, t, link, 1024));
        m.push(file(&format!("after_{name}"), b"read as a header"));
        m.push(file(&format!("next_{name}"), b"x"));
    }
    v.push(("header_only_with_size", tar(&m)));
    v.push((
        "global_pax",
        tar(&[
            pax(b'g', &[("comment", b"0123456789abcdef")]),
            file("g1", b"one"),
            file("g2", b"two"),
        ]),
    ));
    v.push((
        "solaris_x",
        tar(&[
            pax(b'X', &[("path", b"solaris/long/name")]),
            file("short", b"x"),
        ]),
    ));
    let mut h = header("caf\u{e9}-\u{fc}".as_bytes(), b'0', 3, 0o644, b"");
    set_signed_cksum(&mut h);
    v.push(("signed_checksum", tar(&[with_data(&h, b"abc")])));
    v.push((
        "duplicate_long_name",
        tar(&[
            gnu_long(b'L', b"first-name"),
            gnu_long(b'L', b"second-name"),
            file("short", b"x"),
        ]),
    ));
    v.push((
        "duplicate_pax",
        tar(&[
            pax(b'x', &[("path", b"pax-first"), ("uid", b"42")]),
            pax(b'x', &[("path", b"pax-second")]),
            file("short", b"x"),
        ]),
    ));
    v.push((
        "v7_directory",
        tar(&[
            member(b"olddir/", 0, b"", 0o750, b""),
            member(b"olddir2/", b'0', b"", 0o700, b""),
            file("olddir/f", b"in old dir"),
        ]),
    ));
    v.push((
        "fifo_modes",
        tar(&[
            member(b"fifo1", b'6', b"", 0o666, b""),
            member(b"fifo2", b'6', b"", 0o4670, b""),
        ]),
    ));
    v.push((
        "long_name_with_nul",
        tar(&[
            gnu_long(b'L', b"before-nul\0after-nul"),
            file("short", b"x"),
        ]),
    ));
    let mut h = header(b"empty-fields", b'0', 1, 0o644, b"");
    for field in [100..108, 108..116, 116..124, 136..148] {
        h.as_mut_bytes()[field].fill(0);
    }
    h.set_cksum();
    v.push(("empty_numeric_fields", tar(&[with_data(&h, b"x")])));
    v.push((
        "pax_mtime_and_ids",
        tar(&[
            pax(
                b'x',
                &[
                    ("mtime", b"1600000000.123456789"),
                    ("uid", b"3000000"),
                    ("gid", b"4000000"),
                ],
            ),
            file("nanos", b"x"),
        ]),
    ));
    v
}
