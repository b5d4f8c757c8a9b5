//! Human-readable durations, relative times and byte sizes for tables.

/// A duration in whole units, like `4 seconds`, `2 minutes`, `1 hour`, `3 days`.
///
/// Negative durations (clock skew between client and daemon) read as zero.
pub fn duration(millis: i64) -> String {
    let secs = millis.max(0) / 1000;
    let (n, unit) = match secs {
        s if s < 60 => (s, "second"),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s => (s / 86_400, "day"),
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// How long before `now_ms` the instant `at_ms` was, like `5 seconds ago` (both unix milliseconds).
pub fn ago(at_ms: i64, now_ms: i64) -> String {
    format!("{} ago", duration(now_ms.saturating_sub(at_ms)))
}

/// The uptime of a container: from `started_ms` to `ended_ms`, or to `now_ms` while it runs.
/// Empty when it never started.
pub fn uptime(started_ms: Option<i64>, ended_ms: Option<i64>, now_ms: i64) -> String {
    match started_ms {
        Some(start) => duration(ended_ms.unwrap_or(now_ms).saturating_sub(start)),
        None => String::new(),
    }
}

/// A byte count in decimal units with one decimal, like `2.1 MB`; plain bytes below 1 kB.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The first 12 hex digits of a digest, without its `sha256:` prefix.
pub fn short_digest(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, hex)| hex);
    hex.get(..12).unwrap_or(hex)
}

/// Now, in unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_pick_the_largest_whole_unit() {
        assert_eq!(duration(0), "0 seconds");
        assert_eq!(duration(1_000), "1 second");
        assert_eq!(duration(4_999), "4 seconds");
        assert_eq!(duration(59_999), "59 seconds");
        assert_eq!(duration(60_000), "1 minute");
        assert_eq!(duration(150_000), "2 minutes");
        assert_eq!(duration(3_600_000), "1 hour");
        assert_eq!(duration(7_300_000), "2 hours");
        assert_eq!(duration(86_400_000 * 3), "3 days");
        assert_eq!(duration(-5_000), "0 seconds");
    }

    #[test]
    fn relative_times_and_uptime() {
        let now = 1_700_000_000_000;
        assert_eq!(ago(now - 5_000, now), "5 seconds ago");
        assert_eq!(ago(now - 180_000, now), "3 minutes ago");
        assert_eq!(ago(now + 2_000, now), "0 seconds ago");
        assert_eq!(uptime(Some(now - 4_000), None, now), "4 seconds");
        assert_eq!(
            uptime(Some(now - 7_200_000), Some(now - 3_600_000), now),
            "1 hour"
        );
        assert_eq!(uptime(None, None, now), "");
    }

    #[test]
    fn sizes_are_decimal_with_one_digit() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(999), "999 B");
        assert_eq!(size(1_000), "1.0 kB");
        assert_eq!(size(2_100_000), "2.1 MB");
        assert_eq!(size(999_999), "1.0 MB");
        assert_eq!(size(5_368_709_120), "5.4 GB");
    }

    #[test]
    fn digests_are_shortened_to_12_hex() {
        assert_eq!(short_digest("sha256:0123456789abcdef0123"), "0123456789ab");
        assert_eq!(short_digest("abc"), "abc");
    }
}
