//! Reading what the user typed: ids, `TEXT|-` (standard input), `--due WHEN`,
//! timestamps, and the value enums shared by several commands. Every failure is a
//! usage error (exit 2) with one line that shows the accepted forms.

use crate::error::CliError;
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use std::io::Read;
use synap_domain::limits::CONTENT_BYTES_MAX;
use synap_domain::{EntityId, EntityType, RelationId, TaskStatus};
use uuid::Uuid;

/// An id as typed: any UUID form (`synap list` prints the hyphenated one).
pub fn uuid(raw: &str) -> Result<Uuid, CliError> {
    Uuid::parse_str(raw.trim()).map_err(|_| {
        CliError::usage(format!(
            "not an id: {raw:?}; ids look like 0190c6f5-8a3e-7b2c-9d41-5e6f7a8b9c0d"
        ))
    })
}

pub fn entity_id(raw: &str) -> Result<EntityId, CliError> {
    uuid(raw).map(EntityId)
}

pub fn relation_id(raw: &str) -> Result<RelationId, CliError> {
    uuid(raw).map(RelationId)
}

/// `TEXT|-`: the text itself, or standard input for `-` (at most the content limit).
pub fn text(raw: &str) -> Result<String, CliError> {
    if raw != "-" {
        return Ok(raw.to_string());
    }
    let mut bytes = Vec::new();
    let limit = CONTENT_BYTES_MAX as u64 + 1;
    std::io::stdin()
        .lock()
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(|error| CliError::error(format!("cannot read standard input: {error}")))?;
    if bytes.len() > CONTENT_BYTES_MAX {
        return Err(CliError::usage(format!(
            "standard input holds more than {CONTENT_BYTES_MAX} bytes; content is limited to 10 MiB"
        )));
    }
    String::from_utf8(bytes).map_err(|_| CliError::usage("standard input is not UTF-8 text"))
}

/// An RFC 3339 timestamp such as `2025-01-31T09:00:00Z`.
pub fn timestamp(flag: &str, raw: &str) -> Result<Timestamp, CliError> {
    raw.trim().parse::<Timestamp>().map_err(|_| {
        CliError::usage(format!(
            "{flag}: not a timestamp: {raw:?}; use RFC 3339 with an offset, like 2025-01-31T09:00:00Z"
        ))
    })
}

/// `--due WHEN`: an RFC 3339 timestamp, a date `YYYY-MM-DD` (the start of that
/// day in `zone`), `today` or `tomorrow` (relative to `now` in `zone`).
pub fn due(raw: &str, now: Timestamp, zone: &TimeZone) -> Result<Timestamp, CliError> {
    let invalid = || {
        CliError::usage(format!(
            "--due: cannot read {raw:?}; use a date (2025-01-31), today, tomorrow or an RFC 3339 timestamp (2025-01-31T09:00:00Z)"
        ))
    };
    let raw = raw.trim();
    let today = now.to_zoned_datetime(zone.clone()).date();
    let date = match raw {
        "today" => today,
        "tomorrow" => today.tomorrow().map_err(|_| invalid())?,
        _ => match raw.parse::<Date>() {
            // Only the plain date form; a longer string is a timestamp or nothing.
            Ok(date) if raw.len() == "YYYY-MM-DD".len() => date,
            _ => return raw.parse::<Timestamp>().map_err(|_| invalid()),
        },
    };
    date.to_zoned_datetime(zone.clone())
        .and_then(|midnight| midnight.start_of_day())
        .map(|start| start.timestamp())
        .map_err(|_| invalid())
}

/// An entity type on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TypeArg {
    Note,
    Task,
    Project,
    Page,
    Idea,
    Event,
}

impl From<TypeArg> for EntityType {
    fn from(value: TypeArg) -> Self {
        match value {
            TypeArg::Note => EntityType::Note,
            TypeArg::Task => EntityType::Task,
            TypeArg::Project => EntityType::Project,
            TypeArg::Page => EntityType::Page,
            TypeArg::Idea => EntityType::Idea,
            TypeArg::Event => EntityType::Event,
        }
    }
}

/// A task status on the command line, spelled as in the API (`in_progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusArg {
    Todo,
    #[value(name = "in_progress")]
    InProgress,
    Done,
    Cancelled,
}

impl From<StatusArg> for TaskStatus {
    fn from(value: StatusArg) -> Self {
        match value {
            StatusArg::Todo => TaskStatus::Todo,
            StatusArg::InProgress => TaskStatus::InProgress,
            StatusArg::Done => TaskStatus::Done,
            StatusArg::Cancelled => TaskStatus::Cancelled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Exit;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn due_accepts_dates_days_and_timestamps() {
        let zone = TimeZone::fixed(jiff::tz::offset(2));
        let now = at("2025-03-10T23:30:00Z"); // already the 11th at +02:00
        let due = |raw: &str| due(raw, now, &zone).ok();
        assert_eq!(due("2025-04-01"), Some(at("2025-03-31T22:00:00Z")));
        assert_eq!(due("today"), Some(at("2025-03-10T22:00:00Z")));
        assert_eq!(due("tomorrow"), Some(at("2025-03-11T22:00:00Z")));
        assert_eq!(
            due("2025-04-01T09:00:00+02:00"),
            Some(at("2025-04-01T07:00:00Z"))
        );
    }

    #[test]
    fn due_refuses_anything_else_as_usage() {
        let zone = TimeZone::UTC;
        for raw in ["next week", "2025-13-01", "2025-04-01T09:00:00", ""] {
            let exit = due(raw, Timestamp::UNIX_EPOCH, &zone).err().map(|e| e.exit);
            assert_eq!(exit, Some(Exit::Usage), "{raw}");
        }
    }

    #[test]
    fn ids_that_are_not_uuids_are_usage_errors() {
        let error = entity_id("nope").err();
        assert_eq!(error.as_ref().map(|e| e.exit), Some(Exit::Usage));
        assert!(error.is_some_and(|e| e.message.starts_with("not an id: \"nope\"")));
    }
}
