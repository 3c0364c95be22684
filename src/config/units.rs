//! Durations (`90s`, `1h 30m`, `2w`) and sizes (`500`, `10K`, `5MiB`) as written in the file.

use std::time::Duration;

/// Why a duration or size was refused; the caller adds the place.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error(
        "invalid duration {0:?}: write a whole number and a unit (s, m, h, d, w), as in 90s, 10m, 7d or 1h 30m"
    )]
    Duration(String),
    #[error("a duration must be more than zero")]
    ZeroDuration,
    #[error("duration {0:?} is too large")]
    DurationTooLarge(String),
    #[error(
        "invalid size {0:?}: write a whole number of bytes, optionally with K, M or G, as in 500, 10K, 5M"
    )]
    Size(String),
    #[error("size {0:?} is too large")]
    SizeTooLarge(String),
}

/// Parse `90s`, `10m`, `1h`, `36h`, `7d`, `2w`, and sums of them (`1h 30m`, `1h30m`).
/// Whitespace between the number and its unit is allowed. Zero is refused: every duration in the
/// file is an interval or an age, and zero there is a mistake (a busy loop, a condition that
/// holds for every or no message).
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let bad = || UnitError::Duration(text.to_owned());
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| UnitError::DurationTooLarge(text.to_owned()))?;
        rest = rest[digits..].trim_start();
        let unit_len = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let seconds = match &rest[..unit_len] {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            _ => return Err(bad()),
        };
        rest = rest[unit_len..].trim_start();
        total = number
            .checked_mul(seconds)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| UnitError::DurationTooLarge(text.to_owned()))?;
    }
    if total == 0 {
        return Err(UnitError::ZeroDuration);
    }
    Ok(Duration::from_secs(total))
}

/// Parse `500`, `10K`, `5M`, `1G`, `2T` (powers of 1024). `K`, `KB`, `KiB` (any case) are the
/// same unit; a trailing `B` alone means bytes. Zero is allowed (`size: { over: 0 }`).
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let bad = || UnitError::Size(text.to_owned());
    let trimmed = text.trim();
    let digits = trimmed.len()
        - trimmed
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .len();
    if digits == 0 {
        return Err(bad());
    }
    let number: u64 = trimmed[..digits]
        .parse()
        .map_err(|_| UnitError::SizeTooLarge(text.to_owned()))?;
    let unit = trimmed[digits..].trim_start().to_ascii_lowercase();
    let shift = match unit.as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad()),
    };
    number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| UnitError::SizeTooLarge(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = [
            ("90s", 90),
            ("10m", 600),
            ("1h", 3600),
            ("36h", 129_600),
            ("7d", 604_800),
            ("2w", 1_209_600),
            ("1h 30m", 5400),
            ("1h30m", 5400),
            (" 1 h  30 m ", 5400),
            ("1d 1s", 86_401),
            ("0h 5m", 300),
        ];
        for (text, secs) in ok {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text:?}"
            );
        }
        let bad = [
            "",
            "90",
            "10x",
            "h",
            "1.5h",
            "-1h",
            "1H",
            "10 minutes",
            "1h,30m",
            "m10",
        ];
        for text in bad {
            assert_eq!(
                parse_duration(text),
                Err(UnitError::Duration(text.to_owned())),
                "{text:?}"
            );
        }
        assert_eq!(parse_duration("0s"), Err(UnitError::ZeroDuration));
        assert_eq!(parse_duration("0m 0s"), Err(UnitError::ZeroDuration));
        assert!(matches!(
            parse_duration("99999999999999999999s"),
            Err(UnitError::DurationTooLarge(_))
        ));
        assert!(matches!(
            parse_duration("18446744073709551615w"),
            Err(UnitError::DurationTooLarge(_))
        ));
    }

    #[test]
    fn sizes() {
        let ok = [
            ("500", 500),
            ("0", 0),
            ("500B", 500),
            ("10K", 10_240),
            ("10k", 10_240),
            ("10KB", 10_240),
            ("10KiB", 10_240),
            ("10 kib", 10_240),
            ("5M", 5 * 1024 * 1024),
            ("5MB", 5 * 1024 * 1024),
            ("1G", 1 << 30),
            ("1GiB", 1 << 30),
            ("2T", 2 << 40),
        ];
        for (text, bytes) in ok {
            assert_eq!(parse_size(text), Ok(bytes), "{text:?}");
        }
        for text in ["", "K", "1.5M", "10X", "-1", "10 K B", "ten"] {
            assert_eq!(
                parse_size(text),
                Err(UnitError::Size(text.to_owned())),
                "{text:?}"
            );
        }
        assert!(matches!(
            parse_size("99999999999G"),
            Err(UnitError::SizeTooLarge(_))
        ));
    }
}
