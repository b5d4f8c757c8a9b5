//! PAX extended headers (`x`, Solaris `X`, global `g`): `"<len> <key>=<value>\n"` records.
//!
//! Values are bytes (xattr values are binary). A later record for the same key
//! wins; local records apply to the next member.

/// One record, in archive order (PAX sparse format 0.0 repeats its keys).
pub(crate) type Record = (String, Vec<u8>);

/// Parses the body of a PAX header; the error says what is malformed.
pub(crate) fn parse(mut body: &[u8]) -> Result<Vec<Record>, String> {
    let mut out = Vec::new();
    // Trailing NUL padding is tolerated, as every reader does.
    while !body.is_empty() && body[0] != 0 {
        let sp = body
            .iter()
            .position(|&b| b == b' ')
            .ok_or("PAX record without a length")?;
        let len: usize = std::str::from_utf8(&body[..sp])
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or("PAX record with a bad length")?;
        if len <= sp + 1 || len > body.len() || body[len - 1] != b'\n' {
            return Err("PAX record with a bad length".into());
        }
        let rec = &body[sp + 1..len - 1];
        let eq = rec
            .iter()
            .position(|&b| b == b'=')
            .ok_or("PAX record without '='")?;
        let key = std::str::from_utf8(&rec[..eq])
            .map_err(|_| "PAX record with a non-UTF-8 key")?
            .to_string();
        if key.is_empty() {
            return Err("PAX record with an empty key".into());
        }
        out.push((key, rec[eq + 1..].to_vec()));
        body = &body[len..];
    }
    Ok(out)
}

/// The last value of `key`, if any.
pub(crate) fn last<'a>(records: &'a [Record], key: &str) -> Option<&'a [u8]> {
    records
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_slice())
}

/// Whether a record with this key changes the member it applies to (as read here).
pub(crate) fn applies_to_members(key: &str) -> bool {
    matches!(key, "path" | "linkpath" | "size" | "uid" | "gid" | "mtime")
        || key.starts_with("GNU.sparse.")
        || key.starts_with("SCHILY.xattr.")
}

/// A decimal unsigned number.
pub(crate) fn number(value: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(value).ok()?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A PAX time `[-]seconds[.fraction]` as (seconds, nanoseconds).
pub(crate) fn time(value: &[u8]) -> Option<(i64, i64)> {
    let s = std::str::from_utf8(value).ok()?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs = number(secs.as_bytes())? as i64;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let nanos: i64 = digits.parse().ok()?;
    Some(if !neg {
        (secs, nanos)
    } else if nanos == 0 {
        (-secs, 0)
    } else {
        (-secs - 1, 1_000_000_000 - nanos)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_and_last_wins() {
        let body = b"12 path=abc\n12 path=xyz\n20 SCHILY.xattr.a=\0\n\0\0\0";
        let r = parse(body).unwrap();
        assert_eq!(last(&r, "path"), Some(&b"xyz"[..]));
        assert_eq!(last(&r, "SCHILY.xattr.a"), Some(&b"\0"[..]));
    }

    #[test]
    fn bad_records_are_refused() {
        assert!(parse(b"99 path=abc\n").is_err());
        assert!(parse(b"x path=abc\n").is_err());
        assert!(parse(b"11 pathabc\n").is_err());
    }

    #[test]
    fn times() {
        assert_eq!(time(b"12.5"), Some((12, 500_000_000)));
        assert_eq!(time(b"-1.25"), Some((-2, 750_000_000)));
        assert_eq!(time(b"7"), Some((7, 0)));
        assert_eq!(time(b"a"), None);
    }
}
