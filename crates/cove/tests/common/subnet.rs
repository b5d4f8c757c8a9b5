//! Leases of test subnets, unique across parallel tests and test binaries.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------- subnets

/// A /24 under 10.150.0.0–10.249.255.0 held by this process: a lock file created with O_EXCL
/// under /tmp/cove-test-subnets, removed on drop, so parallel tests and binaries never share one.
pub struct SubnetLease {
    pub cidr: String,
    /// `10.a.b` (no trailing dot).
    pub prefix: String,
    file: PathBuf,
}

impl SubnetLease {
    pub fn take() -> Self {
        let dir = Path::new("/tmp/cove-test-subnets");
        std::fs::create_dir_all(dir).unwrap();
        let mut seed = [0u8; 2];
        std::fs::File::open("/dev/urandom")
            .unwrap()
            .read_exact(&mut seed)
            .unwrap();
        let start = u16::from_le_bytes(seed) as usize % (100 * 256);
        for i in 0..100 * 256 {
            let n = (start + i) % (100 * 256);
            let (a, b) = (150 + n / 256, n % 256);
            let prefix = format!("10.{a}.{b}");
            // A subnet the host already routes (a running cove daemon's
            // default 10.209.0.0/16, say) would be refused by the daemon.
            if routed_on_host(a, b) {
                continue;
            }
            let file = dir.join(format!("{prefix}.lock"));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&file)
            {
                Ok(mut f) => {
                    let _ = write!(f, "{}", std::process::id());
                    return SubnetLease {
                        cidr: format!("{prefix}.0/24"),
                        prefix,
                        file,
                    };
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("creating {}: {e}", file.display()),
            }
        }
        panic!("no free test subnet under /tmp/cove-test-subnets");
    }
}

/// Whether any route in /proc/net/route covers 10.a.b.0/24 (or lies inside it).
fn routed_on_host(a: usize, b: usize) -> bool {
    let ours = u32::from_be_bytes([10, a as u8, b as u8, 0]);
    let table = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    table.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(dest), Some(mask)) = (f.get(1), f.get(7)) else {
            return false;
        };
        let (Ok(dest), Ok(mask)) = (u32::from_str_radix(dest, 16), u32::from_str_radix(mask, 16))
        else {
            return false;
        };
        let (dest, mask) = (dest.swap_bytes(), mask.swap_bytes());
        // Skip the default route; overlap when either network contains the other.
        let ours_mask = 0xffff_ff00u32;
        mask != 0 && (ours & mask == dest & mask || dest & ours_mask == ours)
    })
}

impl Drop for SubnetLease {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}
