//! What an analysis is: the request ([`AnalysisRequest`]), the validated result
//! ([`Analysis`]), the provider trait ([`Analyzer`]), and the one validation every
//! provider's output goes through — the local heuristics as much as a remote model's
//! JSON — so that the caller can apply any `Analysis` without checking it again.
//!
//! The JSON shape a remote model must return is [`analysis_json_schema`]; the
//! [`parse_analysis_json`] function checks a model's answer against it and against the
//! domain limits and says exactly what was wrong.

use crate::error::AiError;
use async_trait::async_trait;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Value, json};
use synap_domain::EntityType;
use synap_domain::limits::{TAG_CHARS_MAX, TASK_PRIORITY_MAX, TITLE_CHARS_MAX};
use synap_domain::tags::{normalize_tag, tag_key};

/// Fewest tags an analysis carries.
pub const ANALYSIS_TAGS_MIN: usize = 3;
/// Most tags an analysis carries.
pub const ANALYSIS_TAGS_MAX: usize = 5;
/// Longest title an analysis may propose, in characters: the domain's title limit.
pub const ANALYSIS_TITLE_CHARS_MAX: usize = TITLE_CHARS_MAX;
/// The entity types an analysis may choose between.
pub const ANALYSIS_INTENTS: [EntityType; 4] = [
    EntityType::Note,
    EntityType::Task,
    EntityType::Idea,
    EntityType::Event,
];

/// One thought to analyse, with the user's "now" so that "tomorrow at 3pm" resolves
/// to a point in time in the user's own time zone.
#[derive(Debug, Clone)]
pub struct AnalysisRequest {
    pub text: String,
    /// The current time, from the caller's injected clock.
    pub now: Timestamp,
    /// The user's time zone (a user setting); relative dates are resolved in it.
    pub time_zone: TimeZone,
}

/// A validated analysis: every field is within the domain limits.
///
/// Invariants (checked by [`Analysis::validate`]): a non-empty single-line title of
/// at most [`ANALYSIS_TITLE_CHARS_MAX`] characters; [`ANALYSIS_TAGS_MIN`] to
/// [`ANALYSIS_TAGS_MAX`] distinct tags, each lower-cased and valid for
/// [`normalize_tag`]; an intent from [`ANALYSIS_INTENTS`]; `due_at` only for tasks
/// (when it is due) and events (when it happens); `priority` in
/// `0..=TASK_PRIORITY_MAX` and only for tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    pub title: String,
    pub tags: Vec<String>,
    pub intent: EntityType,
    pub due_at: Option<Timestamp>,
    pub priority: Option<u8>,
}

impl Analysis {
    /// Normalises (trims, lower-cases and de-duplicates tags; drops `due_at` and
    /// `priority` where the intent has no use for them) and checks the invariants.
    /// The error is a sentence naming the first field that is wrong.
    pub fn validate(mut self) -> Result<Analysis, String> {
        let title = self.title.trim();
        if title.is_empty() {
            return Err("the title is empty".into());
        }
        let title_chars = title.chars().count();
        if title_chars > ANALYSIS_TITLE_CHARS_MAX {
            return Err(format!(
                "the title has {title_chars} characters; the limit is {ANALYSIS_TITLE_CHARS_MAX}"
            ));
        }
        if title.chars().any(char::is_control) {
            return Err("the title contains a line break or a control character".into());
        }
        self.title = title.to_string();

        let mut tags: Vec<String> = Vec::with_capacity(self.tags.len());
        for raw in &self.tags {
            let tag = normalize_tag(raw)
                .map_err(|e| format!("tag {raw:?} is not a valid tag: {e}"))?
                .to_lowercase();
            if tag.chars().count() > TAG_CHARS_MAX {
                // Lower-casing can lengthen a few characters (e.g. "İ").
                return Err(format!(
                    "tag {raw:?} is longer than {TAG_CHARS_MAX} characters"
                ));
            }
            if !tags.iter().any(|t| tag_key(t) == tag_key(&tag)) {
                tags.push(tag);
            }
        }
        if tags.len() < ANALYSIS_TAGS_MIN || tags.len() > ANALYSIS_TAGS_MAX {
            return Err(format!(
                "{} distinct tags; an analysis has {ANALYSIS_TAGS_MIN} to {ANALYSIS_TAGS_MAX}",
                tags.len()
            ));
        }
        self.tags = tags;

        if !ANALYSIS_INTENTS.contains(&self.intent) {
            return Err(format!(
                "intent {:?} is not one of note, task, idea, event",
                self.intent.as_str()
            ));
        }
        match self.intent {
            EntityType::Task => {}
            EntityType::Event => self.priority = None,
            _ => {
                self.due_at = None;
                self.priority = None;
            }
        }
        if let Some(p) = self.priority
            && p > TASK_PRIORITY_MAX
        {
            return Err(format!("priority {p} is outside 0..={TASK_PRIORITY_MAX}"));
        }
        Ok(self)
    }
}

/// A provider that turns a thought into an [`Analysis`].
///
/// Contract: `analyze` returns an `Analysis` that passed [`Analysis::validate`], or an
/// [`AiError`] whose [`is_retryable`](AiError::is_retryable) says whether asking again
/// can help. It does not retry by itself: retries, backoff and the fallback belong to
/// the workflow engine, which records every attempt.
#[async_trait]
pub trait Analyzer: Send + Sync + std::fmt::Debug {
    /// The provider's name for event metadata: `local`, `anthropic` or `openai`.
    fn provider(&self) -> &'static str;
    /// The model (or heuristic version) that produced the analysis, for event metadata.
    fn model(&self) -> &str;
    async fn analyze(&self, request: &AnalysisRequest) -> Result<Analysis, AiError>;
}

/// The JSON Schema a remote model's answer must follow. Every property is required
/// (`null` where it does not apply) and no others are allowed, which is what OpenAI's
/// strict structured output asks for; Anthropic gets the same schema as a tool's
/// `input_schema`.
pub fn analysis_json_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "title": {
                "type": "string",
                "description": "A short title for the thought, at most 100 characters, in the thought's language."
            },
            "tags": {
                "type": "array",
                "items": { "type": "string" },
                "minItems": ANALYSIS_TAGS_MIN,
                "maxItems": ANALYSIS_TAGS_MAX,
                "description": "3 to 5 lower-case topical tags, one or two words each, no '#', no commas."
            },
            "intent": {
                "type": "string",
                "enum": ["note", "task", "idea", "event"],
                "description": "task: something to do; event: something happening at a time; idea: a proposal or possibility; note: anything else."
            },
            "due_at": {
                "type": ["string", "null"],
                "description": "For a task, when it is due; for an event, when it starts; as an RFC 3339 timestamp with offset. null otherwise."
            },
            "priority": {
                "type": ["integer", "null"],
                "minimum": 0,
                "maximum": TASK_PRIORITY_MAX,
                "description": "For a task only: 0 (low) to 3 (urgent). null otherwise."
            }
        },
        "required": ["title", "tags", "intent", "due_at", "priority"],
        "additionalProperties": false
    })
}

/// The instructions a remote model gets, with the user's current time and zone so
/// that it resolves relative dates the way the local analyzer does.
pub(crate) fn system_prompt(request: &AnalysisRequest) -> String {
    let zoned = request.now.to_zoned_datetime(request.time_zone.clone());
    let zone = request
        .time_zone
        .iana_name()
        .unwrap_or("the user's time zone");
    format!(
        "You analyse a short thought a user captured in their personal knowledge base. \
         Answer only through the schema. Give it a concise title, 3 to 5 lower-case tags, \
         and its intent (note, task, idea or event). For a task or an event mentioned with \
         a date or time, give due_at as an RFC 3339 timestamp with offset, resolving \
         relative dates against the user's current time {} ({zone}, weekday {}). \
         Give a priority from 0 to 3 only for tasks marked urgent or important.",
        zoned.strftime("%Y-%m-%dT%H:%M:%S%:z"),
        zoned.strftime("%A"),
    )
}

/// Checks a model's JSON answer against [`analysis_json_schema`] and the domain
/// limits. Every failure is non-retryable [`AiError::InvalidOutput`] naming the field.
pub fn parse_analysis_json(
    provider: &'static str,
    value: &Value,
    time_zone: &TimeZone,
) -> Result<Analysis, AiError> {
    let invalid = |reason: String| AiError::invalid(provider, reason);
    let object = value
        .as_object()
        .ok_or_else(|| invalid(format!("expected a JSON object, got {}", kind_of(value))))?;
    const FIELDS: [&str; 5] = ["title", "tags", "intent", "due_at", "priority"];
    if let Some(extra) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(invalid(format!("unexpected field {extra:?}")));
    }

    let title = match object.get("title") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(invalid(format!(
                "title is {}, not a string",
                kind_of(other)
            )));
        }
        None => return Err(invalid("title is missing".into())),
    };
    let tags = match object.get("tags") {
        Some(Value::Array(items)) => {
            if items.len() > ANALYSIS_TAGS_MAX {
                return Err(invalid(format!(
                    "{} tags; at most {ANALYSIS_TAGS_MAX} are allowed",
                    items.len()
                )));
            }
            items
                .iter()
                .map(|t| match t {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(invalid(format!(
                        "a tag is {}, not a string",
                        kind_of(other)
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        Some(other) => return Err(invalid(format!("tags is {}, not an array", kind_of(other)))),
        None => return Err(invalid("tags is missing".into())),
    };
    let intent = match object.get("intent") {
        Some(Value::String(s)) => ANALYSIS_INTENTS
            .into_iter()
            .find(|t| t.as_str() == s.trim().to_lowercase())
            .ok_or_else(|| {
                invalid(format!(
                    "intent {s:?} is not one of note, task, idea, event"
                ))
            })?,
        Some(other) => {
            return Err(invalid(format!(
                "intent is {}, not a string",
                kind_of(other)
            )));
        }
        None => return Err(invalid("intent is missing".into())),
    };
    let due_at = match object.get("due_at") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(
            parse_due_at(s, time_zone)
                .ok_or_else(|| invalid(format!("due_at {s:?} is not an RFC 3339 timestamp")))?,
        ),
        Some(other) => {
            return Err(invalid(format!(
                "due_at is {}, not a string",
                kind_of(other)
            )));
        }
    };
    let priority = match object.get("priority") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => {
            let p = n
                .as_u64()
                .filter(|p| *p <= u64::from(TASK_PRIORITY_MAX))
                .ok_or_else(|| {
                    invalid(format!("priority {n} is outside 0..={TASK_PRIORITY_MAX}"))
                })?;
            // In range by the filter above.
            Some(p as u8)
        }
        Some(other) => {
            return Err(invalid(format!(
                "priority is {}, not an integer",
                kind_of(other)
            )));
        }
    };

    Analysis {
        title,
        tags,
        intent,
        due_at,
        priority,
    }
    .validate()
    .map_err(invalid)
}

/// An RFC 3339 timestamp; leniently also a civil date-time or date without offset,
/// read in the user's zone (models often drop the offset they were told to give).
fn parse_due_at(s: &str, time_zone: &TimeZone) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Some(ts);
    }
    if let Ok(dt) = s.parse::<jiff::civil::DateTime>() {
        return dt
            .to_zoned_datetime(time_zone.clone())
            .ok()
            .map(|z| z.timestamp());
    }
    None
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc() -> TimeZone {
        TimeZone::UTC
    }

    #[test]
    fn a_valid_answer_is_normalised() {
        let a = parse_analysis_json(
            "test",
            &json!({"title": " Buy milk ", "tags": ["#Groceries", "milk", "MILK", "shopping"],
                    "intent": "task", "due_at": "2026-11-29T15:00:00+01:00", "priority": 2}),
            &utc(),
        )
        .unwrap();
        assert_eq!(a.title, "Buy milk");
        assert_eq!(a.tags, ["groceries", "milk", "shopping"]);
        assert_eq!(a.intent, EntityType::Task);
        assert_eq!(a.due_at, Some("2026-11-29T14:00:00Z".parse().unwrap()));
        assert_eq!(a.priority, Some(2));
    }

    #[test]
    fn invalid_answers_name_the_field() {
        let base = json!({"title": "t", "tags": ["a", "b", "c"], "intent": "note",
                          "due_at": null, "priority": null});
        let cases: Vec<(Value, &str)> = vec![
            (json!([]), "expected a JSON object"),
            (
                with(&base, "intent", json!("project")),
                "intent \"project\"",
            ),
            (
                with(&base, "tags", json!(["a", "b", "c", "d", "e", "f"])),
                "6 tags",
            ),
            (
                with(&base, "tags", json!(["a", "A", "b"])),
                "2 distinct tags",
            ),
            (with(&base, "tags", json!(["a,b", "c", "d"])), "comma"),
            (with(&base, "title", json!("")), "title is empty"),
            (
                with(&base, "title", json!("x".repeat(301))),
                "301 characters",
            ),
            (with(&base, "title", json!(7)), "title is a number"),
            (
                with(&base, "due_at", json!("next week")),
                "due_at \"next week\"",
            ),
            (with(&base, "priority", json!(9)), "priority 9"),
            (with(&base, "priority", json!(-1)), "priority -1"),
            (
                with(&base, "color", json!("red")),
                "unexpected field \"color\"",
            ),
        ];
        for (value, expected) in cases {
            let err = parse_analysis_json("test", &value, &utc()).unwrap_err();
            assert!(!err.is_retryable());
            assert!(
                err.to_string().contains(expected),
                "{value}: {err} does not mention {expected:?}"
            );
        }
    }

    #[test]
    fn due_and_priority_are_dropped_where_the_intent_has_no_use_for_them() {
        let a = parse_analysis_json(
            "test",
            &json!({"title": "t", "tags": ["a", "b", "c"], "intent": "note",
                    "due_at": "2026-11-29T15:00:00Z", "priority": 1}),
            &utc(),
        )
        .unwrap();
        assert_eq!((a.due_at, a.priority), (None, None));
    }

    fn with(base: &Value, key: &str, value: Value) -> Value {
        let mut v = base.clone();
        v[key] = value;
        v
    }
}
