//! Durations on the command line: a number and a unit, as in `250ms`,
//! `1s`, `1.5s`, `2m` or `1h`.

use std::time::Duration;

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a duration; write a number and a unit: ms, s, m or h (e.g. 250ms, 1s, 2m)")]
pub struct DurationError(String);

/// Parses `<number><unit>` with unit `ms`, `s`, `m` or `h`; the number may
/// have a fractional part (`1.5s`). Zero is allowed; callers that need a
/// positive duration check it themselves.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let err = || DurationError(text.to_owned());
    let s = text.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(err)?;
    let (number, unit) = s.split_at(split);
    let per_unit = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(err()),
    };
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(err());
    }
    let value: f64 = number.parse().map_err(|_| err())?;
    Duration::try_from_secs_f64(value * per_unit).map_err(|_| err())
}

/// `1.5s`, `250ms`, `2m`: the shortest spelling that [`parse_duration`]
/// reads back.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{}ms", trim_float(ms))
    } else if ms < 60_000.0 || ms % 60_000.0 != 0.0 {
        format!("{}s", trim_float(ms / 1000.0))
    } else {
        format!("{}m", trim_float(ms / 60_000.0))
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_the_documented_spellings() {
        assert_eq!(parse_duration("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        for bad in [
            "",
            "1",
            "s",
            "1x",
            "-1s",
            "1.s",
            ".5s",
            "1e3s",
            "1 2s",
            "1.2.3s",
            "99999999999999999999h",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.to_string().contains("ms, s, m or h"), "{bad}: {err}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for s in ["250ms", "1s", "1.5s", "2m", "90s"] {
            let d = parse_duration(s).unwrap();
            assert_eq!(format_duration(d), s);
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
    }
}
