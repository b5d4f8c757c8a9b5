//! A pool of pod disks formatted ahead of time, so that a create with the daemon's default
//! disk size does not wait for mkfs.ext4.
//!
//! `<data_dir>/disk-pool/<n>.img` are sparse ext4 images of one size (the daemon's
//! `--default-disk`), not mounted: they hold no loop device and no mount, only a few MiB of
//! metadata each. A create takes one by renaming it into its container dir (same
//! filesystem); a background thread makes a new one after every take, up to the pool's
//! size. The pool is emptied when the daemon starts (a `kill -9` may have left a
//! half-written image) and when it shuts down. It stops refilling while the data dir's
//! filesystem has less than [`MIN_FREE`] available: there, creates format their own disk.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::ImageError;

/// Below this much free space on the data dir's filesystem the pool is not refilled.
const MIN_FREE: u64 = 1 << 30;
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
    ready: Vec<PathBuf>,
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

    /// Moves a ready image of `mib` MiB to `dest`; false if the pool holds none.
    pub(crate) fn take(&self, mib: u64, dest: &Path) -> bool {
        if mib != self.mib {
            return false;
        }
        let img = {
            let mut st = self.state();
            let Some(img) = st.ready.pop() else {
                return false;
            };
            img
        };
        self.wake.notify_all();
        match std::fs::rename(&img, dest) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(image = %img.display(), error = %e, "cannot take a pooled disk");
                let _ = std::fs::remove_file(&img);
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
                // Refills start at once after a take: the mkfs runs at the lowest CPU and
                // I/O priority, so it takes only time the creates in flight leave idle
                // (waiting for a quiet moment instead left a steady stream of creates, one
                // every ~100 ms, with an empty pool: each formatted its own disk).
                while !st.stopping && st.ready.len() >= self.size {
                    st = self.wake.wait(st).unwrap_or_else(|p| p.into_inner());
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

    /// Formats image `n` under a temporary name and renames it ready.
    fn make(&self, n: u64) -> Result<PathBuf, String> {
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
        Ok(img)
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

/// Never held across anything that can panic mid-update; a poisoned lock is consistent.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn clear(dir: &Path) -> Result<(), ImageError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ImageError::io("remove", dir, e)),
        _ => Ok(()),
    }
}
