//! The command pipeline, shared by every backend: what happens to a command inside
//! one write transaction.
//!
//! 1. a command id seen before returns its recorded outcome (idempotency);
//! 2. load the aggregate's current state and check the expected version;
//! 3. gather what `decide` needs (current body, canonical tag spellings, revert target);
//! 4. `decide` → delta events; store each new content body once;
//! 5. append the events (the database enforces `(aggregate_id, version)` and event
//!    id uniqueness), fold them, update the projections, snapshot every 64 versions;
//! 6. keep `mentions` relations in step with the `[[wikilinks]]` of new content;
//! 7. record the outcome under the command id;
//! 8. enqueue the workflow runs the command triggers and the webhook deliveries its
//!    events start (when it appended events).
//!
//! Backends implement [`WriteTransaction`] with their SQL and call [`run_command`]
//! while they hold their write transaction; they commit afterwards.

use crate::api::{
    AppendedEvent, CommandOutcome, CommandRequest, Scope, StoreError, StoreResult, Target,
};
use crate::fold::SNAPSHOT_INTERVAL;
use crate::webhooks;
use crate::workflow::{NewRun, RUNS_PER_COMMAND_MAX};
use jiff::Timestamp;
use std::collections::{BTreeSet, HashMap};
use synap_domain::StoredEvent;
use synap_domain::command::{Change, DecideContext, EntityCommand, decide};
use synap_domain::entity::{ContentRef, DEFAULT_MEDIA_TYPE, EntityState};
use synap_domain::event::{
    EntityEvent, EventLogged, EventMetadata, EventPayload, RelationEvent, UserEvent,
};
use synap_domain::ids::{ContentHash, EntityId, EventId, RelationId, UserId};
use synap_domain::relation::{self, LinkContext, RelationKind, RelationState};
use synap_domain::text::{WikiTarget, title_key, wikilinks};
use synap_domain::{DomainError, NewContent};
use uuid::Uuid;

/// An event about to be appended.
#[derive(Debug, Clone, Copy)]
pub struct NewEvent<'a> {
    pub id: Uuid,
    pub aggregate_id: Uuid,
    pub version: u64,
    pub payload: &'a EventPayload,
    pub user_id: UserId,
    pub metadata: &'a EventMetadata,
    pub recorded_at: Timestamp,
}

/// The operations the pipeline needs from a backend's open write transaction.
/// Every method acts inside that one transaction; reads see the transaction's own
/// earlier writes.
pub trait WriteTransaction {
    /// The outcome recorded for `command_id` by an earlier command of this user.
    fn replayed_outcome(
        &mut self,
        scope: &Scope,
        command_id: Uuid,
    ) -> StoreResult<Option<CommandOutcome>>;
    fn record_outcome(
        &mut self,
        scope: &Scope,
        command_id: Uuid,
        outcome: &CommandOutcome,
    ) -> StoreResult<()>;

    /// Current state of an entity of this user (deleted ones included).
    fn entity_state(&mut self, scope: &Scope, id: EntityId) -> StoreResult<Option<EntityState>>;
    /// State of an entity at `version` (fold from the nearest snapshot).
    fn entity_at_version(
        &mut self,
        scope: &Scope,
        id: EntityId,
        version: u64,
    ) -> StoreResult<Option<EntityState>>;
    fn relation_state(
        &mut self,
        scope: &Scope,
        id: RelationId,
    ) -> StoreResult<Option<RelationState>>;
    /// The highest version of any stream with this id, whoever owns it (0: none).
    /// Ids are global, so a create must not reuse one, even a deleted relation's.
    fn stream_version(&mut self, aggregate_id: Uuid) -> StoreResult<u64>;
    /// Records the spellings of tags an event adds, so the first spelling a user
    /// ever used stays canonical even if the tag is removed in the same command.
    fn register_tags(&mut self, scope: &Scope, names: &[String]) -> StoreResult<()>;
    fn content_body(&mut self, scope: &Scope, hash: ContentHash) -> StoreResult<Option<String>>;
    /// Canonical spellings of the user's existing tags, by key, for the keys given.
    fn tag_spellings(
        &mut self,
        scope: &Scope,
        keys: &[String],
    ) -> StoreResult<HashMap<String, String>>;
    /// Whether a live (not deleted) entity with this id belongs to the user.
    fn live_entity_exists(&mut self, scope: &Scope, id: EntityId) -> StoreResult<bool>;
    /// Live entities by title key (lowercase, trimmed); the oldest wins a tie.
    fn entities_by_title(
        &mut self,
        scope: &Scope,
        title_keys: &[String],
    ) -> StoreResult<HashMap<String, EntityId>>;
    /// Live `mentions` relations from an entity.
    fn mentions_from(
        &mut self,
        scope: &Scope,
        source_id: EntityId,
    ) -> StoreResult<Vec<RelationState>>;
    fn live_relation_exists(
        &mut self,
        scope: &Scope,
        source_id: EntityId,
        target_id: EntityId,
        kind: &RelationKind,
    ) -> StoreResult<bool>;

    /// Stores a body under its hash unless this user already has that hash: inline,
    /// or in the object store (see [`place_body`]) when it is over the threshold.
    fn put_content(&mut self, scope: &Scope, content: &ContentRef, body: &str) -> StoreResult<()>;
    /// Records that the backend's object store holds `content` under
    /// `objects::content_key` (an attachment's bytes, put there before this
    /// transaction): the user's content row for that hash, made if missing, refers
    /// to the object. An inline body with the same hash stays inline.
    fn put_object_ref(&mut self, scope: &Scope, content: &ContentRef) -> StoreResult<()>;
    /// Appends one event and returns its position. Must fail (and the caller rolls
    /// back) if `(aggregate_id, version)` or the event id already exists.
    fn append(&mut self, event: NewEvent<'_>) -> StoreResult<u64>;
    /// Brings the entity projections (entity row, tags and counts, task details,
    /// full-text index) from `before` to `after`. `body` is the body of
    /// `after.content` when the caller has it at hand; otherwise the backend reads it.
    fn project_entity(
        &mut self,
        before: Option<&EntityState>,
        after: &EntityState,
        body: Option<&str>,
    ) -> StoreResult<()>;
    fn project_relation(
        &mut self,
        before: Option<&RelationState>,
        after: &RelationState,
    ) -> StoreResult<()>;
    /// Caches a state for time travel.
    fn save_snapshot(&mut self, state: &EntityState) -> StoreResult<()>;
    /// Inserts the workflow runs a command triggers (already checked), queued at
    /// `now`, with the position of the command's first event.
    fn enqueue_runs(
        &mut self,
        scope: &Scope,
        runs: &[NewRun],
        trigger_position: u64,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// The user's live (not disabled) webhook subscriptions: id and event types.
    fn live_webhooks(&mut self, scope: &Scope) -> StoreResult<Vec<(Uuid, Vec<String>)>>;
}

/// Where an object-stored body or attachment lives: recorded in its content row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub provider: crate::objects::Provider,
    pub key: String,
}

/// Where a new body goes: `None` inline; `Some` in the object store, where it has
/// just been written. Called by backends' `put_content` for a hash the user does not
/// have yet, inside the transaction and so before it commits (an orphan object left
/// by a rollback is harmless: content-addressed, and reported by verify as such).
pub fn place_body(
    objects: Option<&crate::objects::Objects>,
    scope: &Scope,
    content: &ContentRef,
    body: &str,
) -> StoreResult<Option<ObjectRef>> {
    let Some(objects) = objects.filter(|o| body.len() > o.inline_bytes_max()) else {
        return Ok(None);
    };
    let key = crate::objects::content_key(&scope.user_id, &content.hash);
    objects
        .put_blocking(&key, bytes::Bytes::copy_from_slice(body.as_bytes()))
        .map_err(|e| {
            StoreError::Backend(format!("cannot store a body in the object store: {e}"))
        })?;
    Ok(Some(ObjectRef {
        provider: objects.provider(),
        key,
    }))
}

/// Reads a body kept in the object store (for backends' body reads).
pub fn read_object_body(
    objects: Option<&crate::objects::Objects>,
    key: &str,
) -> StoreResult<String> {
    let objects = objects.ok_or_else(|| {
        StoreError::Backend(format!(
            "body {key} is in the object store, but this store was opened without one; configure SYNAP_OBJECT_STORE"
        ))
    })?;
    let bytes = objects.get_blocking(key).map_err(|e| match e {
        crate::objects::ObjectError::NotFound { key } => StoreError::Corrupt(format!(
            "object {key} is missing from the object store {}",
            objects.location()
        )),
        other => StoreError::Backend(other.to_string()),
    })?;
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        StoreError::Corrupt(format!("object {key} is not the UTF-8 text it should be"))
    })
}

/// Runs one command inside the caller's transaction. On `Err`, the caller must roll
/// back everything this call wrote.
pub fn run_command<T: WriteTransaction + ?Sized>(
    tx: &mut T,
    request: &CommandRequest,
    now: Timestamp,
    new_id: &mut dyn FnMut() -> Uuid,
) -> StoreResult<CommandOutcome> {
    let scope = &request.scope;
    // Stored times have microsecond precision on every backend; deciding with the
    // same precision keeps snapshots and folds of the log identical.
    let now = Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now);
    if let Some(mut outcome) = tx.replayed_outcome(scope, request.command_id)? {
        outcome.replayed = true;
        return Ok(outcome);
    }
    check_triggers(&request.triggers)?;
    // Webhook deliveries need the events whole; most users have no subscription,
    // and then nothing is kept.
    let webhooks = tx.live_webhooks(scope)?;
    let mut writer = Appender {
        request,
        now,
        new_id,
        appended: Vec::new(),
        stored: Vec::new(),
        keep_events: !webhooks.is_empty(),
    };
    let (aggregate_id, version) = match &request.target {
        Target::Entity { id, command } => run_entity(tx, &mut writer, *id, command)?,
        Target::Link {
            id,
            source_id,
            target_id,
            kind,
        } => {
            let before = tx.relation_state(scope, *id)?;
            check_expected(request, id.0, before.as_ref().map_or(0, |r| r.version))?;
            if before.is_some() || tx.stream_version(id.0)? > 0 {
                return Err(id_in_use(id.0));
            }
            let context = LinkContext {
                source_exists: tx.live_entity_exists(scope, *source_id)?,
                target_exists: tx.live_entity_exists(scope, *target_id)?,
                duplicate: tx.live_relation_exists(scope, *source_id, *target_id, kind)?,
            };
            let event = relation::decide_create(*source_id, *target_id, kind, &context)?;
            let after = writer.append_relation(tx, *id, None, event, None)?;
            (id.0, after.version)
        }
        Target::Unlink { id } => {
            let before = tx.relation_state(scope, *id)?;
            check_expected(request, id.0, before.as_ref().map_or(0, |r| r.version))?;
            let event = relation::decide_delete(before.as_ref())?;
            let after = writer.append_relation(tx, *id, before, event, None)?;
            (id.0, after.version)
        }
        Target::LogEvent { event_type, data } => {
            let stream = scope.user_id.0;
            let current = tx.stream_version(stream)?;
            check_expected(request, stream, current)?;
            let event = decide_logged_event(event_type, data)?;
            writer.append(
                tx,
                stream,
                current + 1,
                &EventPayload::User(UserEvent::EventLogged(event)),
                None,
            )?;
            (stream, current + 1)
        }
    };
    let outcome = CommandOutcome {
        aggregate_id,
        version,
        events: writer.appended,
        replayed: false,
    };
    tx.record_outcome(scope, request.command_id, &outcome)?;
    // A run is triggered by an event: a command that changed nothing starts nothing.
    // Webhook deliveries are runs too, one per event and subscription that wants it.
    if let Some(first) = outcome.events.first() {
        let deliveries = webhooks::delivery_runs(&webhooks, &writer.stored);
        if !request.triggers.is_empty() || !deliveries.is_empty() {
            let mut runs = request.triggers.clone();
            runs.extend(deliveries);
            tx.enqueue_runs(scope, &runs, first.position, now)?;
        }
    }
    Ok(outcome)
}

/// Checks the runs a command triggers before anything is written.
fn check_triggers(runs: &[NewRun]) -> StoreResult<()> {
    if runs.len() > RUNS_PER_COMMAND_MAX {
        return Err(StoreError::InvalidInput(format!(
            "a command triggers at most {RUNS_PER_COMMAND_MAX} workflow runs"
        )));
    }
    runs.iter().try_for_each(NewRun::check)
}

/// Checks a client-logged event: a type of 1..=100 printable characters and a JSON
/// object of at most 16 KiB.
fn decide_logged_event(event_type: &str, data: &serde_json::Value) -> StoreResult<EventLogged> {
    use synap_domain::limits::{LOGGED_EVENT_BYTES_MAX, LOGGED_EVENT_TYPE_CHARS_MAX};
    let event_type = event_type.trim();
    let chars = event_type.chars().count();
    if chars == 0 || chars > LOGGED_EVENT_TYPE_CHARS_MAX || event_type.chars().any(char::is_control)
    {
        return Err(DomainError::Validation {
            field: "type",
            message: format!("an event type has 1 to {LOGGED_EVENT_TYPE_CHARS_MAX} characters and no control characters"),
        }
        .into());
    }
    if !data.is_object() {
        return Err(DomainError::Validation {
            field: "data",
            message: "data must be a JSON object".into(),
        }
        .into());
    }
    let bytes = serde_json::to_vec(data).map_or(usize::MAX, |v| v.len());
    if bytes > LOGGED_EVENT_BYTES_MAX {
        return Err(DomainError::Validation {
            field: "data",
            message: format!("data is {bytes} bytes as JSON; the limit is {LOGGED_EVENT_BYTES_MAX} bytes (16 KiB)"),
        }
        .into());
    }
    Ok(EventLogged {
        event_type: event_type.to_string(),
        data: data.clone(),
    })
}

fn id_in_use(id: Uuid) -> StoreError {
    DomainError::Validation {
        field: "id",
        message: format!("id {id} is already used; send a new id"),
    }
    .into()
}

fn check_expected(request: &CommandRequest, aggregate_id: Uuid, current: u64) -> StoreResult<()> {
    match request.expected_version {
        Some(expected) if expected != current => Err(StoreError::Conflict {
            aggregate_id,
            expected,
            current,
        }),
        _ => Ok(()),
    }
}

fn run_entity<T: WriteTransaction + ?Sized>(
    tx: &mut T,
    writer: &mut Appender<'_>,
    id: EntityId,
    command: &EntityCommand,
) -> StoreResult<(Uuid, u64)> {
    let scope = &writer.request.scope;
    let before = tx.entity_state(scope, id)?;
    let current_version = before.as_ref().map_or(0, |s| s.version);
    check_expected(writer.request, id.0, current_version)?;
    if before.is_none()
        && matches!(command, EntityCommand::Create(_))
        && tx.stream_version(id.0)? > 0
    {
        return Err(id_in_use(id.0));
    }

    let current_body = match (&before, command.needs_current_body()) {
        (
            Some(EntityState {
                content: Some(content),
                ..
            }),
            true,
        ) => tx.content_body(scope, content.hash)?,
        _ => None,
    };
    let tag_spellings = tx.tag_spellings(scope, &command.tag_keys())?;
    let revert_target = match command {
        EntityCommand::RevertTo { version } if (1..=current_version).contains(version) => {
            tx.entity_at_version(scope, id, *version)?
        }
        _ => None,
    };
    let context = DecideContext {
        current_body: current_body.as_deref(),
        tag_spellings,
        revert_target: revert_target.as_ref(),
    };
    let events = decide(id, before.as_ref(), command, &context)?;
    if events.is_empty() {
        return Ok((id.0, current_version));
    }

    // Bodies given with the command, by hash; bodies restored by a revert are
    // already in the content store.
    let bodies: HashMap<ContentHash, &NewContent> = command_bodies(command, &events);
    let mut state = before.clone();
    let mut content_event_id = None;
    for event in events {
        if let Some((hash, new)) =
            new_content_hash(&event).and_then(|hash| Some((hash, bodies.get(&hash)?)))
        {
            let content = ContentRef {
                hash,
                size: new.body.len() as u64,
                media_type: new
                    .media_type
                    .clone()
                    .unwrap_or_else(|| DEFAULT_MEDIA_TYPE.to_string()),
            };
            tx.put_content(scope, &content, &new.body)?;
        }
        // A new attachment's bytes are in the object store already (put there by
        // `attachments::attach`); record the reference once per hash. A revert
        // re-adds references whose row exists.
        if let (EntityEvent::AttachmentAdded(added), EntityCommand::Attach(_)) = (&event, command) {
            let content = ContentRef {
                hash: added.hash,
                size: added.size,
                media_type: added.media_type.clone(),
            };
            tx.put_object_ref(scope, &content)?;
        }
        match &event {
            EntityEvent::Created(created) if !created.tags.is_empty() => {
                tx.register_tags(scope, &created.tags)?
            }
            EntityEvent::TagsAdded(added) => tx.register_tags(scope, &added.tags)?,
            _ => {}
        }
        let is_content_change = matches!(event, EntityEvent::ContentChanged(_))
            || matches!(&event, EntityEvent::Created(created) if created.content.is_some());
        let version = state.as_ref().map_or(1, |s| s.version + 1);
        let payload = EventPayload::Entity(event);
        let event_id = writer.append(tx, id.0, version, &payload, None)?;
        if is_content_change {
            content_event_id = Some(event_id);
        }
        let EventPayload::Entity(event) = &payload else {
            unreachable!("built above")
        };
        state = EntityState::evolve(state, id, scope.user_id, version, writer.now, event);
        if let Some(state) = &state
            && version % SNAPSHOT_INTERVAL == 0
        {
            tx.save_snapshot(state)?;
        }
    }
    let after =
        state.ok_or_else(|| StoreError::Corrupt(format!("entity {id} folded to nothing")))?;
    let after_body: Option<&str> = after
        .content
        .as_ref()
        .and_then(|c| bodies.get(&c.hash))
        .map(|c| c.body.as_str());
    tx.project_entity(before.as_ref(), &after, after_body)?;

    let content_changed = before.as_ref().map(|b| &b.content) != Some(&after.content);
    if content_changed {
        let body = match (&after.content, after_body) {
            (None, _) => String::new(),
            (Some(_), Some(body)) => body.to_string(),
            (Some(content), None) => tx.content_body(scope, content.hash)?.unwrap_or_default(),
        };
        sync_mentions(tx, writer, &after, &body, content_event_id)?;
    }
    Ok((id.0, after.version))
}

/// Creates and deletes `mentions` relations so that they match the wikilinks of `body`.
fn sync_mentions<T: WriteTransaction + ?Sized>(
    tx: &mut T,
    writer: &mut Appender<'_>,
    entity: &EntityState,
    body: &str,
    cause: Option<Uuid>,
) -> StoreResult<()> {
    let scope = &writer.request.scope;
    let targets = wikilinks(body);
    let title_keys: Vec<String> = targets
        .iter()
        .filter_map(|t| match t {
            WikiTarget::Title(title) => Some(title_key(title)),
            WikiTarget::Id(_) => None,
        })
        .collect();
    let by_title = tx.entities_by_title(scope, &title_keys)?;
    let mut desired: BTreeSet<EntityId> = BTreeSet::new();
    for target in &targets {
        let resolved = match target {
            WikiTarget::Id(id) => tx.live_entity_exists(scope, *id)?.then_some(*id),
            WikiTarget::Title(title) => by_title.get(&title_key(title)).copied(),
        };
        if let Some(id) = resolved.filter(|id| *id != entity.id) {
            desired.insert(id);
        }
    }
    // A new entity has no relations yet.
    let existing = if entity.version == 1 {
        Vec::new()
    } else {
        tx.mentions_from(scope, entity.id)?
    };
    for relation in &existing {
        if !desired.contains(&relation.target_id) {
            writer.append_relation(
                tx,
                relation.id,
                Some(relation.clone()),
                RelationEvent::Deleted,
                cause,
            )?;
        }
    }
    for target_id in desired {
        if existing.iter().any(|r| r.target_id == target_id) {
            continue;
        }
        let event = relation::decide_link(
            entity.id,
            target_id,
            &RelationKind::mentions(),
            &LinkContext {
                source_exists: true,
                target_exists: true,
                duplicate: false,
            },
        )?;
        let id = RelationId((writer.new_id)());
        writer.append_relation(tx, id, None, event, cause)?;
    }
    Ok(())
}

/// The bodies a command carries, by hash. Hashing a body costs as much as the rest
/// of a small command, so a command with a single body (the usual case) is matched
/// without hashing it again: `decide` derived every new hash from that body.
fn command_bodies<'c>(
    command: &'c EntityCommand,
    events: &[EntityEvent],
) -> HashMap<ContentHash, &'c NewContent> {
    let contents: Vec<&NewContent> = match command {
        EntityCommand::Create(create) => create.content.iter().collect(),
        EntityCommand::Change(changes) => changes
            .iter()
            .filter_map(|change| match change {
                Change::Content(Some(content)) => Some(content),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    match contents.as_slice() {
        [] => HashMap::new(),
        [only] => events
            .iter()
            .filter_map(new_content_hash)
            .map(|hash| (hash, *only))
            .collect(),
        several => several
            .iter()
            .map(|c| (ContentHash::of(c.body.as_bytes()), *c))
            .collect(),
    }
}

fn new_content_hash(event: &EntityEvent) -> Option<ContentHash> {
    match event {
        EntityEvent::Created(created) => created.content.as_ref().map(|c| c.hash),
        EntityEvent::ContentChanged(change) => change.new_hash,
        _ => None,
    }
}

/// Appends events for one command: the first event takes the command id, later
/// ones fresh ids; every appended event is reported in the outcome.
struct Appender<'a> {
    request: &'a CommandRequest,
    now: Timestamp,
    new_id: &'a mut dyn FnMut() -> Uuid,
    appended: Vec<AppendedEvent>,
    /// The same events whole (deltas, never bodies), for webhook messages; only
    /// when `keep_events`.
    stored: Vec<StoredEvent>,
    keep_events: bool,
}

impl Appender<'_> {
    fn append<T: WriteTransaction + ?Sized>(
        &mut self,
        tx: &mut T,
        aggregate_id: Uuid,
        version: u64,
        payload: &EventPayload,
        cause: Option<Uuid>,
    ) -> StoreResult<Uuid> {
        let id = if self.appended.is_empty() {
            self.request.command_id
        } else {
            (self.new_id)()
        };
        let caused;
        let metadata = match cause {
            Some(cause) => {
                caused = EventMetadata {
                    causation_id: Some(cause),
                    ..self.request.metadata.clone()
                };
                &caused
            }
            None => &self.request.metadata,
        };
        let position = tx.append(NewEvent {
            id,
            aggregate_id,
            version,
            payload,
            user_id: self.request.scope.user_id,
            metadata,
            recorded_at: self.now,
        })?;
        self.appended.push(AppendedEvent {
            position,
            id,
            aggregate_id,
            version,
            event_type: payload.event_type().to_string(),
        });
        if self.keep_events {
            self.stored.push(StoredEvent {
                position,
                id: EventId(id),
                aggregate_id,
                version,
                payload: payload.clone(),
                schema_version: payload.schema_version(),
                user_id: self.request.scope.user_id,
                metadata: metadata.clone(),
                recorded_at: self.now,
            });
        }
        Ok(id)
    }

    fn append_relation<T: WriteTransaction + ?Sized>(
        &mut self,
        tx: &mut T,
        id: RelationId,
        before: Option<RelationState>,
        event: RelationEvent,
        cause: Option<Uuid>,
    ) -> StoreResult<RelationState> {
        let version = before.as_ref().map_or(1, |r| r.version + 1);
        let payload = EventPayload::Relation(event);
        self.append(tx, id.0, version, &payload, cause)?;
        let EventPayload::Relation(event) = &payload else {
            unreachable!("built above")
        };
        let after = RelationState::evolve(
            before.clone(),
            id,
            self.request.scope.user_id,
            version,
            self.now,
            event,
        )
        .ok_or_else(|| StoreError::Corrupt(format!("relation {id} folded to nothing")))?;
        tx.project_relation(before.as_ref(), &after)?;
        Ok(after)
    }
}
