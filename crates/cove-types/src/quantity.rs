//! Parsers for cpu (`0.5`, `2`, `"1000m"`) and memory (`128`, `"1Gi"`, `"512Mi"`).

use serde::{Deserialize, Serialize};

/// A number or a string with a unit, as users write cpu and memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Quantity {
    Number(f64),
    Text(String),
}

impl From<&str> for Quantity {
    fn from(s: &str) -> Self {
        Quantity::Text(s.to_string())
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum QuantityError {
    #[error("cpu {0:?} is not a number of cores (like 0.5 or 2) or millicores (like \"500m\")")]
    CpuUnparsable(String),
    #[error("cpu {0} is out of range: it must be between 0.01 and 64 cores")]
    CpuRange(String),
    #[error(
        "memory {0:?} is not a size in MiB (like 128) or with a unit (like \"512Mi\" or \"1Gi\")"
    )]
    MemoryUnparsable(String),
    #[error("memory {0} is out of range: it must be between 8 MiB and 1 TiB")]
    MemoryRange(String),
}

pub const MIN_CPU_MILLIS: u64 = 10;
pub const MAX_CPU_MILLIS: u64 = 64_000;
pub const MIN_MEMORY_MIB: u64 = 8;
pub const MAX_MEMORY_MIB: u64 = 1024 * 1024;

fn display(q: &Quantity) -> String {
    match q {
        Quantity::Number(n) => n.to_string(),
        Quantity::Text(s) => format!("{s:?}"),
    }
}

/// Parses a cpu quantity into millicores.
pub fn parse_cpu_millis(q: &Quantity) -> Result<u64, QuantityError> {
    let millis: f64 = match q {
        Quantity::Number(n) => n * 1000.0,
        Quantity::Text(s) => {
            let t = s.trim();
            let parsed = match t.strip_suffix('m') {
                Some(m) => m.trim().parse::<f64>().ok(),
                None => t.parse::<f64>().ok().map(|c| c * 1000.0),
            };
            parsed.ok_or_else(|| QuantityError::CpuUnparsable(s.clone()))?
        }
    };
    if !millis.is_finite() {
        return Err(QuantityError::CpuUnparsable(display(q)));
    }
    let rounded = millis.round();
    if rounded < MIN_CPU_MILLIS as f64 || rounded > MAX_CPU_MILLIS as f64 {
        return Err(QuantityError::CpuRange(display(q)));
    }
    Ok(rounded as u64)
}

/// Parses a memory quantity into MiB. Plain numbers are MiB; strings take
/// Ki/Mi/Gi/Ti (binary) or K/M/G/T (decimal) suffixes, or bytes without one.
pub fn parse_memory_mib(q: &Quantity) -> Result<u64, QuantityError> {
    let mib: f64 = match q {
        Quantity::Number(n) => *n,
        Quantity::Text(s) => {
            let t = s.trim();
            let split = t
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(t.len());
            let (num, unit) = t.split_at(split);
            let n: f64 = num
                .parse()
                .map_err(|_| QuantityError::MemoryUnparsable(s.clone()))?;
            let factor = match unit.trim() {
                "" => {
                    // A bare number in a string: MiB, like the numeric form.
                    1.0
                }
                "Ki" | "KiB" => 1.0 / 1024.0,
                "Mi" | "MiB" => 1.0,
                "Gi" | "GiB" => 1024.0,
                "Ti" | "TiB" => 1024.0 * 1024.0,
                "K" | "k" | "KB" | "kB" => 1000.0 / 1048576.0,
                "M" | "MB" => 1_000_000.0 / 1048576.0,
                "G" | "GB" => 1e9 / 1048576.0,
                "T" | "TB" => 1e12 / 1048576.0,
                _ => return Err(QuantityError::MemoryUnparsable(s.clone())),
            };
            n * factor
        }
    };
    if !mib.is_finite() {
        return Err(QuantityError::MemoryUnparsable(display(q)));
    }
    let rounded = mib.ceil();
    if rounded < MIN_MEMORY_MIB as f64 || rounded > MAX_MEMORY_MIB as f64 {
        return Err(QuantityError::MemoryRange(display(q)));
    }
    Ok(rounded as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_forms() {
        assert_eq!(parse_cpu_millis(&Quantity::Number(0.5)), Ok(500));
        assert_eq!(parse_cpu_millis(&Quantity::Number(2.0)), Ok(2000));
        assert_eq!(parse_cpu_millis(&"1000m".into()), Ok(1000));
        assert_eq!(parse_cpu_millis(&"0.25".into()), Ok(250));
        assert!(matches!(
            parse_cpu_millis(&"lots".into()),
            Err(QuantityError::CpuUnparsable(_))
        ));
        assert!(matches!(
            parse_cpu_millis(&Quantity::Number(0.0)),
            Err(QuantityError::CpuRange(_))
        ));
        assert!(matches!(
            parse_cpu_millis(&Quantity::Number(-1.0)),
            Err(QuantityError::CpuRange(_))
        ));
        assert!(matches!(
            parse_cpu_millis(&"1000000".into()),
            Err(QuantityError::CpuRange(_))
        ));
        assert!(parse_cpu_millis(&"NaN".into()).is_err());
    }

    #[test]
    fn memory_forms() {
        assert_eq!(parse_memory_mib(&Quantity::Number(128.0)), Ok(128));
        assert_eq!(parse_memory_mib(&"1Gi".into()), Ok(1024));
        assert_eq!(parse_memory_mib(&"512Mi".into()), Ok(512));
        assert_eq!(parse_memory_mib(&"64".into()), Ok(64));
        assert!(matches!(
            parse_memory_mib(&"12 parsecs".into()),
            Err(QuantityError::MemoryUnparsable(_))
        ));
        assert!(matches!(
            parse_memory_mib(&Quantity::Number(1.0)),
            Err(QuantityError::MemoryRange(_))
        ));
        assert!(matches!(
            parse_memory_mib(&"9Ti".into()),
            Err(QuantityError::MemoryRange(_))
        ));
        assert!(parse_memory_mib(&"".into()).is_err());
    }
}
