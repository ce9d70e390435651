//! The store traits and their request/answer types.
//!
//! Every operation takes the acting user's [`Scope`]; no operation can read or change
//! another user's data (isolation in one place: here and in each backend's queries).

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use synap_domain::entity::{ContentRef, EntityState, EntityType, TaskFields, TaskStatus};
use synap_domain::ids::{ContentHash, EntityId, RelationId, UserId};
use synap_domain::relation::RelationKind;
use synap_domain::{DomainError, EntityCommand, EventMetadata, StoredEvent};
use uuid::Uuid;

/// The acting user. Every store operation is confined to this user's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scope {
    pub user_id: UserId,
}

impl Scope {
    pub fn user(user_id: UserId) -> Self {
        Scope { user_id }
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The domain refused the command; nothing was written.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// A stale expected version; nothing was written. (A create with an id that is
    /// already used, by anyone, is a validation error on `id` instead.)
    #[error(
        "version conflict on {aggregate_id}: expected version {expected}, current version is {current}"
    )]
    Conflict {
        aggregate_id: Uuid,
        expected: u64,
        current: u64,
    },
    /// A query parameter was malformed (a cursor, a limit, a query string).
    #[error("{0}")]
    InvalidInput(String),
    /// The database is busy (e.g. another process holds the write lock) for longer
    /// than the configured wait; retrying later can succeed.
    #[error("the database is busy: {0}")]
    Busy(String),
    /// The database server cannot be reached (PostgreSQL down, a wrong host or
    /// port, refused credentials); retrying once it is reachable can succeed.
    #[error("the database cannot be reached: {0}")]
    Unavailable(String),
    /// The store shut down while the operation was pending.
    #[error("the store is closed")]
    Closed,
    /// Stored data could not be read back (a bug or a damaged database).
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    /// Any other backend failure (I/O, SQL).
    #[error("storage failure: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

// ---------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------

/// What a command acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A command to one entity (create, change, delete, restore, revert).
    Entity {
        id: EntityId,
        command: EntityCommand,
    },
    /// Create a typed link `source → target`.
    Link {
        id: RelationId,
        source_id: EntityId,
        target_id: EntityId,
        kind: RelationKind,
    },
    /// Delete a link.
    Unlink { id: RelationId },
    /// Record a client's own event (`user.event_logged`) in the caller's user
    /// stream: the original Synap's `events.log`.
    LogEvent {
        event_type: String,
        data: serde_json::Value,
    },
}

/// A command with its envelope.
#[derive(Debug, Clone)]
pub struct CommandRequest {
    pub scope: Scope,
    /// Idempotency key, unique forever: it becomes the id of the command's first
    /// event. Sending the same id again returns the first outcome and writes nothing.
    pub command_id: Uuid,
    pub target: Target,
    /// When set, the command fails with [`StoreError::Conflict`] unless the
    /// aggregate is at exactly this version (0 = does not exist yet).
    pub expected_version: Option<u64>,
    pub metadata: EventMetadata,
    /// Workflow runs the command triggers: inserted in the command's transaction
    /// when it appends events (nothing when it is refused, replayed or a no-op).
    pub triggers: Vec<crate::workflow::NewRun>,
}

impl CommandRequest {
    /// A request with a fresh command id and no expected version.
    pub fn new(scope: Scope, target: Target, metadata: EventMetadata) -> Self {
        CommandRequest {
            scope,
            command_id: Uuid::now_v7(),
            target,
            expected_version: None,
            metadata,
            triggers: Vec::new(),
        }
    }
    pub fn expecting(mut self, version: Option<u64>) -> Self {
        self.expected_version = version;
        self
    }
    /// Adds a workflow run the command triggers (see [`CommandRequest::triggers`]).
    pub fn triggering(mut self, run: crate::workflow::NewRun) -> Self {
        self.triggers.push(run);
        self
    }
}

/// One appended event, as reported back to the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendedEvent {
    pub position: u64,
    pub id: Uuid,
    pub aggregate_id: Uuid,
    pub version: u64,
    #[serde(rename = "type")]
    pub event_type: String,
}

/// The result of a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOutcome {
    /// The aggregate the command was addressed to.
    pub aggregate_id: Uuid,
    /// Its version after the command.
    pub version: u64,
    /// Every event the command appended, in order (including `mentions` relations
    /// created or deleted because of wikilinks). Empty when nothing changed.
    pub events: Vec<AppendedEvent>,
    /// True when this answer is a replay of an earlier command with the same id.
    #[serde(default)]
    pub replayed: bool,
}

// ---------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------

/// An entity as read from the projections: its state plus derived fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntityView {
    pub id: EntityId,
    #[serde(rename = "type")]
    pub entity_type: EntityType,
    pub title: String,
    pub preview: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<ContentRef>,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskFields>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Attached files, oldest first (bytes at `/v1/entities/{id}/attachments/{attachment_id}`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<synap_domain::entity::Attachment>,
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<Timestamp>,
}

impl EntityView {
    /// The view of a state (the preview needs the body, which states don't carry).
    pub fn from_state(state: &EntityState, preview: String) -> Self {
        EntityView {
            id: state.id,
            entity_type: state.entity_type,
            title: state.title.clone(),
            preview,
            content: state.content.clone(),
            tags: state.tags.to_vec(),
            task: state.visible_task().cloned(),
            metadata: state.metadata.clone(),
            attachments: state.attachments.values().cloned().collect(),
            version: state.version,
            created_at: state.created_at,
            updated_at: state.updated_at,
            deleted_at: state.deleted_at,
        }
    }
}

/// Which point of an entity's history to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// The state right after this version.
    Version(u64),
    /// The state as it was at this moment (the last version recorded at or before it).
    Time(Timestamp),
}

/// A page request: `limit` (1..=500, default 50) and an opaque cursor from the
/// previous page's `next_cursor`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl PageRequest {
    /// The effective limit, or an error naming the allowed range.
    pub fn limit(&self) -> StoreResult<u32> {
        use synap_domain::limits::{PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX};
        match self.limit {
            None => Ok(PAGE_LIMIT_DEFAULT),
            Some(limit) if (1..=PAGE_LIMIT_MAX).contains(&limit) => Ok(limit),
            Some(limit) => Err(StoreError::InvalidInput(format!(
                "limit {limit} is out of range; use 1 to {PAGE_LIMIT_MAX}"
            ))),
        }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass this back to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Filters for listing entities. Listing order: most recently updated first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntityFilter {
    pub entity_type: Option<EntityType>,
    pub tag: Option<String>,
    pub status: Option<TaskStatus>,
    /// `false`: live entities only; `true`: deleted entities only.
    pub deleted: bool,
    pub updated_since: Option<Timestamp>,
}

/// Which links of an entity to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Links from the entity.
    Out,
    /// Links to the entity (backlinks).
    In,
    #[default]
    Both,
}

/// A live relation, with the title of each end for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelationView {
    pub id: RelationId,
    pub source_id: EntityId,
    pub source_title: String,
    pub target_id: EntityId,
    pub target_title: String,
    pub kind: String,
    pub created_at: Timestamp,
}

/// A graph traversal request: breadth-first from `root` along relations in both
/// directions, to `depth` (≤ 5) hops, optionally only along some kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphRequest {
    pub root: EntityId,
    pub depth: u32,
    pub kinds: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphNode {
    pub id: EntityId,
    #[serde(rename = "type")]
    pub entity_type: EntityType,
    pub title: String,
    /// Hops from the root.
    pub depth: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphEdge {
    pub id: RelationId,
    pub source_id: EntityId,
    pub target_id: EntityId,
    pub kind: String,
}

/// The nodes reached and the edges between them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Graph {
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<GraphEdge>,
    /// True when the node limit stopped the traversal early.
    pub truncated: bool,
}

/// A tag with the number of live entities carrying it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagCount {
    pub name: String,
    pub count: u64,
}

/// A full-text search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchRequest {
    pub query: String,
    pub entity_type: Option<EntityType>,
    pub tag: Option<String>,
    pub limit: Option<u32>,
}

/// One search result: the entity, a relevance score (higher is better) and a
/// snippet with matches wrapped in `<mark>` (HTML-escaped text).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    pub id: EntityId,
    #[serde(rename = "type")]
    pub entity_type: EntityType,
    pub title: String,
    pub tags: Vec<String>,
    pub score: f64,
    pub snippet: String,
    pub updated_at: Timestamp,
}

/// A read of the log: events of the caller after `after`, in position order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub after: u64,
    /// Event types (`entity.created`, …); empty = all.
    pub types: Vec<String>,
    pub aggregate_id: Option<Uuid>,
    /// Events recorded at or after this time (inclusive).
    pub since: Option<Timestamp>,
    /// Events recorded before this time (exclusive).
    pub until: Option<Timestamp>,
    pub limit: Option<u32>,
}

/// A content body and its reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub content: ContentRef,
    pub body: String,
}

// ---------------------------------------------------------------------------------
// Maintenance
// ---------------------------------------------------------------------------------

/// What `admin verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub events_checked: u64,
    /// One human-readable line per difference between the live projections and a
    /// rebuild from the log. Empty means the projections are exactly the fold.
    pub differences: Vec<String>,
    /// Findings that are not damage: objects no content refers to (left by a write
    /// whose transaction rolled back after its object was put; harmless).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }
}

/// What `admin rebuild` did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RebuildReport {
    pub events: u64,
    pub entities: u64,
    pub relations: u64,
    pub seconds: f64,
}

/// Progress callback for long operations: `(done, total)`.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// Size figures for `admin stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub events: u64,
    pub entities: u64,
    pub relations: u64,
    pub users: u64,
    /// Distinct content versions stored (one per user and hash).
    pub content_versions: u64,
    /// Bytes of distinct content (each version counted once).
    pub content_bytes: u64,
    /// Bytes the database occupies on disk (all files).
    pub bytes_on_disk: u64,
    /// `bytes_on_disk / content_bytes` (0 when there is no content).
    pub amplification: f64,
}

/// A user account, without secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserSummary {
    pub id: UserId,
    pub email: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<Timestamp>,
}

/// An account to create.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewUser {
    pub email: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
    /// An Argon2id PHC string (never a password); `None` for accounts that only
    /// use tokens (the local owner).
    pub password_hash: Option<String>,
    pub display_name: Option<String>,
}

/// An API token to store. The secret itself is never stored: only a lookup
/// prefix and the SHA-256 of the whole token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub id: Uuid,
    pub user_id: UserId,
    pub name: String,
    /// The public part of the token used to find it (unique).
    pub prefix: String,
    /// Hex SHA-256 of the whole token string.
    pub secret_hash: String,
    /// Any of `read`, `write`, `admin`.
    pub scopes: Vec<String>,
    pub expires_at: Option<Timestamp>,
}

/// What is known about a token, shown to its owner (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
}

/// A token found by prefix, for authentication: compare `secret_hash` in constant
/// time, then check `revoked_at`, `expires_at` and the user's `disabled_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenCredential {
    pub token: TokenInfo,
    pub secret_hash: String,
    pub user: UserSummary,
}

/// A browser session to store; `id_hash` is the SHA-256 of the cookie value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub id_hash: String,
    pub user_id: UserId,
    pub expires_at: Timestamp,
}

/// A stored session with its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id_hash: String,
    pub user: UserSummary,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub last_seen_at: Timestamp,
}

// ---------------------------------------------------------------------------------
// Traits
// ---------------------------------------------------------------------------------

/// The write side and the log.
///
/// Contract:
/// - `execute` runs one command atomically: its events are appended, every
///   projection it touches is updated and its idempotency record is written in one
///   transaction, or nothing is written. When it returns `Ok`, the command is
///   durable (committed and, with durable commits on, synced to disk).
/// - `(aggregate_id, version)` exists at most once; versions have no gaps. A stale
///   `expected_version` fails with `Conflict` naming the current version.
/// - Positions are strictly increasing in commit order: a reader that has seen
///   position `p` will never later see a new event at or below `p`.
#[async_trait]
pub trait EventStore: Send + Sync {
    async fn execute(&self, request: CommandRequest) -> StoreResult<CommandOutcome>;

    /// The caller's events after `filter.after`, oldest first, at most `limit`
    /// (default 50, max 500).
    async fn read_events(
        &self,
        scope: &Scope,
        filter: &EventFilter,
    ) -> StoreResult<Vec<StoredEvent>>;

    /// The highest committed position of the whole log (0 for an empty log). Not
    /// scoped: it tells that something was committed, never what or by whom.
    async fn head_position(&self) -> StoreResult<u64>;

    /// Waits until the head position is above `after` or `timeout` passes, and
    /// returns the head position. Wakes at once for commits in this process, and
    /// within a short poll interval for commits by other processes.
    async fn wait_for_events(&self, after: u64, timeout: Duration) -> StoreResult<u64>;

    /// The object store that holds bodies over its inline threshold and every
    /// attachment's bytes; `None` when the store was opened without one (bodies
    /// then stay inline and attachments are refused). See [`crate::attachments`].
    fn objects(&self) -> Option<std::sync::Arc<crate::objects::Objects>> {
        None
    }
}

/// The read side: queries over the projections (and the log, for time travel).
#[async_trait]
pub trait ReadModel: Send + Sync {
    /// Current state, deleted entities included (see `deleted_at`).
    async fn entity(&self, scope: &Scope, id: EntityId) -> StoreResult<Option<EntityView>>;
    /// State at a version or time: a fold of the log from the nearest snapshot.
    /// `None` when the entity does not exist, did not exist yet at that point, or
    /// the version is above the current one.
    async fn entity_at(
        &self,
        scope: &Scope,
        id: EntityId,
        as_of: AsOf,
    ) -> StoreResult<Option<EntityView>>;
    /// A content body by hash.
    async fn content(&self, scope: &Scope, hash: ContentHash) -> StoreResult<Option<Content>>;
    /// An entity's events, oldest first.
    async fn history(
        &self,
        scope: &Scope,
        id: EntityId,
        page: &PageRequest,
    ) -> StoreResult<Page<StoredEvent>>;
    async fn list_entities(
        &self,
        scope: &Scope,
        filter: &EntityFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<EntityView>>;
    /// Live relations of a live entity (relations whose other end is deleted are hidden).
    async fn relations(
        &self,
        scope: &Scope,
        id: EntityId,
        direction: Direction,
    ) -> StoreResult<Vec<RelationView>>;
    async fn graph(&self, scope: &Scope, request: &GraphRequest) -> StoreResult<Graph>;
    /// Tags with the number of live entities carrying each, most used first.
    async fn tags(&self, scope: &Scope) -> StoreResult<Vec<TagCount>>;
    /// Full-text search over titles and content of live entities, best first.
    async fn search(&self, scope: &Scope, request: &SearchRequest) -> StoreResult<Vec<SearchHit>>;
}

/// Checks and repairs of derived data, and size figures. Not scoped: operator tools.
#[async_trait]
pub trait Maintenance: Send + Sync {
    /// Rebuilds every projection from the log off to the side and compares.
    async fn verify(&self, progress: Progress<'_>) -> StoreResult<VerifyReport>;
    /// Drops and rebuilds every projection (and drops snapshots) from the log.
    async fn rebuild(&self, progress: Progress<'_>) -> StoreResult<RebuildReport>;
    async fn stats(&self) -> StoreResult<Stats>;
}

/// Accounts, as far as the store needs them.
#[async_trait]
pub trait Accounts: Send + Sync {
    /// The local owner, who exists from the first start (created then).
    async fn local_owner(&self) -> StoreResult<UserSummary>;
    async fn user(&self, id: UserId) -> StoreResult<Option<UserSummary>>;
    /// A user by email (case-insensitive).
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserSummary>>;
    /// Creates a user (appending `user.created`, which carries no secret). Fails
    /// with a validation error on `email` when it is malformed or taken, on `role`
    /// when the role is unknown.
    async fn create_user(&self, user: NewUser) -> StoreResult<UserSummary>;
    /// The stored password hash (PHC string) of a user, if any.
    async fn password_hash(&self, user: UserId) -> StoreResult<Option<String>>;
    /// Replaces a user's password hash.
    async fn set_password_hash(&self, user: UserId, password_hash: &str) -> StoreResult<()>;

    /// Stores a token (appending `user.token_created` with id, name, scopes and
    /// expiry — never the secret or its hash).
    async fn create_token(&self, token: NewToken) -> StoreResult<TokenInfo>;
    /// The user's tokens, newest first, revoked ones included.
    async fn list_tokens(&self, user: UserId) -> StoreResult<Vec<TokenInfo>>;
    /// Revokes one of the user's tokens (appending `user.token_revoked`). `false`
    /// when the user has no such live token — another user's token id included.
    async fn revoke_token(&self, user: UserId, token_id: Uuid) -> StoreResult<bool>;
    /// A token by its prefix, with its user and secret hash, for authentication.
    async fn token_by_prefix(&self, prefix: &str) -> StoreResult<Option<TokenCredential>>;
    /// Records that a token was used at `at` (callers throttle how often).
    async fn touch_token(&self, token_id: Uuid, at: Timestamp) -> StoreResult<()>;

    async fn create_session(&self, session: NewSession) -> StoreResult<()>;
    /// A live or expired session by id hash (callers check `expires_at`).
    async fn session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>>;
    /// Moves a session's expiry and last-seen time forward.
    async fn extend_session(
        &self,
        id_hash: &str,
        expires_at: Timestamp,
        seen_at: Timestamp,
    ) -> StoreResult<()>;
    async fn delete_session(&self, id_hash: &str) -> StoreResult<()>;
}

/// Everything a backend provides. Consumers hold an `Arc<dyn Store>`; only the
/// binary picks the backend.
pub trait Store:
    EventStore
    + ReadModel
    + Maintenance
    + Accounts
    + crate::workflow::WorkflowStore
    + crate::vectors::VectorIndex
    + crate::webhooks::WebhookStore
    + crate::suggestions::SuggestionStore
{
}

impl<
    T: EventStore
        + ReadModel
        + Maintenance
        + Accounts
        + crate::workflow::WorkflowStore
        + crate::vectors::VectorIndex
        + crate::webhooks::WebhookStore
        + crate::suggestions::SuggestionStore,
> Store for T
{
}

/// Opaque cursors: base64url of a small JSON value. Backends put whatever key they
/// sort by inside; clients only pass it back.
pub mod cursor {
    use super::StoreError;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde::{Serialize, de::DeserializeOwned};

    pub fn encode<T: Serialize>(key: &T) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
    }

    pub fn decode<T: DeserializeOwned>(cursor: &str) -> Result<T, StoreError> {
        let invalid = || {
            StoreError::InvalidInput(
                "the cursor is not one this server issued; start from the first page".into(),
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        serde_json::from_slice(&bytes).map_err(|_| invalid())
    }
}

/// The wait between polls for commits made by other processes.
pub const FOREIGN_COMMIT_POLL: Duration = Duration::from_millis(200);

/// Where the store gets "now" from. Injected so tests can control time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug)]
pub struct ManualClock(std::sync::Mutex<Timestamp>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock(std::sync::Mutex::new(start))
    }
    pub fn set(&self, now: Timestamp) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }
    pub fn advance(&self, by: jiff::SignedDuration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now = now.saturating_add(by).unwrap_or(*now);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
