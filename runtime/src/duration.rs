//! Durations as flags and config files write them: one number and one unit
//! (`30s`, `500ms`, `2m`, `1h`).

use std::time::Duration;

/// A duration that a flag or `runtime-config.toml` cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not digits followed by a unit.
    #[error("{0:?} is not a duration like 30s, 500ms or 2m")]
    Malformed(String),
    /// Digits followed by something other than `ms`, `s`, `m` or `h`.
    #[error("{text:?}: unknown unit {unit:?} (use ms, s, m or h)")]
    UnknownUnit {
        /// The whole duration, trimmed.
        text: String,
        /// What stood where the unit goes.
        unit: String,
    },
    /// More than a `Duration` holds.
    #[error("{0:?} is too long")]
    TooLong(String),
}

/// Parses `30s`, `500ms`, `2m` or `1h` (a bare number is seconds).
///
/// Only this one-number, one-unit form is accepted (not `humantime`'s
/// `1h 30m` or `5 days`), so that every duration in a config reads the same
/// way in trib and in the docs; `humantime` does the arithmetic, checked
/// against overflow.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    let (number, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, ""), |i| s.split_at(i));
    if number.is_empty() {
        return Err(DurationError::Malformed(s.to_owned()));
    }
    let unit = match unit.trim() {
        "" => "s",
        unit @ ("ms" | "s" | "m" | "h") => unit,
        other => {
            return Err(DurationError::UnknownUnit {
                text: s.to_owned(),
                unit: other.to_owned(),
            });
        }
    };
    humantime::parse_duration(&format!("{number}{unit}")).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => DurationError::TooLong(s.to_owned()),
        _ => DurationError::Malformed(s.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration(" 5 s "), Ok(Duration::from_secs(5)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 days").is_err());
        assert!(parse_duration("1h30m").is_err());
        assert!(parse_duration("1.5h").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn duration_errors_say_what_is_wrong() {
        let message = |s: &str| parse_duration(s).expect_err(s).to_string();
        assert_eq!(
            message("soon"),
            "\"soon\" is not a duration like 30s, 500ms or 2m"
        );
        assert_eq!(
            message("5 days"),
            "\"5 days\": unknown unit \"days\" (use ms, s, m or h)"
        );
        // Overflow is refused, never wrapped (found by tests/fuzz).
        for s in [
            "18446744073709551615m",
            "99999999999999999999",
            "307445734561825861h",
        ] {
            assert_eq!(message(s), format!("{s:?} is too long"));
        }
    }
}
