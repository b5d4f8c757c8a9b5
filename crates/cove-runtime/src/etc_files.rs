//! Generates the container's `/etc/resolv.conf`, `/etc/hosts` and `/etc/hostname` in
//! `<dir>/etc/`; the spec bind-mounts them read-only over the image's copies.

use std::path::{Path, PathBuf};

use crate::{ContainerConfig, RuntimeError};

/// The generated files, as `(path on the host, destination in the container)`.
pub fn etc_files(dir: &Path) -> [(PathBuf, &'static str); 3] {
    let etc = dir.join("etc");
    [
        (etc.join("resolv.conf"), "/etc/resolv.conf"),
        (etc.join("hosts"), "/etc/hosts"),
        (etc.join("hostname"), "/etc/hostname"),
    ]
}

/// `resolv.conf` content for the given nameservers.
pub fn resolv_conf(dns: &[String]) -> String {
    dns.iter().map(|ns| format!("nameserver {ns}\n")).collect()
}

/// `hosts` content: loopback names plus the container's hostname.
pub fn hosts(hostname: &str) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    if !hostname.is_empty() {
        s.push_str(&format!("127.0.1.1\t{hostname}\n"));
    }
    s
}

/// Writes all three files into `<cfg.dir>/etc/`.
pub fn write_etc_files(cfg: &ContainerConfig) -> Result<(), RuntimeError> {
    let etc = cfg.dir.join("etc");
    std::fs::create_dir_all(&etc)
        .map_err(|e| RuntimeError::io(format!("creating {}", etc.display()), e))?;
    let [resolv, hosts_path, hostname] = etc_files(&cfg.dir);
    for (path, content) in [
        (resolv.0, resolv_conf(&cfg.dns)),
        (hosts_path.0, hosts(&cfg.hostname)),
        (hostname.0, format!("{}\n", cfg.hostname)),
    ] {
        std::fs::write(&path, content)
            .map_err(|e| RuntimeError::io(format!("writing {}", path.display()), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents() {
        assert_eq!(
            resolv_conf(&["10.0.0.1".into(), "1.1.1.1".into()]),
            "nameserver 10.0.0.1\nnameserver 1.1.1.1\n"
        );
        assert!(hosts("pod-a").ends_with("127.0.1.1\tpod-a\n"));
        assert!(hosts("").starts_with("127.0.0.1\tlocalhost\n"));
    }
}
