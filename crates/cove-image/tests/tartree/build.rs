//! Raw tar members, byte by byte, so tests can write what tar writers won't:
//! header-only members with a size, duplicate extended headers, signed checksums.

use tar::{GnuExtSparseHeader, Header};

pub const UID: u64 = 1234;
pub const GID: u64 = 5678;
pub const MTIME: u64 = 1_600_000_000;

/// A ustar header with the fields raw; the checksum is set (unsigned).
pub fn header(name: &[u8], typeflag: u8, size: u64, mode: u32, link: &[u8]) -> Header {
    let mut h = Header::new_ustar();
    let n = name.len().min(100);
    h.as_old_mut().name[..n].copy_from_slice(&name[..n]);
    let l = link.len().min(100);
    h.as_old_mut().linkname[..l].copy_from_slice(&link[..l]);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(UID);
    h.set_gid(GID);
    h.set_mtime(MTIME);
    h.as_old_mut().linkflag[0] = typeflag;
    h.set_cksum();
    h
}

/// The header's block followed by `data`, padded to whole blocks.
pub fn with_data(h: &Header, data: &[u8]) -> Vec<u8> {
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// A member whose size field is the data's length.
pub fn member(name: &[u8], typeflag: u8, data: &[u8], mode: u32, link: &[u8]) -> Vec<u8> {
    with_data(&header(name, typeflag, data.len() as u64, mode, link), data)
}

pub fn file(name: &str, data: &[u8]) -> Vec<u8> {
    member(name.as_bytes(), b'0', data, 0o644, b"")
}

pub fn dir(name: &str) -> Vec<u8> {
    member(name.as_bytes(), b'5', b"", 0o755, b"")
}

/// A header-only member (typeflag `t`) whose size field claims `size` bytes
/// that are not there.
pub fn header_only_with_size(name: &str, t: u8, link: &str, size: u64) -> Vec<u8> {
    header(name.as_bytes(), t, size, 0o755, link.as_bytes())
        .as_bytes()
        .to_vec()
}

/// An extended header (`x`, `X` or `g`) holding `records`.
pub fn pax(typeflag: u8, records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (k, v) in records {
        let rest = k.len() + v.len() + 3; // ' ', '=', '\n'
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        body.extend_from_slice(format!("{len} {k}=").as_bytes());
        body.extend_from_slice(v);
        body.push(b'\n');
    }
    member(b"././@PaxHeader", typeflag, &body, 0o644, b"")
}

/// A GNU long name (`L`) or long link (`K`) member, NUL-terminated like GNU tar's.
pub fn gnu_long(typeflag: u8, name: &[u8]) -> Vec<u8> {
    let mut data = name.to_vec();
    data.push(0);
    member(b"././@LongLink", typeflag, &data, 0o644, b"")
}

/// An old GNU sparse (`S`) member of `real_size` bytes with data `runs`;
/// `per_header` runs go in the header, the rest in extension blocks.
pub fn gnu_sparse(name: &str, real_size: u64, runs: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let stored: u64 = runs.iter().map(|(_, d)| d.len() as u64).sum();
    let mut h = Header::new_gnu();
    h.set_path(name).unwrap();
    h.set_size(stored);
    h.set_mode(0o640);
    h.set_uid(UID);
    h.set_gid(GID);
    h.set_mtime(MTIME);
    h.set_entry_type(tar::EntryType::GNUSparse);
    let gnu = h.as_gnu_mut().unwrap();
    gnu.set_real_size(real_size);
    let (head, rest) = runs.split_at(runs.len().min(4));
    for (slot, (off, d)) in gnu.sparse.iter_mut().zip(head) {
        slot.set_offset(*off);
        slot.set_length(d.len() as u64);
    }
    gnu.set_is_extended(!rest.is_empty());
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    let chunks: Vec<_> = rest.chunks(21).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let mut ext = GnuExtSparseHeader::new();
        for (slot, (off, d)) in ext.sparse_mut().iter_mut().zip(chunk.iter()) {
            slot.set_offset(*off);
            slot.set_length(d.len() as u64);
        }
        ext.set_is_extended(i + 1 < chunks.len());
        out.extend_from_slice(ext.as_bytes());
    }
    for (_, d) in runs {
        out.extend_from_slice(d);
    }
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// Recomputes `h`'s checksum the old signed way (bytes as `i8`).
pub fn set_signed_cksum(h: &mut Header) {
    let b = h.as_mut_bytes();
    b[148..156].fill(b' ');
    let sum: i64 = b.iter().map(|&x| i64::from(x as i8)).sum();
    let field = format!("{:06o}\0 ", sum as u64 & 0o777777);
    b[148..156].copy_from_slice(field.as_bytes());
}

/// Members followed by the two zero blocks that end an archive.
pub fn tar(members: &[Vec<u8>]) -> Vec<u8> {
    let mut out = members.concat();
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// The text map of PAX sparse 1.0 for `runs`, padded to a block.
pub fn sparse_1_0_map(runs: &[(u64, u64)]) -> Vec<u8> {
    let mut t = format!("{}\n", runs.len());
    for (o, l) in runs {
        t.push_str(&format!("{o}\n{l}\n"));
    }
    let mut out = t.into_bytes();
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}
