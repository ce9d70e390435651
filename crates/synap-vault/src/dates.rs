//! Dates in frontmatter, as people write them: RFC 3339, `YYYY-MM-DD HH:MM[:SS]`,
//! `YYYY-MM-DD`, `YYYY/MM/DD`, `DD.MM.YYYY`, and Unix seconds or milliseconds.
//! Times without an offset are read as UTC. Stored back as RFC 3339 (UTC).

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use serde_json::Value;

/// Numbers at or above this are Unix milliseconds, below it Unix seconds
/// (1e11 seconds is the year 5138; 1e11 ms is 1973).
const UNIX_MILLIS_FROM: i64 = 100_000_000_000;

/// A frontmatter value read as a moment, or `None` when it is not a date.
pub fn parse(value: &Value) -> Option<Timestamp> {
    match value {
        Value::String(text) => parse_text(text.trim()),
        Value::Number(number) => {
            let n = number.as_i64()?;
            if n >= UNIX_MILLIS_FROM {
                Timestamp::from_millisecond(n).ok()
            } else {
                Timestamp::from_second(n).ok()
            }
        }
        _ => None,
    }
}

fn parse_text(text: &str) -> Option<Timestamp> {
    if text.is_empty() {
        return None;
    }
    if let Ok(at) = text.parse::<Timestamp>() {
        return Some(at);
    }
    // `2024-03-01 14:30` and `2024-03-01T14:30:00` without an offset.
    if let Ok(at) = text.replacen(' ', "T", 1).parse::<DateTime>() {
        return utc(&at.to_string());
    }
    let date = text
        .parse::<Date>()
        .ok()
        .or_else(|| date_from_parts(text, '/', [0, 1, 2]))
        .or_else(|| date_from_parts(text, '.', [2, 1, 0]))?;
    utc(&date.to_string())
}

/// A civil date or date-time (`2024-03-01`, `2024-03-01T14:30:00`) read as UTC.
fn utc(civil: &str) -> Option<Timestamp> {
    let full = if civil.contains('T') {
        format!("{civil}Z")
    } else {
        format!("{civil}T00:00:00Z")
    };
    full.parse().ok()
}

/// `YYYY/MM/DD` (`order` = positions of year, month, day) or `DD.MM.YYYY`.
fn date_from_parts(text: &str, separator: char, order: [usize; 3]) -> Option<Date> {
    let parts: Vec<&str> = text.split(separator).collect();
    if parts.len() != 3 {
        return None;
    }
    let year: i16 = parts[order[0]].parse().ok()?;
    let month: i8 = parts[order[1]].parse().ok()?;
    let day: i8 = parts[order[2]].parse().ok()?;
    if parts[order[0]].len() != 4 {
        return None;
    }
    Date::new(year, month, day).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(text: &str) -> Option<String> {
        parse(&json!(text)).map(|t| t.to_string())
    }

    #[test]
    fn common_formats_are_read_as_utc() {
        assert_eq!(
            at("2024-03-01T14:30:00+02:00").unwrap(),
            "2024-03-01T12:30:00Z"
        );
        assert_eq!(at("2024-03-01T14:30:00Z").unwrap(), "2024-03-01T14:30:00Z");
        assert_eq!(at("2024-03-01 14:30").unwrap(), "2024-03-01T14:30:00Z");
        assert_eq!(at("2024-03-01T14:30:05").unwrap(), "2024-03-01T14:30:05Z");
        assert_eq!(at("2024-03-01").unwrap(), "2024-03-01T00:00:00Z");
        assert_eq!(at("2024/03/01").unwrap(), "2024-03-01T00:00:00Z");
        assert_eq!(at("01.03.2024").unwrap(), "2024-03-01T00:00:00Z");
        assert_eq!(
            parse(&json!(1_709_302_200)).unwrap().to_string(),
            "2024-03-01T14:10:00Z"
        );
        assert_eq!(
            parse(&json!(1_709_302_200_000_i64)).unwrap().to_string(),
            "2024-03-01T14:10:00Z"
        );
    }

    #[test]
    fn other_text_is_not_a_date() {
        assert_eq!(at("last tuesday"), None);
        assert_eq!(at("2024-13-01"), None);
        assert_eq!(at("1/2/24"), None);
        assert_eq!(parse(&json!(true)), None);
    }
}
