//! Member names: cut at NUL, split into safe components, and shown in errors
//! truncated and escaped (a name may be a megabyte of control characters).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use crate::ImageError;

/// Longest name (in characters, before escaping) an error message shows.
const SHOWN_MAX: usize = 100;

/// The name as C tools see it: everything up to the first NUL.
pub(crate) fn cut_at_nul(mut name: Vec<u8>) -> Vec<u8> {
    if let Some(i) = name.iter().position(|&b| b == 0) {
        name.truncate(i);
    }
    name
}

/// A name fit for a one-line error or log: lossy UTF-8, control characters and
/// quotes escaped, at most [`SHOWN_MAX`] characters (then `...`), in quotes.
pub(crate) fn shown(name: &[u8]) -> String {
    let text = String::from_utf8_lossy(name);
    let mut out = String::from("\"");
    for (i, c) in text.chars().enumerate() {
        if i == SHOWN_MAX {
            out.push_str("...");
            break;
        }
        out.extend(c.escape_debug());
    }
    out.push('"');
    out
}

/// Splits an archive name into normal components. Empty and `.` components are
/// dropped, so an absolute name is taken relative to the layer's root, as GNU tar
/// ("Removing leading `/' from member names") and containerd's layer applier take it;
/// a `..` component is [`ImageError::Unsafe`].
pub(crate) fn components(name: &[u8]) -> Result<Vec<OsString>, ImageError> {
    let mut out = Vec::new();
    for c in name.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                return Err(ImageError::Unsafe(format!(
                    "path with '..': {}",
                    shown(name)
                )))
            }
            c => out.push(OsString::from_vec(c.to_vec())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_escapes_and_truncates() {
        assert_eq!(shown(b"a\nb\"c"), r#""a\nb\"c""#);
        let long = vec![b'x'; 5000];
        let s = shown(&long);
        assert!(s.len() < 110, "{s}");
        assert!(s.ends_with("...\""));
    }

    #[test]
    fn components_refuse_escapes() {
        assert_eq!(components(b"/etc//passwd").unwrap(), vec!["etc", "passwd"]);
        assert!(components(b"a/../../b").is_err());
        assert_eq!(components(b"./a//b/").unwrap(), vec!["a", "b"]);
    }

    #[test]
    fn nul_cuts() {
        assert_eq!(cut_at_nul(b"abc\0def".to_vec()), b"abc");
    }
}
