//! A container's log on disk: `container.log` (the newest output) and its rotations
//! `container.log.1` (the next newest) … `container.log.<max_files-1>`, each at most
//! `max_size` bytes, so the whole log never takes more than `max_size × max_files` bytes.
//!
//! [`RotatingLog`] is the writer (the shim, which owns the container's stdout/stderr pipe,
//! is its only user); `log_reader` reads the files back in order.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub use cove_types::LogLimit;

/// The path of rotation `n` (1 = the newest rotated file) of the log at `path`.
pub fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Appends to a log file, rotating it so the files together stay within a [`LogLimit`].
///
/// A file is cut at the last line end that fits (a line longer than a whole file is split), so
/// files hold whole lines wherever the output has them, and no file ever exceeds `max_size`.
pub struct RotatingLog {
    path: PathBuf,
    file: File,
    size: u64,
    limit: LogLimit,
}

impl RotatingLog {
    /// Opens (or creates) the log at `path`, continuing an existing file, and removes
    /// rotations beyond `limit.max_files` (left by an earlier, larger limit).
    pub fn open(path: &Path, limit: LogLimit) -> io::Result<Self> {
        let limit = LogLimit {
            max_size: limit.max_size.max(1),
            max_files: limit.max_files.max(1),
        };
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        let mut n = limit.max_files;
        while std::fs::remove_file(rotated_path(path, n)).is_ok() {
            n += 1;
        }
        Ok(RotatingLog {
            path: path.to_path_buf(),
            file,
            size,
            limit,
        })
    }

    /// Appends `data`, rotating as often as needed.
    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let room = self.limit.max_size.saturating_sub(self.size);
            if data.len() as u64 <= room {
                self.append(data)?;
                return Ok(());
            }
            let fits = &data[..room as usize];
            let cut = match fits.iter().rposition(|b| *b == b'\n') {
                Some(nl) => nl + 1,
                // A line longer than a whole file: split it.
                None if self.size == 0 => fits.len(),
                // Start the line in a new file.
                None => 0,
            };
            self.append(&data[..cut])?;
            data = &data[cut..];
            self.rotate()?;
        }
        Ok(())
    }

    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        let written = self.file.write_all(data);
        self.size = match written {
            Ok(()) => self.size + data.len() as u64,
            // Part of it may be on disk (a full disk): count what the file really holds.
            Err(_) => self
                .file
                .metadata()
                .map_or(self.limit.max_size, |m| m.len()),
        };
        written
    }

    /// `container.log.<k>` → `.<k+1>` (the oldest is removed), `container.log` → `.1`, and a new
    /// empty `container.log`. With one file, the current file is emptied instead.
    fn rotate(&mut self) -> io::Result<()> {
        if self.limit.max_files == 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let last = self.limit.max_files - 1;
        ignore_missing(std::fs::remove_file(rotated_path(&self.path, last)))?;
        for n in (1..last).rev() {
            ignore_missing(std::fs::rename(
                rotated_path(&self.path, n),
                rotated_path(&self.path, n + 1),
            ))?;
        }
        std::fs::rename(&self.path, rotated_path(&self.path, 1))?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

fn ignore_missing(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(dir: &Path) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().len(),
                )
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn rotates_at_line_ends_and_keeps_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let limit = LogLimit {
            max_size: 100,
            max_files: 3,
        };
        let mut log = RotatingLog::open(&path, limit).unwrap();
        let mut all = Vec::new();
        for i in 0..1000 {
            let line = format!("line {i}\n");
            all.extend_from_slice(line.as_bytes());
            log.write(line.as_bytes()).unwrap();
            let total: u64 = sizes(dir.path()).iter().map(|(_, s)| s).sum();
            assert!(total <= limit.total(), "{total} bytes on disk");
        }
        let names: Vec<String> = sizes(dir.path()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["container.log", "container.log.1", "container.log.2"]
        );
        // Oldest first, the files are the tail of the output, cut at line ends.
        let mut kept = Vec::new();
        for p in [rotated_path(&path, 2), rotated_path(&path, 1), path.clone()] {
            let data = std::fs::read(&p).unwrap();
            assert!(data.len() as u64 <= limit.max_size);
            assert!(data.is_empty() || data.ends_with(b"\n"), "{p:?}");
            kept.extend_from_slice(&data);
        }
        assert!(all.ends_with(&kept));
        assert!(kept.starts_with(b"line "));
        assert!(kept.len() > 200);
    }

    #[test]
    fn splits_a_line_longer_than_a_file_and_writes_big_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let limit = LogLimit {
            max_size: 64,
            max_files: 2,
        };
        let mut log = RotatingLog::open(&path, limit).unwrap();
        let chunk: Vec<u8> = (0..1000u32).map(|i| b'a' + (i % 26) as u8).collect();
        log.write(&chunk).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), &chunk[1000 - 1000 % 64..]);
        assert_eq!(
            std::fs::read(rotated_path(&path, 1)).unwrap(),
            &chunk[1000 - 1000 % 64 - 64..1000 - 1000 % 64]
        );
    }

    #[test]
    fn one_file_is_emptied_and_old_rotations_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        std::fs::write(rotated_path(&path, 1), "old\n").unwrap();
        std::fs::write(rotated_path(&path, 2), "older\n").unwrap();
        let limit = LogLimit {
            max_size: 10,
            max_files: 1,
        };
        let mut log = RotatingLog::open(&path, limit).unwrap();
        assert!(!rotated_path(&path, 1).exists());
        assert!(!rotated_path(&path, 2).exists());
        log.write(b"12345\n67890\nabc\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"67890\nabc\n");
        log.write(b"x\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"x\n");
    }
}
