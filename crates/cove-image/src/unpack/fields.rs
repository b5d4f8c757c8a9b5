//! Header fields GNU tar, Go and Python must all read alike: the numbers
//! (octal or base-256) and the checksum.

use std::io;

use tar::Header;

/// Why a numeric header field was not read.
pub(crate) enum FieldError {
    Bad,
    /// Readers disagree on it: GNU tar skips one leading NUL, Python stops at
    /// the first NUL, Go trims all NULs.
    Ambiguous,
}

/// A numeric header field: base-256 (decoded by tar-rs) or octal digits between
/// spaces, ended by a NUL or space; empty is 0, as GNU tar, Go and Python read it.
/// Anything but NULs and spaces after a NUL is read differently by each of them.
pub(crate) fn numeric(
    h: &Header,
    field: std::ops::Range<usize>,
    decoded: io::Result<u64>,
) -> Result<u64, FieldError> {
    let bytes = &h.as_bytes()[field];
    if bytes[0] & 0x80 != 0 {
        return decoded.map_err(|_| FieldError::Bad);
    }
    let (text, rest) = match bytes.iter().position(|&b| b == 0) {
        Some(k) => (&bytes[..k], &bytes[k + 1..]),
        None => (bytes, &[][..]),
    };
    if rest.iter().any(|&b| b != 0 && b != b' ') {
        return Err(FieldError::Ambiguous);
    }
    // GNU tar and Python take tabs, newlines and the like as spaces, Go does not.
    if text.iter().any(|b| b"\t\n\x0b\x0c\r".contains(b)) {
        return Err(FieldError::Ambiguous);
    }
    let text = trim_spaces(text);
    if text.is_empty() {
        return Ok(0);
    }
    if !text.iter().all(|b| (b'0'..=b'7').contains(b)) {
        // GNU tar stops at a space after the digits ("00000 1" is 0), Go and
        // Python refuse the field.
        if text.contains(&b' ') {
            return Err(FieldError::Ambiguous);
        }
        return Err(FieldError::Bad);
    }
    let text = std::str::from_utf8(text).map_err(|_| FieldError::Bad)?;
    u64::from_str_radix(text, 8).map_err(|_| FieldError::Bad)
}

fn trim_spaces(mut t: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = t {
        t = rest;
    }
    while let [rest @ .., b' '] = t {
        t = rest;
    }
    t
}

/// The header checksum: the stored octal value must equal the sum of the
/// header's bytes (checksum field as spaces), taken unsigned or, as old tars
/// did, signed; GNU tar accepts either.
pub(crate) fn check_sum(block: &[u8; 512]) -> Result<(), &'static str> {
    let stored = Header::from_byte_slice(block)
        .cksum()
        .map_err(|_| "bad checksum field")?;
    let (mut unsigned, mut signed) = (0u32, 0i32);
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u32::from(b);
        signed += i32::from(b as i8);
    }
    if stored == unsigned || i64::from(stored) == i64::from(signed) {
        Ok(())
    } else {
        Err("header checksum mismatch")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_uid(field: &[u8; 8]) -> Header {
        let mut h = Header::new_ustar();
        h.as_mut_bytes()[108..116].copy_from_slice(field);
        h
    }

    fn uid(field: &[u8; 8]) -> Result<u64, FieldError> {
        let h = with_uid(field);
        numeric(&h, 108..116, h.uid())
    }

    #[test]
    fn numbers_as_every_reader_reads_them() {
        assert!(matches!(uid(b"0001750\0"), Ok(1000)));
        assert!(matches!(uid(b"  1750 \0"), Ok(1000)));
        assert!(matches!(uid(b"\0\0\0\0\0\0\0\0"), Ok(0)));
        assert!(matches!(uid(b"\x00001750\0"), Err(FieldError::Ambiguous)));
        assert!(matches!(uid(b"17\0\x00500\0"), Err(FieldError::Ambiguous)));
        assert!(matches!(uid(b"0001790\0"), Err(FieldError::Bad)));
        assert!(matches!(uid(b"00000 1\0"), Err(FieldError::Ambiguous)));
        assert!(matches!(uid(b"000004\t\0"), Err(FieldError::Ambiguous)));
        let mut h = Header::new_gnu();
        h.set_uid(3_000_000); // base-256
        assert!(matches!(numeric(&h, 108..116, h.uid()), Ok(3_000_000)));
    }

    #[test]
    fn signed_and_unsigned_checksums() {
        let mut h = Header::new_ustar();
        h.as_mut_bytes()[..4].copy_from_slice("\u{e9}\u{e9}".as_bytes());
        h.set_cksum();
        assert!(check_sum(h.as_bytes()).is_ok());
        let b = h.as_mut_bytes();
        b[148..156].fill(b' ');
        let signed: i64 = b.iter().map(|&x| i64::from(x as i8)).sum();
        b[148..156].copy_from_slice(format!("{signed:06o}\0 ").as_bytes());
        assert!(check_sum(h.as_bytes()).is_ok());
        h.as_mut_bytes()[0] = b'x';
        assert!(check_sum(h.as_bytes()).is_err());
    }
}
