//! Cron expressions: the classic five fields (minute, hour, day of month, month,
//! day of week) evaluated in UTC, with `*`, lists `a,b`, ranges `a-b`, steps
//! `*/n` and `a-b/n`, and the shortcuts `@hourly`, `@daily`, `@weekly`,
//! `@monthly`, `@yearly`. As in Vixie cron, when both day fields are restricted a
//! day matches if either does.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// Longest cron expression accepted.
pub const CRON_CHARS_MAX: usize = 200;
/// How far ahead `next_after` looks before deciding an expression never fires
/// (e.g. `0 0 30 2 *`): a little over four years covers every leap-day rule.
pub const SEARCH_DAYS_MAX: i64 = 4 * 366 + 1;

/// A parsed cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    text: String,
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    days_restricted: bool,
    weekdays_restricted: bool,
}

/// Why an expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron expression {expression:?}: {reason}")]
pub struct CronError {
    pub expression: String,
    pub reason: String,
}

impl Cron {
    pub fn parse(text: &str) -> Result<Cron, CronError> {
        let error = |reason: String| CronError {
            expression: text.to_string(),
            reason,
        };
        if text.chars().count() > CRON_CHARS_MAX {
            return Err(error(format!("longer than {CRON_CHARS_MAX} characters")));
        }
        let expanded = match text.trim() {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(error(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
                fields.len()
            )));
        }
        let field = |index: usize, name: &str, low: u32, high: u32| {
            parse_field(fields[index], low, high)
                .map_err(|reason| error(format!("{name}: {reason}")))
        };
        let minutes = field(0, "minute", 0, 59)?;
        let hours = field(1, "hour", 0, 23)?;
        let days = field(2, "day of month", 1, 31)?;
        let months = field(3, "month", 1, 12)?;
        // 7 is Sunday too.
        let mut weekdays = field(4, "day of week", 0, 7)?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        Ok(Cron {
            text: text.to_string(),
            minutes,
            hours: hours as u32,
            days: days as u32,
            months: months as u16,
            weekdays: (weekdays & 0x7f) as u8,
            days_restricted: fields[2] != "*",
            weekdays_restricted: fields[4] != "*",
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn day_matches(&self, date: jiff::civil::Date) -> bool {
        let day = self.days & (1 << date.day()) != 0;
        let weekday = self.weekdays & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => day || weekday,
            (true, false) => day,
            (false, true) => weekday,
            (false, false) => true,
        }
    }

    /// The first firing time strictly after `after` (whole minutes, UTC), or
    /// `None` when the expression never fires within [`SEARCH_DAYS_MAX`] days.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let start = TimeZone::UTC.to_datetime(after);
        // The next whole minute after `after`.
        let mut at = start
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?
            .checked_add(1.minute())
            .ok()?;
        let mut date = at.date();
        for _ in 0..=SEARCH_DAYS_MAX {
            if self.months & (1 << date.month()) != 0 && self.day_matches(date) {
                let (from_hour, from_minute) = if date == at.date() {
                    (at.hour(), at.minute())
                } else {
                    (0, 0)
                };
                for hour in from_hour..24 {
                    if self.hours & (1 << hour) == 0 {
                        continue;
                    }
                    let first = if hour == from_hour { from_minute } else { 0 };
                    for minute in first..60 {
                        if self.minutes & (1 << minute) != 0 {
                            let found = DateTime::new(
                                date.year(),
                                date.month(),
                                date.day(),
                                hour,
                                minute,
                                0,
                                0,
                            )
                            .ok()?;
                            return TimeZone::UTC.to_timestamp(found).ok();
                        }
                    }
                }
            }
            date = date.tomorrow().ok()?;
            at = date.to_datetime(jiff::civil::time(0, 0, 0, 0));
        }
        None
    }
}

/// One field as a bit set of allowed values.
fn parse_field(text: &str, low: u32, high: u32) -> Result<u64, String> {
    let mut set = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .map_err(|_| format!("step {step:?} is not a number"))?;
                if step == 0 {
                    return Err("a step must be at least 1".into());
                }
                (range, step)
            }
            None => (part, 1),
        };
        let (from, to) = if range == "*" {
            (low, high)
        } else if let Some((a, b)) = range.split_once('-') {
            (number(a, low, high)?, number(b, low, high)?)
        } else {
            let value = number(range, low, high)?;
            // `5/15` means from 5 to the end in steps of 15.
            (value, if part.contains('/') { high } else { value })
        };
        if from > to {
            return Err(format!("range {from}-{to} runs backwards"));
        }
        let mut value = from;
        while value <= to {
            set |= 1 << value;
            value += step;
        }
    }
    Ok(set)
}

fn number(text: &str, low: u32, high: u32) -> Result<u32, String> {
    let value: u32 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if !(low..=high).contains(&value) {
        return Err(format!("{value} is outside {low}-{high}"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn next_firing_times() {
        let every_5 = Cron::parse("*/5 * * * *").unwrap();
        assert_eq!(
            every_5.next_after(at("2026-01-01T10:02:30Z")),
            Some(at("2026-01-01T10:05:00Z"))
        );
        assert_eq!(
            every_5.next_after(at("2026-01-01T10:05:00Z")),
            Some(at("2026-01-01T10:10:00Z"))
        );
        let daily = Cron::parse("@daily").unwrap();
        assert_eq!(
            daily.next_after(at("2026-01-31T23:59:59Z")),
            Some(at("2026-02-01T00:00:00Z"))
        );
        let weekdays_9 = Cron::parse("0 9 * * 1-5").unwrap();
        // 2026-01-03 is a Saturday: the next weekday is Monday the 5th.
        assert_eq!(
            weekdays_9.next_after(at("2026-01-03T08:00:00Z")),
            Some(at("2026-01-05T09:00:00Z"))
        );
        let leap = Cron::parse("0 0 29 2 *").unwrap();
        assert_eq!(
            leap.next_after(at("2026-03-01T00:00:00Z")),
            Some(at("2028-02-29T00:00:00Z"))
        );
        assert_eq!(
            Cron::parse("0 0 30 2 *")
                .unwrap()
                .next_after(at("2026-01-01T00:00:00Z")),
            None
        );
    }

    #[test]
    fn bad_expressions_name_the_field() {
        let error = Cron::parse("61 * * * *").unwrap_err();
        assert!(error.reason.contains("minute"), "{error}");
        assert!(
            Cron::parse("* * *")
                .unwrap_err()
                .reason
                .contains("5 fields")
        );
        assert!(Cron::parse("*/0 * * * *").is_err());
        assert!(Cron::parse("5-1 * * * *").is_err());
    }
}
