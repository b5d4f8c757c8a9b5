//! Sparse members: the old GNU `S` header (map in the header and extension
//! blocks) and the PAX formats 0.0 (repeated `GNU.sparse.offset`/`numbytes`),
//! 0.1 (`GNU.sparse.map`) and 1.0 (map at the start of the data).
//!
//! A map lists the (offset, length) of each stored run of the file; the rest
//! are holes, which become holes on disk (seek, then `set_len`).

use super::pax::{self, Record};

/// At most this many runs in one map (a 1 MiB 0.1 map holds about 40,000).
pub(crate) const MAX_RUNS: usize = 1 << 16;

/// Where a sparse member's data goes.
#[derive(Debug, Clone)]
pub(crate) struct SparseMap {
    pub real_size: u64,
    pub runs: Vec<(u64, u64)>,
}

impl SparseMap {
    /// Checks the runs are in order, inside the file, and add up to `stored` bytes.
    ///
    /// GNU tar starts each run's data at a block boundary, Go and Python read the
    /// runs back to back; they agree only when every run but the last is whole
    /// blocks and the map ends at the real size (as GNU tar writes them), so
    /// other maps are refused.
    pub(crate) fn check(&self, stored: u64) -> Result<(), String> {
        if self.runs.len() > MAX_RUNS {
            return Err(format!("sparse map of more than {MAX_RUNS} runs"));
        }
        let mut end = 0u64;
        let mut total = 0u64;
        let last_data = self.runs.iter().rposition(|&(_, len)| len > 0);
        for (i, &(off, len)) in self.runs.iter().enumerate() {
            if !len.is_multiple_of(512) && Some(i) != last_data {
                return Err("sparse run that is not whole blocks before the last".into());
            }
            if off < end {
                return Err("sparse map with overlapping or unordered runs".into());
            }
            end = off
                .checked_add(len)
                .filter(|&e| e <= self.real_size)
                .ok_or("sparse run past the end of the file")?;
            total += len;
        }
        // GNU tar ends a sparse file where its map ends (it writes a last empty
        // run at the real size), Go and Python at the real size.
        if end != self.real_size {
            return Err(format!(
                "sparse map ends at {end}, not at the file's size {}",
                self.real_size
            ));
        }
        if total != stored {
            return Err(format!(
                "sparse map lists {total} bytes but the member stores {stored}"
            ));
        }
        Ok(())
    }
}

/// What the PAX records of a member say about sparseness.
pub(crate) enum PaxSparse {
    /// Not sparse.
    No,
    /// Format 0.0 or 0.1: the map is complete.
    Map(SparseMap),
    /// Format 1.0: the map is at the start of the data; only the size is known.
    InData { real_size: u64 },
}

/// Reads the PAX sparse records, if any.
pub(crate) fn from_pax(records: &[Record]) -> Result<PaxSparse, String> {
    let real_size = pax::last(records, "GNU.sparse.realsize")
        .or_else(|| pax::last(records, "GNU.sparse.size"))
        .map(|v| pax::number(v).ok_or("bad GNU.sparse size"))
        .transpose()?;
    let major = pax::last(records, "GNU.sparse.major");
    let minor = pax::last(records, "GNU.sparse.minor");
    if major.is_some() || minor.is_some() {
        if major != Some(&b"1"[..]) || minor != Some(&b"0"[..]) {
            return Err("unknown PAX sparse format version".into());
        }
        let real_size = real_size.ok_or("PAX sparse 1.0 member without a size")?;
        return Ok(PaxSparse::InData { real_size });
    }
    if let Some(map) = pax::last(records, "GNU.sparse.map") {
        let real_size = real_size.ok_or("PAX sparse member without a size")?;
        let nums = std::str::from_utf8(map)
            .map_err(|_| "bad GNU.sparse.map")?
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| pax::number(s.as_bytes()).ok_or("bad GNU.sparse.map"))
            .collect::<Result<Vec<u64>, _>>()?;
        return pairs(&nums, real_size).map(PaxSparse::Map);
    }
    let mut nums = Vec::new();
    for (k, v) in records {
        let want_offset = nums.len().is_multiple_of(2);
        match k.as_str() {
            "GNU.sparse.offset" if want_offset => {}
            "GNU.sparse.numbytes" if !want_offset => {}
            "GNU.sparse.offset" | "GNU.sparse.numbytes" => {
                return Err("PAX sparse 0.0 offsets and sizes out of order".into())
            }
            _ => continue,
        }
        nums.push(pax::number(v).ok_or("bad PAX sparse 0.0 run")?);
        if nums.len() > 2 * MAX_RUNS {
            return Err(format!("sparse map of more than {MAX_RUNS} runs"));
        }
    }
    if nums.is_empty() {
        return Ok(PaxSparse::No);
    }
    let real_size = real_size.ok_or("PAX sparse member without a size")?;
    pairs(&nums, real_size).map(PaxSparse::Map)
}

/// Turns `[off, len, off, len, ...]` into a map.
fn pairs(nums: &[u64], real_size: u64) -> Result<SparseMap, String> {
    if !nums.len().is_multiple_of(2) {
        return Err("sparse map with an odd number of values".into());
    }
    if nums.len() > 2 * MAX_RUNS {
        return Err(format!("sparse map of more than {MAX_RUNS} runs"));
    }
    Ok(SparseMap {
        real_size,
        runs: nums.chunks(2).map(|c| (c[0], c[1])).collect(),
    })
}

/// Parses a PAX 1.0 map from the start of the data: decimal numbers, one a line
/// (the count, then offset/length pairs). Returns the map once `text` holds it
/// all, `None` if more blocks are needed.
pub(crate) fn parse_data_map(text: &[u8], real_size: u64) -> Result<Option<SparseMap>, String> {
    let mut lines = text.split(|&b| b == b'\n');
    let mut complete = text.iter().filter(|&&b| b == b'\n').count();
    let Some(first) = lines.next().filter(|_| complete > 0) else {
        return Ok(None);
    };
    complete -= 1;
    let count = pax::number(first).ok_or("bad PAX sparse 1.0 map")? as usize;
    if count > MAX_RUNS {
        return Err(format!("sparse map of more than {MAX_RUNS} runs"));
    }
    if complete < 2 * count {
        return Ok(None);
    }
    let nums = lines
        .take(2 * count)
        .map(|l| pax::number(l).ok_or("bad PAX sparse 1.0 map"))
        .collect::<Result<Vec<u64>, _>>()?;
    pairs(&nums, real_size).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(k: &str, v: &str) -> Record {
        (k.to_string(), v.as_bytes().to_vec())
    }

    #[test]
    fn formats() {
        let r00 = [
            rec("GNU.sparse.size", "1650"),
            rec("GNU.sparse.offset", "1024"),
            rec("GNU.sparse.numbytes", "512"),
            rec("GNU.sparse.offset", "1600"),
            rec("GNU.sparse.numbytes", "50"),
        ];
        let PaxSparse::Map(m) = from_pax(&r00).unwrap() else {
            panic!()
        };
        assert_eq!(m.runs, vec![(1024, 512), (1600, 50)]);
        m.check(562).unwrap();
        assert!(m.check(561).is_err());
        let r01 = [
            rec("GNU.sparse.size", "100"),
            rec("GNU.sparse.map", "0,1,99,1"),
        ];
        // (0.1 and 1.0 maps are only parsed here, not checked.)
        let PaxSparse::Map(m) = from_pax(&r01).unwrap() else {
            panic!()
        };
        assert_eq!(m.runs, vec![(0, 1), (99, 1)]);
        let m = parse_data_map(b"2\n0\n1\n99\n1\n\0\0", 100)
            .unwrap()
            .unwrap();
        assert_eq!(m.runs, vec![(0, 1), (99, 1)]);
        assert!(parse_data_map(b"2\n0\n1\n99\n", 100).unwrap().is_none());
    }

    #[test]
    fn bad_maps() {
        let m = SparseMap {
            real_size: 10,
            runs: vec![(5, 6)],
        };
        assert!(m.check(6).is_err());
        let m = SparseMap {
            real_size: 10,
            runs: vec![(5, 1), (4, 1)],
        };
        assert!(m.check(2).is_err());
        // A partial run before the last: GNU tar and Go would read different data.
        let m = SparseMap {
            real_size: 5100,
            runs: vec![(0, 100), (5000, 100)],
        };
        assert!(m.check(200).is_err());
        // Ending before the real size: GNU tar and Go would make different sizes.
        let m = SparseMap {
            real_size: 10_000,
            runs: vec![(0, 512)],
        };
        assert!(m.check(512).is_err());
    }
}
