//! Go-style durations (`200ms`, `1m30s`, `1.5h`) as the reference's YAML writes them.

use serde::{Deserialize, Deserializer, Serializer};
use std::time::Duration;

/// Parses a Go duration string: a sequence of decimal numbers, each with a unit (`ns`, `us`,
/// `µs`, `ms`, `s`, `m`, `h`), optionally signed. `0` alone is allowed. Negative durations are
/// rejected (no parameter takes one).
///
/// # Errors
/// A message saying what was expected.
///
/// ```
/// use pointsman::config::parse_go_duration;
/// use std::time::Duration;
/// assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert_eq!(parse_go_duration("200ms"), Ok(Duration::from_millis(200)));
/// assert!(parse_go_duration("10").is_err());
/// ```
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let expected = || format!("expected a duration such as \"200ms\" or \"1m30s\", got {s:?}");
    let mut rest = s.trim();
    if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    } else if rest.starts_with('-') {
        return Err(format!("expected a non-negative duration, got {s:?}"));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(expected());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." {
            return Err(expected());
        }
        let value: f64 = num.parse().map_err(|_| expected())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let nanos_per = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(expected()),
        };
        total += value * nanos_per;
        rest = tail;
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(format!("duration {s:?} is out of range"));
    }
    Ok(Duration::from_nanos(total.round() as u64))
}

/// Formats a duration the way Go prints short ones (`200ms`, `2s`, `1m30s`).
pub fn format_go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos % 1_000_000_000 == 0 {
        let secs = d.as_secs();
        let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
        let mut out = String::new();
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if m > 0 || (h > 0 && s > 0) {
            out.push_str(&format!("{m}m"));
        }
        if s > 0 || out.is_empty() {
            out.push_str(&format!("{s}s"));
        }
        return out;
    }
    if nanos % 1_000_000 == 0 {
        return format!("{}ms", nanos / 1_000_000);
    }
    if nanos % 1_000 == 0 {
        return format!("{}us", nanos / 1_000);
    }
    format!("{nanos}ns")
}

/// Serde adapter for `Duration` fields written as Go duration strings (`#[serde(with = …)]`).
pub mod go_duration {
    use super::*;

    /// Deserialises a Go duration string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse_go_duration(&s).map_err(serde::de::Error::custom)
    }

    /// Serialises as a Go duration string.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_go_duration(*d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_forms() {
        let cases = [
            ("0", 0u64),
            ("1ns", 1),
            ("1.5s", 1_500_000_000),
            ("1h2m3s", 3_723_000_000_000),
            ("250us", 250_000),
            ("+5ms", 5_000_000),
        ];
        for (s, n) in cases {
            assert_eq!(parse_go_duration(s), Ok(Duration::from_nanos(n)), "{s}");
        }
        for bad in ["", "5", "ms", "1x", "-1s", "1..2s", "."] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for n in [
            0u64,
            200_000_000,
            2_000_000_000,
            90_000_000_000,
            3_600_000_000_000,
            1_500,
            7,
        ] {
            let d = Duration::from_nanos(n);
            assert_eq!(parse_go_duration(&format_go_duration(d)), Ok(d));
        }
    }
}
