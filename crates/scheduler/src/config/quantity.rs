//! Kubernetes resource quantities (`10Gi`, `500M`, `1000`), as `flowControl` writes limits.

use serde::{Deserialize, Serialize};

/// A quantity as written: a number or a string such as `"10Gi"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Quantity {
    /// A plain number.
    Number(u64),
    /// A string with an optional suffix.
    Text(String),
}

impl Quantity {
    /// The value as an integer.
    ///
    /// # Errors
    /// What was expected, when the text is not a quantity.
    pub fn value(&self) -> Result<u64, String> {
        match self {
            Quantity::Number(n) => Ok(*n),
            Quantity::Text(s) => parse_quantity(s),
        }
    }
}

/// Parses a non-negative Kubernetes quantity: a decimal number with an optional binary
/// (`Ki Mi Gi Ti Pi Ei`) or decimal (`k M G T P E`) suffix; the result is rounded up.
///
/// # Errors
/// A message saying what was expected.
///
/// ```
/// assert_eq!(pointsman::config::parse_quantity("10Gi"), Ok(10 * 1024 * 1024 * 1024));
/// assert_eq!(pointsman::config::parse_quantity("1.5k"), Ok(1500));
/// ```
pub fn parse_quantity(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let expected = || format!("expected a quantity such as \"500\", \"10Gi\" or \"1G\", got {s:?}");
    if num.is_empty() {
        return Err(expected());
    }
    let value: f64 = num.parse().map_err(|_| expected())?;
    let mult: f64 = match suffix {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        _ => return Err(expected()),
    };
    let v = (value * mult).ceil();
    if !v.is_finite() || v > u64::MAX as f64 {
        return Err(format!("quantity {s:?} is out of range"));
    }
    Ok(v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("0"), Ok(0));
        assert_eq!(parse_quantity("1Ki"), Ok(1024));
        assert_eq!(parse_quantity("2M"), Ok(2_000_000));
        assert!(parse_quantity("1X").is_err());
        assert!(parse_quantity("Gi").is_err());
        assert!(parse_quantity("-1").is_err());
        assert_eq!(Quantity::Number(5).value(), Ok(5));
    }
}
