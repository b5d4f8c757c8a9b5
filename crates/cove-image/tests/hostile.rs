//! Hostile layers: hand-made tars that try to write outside the layer dir.
//! Names go straight into the header bytes (`Header::set_path` refuses `..`).

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cove_image::{unpack_layer_tar, ImageError};
use tar::{EntryType, Header};

/// One raw tar entry.
fn entry(name: &str, kind: EntryType, link: &str, data: &[u8], mode: u32) -> Vec<u8> {
    let mut h = Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_uid(1234);
    h.set_gid(5678);
    h.set_mtime(1_000_000);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn file(name: &str, data: &[u8]) -> Vec<u8> {
    entry(name, EntryType::Regular, "", data, 0o644)
}

fn tar(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out: Vec<u8> = entries.concat();
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// A sandbox: `<tmp>/layer` is unpacked into, `<tmp>/outside` must stay as is.
struct Sandbox {
    _tmp: tempfile::TempDir,
    layer: PathBuf,
    outside: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        let layer = tmp.path().join("layer");
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&layer).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), "secret").unwrap();
        Sandbox {
            _tmp: tmp,
            layer,
            outside,
        }
    }

    fn unpack(&self, entries: &[Vec<u8>]) -> Result<(), ImageError> {
        unpack_layer_tar(&tar(entries)[..], &self.layer)
    }

    /// `outside` holds exactly the untouched `secret`, and nothing appeared beside the layer.
    fn assert_outside_untouched(&self) {
        let names: Vec<_> = std::fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["secret"]);
        let secret = self.outside.join("secret");
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "secret");
        assert_eq!(
            std::fs::metadata(&secret).unwrap().nlink(),
            1,
            "secret got hard-linked"
        );
        let parent: Vec<_> = std::fs::read_dir(self.layer.parent().unwrap())
            .unwrap()
            .collect();
        assert_eq!(parent.len(), 2, "something appeared next to the layer dir");
    }
}

fn assert_unsafe(r: Result<(), ImageError>) {
    match r {
        Err(ImageError::Unsafe(_)) => {}
        other => panic!("expected Unsafe, got {other:?}"),
    }
}

fn unique(tag: &str) -> PathBuf {
    PathBuf::from(format!("/tmp/cove-hostile-{tag}-{}", std::process::id()))
}

#[test]
fn dotdot_is_rejected() {
    let s = Sandbox::new();
    assert_unsafe(s.unpack(&[file("../escape", b"x")]));
    assert_unsafe(s.unpack(&[file("a/../../outside/x", b"x")]));
    s.assert_outside_untouched();
}

#[test]
fn absolute_path_lands_inside_the_layer() {
    // As GNU tar and containerd do: the leading `/` goes, the entry stays in the layer.
    let s = Sandbox::new();
    let target = unique("abs");
    s.unpack(&[file(target.to_str().unwrap(), b"x")])
        .expect("an absolute name is taken relative to the layer");
    assert!(!target.exists());
    let inside = s.layer.join(target.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(&inside).unwrap(), b"x");
    s.assert_outside_untouched();
}

#[test]
fn file_through_symlink_to_root_is_rejected() {
    let s = Sandbox::new();
    let target = unique("sym");
    let rel = target
        .strip_prefix("/")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let r = s.unpack(&[
        entry("a", EntryType::Symlink, "/", b"", 0o777),
        file(&format!("a/{rel}"), b"pwned"),
    ]);
    assert_unsafe(r);
    assert!(!target.exists());
}

#[test]
fn file_through_symlink_to_outside_dir_is_rejected() {
    let s = Sandbox::new();
    let out = s.outside.to_str().unwrap().to_string();
    assert_unsafe(s.unpack(&[
        entry("b", EntryType::Symlink, &out, b"", 0o777),
        file("b/pwned", b"x"),
    ]));
    assert_unsafe(s.unpack(&[
        entry("c", EntryType::Symlink, "../outside", b"", 0o777),
        file("c/pwned", b"x"),
    ]));
    // Also when the symlink sits deeper in the path.
    assert_unsafe(s.unpack(&[
        entry("d/", EntryType::Directory, "", b"", 0o755),
        entry("d/e", EntryType::Symlink, "../../outside", b"", 0o777),
        file("d/e/pwned", b"x"),
    ]));
    s.assert_outside_untouched();
}

#[test]
fn hardlinks_outside_are_rejected() {
    let s = Sandbox::new();
    // An absolute target is the layer's own `etc/passwd` (as in GNU tar), which is missing.
    let missing = s.unpack(&[entry("h", EntryType::Link, "/etc/passwd", b"", 0o644)]);
    assert!(missing.is_err(), "{missing:?}");
    assert_unsafe(s.unpack(&[entry("h", EntryType::Link, "../outside/secret", b"", 0o644)]));
    let out = s.outside.to_str().unwrap().to_string();
    assert_unsafe(s.unpack(&[
        entry("s", EntryType::Symlink, &out, b"", 0o777),
        entry("h", EntryType::Link, "s/secret", b"", 0o644),
    ]));
    assert!(!s.layer.join("h").exists());
    s.assert_outside_untouched();
}

#[test]
fn devices_are_skipped() {
    let s = Sandbox::new();
    s.unpack(&[
        entry("chr", EntryType::Char, "", b"", 0o666),
        entry("blk", EntryType::Block, "", b"", 0o666),
        file("ok", b"ok"),
    ])
    .expect("devices are skipped, not fatal");
    assert!(std::fs::symlink_metadata(s.layer.join("chr")).is_err());
    assert!(std::fs::symlink_metadata(s.layer.join("blk")).is_err());
    assert!(s.layer.join("ok").is_file());
}

#[test]
fn directory_replaces_planted_symlink() {
    let s = Sandbox::new();
    let out = s.outside.to_str().unwrap().to_string();
    s.unpack(&[
        entry("d", EntryType::Symlink, &out, b"", 0o777),
        entry("d/", EntryType::Directory, "", b"", 0o755),
        file("d/inside", b"x"),
    ])
    .expect("unpack");
    assert!(std::fs::symlink_metadata(s.layer.join("d"))
        .unwrap()
        .is_dir());
    assert!(s.layer.join("d/inside").is_file());
    s.assert_outside_untouched();
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.to_str()?).ok()?;
    let n = std::ffi::CString::new(name).ok()?;
    let mut buf = [0u8; 64];
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| buf[..len as usize].to_vec())
}

#[test]
fn benign_layer_keeps_metadata_and_whiteouts() {
    let s = Sandbox::new();
    s.unpack(&[
        entry("bin/", EntryType::Directory, "", b"", 0o755),
        entry("bin/su", EntryType::Regular, "", b"#!", 0o4755),
        entry("bin/sh", EntryType::Symlink, "/bin/su", b"", 0o777),
        entry("bin/su2", EntryType::Link, "bin/su", b"", 0o4755),
        entry("run/fifo", EntryType::Fifo, "", b"", 0o600),
        file("etc/.wh.gone", b""),
        file("var/.wh..wh..opq", b""),
    ])
    .expect("unpack");
    let su = std::fs::metadata(s.layer.join("bin/su")).unwrap();
    assert_eq!(su.permissions().mode() & 0o7777, 0o4755, "setuid kept");
    assert_eq!((su.uid(), su.gid()), (1234, 5678));
    assert_eq!(su.mtime(), 1_000_000);
    assert_eq!(su.nlink(), 2);
    assert_eq!(
        std::fs::read_link(s.layer.join("bin/sh")).unwrap(),
        Path::new("/bin/su")
    );
    assert!(std::fs::metadata(s.layer.join("run/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    let wh = std::fs::symlink_metadata(s.layer.join("etc/gone")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout is char 0/0"
    );
    assert!(!s.layer.join("etc/.wh.gone").exists());
    assert_eq!(
        xattr(&s.layer.join("var"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!s.layer.join("var/.wh..wh..opq").exists());
}
