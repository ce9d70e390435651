//! Moving a whole instance from one backend to another (`synap admin migrate`):
//! what moves, as plain data, and the two halves of the copy.
//!
//! What moves is the source of truth only — the event log, the content bodies,
//! the accounts (users with their password hashes, API tokens with their secret
//! hashes, sessions, webhook subscriptions, suggestions) and the idempotency records. Projections and snapshots are
//! derived: the target rebuilds them from the copied log ([`Import::finish_import`]).
//!
//! Positions are not copied: the target assigns its own, in the same order, so the
//! log reads the same in both. An idempotency record names its command's first
//! event by its [`EventKey`], which the target resolves to its new position.
//!
//! The copy runs in bounded pages ([`EVENTS_PER_BATCH`], [`CONTENTS_PER_BATCH`] and
//! [`CONTENT_BATCH_BYTES_MAX`], [`OUTCOMES_PER_BATCH`]); each page is one
//! transaction on the target. [`copy`] drives it: counts (fixing the log's end),
//! accounts, contents, events up to that end, idempotency records, then the
//! rebuild. Contents are copied before the events that refer to them, so a source
//! still being written never yields an event without its body.

use crate::api::{Progress, RebuildReport, StoreResult};
use async_trait::async_trait;
use jiff::Timestamp;
use serde::Serialize;
use std::time::Instant;
use synap_domain::StoredEvent;
use synap_domain::ids::{ContentHash, UserId};
use uuid::Uuid;

/// Events per page, and per transaction on the target.
pub const EVENTS_PER_BATCH: usize = 5_000;
/// Content rows per page.
pub const CONTENTS_PER_BATCH: usize = 1_000;
/// Body bytes after which a content page ends early (a body is at most
/// `CONTENT_BYTES_MAX`, so a page holds at most this plus one body).
pub const CONTENT_BATCH_BYTES_MAX: usize = 32 * 1024 * 1024;
/// Idempotency records per page.
pub const OUTCOMES_PER_BATCH: usize = 10_000;

/// What a source holds, counted before the copy starts. `head_position` fixes the
/// end of the log that is copied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Inventory {
    pub events: u64,
    pub contents: u64,
    pub users: u64,
    pub tokens: u64,
    pub sessions: u64,
    pub outcomes: u64,
    /// The last position of the log (0 when empty).
    pub head_position: u64,
    /// The earliest and latest `recorded_at` of the log, so the target can prepare
    /// storage for the whole time range first (PostgreSQL's monthly partitions).
    pub first_recorded_at: Option<Timestamp>,
    pub last_recorded_at: Option<Timestamp>,
}

/// One content version of a user, with its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentRecord {
    pub user_id: UserId,
    pub hash: ContentHash,
    pub size: u64,
    pub media_type: String,
    /// Where the body lives (`db`: in `body`).
    pub storage: String,
    pub body: Option<String>,
    /// The object store provider and key of a body or attachment kept there
    /// (`objects::content_key`); the bytes themselves stay in the object store,
    /// which source and target share.
    pub object_provider: Option<String>,
    pub object_key: Option<String>,
    pub created_at: Timestamp,
}

/// A user row, secrets included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: UserId,
    pub email: String,
    /// The case-folded address the uniqueness check uses.
    pub email_key: String,
    pub password_hash: Option<String>,
    pub display_name: Option<String>,
    pub role: String,
    pub created_at: Timestamp,
    pub disabled_at: Option<Timestamp>,
}

/// An API token row: prefix and SHA-256 of the token, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: Uuid,
    pub user_id: UserId,
    pub name: String,
    pub prefix: String,
    pub secret_hash: String,
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A session row (the stored shape; `api::SessionRecord` is the read shape, with
/// its user joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id_hash: String,
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub last_seen_at: Timestamp,
}

/// Every account row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountsRecord {
    pub users: Vec<UserRecord>,
    pub tokens: Vec<TokenRecord>,
    pub sessions: Vec<SessionRow>,
    /// Webhook subscriptions (with their secrets and delivery state).
    pub webhooks: Vec<crate::webhooks::Webhook>,
    /// Suggestions, decided or not (a dismissed one must stay dismissed).
    pub suggestions: Vec<crate::suggestions::Suggestion>,
}

/// Where an event sits in the log, independent of positions: its stream and
/// version, plus its time, which lets a partitioned log look in one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventKey {
    pub aggregate_id: Uuid,
    pub version: u64,
    pub recorded_at: Timestamp,
}

/// An idempotency record. `first_event` names the command's first event (`None`
/// when it appended none), through which the target finds that event's new
/// position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeRecord {
    pub command_id: Uuid,
    pub user_id: UserId,
    pub aggregate_id: Uuid,
    pub version: u64,
    pub event_count: u32,
    pub first_event: Option<EventKey>,
}

/// Reading a whole instance out, page by page. Each page is read in one
/// consistent snapshot; pages are keyed so writes between them are never skipped
/// nor repeated.
#[async_trait]
pub trait Export: Send + Sync {
    /// What the source holds now.
    async fn counts(&self) -> StoreResult<Inventory>;
    /// Events with `after < position <= through`, in position order, at most
    /// `limit` — fewer when a page would end inside one command: a page never
    /// splits the events of a command (unless one command alone has more than
    /// `limit`), so they keep consecutive positions on the target, which replays
    /// a repeated command by its first position and event count.
    async fn export_events(
        &self,
        after: u64,
        through: u64,
        limit: usize,
    ) -> StoreResult<Vec<StoredEvent>>;
    /// Content rows after `after` (the last `(user, hash)` of the previous page),
    /// in key order, at most `limit` and about [`CONTENT_BATCH_BYTES_MAX`] of bodies.
    async fn export_contents(
        &self,
        after: Option<(UserId, ContentHash)>,
        limit: usize,
    ) -> StoreResult<Vec<ContentRecord>>;
    /// Every user, token and session (a few per person: one page).
    async fn export_accounts(&self) -> StoreResult<AccountsRecord>;
    /// Idempotency records with a command id after `after`, in id order, at most
    /// `limit`, leaving out those whose first event lies beyond `through`.
    async fn export_outcomes(
        &self,
        after: Option<Uuid>,
        through: u64,
        limit: usize,
    ) -> StoreResult<Vec<OutcomeRecord>>;
}

/// Writing a whole instance in, into an empty store. Call in this order:
/// `begin_import`, `import_accounts`, `import_contents`…, `import_events`… (in
/// log order), `import_outcomes`…, `finish_import`.
#[async_trait]
pub trait Import: Send + Sync {
    /// Refuses (`InvalidInput`) unless the store holds no events and no users,
    /// and prepares storage for what `inventory` describes.
    async fn begin_import(&self, inventory: &Inventory) -> StoreResult<()>;
    async fn import_accounts(&self, accounts: AccountsRecord) -> StoreResult<()>;
    async fn import_contents(&self, batch: Vec<ContentRecord>) -> StoreResult<()>;
    /// Appends events after those already imported, in the given order, in one
    /// transaction; positions are the store's own. Positions of the events are
    /// ignored.
    async fn import_events(&self, batch: Vec<StoredEvent>) -> StoreResult<()>;
    /// Records idempotency records; their events must be imported already.
    async fn import_outcomes(&self, batch: Vec<OutcomeRecord>) -> StoreResult<()>;
    /// Checks the imported log's integrity and rebuilds every projection from it.
    async fn finish_import(&self, progress: Progress<'_>) -> StoreResult<RebuildReport>;
}

/// The stages [`copy`] reports progress for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Contents,
    Events,
    Outcomes,
    Rebuild,
}

impl Stage {
    /// What the stage does, for progress lines.
    pub fn describe(self) -> &'static str {
        match self {
            Stage::Contents => "copying contents",
            Stage::Events => "copying events",
            Stage::Outcomes => "copying idempotency records",
            Stage::Rebuild => "rebuilding projections",
        }
    }
}

/// Progress of [`copy`]: `(stage, done, total)`.
pub type CopyProgress<'a> = &'a (dyn Fn(Stage, u64, u64) + Send + Sync);

/// What [`copy`] moved.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CopyReport {
    pub events: u64,
    pub contents: u64,
    pub users: u64,
    pub tokens: u64,
    pub sessions: u64,
    pub outcomes: u64,
    pub rebuild: RebuildReport,
    pub seconds: f64,
}

/// Copies everything `source` holds into the empty `target` and rebuilds the
/// target's projections.
pub async fn copy(
    source: &dyn Export,
    target: &dyn Import,
    progress: CopyProgress<'_>,
) -> StoreResult<CopyReport> {
    let started = Instant::now();
    let inventory = source.counts().await?;
    target.begin_import(&inventory).await?;
    let mut report = CopyReport::default();

    let accounts = source.export_accounts().await?;
    report.users = accounts.users.len() as u64;
    report.tokens = accounts.tokens.len() as u64;
    report.sessions = accounts.sessions.len() as u64;
    target.import_accounts(accounts).await?;

    let mut after = None;
    loop {
        progress(Stage::Contents, report.contents, inventory.contents);
        let page = source.export_contents(after, CONTENTS_PER_BATCH).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.user_id, last.hash));
        report.contents += page.len() as u64;
        target.import_contents(page).await?;
    }

    let mut after = 0;
    loop {
        progress(Stage::Events, report.events, inventory.events);
        let page = source
            .export_events(after, inventory.head_position, EVENTS_PER_BATCH)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        report.events += page.len() as u64;
        target.import_events(page).await?;
    }

    let mut after = None;
    loop {
        progress(Stage::Outcomes, report.outcomes, inventory.outcomes);
        let page = source
            .export_outcomes(after, inventory.head_position, OUTCOMES_PER_BATCH)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.command_id);
        report.outcomes += page.len() as u64;
        target.import_outcomes(page).await?;
    }

    let rebuild_progress = |done, total| progress(Stage::Rebuild, done, total);
    report.rebuild = target.finish_import(&rebuild_progress).await?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
