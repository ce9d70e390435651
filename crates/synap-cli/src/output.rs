//! Writing results to standard output: human-readable lines and short aligned
//! tables by default, one JSON document (or one JSON object per line for streams)
//! with `--json`. Every write goes through here so that a closed pipe ends the
//! command quietly instead of panicking.

use crate::error::CliError;
use jiff::{Timestamp, Unit};
use serde::Serialize;
use std::io::{IsTerminal, Write};
use synap_domain::event::FieldChange;
use synap_domain::{EntityEvent, EventPayload, RelationEvent, StoredEvent, UserEvent};

/// Characters of a title shown in a table cell before it is cut with "…".
pub const TITLE_CELL_CHARS_MAX: usize = 60;

/// Where results go, and in which form.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Output { json }
    }

    /// Whether `--json` was given.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Writes text followed by a line break.
    pub fn line(&self, text: impl AsRef<str>) -> Result<(), CliError> {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", text.as_ref())
            .and_then(|()| stdout.flush())
            .map_err(CliError::from_output)
    }

    /// One JSON document, pretty-printed.
    pub fn document<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), CliError> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|error| CliError::error(format!("cannot write JSON: {error}")))?;
        self.line(text)
    }

    /// One JSON object on one line (for streams).
    pub fn json_line<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), CliError> {
        let text = serde_json::to_string(value)
            .map_err(|error| CliError::error(format!("cannot write JSON: {error}")))?;
        self.line(text)
    }

    /// A table: a header row and rows, columns padded to align; the last column is
    /// not padded. Nothing is written for no rows except `empty`, when given.
    pub fn table(
        &self,
        header: &[&str],
        rows: &[Vec<String>],
        empty: &str,
    ) -> Result<(), CliError> {
        if rows.is_empty() {
            return if empty.is_empty() {
                Ok(())
            } else {
                self.line(empty)
            };
        }
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let render = |cells: &mut dyn Iterator<Item = &str>| -> String {
            let mut line = String::new();
            for (index, (cell, width)) in cells.zip(&widths).enumerate() {
                if index + 1 == widths.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', width - cell.chars().count() + 2));
                }
            }
            line.trim_end().to_string()
        };
        let mut text = render(&mut header.iter().copied());
        for row in rows {
            text.push('\n');
            text.push_str(&render(&mut row.iter().map(String::as_str)));
        }
        self.line(text)
    }
}

/// Whether standard output is a terminal (for highlighting).
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// A timestamp in RFC 3339, exact (time travel with `--at` needs the exact value).
pub fn time(at: Timestamp) -> String {
    at.to_string()
}

/// A timestamp in RFC 3339 to the second, for listings.
pub fn time_short(at: Timestamp) -> String {
    let rounded = jiff::TimestampRound::new()
        .smallest(Unit::Second)
        .mode(jiff::RoundMode::Trunc);
    at.round(rounded).unwrap_or(at).to_string()
}

/// `text` cut to `max` characters with a trailing "…".
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let head: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", head.trim_end())
}

/// A byte count for people: `1.5 MiB`.
pub fn bytes(count: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = count as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{count} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// One line describing what an event changed, for `history` and `events`.
pub fn event_summary(event: &StoredEvent) -> String {
    fn change<T: std::fmt::Debug>(change: &FieldChange<T>) -> String {
        format!("{:?} → {:?}", change.old, change.new)
    }
    fn short_hash(hash: Option<synap_domain::ContentHash>) -> String {
        hash.map_or_else(|| "none".to_string(), |h| h.to_hex()[..12].to_string())
    }
    match &event.payload {
        EventPayload::Entity(entity) => match entity {
            EntityEvent::Created(created) => {
                let mut text = format!("{} {:?}", created.entity_type, created.title);
                if let Some(content) = &created.content {
                    text.push_str(&format!(
                        ", content {} ({})",
                        short_hash(Some(content.hash)),
                        bytes(content.size)
                    ));
                }
                if !created.tags.is_empty() {
                    text.push_str(&format!(", tags {}", created.tags.join(", ")));
                }
                text
            }
            EntityEvent::TitleChanged(c) => change(c),
            EntityEvent::ContentChanged(c) => match c.new_hash {
                Some(_) => format!(
                    "{} → {} ({})",
                    short_hash(c.old_hash),
                    short_hash(c.new_hash),
                    bytes(c.size)
                ),
                None => "content removed".to_string(),
            },
            EntityEvent::TypeChanged(c) => format!("{} → {}", c.old, c.new),
            EntityEvent::TagsAdded(c) => format!("+{}", c.tags.join(", +")),
            EntityEvent::TagsRemoved(c) => format!("-{}", c.tags.join(", -")),
            EntityEvent::MetadataChanged(c) => {
                let mut parts = Vec::new();
                if !c.set.is_empty() {
                    parts.push(format!(
                        "set {}",
                        c.set.keys().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
                if !c.unset.is_empty() {
                    parts.push(format!("unset {}", c.unset.join(", ")));
                }
                parts.join("; ")
            }
            EntityEvent::AttachmentAdded(a) => {
                format!("+{} ({}, {} bytes)", a.filename, a.media_type, a.size)
            }
            EntityEvent::AttachmentRemoved(a) => format!("-{}", a.filename),
            EntityEvent::Deleted | EntityEvent::Restored => String::new(),
            EntityEvent::TaskStatusChanged(c) => format!("{} → {}", c.old, c.new),
            EntityEvent::TaskPriorityChanged(c) => format!("{} → {}", c.old, c.new),
            EntityEvent::TaskDueChanged(c) => {
                let show = |at: Option<Timestamp>| at.map_or_else(|| "none".to_string(), time);
                format!("{} → {}", show(c.old), show(c.new))
            }
        },
        EventPayload::Relation(RelationEvent::Created(created)) => {
            format!(
                "{} → {} ({})",
                created.source_id, created.target_id, created.kind
            )
        }
        EventPayload::Relation(RelationEvent::Deleted) => String::new(),
        EventPayload::User(UserEvent::Created(created)) => {
            format!("{} ({})", created.email, created.role)
        }
        EventPayload::User(UserEvent::TokenCreated(created)) => {
            let expiry = created
                .expires_at
                .map_or_else(String::new, |at| format!(", expires {}", time(at)));
            format!(
                "{} \"{}\" ({}{expiry})",
                created.token_id,
                created.name,
                created.scopes.join(",")
            )
        }
        EventPayload::User(UserEvent::TokenRevoked(revoked)) => revoked.token_id.to_string(),
        EventPayload::User(UserEvent::EventLogged(logged)) => logged.event_type.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_and_bytes_read_well() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("a long title here", 7), "a long…");
        assert_eq!(bytes(12), "12 bytes");
        assert_eq!(bytes(1536), "1.5 KiB");
    }
}
