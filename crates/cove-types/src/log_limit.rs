//! The cap on a container's log: at most `max_files` files (the current `container.log` and
//! its rotations) of at most `max_size` bytes each, like Docker's `max-size`/`max-file`.

use serde::{Deserialize, Serialize};

use crate::Quantity;

/// Default size of one log file: 10 MiB (the kubelet's default too).
pub const DEFAULT_LOG_MAX_SIZE: u64 = 10 * 1024 * 1024;
/// Default number of log files kept, the current one included: 3, so 30 MiB per container.
pub const DEFAULT_LOG_MAX_FILES: u32 = 3;
/// Smallest size of one log file.
pub const MIN_LOG_MAX_SIZE: u64 = 64 * 1024;
/// Largest size of one log file.
pub const MAX_LOG_MAX_SIZE: u64 = 1024 * 1024 * 1024 * 1024;
/// Largest number of log files.
pub const MAX_LOG_MAX_FILES: u32 = 100;

/// How much of its output a container keeps on disk: at most `max_size × max_files` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLimit {
    /// Bytes per file; the current file is rotated before it grows past this.
    pub max_size: u64,
    /// Files kept, the current one included (1: the current file is emptied instead).
    pub max_files: u32,
}

impl Default for LogLimit {
    fn default() -> Self {
        LogLimit {
            max_size: DEFAULT_LOG_MAX_SIZE,
            max_files: DEFAULT_LOG_MAX_FILES,
        }
    }
}

impl LogLimit {
    /// The most bytes the container's log files take together.
    pub fn total(&self) -> u64 {
        self.max_size.saturating_mul(u64::from(self.max_files))
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LogLimitError {
    #[error(
        "log max size {0} is invalid: use MiB (like 10) or a size (like \"512Ki\", \"20Mi\") \
         between 64 KiB and 1 TiB"
    )]
    Size(String),
    #[error("log max files {0} is invalid: use 1 to {MAX_LOG_MAX_FILES}")]
    Files(i64),
}

/// Parses a log file size into bytes: a plain number is MiB (like `memory` and `disk`);
/// strings take Ki/Mi/Gi/Ti (binary) or K/M/G/T (decimal) suffixes, or k/m/g as Docker
/// writes them (binary).
pub fn parse_log_max_size(q: &Quantity) -> Result<u64, LogLimitError> {
    let shown = match q {
        Quantity::Number(n) => n.to_string(),
        Quantity::Text(s) => format!("{s:?}"),
    };
    let bytes = match q {
        Quantity::Number(n) => Some(n * MIB),
        Quantity::Text(s) => text_bytes(s.trim()),
    };
    match bytes {
        Some(b)
            if b.is_finite() && b >= MIN_LOG_MAX_SIZE as f64 && b <= MAX_LOG_MAX_SIZE as f64 =>
        {
            Ok(b.ceil() as u64)
        }
        _ => Err(LogLimitError::Size(shown)),
    }
}

/// Checks a number of log files.
pub fn check_log_max_files(n: i64) -> Result<u32, LogLimitError> {
    match u32::try_from(n) {
        Ok(f) if (1..=MAX_LOG_MAX_FILES).contains(&f) => Ok(f),
        _ => Err(LogLimitError::Files(n)),
    }
}

const MIB: f64 = 1024.0 * 1024.0;

fn text_bytes(t: &str) -> Option<f64> {
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let factor = match unit.trim() {
        "" => MIB,
        "Ki" | "KiB" | "k" | "kb" => 1024.0,
        "Mi" | "MiB" | "m" | "mb" => MIB,
        "Gi" | "GiB" | "g" | "gb" => MIB * 1024.0,
        "Ti" | "TiB" | "t" | "tb" => MIB * MIB,
        "K" | "KB" => 1e3,
        "M" | "MB" => 1e6,
        "G" | "GB" => 1e9,
        "T" | "TB" => 1e12,
        "B" | "b" => 1.0,
        _ => return None,
    };
    Some(n * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_log_max_size(&"20Mi".into()), Ok(20 << 20));
        assert_eq!(parse_log_max_size(&"10m".into()), Ok(10 << 20));
        assert_eq!(parse_log_max_size(&"512Ki".into()), Ok(512 << 10));
        assert_eq!(parse_log_max_size(&"1M".into()), Ok(1_000_000));
        assert_eq!(parse_log_max_size(&Quantity::Number(2.0)), Ok(2 << 20));
        assert_eq!(parse_log_max_size(&"3".into()), Ok(3 << 20));
        for bad in ["", "lots", "1Ki", "-5Mi", "2Ti", "NaN", "1e9"] {
            let err = parse_log_max_size(&bad.into()).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("log max size {bad:?} is invalid")),
                "{err}"
            );
        }
        assert!(parse_log_max_size(&Quantity::Number(0.0)).is_err());
    }

    #[test]
    fn files() {
        assert_eq!(check_log_max_files(1), Ok(1));
        assert_eq!(check_log_max_files(100), Ok(100));
        assert_eq!(check_log_max_files(0), Err(LogLimitError::Files(0)));
        assert_eq!(check_log_max_files(-3), Err(LogLimitError::Files(-3)));
        assert_eq!(check_log_max_files(101), Err(LogLimitError::Files(101)));
        assert_eq!(LogLimit::default().total(), 30 << 20);
    }
}
