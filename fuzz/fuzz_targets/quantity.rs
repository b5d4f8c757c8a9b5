//! cpu and memory quantities (`crates/cove-types/src/quantity.rs`), as numbers and as text:
//! the parsers never panic, what they accept is within the documented limits, and the
//! canonical text of an accepted value (`<m>m`, `<n>Mi`) parses back to the same value.
#![no_main]

use cove_types::quantity::{MAX_CPU_MILLIS, MAX_MEMORY_MIB, MIN_CPU_MILLIS, MIN_MEMORY_MIB};
use cove_types::{parse_cpu_millis, parse_memory_mib, Quantity};
use libfuzzer_sys::fuzz_target;

fn check(q: &Quantity) {
    if let Ok(m) = parse_cpu_millis(q) {
        assert!(
            (MIN_CPU_MILLIS..=MAX_CPU_MILLIS).contains(&m),
            "cpu {q:?} -> {m} millicores, out of range"
        );
        let text = Quantity::Text(format!("{m}m"));
        assert_eq!(parse_cpu_millis(&text), Ok(m), "cpu {q:?} -> {m}");
    }
    if let Ok(m) = parse_memory_mib(q) {
        assert!(
            (MIN_MEMORY_MIB..=MAX_MEMORY_MIB).contains(&m),
            "memory {q:?} -> {m} MiB, out of range"
        );
        let text = Quantity::Text(format!("{m}Mi"));
        assert_eq!(parse_memory_mib(&text), Ok(m), "memory {q:?} -> {m}");
        assert_eq!(parse_memory_mib(&Quantity::Number(m as f64)), Ok(m));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some(bits) = data.get(..8) {
        let n = f64::from_le_bytes(bits.try_into().expect("8 bytes"));
        check(&Quantity::Number(n));
    }
    if let Ok(s) = std::str::from_utf8(data) {
        check(&Quantity::Text(s.to_string()));
    }
});
