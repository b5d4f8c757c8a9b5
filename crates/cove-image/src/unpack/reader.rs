//! The tar stream, one member at a time, read as GNU tar reads it.
//!
//! tar-rs's `Header` decodes the fields (octal and base-256 numbers, the ustar
//! prefix); the member loop is ours because tar-rs's differs from GNU tar (and
//! from Go's and Python's readers) where it matters: it skips `size` bytes after
//! header-only members (directory, links, FIFO, device), refuses a second long
//! name or PAX header instead of using the last, refuses signed checksums,
//! returns global and Solaris headers as members, has no PAX sparse formats and
//! reads extended headers of any size into memory.
//!
//! Where GNU tar reads an archive one way and Go (Docker, containerd) or Python
//! another, the archive is a parser differential and is refused as
//! [`ImageError::Unsafe`]: sparse maps that disagree with the data, global PAX
//! records that would change members, PAX sparse records on a non-file, numeric
//! fields with bytes after their NUL, malformed PAX records, GNU long names
//! whose size cuts them before their NUL.

use std::io::{self, Read, Seek, SeekFrom, Write};

use tar::{GnuExtSparseHeader, Header};

use super::fields::{check_sum, numeric, FieldError};
use super::names::{cut_at_nul, shown};
use super::pax::{self, Record};
use super::sparse::{self, PaxSparse, SparseMap};
use crate::ImageError;

const BLOCK: u64 = 512;
/// Largest extended header (long name, long link, PAX) we read: Go's limit.
pub(crate) const MAX_EXTENDED: u64 = 1 << 20;

/// What a member makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Fifo,
    /// Char or block device: skipped.
    Device,
    /// A volume label: nothing to make.
    Label,
}

/// One archive member with its extended headers applied.
#[derive(Debug)]
pub(crate) struct Member {
    pub name: Vec<u8>,
    pub link: Vec<u8>,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: (i64, i64),
    /// `SCHILY.xattr.*` records: (attribute name, value).
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// File data bytes stored in the archive (after any in-data sparse map).
    pub stored: u64,
    pub sparse: Option<SparseMap>,
}

/// Reads members from a tar stream.
pub(crate) struct TarReader<R> {
    inner: R,
    /// Bytes consumed so far.
    offset: u64,
    /// Where the current member's data (with padding) ends.
    data_end: u64,
}

fn round_up(n: u64) -> Option<u64> {
    n.checked_add(BLOCK - 1).map(|n| n & !(BLOCK - 1))
}

impl<R: Read> TarReader<R> {
    pub(crate) fn new(inner: R) -> TarReader<R> {
        TarReader {
            inner,
            offset: 0,
            data_end: 0,
        }
    }

    fn bad(&self, at: u64, what: impl std::fmt::Display) -> ImageError {
        ImageError::Invalid(format!("layer tar: header at byte {at}: {what}"))
    }

    fn field(&self, at: u64, name: &str, e: FieldError) -> ImageError {
        match e {
            FieldError::Bad => self.bad(at, format!("bad {name} field")),
            FieldError::Ambiguous => ambiguous(at, name),
        }
    }

    fn io_err(&self, e: io::Error) -> ImageError {
        ImageError::Io {
            context: format!("cannot read layer tar at byte {}", self.offset),
            source: e,
        }
    }

    /// Reads a whole block; `Ok(false)` on a clean end of stream.
    fn read_block(&mut self, buf: &mut [u8; 512]) -> Result<bool, ImageError> {
        self.read_block_or(buf, false)
    }

    /// Like [`Self::read_block`]; with `partial_is_end`, a partial last block
    /// is the end too (a header cannot fit in it: GNU tar and Python stop there).
    fn read_block_or(
        &mut self,
        buf: &mut [u8; 512],
        partial_is_end: bool,
    ) -> Result<bool, ImageError> {
        let mut n = 0;
        while n < buf.len() {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) if n == 0 || partial_is_end => {
                    self.offset += n as u64;
                    return Ok(false);
                }
                Ok(0) => return Err(self.bad(self.offset, "archive truncated")),
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_err(e)),
            }
        }
        self.offset += BLOCK;
        Ok(true)
    }

    /// Skips the rest of the current member's data.
    fn skip_rest(&mut self) -> Result<(), ImageError> {
        let left = self.data_end.saturating_sub(self.offset);
        let n = io::copy(&mut (&mut self.inner).take(left), &mut io::sink())
            .map_err(|e| self.io_err(e))?;
        self.offset += n;
        if n < left {
            return Err(self.bad(self.offset, "archive truncated inside a member"));
        }
        Ok(())
    }

    /// Reads the `size`-byte body of an extended header (and its padding).
    fn read_extended(&mut self, at: u64, size: u64) -> Result<Vec<u8>, ImageError> {
        let body = self.read_extended_exact(at, size)?;
        self.data_end = round_up(self.offset).unwrap_or(u64::MAX);
        self.skip_rest()?;
        Ok(body)
    }

    /// Reads the `size`-byte body of an extended header, not its padding.
    fn read_extended_exact(&mut self, at: u64, size: u64) -> Result<Vec<u8>, ImageError> {
        if size > MAX_EXTENDED {
            return Err(self.bad(
                at,
                format!("extended header of {size} bytes is over the 1 MiB limit"),
            ));
        }
        let mut body = Vec::with_capacity(size as usize);
        let n = (&mut self.inner)
            .take(size)
            .read_to_end(&mut body)
            .map_err(|e| self.io_err(e))?;
        self.offset += n as u64;
        if (n as u64) < size {
            return Err(self.bad(self.offset, "archive truncated inside a member"));
        }
        Ok(body)
    }

    /// Reads a GNU long name or link. GNU tar takes the name up to the first NUL
    /// in the padded blocks, Go and Python the first `size` bytes: when those
    /// differ the archive is a parser differential, refused as unsafe.
    fn read_long_name(&mut self, at: u64, size: u64) -> Result<Vec<u8>, ImageError> {
        let data_end = round_up(self.offset.saturating_add(size)).unwrap_or(u64::MAX);
        let mut body = self.read_extended_exact(at, size)?;
        let mut pad = [0u8; 1];
        if !body.contains(&0) && self.offset < data_end {
            let n = (&mut self.inner)
                .take(1)
                .read(&mut pad)
                .map_err(|e| self.io_err(e))?;
            self.offset += n as u64;
            if pad[0] != 0 {
                return Err(ImageError::Unsafe(format!(
                    "layer tar: header at byte {at}: long name {}... runs past its size",
                    shown(&body)
                )));
            }
        }
        self.data_end = data_end;
        self.skip_rest()?;
        body = cut_at_nul(body);
        Ok(body)
    }

    /// The next member, or `None` at the end of the archive (the first zero
    /// block, as GNU tar stops there, or the end of the stream).
    pub(crate) fn next_member(&mut self) -> Result<Option<Member>, ImageError> {
        self.skip_rest()?;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut local: Vec<Record> = Vec::new();
        let mut block = [0u8; 512];
        loop {
            let at = self.offset;
            // The end, also after extended headers without a member (GNU tar
            // ignores those too: they describe nothing).
            if !self.read_block_or(&mut block, true)? || block.iter().all(|&b| b == 0) {
                return Ok(None);
            }
            check_sum(&block).map_err(|e| self.bad(at, e))?;
            let h = Header::from_byte_slice(&block);
            let size =
                numeric(h, 124..136, h.entry_size()).map_err(|e| self.field(at, "size", e))?;
            self.data_end = self.offset;
            match block[156] {
                b'L' => long_name = Some(self.read_long_name(at, size)?),
                b'K' => long_link = Some(self.read_long_name(at, size)?),
                // A later local header replaces an earlier one, as in GNU tar and Go.
                b'x' | b'X' => {
                    let body = self.read_extended(at, size)?;
                    local = pax::parse(&body).map_err(|e| malformed(at, e))?;
                }
                // GNU tar and Python apply global records to every later member;
                // Go returns them as a member of their own, which Docker and
                // containerd skip. Those that would change a member are a parser
                // differential; the rest (git archive's `comment`) change nothing.
                b'g' => {
                    let body = self.read_extended(at, size)?;
                    let recs = pax::parse(&body).map_err(|e| malformed(at, e))?;
                    if let Some((k, _)) = recs.iter().find(|(k, _)| pax::applies_to_members(k)) {
                        return Err(ImageError::Unsafe(format!(
                            "layer tar: header at byte {at}: global PAX record {} \
                             (GNU tar applies it to every member, Docker ignores it)",
                            shown(k.as_bytes())
                        )));
                    }
                }
                _ => {
                    return self
                        .member(at, h, size, long_name, long_link, local)
                        .map(Some);
                }
            }
        }
    }

    fn member(
        &mut self,
        at: u64,
        h: &Header,
        size: u64,
        long_name: Option<Vec<u8>>,
        long_link: Option<Vec<u8>>,
        records: Vec<Record>,
    ) -> Result<Member, ImageError> {
        let name = pax::last(&records, "GNU.sparse.name")
            .or_else(|| pax::last(&records, "path"))
            .map(<[u8]>::to_vec)
            .or(long_name)
            .unwrap_or_else(|| h.path_bytes().into_owned());
        let name = cut_at_nul(name);
        let link = pax::last(&records, "linkpath")
            .map(<[u8]>::to_vec)
            .or(long_link)
            .or_else(|| h.link_name_bytes().map(|l| l.into_owned()))
            .map(cut_at_nul)
            .unwrap_or_default();
        let field = |what: &str| {
            ImageError::Invalid(format!(
                "layer tar: entry {} at byte {at}: bad {what}",
                shown(&name)
            ))
        };
        // GNU tar warns about a PAX value it cannot read and ignores it, Go and
        // Python refuse the archive: a parser differential, so unsafe.
        let pax_bad = |key: &str| {
            ImageError::Unsafe(format!(
                "layer tar: entry {} at byte {at}: bad PAX {key} record",
                shown(&name)
            ))
        };
        let num = |what: &str, r: Result<u64, FieldError>| match r {
            Ok(v) => Ok(v),
            Err(FieldError::Bad) => Err(field(what)),
            Err(FieldError::Ambiguous) => Err(ambiguous(at, what)),
        };
        let id = |key: &str, header: Result<u64, FieldError>| -> Result<u32, ImageError> {
            let v = match pax::last(&records, key) {
                Some(v) => pax::number(v).ok_or_else(|| pax_bad(key))?,
                None => num(key, header)?,
            };
            u32::try_from(v).map_err(|_| field(key))
        };
        let uid = id("uid", numeric(h, 108..116, h.uid()))?;
        let gid = id("gid", numeric(h, 116..124, h.gid()))?;
        let mode = num("mode", numeric(h, 100..108, h.mode().map(u64::from)))?;
        let mode = (mode & 0o7777) as u32;
        let mtime = match pax::last(&records, "mtime") {
            Some(v) => pax::time(v).ok_or_else(|| pax_bad("mtime"))?,
            None => {
                let secs = num("mtime", numeric(h, 136..148, h.mtime()))?;
                (i64::try_from(secs).map_err(|_| field("mtime"))?, 0)
            }
        };
        let size = match pax::last(&records, "size") {
            Some(v) => pax::number(v).ok_or_else(|| pax_bad("size"))?,
            None => size,
        };
        let xattrs = records
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("SCHILY.xattr.")
                    .map(|n| (n.as_bytes().to_vec(), v.clone()))
            })
            .collect();
        let typeflag = h.as_bytes()[156];
        let kind = match typeflag {
            b'0' | 0 | b'7' if name.ends_with(b"/") => Kind::Dir,
            b'1' => Kind::Hardlink,
            b'2' => Kind::Symlink,
            b'3' | b'4' => Kind::Device,
            b'5' | b'D' => Kind::Dir,
            b'6' => Kind::Fifo,
            b'V' => Kind::Label,
            b'M' | b'N' => {
                return Err(ImageError::Unsupported(format!(
                    "layer tar: entry {} at byte {at}: multi-volume or old long-name member",
                    shown(&name)
                )))
            }
            // GNU tar extracts unknown types as regular files.
            _ => Kind::File,
        };
        // Header-only members carry no data whatever their size field says
        // (GNU tar, Go and Python read the next header right after them).
        let consumed = match typeflag {
            b'1' | b'2' | b'3' | b'4' | b'5' | b'6' => 0,
            b'0' | 0 | b'7' if kind == Kind::Dir => 0,
            _ => size,
        };
        self.data_end = round_up(consumed)
            .and_then(|c| self.offset.checked_add(c))
            .ok_or_else(|| field("size"))?;
        let mut m = Member {
            name,
            link,
            kind,
            mode,
            uid,
            gid,
            mtime,
            xattrs,
            stored: consumed,
            sparse: None,
        };
        if kind != Kind::File {
            // GNU tar makes any member with PAX sparse records a sparse file
            // whatever its type; Go and Python do not.
            if records.iter().any(|(k, _)| k.starts_with("GNU.sparse.")) {
                return Err(ImageError::Unsafe(format!(
                    "layer tar: entry {} at byte {at}: sparse records on a member that is not a file",
                    shown(&m.name)
                )));
            }
            return Ok(m);
        }
        // GNU tar reads many malformed sparse members Go and Python refuse: a
        // parser differential, so refused as unsafe.
        let sparse_err = |m: &Member, e: String| {
            ImageError::Unsafe(format!(
                "layer tar: entry {} at byte {at}: {e}",
                shown(&m.name)
            ))
        };
        if typeflag == b'S' {
            let map = self.gnu_sparse_map(h).map_err(|e| sparse_err(&m, e))?;
            m.sparse = Some(map);
        } else {
            match sparse::from_pax(&records).map_err(|e| sparse_err(&m, e))? {
                PaxSparse::No => {}
                PaxSparse::Map(map) => m.sparse = Some(map),
                PaxSparse::InData { real_size } => {
                    let (map, used) = self
                        .data_sparse_map(real_size, m.stored)
                        .map_err(|e| sparse_err(&m, e))?;
                    m.stored -= used;
                    m.sparse = Some(map);
                }
            }
        }
        if let Some(map) = &m.sparse {
            map.check(m.stored).map_err(|e| sparse_err(&m, e))?;
        }
        Ok(m)
    }

    /// The map of an old GNU sparse (`S`) member: four runs in the header, more
    /// in extension blocks after it (which come before the data).
    fn gnu_sparse_map(&mut self, h: &Header) -> Result<SparseMap, String> {
        let gnu = h.as_gnu().ok_or("sparse member without a GNU header")?;
        let real_size = gnu.real_size().map_err(|_| "bad sparse real size")?;
        let mut runs = Vec::new();
        let mut add = |s: &tar::GnuSparseHeader| -> Result<(), String> {
            if !s.is_empty() {
                let off = s.offset().map_err(|_| "bad sparse offset")?;
                let len = s.length().map_err(|_| "bad sparse length")?;
                runs.push((off, len));
            }
            if runs.len() > sparse::MAX_RUNS {
                return Err(format!("sparse map of more than {} runs", sparse::MAX_RUNS));
            }
            Ok(())
        };
        for s in &gnu.sparse {
            add(s)?;
        }
        let mut extended = gnu.is_extended();
        while extended {
            let mut ext = GnuExtSparseHeader::new();
            if !self
                .read_block(ext.as_mut_bytes())
                .map_err(|e| e.to_string())?
            {
                return Err("archive truncated in a sparse map".into());
            }
            // The extension blocks sit between the header and the data.
            self.data_end = self.data_end.saturating_add(BLOCK);
            for s in ext.sparse() {
                add(s)?;
            }
            extended = ext.is_extended();
        }
        Ok(SparseMap { real_size, runs })
    }

    /// Reads a PAX 1.0 map from the start of the data; returns it and the bytes
    /// (whole blocks) it took.
    fn data_sparse_map(&mut self, real_size: u64, stored: u64) -> Result<(SparseMap, u64), String> {
        let mut text = Vec::new();
        let mut block = [0u8; 512];
        loop {
            if text.len() as u64 >= MAX_EXTENDED || text.len() as u64 + BLOCK > stored {
                return Err("PAX sparse 1.0 map too long or truncated".into());
            }
            if !self.read_block(&mut block).map_err(|e| e.to_string())? {
                return Err("archive truncated in a sparse map".into());
            }
            text.extend_from_slice(&block);
            if let Some(map) = sparse::parse_data_map(&text, real_size)? {
                return Ok((map, text.len() as u64));
            }
        }
    }

    /// Writes the current member's data into `out` (holes of a sparse member
    /// stay holes). Must follow [`Self::next_member`] for a `File`.
    pub(crate) fn write_data(&mut self, m: &Member, out: &mut std::fs::File) -> io::Result<()> {
        match &m.sparse {
            None => self.copy(m.stored, out),
            Some(map) => {
                for &(off, len) in &map.runs {
                    out.seek(SeekFrom::Start(off))?;
                    self.copy(len, out)?;
                }
                out.set_len(map.real_size)
            }
        }
    }

    fn copy(&mut self, len: u64, out: &mut impl Write) -> io::Result<()> {
        let n = io::copy(&mut (&mut self.inner).take(len), out)?;
        self.offset += n;
        if n < len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive truncated inside the member's data",
            ));
        }
        Ok(())
    }
}

/// A numeric field tar readers read differently: a parser differential, unsafe.
fn ambiguous(at: u64, name: &str) -> ImageError {
    ImageError::Unsafe(format!(
        "layer tar: header at byte {at}: {name} field that tar readers read differently"
    ))
}

/// A malformed PAX header: GNU tar warns and drops the records from the bad
/// one on, Go and Python refuse the archive; a parser differential, so unsafe.
fn malformed(at: u64, e: String) -> ImageError {
    ImageError::Unsafe(format!("layer tar: header at byte {at}: {e}"))
}
