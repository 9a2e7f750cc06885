//! Durations as the plan writes them: `90s`, `2m`, `1h30m`, `1500ms`.

use std::time::Duration;

/// The shortest duration a plan may set.
pub const MIN: Duration = Duration::from_secs(1);
/// The longest duration a plan may set.
pub const MAX: Duration = Duration::from_secs(24 * 3600);

/// Parses a sequence of `<integer><unit>` pairs, unit one of `ms`, `s`, `m`, `h`.
///
/// Errors: a text that is not such a sequence (the message says what was expected).
/// The 1s..24h range is checked by the caller, which knows the span to point at.
pub fn parse(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("expected a number at `{rest}`"));
        }
        let value: u64 = rest[..digits].parse().map_err(|_| format!("number too large in `{s}`"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" => Duration::from_secs(value.saturating_mul(60)),
            "h" => Duration::from_secs(value.saturating_mul(3600)),
            "" => return Err(format!("missing unit after `{value}` (use ms, s, m or h)")),
            other => return Err(format!("unknown unit `{other}` (use ms, s, m or h)")),
        };
        total = total.saturating_add(part);
    }
    Ok(total)
}

/// Formats a duration the way a plan would write it (`1h30m`, `45s`, `1500ms`).
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [("h", 3600), ("m", 60)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    if secs > 0 || out.is_empty() {
        out.push_str(&format!("{secs}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1500ms"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn refuses_garbage() {
        assert!(parse("").is_err());
        assert!(parse("10").unwrap_err().contains("missing unit"));
        assert!(parse("5d").unwrap_err().contains("unknown unit `d`"));
        assert!(parse("s").unwrap_err().contains("expected a number"));
    }

    #[test]
    fn formats_round_trip() {
        for text in ["45s", "1h30m", "1500ms", "2m", "24h"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
