//! Docker's ways of showing sizes and ages.

/// Docker's `HumanSizeWithPrecision(size, 3)`: decimal units, 3 significant digits (`4.26MB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: &[&str] = &["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    // Go's %.3g: three significant digits, no trailing zeros.
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", UNITS[i])
}

/// An RFC 3339 time as Docker's CREATED column shows it ("6 months ago"), `N/A` if unreadable.
pub fn ago(created: Option<&str>, now: std::time::SystemTime) -> String {
    created
        .and_then(|c| humantime::parse_rfc3339_weak(c.split('.').next().unwrap_or(c)).ok())
        .and_then(|t| now.duration_since(t).ok())
        .map(|d| format!("{} ago", crate::container::human_duration(d)))
        .unwrap_or_else(|| "N/A".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_look_like_docker() {
        assert_eq!(human_size(961), "961B");
        assert_eq!(human_size(1240), "1.24kB");
        assert_eq!(human_size(4_260_000), "4.26MB");
        assert_eq!(human_size(2_000_000), "2MB");
        assert_eq!(human_size(187_000_000), "187MB");
    }
}
