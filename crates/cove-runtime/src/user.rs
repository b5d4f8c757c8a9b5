//! Resolves an image's `User` (`""`, `uid`, `uid:gid`, `name`, `name:group`) to numeric ids using
//! the rootfs' own `/etc/passwd` and `/etc/group`, the way runc/Docker do.
//!
//! The files are opened with `openat2(RESOLVE_IN_ROOT)` so an absolute or `..` symlink planted in
//! the image (e.g. `/etc/passwd -> /etc/shadow` of the host) resolves inside the rootfs, never out.

use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::RuntimeError;

/// The numeric identity the container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// Home directory from passwd, if the user has an entry.
    pub home: Option<String>,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Resolves `user` against `rootfs/etc/passwd` and `rootfs/etc/group`. `None`/empty = 0:0.
pub fn resolve_user(rootfs: &Path, user: Option<&str>) -> Result<ResolvedUser, RuntimeError> {
    let spec = user.unwrap_or("").trim();
    let passwd = parse_passwd(&read_in_root(rootfs, "etc/passwd").unwrap_or_default());
    let groups = parse_group(&read_in_root(rootfs, "etc/group").unwrap_or_default());
    let err = |reason: &str| RuntimeError::User {
        user: spec.to_string(),
        reason: reason.to_string(),
    };
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };

    let entry = if user_part.is_empty() {
        passwd.iter().find(|p| p.uid == 0)
    } else if let Ok(uid) = user_part.parse::<u32>() {
        passwd.iter().find(|p| p.uid == uid)
    } else {
        Some(
            passwd
                .iter()
                .find(|p| p.name == user_part)
                .ok_or_else(|| err("no such user in /etc/passwd"))?,
        )
    };
    let uid = match user_part.parse::<u32>() {
        Ok(uid) => uid,
        Err(_) => entry.map(|e| e.uid).unwrap_or(0),
    };

    let mut resolved = ResolvedUser {
        uid,
        gid: entry.map(|e| e.gid).unwrap_or(0),
        additional_gids: Vec::new(),
        home: entry.map(|e| e.home.clone()),
    };
    match group_part {
        Some(g) if !g.is_empty() => {
            resolved.gid = match g.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => {
                    groups
                        .iter()
                        .find(|e| e.name == g)
                        .ok_or_else(|| err("no such group in /etc/group"))?
                        .gid
                }
            };
        }
        // Supplementary groups only in the implicit form, like runc's GetExecUser.
        _ => {
            if let Some(e) = entry {
                resolved.additional_gids = groups
                    .iter()
                    .filter(|g| g.members.iter().any(|m| m == &e.name) && g.gid != resolved.gid)
                    .map(|g| g.gid)
                    .collect();
                resolved.additional_gids.dedup();
            }
        }
    }
    Ok(resolved)
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).map(|h| h.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Reads `rel` inside `root`, resolving every symlink as if `root` were `/`.
/// Returns `None` if the file does not exist or cannot be read (callers treat it as empty).
pub(crate) fn read_in_root(root: &Path, rel: &str) -> Option<String> {
    let root_dir = File::open(root).ok()?;
    let rel = CString::new(Path::new(rel).as_os_str().as_bytes()).ok()?;
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_RDONLY | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: openat2 reads `rel` (a valid C string) and `how` (a valid, correctly sized struct);
    // it returns a new fd we own, or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root_dir.as_raw_fd(),
            rel.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd was just returned by openat2 and is owned by nobody else.
    let mut file = unsafe { File::from_raw_fd(fd as i32) };
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_rootfs() -> tempdir::Dir {
        let d = tempdir::Dir::new("user");
        std::fs::create_dir_all(d.0.join("etc")).unwrap();
        std::fs::write(
            d.0.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\njovyan:x:1000:100::/home/jovyan:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            d.0.join("etc/group"),
            "root:x:0:\nusers:x:100:\nwheel:x:10:jovyan,root\naudio:x:29:jovyan\nnogroup:x:65534:\n",
        )
        .unwrap();
        d
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new(tag: &str) -> Self {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let p = std::env::temp_dir().join(format!(
                    "cove-rt-{tag}-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn default_is_root() {
        let d = fake_rootfs();
        let u = resolve_user(&d.0, None).unwrap();
        assert_eq!((u.uid, u.gid), (0, 0));
        assert_eq!(u.additional_gids, vec![10]);
        assert_eq!(u.home.as_deref(), Some("/root"));
        assert_eq!(resolve_user(&d.0, Some("")).unwrap().uid, 0);
    }

    #[test]
    fn names_and_numbers() {
        let d = fake_rootfs();
        let u = resolve_user(&d.0, Some("jovyan")).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids.clone()),
            (1000, 100, vec![10, 29])
        );
        let u = resolve_user(&d.0, Some("jovyan:users")).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 100));
        assert!(u.additional_gids.is_empty());
        let u = resolve_user(&d.0, Some("1000")).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 100));
        let u = resolve_user(&d.0, Some("1234:5678")).unwrap();
        assert_eq!((u.uid, u.gid), (1234, 5678));
        let u = resolve_user(&d.0, Some("4321")).unwrap();
        assert_eq!((u.uid, u.gid, u.home), (4321, 0, None));
        assert!(resolve_user(&d.0, Some("ghost")).is_err());
        assert!(resolve_user(&d.0, Some("jovyan:ghosts")).is_err());
    }

    #[test]
    fn symlinks_stay_in_root() {
        let d = fake_rootfs();
        std::fs::remove_file(d.0.join("etc/passwd")).unwrap();
        // An absolute symlink must resolve inside the rootfs, not to the host's /etc/passwd.
        std::fs::write(d.0.join("inner-passwd"), "evil:x:7:7::/:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("/inner-passwd", d.0.join("etc/passwd")).unwrap();
        let u = resolve_user(&d.0, Some("evil")).unwrap();
        assert_eq!(u.uid, 7);
        std::fs::remove_file(d.0.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("../../../../../../etc/passwd", d.0.join("etc/passwd")).unwrap();
        assert!(resolve_user(&d.0, Some("root")).is_err());
    }
}
