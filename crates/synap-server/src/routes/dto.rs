//! The shapes the `/v1` data routes speak, with their OpenAPI schemas, and the
//! request plumbing those routes share.
//!
//! `synap-store` and `synap-domain` types carry no OpenAPI schema, so every body
//! that crosses the wire is declared here once: request bodies refuse unknown
//! fields, responses are built from store views by `From` conversions, and the
//! schema of each is the type itself (what is documented is what is serialized).
//!
//! The plumbing: [`CanRead`]/[`CanWrite`] (the caller, with the scope checked before
//! any body is read), [`command_metadata`] (event provenance), [`command_id`]
//! (idempotency), [`parse_id`], [`parse_time`] and [`QueryParams`] (input parsing
//! whose failures are stable 4xx problems), [`etag`] and [`if_match`] (versions as
//! entity tags).

use crate::auth::{Caller, Permission};
use crate::error::{ApiError, ApiResult};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use synap_domain::event::{EventMetadata as DomainMetadata, Source};
use synap_domain::{StoredEvent, UserId};
use synap_store::{EntityView, GraphEdge, GraphNode, RelationView, SearchHit as StoreHit};
use utoipa::{IntoResponses, ToSchema};
use uuid::Uuid;

/// The media type of problem bodies, for `content_type = …` in annotations.
pub const PROBLEM: &str = crate::error::PROBLEM_JSON;

// ---------------------------------------------------------------------------------
// Problems (documentation of what `ApiError` writes)
// ---------------------------------------------------------------------------------

/// An RFC 9457 problem, as every error of the API is answered
/// (`application/problem+json`). `code` is stable and meant for programs; `detail`
/// is a sentence for people. Some problems carry extra members.
#[allow(dead_code)] // documentation only: `ApiError` writes the body
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:synap:problem:not_found",
    "title": "Not Found",
    "status": 404,
    "detail": "entity 01900000-0000-7000-8000-000000000000 not found",
    "code": "not_found"
}))]
pub struct Problem {
    /// `urn:synap:problem:<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// The status's reason phrase.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong and what to do about it.
    pub detail: String,
    /// Stable machine-readable code: `not_found`, `conflict`, `precondition_failed`,
    /// `validation_failed`, `invalid_id`, `invalid_query`, `malformed_json`,
    /// `unauthorized`, `forbidden`, `rate_limited`, `payload_too_large`, …
    pub code: String,
    /// The request field a `validation_failed` or `invalid_id` problem is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The query parameter an `invalid_query` problem is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    /// The entity's current version, on `conflict` and `precondition_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
}

/// Failures every authenticated route can answer with.
#[allow(dead_code)] // documentation only
#[derive(Debug, IntoResponses)]
pub enum CommonErrors {
    /// No credential, or one that is unknown, revoked or expired (`unauthorized`).
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The credential lacks the scope this route needs (`forbidden`).
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// Too many requests in the window (`rate_limited`); see `Retry-After`.
    #[response(status = 429, content_type = "application/problem+json")]
    RateLimited(Problem),
    /// The server failed (`internal`); the failure was logged.
    #[response(status = 500, content_type = "application/problem+json")]
    Internal(Problem),
    /// The database is busy (`unavailable`); retry after `Retry-After` seconds.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// Failures of routes that read a JSON body.
#[allow(dead_code)] // documentation only
#[derive(Debug, IntoResponses)]
pub enum BodyErrors {
    /// The body is over the size limit (`payload_too_large`).
    #[response(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Problem),
    /// The body is not sent as `application/json` (`unsupported_media_type`).
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
}

// ---------------------------------------------------------------------------------
// Entities
// ---------------------------------------------------------------------------------

/// What kind of thing an entity is.
// Read through `String` so that a value of the wrong JSON type is a data error
// (422) rather than what serde_json reports for enums, a syntax error (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum EntityType {
    Note,
    Task,
    Project,
    Page,
    Idea,
    Event,
}

impl TryFrom<String> for EntityType {
    type Error = String;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse::<synap_domain::EntityType>().map(Into::into)
    }
}

impl From<EntityType> for synap_domain::EntityType {
    fn from(value: EntityType) -> Self {
        match value {
            EntityType::Note => synap_domain::EntityType::Note,
            EntityType::Task => synap_domain::EntityType::Task,
            EntityType::Project => synap_domain::EntityType::Project,
            EntityType::Page => synap_domain::EntityType::Page,
            EntityType::Idea => synap_domain::EntityType::Idea,
            EntityType::Event => synap_domain::EntityType::Event,
        }
    }
}

impl From<synap_domain::EntityType> for EntityType {
    fn from(value: synap_domain::EntityType) -> Self {
        match value {
            synap_domain::EntityType::Note => EntityType::Note,
            synap_domain::EntityType::Task => EntityType::Task,
            synap_domain::EntityType::Project => EntityType::Project,
            synap_domain::EntityType::Page => EntityType::Page,
            synap_domain::EntityType::Idea => EntityType::Idea,
            synap_domain::EntityType::Event => EntityType::Event,
        }
    }
}

/// A task's workflow state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum TaskStatus {
    Todo,
    InProgress,
    Done,
    Cancelled,
}

impl TryFrom<String> for TaskStatus {
    type Error = String;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse::<synap_domain::TaskStatus>().map(Into::into)
    }
}

impl From<TaskStatus> for synap_domain::TaskStatus {
    fn from(value: TaskStatus) -> Self {
        match value {
            TaskStatus::Todo => synap_domain::TaskStatus::Todo,
            TaskStatus::InProgress => synap_domain::TaskStatus::InProgress,
            TaskStatus::Done => synap_domain::TaskStatus::Done,
            TaskStatus::Cancelled => synap_domain::TaskStatus::Cancelled,
        }
    }
}

impl From<synap_domain::TaskStatus> for TaskStatus {
    fn from(value: synap_domain::TaskStatus) -> Self {
        match value {
            synap_domain::TaskStatus::Todo => TaskStatus::Todo,
            synap_domain::TaskStatus::InProgress => TaskStatus::InProgress,
            synap_domain::TaskStatus::Done => TaskStatus::Done,
            synap_domain::TaskStatus::Cancelled => TaskStatus::Cancelled,
        }
    }
}

/// The task part of an entity; present exactly while its type is `task`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Task {
    pub status: TaskStatus,
    /// 0 (none) to 3 (highest).
    pub priority: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_at: Option<Timestamp>,
    /// When the task last became `done` (absent unless it is done).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at: Option<Timestamp>,
}

/// Which body an entity has (fetch it from `GET /v1/entities/{id}/content`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContentInfo {
    /// Hex SHA-256 of the body: the body's address, and its entity tag.
    pub hash: String,
    /// Bytes.
    pub size: u64,
    /// `text/markdown` unless another was given.
    pub media_type: String,
}

/// An entity: a note, task, project, page, idea or calendar event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Entity {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub entity_type: EntityType,
    pub title: String,
    /// The start of the content as plain text.
    pub preview: String,
    /// Absent when the entity has no body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<ContentInfo>,
    pub tags: Vec<String>,
    /// Present exactly while the type is `task`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<Task>,
    /// Free-form JSON object.
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// Increases with every change; also the `ETag` (`"<version>"`).
    pub version: u64,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// Set while the entity is deleted (restore it to clear).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deleted_at: Option<Timestamp>,
}

impl From<EntityView> for Entity {
    fn from(view: EntityView) -> Self {
        Entity {
            id: view.id.0,
            entity_type: view.entity_type.into(),
            title: view.title,
            preview: view.preview,
            content: view.content.map(|c| ContentInfo {
                hash: c.hash.to_hex(),
                size: c.size,
                media_type: c.media_type,
            }),
            tags: view.tags,
            task: view.task.map(|t| Task {
                status: t.status.into(),
                priority: t.priority,
                due_at: t.due_at,
                completed_at: t.completed_at,
            }),
            metadata: view.metadata,
            version: view.version,
            created_at: view.created_at,
            updated_at: view.updated_at,
            deleted_at: view.deleted_at,
        }
    }
}

/// One page of entities, most recently updated first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntityPage {
    pub items: Vec<Entity>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Task fields at creation; absent ones take their defaults (`todo`, priority 0).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskInput {
    #[serde(default)]
    pub status: Option<TaskStatus>,
    /// 0 to 3.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 3)]
    pub priority: Option<u64>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_at: Option<Timestamp>,
}

/// A new entity.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEntity {
    #[serde(rename = "type")]
    pub entity_type: EntityType,
    /// At most 300 characters, one line. Absent or blank: derived from the content.
    #[serde(default)]
    pub title: Option<String>,
    /// The body (Markdown unless `media_type` says otherwise), at most 10 MiB.
    #[serde(default)]
    pub content: Option<String>,
    /// The body's media type, such as `text/markdown` (the default) or `text/plain`.
    #[serde(default)]
    pub media_type: Option<String>,
    /// At most 64 tags of at most 64 characters; a leading `#` is dropped.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Only for type `task`.
    #[serde(default)]
    pub task: Option<TaskInput>,
    /// Free-form JSON object, at most 16 KiB.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    /// A client-chosen UUIDv7, for offline creation. Sending the same `id` again
    /// returns the entity created the first time (201, `Idempotent-Replayed: true`).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub id: Option<String>,
}

/// Changes to an entity, applied in one command (one transaction, consecutive
/// versions): type, content, title, tags, metadata, then task fields. An absent
/// field is left as it is.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEntity {
    /// A new title; an empty one derives the title from the content again.
    #[serde(default)]
    pub title: Option<String>,
    /// A new body; `null` (or an empty string) removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub content: Option<Option<String>>,
    /// The media type of the new `content`.
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default, rename = "type")]
    pub entity_type: Option<EntityType>,
    #[serde(default)]
    pub add_tags: Vec<String>,
    #[serde(default)]
    pub remove_tags: Vec<String>,
    /// Keys to set, with their new values.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata_set: Option<Map<String, Value>>,
    /// Keys to remove.
    #[serde(default)]
    pub metadata_unset: Vec<String>,
    /// Task status (the entity must be a task, or become one in this request).
    #[serde(default)]
    pub status: Option<TaskStatus>,
    /// Task priority, 0 to 3.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 3)]
    pub priority: Option<u64>,
    /// Task due date; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_at: Option<Option<Timestamp>>,
    /// Refuse the change with 409 unless the entity is at exactly this version.
    #[serde(default)]
    pub expected_version: Option<u64>,
}

/// `Some(value)` for a field that is present, `null` included, so that an absent
/// field (`None`, via `#[serde(default)]`) differs from an explicit `null`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Which version to restore.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevertEntity {
    /// A version the entity had (1 to its current version).
    pub version: u64,
}

// ---------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------

/// Where an event came from.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventMetadata {
    /// `api`, `cli`, `automation`, `sync`, `migration` or `system`.
    pub source: String,
    /// Who acted: `token:<id>` or `user:<id>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The event that caused this one (e.g. the content change behind a `mentions` link).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// The `X-Request-Id` of the request that caused it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_run_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

impl From<&DomainMetadata> for EventMetadata {
    fn from(m: &DomainMetadata) -> Self {
        EventMetadata {
            source: m.source.as_str().to_string(),
            actor: m.actor.clone(),
            correlation_id: m.correlation_id,
            causation_id: m.causation_id,
            request_id: m.request_id.clone(),
            workflow_run_id: m.workflow_run_id,
            model: m.model.clone(),
        }
    }
}

/// One event of the log: a delta, never a content body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Event {
    /// Global order; pass the last one seen as `after` to read on.
    pub position: u64,
    pub id: Uuid,
    /// `entity`, `relation` or `user`.
    pub aggregate_type: String,
    pub aggregate_id: Uuid,
    /// The aggregate's version after this event.
    pub version: u64,
    /// `entity.created`, `entity.title_changed`, `relation.created`, …
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: u32,
    pub user_id: Uuid,
    /// The change (its shape depends on `type`).
    #[schema(value_type = Object)]
    pub data: Value,
    pub metadata: EventMetadata,
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: Timestamp,
}

impl From<&StoredEvent> for Event {
    fn from(e: &StoredEvent) -> Self {
        Event {
            position: e.position,
            id: e.id.0,
            aggregate_type: e.aggregate_type().as_str().to_string(),
            aggregate_id: e.aggregate_id,
            version: e.version,
            event_type: e.event_type().to_string(),
            schema_version: e.schema_version,
            user_id: e.user_id.0,
            data: e.payload.data(),
            metadata: (&e.metadata).into(),
            recorded_at: e.recorded_at,
        }
    }
}

/// One page of an entity's history, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<Event>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Events after a position, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventFeed {
    pub items: Vec<Event>,
    /// Pass as `after` to read on: the last item's position, or the `after` that was
    /// sent when there are no items. Fewer items than `limit` means caught up.
    pub next_after: u64,
}

// ---------------------------------------------------------------------------------
// Relations, graph, tags, search, capture
// ---------------------------------------------------------------------------------

/// A typed, directed link between two entities.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Relation {
    pub id: Uuid,
    pub source_id: Uuid,
    pub source_title: String,
    pub target_id: Uuid,
    pub target_title: String,
    /// `contains`, `relates_to`, `blocks`, `duplicates`, `mentions`,
    /// `derived_from`, or a lowercase word of the user's own.
    pub kind: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<RelationView> for Relation {
    fn from(r: RelationView) -> Self {
        Relation {
            id: r.id.0,
            source_id: r.source_id.0,
            source_title: r.source_title,
            target_id: r.target_id.0,
            target_title: r.target_title,
            kind: r.kind,
            created_at: r.created_at,
        }
    }
}

/// An entity's live relations.
#[derive(Debug, Serialize, ToSchema)]
pub struct RelationList {
    pub items: Vec<Relation>,
}

/// A link to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRelation {
    /// The entity the link goes from.
    #[schema(value_type = String, format = Uuid)]
    pub source_id: String,
    /// The entity the link goes to.
    #[schema(value_type = String, format = Uuid)]
    pub target_id: String,
    /// Default `relates_to`. `mentions` links come from `[[wikilinks]]` only.
    #[serde(default)]
    pub kind: Option<String>,
}

/// A node reached by a graph traversal.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = GraphNode)]
pub struct Node {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub entity_type: EntityType,
    pub title: String,
    /// Hops from the root.
    pub depth: u32,
}

impl From<GraphNode> for Node {
    fn from(n: GraphNode) -> Self {
        Node {
            id: n.id.0,
            entity_type: n.entity_type.into(),
            title: n.title,
            depth: n.depth,
        }
    }
}

/// A relation between two reached nodes.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = GraphEdge)]
pub struct Edge {
    pub id: Uuid,
    pub source_id: Uuid,
    pub target_id: Uuid,
    pub kind: String,
}

impl From<GraphEdge> for Edge {
    fn from(e: GraphEdge) -> Self {
        Edge {
            id: e.id.0,
            source_id: e.source_id.0,
            target_id: e.target_id.0,
            kind: e.kind,
        }
    }
}

/// The nodes reached from a root and the edges between them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// True when the node limit (1,000) stopped the traversal early.
    pub truncated: bool,
}

/// A tag with the number of live entities carrying it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Tag {
    pub name: String,
    pub count: u64,
}

/// The caller's tags, most used first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TagList {
    pub items: Vec<Tag>,
}

/// One search result.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHit {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub entity_type: EntityType,
    pub title: String,
    pub tags: Vec<String>,
    /// Relevance; higher is better.
    pub score: f64,
    /// HTML-escaped text around the first match, matches wrapped in `<mark>`.
    pub snippet: String,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl From<StoreHit> for SearchHit {
    fn from(h: StoreHit) -> Self {
        SearchHit {
            id: h.id.0,
            entity_type: h.entity_type.into(),
            title: h.title,
            tags: h.tags,
            score: h.score,
            snippet: h.snippet,
            updated_at: h.updated_at,
        }
    }
}

/// Search results, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    pub items: Vec<SearchHit>,
}

/// A thought to capture.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Capture {
    /// The text, as it came (Markdown), at most 10 MiB.
    pub text: String,
    /// Where it came from (app, URL, selection, …), kept with the note for the
    /// enrichment workflow; at most 16 KiB as JSON.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub context: Option<Map<String, Value>>,
}

/// A captured thought.
#[derive(Debug, Serialize, ToSchema)]
pub struct Captured {
    /// The note, which exists already.
    pub entity_id: Uuid,
    /// The `capture.enrich` run (follow it at `/v1/workflows/runs/{run_id}`).
    pub run_id: Uuid,
}

// ---------------------------------------------------------------------------------
// Plumbing
// ---------------------------------------------------------------------------------

/// The caller of a route that reads: 401 without a credential, 403 without the
/// `read` scope — decided before any body is read.
#[derive(Debug, Clone)]
pub struct CanRead(pub Caller);

/// The caller of a route that writes: 401 without a credential, 403 without the
/// `write` scope — decided before any body is read.
#[derive(Debug, Clone)]
pub struct CanWrite(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for CanRead {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(Permission::Read)?;
        Ok(CanRead(caller))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CanWrite {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(Permission::Write)?;
        Ok(CanWrite(caller))
    }
}

/// The request header naming a retry-safe command.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set (to `true`) on a response that replays an earlier command's result.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
/// The request header whose value is recorded in event metadata.
pub const REQUEST_ID: &str = "x-request-id";
/// Longest `Idempotency-Key` and `X-Request-Id` accepted.
pub const HEADER_TOKEN_CHARS_MAX: usize = 255;

/// Provenance for the events of a request: `source: api`, the caller as actor, and
/// the request's `X-Request-Id` when it has a usable one (visible ASCII, at most
/// 255 characters; others are not recorded).
pub fn command_metadata(caller: &Caller, headers: &HeaderMap) -> DomainMetadata {
    let request_id = headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| is_header_token(v))
        .map(str::to_string);
    DomainMetadata {
        source: Source::Api,
        actor: Some(caller.actor()),
        request_id,
        ..DomainMetadata::default()
    }
}

fn is_header_token(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= HEADER_TOKEN_CHARS_MAX
        && text.bytes().all(|b| b.is_ascii_graphic())
}

/// The command id for a request: derived from its `Idempotency-Key` when it has
/// one, else from `fallback_key` (e.g. a client-chosen entity id), else fresh.
///
/// A key is any visible-ASCII string of at most 255 characters (a UUID is a good
/// choice). The command id is a hash of the user and the key, so two users'
/// keys never meet, and one user's retry with the same key returns the first
/// command's result without writing anything.
pub fn command_id(
    caller: &Caller,
    headers: &HeaderMap,
    fallback_key: Option<&[u8]>,
) -> ApiResult<Uuid> {
    if let Some(value) = headers.get(IDEMPOTENCY_KEY) {
        let key = value
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|k| is_header_token(k))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_idempotency_key",
                    "Idempotency-Key must be 1 to 255 visible ASCII characters; a UUID is a good choice",
                )
            })?;
        return Ok(derived_command_id(caller.user.id, b"key", key.as_bytes()));
    }
    Ok(match fallback_key {
        Some(key) => derived_command_id(caller.user.id, b"id", key),
        None => Uuid::now_v7(),
    })
}

/// A UUIDv8 from SHA-256 of (purpose, user, key).
fn derived_command_id(user: UserId, purpose: &[u8], key: &[u8]) -> Uuid {
    let mut hasher = Sha256::new();
    hasher.update(b"synap/command-id/v1\0");
    hasher.update(purpose);
    hasher.update(b"\0");
    hasher.update(user.as_bytes());
    hasher.update(key);
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// 409 for an `Idempotency-Key` that was first used for a different request.
pub fn idempotency_key_reused() -> ApiError {
    ApiError::conflict(
        "idempotency_key_reused",
        "this Idempotency-Key was already used for a different request; send a new key",
    )
}

/// An id from a body field or query parameter: 400 `invalid_id` naming the field.
pub fn parse_id(field: &str, text: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(text.trim()).map_err(|_| {
        ApiError::bad_request(
            "invalid_id",
            format!("{field}: {text:?} is not a UUID such as 01900000-0000-7000-8000-000000000000"),
        )
        .with("field", field)
    })
}

/// 400 `invalid_query` naming the parameter.
pub fn invalid_query(parameter: &str, detail: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_query", detail).with("parameter", parameter)
}

/// An RFC 3339 time from a query parameter.
pub fn parse_time(parameter: &str, text: &str) -> ApiResult<Timestamp> {
    text.trim().parse::<Timestamp>().map_err(|_| {
        invalid_query(
            parameter,
            format!("{parameter}: {text:?} is not an RFC 3339 time such as 2025-01-31T12:00:00Z"),
        )
    })
}

/// The entity tag of a version: `"<version>"`.
pub fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// What an `If-Match` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: the resource must exist.
    Any,
    /// One of these versions (entity tags that are not versions match nothing).
    Versions(Vec<u64>),
}

impl IfMatch {
    pub fn matches(&self, version: u64) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Versions(versions) => versions.contains(&version),
        }
    }
}

/// The request's `If-Match`, if it has one. Accepts `*`, `"3"`, `W/"3"` and lists
/// of them; tags that are not versions are kept as matching nothing.
pub fn if_match(headers: &HeaderMap) -> Option<IfMatch> {
    let values: Vec<&str> = headers
        .get_all(axum::http::header::IF_MATCH)
        .iter()
        .map(|v| v.to_str().unwrap_or(""))
        .collect();
    if values.is_empty() {
        return None;
    }
    let mut versions = Vec::new();
    for tag in values.iter().flat_map(|v| v.split(',')).map(str::trim) {
        if tag == "*" {
            return Some(IfMatch::Any);
        }
        let tag = tag.strip_prefix("W/").unwrap_or(tag);
        if let Some(version) = tag
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .and_then(|t| t.parse::<u64>().ok())
        {
            versions.push(version);
        }
    }
    Some(IfMatch::Versions(versions))
}

/// 412 `precondition_failed`: the `If-Match` names another version.
pub fn precondition_failed(current: u64) -> ApiError {
    ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
        format!(
            "If-Match does not match: the entity is at version {current}; read it again and retry"
        ),
    )
    .with("current_version", current)
    .with_header(axum::http::header::ETAG, etag(current))
}

/// Most distinct values one repeatable query parameter may carry.
pub const LIST_PARAMETER_VALUES_MAX: usize = 64;

/// Query parameters read by hand, for routes that take repeated or comma-separated
/// values (`type=a&type=b`, `kinds=a,b`). Unknown and repeated single-valued
/// parameters are refused, as serde-parsed queries refuse them.
#[derive(Debug, Default)]
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    /// Parses a raw query string, refusing parameters not in `allowed`.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> ApiResult<Self> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if let Some((name, _)) = pairs.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            return Err(invalid_query(
                name,
                format!(
                    "unknown query parameter {name:?}; this route takes {}",
                    allowed.join(", ")
                ),
            ));
        }
        Ok(QueryParams(pairs))
    }

    /// A parameter given at most once.
    pub fn single(&self, name: &str) -> ApiResult<Option<&str>> {
        let mut values = self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        let first = values.next();
        if values.next().is_some() {
            return Err(invalid_query(name, format!("give {name} at most once")));
        }
        Ok(first.map(String::as_str))
    }

    /// A single parameter parsed with `FromStr`; `what` describes a valid value.
    pub fn parsed<T: std::str::FromStr>(&self, name: &str, what: &str) -> ApiResult<Option<T>> {
        match self.single(name)? {
            None => Ok(None),
            Some(text) => text
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| invalid_query(name, format!("{name}: {text:?} is not {what}"))),
        }
    }

    /// Every value of a repeatable parameter, commas splitting values too; blanks
    /// and repeats dropped; at most [`LIST_PARAMETER_VALUES_MAX`].
    pub fn list(&self, name: &str) -> ApiResult<Vec<String>> {
        let mut values: Vec<String> = Vec::new();
        for value in self
            .0
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            if !values.iter().any(|v| v == value) {
                if values.len() == LIST_PARAMETER_VALUES_MAX {
                    return Err(invalid_query(
                        name,
                        format!("give at most {LIST_PARAMETER_VALUES_MAX} values of {name}"),
                    ));
                }
                values.push(value.to_string());
            }
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_reads_versions_lists_and_stars() {
        let mut headers = HeaderMap::new();
        assert_eq!(if_match(&headers), None);
        headers.insert(
            "if-match",
            HeaderValue::from_static("\"3\", W/\"4\", \"x\""),
        );
        assert_eq!(if_match(&headers), Some(IfMatch::Versions(vec![3, 4])));
        headers.insert("if-match", HeaderValue::from_static("*"));
        assert_eq!(if_match(&headers), Some(IfMatch::Any));
        headers.insert("if-match", HeaderValue::from_static("3"));
        assert_eq!(if_match(&headers), Some(IfMatch::Versions(vec![])));
    }

    #[test]
    fn derived_command_ids_differ_per_user_and_purpose() {
        let a = UserId(Uuid::now_v7());
        let b = UserId(Uuid::now_v7());
        let key = b"retry-1";
        assert_eq!(
            derived_command_id(a, b"key", key),
            derived_command_id(a, b"key", key)
        );
        assert_ne!(
            derived_command_id(a, b"key", key),
            derived_command_id(b, b"key", key)
        );
        assert_ne!(
            derived_command_id(a, b"key", key),
            derived_command_id(a, b"id", key)
        );
        assert_eq!(derived_command_id(a, b"key", key).get_version_num(), 8);
    }

    #[test]
    fn query_params_refuse_unknown_and_repeated_single_values() {
        let q = QueryParams::parse(Some("type=a,b&type=c&after=3"), &["type", "after"]).unwrap();
        assert_eq!(q.list("type").unwrap(), vec!["a", "b", "c"]);
        let many: Vec<String> = (0..65).map(|i| format!("k={i}")).collect();
        let many = QueryParams::parse(Some(&many.join("&")), &["k"]).unwrap();
        assert!(many.list("k").is_err());
        assert_eq!(q.parsed::<u64>("after", "a number").unwrap(), Some(3));
        assert!(q.single("type").is_err());
        assert!(QueryParams::parse(Some("nope=1"), &["type"]).is_err());
    }
}
