//! The conformance suite: what every backend of [`Store`] must do, written once as
//! generic test bodies and expanded per backend by [`conformance_suite!`](crate::conformance_suite).
//!
//! A backend provides a [`StoreFactory`] (a fresh, empty store per test, on the
//! clock it is given) and expands the suite in its integration tests:
//!
//! ```text
//! struct Sqlite;
//! impl synap_store::conformance::StoreFactory for Sqlite {
//!     async fn open(clock: Arc<dyn Clock>) -> (Arc<dyn Store>, Guard) { ... }
//! }
//! synap_store::conformance_suite!(Sqlite);
//! ```
//!
//! The expanding crate needs `tokio` (with `macros` and `rt-multi-thread`) as a
//! dev-dependency. Every test here checks a behaviour the traits in [`crate::api`]
//! document; a test that only one backend could pass does not belong here.

use crate::api::{
    AsOf, CommandOutcome, CommandRequest, Direction, EntityFilter, EntityView, EventFilter,
    GraphRequest, ManualClock, NewSession, NewToken, NewUser, PageRequest, Scope, SearchHit,
    SearchRequest, SessionRecord, Store, StoreError, StoreResult, SystemClock, Target, TokenInfo,
};
use crate::api::{Clock, TagCount};
use crate::fold::{SNAPSHOT_INTERVAL, fold_entity};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use synap_domain::command::{Change, CreateEntity, EntityCommand, NewContent, TaskInput};
use synap_domain::entity::{ContentRef, DEFAULT_MEDIA_TYPE, EntityType, TaskStatus};
use synap_domain::event::{AggregateType, EntityEvent, EventMetadata, EventPayload, Source};
use synap_domain::ids::{ContentHash, EntityId, EventId, RelationId, UserId};
use synap_domain::relation::RelationKind;
use synap_domain::text::preview;
use synap_domain::{DomainError, StoredEvent};
use tokio::task::JoinSet;

/// The vector tests live in their own module; the suite's macro finds them here.
pub use crate::conformance_vectors::{
    nearest_sees_only_the_callers_live_entities_by_best_chunk,
    vector_backlog_follows_edits_deletes_and_models,
};
pub use crate::conformance_webhooks::{
    events_start_deliveries_and_failures_disable_the_subscription,
    webhook_subscriptions_are_checked_limited_and_isolated,
};
use uuid::Uuid;

// ---------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------

/// Whatever must stay alive while a test store is used (a temporary directory, a
/// throwaway database). Dropped after the store.
pub type Guard = Box<dyn std::any::Any + Send>;

/// How a backend makes a fresh, empty store for one test.
pub trait StoreFactory: 'static {
    /// Opens a new store with nothing in it but the local owner, reading "now" from
    /// `clock`. Panics if the store cannot be opened (the test cannot run).
    fn open(clock: Arc<dyn Clock>) -> impl Future<Output = (Arc<dyn Store>, Guard)> + Send;

    /// Whether the backend can run here at all (a server backend whose server is
    /// missing says no, and its suite is skipped with a notice — unless the
    /// backend itself insists, as PostgreSQL does under `SYNAP_REQUIRE_POSTGRES=1`).
    fn available() -> bool {
        true
    }
}

/// Longest one whole test may take before it counts as hung.
pub const TEST_DURATION_MAX: Duration = Duration::from_secs(300);
/// Longest the suite waits for an event, a wake-up or a spawned task.
pub const WAIT_MAX: Duration = Duration::from_secs(30);

/// Runs one test body, failing it when it takes longer than [`TEST_DURATION_MAX`].
pub async fn bounded_test(body: impl Future<Output = ()>) {
    if tokio::time::timeout(TEST_DURATION_MAX, body).await.is_err() {
        panic!("the test did not finish within {TEST_DURATION_MAX:?}");
    }
}

/// Awaits `future`, failing the test when it takes longer than [`WAIT_MAX`].
async fn waited<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT_MAX, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what} did not finish within {WAIT_MAX:?}"),
    }
}

/// A fresh store for one test, with the local owner as the acting user.
pub struct Harness {
    pub store: Arc<dyn Store>,
    pub owner: Scope,
    pub clock: Option<Arc<ManualClock>>,
    // Declared last: dropped after the store.
    _guard: Guard,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl Harness {
    /// A store on the system clock.
    pub async fn new<F: StoreFactory>() -> Self {
        let (store, guard) = F::open(Arc::new(SystemClock)).await;
        Self::finish(store, guard, None).await
    }

    /// A store whose clock stands at `start` and moves only when the test moves it.
    pub async fn with_clock<F: StoreFactory>(start: Timestamp) -> Self {
        let clock = Arc::new(ManualClock::new(start));
        let (store, guard) = F::open(clock.clone()).await;
        Self::finish(store, guard, Some(clock)).await
    }

    async fn finish(store: Arc<dyn Store>, guard: Guard, clock: Option<Arc<ManualClock>>) -> Self {
        let owner = store
            .local_owner()
            .await
            .expect("the local owner exists from the first open");
        Harness {
            store,
            owner: Scope::user(owner.id),
            clock,
            _guard: guard,
        }
    }

    /// Sets the store's clock (only for stores made by [`Harness::with_clock`]).
    pub fn set_time(&self, now: Timestamp) {
        self.clock
            .as_ref()
            .expect("this test store has a manual clock")
            .set(now);
    }

    /// The local owner, acting.
    pub fn me(&self) -> Actor<'_> {
        self.actor(self.owner)
    }

    /// Another user, acting.
    pub fn actor(&self, scope: Scope) -> Actor<'_> {
        Actor {
            store: self.store.as_ref(),
            scope,
        }
    }

    pub async fn head(&self) -> u64 {
        self.store.head_position().await.expect("head position")
    }

    /// A second user (a member), for isolation tests.
    pub async fn second_user(&self, email: &str) -> Scope {
        let user = self
            .store
            .create_user(new_user(email, "member"))
            .await
            .expect("create a second user");
        Scope::user(user.id)
    }
}

/// One user acting on a store: small helpers that keep the tests readable.
#[derive(Clone, Copy)]
pub struct Actor<'a> {
    pub store: &'a dyn Store,
    pub scope: Scope,
}

impl std::fmt::Debug for Actor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actor")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// An account to create, without a password or display name.
fn new_user(email: &str, role: &str) -> NewUser {
    NewUser {
        email: email.to_string(),
        role: role.to_string(),
        ..Default::default()
    }
}

fn api_metadata() -> EventMetadata {
    EventMetadata {
        source: Source::Api,
        ..Default::default()
    }
}

fn entity_request(scope: Scope, id: EntityId, command: EntityCommand) -> CommandRequest {
    CommandRequest::new(scope, Target::Entity { id, command }, api_metadata())
}

fn kind(name: &str) -> RelationKind {
    RelationKind::parse(name).expect("a valid relation kind")
}

fn note_titled(title: &str, body: &str) -> CreateEntity {
    CreateEntity {
        title: Some(title.to_string()),
        ..CreateEntity::note(body)
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not a JSON object: {other}"),
    }
}

impl<'a> Actor<'a> {
    pub async fn execute(&self, request: CommandRequest) -> StoreResult<CommandOutcome> {
        self.store.execute(request).await
    }

    pub async fn command(
        &self,
        id: EntityId,
        command: EntityCommand,
    ) -> StoreResult<CommandOutcome> {
        self.execute(entity_request(self.scope, id, command)).await
    }

    /// Creates an entity and returns its id; panics if the store refuses.
    pub async fn create(&self, create: CreateEntity) -> EntityId {
        let id = EntityId::new_v7();
        self.command(id, EntityCommand::Create(create))
            .await
            .expect("create an entity");
        id
    }

    pub async fn note(&self, body: &str) -> EntityId {
        self.create(CreateEntity::note(body)).await
    }

    pub async fn change(&self, id: EntityId, changes: Vec<Change>) -> StoreResult<CommandOutcome> {
        self.command(id, EntityCommand::Change(changes)).await
    }

    /// Changes an entity; panics if the store refuses.
    pub async fn must_change(&self, id: EntityId, changes: Vec<Change>) -> CommandOutcome {
        self.change(id, changes).await.expect("change an entity")
    }

    pub async fn link(
        &self,
        source: EntityId,
        target: EntityId,
        kind_name: &str,
    ) -> StoreResult<RelationId> {
        let id = RelationId::new_v7();
        let target = Target::Link {
            id,
            source_id: source,
            target_id: target,
            kind: kind(kind_name),
        };
        self.execute(CommandRequest::new(self.scope, target, api_metadata()))
            .await
            .map(|_| id)
    }

    pub async fn unlink(&self, id: RelationId) -> StoreResult<CommandOutcome> {
        self.execute(CommandRequest::new(
            self.scope,
            Target::Unlink { id },
            api_metadata(),
        ))
        .await
    }

    pub async fn entity(&self, id: EntityId) -> Option<EntityView> {
        self.store
            .entity(&self.scope, id)
            .await
            .expect("read an entity")
    }

    /// The current view of an entity that must exist.
    pub async fn view(&self, id: EntityId) -> EntityView {
        self.entity(id)
            .await
            .unwrap_or_else(|| panic!("entity {id} should exist"))
    }

    pub async fn at(&self, id: EntityId, as_of: AsOf) -> Option<EntityView> {
        self.store
            .entity_at(&self.scope, id, as_of)
            .await
            .expect("time travel")
    }

    pub async fn body(&self, view: &EntityView) -> Option<String> {
        match &view.content {
            None => None,
            Some(content) => {
                let found = self
                    .store
                    .content(&self.scope, content.hash)
                    .await
                    .expect("read content");
                Some(
                    found
                        .unwrap_or_else(|| {
                            panic!("content {} of {} is missing", content.hash, view.id)
                        })
                        .body,
                )
            }
        }
    }

    /// Every event of an entity, paging through its history.
    pub async fn history(&self, id: EntityId) -> Vec<StoredEvent> {
        let mut events = Vec::new();
        let mut page = PageRequest {
            limit: Some(7),
            cursor: None,
        };
        loop {
            let found = self
                .store
                .history(&self.scope, id, &page)
                .await
                .expect("read history");
            events.extend(found.items);
            match found.next_cursor {
                Some(cursor) => page.cursor = Some(cursor),
                None => return events,
            }
        }
    }

    /// Every event matching `filter` after `filter.after`, paging by position.
    pub async fn events(&self, filter: EventFilter) -> Vec<StoredEvent> {
        let mut filter = EventFilter {
            limit: filter.limit.or(Some(500)),
            ..filter
        };
        let mut events: Vec<StoredEvent> = Vec::new();
        loop {
            let page = self
                .store
                .read_events(&self.scope, &filter)
                .await
                .expect("read events");
            let Some(last) = page.last() else {
                return events;
            };
            filter.after = last.position;
            events.extend(page);
        }
    }

    /// Every entity the filter selects, following cursors.
    pub async fn list(&self, filter: EntityFilter, limit: u32) -> Vec<EntityView> {
        let mut page = PageRequest {
            limit: Some(limit),
            cursor: None,
        };
        let mut items = Vec::new();
        loop {
            let found = self
                .store
                .list_entities(&self.scope, &filter, &page)
                .await
                .expect("list entities");
            assert!(
                found.items.len() <= limit as usize,
                "a page holds at most its limit"
            );
            items.extend(found.items);
            match found.next_cursor {
                Some(cursor) => page.cursor = Some(cursor),
                None => return items,
            }
        }
    }

    pub async fn list_ids(&self, filter: EntityFilter) -> BTreeSet<EntityId> {
        self.list(filter, 500)
            .await
            .into_iter()
            .map(|v| v.id)
            .collect()
    }

    pub async fn search(&self, request: SearchRequest) -> Vec<SearchHit> {
        self.store
            .search(&self.scope, &request)
            .await
            .expect("search")
    }

    pub async fn search_ids(&self, query: &str) -> Vec<EntityId> {
        self.search(SearchRequest {
            query: query.into(),
            ..Default::default()
        })
        .await
        .into_iter()
        .map(|h| h.id)
        .collect()
    }

    pub async fn tags(&self) -> Vec<TagCount> {
        self.store.tags(&self.scope).await.expect("tags")
    }

    /// The live count of a tag (a tag no live entity carries counts 0, listed or not).
    pub async fn tag_count(&self, name: &str) -> u64 {
        self.tags()
            .await
            .into_iter()
            .find(|t| t.name == name)
            .map_or(0, |t| t.count)
    }

    /// `(source, target, kind)` of the live relations of `id` in `direction`.
    pub async fn links(
        &self,
        id: EntityId,
        direction: Direction,
    ) -> BTreeSet<(EntityId, EntityId, String)> {
        self.store
            .relations(&self.scope, id, direction)
            .await
            .expect("read relations")
            .into_iter()
            .map(|r| (r.source_id, r.target_id, r.kind))
            .collect()
    }
}

/// The domain refusal inside a result; panics on anything else.
#[track_caller]
fn refusal<T: std::fmt::Debug>(result: StoreResult<T>) -> DomainError {
    match result {
        Err(StoreError::Domain(error)) => error,
        other => panic!("expected a domain refusal, got {other:?}"),
    }
}

#[track_caller]
fn invalid_input<T: std::fmt::Debug>(result: StoreResult<T>) {
    assert!(
        matches!(result, Err(StoreError::InvalidInput(_))),
        "expected InvalidInput, got {result:?}"
    );
}

fn time(text: &str) -> Timestamp {
    text.parse().expect("a timestamp")
}

fn plus(at: Timestamp, seconds: i64) -> Timestamp {
    at.checked_add(SignedDuration::from_secs(seconds))
        .expect("a timestamp in range")
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

fn strings(names: &[&str]) -> Vec<String> {
    sorted(names.iter().map(|n| n.to_string()).collect())
}

// ---------------------------------------------------------------------------------
// 1. Append and read
// ---------------------------------------------------------------------------------

/// A created note reads back at version 1, and the log holds its `entity.created`
/// event with the full envelope.
pub async fn create_then_read_gives_version_1_and_the_created_event<F: StoreFactory>() {
    let t0 = time("2024-05-01T12:00:00Z");
    let h = Harness::with_clock::<F>(t0).await;
    let me = h.me();
    let head_before = h.head().await;
    let id = EntityId::new_v7();
    let body = "# Hello\nworld, this is the body";
    let create = CreateEntity {
        tags: vec!["greeting".into()],
        metadata: object(json!({"origin": "conformance"})),
        ..CreateEntity::note(body)
    };
    let metadata = EventMetadata {
        source: Source::Cli,
        actor: Some("tester".into()),
        correlation_id: Some(Uuid::now_v7()),
        request_id: Some("req-1".into()),
        ..Default::default()
    };
    let request = CommandRequest::new(
        me.scope,
        Target::Entity {
            id,
            command: EntityCommand::Create(create),
        },
        metadata.clone(),
    );
    let command_id = request.command_id;
    let outcome = me.execute(request).await.expect("create");

    assert_eq!(outcome.aggregate_id, id.0);
    assert_eq!(outcome.version, 1);
    assert!(!outcome.replayed);
    assert_eq!(
        outcome.events.len(),
        1,
        "a note without wikilinks appends one event: {outcome:?}"
    );
    let appended = &outcome.events[0];
    assert_eq!(
        appended.id, command_id,
        "the first event takes the command id"
    );
    assert_eq!((appended.aggregate_id, appended.version), (id.0, 1));
    assert_eq!(appended.event_type, "entity.created");
    assert!(appended.position > head_before && appended.position > 0);

    let view = me.view(id).await;
    let content = ContentRef {
        hash: ContentHash::of(body.as_bytes()),
        size: body.len() as u64,
        media_type: DEFAULT_MEDIA_TYPE.into(),
    };
    assert_eq!(view.id, id);
    assert_eq!(view.version, 1);
    assert_eq!(view.entity_type, EntityType::Note);
    assert_eq!(
        view.title, "Hello",
        "the title is derived from the first line"
    );
    assert_eq!(view.preview, preview(body));
    assert_eq!(view.content.as_ref(), Some(&content));
    assert_eq!(view.tags, vec!["greeting".to_string()]);
    assert_eq!(view.metadata, object(json!({"origin": "conformance"})));
    assert_eq!(
        (view.created_at, view.updated_at, view.deleted_at),
        (t0, t0, None)
    );
    assert_eq!(view.task, None);
    let stored = h
        .store
        .content(&me.scope, content.hash)
        .await
        .expect("read content")
        .expect("the body is stored");
    assert_eq!(
        (stored.content, stored.body.as_str()),
        (content.clone(), body)
    );

    let events = me
        .events(EventFilter {
            after: head_before,
            aggregate_id: Some(id.0),
            ..Default::default()
        })
        .await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.position, appended.position);
    assert_eq!(event.id, EventId(command_id));
    assert_eq!((event.aggregate_id, event.version), (id.0, 1));
    assert_eq!(event.aggregate_type(), AggregateType::Entity);
    assert_eq!(event.event_type(), "entity.created");
    assert_eq!(event.schema_version, 1);
    assert_eq!(event.user_id, me.scope.user_id);
    assert_eq!(
        event.recorded_at, t0,
        "recorded_at comes from the store's clock"
    );
    assert_eq!(
        event.metadata, metadata,
        "the envelope metadata is stored as given"
    );
    match &event.payload {
        EventPayload::Entity(EntityEvent::Created(created)) => {
            assert_eq!(created.entity_type, EntityType::Note);
            assert_eq!(created.title, "Hello");
            assert_eq!(created.content.as_ref(), Some(&content));
            assert_eq!(created.tags, vec!["greeting".to_string()]);
        }
        other => panic!("expected entity.created, got {other:?}"),
    }
    assert!(h.head().await >= appended.position);
}

/// A command that changes nothing appends nothing and keeps the version.
pub async fn command_that_changes_nothing_appends_nothing<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let me = h.me();
    let id = me
        .create(CreateEntity {
            tags: vec!["Keep".into()],
            ..note_titled("Same", "same body")
        })
        .await;
    let head = h.head().await;
    let outcome = me
        .must_change(
            id,
            vec![
                Change::Title("Same".into()),
                Change::Content(Some(NewContent::markdown("same body"))),
                Change::AddTags(vec!["keep".into()]),
                Change::UnsetMetadata(vec!["absent".into()]),
            ],
        )
        .await;
    assert_eq!(
        (outcome.version, outcome.events.len()),
        (1, 0),
        "{outcome:?}"
    );
    assert_eq!(h.head().await, head);
    assert_eq!(me.view(id).await.version, 1);
}

/// Delete and restore are soft, keep the history, and edits wait for a restore.
pub async fn delete_and_restore_are_soft_and_edits_wait_for_restore<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let me = h.me();
    let id = me.create(note_titled("Doomed", "short life")).await;
    let deleted = me.command(id, EntityCommand::Delete).await.expect("delete");
    assert_eq!(deleted.version, 2);
    let view = me.view(id).await;
    assert!(
        view.deleted_at.is_some(),
        "a deleted entity is still readable, with deleted_at"
    );
    assert_eq!(
        refusal(me.change(id, vec![Change::Title("x".into())]).await),
        DomainError::EntityDeleted(id)
    );
    let again = me
        .command(id, EntityCommand::Delete)
        .await
        .expect("delete again");
    assert_eq!(
        (again.version, again.events.len()),
        (2, 0),
        "deleting twice appends nothing"
    );
    assert!(!me.list_ids(EntityFilter::default()).await.contains(&id));
    assert!(
        me.list_ids(EntityFilter {
            deleted: true,
            ..Default::default()
        })
        .await
        .contains(&id)
    );

    let restored = me
        .command(id, EntityCommand::Restore)
        .await
        .expect("restore");
    assert_eq!(restored.version, 3);
    assert_eq!(me.view(id).await.deleted_at, None);
    let again = me
        .command(id, EntityCommand::Restore)
        .await
        .expect("restore again");
    assert_eq!((again.version, again.events.len()), (3, 0));
    assert!(me.list_ids(EntityFilter::default()).await.contains(&id));
    assert!(
        !me.list_ids(EntityFilter {
            deleted: true,
            ..Default::default()
        })
        .await
        .contains(&id)
    );
    let types: Vec<&str> = me
        .history(id)
        .await
        .iter()
        .map(|e| e.event_type())
        .collect();
    assert_eq!(
        types,
        ["entity.created", "entity.deleted", "entity.restored"]
    );
    me.must_change(id, vec![Change::Title("Back".into())]).await;

    let missing = EntityId::new_v7();
    assert_eq!(
        refusal(me.command(missing, EntityCommand::Delete).await),
        DomainError::EntityNotFound(missing)
    );
    assert_eq!(
        refusal(me.change(missing, vec![Change::Title("x".into())]).await),
        DomainError::EntityNotFound(missing)
    );
    let taken = me
        .command(id, EntityCommand::Create(CreateEntity::note("again")))
        .await;
    assert_eq!(refusal(taken), DomainError::AlreadyExists(id));
}

// ---------------------------------------------------------------------------------
// 2. Version conflicts
// ---------------------------------------------------------------------------------

/// A stale (or future) expected version fails with a conflict naming the real
/// version, and nothing is written.
pub async fn stale_expected_version_conflicts_naming_the_current_version<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let me = h.me();
    let id = EntityId::new_v7();
    let created = me
        .execute(
            entity_request(
                me.scope,
                id,
                EntityCommand::Create(note_titled("One", "body")),
            )
            .expecting(Some(0)),
        )
        .await
        .expect("creating with expected version 0 succeeds for a new id");
    assert_eq!(created.version, 1);
    me.must_change(id, vec![Change::Title("Two".into())]).await;
    let head = h.head().await;
    let before = me.view(id).await;
    let events_before = me.events(EventFilter::default()).await;

    for (expected, command) in [
        (
            1,
            EntityCommand::Change(vec![Change::Title("Stale".into())]),
        ),
        (
            3,
            EntityCommand::Change(vec![Change::Title("Future".into())]),
        ),
        (0, EntityCommand::Create(note_titled("Again", "other"))),
        (1, EntityCommand::Delete),
        (1, EntityCommand::RevertTo { version: 1 }),
    ] {
        let result = me
            .execute(entity_request(me.scope, id, command).expecting(Some(expected)))
            .await;
        match result {
            Err(StoreError::Conflict {
                aggregate_id,
                expected: named,
                current,
            }) => {
                assert_eq!(
                    (aggregate_id, named, current),
                    (id.0, expected, 2),
                    "the conflict names the real version"
                );
            }
            other => panic!("expected a conflict for expected version {expected}, got {other:?}"),
        }
        assert_eq!(h.head().await, head, "a conflict writes nothing");
    }
    assert_eq!(me.view(id).await, before);
    assert_eq!(me.events(EventFilter::default()).await, events_before);

    let ok = me
        .execute(
            entity_request(
                me.scope,
                id,
                EntityCommand::Change(vec![Change::Title("Three".into())]),
            )
            .expecting(Some(2)),
        )
        .await
        .expect("the right expected version succeeds");
    assert_eq!(ok.version, 3);
    assert_eq!(me.view(id).await.title, "Three");
}

// ---------------------------------------------------------------------------------
// 3. Idempotency
// ---------------------------------------------------------------------------------

/// The same command id sent twice returns the first outcome, marked replayed, and
/// writes nothing — for a create, a change, and a command with wikilink side effects.
pub async fn repeated_command_id_replays_the_first_outcome_without_writing<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let me = h.me();
    let target = me.create(note_titled("Target", "linked to")).await;

    let id = EntityId::new_v7();
    let create = entity_request(
        me.scope,
        id,
        EntityCommand::Create(note_titled("Original", "see [[Target]]")),
    );
    let first = me.execute(create.clone()).await.expect("create");
    assert!(!first.replayed);
    assert_eq!(
        first.events.len(),
        2,
        "entity.created and the mentions relation: {first:?}"
    );
    let head = h.head().await;
    let second = me.execute(create.clone()).await.expect("replay the create");
    assert!(second.replayed, "the second answer is marked as a replay");
    assert_eq!(
        CommandOutcome {
            replayed: false,
            ..second
        },
        first
    );
    assert_eq!(h.head().await, head, "a replay writes nothing");
    assert_eq!(me.view(id).await.version, 1);

    let change = entity_request(
        me.scope,
        id,
        EntityCommand::Change(vec![Change::Title("Changed".into())]),
    );
    let first = me.execute(change.clone()).await.expect("change");
    assert_eq!(first.version, 2);
    let head = h.head().await;
    let second = me.execute(change.clone()).await.expect("replay the change");
    assert!(second.replayed);
    assert_eq!(
        CommandOutcome {
            replayed: false,
            ..second
        },
        first
    );
    assert_eq!(h.head().await, head);
    assert_eq!(me.view(id).await.version, 2);

    // Later commands do not change what a replay returns, nor does a different
    // payload under the same id: the first outcome stands.
    me.must_change(id, vec![Change::Title("Later".into())])
        .await;
    let head = h.head().await;
    let mut different = change.clone();
    different.target = Target::Entity {
        id,
        command: EntityCommand::Change(vec![Change::Title("Other".into())]),
    };
    let third = me
        .execute(different)
        .await
        .expect("replay with another payload");
    assert!(third.replayed);
    assert_eq!(
        CommandOutcome {
            replayed: false,
            ..third
        },
        first
    );
    assert_eq!(h.head().await, head);
    assert_eq!(me.view(id).await.title, "Later");
    assert_eq!(
        me.links(target, Direction::In).await.len(),
        1,
        "the replayed create added no second mention"
    );
}

/// A refused command records nothing, so the same command id can be sent again
/// once the cause is fixed.
pub async fn refused_command_records_nothing_so_its_id_can_be_retried<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let me = h.me();
    let id = me.create(note_titled("Paused", "body")).await;
    me.command(id, EntityCommand::Delete).await.expect("delete");
    let request = entity_request(
        me.scope,
        id,
        EntityCommand::Change(vec![Change::Title("Edited".into())]),
    );
    let head = h.head().await;
    assert_eq!(
        refusal(me.execute(request.clone()).await),
        DomainError::EntityDeleted(id)
    );
    assert_eq!(h.head().await, head);
    me.command(id, EntityCommand::Restore)
        .await
        .expect("restore");
    let retried = me.execute(request).await.expect("the retry runs");
    assert!(
        !retried.replayed,
        "the refused attempt left no outcome behind"
    );
    assert_eq!(me.view(id).await.title, "Edited");
}

// ---------------------------------------------------------------------------------
// 4. The feed
// ---------------------------------------------------------------------------------

/// Positions strictly increase in commit order, and paging with `after` visits every
/// event exactly once.
pub async fn feed_pages_visit_every_event_once_in_position_order<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let me = h.me();
    let start = h.head().await;
    let mut appended = Vec::new();
    let mut ids = Vec::new();
    for n in 0..60 {
        let id = EntityId::new_v7();
        let outcome = me
            .command(
                id,
                EntityCommand::Create(note_titled(&format!("Note {n}"), &format!("body {n}"))),
            )
            .await
            .expect("create");
        appended.extend(outcome.events);
        ids.push(id);
    }
    for (n, id) in ids.iter().enumerate().filter(|(n, _)| n % 3 == 0) {
        let outcome = me
            .must_change(
                *id,
                vec![
                    Change::Title(format!("Edited {n}")),
                    Change::AddTags(vec!["edited".into()]),
                ],
            )
            .await;
        appended.extend(outcome.events);
    }
    let positions: Vec<u64> = appended.iter().map(|e| e.position).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "sequential commands get increasing positions: {positions:?}"
    );

    let mut seen = Vec::new();
    let mut after = start;
    loop {
        let page = h
            .store
            .read_events(
                &me.scope,
                &EventFilter {
                    after,
                    limit: Some(7),
                    ..Default::default()
                },
            )
            .await
            .expect("read a page");
        assert!(page.len() <= 7);
        let Some(last) = page.last() else { break };
        after = last.position;
        seen.extend(page);
    }
    let seen_keys: Vec<(u64, Uuid, u64)> = seen
        .iter()
        .map(|e| (e.position, e.aggregate_id, e.version))
        .collect();
    let expected_keys: Vec<(u64, Uuid, u64)> = appended
        .iter()
        .map(|e| (e.position, e.aggregate_id, e.version))
        .collect();
    assert_eq!(
        seen_keys, expected_keys,
        "paging returns exactly the appended events, in order"
    );
    let unique: HashSet<EventId> = seen.iter().map(|e| e.id).collect();
    assert_eq!(unique.len(), seen.len(), "no event is returned twice");

    let default_page = h
        .store
        .read_events(
            &me.scope,
            &EventFilter {
                after: start,
                ..Default::default()
            },
        )
        .await
        .expect("default page");
    assert_eq!(default_page.len(), 50, "the default limit is 50");
    let big_page = h
        .store
        .read_events(
            &me.scope,
            &EventFilter {
                after: start,
                limit: Some(500),
                ..Default::default()
            },
        )
        .await
        .expect("big page");
    assert_eq!(big_page.len(), appended.len());
    let tail = h
        .store
        .read_events(
            &me.scope,
            &EventFilter {
                after: h.head().await,
                ..Default::default()
            },
        )
        .await
        .expect("tail");
    assert!(tail.is_empty(), "nothing after the head");
}

/// Type, aggregate and time filters select the right events.
pub async fn feed_filters_by_type_aggregate_and_time<F: StoreFactory>() {
    let t0 = time("2024-06-01T08:00:00Z");
    let h = Harness::with_clock::<F>(t0).await;
    let me = h.me();
    let start = h.head().await;
    let a = me.create(note_titled("A", "a")).await;
    h.set_time(plus(t0, 10));
    let b = me.create(note_titled("B", "b")).await;
    h.set_time(plus(t0, 20));
    me.must_change(a, vec![Change::Title("A2".into())]).await;
    h.set_time(plus(t0, 30));
    me.command(b, EntityCommand::Delete).await.expect("delete");

    let keys = |events: Vec<StoredEvent>| -> Vec<(Uuid, u64)> {
        events.iter().map(|e| (e.aggregate_id, e.version)).collect()
    };
    let all = |filter: EventFilter| {
        me.events(EventFilter {
            after: start,
            ..filter
        })
    };
    let (a1, a2, b1, b2) = ((a.0, 1), (a.0, 2), (b.0, 1), (b.0, 2));
    assert_eq!(keys(all(EventFilter::default()).await), [a1, b1, a2, b2]);
    assert_eq!(
        keys(
            all(EventFilter {
                types: vec!["entity.title_changed".into()],
                ..Default::default()
            })
            .await
        ),
        [a2]
    );
    assert_eq!(
        keys(
            all(EventFilter {
                types: vec!["entity.created".into(), "entity.deleted".into()],
                ..Default::default()
            })
            .await
        ),
        [a1, b1, b2]
    );
    assert_eq!(
        keys(
            all(EventFilter {
                aggregate_id: Some(a.0),
                ..Default::default()
            })
            .await
        ),
        [a1, a2]
    );
    assert_eq!(
        keys(
            all(EventFilter {
                aggregate_id: Some(b.0),
                types: vec!["entity.created".into()],
                ..Default::default()
            })
            .await
        ),
        [b1]
    );
    assert_eq!(
        keys(
            all(EventFilter {
                since: Some(plus(t0, 5)),
                ..Default::default()
            })
            .await
        ),
        [b1, a2, b2]
    );
    assert_eq!(
        keys(
            all(EventFilter {
                until: Some(plus(t0, 25)),
                ..Default::default()
            })
            .await
        ),
        [a1, b1, a2]
    );
    assert_eq!(
        keys(
            all(EventFilter {
                since: Some(plus(t0, 5)),
                until: Some(plus(t0, 25)),
                ..Default::default()
            })
            .await
        ),
        [b1, a2]
    );
    let two = h
        .store
        .read_events(
            &me.scope,
            &EventFilter {
                after: start,
                limit: Some(2),
                ..Default::default()
            },
        )
        .await
        .expect("limit");
    assert_eq!(keys(two), [a1, b1]);
}

/// `wait_for_events` returns promptly when another task commits, at once when the
/// head is already past `after`, and after the timeout when nothing happens.
pub async fn wait_for_events_wakes_promptly_after_another_tasks_commit<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let head = h.head().await;

    let started = Instant::now();
    let quiet = waited(
        "a quiet wait",
        h.store.wait_for_events(head, Duration::from_millis(300)),
    )
    .await
    .expect("wait");
    assert_eq!(quiet, head, "without commits the head is unchanged");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "a quiet wait lasts about its timeout: {:?}",
        started.elapsed()
    );

    let store = h.store.clone();
    let scope = h.owner;
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        store
            .execute(entity_request(
                scope,
                EntityId::new_v7(),
                EntityCommand::Create(CreateEntity::note("wake up")),
            ))
            .await
    });
    let started = Instant::now();
    let woken = waited(
        "a wait for another task's commit",
        h.store.wait_for_events(head, Duration::from_secs(20)),
    )
    .await
    .expect("wait");
    let elapsed = started.elapsed();
    let outcome = waited("the writer task", writer)
        .await
        .expect("writer task")
        .expect("create");
    assert!(woken > head, "the wait returns the new head");
    assert!(
        elapsed < Duration::from_secs(3),
        "the wait should end soon after the commit, took {elapsed:?}"
    );
    let events = h
        .store
        .read_events(
            &scope,
            &EventFilter {
                after: head,
                ..Default::default()
            },
        )
        .await
        .expect("read");
    assert_eq!(
        events.first().map(|e| e.position),
        outcome.events.first().map(|e| e.position),
        "the woken reader sees the commit"
    );

    let started = Instant::now();
    let immediate = waited(
        "a wait behind the head",
        h.store.wait_for_events(head, Duration::from_secs(20)),
    )
    .await
    .expect("wait");
    assert!(immediate > head);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a wait behind the head returns at once"
    );
}

// ---------------------------------------------------------------------------------
// 5. Time travel
// ---------------------------------------------------------------------------------

/// `entity_at` by version and by time gives the title, content and tags of the past.
pub async fn entity_at_version_and_time_give_past_states<F: StoreFactory>() {
    let t0 = time("2024-03-01T09:00:00Z");
    let h = Harness::with_clock::<F>(t0).await;
    let me = h.me();
    let id = me
        .create(CreateEntity {
            tags: vec!["a".into()],
            ..note_titled("First", "one")
        })
        .await;
    h.set_time(plus(t0, 3600));
    assert_eq!(
        me.must_change(id, vec![Change::Title("Second".into())])
            .await
            .version,
        2
    );
    h.set_time(plus(t0, 7200));
    let third = me
        .must_change(
            id,
            vec![
                Change::Content(Some(NewContent::markdown("two"))),
                Change::AddTags(vec!["b".into()]),
            ],
        )
        .await;
    assert_eq!(third.version, 4, "content and tags are two events");
    h.set_time(plus(t0, 10800));
    let fourth = me
        .must_change(
            id,
            vec![
                Change::RemoveTags(vec!["a".into()]),
                Change::Title("Third".into()),
            ],
        )
        .await;
    assert_eq!(fourth.version, 6);

    let expected: [(u64, &str, &str, &[&str]); 6] = [
        (1, "First", "one", &["a"]),
        (2, "Second", "one", &["a"]),
        (3, "Second", "two", &["a"]),
        (4, "Second", "two", &["a", "b"]),
        (5, "Second", "two", &["b"]),
        (6, "Third", "two", &["b"]),
    ];
    for (version, title, body, tags) in expected {
        let view = me
            .at(id, AsOf::Version(version))
            .await
            .unwrap_or_else(|| panic!("version {version} exists"));
        assert_eq!(view.version, version);
        assert_eq!(view.title, title, "title at version {version}");
        assert_eq!(
            me.body(&view).await.as_deref(),
            Some(body),
            "content at version {version}"
        );
        assert_eq!(view.preview, preview(body));
        assert_eq!(
            sorted(view.tags.clone()),
            strings(tags),
            "tags at version {version}"
        );
        assert_eq!(view.created_at, t0);
    }
    assert_eq!(
        me.at(id, AsOf::Version(3)).await.map(|v| v.updated_at),
        Some(plus(t0, 7200))
    );
    assert_eq!(
        me.at(id, AsOf::Version(0)).await,
        None,
        "before version 1 there was nothing"
    );
    assert_eq!(
        me.at(id, AsOf::Version(7)).await,
        None,
        "version 7 does not exist yet"
    );

    let version_at =
        |at: Timestamp| async move { me.at(id, AsOf::Time(at)).await.map(|v| v.version) };
    assert_eq!(
        version_at(plus(t0, -1)).await,
        None,
        "before creation the entity did not exist"
    );
    assert_eq!(version_at(t0).await, Some(1));
    assert_eq!(version_at(plus(t0, 3599)).await, Some(1));
    assert_eq!(
        version_at(plus(t0, 3600)).await,
        Some(2),
        "a version recorded exactly at the time counts"
    );
    assert_eq!(version_at(plus(t0, 7201)).await, Some(4));
    let latest = me.at(id, AsOf::Time(plus(t0, 86_400))).await;
    assert_eq!(
        latest,
        Some(me.view(id).await),
        "the state now equals the current view"
    );
    assert_eq!(me.at(EntityId::new_v7(), AsOf::Version(1)).await, None);
}

/// Time travel stays exact over more versions than the snapshot interval, and
/// dropping the snapshots (a rebuild) changes no answer.
pub async fn time_travel_is_exact_across_snapshots_and_rebuilds<F: StoreFactory>() {
    let t0 = time("2024-01-01T00:00:00Z");
    let h = Harness::with_clock::<F>(t0).await;
    let me = h.me();
    let last = 2 * SNAPSHOT_INTERVAL + 22;
    let id = me.create(note_titled("title 1", "body 1")).await;
    let mut expected: Vec<(u64, String, String)> = vec![(1, "title 1".into(), "body 1".into())];
    for version in 2..=last {
        h.set_time(plus(t0, version as i64));
        let (mut title, mut body) = (
            expected.last().unwrap().1.clone(),
            expected.last().unwrap().2.clone(),
        );
        let change = if version % 5 == 0 {
            body = format!("body {version}");
            Change::Content(Some(NewContent::markdown(body.clone())))
        } else {
            title = format!("title {version}");
            Change::Title(title.clone())
        };
        assert_eq!(me.must_change(id, vec![change]).await.version, version);
        expected.push((version, title, body));
    }

    let mut answers = Vec::new();
    for (version, title, body) in &expected {
        let view = me
            .at(id, AsOf::Version(*version))
            .await
            .unwrap_or_else(|| panic!("version {version} exists"));
        assert_eq!(
            (view.version, &view.title),
            (*version, title),
            "title at version {version}"
        );
        assert_eq!(
            view.content.as_ref().map(|c| c.hash),
            Some(ContentHash::of(body.as_bytes())),
            "content at version {version}"
        );
        let by_time = me
            .at(id, AsOf::Time(plus(t0, *version as i64).max(t0)))
            .await;
        assert_eq!(
            by_time.as_ref(),
            Some(&view),
            "state at the time of version {version}"
        );
        answers.push(view);
    }
    assert_eq!(answers.last(), Some(&me.view(id).await));

    let report = h.store.rebuild(&|_, _| {}).await.expect("rebuild");
    assert!(report.events > 0);
    for (answer, (version, _, _)) in answers.iter().zip(&expected) {
        assert_eq!(
            me.at(id, AsOf::Version(*version)).await.as_ref(),
            Some(answer),
            "version {version} after the snapshots are gone"
        );
    }
    assert_eq!(me.view(id).await, answers[answers.len() - 1]);
}

/// On the system clock (sub-microsecond times), every version read back through a
/// snapshot equals the fold of the history up to it, and the last equals the view.
pub async fn time_travel_on_the_system_clock_equals_the_fold_of_history<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let me = h.me();
    let last = SNAPSHOT_INTERVAL + 6;
    let id = me.create(note_titled("v1", "body")).await;
    for version in 2..=last {
        me.must_change(id, vec![Change::Title(format!("v{version}"))])
            .await;
    }
    let history = me.history(id).await;
    assert_eq!(history.len() as u64, last);
    for version in [
        1,
        SNAPSHOT_INTERVAL - 1,
        SNAPSHOT_INTERVAL,
        SNAPSHOT_INTERVAL + 1,
        last,
    ] {
        let folded = fold_entity(None, &history[..version as usize])
            .expect("fold")
            .expect("a state");
        let expected = EntityView::from_state(&folded, preview("body"));
        assert_eq!(
            me.at(id, AsOf::Version(version)).await,
            Some(expected),
            "version {version} read back equals the fold of its events"
        );
    }
    assert_eq!(
        me.at(id, AsOf::Version(last)).await,
        Some(me.view(id).await)
    );
}

/// Revert appends events that restore an earlier state; history only grows.
pub async fn revert_restores_an_earlier_state_by_appending_events<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let me = h.me();
    let id = me
        .create(CreateEntity {
            tags: vec!["a".into()],
            metadata: object(json!({"k": 1})),
            ..note_titled("Plan", "first draft")
        })
        .await;
    let v1 = me.view(id).await;
    me.must_change(
        id,
        vec![
            Change::Title("Plan B".into()),
            Change::Content(Some(NewContent::markdown("second draft"))),
            Change::AddTags(vec!["b".into()]),
            Change::RemoveTags(vec!["a".into()]),
            Change::SetMetadata(object(json!({"k": 2, "z": true}))),
        ],
    )
    .await;
    let v6 = me.view(id).await;
    assert_eq!(v6.version, 6);
    me.command(id, EntityCommand::Delete).await.expect("delete");
    let history_before = me.history(id).await;
    assert_eq!(history_before.len(), 7);
    let bodies_before = h.store.stats().await.expect("stats").content_versions;

    let reverted = me
        .command(id, EntityCommand::RevertTo { version: 1 })
        .await
        .expect("revert to version 1");
    assert!(
        reverted.version > 7 && !reverted.events.is_empty(),
        "{reverted:?}"
    );
    let now = me.view(id).await;
    assert_eq!(now.version, reverted.version);
    assert_eq!(
        now.deleted_at, None,
        "reverting to a live version restores the entity"
    );
    assert_eq!(
        (&now.title, &now.content, &now.metadata),
        (&v1.title, &v1.content, &v1.metadata)
    );
    assert_eq!(sorted(now.tags.clone()), sorted(v1.tags.clone()));
    assert_eq!(me.body(&now).await.as_deref(), Some("first draft"));
    let history_after = me.history(id).await;
    assert_eq!(
        history_after.len() as u64,
        reverted.version,
        "one event per version, no gaps"
    );
    assert_eq!(
        &history_after[..7],
        &history_before[..],
        "earlier events are never rewritten"
    );
    assert_eq!(
        h.store.stats().await.expect("stats").content_versions,
        bodies_before,
        "a revert stores no new body"
    );
    assert_eq!(
        me.at(id, AsOf::Version(7))
            .await
            .map(|v| v.deleted_at.is_some()),
        Some(true),
        "the past stays as it was"
    );

    let again = me
        .command(id, EntityCommand::RevertTo { version: 6 })
        .await
        .expect("revert to version 6");
    let now = me.view(id).await;
    assert_eq!(now.version, again.version);
    assert_eq!(
        (&now.title, &now.content, &now.metadata, now.deleted_at),
        (&v6.title, &v6.content, &v6.metadata, None)
    );
    assert_eq!(sorted(now.tags.clone()), sorted(v6.tags.clone()));

    let same = me
        .command(
            id,
            EntityCommand::RevertTo {
                version: now.version,
            },
        )
        .await
        .expect("revert to the current version");
    assert_eq!(
        (same.version, same.events.len()),
        (now.version, 0),
        "reverting to the current state appends nothing"
    );
    let head = h.head().await;
    for version in [0, now.version + 1, 999] {
        let refused = refusal(me.command(id, EntityCommand::RevertTo { version }).await);
        assert!(
            matches!(refused, DomainError::NoSuchVersion { version: v, current, .. } if v == version && current == now.version),
            "{refused:?}"
        );
    }
    assert_eq!(h.head().await, head);
}

// ---------------------------------------------------------------------------------
// 6. Projections
// ---------------------------------------------------------------------------------

/// Tags are unique per user case-insensitively, keep their first spelling, and count
/// live entities: a delete lowers the count and a restore brings it back.
pub async fn tag_counts_keep_first_spelling_and_follow_delete_and_restore<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let me = h.me();
    let first = me
        .create(CreateEntity {
            tags: vec!["Rust".into(), "db".into()],
            ..note_titled("One", "1")
        })
        .await;
    let second = me
        .create(CreateEntity {
            tags: vec!["rust".into(), "#Ideas".into()],
            ..note_titled("Two", "2")
        })
        .await;
    assert_eq!(
        sorted(me.view(second).await.tags),
        strings(&["Ideas", "Rust"]),
        "the first spelling is kept; # is dropped"
    );
    let third = me.create(note_titled("Three", "3")).await;
    me.must_change(
        third,
        vec![Change::AddTags(vec!["RUST".into(), "DB".into()])],
    )
    .await;
    assert_eq!(sorted(me.view(third).await.tags), strings(&["Rust", "db"]));

    let tags = me.tags().await;
    assert_eq!(
        tags.first().map(|t| (t.name.as_str(), t.count)),
        Some(("Rust", 3)),
        "most used first: {tags:?}"
    );
    assert!(
        tags.windows(2).all(|w| w[0].count >= w[1].count),
        "ordered by count: {tags:?}"
    );
    assert_eq!(
        (
            me.tag_count("Rust").await,
            me.tag_count("db").await,
            me.tag_count("Ideas").await
        ),
        (3, 2, 1)
    );
    assert!(
        tags.iter()
            .all(|t| t.name != "rust" && t.name != "RUST" && t.name != "DB"),
        "one spelling per tag: {tags:?}"
    );

    me.command(first, EntityCommand::Delete)
        .await
        .expect("delete");
    assert_eq!(
        (me.tag_count("Rust").await, me.tag_count("db").await),
        (2, 1),
        "a deleted entity no longer counts"
    );
    me.command(third, EntityCommand::Delete)
        .await
        .expect("delete");
    assert_eq!(me.tag_count("db").await, 0);
    me.command(first, EntityCommand::Restore)
        .await
        .expect("restore");
    me.command(third, EntityCommand::Restore)
        .await
        .expect("restore");
    assert_eq!(
        (me.tag_count("Rust").await, me.tag_count("db").await),
        (3, 2),
        "a restore counts again"
    );

    me.must_change(second, vec![Change::RemoveTags(vec!["RUST".into()])])
        .await;
    assert_eq!(
        sorted(me.view(second).await.tags),
        strings(&["Ideas"]),
        "removal is case-insensitive"
    );
    assert_eq!(me.tag_count("Rust").await, 2);
    let tagged = me
        .list_ids(EntityFilter {
            tag: Some("rust".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(tagged, BTreeSet::from([first, third]));
}

/// A tag spelling counts as used even when one command adds and removes it: the
/// first spelling is kept, and the live projections still equal a rebuild.
pub async fn tag_spelling_added_and_removed_in_one_command_is_still_the_first<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let me = h.me();
    let id = me.create(note_titled("Tagged", "body")).await;
    me.must_change(
        id,
        vec![
            Change::AddTags(vec!["#Db".into()]),
            Change::RemoveTags(vec!["db".into()]),
        ],
    )
    .await;
    assert!(me.view(id).await.tags.is_empty());
    me.must_change(id, vec![Change::AddTags(vec!["DB".into()])])
        .await;
    let report = h.store.verify(&|_, _| {}).await.expect("verify");
    assert!(
        report.is_clean(),
        "the live projections differ from a rebuild: {:#?}",
        report.differences
    );
    assert_eq!(
        me.view(id).await.tags,
        vec!["Db".to_string()],
        "the first spelling this user ever used is kept"
    );
}

/// Listing filters by type, tag, status, deletion and update time, most recently
/// updated first.
pub async fn list_filters_by_type_tag_status_deleted_and_updated_since<F: StoreFactory>() {
    let t0 = time("2024-07-01T00:00:00Z");
    let h = Harness::with_clock::<F>(t0).await;
    let me = h.me();
    let note = me
        .create(CreateEntity {
            tags: vec!["x".into()],
            ..note_titled("Note", "n")
        })
        .await;
    h.set_time(plus(t0, 10));
    let todo = me
        .create(CreateEntity {
            entity_type: EntityType::Task,
            ..note_titled("Todo", "t")
        })
        .await;
    h.set_time(plus(t0, 20));
    let done = me
        .create(CreateEntity {
            entity_type: EntityType::Task,
            task: Some(TaskInput {
                status: Some(TaskStatus::Done),
                ..Default::default()
            }),
            ..note_titled("Done", "d")
        })
        .await;
    h.set_time(plus(t0, 30));
    let idea = me
        .create(CreateEntity {
            entity_type: EntityType::Idea,
            tags: vec!["X".into()],
            ..note_titled("Idea", "i")
        })
        .await;
    h.set_time(plus(t0, 40));
    let gone = me
        .create(CreateEntity {
            tags: vec!["x".into()],
            ..note_titled("Gone", "g")
        })
        .await;
    h.set_time(plus(t0, 50));
    me.command(gone, EntityCommand::Delete)
        .await
        .expect("delete");
    h.set_time(plus(t0, 60));
    me.must_change(note, vec![Change::Title("Note, edited".into())])
        .await;

    let ordered: Vec<EntityId> = me
        .list(EntityFilter::default(), 500)
        .await
        .into_iter()
        .map(|v| v.id)
        .collect();
    assert_eq!(
        ordered,
        [note, idea, done, todo],
        "live entities, most recently updated first"
    );
    let of = |filter: EntityFilter| me.list_ids(filter);
    assert_eq!(
        of(EntityFilter {
            entity_type: Some(EntityType::Task),
            ..Default::default()
        })
        .await,
        BTreeSet::from([todo, done])
    );
    assert_eq!(
        of(EntityFilter {
            entity_type: Some(EntityType::Idea),
            ..Default::default()
        })
        .await,
        BTreeSet::from([idea])
    );
    assert_eq!(
        of(EntityFilter {
            tag: Some("X".into()),
            ..Default::default()
        })
        .await,
        BTreeSet::from([note, idea])
    );
    assert_eq!(
        of(EntityFilter {
            status: Some(TaskStatus::Done),
            ..Default::default()
        })
        .await,
        BTreeSet::from([done])
    );
    assert_eq!(
        of(EntityFilter {
            status: Some(TaskStatus::Todo),
            ..Default::default()
        })
        .await,
        BTreeSet::from([todo])
    );
    assert_eq!(
        of(EntityFilter {
            deleted: true,
            ..Default::default()
        })
        .await,
        BTreeSet::from([gone])
    );
    assert_eq!(
        of(EntityFilter {
            deleted: true,
            tag: Some("x".into()),
            ..Default::default()
        })
        .await,
        BTreeSet::from([gone])
    );
    assert_eq!(
        of(EntityFilter {
            updated_since: Some(plus(t0, 25)),
            ..Default::default()
        })
        .await,
        BTreeSet::from([note, idea])
    );
    assert_eq!(
        of(EntityFilter {
            updated_since: Some(plus(t0, 25)),
            tag: Some("x".into()),
            entity_type: Some(EntityType::Note),
            ..Default::default()
        })
        .await,
        BTreeSet::from([note])
    );
}

/// Cursor pagination visits every entity exactly once, also when many entities
/// share an update time; bad limits and cursors are refused.
pub async fn list_pagination_visits_every_entity_exactly_once<F: StoreFactory>() {
    let t0 = time("2024-08-01T00:00:00Z");
    let h = Harness::with_clock::<F>(t0).await;
    let me = h.me();
    let mut created = BTreeSet::new();
    for n in 0..23 {
        // Groups of four share a timestamp, so the order needs a tie-breaker.
        h.set_time(plus(t0, n / 4));
        created.insert(me.create(note_titled(&format!("Entity {n}"), "b")).await);
    }
    let everything = me.list(EntityFilter::default(), 500).await;
    for limit in [1, 5, 22, 23, 50] {
        let paged = me.list(EntityFilter::default(), limit).await;
        assert_eq!(
            paged, everything,
            "pages of {limit} give the same entities in the same order"
        );
    }
    let ids: Vec<EntityId> = everything.iter().map(|v| v.id).collect();
    assert_eq!(ids.iter().copied().collect::<BTreeSet<_>>(), created);
    assert_eq!(ids.len(), created.len(), "each entity once");
    assert!(
        everything
            .windows(2)
            .all(|w| w[0].updated_at >= w[1].updated_at),
        "most recently updated first"
    );

    let store = h.store.as_ref();
    let page = |limit: Option<u32>, cursor: Option<&str>| {
        let request = PageRequest {
            limit,
            cursor: cursor.map(str::to_string),
        };
        async move {
            store
                .list_entities(&me.scope, &EntityFilter::default(), &request)
                .await
        }
    };
    assert_eq!(
        page(None, None).await.expect("default page").items.len(),
        23,
        "the default limit (50) holds all 23"
    );
    invalid_input(page(Some(0), None).await);
    invalid_input(page(Some(501), None).await);
    invalid_input(page(Some(5), Some("not a cursor")).await);
}

/// A task's `completed_at` is set by the move to done and cleared when leaving it;
/// task fields exist exactly while the entity is a task (leaving the type drops
/// them, becoming a task again starts from the defaults).
pub async fn task_status_done_sets_completed_at_and_leaving_done_clears_it<F: StoreFactory>() {
    let t0 = time("2024-09-01T10:00:00Z");
    let h = Harness::with_clock::<F>(t0).await;
    let me = h.me();
    let due = plus(t0, 86_400);
    let id = me
        .create(CreateEntity {
            entity_type: EntityType::Task,
            task: Some(TaskInput {
                status: None,
                priority: Some(1),
                due_at: Some(due),
            }),
            ..note_titled("Ship it", "the release")
        })
        .await;
    let task = me.view(id).await.task.expect("a task has task fields");
    assert_eq!(
        (task.status, task.priority, task.due_at, task.completed_at),
        (TaskStatus::Todo, 1, Some(due), None)
    );

    h.set_time(plus(t0, 60));
    me.must_change(id, vec![Change::TaskStatus(TaskStatus::Done)])
        .await;
    assert_eq!(
        me.view(id).await.task.and_then(|t| t.completed_at),
        Some(plus(t0, 60))
    );
    h.set_time(plus(t0, 120));
    me.must_change(id, vec![Change::TaskStatus(TaskStatus::InProgress)])
        .await;
    let task = me.view(id).await.task.expect("task");
    assert_eq!(
        (task.status, task.completed_at),
        (TaskStatus::InProgress, None)
    );
    h.set_time(plus(t0, 180));
    me.must_change(
        id,
        vec![
            Change::TaskStatus(TaskStatus::Done),
            Change::TaskPriority(3),
            Change::TaskDue(None),
        ],
    )
    .await;
    let task = me.view(id).await.task.expect("task");
    assert_eq!(
        (task.status, task.priority, task.due_at, task.completed_at),
        (TaskStatus::Done, 3, None, Some(plus(t0, 180)))
    );

    h.set_time(plus(t0, 240));
    me.must_change(id, vec![Change::Type(EntityType::Note)])
        .await;
    assert_eq!(me.view(id).await.task, None, "a note shows no task fields");
    assert!(
        !me.list_ids(EntityFilter {
            status: Some(TaskStatus::Done),
            ..Default::default()
        })
        .await
        .contains(&id)
    );
    assert_eq!(
        refusal(
            me.change(id, vec![Change::TaskStatus(TaskStatus::Todo)])
                .await
        ),
        DomainError::NotATask(id)
    );
    me.must_change(id, vec![Change::Type(EntityType::Task)])
        .await;
    let again = me
        .view(id)
        .await
        .task
        .expect("a task again has task fields");
    assert_eq!(
        (
            again.status,
            again.priority,
            again.due_at,
            again.completed_at
        ),
        (TaskStatus::Todo, 0, None, None),
        "a new task starts from the defaults"
    );
    assert!(
        me.list_ids(EntityFilter {
            status: Some(TaskStatus::Todo),
            ..Default::default()
        })
        .await
        .contains(&id)
    );
    assert_eq!(
        me.at(id, AsOf::Version(me.view(id).await.version - 2))
            .await
            .and_then(|v| v.task),
        Some(task),
        "the old fields stay in the history"
    );

    h.set_time(plus(t0, 300));
    let done_at_birth = me
        .create(CreateEntity {
            entity_type: EntityType::Task,
            task: Some(TaskInput {
                status: Some(TaskStatus::Done),
                ..Default::default()
            }),
            ..note_titled("Already done", "")
        })
        .await;
    assert_eq!(
        me.view(done_at_birth)
            .await
            .task
            .and_then(|t| t.completed_at),
        Some(plus(t0, 300))
    );
    let note = me.create(note_titled("Plain", "p")).await;
    assert_eq!(me.view(note).await.task, None);
    me.must_change(note, vec![Change::Type(EntityType::Task)])
        .await;
    let fresh = me
        .view(note)
        .await
        .task
        .expect("a new task gets default fields");
    assert_eq!(
        (fresh.status, fresh.priority, fresh.completed_at),
        (TaskStatus::Todo, 0, None)
    );
    assert!(matches!(
        refusal(me.change(note, vec![Change::TaskPriority(4)]).await),
        DomainError::Validation {
            field: "priority",
            ..
        }
    ));
}

/// Links show as outgoing relations of the source and backlinks of the target;
/// links to deleted entities are hidden until they are restored.
pub async fn relations_show_links_and_backlinks<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let me = h.me();
    let a = me.create(note_titled("A", "a")).await;
    let b = me.create(note_titled("B", "b")).await;
    let c = me.create(note_titled("C", "c")).await;
    let ab = me.link(a, b, "relates_to").await.expect("link a → b");
    me.link(c, a, "blocks").await.expect("link c → a");
    let s = |x: &str| x.to_string();

    assert_eq!(
        me.links(a, Direction::Out).await,
        BTreeSet::from([(a, b, s("relates_to"))])
    );
    assert_eq!(
        me.links(a, Direction::In).await,
        BTreeSet::from([(c, a, s("blocks"))])
    );
    assert_eq!(
        me.links(a, Direction::Both).await,
        BTreeSet::from([(a, b, s("relates_to")), (c, a, s("blocks"))])
    );
    assert_eq!(
        me.links(b, Direction::In).await,
        BTreeSet::from([(a, b, s("relates_to"))])
    );
    let views = h
        .store
        .relations(&me.scope, b, Direction::In)
        .await
        .expect("relations");
    assert_eq!(
        (
            views[0].id,
            views[0].source_title.as_str(),
            views[0].target_title.as_str()
        ),
        (ab, "A", "B")
    );

    assert_eq!(
        refusal(me.link(a, b, "relates_to").await),
        DomainError::DuplicateRelation {
            kind: "relates_to".into()
        }
    );
    me.link(a, b, "blocks")
        .await
        .expect("another kind between the same ends is a new link");
    assert!(
        matches!(
            refusal(me.link(a, a, "relates_to").await),
            DomainError::Validation { .. }
        ),
        "no self links"
    );
    assert!(
        matches!(
            refusal(me.link(a, b, "mentions").await),
            DomainError::Validation { .. }
        ),
        "mentions come from wikilinks"
    );
    let missing = EntityId::new_v7();
    assert_eq!(
        refusal(me.link(a, missing, "relates_to").await),
        DomainError::EntityNotFound(missing)
    );

    me.command(c, EntityCommand::Delete)
        .await
        .expect("delete c");
    assert_eq!(
        me.links(a, Direction::In).await,
        BTreeSet::new(),
        "links to a deleted entity are hidden"
    );
    assert_eq!(
        refusal(me.link(a, c, "relates_to").await),
        DomainError::EntityNotFound(c),
        "no new links to a deleted entity"
    );
    me.command(c, EntityCommand::Restore)
        .await
        .expect("restore c");
    assert_eq!(
        me.links(a, Direction::In).await,
        BTreeSet::from([(c, a, s("blocks"))]),
        "and shown again after a restore"
    );

    me.unlink(ab).await.expect("unlink");
    assert_eq!(
        me.links(a, Direction::Out).await,
        BTreeSet::from([(a, b, s("blocks"))])
    );
    assert_eq!(refusal(me.unlink(ab).await), DomainError::RelationNotFound);
    assert_eq!(
        refusal(me.unlink(RelationId::new_v7()).await),
        DomainError::RelationNotFound
    );
    let head = h.head().await;
    let reuse = Target::Link {
        id: ab,
        source_id: a,
        target_id: b,
        kind: kind("relates_to"),
    };
    let reused = me
        .execute(CommandRequest::new(me.scope, reuse, api_metadata()))
        .await;
    assert!(
        matches!(
            reused,
            Err(StoreError::Domain(DomainError::Validation { .. }))
                | Err(StoreError::Conflict { current: 2, .. })
        ),
        "a relation id is used once; relation {ab} is at version 2 after its unlink: {reused:?}"
    );
    assert_eq!(h.head().await, head);
    me.link(a, b, "relates_to")
        .await
        .expect("after an unlink the same link can be made again with a new id");
}

/// Graph traversal goes breadth-first in both directions, up to the depth asked for,
/// along the kinds asked for.
pub async fn graph_traversal_respects_depth_and_kinds<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let me = h.me();
    let [a, b, c, d, e] = [
        me.create(note_titled("a", "")).await,
        me.create(note_titled("b", "")).await,
        me.create(note_titled("c", "")).await,
        me.create(note_titled("d", "")).await,
        me.create(note_titled("e", "")).await,
    ];
    me.link(a, b, "contains").await.expect("a → b");
    me.link(b, c, "relates_to").await.expect("b → c");
    me.link(d, c, "relates_to")
        .await
        .expect("d → c (followed backwards)");
    me.link(a, e, "blocks").await.expect("a → e");
    let store = h.store.as_ref();
    let graph = |depth: u32, kinds: &[&str]| {
        let request = GraphRequest {
            root: a,
            depth,
            kinds: kinds.iter().map(|k| k.to_string()).collect(),
        };
        async move { store.graph(&me.scope, &request).await }
    };
    let nodes = |graph: &crate::api::Graph| -> BTreeMap<EntityId, u32> {
        graph.nodes.iter().map(|n| (n.id, n.depth)).collect()
    };
    let edges = |graph: &crate::api::Graph| -> BTreeSet<(EntityId, EntityId)> {
        graph
            .edges
            .iter()
            .map(|e| (e.source_id, e.target_id))
            .collect()
    };

    let g0 = graph(0, &[]).await.expect("depth 0");
    assert_eq!(nodes(&g0), BTreeMap::from([(a, 0)]));
    assert!(g0.edges.is_empty());
    let g1 = graph(1, &[]).await.expect("depth 1");
    assert_eq!(nodes(&g1), BTreeMap::from([(a, 0), (b, 1), (e, 1)]));
    assert_eq!(edges(&g1), BTreeSet::from([(a, b), (a, e)]));
    let g2 = graph(2, &[]).await.expect("depth 2");
    assert_eq!(nodes(&g2), BTreeMap::from([(a, 0), (b, 1), (e, 1), (c, 2)]));
    let g3 = graph(3, &[]).await.expect("depth 3");
    assert_eq!(
        nodes(&g3),
        BTreeMap::from([(a, 0), (b, 1), (e, 1), (c, 2), (d, 3)])
    );
    assert_eq!(edges(&g3), BTreeSet::from([(a, b), (a, e), (b, c), (d, c)]));
    assert!(!g3.truncated);
    let only = graph(5, &["contains", "relates_to"]).await.expect("kinds");
    assert_eq!(
        nodes(&only),
        BTreeMap::from([(a, 0), (b, 1), (c, 2), (d, 3)])
    );
    assert!(only.edges.iter().all(|e| e.kind != "blocks"));
    let only_blocks = graph(5, &["blocks"]).await.expect("kinds");
    assert_eq!(nodes(&only_blocks), BTreeMap::from([(a, 0), (e, 1)]));
    invalid_input(graph(synap_domain::limits::GRAPH_DEPTH_MAX + 1, &[]).await);

    me.command(b, EntityCommand::Delete)
        .await
        .expect("delete b");
    let cut = graph(5, &[]).await.expect("after a delete");
    assert_eq!(
        nodes(&cut),
        BTreeMap::from([(a, 0), (e, 1)]),
        "deleted entities are not traversed"
    );
}

/// A graph holds every edge between the nodes it reached, also edges that were not
/// needed to reach them ("the nodes reached and the edges between them").
pub async fn graph_returns_every_edge_between_reached_nodes<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let me = h.me();
    let a = me.create(note_titled("a", "")).await;
    let b = me.create(note_titled("b", "")).await;
    let e = me.create(note_titled("e", "")).await;
    me.link(a, b, "relates_to").await.expect("a → b");
    me.link(a, e, "relates_to").await.expect("a → e");
    me.link(e, b, "relates_to").await.expect("e → b");
    let graph = h
        .store
        .graph(
            &me.scope,
            &GraphRequest {
                root: a,
                depth: 1,
                kinds: vec![],
            },
        )
        .await
        .expect("graph");
    let nodes: BTreeSet<EntityId> = graph.nodes.iter().map(|n| n.id).collect();
    assert_eq!(nodes, BTreeSet::from([a, b, e]));
    let edges: BTreeSet<(EntityId, EntityId)> = graph
        .edges
        .iter()
        .map(|x| (x.source_id, x.target_id))
        .collect();
    assert_eq!(
        edges,
        BTreeSet::from([(a, b), (a, e), (e, b)]),
        "e → b joins two reached nodes"
    );
}

/// `[[Title]]`, `[[Title|alias]]` and `[[id]]` create `mentions` relations, kept in
/// step with every content change.
pub async fn wikilinks_create_and_remove_mentions_relations<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let me = h.me();
    let alpha = me.create(note_titled("Alpha Note", "a")).await;
    let beta = me.note("# Beta\nthe second").await;
    let gamma = me.create(note_titled("Gamma", "c")).await;
    let delta = me.create(note_titled("Delta", "d")).await;
    let mention = |source: EntityId, target: EntityId| (source, target, "mentions".to_string());

    let body = format!(
        "See [[alpha note]], [[Beta|the b]] and [[{gamma}]].\n`[[Delta]]` is code, [[Nowhere]] does not exist."
    );
    let source_id = EntityId::new_v7();
    let created = me
        .command(
            source_id,
            EntityCommand::Create(note_titled("Source", &body)),
        )
        .await
        .expect("create");
    let kinds: Vec<&str> = created
        .events
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "entity.created",
            "relation.created",
            "relation.created",
            "relation.created"
        ],
        "the outcome reports the relations"
    );
    assert_eq!(
        me.links(source_id, Direction::Out).await,
        BTreeSet::from([
            mention(source_id, alpha),
            mention(source_id, beta),
            mention(source_id, gamma)
        ])
    );
    assert_eq!(
        me.links(alpha, Direction::In).await,
        BTreeSet::from([mention(source_id, alpha)]),
        "a backlink"
    );
    assert!(
        me.links(delta, Direction::In).await.is_empty(),
        "links in code are not links"
    );
    let mentions = h
        .store
        .relations(&me.scope, source_id, Direction::Out)
        .await
        .expect("relations");
    let beta_link = mentions
        .iter()
        .find(|r| r.target_id == beta)
        .expect("the mention of beta")
        .id;
    assert!(
        matches!(
            refusal(me.unlink(beta_link).await),
            DomainError::Validation { .. }
        ),
        "mentions follow the content"
    );

    me.must_change(
        source_id,
        vec![Change::Content(Some(NewContent::markdown(
            "Only [[BETA]] now, and [[Delta]].",
        )))],
    )
    .await;
    assert_eq!(
        me.links(source_id, Direction::Out).await,
        BTreeSet::from([mention(source_id, beta), mention(source_id, delta)])
    );
    assert!(
        me.links(alpha, Direction::In).await.is_empty(),
        "removing the link removes the relation"
    );

    me.must_change(source_id, vec![Change::Title("Renamed".into())])
        .await;
    assert_eq!(
        me.links(source_id, Direction::Out).await.len(),
        2,
        "a title change keeps the mentions"
    );

    me.must_change(source_id, vec![Change::Content(None)]).await;
    assert!(
        me.links(source_id, Direction::Out).await.is_empty(),
        "no content, no mentions"
    );
    assert!(me.links(beta, Direction::In).await.is_empty());
    me.must_change(
        source_id,
        vec![Change::Content(Some(NewContent::markdown(
            "[[Source]] and [[Renamed]] are me",
        )))],
    )
    .await;
    assert!(
        me.links(source_id, Direction::Out).await.is_empty(),
        "an entity does not mention itself"
    );
}

// ---------------------------------------------------------------------------------
// 7. Search
// ---------------------------------------------------------------------------------

/// Results come best first with `<mark>`ed, HTML-escaped snippets; all words must match.
pub async fn search_ranks_results_and_marks_snippets<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let me = h.me();
    let guide = me
        .create(note_titled(
            "Synchronisation guide",
            "All about synchronisation of replicas. Synchronisation matters.",
        ))
        .await;
    let filler = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(8);
    let groceries = me
        .create(note_titled(
            "Groceries",
            &format!("{filler}Buy milk. Think about synchronisation later."),
        ))
        .await;
    me.create(note_titled("Unrelated", "nothing to see")).await;

    let hits = me
        .search(SearchRequest {
            query: "synchronisation".into(),
            ..Default::default()
        })
        .await;
    let ids: Vec<EntityId> = hits.iter().map(|h| h.id).collect();
    assert_eq!(
        ids,
        [guide, groceries],
        "the note with the word in its title and body ranks first"
    );
    assert!(
        hits[0].score > hits[1].score,
        "higher scores are better: {hits:?}"
    );
    assert_eq!(
        (hits[0].title.as_str(), hits[0].entity_type),
        ("Synchronisation guide", EntityType::Note)
    );
    for hit in &hits {
        assert!(
            hit.snippet
                .to_lowercase()
                .contains("<mark>synchronisation</mark>"),
            "snippet: {}",
            hit.snippet
        );
    }
    assert_eq!(
        me.search_ids("synchronisation milk").await,
        [groceries],
        "every word must match"
    );
    assert_eq!(
        me.search(SearchRequest {
            query: "synchronisation".into(),
            limit: Some(1),
            ..Default::default()
        })
        .await
        .len(),
        1
    );

    let html = me
        .create(note_titled(
            "Escaping",
            "Use <script>alert(1)</script> with care: xylophone & co",
        ))
        .await;
    let hits = me
        .search(SearchRequest {
            query: "xylophone".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), [html]);
    let snippet = &hits[0].snippet;
    assert!(
        snippet.contains("<mark>xylophone</mark>"),
        "snippet: {snippet}"
    );
    assert!(
        !snippet.contains("<script>") && snippet.contains("&lt;script&gt;"),
        "the snippet is HTML-escaped: {snippet}"
    );
}

/// Diacritics are folded: `cafe` finds `Café`.
pub async fn search_folds_diacritics<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let me = h.me();
    let flore = me
        .create(note_titled("Paris", "We met at the Café de Flore."))
        .await;
    me.create(note_titled("Elsewhere", "tea at home")).await;
    let hits = me
        .search(SearchRequest {
            query: "cafe".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), [flore]);
    assert!(
        hits[0].snippet.contains("<mark>Café</mark>"),
        "the original spelling is marked: {}",
        hits[0].snippet
    );
    assert_eq!(me.search_ids("CAFÉ").await, [flore]);
    assert_eq!(me.search_ids("flore").await, [flore]);
}

/// A Chinese word is found inside a sentence written without spaces.
pub async fn search_finds_chinese_words_inside_sentences<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let me = h.me();
    let bakery = me
        .create(note_titled("Bakery", "我今天在香港买了菠萝包，很好吃。"))
        .await;
    let pineapple = me.create(note_titled("Fruit", "菠萝很甜")).await;
    let hits = me
        .search(SearchRequest {
            query: "菠萝包".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(
        hits.iter().map(|h| h.id).collect::<Vec<_>>(),
        [bakery],
        "菠萝 alone does not match 菠萝包"
    );
    assert!(
        hits[0].snippet.contains("<mark>菠萝包</mark>"),
        "snippet: {}",
        hits[0].snippet
    );
    assert_eq!(me.search_ids("香港").await, [bakery]);
    assert_eq!(me.search_ids("萝包").await, [bakery]);
    assert_eq!(me.search_ids("包子").await, Vec::<EntityId>::new());
    let both: BTreeSet<EntityId> = me.search_ids("菠萝").await.into_iter().collect();
    assert_eq!(both, BTreeSet::from([bakery, pineapple]));
}

/// A word prefix finds longer words (`synch` → `synchronisation`); the middle of a
/// word does not.
pub async fn search_matches_word_prefixes<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let me = h.me();
    let id = me
        .create(note_titled(
            "Replication",
            "Notes on synchronisation protocols.",
        ))
        .await;
    assert_eq!(me.search_ids("synch").await, [id]);
    assert_eq!(me.search_ids("SYNCHRONIS").await, [id]);
    assert_eq!(me.search_ids("repl").await, [id], "titles are searched too");
    assert_eq!(
        me.search_ids("chron").await,
        Vec::<EntityId>::new(),
        "prefixes, not infixes"
    );
}

/// Deleted entities are not found (until restored); edits are searchable at once;
/// type and tag filters narrow the results.
pub async fn search_skips_deleted_follows_edits_and_filters<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let me = h.me();
    let zebra = me
        .create(note_titled("Stripes", "an ephemeral zebra"))
        .await;
    assert_eq!(me.search_ids("zebra").await, [zebra]);
    me.command(zebra, EntityCommand::Delete)
        .await
        .expect("delete");
    assert!(
        me.search_ids("zebra").await.is_empty(),
        "deleted entities are not found"
    );
    me.command(zebra, EntityCommand::Restore)
        .await
        .expect("restore");
    assert_eq!(me.search_ids("zebra").await, [zebra]);
    me.must_change(
        zebra,
        vec![Change::Content(Some(NewContent::markdown("a giraffe now")))],
    )
    .await;
    assert!(
        me.search_ids("zebra").await.is_empty(),
        "old words are gone after an edit"
    );
    assert_eq!(me.search_ids("giraffe").await, [zebra]);
    me.must_change(zebra, vec![Change::Title("Okapi".into())])
        .await;
    assert_eq!(
        me.search_ids("okapi").await,
        [zebra],
        "a new title is searchable"
    );

    let note = me
        .create(CreateEntity {
            tags: vec!["Zoo".into()],
            ..note_titled("Quokka note", "a quokka smiles")
        })
        .await;
    let task = me
        .create(CreateEntity {
            entity_type: EntityType::Task,
            ..note_titled("Feed the quokka", "")
        })
        .await;
    let idea = me
        .create(CreateEntity {
            entity_type: EntityType::Idea,
            tags: vec!["zoo".into()],
            ..note_titled("Quokka idea", "")
        })
        .await;
    let find = |entity_type: Option<EntityType>, tag: Option<&str>| {
        let request = SearchRequest {
            query: "quokka".into(),
            entity_type,
            tag: tag.map(str::to_string),
            limit: None,
        };
        async move {
            me.search(request)
                .await
                .into_iter()
                .map(|h| h.id)
                .collect::<BTreeSet<_>>()
        }
    };
    assert_eq!(find(None, None).await, BTreeSet::from([note, task, idea]));
    assert_eq!(
        find(Some(EntityType::Task), None).await,
        BTreeSet::from([task])
    );
    assert_eq!(
        find(None, Some("ZOO")).await,
        BTreeSet::from([note, idea]),
        "tags match case-insensitively"
    );
    assert_eq!(
        find(Some(EntityType::Idea), Some("zoo")).await,
        BTreeSet::from([idea])
    );
    let hit = me
        .search(SearchRequest {
            query: "quokka".into(),
            entity_type: Some(EntityType::Idea),
            ..Default::default()
        })
        .await;
    assert_eq!(hit[0].tags, vec!["Zoo".to_string()]);
}

// ---------------------------------------------------------------------------------
// 8. Isolation between users
// ---------------------------------------------------------------------------------

/// The Debug form of a result with `id` replaced, so that an answer about someone
/// else's id can be compared with the answer about an id that does not exist.
fn shape<T: std::fmt::Debug>(result: &T, id: impl std::fmt::Display) -> String {
    format!("{result:?}").replace(&id.to_string(), "<id>")
}

/// User B can neither read, change, link to, search, list, count tags of, nor read
/// the events of user A's data; A's ids behave for B exactly like unknown ids.
pub async fn users_cannot_see_or_touch_each_others_data<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let a = h.me();
    let secret = a
        .create(CreateEntity {
            tags: vec!["Secret".into()],
            ..note_titled("Secret plan", "classified marmalade recipe")
        })
        .await;
    let task = a
        .create(CreateEntity {
            entity_type: EntityType::Task,
            ..note_titled("A's task", "")
        })
        .await;
    let relation = a
        .link(secret, task, "relates_to")
        .await
        .expect("a link of A");
    a.must_change(secret, vec![Change::Title("Secret plan v2".into())])
        .await;
    let secret_view = a.view(secret).await;
    let secret_hash = secret_view.content.as_ref().expect("content").hash;
    let a_events = a.events(EventFilter::default()).await;

    let b = h.actor(h.second_user("b@example.com").await);
    let own = b
        .create(CreateEntity {
            tags: vec!["secret".into()],
            ..note_titled("Mine", "my own marmalade")
        })
        .await;
    assert_eq!(
        b.view(own).await.tags,
        vec!["secret".to_string()],
        "B's first spelling, not A's"
    );
    let unknown = EntityId::new_v7();

    // Reads.
    for (foreign, missing) in [(secret, unknown), (task, unknown)] {
        assert_eq!(b.entity(foreign).await, None);
        for as_of in [
            AsOf::Version(1),
            AsOf::Version(2),
            AsOf::Time(Timestamp::now()),
        ] {
            assert_eq!(b.at(foreign, as_of).await, None, "entity_at {as_of:?}");
        }
        let history = h
            .store
            .history(&b.scope, foreign, &PageRequest::default())
            .await;
        let nothing = h
            .store
            .history(&b.scope, missing, &PageRequest::default())
            .await;
        assert_eq!(shape(&history, foreign), shape(&nothing, missing));
        for direction in [Direction::Out, Direction::In, Direction::Both] {
            let relations = h.store.relations(&b.scope, foreign, direction).await;
            let nothing = h.store.relations(&b.scope, missing, direction).await;
            assert_eq!(
                shape(&relations, foreign),
                shape(&nothing, missing),
                "relations {direction:?}"
            );
        }
        let graph = h
            .store
            .graph(
                &b.scope,
                &GraphRequest {
                    root: foreign,
                    depth: 2,
                    kinds: vec![],
                },
            )
            .await;
        let nothing = h
            .store
            .graph(
                &b.scope,
                &GraphRequest {
                    root: missing,
                    depth: 2,
                    kinds: vec![],
                },
            )
            .await;
        assert_eq!(shape(&graph, foreign), shape(&nothing, missing));
    }
    assert_eq!(
        h.store
            .content(&b.scope, secret_hash)
            .await
            .expect("content"),
        None
    );
    assert!(
        b.search_ids("marmalade").await == [own],
        "B finds only B's marmalade"
    );
    assert!(b.search_ids("classified").await.is_empty());
    assert!(b.search_ids("secret").await.is_empty());
    assert_eq!(
        b.list_ids(EntityFilter::default()).await,
        BTreeSet::from([own])
    );
    assert_eq!(
        b.list_ids(EntityFilter {
            tag: Some("secret".into()),
            ..Default::default()
        })
        .await,
        BTreeSet::from([own])
    );
    assert_eq!(
        b.list_ids(EntityFilter {
            entity_type: Some(EntityType::Task),
            ..Default::default()
        })
        .await,
        BTreeSet::new()
    );
    assert_eq!(
        b.tags().await,
        vec![TagCount {
            name: "secret".into(),
            count: 1
        }]
    );
    let b_events = b.events(EventFilter::default()).await;
    assert!(!b_events.is_empty(), "B sees B's own events");
    assert!(
        b_events.iter().all(|e| e.user_id == b.scope.user_id),
        "B reads only B's events"
    );
    let a_aggregates: HashSet<Uuid> = [secret.0, task.0, relation.0].into();
    assert!(
        b_events
            .iter()
            .all(|e| !a_aggregates.contains(&e.aggregate_id))
    );
    for id in &a_aggregates {
        assert!(
            b.events(EventFilter {
                aggregate_id: Some(*id),
                ..Default::default()
            })
            .await
            .is_empty()
        );
    }

    // Writes.
    let head = h.head().await;
    let commands = [
        EntityCommand::Change(vec![Change::Title("Mine now".into())]),
        EntityCommand::Change(vec![Change::AddTags(vec!["stolen".into()])]),
        EntityCommand::Delete,
        EntityCommand::Restore,
        EntityCommand::RevertTo { version: 1 },
    ];
    for command in commands {
        let foreign = b.command(secret, command.clone()).await;
        let nothing = b.command(unknown, command.clone()).await;
        assert!(
            matches!(foreign, Err(StoreError::Domain(DomainError::EntityNotFound(id))) if id == secret),
            "{command:?}: {foreign:?}"
        );
        assert_eq!(
            shape(&foreign, secret),
            shape(&nothing, unknown),
            "{command:?}"
        );
    }
    for expected in [0, 1, 2] {
        let foreign = b
            .execute(
                entity_request(b.scope, secret, EntityCommand::Delete).expecting(Some(expected)),
            )
            .await;
        let nothing = b
            .execute(
                entity_request(b.scope, unknown, EntityCommand::Delete).expecting(Some(expected)),
            )
            .await;
        assert_eq!(
            shape(&foreign, secret),
            shape(&nothing, unknown),
            "expected version {expected} must not reveal A's version"
        );
    }
    let to_foreign = b.link(own, secret, "relates_to").await;
    let to_nothing = b.link(own, unknown, "relates_to").await;
    assert_eq!(shape(&to_foreign, secret), shape(&to_nothing, unknown));
    assert_eq!(refusal(to_foreign), DomainError::EntityNotFound(secret));
    let from_foreign = b.link(secret, own, "relates_to").await;
    let from_nothing = b.link(unknown, own, "relates_to").await;
    assert_eq!(shape(&from_foreign, secret), shape(&from_nothing, unknown));
    assert_eq!(
        refusal(b.unlink(relation).await),
        DomainError::RelationNotFound
    );
    assert_eq!(h.head().await, head, "nothing B tried was written");

    let wikilinks = format!("[[Secret plan v2]] and [[{secret}]] and [[A's task]]");
    b.must_change(
        own,
        vec![Change::Content(Some(NewContent::markdown(wikilinks)))],
    )
    .await;
    assert!(
        b.links(own, Direction::Out).await.is_empty(),
        "wikilinks never resolve to another user's entities"
    );

    // A sees exactly what A had.
    assert_eq!(a.view(secret).await, secret_view);
    assert_eq!(a.links(secret, Direction::Both).await.len(), 1);
    assert_eq!(a.events(EventFilter::default()).await, a_events);
    assert_eq!(
        a.tags().await,
        vec![TagCount {
            name: "Secret".into(),
            count: 1
        }]
    );
    assert_eq!(
        a.list_ids(EntityFilter::default()).await,
        BTreeSet::from([secret, task])
    );
}

/// A command id A used does not replay A's outcome to B.
pub async fn another_users_command_id_does_not_replay_a_foreign_outcome<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let a = h.me();
    let request = entity_request(
        a.scope,
        EntityId::new_v7(),
        EntityCommand::Create(note_titled("A's", "private")),
    );
    let a_outcome = a.execute(request.clone()).await.expect("A's create");
    let b = h.actor(h.second_user("b@example.com").await);
    let b_id = EntityId::new_v7();
    let b_request = CommandRequest {
        scope: b.scope,
        target: Target::Entity {
            id: b_id,
            command: EntityCommand::Create(note_titled("B's", "mine")),
        },
        ..request
    };
    let result = b.execute(b_request).await;
    match &result {
        Ok(outcome) => {
            assert!(
                !outcome.replayed && outcome.aggregate_id == b_id.0,
                "B must never get A's outcome: {outcome:?} (A's: {a_outcome:?})"
            );
        }
        Err(StoreError::Domain(_) | StoreError::InvalidInput(_) | StoreError::Conflict { .. }) => {}
        Err(other) => panic!("a reused command id should be refused cleanly, got {other:?}"),
    }
    assert_eq!(a.view(EntityId(a_outcome.aggregate_id)).await.version, 1);
    assert!(
        b.events(EventFilter::default())
            .await
            .iter()
            .all(|e| e.user_id == b.scope.user_id)
    );
}

/// Creating with an id that another user's entity has is refused and changes nothing.
pub async fn creating_with_another_users_entity_id_changes_nothing<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let a = h.me();
    let id = a.create(note_titled("A's", "first")).await;
    let before = a.view(id).await;
    let b = h.actor(h.second_user("b@example.com").await);
    let head = h.head().await;
    let result = b
        .command(id, EntityCommand::Create(note_titled("B's", "second")))
        .await;
    assert!(result.is_err(), "an id belongs to one stream: {result:?}");
    assert_eq!(h.head().await, head);
    assert_eq!(a.view(id).await, before);
    assert_eq!(b.entity(id).await, None);
    assert!(b.list_ids(EntityFilter::default()).await.is_empty());
}

// ---------------------------------------------------------------------------------
// 9. Storage
// ---------------------------------------------------------------------------------

/// A body is stored once per user and hash: editing back to an earlier text, a
/// revert, or a second entity with the same text stores nothing new.
pub async fn editing_back_to_an_earlier_text_stores_no_new_body<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let me = h.me();
    let stats = || async { h.store.stats().await.expect("stats") };
    let (x, y) = (
        "The original text of this note.",
        "A rewritten text, longer than before.",
    );
    let start = stats().await;
    let id = me.create(note_titled("Doc", x)).await;
    me.must_change(id, vec![Change::Content(Some(NewContent::markdown(y)))])
        .await;
    let two = stats().await;
    assert_eq!(two.content_versions, start.content_versions + 2);
    assert_eq!(
        two.content_bytes,
        start.content_bytes + (x.len() + y.len()) as u64
    );

    me.must_change(id, vec![Change::Content(Some(NewContent::markdown(x)))])
        .await;
    assert_eq!(me.body(&me.view(id).await).await.as_deref(), Some(x));
    me.command(id, EntityCommand::RevertTo { version: 2 })
        .await
        .expect("revert");
    assert_eq!(me.body(&me.view(id).await).await.as_deref(), Some(y));
    me.create(note_titled("Copy", x)).await;
    let after = stats().await;
    assert_eq!(
        (after.content_versions, after.content_bytes),
        (two.content_versions, two.content_bytes),
        "nothing new was stored"
    );

    let b = h.actor(h.second_user("b@example.com").await);
    b.create(note_titled("B's copy", x)).await;
    assert_eq!(
        stats().await.content_versions,
        two.content_versions + 1,
        "content is stored per user"
    );
}

/// Events carry hashes, never content bodies.
pub async fn events_never_carry_content_bodies<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let me = h.me();
    let body = |n: u32| {
        format!(
            "# Heading {n}\n\nUNIQUE-BODY-MARKER-{n} lorem ipsum dolor sit amet, with [[Heading 1]] inside."
        )
    };
    let first = me.note(&body(1)).await;
    let second = me
        .create(CreateEntity {
            entity_type: EntityType::Task,
            ..CreateEntity::note(body(2))
        })
        .await;
    me.must_change(
        first,
        vec![Change::Content(Some(NewContent::markdown(body(3))))],
    )
    .await;
    me.must_change(
        second,
        vec![
            Change::Content(Some(NewContent::markdown(body(4)))),
            Change::Title("Own title".into()),
        ],
    )
    .await;
    me.command(first, EntityCommand::RevertTo { version: 1 })
        .await
        .expect("revert");
    me.must_change(second, vec![Change::Content(None)]).await;
    me.command(second, EntityCommand::RevertTo { version: 2 })
        .await
        .expect("revert");

    let events = me.events(EventFilter::default()).await;
    assert!(events.len() > 8);
    for event in &events {
        let json = serde_json::to_string(event).expect("serialize an event");
        assert!(
            !json.contains("UNIQUE-BODY-MARKER"),
            "event {} ({}) carries a body: {json}",
            event.position,
            event.event_type()
        );
        assert!(
            !json.contains("lorem ipsum"),
            "event {} carries a body: {json}",
            event.position
        );
    }
    let created = events
        .iter()
        .find(|e| e.aggregate_id == first.0 && e.version == 1)
        .expect("the created event");
    let json = serde_json::to_string(created).expect("serialize");
    assert!(
        json.contains(&ContentHash::of(body(1).as_bytes()).to_hex()),
        "the event refers to its content by hash: {json}"
    );
}

// ---------------------------------------------------------------------------------
// 10. Concurrency
// ---------------------------------------------------------------------------------

/// Tasks racing on one entity with expected versions: one winner per version,
/// losers told the current version, final version = 1 + successes.
pub async fn concurrent_updates_have_exactly_one_winner_per_version<F: StoreFactory>() {
    const TASKS: usize = 32;
    // A task loses only when another wins, so it needs at most TASKS attempts.
    const ATTEMPTS_MAX: usize = 2 * TASKS;
    let h = Harness::new::<F>().await;
    let id = h.me().create(note_titled("Contended", "body")).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let mut tasks = JoinSet::new();
    for task in 0..TASKS {
        let (store, scope, barrier) = (h.store.clone(), h.owner, barrier.clone());
        tasks.spawn(async move {
            barrier.wait().await;
            let mut conflicts = Vec::new();
            for attempt in 0..ATTEMPTS_MAX {
                let seen = store
                    .entity(&scope, id)
                    .await
                    .expect("read")
                    .expect("exists")
                    .version;
                let change = EntityCommand::Change(vec![Change::Title(format!(
                    "task {task} attempt {attempt}"
                ))]);
                match store
                    .execute(entity_request(scope, id, change).expecting(Some(seen)))
                    .await
                {
                    Ok(outcome) => {
                        return (Some((seen, outcome.version, outcome.replayed)), conflicts);
                    }
                    Err(StoreError::Conflict {
                        aggregate_id,
                        expected,
                        current,
                    }) => {
                        assert_eq!((aggregate_id, expected), (id.0, seen));
                        conflicts.push((seen, current));
                    }
                    Err(other) => panic!("task {task}: unexpected error {other:?}"),
                }
            }
            (None, conflicts)
        });
    }
    let results = waited("the racing tasks", tasks.join_all()).await;
    let wins: Vec<(u64, u64, bool)> = results.iter().filter_map(|(win, _)| *win).collect();
    let expected_versions: BTreeSet<u64> = wins.iter().map(|w| w.0).collect();
    assert_eq!(
        expected_versions.len(),
        wins.len(),
        "one winner per version: {wins:?}"
    );
    assert!(
        wins.iter()
            .all(|(seen, new, replayed)| *new == seen + 1 && !replayed),
        "{wins:?}"
    );
    assert_eq!(
        expected_versions,
        (1..=wins.len() as u64).collect(),
        "winners took consecutive versions"
    );
    assert_eq!(
        wins.len(),
        TASKS,
        "every task wins within {ATTEMPTS_MAX} attempts: a loss needs another task's win"
    );
    let last = 1 + wins.len() as u64;
    assert_eq!(h.me().view(id).await.version, last);
    for (seen, current) in results.iter().flat_map(|(_, conflicts)| conflicts) {
        assert!(
            *seen < *current && *current <= last,
            "a conflict names a real, newer version: saw {seen}, told {current}"
        );
    }
    let versions: Vec<u64> = h.me().history(id).await.iter().map(|e| e.version).collect();
    assert_eq!(
        versions,
        (1..=last).collect::<Vec<_>>(),
        "no gaps, no duplicates"
    );
}

/// Many tasks creating notes at once all succeed, each with its own position.
pub async fn concurrent_creates_all_succeed<F: StoreFactory>() {
    const TASKS: usize = 32;
    let h = Harness::new::<F>().await;
    let mut tasks = JoinSet::new();
    for n in 0..TASKS {
        let (store, scope) = (h.store.clone(), h.owner);
        tasks.spawn(async move {
            let id = EntityId::new_v7();
            let outcome = store
                .execute(entity_request(
                    scope,
                    id,
                    EntityCommand::Create(CreateEntity::note(format!("note {n}"))),
                ))
                .await;
            (id, outcome)
        });
    }
    let results = waited("the creating tasks", tasks.join_all()).await;
    let mut positions = HashSet::new();
    for (id, outcome) in &results {
        let outcome = outcome
            .as_ref()
            .unwrap_or_else(|e| panic!("create {id} failed: {e:?}"));
        assert_eq!((outcome.aggregate_id, outcome.version), (id.0, 1));
        assert!(
            positions.insert(outcome.events[0].position),
            "positions are unique"
        );
    }
    let listed = h.me().list_ids(EntityFilter::default()).await;
    assert_eq!(listed, results.iter().map(|(id, _)| *id).collect());
}

/// The same command sent by several tasks at once is written once.
pub async fn concurrent_duplicates_of_one_command_are_written_once<F: StoreFactory>() {
    const TASKS: usize = 8;
    let h = Harness::new::<F>().await;
    let id = EntityId::new_v7();
    let request = entity_request(
        h.owner,
        id,
        EntityCommand::Create(note_titled("Once", "only once")),
    );
    let mut tasks = JoinSet::new();
    for _ in 0..TASKS {
        let (store, request) = (h.store.clone(), request.clone());
        tasks.spawn(async move { store.execute(request).await });
    }
    let outcomes: Vec<CommandOutcome> = waited("the duplicate commands", tasks.join_all())
        .await
        .into_iter()
        .map(|r| r.expect("every duplicate is answered"))
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| !o.replayed).count(),
        1,
        "exactly one original: {outcomes:?}"
    );
    let first = outcomes
        .iter()
        .find(|o| !o.replayed)
        .cloned()
        .expect("the original");
    for outcome in &outcomes {
        assert_eq!(
            &CommandOutcome {
                replayed: false,
                ..outcome.clone()
            },
            &first
        );
    }
    assert_eq!(h.me().history(id).await.len(), 1);
}

/// A reader that follows the feed while many tasks commit sees every event exactly
/// once, in position order.
pub async fn feed_reader_following_concurrent_writers_sees_every_event_once<F: StoreFactory>() {
    const WRITERS: usize = 16;
    const COMMANDS_PER_WRITER: usize = 8;
    let h = Harness::new::<F>().await;
    let start = h.head().await;
    let (store, scope) = (h.store.clone(), h.owner);
    let reader = tokio::spawn(async move {
        let mut seen: Vec<StoredEvent> = Vec::new();
        let mut after = start;
        let deadline = Instant::now() + WAIT_MAX;
        while seen.len() < WRITERS * COMMANDS_PER_WRITER && Instant::now() < deadline {
            let page = store
                .read_events(
                    &scope,
                    &EventFilter {
                        after,
                        limit: Some(5),
                        ..Default::default()
                    },
                )
                .await
                .expect("read");
            match page.last() {
                Some(last) => {
                    after = last.position;
                    seen.extend(page);
                }
                None => {
                    store
                        .wait_for_events(after, Duration::from_millis(500))
                        .await
                        .expect("wait");
                }
            }
        }
        seen
    });
    let mut writers = JoinSet::new();
    for writer in 0..WRITERS {
        let (store, scope) = (h.store.clone(), h.owner);
        writers.spawn(async move {
            let mut appended = Vec::new();
            for n in 0..COMMANDS_PER_WRITER {
                let create = EntityCommand::Create(note_titled(&format!("w{writer} n{n}"), "feed"));
                let outcome = store
                    .execute(entity_request(scope, EntityId::new_v7(), create))
                    .await
                    .expect("create");
                appended.extend(outcome.events);
            }
            appended
        });
    }
    let appended: Vec<_> = waited("the writers", writers.join_all())
        .await
        .into_iter()
        .flatten()
        .collect();
    let seen = waited("the reader", reader).await.expect("reader task");
    let positions: Vec<u64> = seen.iter().map(|e| e.position).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "the feed never repeats or goes back"
    );
    let seen_ids: BTreeSet<Uuid> = seen.iter().map(|e| e.id.0).collect();
    let appended_ids: BTreeSet<Uuid> = appended.iter().map(|e| e.id).collect();
    assert_eq!(seen_ids.len(), seen.len());
    assert_eq!(seen_ids, appended_ids, "the feed never skips");
}

// ---------------------------------------------------------------------------------
// Accounts
// ---------------------------------------------------------------------------------

/// The local owner exists from the start; users are found by email case-insensitively;
/// malformed or taken emails are refused; account times come from the store's clock.
pub async fn accounts_have_unique_emails_and_use_the_store_clock<F: StoreFactory>() {
    let t0 = time("2023-02-03T04:05:06Z");
    let h = Harness::with_clock::<F>(t0).await;
    let owner = h.store.local_owner().await.expect("owner");
    assert_eq!(owner.role, "owner");
    assert_eq!(
        owner.created_at, t0,
        "the owner is created at the store's time"
    );
    h.set_time(plus(t0, 60));
    let bob = h
        .store
        .create_user(new_user("Bob@Example.com", "member"))
        .await
        .expect("create a member");
    assert_eq!(
        (bob.email.as_str(), bob.role.as_str()),
        ("Bob@Example.com", "member")
    );
    assert_ne!(bob.id, owner.id);
    assert_eq!(
        bob.created_at,
        plus(t0, 60),
        "account times come from the store's clock"
    );
    assert_eq!(
        h.store
            .user_by_email("bob@example.COM")
            .await
            .expect("lookup"),
        Some(bob.clone()),
        "a lookup returns what create_user returned"
    );
    assert_eq!(
        h.store
            .user_by_email("nobody@example.com")
            .await
            .expect("lookup"),
        None
    );
    assert_eq!(
        h.store.local_owner().await.expect("owner").id,
        owner.id,
        "a second user does not change the owner"
    );
    for (email, role) in [
        ("BOB@example.com", "member"),
        ("not-an-email", "member"),
        ("carol@example.com", "emperor"),
    ] {
        assert!(
            matches!(
                refusal(h.store.create_user(new_user(email, role)).await),
                DomainError::Validation { .. }
            ),
            "{email} {role}"
        );
    }
    let events = h
        .actor(Scope::user(bob.id))
        .events(EventFilter::default())
        .await;
    let created = events
        .iter()
        .find(|e| e.event_type() == "user.created")
        .expect("user.created");
    assert_eq!(
        (created.aggregate_id, created.version, created.recorded_at),
        (bob.id.0, 1, plus(t0, 60))
    );
    assert!(
        !serde_json::to_string(created)
            .expect("json")
            .contains("password"),
        "no secrets in events"
    );
}

/// Passwords are stored as given (a PHC string, never checked here) and replaced;
/// `user` finds what `create_user` returned; duplicate emails are refused whatever
/// their case, naming the field; `user.created` carries no hash.
pub async fn accounts_keep_password_hashes_and_refuse_duplicate_emails<F: StoreFactory>() {
    let t0 = time("2023-02-03T04:05:06.123456789Z");
    let h = Harness::with_clock::<F>(t0).await;
    let owner = h.store.local_owner().await.expect("owner");
    assert_eq!(
        h.store.password_hash(owner.id).await.expect("hash"),
        None,
        "the local owner has no password"
    );
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
    let ada = h
        .store
        .create_user(NewUser {
            email: "Ada@Example.com".into(),
            role: "admin".into(),
            password_hash: Some(hash.into()),
            display_name: Some("Ada Lovelace".into()),
        })
        .await
        .expect("create a user with a password");
    assert_eq!(
        (
            ada.email.as_str(),
            ada.role.as_str(),
            ada.display_name.as_deref(),
            ada.disabled_at
        ),
        ("Ada@Example.com", "admin", Some("Ada Lovelace"), None)
    );
    assert_eq!(
        ada.created_at,
        time("2023-02-03T04:05:06.123456Z"),
        "times are stored with microsecond precision, and answers say what is stored"
    );
    assert_eq!(
        h.store.user(ada.id).await.expect("user"),
        Some(ada.clone()),
        "user returns what create_user returned"
    );
    assert_eq!(
        h.store
            .user_by_email("ADA@example.com")
            .await
            .expect("lookup"),
        Some(ada.clone())
    );
    assert_eq!(
        h.store.user(UserId::new_v7()).await.expect("user"),
        None,
        "an unknown id is no user"
    );
    assert_eq!(
        h.store
            .password_hash(ada.id)
            .await
            .expect("hash")
            .as_deref(),
        Some(hash)
    );
    let new_hash = "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3aGFzaG5ld2hhc2g";
    h.store
        .set_password_hash(ada.id, new_hash)
        .await
        .expect("replace the password hash");
    assert_eq!(
        h.store
            .password_hash(ada.id)
            .await
            .expect("hash")
            .as_deref(),
        Some(new_hash)
    );
    assert_eq!(
        h.store.password_hash(owner.id).await.expect("hash"),
        None,
        "only that user's hash changed"
    );

    for email in ["ada@example.com", "ADA@EXAMPLE.COM", "  Ada@Example.com "] {
        assert!(
            matches!(
                refusal(h.store.create_user(new_user(email, "member")).await),
                DomainError::Validation { field: "email", .. }
            ),
            "{email:?} is taken"
        );
    }
    assert!(matches!(
        refusal(h.store.create_user(new_user("no at sign", "member")).await),
        DomainError::Validation { field: "email", .. }
    ));
    assert!(matches!(
        refusal(
            h.store
                .create_user(new_user("eve@example.com", "root"))
                .await
        ),
        DomainError::Validation { field: "role", .. }
    ));
    assert_eq!(
        h.store
            .user_by_email("eve@example.com")
            .await
            .expect("lookup"),
        None,
        "a refused user is not created"
    );

    let events = h
        .actor(Scope::user(ada.id))
        .events(EventFilter::default())
        .await;
    assert_eq!(
        events.len(),
        1,
        "one user.created, nothing for the hash change"
    );
    let json = serde_json::to_string(&events[0]).expect("json");
    assert!(json.contains("Ada Lovelace"), "{json}");
    for secret in [hash, new_hash, "argon2", "password"] {
        assert!(
            !json.contains(secret),
            "user.created carries {secret}: {json}"
        );
    }
}

fn new_token(user: UserId, name: &str, prefix: &str, scopes: &[&str]) -> NewToken {
    NewToken {
        id: Uuid::now_v7(),
        user_id: user,
        name: name.to_string(),
        prefix: prefix.to_string(),
        secret_hash: format!("{:0>64}", prefix.to_lowercase()),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        expires_at: None,
    }
}

/// Tokens: listed newest first, found by prefix with their hash and user, touched,
/// revoked once; another user can neither see nor revoke them; `user.token_created`
/// and `user.token_revoked` go to the owner's log, without the secret hash.
pub async fn tokens_are_listed_found_touched_and_revoked_by_their_owner_only<F: StoreFactory>() {
    let t0 = time("2024-05-06T07:08:09.987654321Z");
    let stored_t0 = time("2024-05-06T07:08:09.987654Z");
    let h = Harness::with_clock::<F>(t0).await;
    let owner = h.store.local_owner().await.expect("owner");
    let bob = h.second_user("bob@example.com").await;

    let mut first = new_token(owner.id, "laptop", "AbCdEf123456", &["read", "write"]);
    first.expires_at = Some(plus(t0, 30 * 86_400));
    let created = h.store.create_token(first.clone()).await.expect("create");
    assert_eq!(
        created,
        TokenInfo {
            id: first.id,
            name: "laptop".into(),
            prefix: "AbCdEf123456".into(),
            scopes: strings(&["read", "write"]),
            created_at: stored_t0,
            expires_at: Some(plus(stored_t0, 30 * 86_400)),
            last_used_at: None,
            revoked_at: None,
        }
    );
    h.set_time(plus(t0, 10));
    let second = new_token(owner.id, "ci", "ZyXwVu987654", &["admin"]);
    let second_info = h.store.create_token(second.clone()).await.expect("create");
    assert_eq!(second_info.created_at, plus(stored_t0, 10));

    let listed = h.store.list_tokens(owner.id).await.expect("list");
    assert_eq!(
        listed,
        vec![second_info.clone(), created.clone()],
        "newest first"
    );

    let found = h
        .store
        .token_by_prefix("AbCdEf123456")
        .await
        .expect("lookup")
        .expect("the token is found by its prefix");
    assert_eq!(found.token, created);
    assert_eq!(found.secret_hash, first.secret_hash);
    assert_eq!(found.user, owner);
    assert_eq!(
        h.store
            .token_by_prefix("abcdef123456")
            .await
            .expect("lookup"),
        None,
        "prefixes are matched exactly"
    );
    assert_eq!(
        h.store.token_by_prefix("nothing").await.expect("lookup"),
        None
    );

    let used_at = plus(t0, 20);
    h.store.touch_token(first.id, used_at).await.expect("touch");
    let found = h
        .store
        .token_by_prefix("AbCdEf123456")
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(found.token.last_used_at, Some(plus(stored_t0, 20)));

    // Another user: cannot see, cannot revoke.
    assert_eq!(
        h.store.list_tokens(bob.user_id).await.expect("list"),
        vec![]
    );
    assert!(
        !h.store
            .revoke_token(bob.user_id, first.id)
            .await
            .expect("revoke"),
        "another user's token id behaves like a missing one"
    );
    assert_eq!(
        h.store.list_tokens(owner.id).await.expect("list")[1].revoked_at,
        None,
        "and nothing changed"
    );

    h.set_time(plus(t0, 30));
    assert!(
        h.store
            .revoke_token(owner.id, first.id)
            .await
            .expect("revoke"),
        "the owner revokes a live token"
    );
    let listed = h.store.list_tokens(owner.id).await.expect("list");
    assert_eq!(listed.len(), 2, "revoked tokens stay listed");
    assert_eq!(listed[1].id, first.id);
    assert_eq!(listed[1].revoked_at, Some(plus(stored_t0, 30)));
    assert_eq!(listed[1].last_used_at, Some(plus(stored_t0, 20)));
    assert_eq!(listed[0], second_info, "the other token is untouched");
    let found = h
        .store
        .token_by_prefix("AbCdEf123456")
        .await
        .expect("lookup")
        .expect("a revoked token is still found (the caller refuses it)");
    assert_eq!(found.token.revoked_at, Some(plus(stored_t0, 30)));

    h.set_time(plus(t0, 40));
    assert!(
        !h.store
            .revoke_token(owner.id, first.id)
            .await
            .expect("revoke"),
        "revoking twice is a no-op"
    );
    assert!(
        !h.store
            .revoke_token(owner.id, Uuid::now_v7())
            .await
            .expect("revoke"),
        "an unknown id is not revoked"
    );
    assert_eq!(
        h.store.list_tokens(owner.id).await.expect("list")[1].revoked_at,
        Some(plus(stored_t0, 30)),
        "the first revocation time stays"
    );

    let events = h
        .me()
        .events(EventFilter {
            aggregate_id: Some(owner.id.0),
            ..Default::default()
        })
        .await;
    let shapes: Vec<(&str, u64)> = events.iter().map(|e| (e.event_type(), e.version)).collect();
    assert_eq!(
        shapes,
        vec![
            ("user.created", 1),
            ("user.token_created", 2),
            ("user.token_created", 3),
            ("user.token_revoked", 4),
        ],
        "one event per change in the user's stream; refused and repeated revocations append nothing"
    );
    let times: Vec<Timestamp> = events[1..].iter().map(|e| e.recorded_at).collect();
    assert_eq!(
        times,
        vec![stored_t0, plus(stored_t0, 10), plus(stored_t0, 30)]
    );
    assert!(
        events
            .iter()
            .all(|e| e.aggregate_type() == AggregateType::User)
    );
    assert_eq!(
        events[1].payload.data(),
        json!({
            "token_id": first.id,
            "name": "laptop",
            "scopes": ["read", "write"],
            "expires_at": plus(stored_t0, 30 * 86_400),
        })
    );
    assert_eq!(events[3].payload.data(), json!({"token_id": first.id}));
    for event in &events {
        let json = serde_json::to_string(event).expect("json");
        for secret in [&first.secret_hash, &second.secret_hash] {
            assert!(
                !json.contains(secret.as_str()),
                "{} carries a secret hash: {json}",
                event.event_type()
            );
        }
        assert!(!json.contains("secret"), "{json}");
    }
    let bobs = h.actor(bob).events(EventFilter::default()).await;
    assert!(
        bobs.iter().all(|e| e.event_type() == "user.created"),
        "another user's token events are not in their log"
    );

    // Accounts are not projections: replaying the log skips them and keeps them.
    let report = h.store.verify(&|_, _| {}).await.expect("verify");
    assert!(report.is_clean(), "{:?}", report.differences);
    h.store.rebuild(&|_, _| {}).await.expect("rebuild");
    assert_eq!(
        h.store.list_tokens(owner.id).await.expect("list"),
        listed,
        "a rebuild leaves tokens alone"
    );
}

/// Token names have 1..=100 characters and scopes are a non-empty subset of
/// read/write/admin; a refused token writes nothing.
pub async fn token_names_and_scopes_are_validated<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let owner = h.store.local_owner().await.expect("owner");
    let head = h.head().await;
    let long = "n".repeat(101);
    for (name, scopes, field) in [
        ("", &["read"][..], "name"),
        ("   ", &["read"][..], "name"),
        (long.as_str(), &["read"][..], "name"),
        ("ok", &[][..], "scopes"),
        ("ok", &["read", "delete"][..], "scopes"),
        ("ok", &["READ"][..], "scopes"),
    ] {
        let token = new_token(owner.id, name, "Refused00001", scopes);
        match refusal(h.store.create_token(token).await) {
            DomainError::Validation { field: got, .. } => {
                assert_eq!(got, field, "{name:?} {scopes:?}")
            }
            other => panic!("{name:?} {scopes:?}: {other:?}"),
        }
    }
    assert_eq!(h.store.list_tokens(owner.id).await.expect("list"), vec![]);
    assert_eq!(h.head().await, head, "refused tokens append nothing");

    let longest = "n".repeat(100);
    let token = new_token(owner.id, &longest, "Accepted0001", &["admin"]);
    let info = h
        .store
        .create_token(token)
        .await
        .expect("100 characters is fine");
    assert_eq!(info.name, longest);
    let reused = new_token(owner.id, "again", "Accepted0001", &["read"]);
    assert!(
        h.store.create_token(reused).await.is_err(),
        "a prefix is unique"
    );
    assert_eq!(h.store.list_tokens(owner.id).await.expect("list").len(), 1);
    // Positions need not be consecutive (PostgreSQL's are not): count events.
    let appended = h
        .me()
        .events(EventFilter {
            after: head,
            ..EventFilter::default()
        })
        .await;
    assert_eq!(
        appended
            .iter()
            .map(|e| e.payload.event_type())
            .collect::<Vec<_>>(),
        ["user.token_created"],
        "one token, one event"
    );
}

/// `events.log` of the original API: a client's own event is appended to the
/// caller's user stream, read back in the caller's feed only, validated, and
/// idempotent like every command.
pub async fn client_logged_events_join_the_callers_own_stream<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let bob = h.second_user("logger@example.com").await;
    let log = |scope: Scope, event_type: &str, data: serde_json::Value| {
        CommandRequest::new(
            scope,
            Target::LogEvent {
                event_type: event_type.to_string(),
                data,
            },
            api_metadata(),
        )
    };
    let request = log(
        h.owner,
        "reading_session",
        serde_json::json!({"minutes": 25}),
    );
    let first = h
        .store
        .execute(request.clone())
        .await
        .expect("log an event");
    assert_eq!(
        first.aggregate_id, h.owner.user_id.0,
        "the caller's own user stream"
    );
    assert_eq!(first.events.len(), 1);
    assert_eq!(first.events[0].event_type, "user.event_logged");
    let replay = h.store.execute(request).await.expect("replay");
    assert!(
        replay.replayed && replay.events == first.events,
        "the same command id replays"
    );

    let mine = h
        .store
        .read_events(
            &h.owner,
            &EventFilter {
                types: vec!["user.event_logged".into()],
                ..Default::default()
            },
        )
        .await
        .expect("events");
    assert_eq!(mine.len(), 1);
    assert_eq!(
        mine[0].payload.data(),
        serde_json::json!({"type": "reading_session", "data": {"minutes": 25}})
    );
    let theirs = h
        .store
        .read_events(
            &bob,
            &EventFilter {
                types: vec!["user.event_logged".into()],
                ..Default::default()
            },
        )
        .await
        .expect("events");
    assert!(theirs.is_empty(), "another user never sees it");

    let head = h.head().await;
    for (event_type, data) in [
        ("", serde_json::json!({})),
        ("x", serde_json::json!([1, 2])),
        ("x", serde_json::json!({"big": "y".repeat(17 * 1024)})),
    ] {
        let refused = refusal(h.store.execute(log(h.owner, event_type, data)).await);
        assert!(
            matches!(refused, DomainError::Validation { .. }),
            "{refused:?}"
        );
    }
    assert_eq!(h.head().await, head, "refused logs write nothing");
}

/// Sessions: created at the store's time, read back with their user, extended,
/// deleted.
pub async fn sessions_are_created_extended_and_deleted<F: StoreFactory>() {
    let t0 = time("2024-01-01T10:00:00.000001999Z");
    let stored_t0 = time("2024-01-01T10:00:00.000001Z");
    let h = Harness::with_clock::<F>(t0).await;
    let owner = h.store.local_owner().await.expect("owner");
    let bob = h.second_user("bob@example.com").await;
    let id_hash = "f".repeat(64);
    let week = 7 * 86_400;
    h.store
        .create_session(NewSession {
            id_hash: id_hash.clone(),
            user_id: owner.id,
            expires_at: plus(t0, week),
        })
        .await
        .expect("create a session");
    h.store
        .create_session(NewSession {
            id_hash: "b".repeat(64),
            user_id: bob.user_id,
            expires_at: plus(t0, week),
        })
        .await
        .expect("another user's session");
    assert_eq!(
        h.store.session(&id_hash).await.expect("session"),
        Some(SessionRecord {
            id_hash: id_hash.clone(),
            user: owner.clone(),
            created_at: stored_t0,
            expires_at: plus(stored_t0, week),
            last_seen_at: stored_t0,
        })
    );
    assert_eq!(
        h.store.session(&"0".repeat(64)).await.expect("session"),
        None
    );

    h.set_time(plus(t0, 86_400));
    h.store
        .extend_session(&id_hash, plus(t0, 8 * 86_400), plus(t0, 86_400))
        .await
        .expect("extend");
    let extended = h
        .store
        .session(&id_hash)
        .await
        .expect("session")
        .expect("still there");
    assert_eq!(
        (
            extended.created_at,
            extended.expires_at,
            extended.last_seen_at
        ),
        (
            stored_t0,
            plus(stored_t0, 8 * 86_400),
            plus(stored_t0, 86_400)
        )
    );

    h.store.delete_session(&id_hash).await.expect("delete");
    assert_eq!(h.store.session(&id_hash).await.expect("session"), None);
    h.store
        .delete_session(&id_hash)
        .await
        .expect("deleting a missing session is fine");
    let bobs = h
        .store
        .session(&"b".repeat(64))
        .await
        .expect("session")
        .expect("another user's session is untouched");
    assert_eq!(bobs.user.id, bob.user_id);
}

// ---------------------------------------------------------------------------------
// 11. Property: projections equal the fold of the log
// ---------------------------------------------------------------------------------

const SLOTS: usize = 3;
const TITLES: &[&str] = &["Alpha", "Beta", "alpha", "", "Gamma ✓"];
/// Bodies; `{0}`, `{1}`, `{2}` become the ids of the entity slots.
const BODIES: &[&str] = &[
    "# Alpha\nThe first text.",
    "# Beta\nSee [[Alpha]] and [[gamma ✓|the third]].",
    "Links by id: [[{0}]] and [[{1}]] and [[{2}]].",
    "# Delta\nsee [[Beta]] but `[[Alpha]]` is code",
    "plain words only, no links",
    "",
];
const TAGS: &[&str] = &["Rust", "rust", "#Db", "db", "Ideas", "café"];
const META_KEYS: &[&str] = &["source", "rating", "x"];
const KINDS: &[&str] = &["relates_to", "blocks", "contains", "mentions"];

/// One random command of the property test.
#[derive(Debug, Clone)]
pub enum Op {
    Create {
        slot: usize,
        entity_type: usize,
        title: usize,
        body: usize,
        tags: Vec<usize>,
    },
    Edit {
        slot: usize,
        title: Option<usize>,
        body: Option<usize>,
        add: Vec<usize>,
        remove: Vec<usize>,
    },
    SetMetadata {
        slot: usize,
        key: usize,
        value: i64,
    },
    UnsetMetadata {
        slot: usize,
        key: usize,
    },
    Type {
        slot: usize,
        entity_type: usize,
    },
    Status {
        slot: usize,
        status: usize,
    },
    Priority {
        slot: usize,
        priority: u8,
    },
    Due {
        slot: usize,
        days: Option<i64>,
    },
    Delete {
        slot: usize,
    },
    Restore {
        slot: usize,
    },
    Revert {
        slot: usize,
        pick: u64,
    },
    Link {
        source: usize,
        target: usize,
        kind: usize,
    },
    Unlink {
        pick: usize,
    },
}

/// A command and whether to send it with the expected version it should have.
#[derive(Debug, Clone)]
pub struct Step {
    pub op: Op,
    pub pin_version: bool,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let slot = || 0..SLOTS;
    let tags = || prop::collection::vec(0..TAGS.len(), 0..3);
    prop_oneof![
        4 => (slot(), 0..3usize, 0..TITLES.len(), 0..BODIES.len(), tags())
            .prop_map(|(slot, entity_type, title, body, tags)| Op::Create { slot, entity_type, title, body, tags }),
        6 => (slot(), prop::option::of(0..TITLES.len()), prop::option::of(0..BODIES.len()), tags(), tags())
            .prop_map(|(slot, title, body, add, remove)| Op::Edit { slot, title, body, add, remove }),
        1 => (slot(), 0..META_KEYS.len(), 0..3i64).prop_map(|(slot, key, value)| Op::SetMetadata { slot, key, value }),
        1 => (slot(), 0..META_KEYS.len()).prop_map(|(slot, key)| Op::UnsetMetadata { slot, key }),
        1 => (slot(), 0..EntityType::ALL.len()).prop_map(|(slot, entity_type)| Op::Type { slot, entity_type }),
        2 => (slot(), 0..TaskStatus::ALL.len()).prop_map(|(slot, status)| Op::Status { slot, status }),
        1 => (slot(), 0..5u8).prop_map(|(slot, priority)| Op::Priority { slot, priority }),
        1 => (slot(), prop::option::of(0..30i64)).prop_map(|(slot, days)| Op::Due { slot, days }),
        1 => slot().prop_map(|slot| Op::Delete { slot }),
        1 => slot().prop_map(|slot| Op::Restore { slot }),
        2 => (slot(), any::<u64>()).prop_map(|(slot, pick)| Op::Revert { slot, pick }),
        2 => (slot(), slot(), 0..KINDS.len()).prop_map(|(source, target, kind)| Op::Link { source, target, kind }),
        1 => any::<usize>().prop_map(|pick| Op::Unlink { pick }),
    ]
}

fn step_strategy() -> impl Strategy<Value = Step> {
    (op_strategy(), any::<bool>()).prop_map(|(op, pin_version)| Step { op, pin_version })
}

/// Random command sequences: afterwards every entity view equals the fold of its
/// history, every version reads back as it was right after the command that made
/// it (by version and by time), and `verify` finds no difference.
pub fn commands_keep_projections_equal_to_the_fold_of_the_log<F: StoreFactory>() {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 24;
    }
    config.failure_persistence = None;
    config.max_shrink_iters = 256;
    let mut runner = TestRunner::new(config);
    let result = runner.run(&prop::collection::vec(step_strategy(), 1..40), |steps| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| TestCaseError::fail(format!("cannot start a runtime: {e}")))?;
        runtime.block_on(async move {
            match tokio::time::timeout(TEST_DURATION_MAX, check_steps::<F>(steps)).await {
                Ok(result) => result,
                Err(_) => Err(TestCaseError::fail("the case did not finish in time")),
            }
        })
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}

fn render_body(index: usize, ids: &[EntityId]) -> String {
    let mut body = BODIES[index].to_string();
    for (slot, id) in ids.iter().enumerate() {
        body = body.replace(&format!("{{{slot}}}"), &id.to_string());
    }
    body
}

fn tag_names(indexes: &[usize]) -> Vec<String> {
    indexes.iter().map(|i| TAGS[*i].to_string()).collect()
}

async fn check_steps<F: StoreFactory>(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let t0 = time("2025-01-01T00:00:00Z");
    let h = Harness::with_clock::<F>(t0).await;
    let me = h.me();
    let slot_ids: Vec<EntityId> = (0..SLOTS).map(|_| EntityId::new_v7()).collect();
    let ids: &[EntityId] = &slot_ids;
    let mut links: Vec<RelationId> = Vec::new();
    // (entity, version, time of the command, view right after it)
    let mut recorded: Vec<(EntityId, u64, Timestamp, EntityView)> = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        let now = plus(t0, 1 + index as i64);
        h.set_time(now);
        let version_of =
            |slot: usize| async move { me.entity(ids[slot]).await.map_or(0, |v| v.version) };
        let (target, entity) = match &step.op {
            Op::Create {
                slot,
                entity_type,
                title,
                body,
                tags,
            } => {
                let create = CreateEntity {
                    entity_type: [EntityType::Note, EntityType::Task, EntityType::Idea]
                        [*entity_type],
                    title: Some(TITLES[*title].to_string()),
                    content: Some(NewContent::markdown(render_body(*body, ids))),
                    tags: tag_names(tags),
                    task: None,
                    metadata: Map::new(),
                };
                (
                    Target::Entity {
                        id: ids[*slot],
                        command: EntityCommand::Create(create),
                    },
                    Some(*slot),
                )
            }
            Op::Edit {
                slot,
                title,
                body,
                add,
                remove,
            } => {
                let mut changes = Vec::new();
                if let Some(title) = title {
                    changes.push(Change::Title(TITLES[*title].to_string()));
                }
                if let Some(body) = body {
                    changes.push(Change::Content(Some(NewContent::markdown(render_body(
                        *body, ids,
                    )))));
                }
                if !add.is_empty() {
                    changes.push(Change::AddTags(tag_names(add)));
                }
                if !remove.is_empty() {
                    changes.push(Change::RemoveTags(tag_names(remove)));
                }
                (
                    Target::Entity {
                        id: ids[*slot],
                        command: EntityCommand::Change(changes),
                    },
                    Some(*slot),
                )
            }
            Op::SetMetadata { slot, key, value } => {
                let set = object(json!({ META_KEYS[*key]: value }));
                (
                    Target::Entity {
                        id: ids[*slot],
                        command: EntityCommand::Change(vec![Change::SetMetadata(set)]),
                    },
                    Some(*slot),
                )
            }
            Op::UnsetMetadata { slot, key } => {
                let unset = Change::UnsetMetadata(vec![META_KEYS[*key].to_string()]);
                (
                    Target::Entity {
                        id: ids[*slot],
                        command: EntityCommand::Change(vec![unset]),
                    },
                    Some(*slot),
                )
            }
            Op::Type { slot, entity_type } => {
                let change = Change::Type(EntityType::ALL[*entity_type]);
                (
                    Target::Entity {
                        id: ids[*slot],
                        command: EntityCommand::Change(vec![change]),
                    },
                    Some(*slot),
                )
            }
            Op::Status { slot, status } => {
                let change = Change::TaskStatus(TaskStatus::ALL[*status]);
                (
                    Target::Entity {
                        id: ids[*slot],
                        command: EntityCommand::Change(vec![change]),
                    },
                    Some(*slot),
                )
            }
            Op::Priority { slot, priority } => (
                Target::Entity {
                    id: ids[*slot],
                    command: EntityCommand::Change(vec![Change::TaskPriority(*priority)]),
                },
                Some(*slot),
            ),
            Op::Due { slot, days } => {
                let due = days.map(|d| plus(t0, d * 86_400));
                (
                    Target::Entity {
                        id: ids[*slot],
                        command: EntityCommand::Change(vec![Change::TaskDue(due)]),
                    },
                    Some(*slot),
                )
            }
            Op::Delete { slot } => (
                Target::Entity {
                    id: ids[*slot],
                    command: EntityCommand::Delete,
                },
                Some(*slot),
            ),
            Op::Restore { slot } => (
                Target::Entity {
                    id: ids[*slot],
                    command: EntityCommand::Restore,
                },
                Some(*slot),
            ),
            Op::Revert { slot, pick } => {
                let current = version_of(*slot).await;
                let version = pick % (current + 2);
                (
                    Target::Entity {
                        id: ids[*slot],
                        command: EntityCommand::RevertTo { version },
                    },
                    Some(*slot),
                )
            }
            Op::Link {
                source,
                target,
                kind: k,
            } => {
                let target = Target::Link {
                    id: RelationId::new_v7(),
                    source_id: ids[*source],
                    target_id: ids[*target],
                    kind: kind(KINDS[*k]),
                };
                (target, None)
            }
            Op::Unlink { pick } => {
                let id = if links.is_empty() {
                    RelationId::new_v7()
                } else {
                    links[pick % links.len()]
                };
                (Target::Unlink { id }, None)
            }
        };
        let version_before = match entity {
            Some(slot) => version_of(slot).await,
            None => 0,
        };
        let pinned = match (&target, step.pin_version) {
            (Target::Entity { .. } | Target::Link { .. }, true) => Some(version_before),
            _ => None,
        };
        let link_id = match &target {
            Target::Link { id, .. } => Some(*id),
            _ => None,
        };
        let head = h.head().await;
        let request = CommandRequest::new(me.scope, target, api_metadata()).expecting(pinned);
        match me.execute(request).await {
            Ok(outcome) => {
                if let Some(slot) = entity
                    && outcome.version != version_before
                {
                    let view = me.view(ids[slot]).await;
                    prop_assert_eq!(view.version, outcome.version, "step {} {:?}", index, step);
                    recorded.push((ids[slot], outcome.version, now, view));
                }
                if let Some(id) = link_id {
                    links.push(id);
                }
            }
            Err(StoreError::Domain(_)) => {
                prop_assert_eq!(
                    h.head().await,
                    head,
                    "a refused command wrote something: step {} {:?}",
                    index,
                    step
                );
            }
            Err(other) => {
                return Err(TestCaseError::fail(format!(
                    "step {index} {step:?} failed: {other:?}"
                )));
            }
        }
    }

    // (a) Every entity view is the fold of its own history.
    for id in ids {
        let history = me.history(*id).await;
        let Some(view) = me.entity(*id).await else {
            prop_assert!(history.is_empty(), "entity {} has history but no view", id);
            continue;
        };
        let state =
            fold_entity(None, &history).map_err(|e| TestCaseError::fail(format!("fold: {e}")))?;
        let state =
            state.ok_or_else(|| TestCaseError::fail(format!("entity {id} folds to nothing")))?;
        let body = me.body(&view).await.unwrap_or_default();
        prop_assert_eq!(
            &view,
            &EntityView::from_state(&state, preview(&body)),
            "view of {} vs fold of its history",
            id
        );
    }
    // (b) Every version reads back as it was right after the command that made it.
    for (id, version, at, view) in &recorded {
        let by_version = me.at(*id, AsOf::Version(*version)).await;
        prop_assert_eq!(
            by_version.as_ref(),
            Some(view),
            "entity {} at version {}",
            id,
            version
        );
        let by_time = me.at(*id, AsOf::Time(*at)).await;
        prop_assert_eq!(by_time.as_ref(), Some(view), "entity {} at {}", id, at);
    }
    // (c) The live projections equal a rebuild from the log.
    let report = h
        .store
        .verify(&|_, _| {})
        .await
        .map_err(|e| TestCaseError::fail(format!("verify: {e}")))?;
    prop_assert!(
        report.is_clean(),
        "verify found differences: {:#?}",
        report.differences
    );
    Ok(())
}

// ---------------------------------------------------------------------------------
// The macro
// ---------------------------------------------------------------------------------

/// Expands the whole conformance suite for a backend: one test per behaviour.
/// `$factory` is a type implementing [`StoreFactory`]. The expanding crate needs
/// `tokio` as a dev-dependency (for `#[tokio::test]`).
#[macro_export]
macro_rules! conformance_suite {
    ($factory:path) => {
        $crate::conformance_suite!(@current_thread $factory;
            create_then_read_gives_version_1_and_the_created_event,
            command_that_changes_nothing_appends_nothing,
            delete_and_restore_are_soft_and_edits_wait_for_restore,
            stale_expected_version_conflicts_naming_the_current_version,
            repeated_command_id_replays_the_first_outcome_without_writing,
            refused_command_records_nothing_so_its_id_can_be_retried,
            feed_pages_visit_every_event_once_in_position_order,
            feed_filters_by_type_aggregate_and_time,
            entity_at_version_and_time_give_past_states,
            time_travel_is_exact_across_snapshots_and_rebuilds,
            time_travel_on_the_system_clock_equals_the_fold_of_history,
            revert_restores_an_earlier_state_by_appending_events,
            tag_counts_keep_first_spelling_and_follow_delete_and_restore,
            tag_spelling_added_and_removed_in_one_command_is_still_the_first,
            list_filters_by_type_tag_status_deleted_and_updated_since,
            list_pagination_visits_every_entity_exactly_once,
            task_status_done_sets_completed_at_and_leaving_done_clears_it,
            relations_show_links_and_backlinks,
            graph_traversal_respects_depth_and_kinds,
            graph_returns_every_edge_between_reached_nodes,
            wikilinks_create_and_remove_mentions_relations,
            search_ranks_results_and_marks_snippets,
            search_folds_diacritics,
            search_finds_chinese_words_inside_sentences,
            search_matches_word_prefixes,
            search_skips_deleted_follows_edits_and_filters,
            users_cannot_see_or_touch_each_others_data,
            another_users_command_id_does_not_replay_a_foreign_outcome,
            creating_with_another_users_entity_id_changes_nothing,
            editing_back_to_an_earlier_text_stores_no_new_body,
            events_never_carry_content_bodies,
            accounts_have_unique_emails_and_use_the_store_clock,
            accounts_keep_password_hashes_and_refuse_duplicate_emails,
            tokens_are_listed_found_touched_and_revoked_by_their_owner_only,
            token_names_and_scopes_are_validated,
            sessions_are_created_extended_and_deleted,
            client_logged_events_join_the_callers_own_stream,
            vector_backlog_follows_edits_deletes_and_models,
            nearest_sees_only_the_callers_live_entities_by_best_chunk,
            webhook_subscriptions_are_checked_limited_and_isolated,
            events_start_deliveries_and_failures_disable_the_subscription,
        );
        $crate::conformance_suite!(@multi_thread $factory;
            wait_for_events_wakes_promptly_after_another_tasks_commit,
            concurrent_updates_have_exactly_one_winner_per_version,
            concurrent_creates_all_succeed,
            concurrent_duplicates_of_one_command_are_written_once,
            feed_reader_following_concurrent_writers_sees_every_event_once,
        );
        #[test]
        fn commands_keep_projections_equal_to_the_fold_of_the_log() {
            if !<$factory as $crate::conformance::StoreFactory>::available() {
                return;
            }
            $crate::conformance::commands_keep_projections_equal_to_the_fold_of_the_log::<$factory>();
        }
    };
    (@current_thread $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $name() {
                if !<$factory as $crate::conformance::StoreFactory>::available() {
                    return;
                }
                $crate::conformance::bounded_test($crate::conformance::$name::<$factory>()).await;
            }
        )*
    };
    (@multi_thread $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                if !<$factory as $crate::conformance::StoreFactory>::available() {
                    return;
                }
                $crate::conformance::bounded_test($crate::conformance::$name::<$factory>()).await;
            }
        )*
    };
}
