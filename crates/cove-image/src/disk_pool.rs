//! A pool of pod disks formatted and mounted ahead of time, so that a create with the
//! daemon's default disk size waits neither for mkfs.ext4 nor for the mount.
//!
//! `<data_dir>/disk-pool/<n>.img` are sparse ext4 images of one size (the daemon's
//! `--default-disk`), each mounted on `<data_dir>/disk-pool/<n>/` (its own loop device,
//! `upper/` and `work/` made): a few hundred KiB of metadata each. A create takes one by
//! renaming the image into its container dir (same filesystem; the loop device follows
//! the file) and moving the mount there: a bind mount on `<container>/disk`, then a
//! detaching unmount of the pool's mount point. A background thread makes a new one after
//! every take, up to the pool's size. The pool is emptied, mounts first, when the daemon
//! starts (a `kill -9` may have left a half-made disk) and when it shuts down. It stops
//! refilling while the data dir's filesystem has less than [`MIN_FREE`] available: there,
//! creates format their own disk.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::mount::{umount2, MntFlags, MsFlags};

use crate::ImageError;

/// Below this much free space on the data dir's filesystem the pool is not refilled.
const MIN_FREE: u64 = 1 << 30;
/// How long after a take a refill waits while the pool is at least half full.
const DEFER: Duration = Duration::from_millis(100);
/// How often a pool that could not refill (no room, mkfs failing) tries again.
const RETRY: Duration = Duration::from_secs(10);

/// The formatted images ready to take, and the thread that makes them.
pub(crate) struct DiskPool {
    dir: PathBuf,
    mib: u64,
    size: usize,
    state: Mutex<State>,
    wake: Condvar,
    filler: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct State {
    ready: Vec<Ready>,
    /// When a create last took a disk.
    last_take: Option<Instant>,
    stopping: bool,
    next: u64,
}

impl DiskPool {
    /// Empties `dir` of what an earlier daemon left and starts filling it with `size`
    /// images of `mib` MiB.
    pub(crate) fn start(
        dir: PathBuf,
        mib: u64,
        size: usize,
    ) -> Result<std::sync::Arc<DiskPool>, ImageError> {
        clear(&dir)?;
        std::fs::create_dir_all(&dir).map_err(|e| ImageError::io("create", &dir, e))?;
        let pool = std::sync::Arc::new(DiskPool {
            dir,
            mib,
            size,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            filler: Mutex::new(None),
        });
        let filler = pool.clone();
        let handle = std::thread::Builder::new()
            .name("disk-pool".into())
            .spawn(move || filler.fill())
            .map_err(|e| ImageError::io("start the disk pool thread for", &pool.dir, e))?;
        *lock(&pool.filler) = Some(handle);
        Ok(pool)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Moves a ready disk of `mib` MiB to the container: its image to `img`, its mount to
    /// the (existing, empty) directory `mount`. False if the pool holds none or the move
    /// failed (then nothing of that disk is left, and the caller makes its own).
    pub(crate) fn take(&self, mib: u64, img: &Path, mount: &Path) -> bool {
        if mib != self.mib {
            return false;
        }
        let disk = {
            let mut st = self.state();
            let Some(disk) = st.ready.pop() else {
                return false;
            };
            st.last_take = Some(Instant::now());
            disk
        };
        self.wake.notify_all();
        let moved = std::fs::rename(&disk.img, img)
            .map_err(|e| format!("rename: {e}"))
            .and_then(|()| {
                // Mount: the pooled disk at the container's disk dir (its flags come along).
                nix::mount::mount(
                    Some(disk.mount.as_path()),
                    mount,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(|e| format!("bind mount: {e}"))
            });
        // The pool's own mount point goes either way; the bind (if made) keeps the disk.
        if let Err(e) = umount2(&disk.mount, MntFlags::MNT_DETACH) {
            tracing::warn!(disk = %disk.mount.display(), error = %e, "cannot unmount a pooled disk");
        }
        let _ = std::fs::remove_dir(&disk.mount);
        match moved {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(disk = %disk.img.display(), error = %e, "cannot take a pooled disk");
                let _ = std::fs::remove_file(&disk.img);
                let _ = std::fs::remove_file(img);
                false
            }
        }
    }

    /// Number of images ready to take.
    pub(crate) fn ready(&self) -> usize {
        self.state().ready.len()
    }

    /// The filler thread: keeps `size` images ready until [`DiskPool::stop`].
    fn fill(&self) {
        loop {
            let n = {
                let mut st = self.state();
                while !st.stopping && st.ready.len() >= self.size {
                    st = self.wake.wait(st).unwrap_or_else(|p| p.into_inner());
                }
                // While at least half the pool is ready, a refill waits until DEFER has
                // passed since the last take: the create that took it is then past its
                // runc start, which a refill (mkfs and mount, ~10 ms of CPU and I/O) slowed
                // by a quarter when it ran beside it. Below half (a burst, or a steady
                // stream of creates), refills start at once.
                loop {
                    let since = st.last_take.map_or(DEFER, |t| t.elapsed());
                    if st.stopping || since >= DEFER || st.ready.len() * 2 < self.size {
                        break;
                    }
                    st = self
                        .wake
                        .wait_timeout(st, DEFER - since)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|p| p.into_inner().0);
                }
                if st.stopping {
                    return;
                }
                st.next += 1;
                st.next
            };
            match self.make(n) {
                Ok(img) => {
                    let mut st = self.state();
                    st.ready.push(img);
                    if st.stopping {
                        return;
                    }
                }
                Err(reason) => {
                    tracing::debug!(%reason, "not refilling the disk pool for now");
                    let st = self.state();
                    if st.stopping {
                        return;
                    }
                    let _ = self.wake.wait_timeout(st, RETRY);
                }
            }
        }
    }

    /// Formats image `n` under a temporary name, renames it and mounts it on `<n>/`.
    fn make(&self, n: u64) -> Result<Ready, String> {
        let stat = nix::sys::statvfs::statvfs(&self.dir).map_err(|e| e.to_string())?;
        let free = stat.blocks_available() as u64 * stat.fragment_size() as u64;
        if free < MIN_FREE {
            return Err(format!("{free} bytes free on the data dir's filesystem"));
        }
        let tmp = self.dir.join(format!("{n}.tmp"));
        let img = self.dir.join(format!("{n}.img"));
        let made = crate::disk::format(&tmp, self.mib, true).and_then(|()| {
            std::fs::rename(&tmp, &img).map_err(|e| ImageError::io("rename", &tmp, e))
        });
        if let Err(e) = made {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.to_string());
        }
        let mount = self.dir.join(n.to_string());
        let mounted = std::fs::create_dir(&mount)
            .map_err(|e| ImageError::io("create", &mount, e))
            .and_then(|()| crate::disk::mount_image(&img, &mount))
            .and_then(|()| {
                for d in ["upper", "work"] {
                    let p = mount.join(d);
                    std::fs::create_dir(&p).map_err(|e| ImageError::io("create", &p, e))?;
                }
                Ok(())
            });
        if let Err(e) = mounted {
            let _ = umount2(&mount, MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(&mount);
            let _ = std::fs::remove_file(&img);
            return Err(e.to_string());
        }
        Ok(Ready { img, mount })
    }

    /// Stops the filler and removes every image. Idempotent.
    pub(crate) fn stop(&self) {
        self.state().stopping = true;
        self.wake.notify_all();
        if let Some(handle) = lock(&self.filler).take() {
            let _ = handle.join();
        }
        self.state().ready.clear();
        if let Err(e) = clear(&self.dir) {
            tracing::warn!(error = %e, "cannot empty the disk pool");
        }
    }
}

/// A disk ready to take: its image and where it is mounted.
struct Ready {
    img: PathBuf,
    mount: PathBuf,
}

/// Never held across anything that can panic mid-update; a poisoned lock is consistent.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Unmounts every disk mounted under `dir` (freeing their loop devices), then removes it.
pub(crate) fn clear(dir: &Path) -> Result<(), ImageError> {
    for m in crate::overlay::mounts_under(dir)? {
        if let Err(e) = umount2(&m, MntFlags::MNT_DETACH) {
            return Err(ImageError::nix("unmount", &m, e));
        }
    }
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ImageError::io("remove", dir, e)),
        _ => Ok(()),
    }
}
