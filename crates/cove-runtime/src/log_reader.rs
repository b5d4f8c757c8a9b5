//! Reading a container's log across its rotations (see [`crate::log_files`]): the oldest
//! retained file first, then each newer one, then the current `container.log`, and on from
//! there as the shim keeps writing and rotating.
//!
//! The reader holds the file it is in open, so a rotation (a rename) does not take it away;
//! at its end it compares its identity (inode and creation time) with the current
//! `container.log`'s: if they differ, its
//! file was rotated, it drains what was written before the rename and moves to the file that
//! came next (found by identity among the rotations), so nothing is read twice or skipped unless
//! the writer has already removed it.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What tells two files apart: the inode number and the creation time. The number alone is
/// not enough: the file system gives a removed rotation's inode to the next new file at once.
type FileId = (u64, Option<std::time::SystemTime>);

fn file_id(m: &std::fs::Metadata) -> FileId {
    (m.ino(), m.created().ok())
}

/// A position in a container's log; see the module docs.
pub struct LogReader {
    path: PathBuf,
    /// The file being read, its inode and how far it has been read.
    cur: Option<(File, FileId, u64)>,
    /// For a reader that stops: the inode of the file that was current when it was made.
    end: Option<FileId>,
    /// It has reached `end`.
    done: bool,
}

impl LogReader {
    /// A reader at the start of the oldest retained output of the log at `path`
    /// (`<dir>/container.log`) that follows it as it grows. Nothing needs to exist yet.
    pub fn new(path: &Path) -> Self {
        LogReader {
            path: path.to_path_buf(),
            cur: None,
            end: None,
            done: false,
        }
    }

    /// A reader of what the log holds now: like [`LogReader::new`], but it stops at the end
    /// of the file that is current now, so it ends even if the writer is faster than it.
    pub fn to_now(path: &Path) -> Self {
        LogReader {
            end: std::fs::metadata(path).ok().map(|m| file_id(&m)),
            ..LogReader::new(path)
        }
    }

    /// Reads the next bytes into `buf`; 0 means the reader has caught up with the writer
    /// (call again later to follow).
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        // Bounded: each round moves to a newer file, and there are at most a few hundred.
        for _ in 0..1000 {
            let Some((file, ino, pos)) = self.cur.as_mut() else {
                match self.open_after(None)? {
                    Some(opened) => self.cur = Some(opened),
                    None => return Ok(0),
                }
                continue;
            };
            let n = file.read(buf)?;
            if n > 0 {
                *pos += n as u64;
                return Ok(n);
            }
            let current = match std::fs::metadata(&self.path) {
                Ok(m) => Some(file_id(&m)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            };
            if current == Some(*ino) && self.end == Some(*ino) {
                self.done = true;
                return Ok(0);
            }
            if current == Some(*ino) {
                // The current file; emptied (a limit of one file) if it is shorter than read.
                if file.metadata()?.len() < *pos {
                    file.seek(SeekFrom::Start(0))?;
                    *pos = 0;
                    continue;
                }
                return Ok(0);
            }
            // Rotated (or removed) since it was opened: what was written before the
            // rename is still to be read.
            let n = file.read(buf)?;
            if n > 0 {
                *pos += n as u64;
                return Ok(n);
            }
            let after = *ino;
            if self.end == Some(after) {
                self.done = true;
                return Ok(0);
            }
            match self.open_after(Some(after))? {
                Some(opened) => self.cur = Some(opened),
                None => return Ok(0),
            }
        }
        Ok(0)
    }

    /// Opens the file that follows the one with inode `after` (`None`: the oldest), with its
    /// inode. If `after` is gone (the writer removed it), the oldest retained file follows.
    fn open_after(&self, after: Option<FileId>) -> io::Result<Option<(File, FileId, u64)>> {
        for _ in 0..100 {
            let files = self.files()?;
            if let Some(end) = self.end {
                // The end file was removed before it was read: all that is left is newer.
                if !files.iter().any(|(_, ino)| *ino == end) {
                    return Ok(None);
                }
            }
            let next = match after.and_then(|a| files.iter().position(|(_, ino)| *ino == a)) {
                Some(i) => files.get(i + 1),
                None => files.first(),
            };
            let Some((path, ino)) = next else {
                return Ok(None);
            };
            match File::open(path) {
                Ok(f) if file_id(&f.metadata()?) == *ino => return Ok(Some((f, *ino, 0))),
                // Renamed between listing and opening: list again.
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// The log's files oldest first (the highest rotation number first, the current file last),
    /// with their inodes.
    fn files(&self) -> io::Result<Vec<(PathBuf, FileId)>> {
        let (Some(dir), Some(name)) = (self.path.parent(), self.path.file_name()) else {
            return Ok(Vec::new());
        };
        let prefix = format!("{}.", name.to_string_lossy());
        let mut rotated: Vec<(u32, PathBuf, FileId)> = Vec::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let fname = entry.file_name();
            let Some(n) = fname
                .to_str()
                .and_then(|f| f.strip_prefix(&prefix))
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Ok(m) = entry.metadata() {
                rotated.push((n, entry.path(), file_id(&m)));
            }
        }
        rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
        let mut files: Vec<(PathBuf, FileId)> =
            rotated.into_iter().map(|(_, p, i)| (p, i)).collect();
        if let Ok(m) = std::fs::metadata(&self.path) {
            files.push((self.path.clone(), file_id(&m)));
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_files::{LogLimit, RotatingLog};

    fn read_all(r: &mut LogReader) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn reads_the_retained_files_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let mut r = LogReader::new(&path);
        assert!(read_all(&mut r).is_empty());
        let limit = LogLimit {
            max_size: 50,
            max_files: 3,
        };
        let mut log = RotatingLog::open(&path, limit).unwrap();
        let mut all = Vec::new();
        for i in 0..100 {
            let line = format!("{i}\n");
            all.extend_from_slice(line.as_bytes());
            log.write(line.as_bytes()).unwrap();
        }
        let kept = read_all(&mut LogReader::new(&path));
        assert!(all.ends_with(&kept), "{}", String::from_utf8_lossy(&kept));
        assert_eq!(read_all(&mut LogReader::to_now(&path)), kept);
        assert!(kept.len() > 100 && kept.ends_with(b"99\n"));
    }

    #[test]
    fn following_crosses_rotations_without_losing_or_repeating() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let limit = LogLimit {
            max_size: 64,
            max_files: 3,
        };
        let mut log = RotatingLog::open(&path, limit).unwrap();
        let mut r = LogReader::new(&path);
        let mut all = Vec::new();
        let mut seen = Vec::new();
        for i in 0..2000 {
            let line = format!("line {i}\n");
            all.extend_from_slice(line.as_bytes());
            log.write(line.as_bytes()).unwrap();
            // The reader lags by up to two rotations, never by more than the writer keeps.
            if i % 10 == 0 {
                seen.extend(read_all(&mut r));
            }
        }
        seen.extend(read_all(&mut r));
        assert_eq!(
            String::from_utf8(seen).unwrap(),
            String::from_utf8(all).unwrap()
        );
    }

    #[test]
    fn reading_to_now_ends_while_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let limit = LogLimit {
            max_size: 64,
            max_files: 3,
        };
        let mut log = RotatingLog::open(&path, limit).unwrap();
        for i in 0..50 {
            log.write(format!("old {i}\n").as_bytes()).unwrap();
        }
        let mut r = LogReader::to_now(&path);
        let mut buf = [0u8; 10];
        let mut seen = Vec::new();
        // A writer faster than the reader: the reader still ends.
        let mut ended = false;
        for i in 0..10_000 {
            for j in 0..3 {
                log.write(format!("new {i} {j}\n").as_bytes()).unwrap();
            }
            match r.read(&mut buf).unwrap() {
                0 => {
                    ended = true;
                    break;
                }
                n => seen.extend_from_slice(&buf[..n]),
            }
        }
        assert!(ended);
        assert_eq!(r.read(&mut buf).unwrap(), 0);
        // Never more than the files that existed when it was made (at most the cap).
        assert!(seen.len() as u64 <= limit.total(), "{}", seen.len());
        let seen = String::from_utf8(seen).unwrap();
        assert!(seen.starts_with("old "), "{seen}");
    }

    #[test]
    fn follows_a_single_file_that_is_emptied() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let limit = LogLimit {
            max_size: 10,
            max_files: 1,
        };
        let mut log = RotatingLog::open(&path, limit).unwrap();
        let mut r = LogReader::new(&path);
        log.write(b"aaaa\nbbbb\n").unwrap();
        assert_eq!(read_all(&mut r), b"aaaa\nbbbb\n");
        log.write(b"cc\n").unwrap();
        assert_eq!(read_all(&mut r), b"cc\n");
    }
}
