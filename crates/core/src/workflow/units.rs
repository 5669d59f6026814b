//! Durations (`500ms`, `30s`, `5m`, `1h`) and byte sizes (`64MiB`, `1MB`, `4096`) as written in
//! workflow files. Pure parsing; the callers attach the file, task and field to errors.

use serde::Deserialize;
use std::time::Duration;

/// A size as written in YAML: a bare integer (bytes) or a string with a unit.
#[derive(Debug, Clone, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(untagged)]
pub enum SizeSpec {
    /// A number of bytes.
    Bytes(u64),
    /// A string such as `64MiB`, `1MB` or `4096`.
    #[schemars(extend("pattern" = r"^\s*[0-9]+\s*(B|KB|kB|MB|GB|KiB|MiB|GiB)?\s*$"))]
    Text(String),
}

/// Parses a duration such as `500ms`, `30s`, `5m`, `1h` or `1h 30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.chars().all(|c| c.is_ascii_digit()) && !text.is_empty() {
        return Err(format!(
            "`{text}` has no unit; write it as `{text}s` or `{text}ms`"
        ));
    }
    humantime::parse_duration(text).map_err(|e| {
        format!("`{text}` is not a duration ({e}); write e.g. `500ms`, `30s`, `5m`, `1h`")
    })
}

/// Parses a byte size: a plain number of bytes, or a number with one of the units
/// `B`, `KB`, `MB`, `GB` (powers of 1000) or `KiB`, `MiB`, `GiB` (powers of 1024).
pub fn parse_size(spec: &SizeSpec) -> Result<u64, String> {
    let text = match spec {
        SizeSpec::Bytes(n) => return Ok(*n),
        SizeSpec::Text(t) => t.trim(),
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let bad = || format!("`{text}` is not a size; write e.g. `64MiB`, `1MB` or `4096` (bytes)");
    let number: u64 = digits.parse().map_err(|_| bad())?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(bad()),
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("30").unwrap_err().contains("no unit"));
        assert!(parse_duration("soon")
            .unwrap_err()
            .contains("not a duration"));
    }

    #[test]
    fn sizes() {
        let t = |s: &str| parse_size(&SizeSpec::Text(s.into()));
        assert_eq!(t("64MiB"), Ok(64 << 20));
        assert_eq!(t("1MB"), Ok(1_000_000));
        assert_eq!(t("4096"), Ok(4096));
        assert_eq!(t("2 KiB"), Ok(2048));
        assert_eq!(parse_size(&SizeSpec::Bytes(7)), Ok(7));
        assert!(t("64 furlongs").is_err());
        assert!(t("MiB").is_err());
        assert!(t("99999999999999GiB").unwrap_err().contains("too large"));
    }
}
