//! Dates and times in a thought ("tomorrow at 3pm", "on friday", "in 3 days",
//! "Dec 3", "2026-12-01", "at 15:00"), resolved in the user's time zone.
//!
//! The text is read as lower-cased words; the first expression of each kind wins (a
//! day, a time of day, a "in N hours" offset). Civil arithmetic is done on dates, so
//! "in 3 days at 15:00" is 15:00 on the wall clock even across a DST change; a time
//! that falls into a DST gap moves forward, one in a fold takes the earlier instant
//! (jiff's "compatible" rule, as RFC 5545 does).
//!
//! Conventions, all deliberate:
//! - a weekday ("friday", "on friday", "this friday") is the next such day, today
//!   included; "next friday" is the next one after today;
//! - a month and day without a year ("Dec 3") is the next such date, today included;
//! - a time without a day is today if still ahead, else tomorrow;
//! - a bare hour after "at" from 1 to [`BARE_HOUR_AFTERNOON_MAX`] is read as the
//!   afternoon ("call mom at 5" → 17:00), later ones as written ("at 9" → 09:00);
//! - "tonight" is today at [`TONIGHT`] and makes "at 9" mean 21:00;
//! - a day without a time is given the caller's default time of day.

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, ToSpan};

/// "tonight" without a time.
pub const TONIGHT: Time = Time::constant(20, 0, 0, 0);
/// "morning", "afternoon", "evening" without a time.
pub const MORNING: Time = Time::constant(9, 0, 0, 0);
pub const AFTERNOON: Time = Time::constant(15, 0, 0, 0);
pub const EVENING: Time = Time::constant(18, 0, 0, 0);
/// "noon".
pub const NOON: Time = Time::constant(12, 0, 0, 0);
/// A bare "at N" with N in 1..=this is taken as N pm.
pub const BARE_HOUR_AFTERNOON_MAX: i8 = 6;
/// Largest N in "in N days" (and its other units) that is taken as a date; larger
/// numbers are not dates but quantities ("in 5000 days" is not a due date).
pub const RELATIVE_AMOUNT_MAX: i64 = 999;
/// Words read from the text; a due date is expected near the start of a thought.
pub const WORDS_SCANNED_MAX: usize = 2_000;

/// What the text said about when.
#[derive(Debug, Clone, Default)]
pub struct When {
    pub date: Option<Date>,
    pub time: Option<Time>,
    /// "in 2 hours": an exact instant, used when no day or time is given.
    pub offset: Option<Span>,
}

impl When {
    pub fn is_empty(&self) -> bool {
        self.date.is_none() && self.time.is_none() && self.offset.is_none()
    }

    /// The instant meant, in `tz`, with `default_time` for a day without a time.
    pub fn resolve(&self, now: Timestamp, tz: &TimeZone, default_time: Time) -> Option<Timestamp> {
        let zoned_now = now.to_zoned_datetime(tz.clone());
        let today = zoned_now.date();
        let datetime = match (self.date, self.time) {
            (Some(date), Some(time)) => date.to_datetime(time),
            (Some(date), None) => date.to_datetime(default_time),
            (None, Some(time)) => {
                let candidate = today.to_datetime(time);
                if candidate > zoned_now.datetime() {
                    candidate
                } else {
                    today.tomorrow().ok()?.to_datetime(time)
                }
            }
            (None, None) => {
                return self
                    .offset
                    .and_then(|span| zoned_now.checked_add(span).ok())
                    .map(|z| z.timestamp());
            }
        };
        civil_to_timestamp(datetime, tz)
    }
}

fn civil_to_timestamp(datetime: DateTime, tz: &TimeZone) -> Option<Timestamp> {
    datetime
        .to_zoned_datetime(tz.clone())
        .ok()
        .map(|z| z.timestamp())
}

/// Splits text into lower-cased words with surrounding punctuation removed; inner
/// punctuation stays, so "15:00", "3:30pm" and "2026-12-01" survive.
pub fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .take(WORDS_SCANNED_MAX)
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Reads the day, the time of day and a relative offset from `words`.
pub fn parse(words: &[String], now: Timestamp, tz: &TimeZone) -> When {
    let today = now.to_zoned_datetime(tz.clone()).date();
    let mut when = When::default();
    let mut part_of_day: Option<Time> = None;
    let mut evening_hint = false;
    let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");

    let mut i = 0;
    while i < words.len() {
        let word = w(i);
        let mut consumed = 1;
        match word {
            "today" => set(&mut when.date, Some(today)),
            "tonight" => {
                set(&mut when.date, Some(today));
                part_of_day.get_or_insert(TONIGHT);
                evening_hint = true;
            }
            "tomorrow" | "tmrw" | "tmr" => {
                let day_after = i >= 2 && w(i - 2) == "day" && w(i - 1) == "after";
                let offset = if day_after { 2 } else { 1 };
                set(&mut when.date, today.checked_add(offset.days()).ok());
            }
            "morning" => {
                part_of_day.get_or_insert(MORNING);
            }
            "afternoon" => {
                part_of_day.get_or_insert(AFTERNOON);
            }
            "evening" => {
                part_of_day.get_or_insert(EVENING);
                evening_hint = true;
            }
            "noon" | "midday" => set(&mut when.time, Some(NOON)),
            "in" => {
                if let Some((amount, unit)) = amount(w(i + 1)).zip(unit(w(i + 2))) {
                    consumed = 3;
                    apply_relative(&mut when, today, amount, unit);
                }
            }
            "at" | "@" => {
                if let Some(hour) = bare_hour(w(i + 1))
                    && time_of(w(i + 1), w(i + 2)).is_none()
                {
                    consumed = 2;
                    set(&mut when.time, Time::new(hour, 0, 0, 0).ok());
                }
            }
            _ => {
                if let Some(weekday) = weekday(word, w(i.wrapping_sub(1))) {
                    let strictly_after = i > 0 && w(i - 1) == "next";
                    set(&mut when.date, next_weekday(today, weekday, strictly_after));
                } else if let Ok(date) = word.parse::<Date>()
                    && word.len() == 10
                {
                    set(&mut when.date, Some(date));
                } else if let Some((date, used)) = month_day(words, i, today) {
                    set(&mut when.date, Some(date));
                    consumed = used;
                } else if let Some((time, used)) = time_of(word, w(i + 1)) {
                    set(&mut when.time, Some(time));
                    consumed = used;
                }
            }
        }
        i += consumed;
    }

    // "tonight at 9", "in the evening at 7": a bare morning hour means pm.
    if let Some(time) = when.time
        && evening_hint
        && (1..12).contains(&time.hour())
        && time.minute() == 0
        && time.hour() > BARE_HOUR_AFTERNOON_MAX
    {
        when.time = time.checked_add(12.hours()).ok();
    }
    if when.time.is_none() && (when.date.is_some() || part_of_day.is_some()) {
        when.time = part_of_day;
    }
    when
}

fn set<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

#[derive(Clone, Copy)]
enum Unit {
    Minute,
    Hour,
    Day,
    Week,
    Month,
}

fn apply_relative(when: &mut When, today: Date, amount: i64, unit: Unit) {
    match unit {
        Unit::Minute => set(&mut when.offset, Some(amount.minutes())),
        Unit::Hour => set(&mut when.offset, Some(amount.hours())),
        Unit::Day => set(&mut when.date, today.checked_add(amount.days()).ok()),
        Unit::Week => set(&mut when.date, today.checked_add(amount.weeks()).ok()),
        Unit::Month => set(&mut when.date, today.checked_add(amount.months()).ok()),
    }
}

fn amount(word: &str) -> Option<i64> {
    let n = match word {
        "a" | "an" | "one" => 1,
        "two" | "couple" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        "ten" => 10,
        _ if word.len() <= 4 && word.bytes().all(|b| b.is_ascii_digit()) => word.parse().ok()?,
        _ => return None,
    };
    (1..=RELATIVE_AMOUNT_MAX).contains(&n).then_some(n)
}

fn unit(word: &str) -> Option<Unit> {
    Some(match word {
        "min" | "mins" | "minute" | "minutes" => Unit::Minute,
        "h" | "hr" | "hrs" | "hour" | "hours" => Unit::Hour,
        "day" | "days" => Unit::Day,
        "week" | "weeks" | "wk" | "wks" => Unit::Week,
        "month" | "months" => Unit::Month,
        _ => return None,
    })
}

fn weekday(word: &str, previous: &str) -> Option<Weekday> {
    let full = match word {
        "monday" => Some(Weekday::Monday),
        "tuesday" => Some(Weekday::Tuesday),
        "wednesday" => Some(Weekday::Wednesday),
        "thursday" => Some(Weekday::Thursday),
        "friday" => Some(Weekday::Friday),
        "saturday" => Some(Weekday::Saturday),
        "sunday" => Some(Weekday::Sunday),
        _ => None,
    };
    if full.is_some() {
        return full;
    }
    // Abbreviations are ordinary words too ("sat on the mat", "wed"), so they only
    // count right after "on", "next" or "this".
    if !matches!(previous, "on" | "next" | "this" | "by" | "until") {
        return None;
    }
    match word {
        "mon" => Some(Weekday::Monday),
        "tue" | "tues" => Some(Weekday::Tuesday),
        "wed" => Some(Weekday::Wednesday),
        "thu" | "thur" | "thurs" => Some(Weekday::Thursday),
        "fri" => Some(Weekday::Friday),
        "sat" => Some(Weekday::Saturday),
        "sun" => Some(Weekday::Sunday),
        _ => None,
    }
}

fn next_weekday(today: Date, weekday: Weekday, strictly_after: bool) -> Option<Date> {
    let ahead = i64::from(weekday.since(today.weekday()));
    let ahead = if ahead == 0 && strictly_after {
        7
    } else {
        ahead
    };
    today.checked_add(ahead.days()).ok()
}

fn month(word: &str) -> Option<i8> {
    Some(match word {
        "jan" | "january" => 1,
        "feb" | "february" => 2,
        "mar" | "march" => 3,
        "apr" | "april" => 4,
        "may" => 5,
        "jun" | "june" => 6,
        "jul" | "july" => 7,
        "aug" | "august" => 8,
        "sep" | "sept" | "september" => 9,
        "oct" | "october" => 10,
        "nov" | "november" => 11,
        "dec" | "december" => 12,
        _ => return None,
    })
}

/// "3", "3rd", "21st" → a day of the month.
fn day_of_month(word: &str) -> Option<i8> {
    let digits = word
        .strip_suffix("st")
        .or_else(|| word.strip_suffix("nd"))
        .or_else(|| word.strip_suffix("rd"))
        .or_else(|| word.strip_suffix("th"))
        .unwrap_or(word);
    if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let day: i8 = digits.parse().ok()?;
    (1..=31).contains(&day).then_some(day)
}

fn year(word: &str) -> Option<i16> {
    if word.len() != 4 || !word.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    word.parse().ok()
}

/// "dec 3", "december 3rd 2027", "3 dec", "3rd of december": the date and the number
/// of words used. Without a year, the next such date from today.
fn month_day(words: &[String], i: usize, today: Date) -> Option<(Date, usize)> {
    let w = |k: usize| words.get(k).map(String::as_str).unwrap_or("");
    let (month, day, mut used) = if let Some(m) = month(w(i)) {
        (m, day_of_month(w(i + 1))?, 2)
    } else {
        let day = day_of_month(w(i))?;
        if let Some(m) = month(w(i + 1)) {
            (m, day, 2)
        } else if w(i + 1) == "of" {
            (month(w(i + 2))?, day, 3)
        } else {
            return None;
        }
    };
    let explicit_year = year(w(i + used));
    if explicit_year.is_some() {
        used += 1;
    }
    let date = match explicit_year {
        Some(y) => Date::new(y, month, day).ok()?,
        None => {
            let this_year = Date::new(today.year(), month, day).ok();
            match this_year {
                Some(d) if d >= today => d,
                _ => Date::new(today.year().checked_add(1)?, month, day).ok()?,
            }
        }
    };
    Some((date, used))
}

/// A bare hour after "at": "9" → 9, "5" → 17.
fn bare_hour(word: &str) -> Option<i8> {
    if word.is_empty() || word.len() > 2 || !word.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hour: i8 = word.parse().ok()?;
    match hour {
        1..=BARE_HOUR_AFTERNOON_MAX => Some(hour + 12),
        0..=23 => Some(hour),
        _ => None,
    }
}

/// "15:00", "3pm", "3:30pm", "3 pm", "11 a.m": a time of day and the words used.
fn time_of(word: &str, next: &str) -> Option<(Time, usize)> {
    let (clock, suffix) = split_meridiem(word);
    let (clock, used, meridiem) = match (suffix, meridiem(next)) {
        (Some(m), _) => (clock, 1, Some(m)),
        (None, Some(m)) => (clock, 2, Some(m)),
        (None, None) => (clock, 1, None),
    };
    let (hour, minute) = match clock.split_once(':') {
        Some((h, m)) => (digits_2(h)?, digits_2(m).filter(|_| m.len() == 2)?),
        // A bare number is a time only with am/pm ("3pm"), never on its own ("3 apples").
        None if meridiem.is_some() => (digits_2(clock)?, 0),
        None => return None,
    };
    if minute > 59 {
        return None;
    }
    let hour = match meridiem {
        Some(pm) => {
            if !(1..=12).contains(&hour) {
                return None;
            }
            match (hour, pm) {
                (12, false) => 0,
                (12, true) => 12,
                (h, true) => h + 12,
                (h, false) => h,
            }
        }
        None => hour,
    };
    Time::new(hour, minute, 0, 0).ok().map(|t| (t, used))
}

/// Splits "3pm" into ("3", Some(true)); "15:00" into ("15:00", None).
fn split_meridiem(word: &str) -> (&str, Option<bool>) {
    for (suffix, pm) in [("pm", true), ("am", false), ("p.m", true), ("a.m", false)] {
        if let Some(clock) = word.strip_suffix(suffix)
            && !clock.is_empty()
            && clock.bytes().all(|b| b.is_ascii_digit() || b == b':')
        {
            return (clock, Some(pm));
        }
    }
    (word, None)
}

fn meridiem(word: &str) -> Option<bool> {
    match word {
        "pm" | "p.m" => Some(true),
        "am" | "a.m" => Some(false),
        _ => None,
    }
}

fn digits_2(s: &str) -> Option<i8> {
    if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day() {
        let t = |w: &str, n: &str| time_of(w, n).map(|(t, used)| (t.to_string(), used));
        assert_eq!(t("3pm", ""), Some(("15:00:00".into(), 1)));
        assert_eq!(t("3", "pm"), Some(("15:00:00".into(), 2)));
        assert_eq!(t("3:30pm", ""), Some(("15:30:00".into(), 1)));
        assert_eq!(t("12am", ""), Some(("00:00:00".into(), 1)));
        assert_eq!(t("12pm", ""), Some(("12:00:00".into(), 1)));
        assert_eq!(t("15:00", ""), Some(("15:00:00".into(), 1)));
        assert_eq!(t("9:05", "am"), Some(("09:05:00".into(), 2)));
        assert_eq!(t("3", "apples"), None);
        assert_eq!(t("25:00", ""), None);
        assert_eq!(t("13pm", ""), None);
        assert_eq!(t("10:7", ""), None);
    }
}
