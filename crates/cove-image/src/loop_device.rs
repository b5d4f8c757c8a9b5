//! Attaching a file to a loop device with the kernel's ioctls, in process.
//!
//! `mount -o loop` does the same through two processes (mount and its loop setup), which
//! costs a few milliseconds of fork and exec on every limited pod's create; the ioctls
//! themselves take a fraction of a millisecond. The device is attached with the
//! auto-clear flag: once the filesystem on it is mounted and the descriptor returned
//! here is closed, unmounting that filesystem detaches the device, so nothing is left to
//! free by hand.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

/// `<linux/loop.h>`: ask loop-control for a free device number.
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
/// `<linux/loop.h>`: attach a file and set its flags in one call (Linux 5.8+).
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
/// `<linux/loop.h>`: detach the device when its last user goes away.
const LO_FLAGS_AUTOCLEAR: u32 = 4;
/// Tries before giving up when another process takes the free device first.
const TRIES: usize = 16;

/// `struct loop_info64` of `<linux/loop.h>`.
#[repr(C)]
struct LoopInfo64 {
    device: u64,
    inode: u64,
    rdevice: u64,
    offset: u64,
    sizelimit: u64,
    number: u32,
    encrypt_type: u32,
    encrypt_key_size: u32,
    flags: u32,
    file_name: [u8; 64],
    crypt_name: [u8; 64],
    encrypt_key: [u8; 32],
    init: [u64; 2],
}

/// `struct loop_config` of `<linux/loop.h>`.
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// A loop device attached to a file; the open descriptor keeps it attached until the
/// filesystem on it is mounted. Drop it after mounting.
pub(crate) struct Attached {
    pub path: PathBuf,
    _device: File,
}

/// Attaches `image` (read-write) to a free loop device with auto-clear set.
pub(crate) fn attach(image: &Path) -> Result<Attached, Errno> {
    let backing = OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .map_err(io_errno)?;
    let control = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/loop-control")
        .map_err(io_errno)?;
    let mut last = Errno::EBUSY;
    for _ in 0..TRIES {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device number.
        let n = Errno::result(unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) })?;
        let path = PathBuf::from(format!("/dev/loop{n}"));
        let device = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            Err(e) => {
                last = io_errno(e);
                continue;
            }
        };
        // SAFETY: all-zero is a valid `loop_config` (plain integers and byte arrays).
        let mut config: LoopConfig = unsafe { std::mem::zeroed() };
        config.fd = backing.as_raw_fd() as u32;
        config.info.flags = LO_FLAGS_AUTOCLEAR;
        // SAFETY: LOOP_CONFIGURE reads one `loop_config` that outlives the call; the
        // backing descriptor stays open across it (the kernel takes its own reference).
        let r = unsafe {
            libc::ioctl(
                device.as_raw_fd(),
                LOOP_CONFIGURE,
                &config as *const LoopConfig,
            )
        };
        match Errno::result(r) {
            Ok(_) => {
                return Ok(Attached {
                    path,
                    _device: device,
                })
            }
            // Another process attached this device between GET_FREE and here: next one.
            Err(Errno::EBUSY) => last = Errno::EBUSY,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

#[cfg(test)]
mod tests {
    #[test]
    fn structs_match_the_kernel_layout() {
        // sizeof(struct loop_info64) == 232, sizeof(struct loop_config) == 304.
        assert_eq!(std::mem::size_of::<super::LoopInfo64>(), 232);
        assert_eq!(std::mem::size_of::<super::LoopConfig>(), 304);
    }
}
