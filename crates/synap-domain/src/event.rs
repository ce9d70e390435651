//! The event catalogue (`../shared/design/DATA-MODEL.md`). Every payload is a delta:
//! only what changed, with `old` kept where it makes the audit readable. No payload
//! ever carries a content body — content is referenced by hash.
//!
//! Persisted formats are APIs: each type has a `schema_version`; a payload change adds
//! a version and an upcaster in [`decode`], and golden files pin every version.

use crate::entity::{ContentRef, EntityType, TaskFields, TaskStatus};
use crate::ids::{AttachmentId, ContentHash, EntityId, EventId, UserId};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// Which kind of stream an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregateType {
    Entity,
    Relation,
    User,
}

impl AggregateType {
    pub fn as_str(&self) -> &'static str {
        match self {
            AggregateType::Entity => "entity",
            AggregateType::Relation => "relation",
            AggregateType::User => "user",
        }
    }
}

impl FromStr for AggregateType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "entity" => Ok(AggregateType::Entity),
            "relation" => Ok(AggregateType::Relation),
            "user" => Ok(AggregateType::User),
            other => Err(format!("unknown aggregate type {other:?}")),
        }
    }
}

/// `old` → `new` for a single field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange<T> {
    pub old: T,
    pub new: T,
}

/// `entity.created`: the initial fields. Content is a reference, never the body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityCreated {
    #[serde(rename = "type")]
    pub entity_type: EntityType,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<ContentRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskFields>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
}

/// `entity.content_changed`: the hashes before and after, and the new size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentChanged {
    pub old_hash: Option<ContentHash>,
    pub new_hash: Option<ContentHash>,
    pub size: u64,
    /// Only present when the media type changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

/// `entity.tags_added` / `entity.tags_removed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagsChanged {
    pub tags: Vec<String>,
}

/// `entity.metadata_changed`: keys set (with their new values) and keys removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetadataChanged {
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub set: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unset: Vec<String>,
}

/// `entity.attachment_added`: a file was attached. A reference to bytes stored
/// once per (user, hash) in the object store — never the bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachmentAdded {
    pub attachment_id: AttachmentId,
    pub filename: String,
    pub hash: ContentHash,
    pub size: u64,
    pub media_type: String,
}

/// `entity.attachment_removed`: a file was detached. Its name and hash are kept so
/// the audit trail reads without looking back; the bytes stay in the store (history
/// and revert can still reach them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachmentRemoved {
    pub attachment_id: AttachmentId,
    pub filename: String,
    pub hash: ContentHash,
}

/// Events of the `entity` aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum EntityEvent {
    Created(EntityCreated),
    TitleChanged(FieldChange<String>),
    ContentChanged(ContentChanged),
    TypeChanged(FieldChange<EntityType>),
    TagsAdded(TagsChanged),
    TagsRemoved(TagsChanged),
    MetadataChanged(MetadataChanged),
    AttachmentAdded(AttachmentAdded),
    AttachmentRemoved(AttachmentRemoved),
    Deleted,
    Restored,
    TaskStatusChanged(FieldChange<TaskStatus>),
    TaskPriorityChanged(FieldChange<u8>),
    TaskDueChanged(FieldChange<Option<Timestamp>>),
}

/// `relation.created`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelationCreated {
    pub source_id: EntityId,
    pub target_id: EntityId,
    pub kind: String,
}

/// Events of the `relation` aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum RelationEvent {
    Created(RelationCreated),
    Deleted,
}

/// `user.created`. No secrets, ever.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserCreated {
    pub email: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// `user.token_created`: an API token was issued. Never the secret or its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenCreated {
    pub token_id: Uuid,
    pub name: String,
    /// Any of `read`, `write`, `admin`.
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

/// `user.token_revoked`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRevoked {
    pub token_id: Uuid,
}

/// `user.event_logged`: an event a client recorded about itself (the original
/// Synap's `events.log` procedure). Its `type` is the client's own name; `data` is
/// a JSON object of at most `limits::LOGGED_EVENT_BYTES_MAX` bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventLogged {
    #[serde(rename = "type")]
    pub event_type: String,
    pub data: Value,
}

/// Events of the `user` aggregate (account life-cycle, for the audit trail).
#[derive(Debug, Clone, PartialEq)]
pub enum UserEvent {
    Created(UserCreated),
    TokenCreated(TokenCreated),
    TokenRevoked(TokenRevoked),
    EventLogged(EventLogged),
}

/// Any event payload.
#[derive(Debug, Clone, PartialEq)]
pub enum EventPayload {
    Entity(EntityEvent),
    Relation(RelationEvent),
    User(UserEvent),
}

/// Every event type with its current schema version: the catalogue, in one place.
///
/// A type's place in this list is also its stored code ([`type_code`]): **append
/// new types at the end; never reorder or remove one.**
pub const CATALOGUE: &[(&str, u32)] = &[
    ("entity.created", 1),
    ("entity.title_changed", 1),
    ("entity.content_changed", 1),
    ("entity.type_changed", 1),
    ("entity.tags_added", 1),
    ("entity.tags_removed", 1),
    ("entity.metadata_changed", 1),
    ("entity.attachment_added", 1),
    ("entity.attachment_removed", 1),
    ("entity.deleted", 1),
    ("entity.restored", 1),
    ("task.status_changed", 1),
    ("task.priority_changed", 1),
    ("task.due_changed", 1),
    ("relation.created", 1),
    ("relation.deleted", 1),
    ("user.created", 1),
    ("user.token_created", 1),
    ("user.token_revoked", 1),
    ("user.event_logged", 1),
];

/// The small number the PostgreSQL log stores instead of a type's name: its place
/// in [`CATALOGUE`], from 1. `None` for a name that is not catalogued.
pub fn type_code(event_type: &str) -> Option<i16> {
    let index = CATALOGUE.iter().position(|(name, _)| *name == event_type)?;
    i16::try_from(index + 1).ok()
}

/// The catalogued type a stored code stands for.
pub fn type_name(code: i16) -> Option<&'static str> {
    let index = usize::try_from(code).ok()?.checked_sub(1)?;
    CATALOGUE.get(index).map(|(name, _)| *name)
}

/// A stored payload could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode event {event_type} v{schema_version}: {reason}")]
pub struct DecodeError {
    pub event_type: String,
    pub schema_version: u32,
    pub reason: String,
}

impl EventPayload {
    /// `{aggregate}.{change}`, as stored and as shown to users.
    pub fn event_type(&self) -> &'static str {
        match self {
            EventPayload::Entity(event) => match event {
                EntityEvent::Created(_) => "entity.created",
                EntityEvent::TitleChanged(_) => "entity.title_changed",
                EntityEvent::ContentChanged(_) => "entity.content_changed",
                EntityEvent::TypeChanged(_) => "entity.type_changed",
                EntityEvent::TagsAdded(_) => "entity.tags_added",
                EntityEvent::TagsRemoved(_) => "entity.tags_removed",
                EntityEvent::MetadataChanged(_) => "entity.metadata_changed",
                EntityEvent::AttachmentAdded(_) => "entity.attachment_added",
                EntityEvent::AttachmentRemoved(_) => "entity.attachment_removed",
                EntityEvent::Deleted => "entity.deleted",
                EntityEvent::Restored => "entity.restored",
                EntityEvent::TaskStatusChanged(_) => "task.status_changed",
                EntityEvent::TaskPriorityChanged(_) => "task.priority_changed",
                EntityEvent::TaskDueChanged(_) => "task.due_changed",
            },
            EventPayload::Relation(RelationEvent::Created(_)) => "relation.created",
            EventPayload::Relation(RelationEvent::Deleted) => "relation.deleted",
            EventPayload::User(UserEvent::Created(_)) => "user.created",
            EventPayload::User(UserEvent::TokenCreated(_)) => "user.token_created",
            EventPayload::User(UserEvent::TokenRevoked(_)) => "user.token_revoked",
            EventPayload::User(UserEvent::EventLogged(_)) => "user.event_logged",
        }
    }

    pub fn aggregate_type(&self) -> AggregateType {
        match self {
            EventPayload::Entity(_) => AggregateType::Entity,
            EventPayload::Relation(_) => AggregateType::Relation,
            EventPayload::User(_) => AggregateType::User,
        }
    }

    /// The schema version new events of this type are written with.
    pub fn schema_version(&self) -> u32 {
        let event_type = self.event_type();
        CATALOGUE
            .iter()
            .find(|(name, _)| *name == event_type)
            .map_or(1, |(_, v)| *v)
    }

    /// The type's code in the PostgreSQL log (see [`type_code`]).
    pub fn type_code(&self) -> i16 {
        type_code(self.event_type()).unwrap_or(0)
    }

    /// The delta as JSON: the API's form, the SQLite log's `data` column and the
    /// golden files.
    pub fn data(&self) -> Value {
        self.encode(&JsonEncoder)
    }

    /// The delta in the compact binary encoding ([`crate::binary`]): the PostgreSQL
    /// log's `data` column.
    pub fn binary_data(&self) -> Result<Vec<u8>, crate::binary::BinaryError> {
        self.encode(&BinaryEncoder)
    }

    /// Encodes the delta (the struct inside the variant; `{}` for payloads with none).
    fn encode<E: PayloadEncoder>(&self, encoder: &E) -> E::Output {
        match self {
            EventPayload::Entity(event) => match event {
                EntityEvent::Created(e) => encoder.encode(e),
                EntityEvent::TitleChanged(e) => encoder.encode(e),
                EntityEvent::ContentChanged(e) => encoder.encode(e),
                EntityEvent::TypeChanged(e) => encoder.encode(e),
                EntityEvent::TagsAdded(e) | EntityEvent::TagsRemoved(e) => encoder.encode(e),
                EntityEvent::MetadataChanged(e) => encoder.encode(e),
                EntityEvent::AttachmentAdded(e) => encoder.encode(e),
                EntityEvent::AttachmentRemoved(e) => encoder.encode(e),
                EntityEvent::Deleted | EntityEvent::Restored => encoder.encode(&Map::new()),
                EntityEvent::TaskStatusChanged(e) => encoder.encode(e),
                EntityEvent::TaskPriorityChanged(e) => encoder.encode(e),
                EntityEvent::TaskDueChanged(e) => encoder.encode(e),
            },
            EventPayload::Relation(RelationEvent::Created(e)) => encoder.encode(e),
            EventPayload::Relation(RelationEvent::Deleted) => encoder.encode(&Map::new()),
            EventPayload::User(UserEvent::Created(e)) => encoder.encode(e),
            EventPayload::User(UserEvent::TokenCreated(e)) => encoder.encode(e),
            EventPayload::User(UserEvent::TokenRevoked(e)) => encoder.encode(e),
            EventPayload::User(UserEvent::EventLogged(e)) => encoder.encode(e),
        }
    }
}

/// One way of writing a payload's delta: JSON or the binary encoding.
trait PayloadEncoder {
    type Output;
    fn encode<T: Serialize>(&self, value: &T) -> Self::Output;
}

struct JsonEncoder;

impl PayloadEncoder for JsonEncoder {
    type Output = Value;
    fn encode<T: Serialize>(&self, value: &T) -> Value {
        // Serializing these plain structs cannot fail (no maps with non-string keys).
        serde_json::to_value(value).unwrap_or(Value::Null)
    }
}

struct BinaryEncoder;

impl PayloadEncoder for BinaryEncoder {
    type Output = Result<Vec<u8>, crate::binary::BinaryError>;
    fn encode<T: Serialize>(&self, value: &T) -> Self::Output {
        crate::binary::to_binary(value)
    }
}

/// Where a stored payload is read from: parsed JSON, JSON text (a backend that
/// stores text hands it over as is, sparing a parse into `Value` first), or the
/// binary encoding ([`Binary`]).
pub trait PayloadSource {
    fn parse<T: serde::de::DeserializeOwned>(self) -> Result<T, String>;
}

impl PayloadSource for Value {
    fn parse<T: serde::de::DeserializeOwned>(self) -> Result<T, String> {
        serde_json::from_value(self).map_err(|e| e.to_string())
    }
}

impl PayloadSource for &str {
    fn parse<T: serde::de::DeserializeOwned>(self) -> Result<T, String> {
        serde_json::from_str(self).map_err(|e| e.to_string())
    }
}

/// A payload in the binary encoding ([`crate::binary`]), as the PostgreSQL log
/// stores it.
#[derive(Debug, Clone, Copy)]
pub struct Binary<'a>(pub &'a [u8]);

impl PayloadSource for Binary<'_> {
    fn parse<T: serde::de::DeserializeOwned>(self) -> Result<T, String> {
        crate::binary::from_binary(self.0).map_err(|e| e.to_string())
    }
}

/// Reads a stored payload of any schema version, upcasting old versions to the
/// current one. Every version a released binary ever wrote must stay readable here.
/// (An upcaster, when one exists, parses the old version's struct — from JSON or
/// the binary encoding alike, through [`PayloadSource`] — and converts it.)
pub fn decode(
    event_type: &str,
    schema_version: u32,
    data: impl PayloadSource,
) -> Result<EventPayload, DecodeError> {
    let fail = |reason: String| DecodeError {
        event_type: event_type.to_string(),
        schema_version,
        reason,
    };
    let current = CATALOGUE
        .iter()
        .find(|(name, _)| *name == event_type)
        .map(|(_, v)| *v)
        .ok_or_else(|| fail("unknown event type".into()))?;
    if schema_version == 0 || schema_version > current {
        return Err(fail(format!(
            "unsupported schema version (this binary reads 1..={current})"
        )));
    }
    // Upcasters go here, one per (type, old version), each turning vN data into vN+1.
    // None exist yet: every type is at version 1.
    fn parse<T: serde::de::DeserializeOwned>(data: impl PayloadSource) -> Result<T, String> {
        data.parse()
    }
    let payload = match event_type {
        "entity.created" => EventPayload::Entity(EntityEvent::Created(parse(data).map_err(fail)?)),
        "entity.title_changed" => {
            EventPayload::Entity(EntityEvent::TitleChanged(parse(data).map_err(fail)?))
        }
        "entity.content_changed" => {
            EventPayload::Entity(EntityEvent::ContentChanged(parse(data).map_err(fail)?))
        }
        "entity.type_changed" => {
            EventPayload::Entity(EntityEvent::TypeChanged(parse(data).map_err(fail)?))
        }
        "entity.tags_added" => {
            EventPayload::Entity(EntityEvent::TagsAdded(parse(data).map_err(fail)?))
        }
        "entity.tags_removed" => {
            EventPayload::Entity(EntityEvent::TagsRemoved(parse(data).map_err(fail)?))
        }
        "entity.metadata_changed" => {
            EventPayload::Entity(EntityEvent::MetadataChanged(parse(data).map_err(fail)?))
        }
        "entity.attachment_added" => {
            EventPayload::Entity(EntityEvent::AttachmentAdded(parse(data).map_err(fail)?))
        }
        "entity.attachment_removed" => {
            EventPayload::Entity(EntityEvent::AttachmentRemoved(parse(data).map_err(fail)?))
        }
        "entity.deleted" => EventPayload::Entity(EntityEvent::Deleted),
        "entity.restored" => EventPayload::Entity(EntityEvent::Restored),
        "task.status_changed" => {
            EventPayload::Entity(EntityEvent::TaskStatusChanged(parse(data).map_err(fail)?))
        }
        "task.priority_changed" => {
            EventPayload::Entity(EntityEvent::TaskPriorityChanged(parse(data).map_err(fail)?))
        }
        "task.due_changed" => {
            EventPayload::Entity(EntityEvent::TaskDueChanged(parse(data).map_err(fail)?))
        }
        "relation.created" => {
            EventPayload::Relation(RelationEvent::Created(parse(data).map_err(fail)?))
        }
        "relation.deleted" => EventPayload::Relation(RelationEvent::Deleted),
        "user.created" => EventPayload::User(UserEvent::Created(parse(data).map_err(fail)?)),
        "user.token_created" => {
            EventPayload::User(UserEvent::TokenCreated(parse(data).map_err(fail)?))
        }
        "user.token_revoked" => {
            EventPayload::User(UserEvent::TokenRevoked(parse(data).map_err(fail)?))
        }
        "user.event_logged" => {
            EventPayload::User(UserEvent::EventLogged(parse(data).map_err(fail)?))
        }
        _ => return Err(fail("unknown event type".into())),
    };
    Ok(payload)
}

/// Who or what caused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    #[default]
    Api,
    Cli,
    Automation,
    Sync,
    Migration,
    System,
}

impl Source {
    pub fn as_str(&self) -> &'static str {
        match self {
            Source::Api => "api",
            Source::Cli => "cli",
            Source::Automation => "automation",
            Source::Sync => "sync",
            Source::Migration => "migration",
            Source::System => "system",
        }
    }
}

/// The envelope's `metadata`: provenance of an event. Absent fields are not stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventMetadata {
    pub source: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_run_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// An event as stored in the log, with its envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Global order of commit visibility; the resume token for subscribers.
    pub position: u64,
    pub id: EventId,
    pub aggregate_id: Uuid,
    /// Version of the aggregate after this event; streams start at 1, no gaps.
    pub version: u64,
    pub payload: EventPayload,
    /// The schema version the payload was *stored* with (before upcasting).
    pub schema_version: u32,
    pub user_id: UserId,
    pub metadata: EventMetadata,
    pub recorded_at: Timestamp,
}

impl StoredEvent {
    pub fn aggregate_type(&self) -> AggregateType {
        self.payload.aggregate_type()
    }
    pub fn event_type(&self) -> &'static str {
        self.payload.event_type()
    }
}

/// The JSON shape of a stored event, as shown by the CLI and the HTTP API.
#[derive(Serialize)]
struct StoredEventJson<'a> {
    position: u64,
    id: EventId,
    aggregate_type: AggregateType,
    aggregate_id: Uuid,
    version: u64,
    #[serde(rename = "type")]
    event_type: &'a str,
    schema_version: u32,
    user_id: UserId,
    data: Value,
    metadata: &'a EventMetadata,
    recorded_at: Timestamp,
}

impl Serialize for StoredEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StoredEventJson {
            position: self.position,
            id: self.id,
            aggregate_type: self.aggregate_type(),
            aggregate_id: self.aggregate_id,
            version: self.version,
            event_type: self.event_type(),
            schema_version: self.schema_version,
            user_id: self.user_id,
            data: self.payload.data(),
            metadata: &self.metadata,
            recorded_at: self.recorded_at,
        }
        .serialize(serializer)
    }
}

impl fmt::Display for EventPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.event_type())
    }
}
