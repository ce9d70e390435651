//! Given/when/then for the entity aggregate.
//!
//! `given(events)` folds a history through `EntityState::evolve` (versions 1, 2, …,
//! one second apart), `.when(command)` runs `decide` against that state, and
//! `.then(expected)` checks the exact delta events and returns the state after
//! folding them in, for follow-up assertions.

use serde_json::{Map, Value};
use std::collections::HashMap;
use synap_domain::event::{
    ContentChanged, EntityCreated, FieldChange, MetadataChanged, TagsChanged,
};
use synap_domain::{
    ContentHash, DecideContext, DomainError, EntityCommand, EntityEvent, EntityId, EntityState,
    EntityType, NewContent, TaskFields, TaskStatus, Timestamp, UserId, decide,
};
use uuid::Uuid;

/// The entity every scenario is about.
pub const ID: EntityId = EntityId(Uuid::from_u128(0x0192_f0c1_0000_7000_8000_0000_0000_0001));
/// Its owner.
pub const USER: UserId = UserId(Uuid::from_u128(0x0192_f0c0_0000_7000_8000_0000_0000_0001));

/// The time event number `n` of a scenario is recorded at (one second apart).
pub fn at(n: u64) -> Timestamp {
    Timestamp::from_second(1_714_550_400 + n as i64).expect("a valid timestamp")
}

/// Folds `events` into `state`, numbering them from `state.version + 1`, recorded at
/// `at(version)`. Panics if the stream is corrupt (first event not `entity.created`).
pub fn apply(state: Option<EntityState>, events: &[EntityEvent]) -> Option<EntityState> {
    let mut state = state;
    for event in events {
        let version = state.as_ref().map_or(0, |s| s.version) + 1;
        let next = EntityState::evolve(state, ID, USER, version, at(version), event);
        assert!(
            next.is_some(),
            "evolve refused {event:?} at version {version}"
        );
        state = next;
    }
    state
}

/// The state after `events`, or `None` for an empty history.
pub fn fold(events: &[EntityEvent]) -> Option<EntityState> {
    apply(None, events)
}

/// A history (possibly empty) and what the store would put in the `DecideContext`.
#[derive(Debug, Default)]
pub struct Scenario {
    history: Vec<EntityEvent>,
    state: Option<EntityState>,
    body: Option<String>,
    spellings: HashMap<String, String>,
    revert_target: Option<EntityState>,
}

/// An entity whose stream holds `events`.
pub fn given(events: impl IntoIterator<Item = EntityEvent>) -> Scenario {
    let history: Vec<EntityEvent> = events.into_iter().collect();
    let state = fold(&history);
    Scenario {
        history,
        state,
        ..Scenario::default()
    }
}

/// No entity with this id exists.
pub fn nothing() -> Scenario {
    Scenario::default()
}

impl Scenario {
    /// The store supplies the current content body (for title derivation).
    pub fn with_body(mut self, body: &str) -> Self {
        self.body = Some(body.to_string());
        self
    }

    /// The user already has a tag spelled `spelling`.
    pub fn with_user_tag(mut self, spelling: &str) -> Self {
        self.spellings
            .insert(synap_domain::tags::tag_key(spelling), spelling.to_string());
        self
    }

    /// The store supplies the state of `version` (the fold of its first `version` events).
    pub fn with_state_of_version(mut self, version: usize) -> Self {
        self.revert_target = fold(&self.history[..version]);
        self
    }

    /// The store supplies an arbitrary revert target.
    pub fn with_revert_target(mut self, target: EntityState) -> Self {
        self.revert_target = Some(target);
        self
    }

    pub fn when(self, command: EntityCommand) -> Outcome {
        let context = DecideContext {
            current_body: self.body.as_deref(),
            tag_spellings: self.spellings.clone(),
            revert_target: self.revert_target.as_ref(),
        };
        let result = decide(ID, self.state.as_ref(), &command, &context);
        Outcome {
            before: self.state,
            result,
        }
    }
}

/// What `decide` said.
#[derive(Debug)]
pub struct Outcome {
    before: Option<EntityState>,
    result: Result<Vec<EntityEvent>, DomainError>,
}

impl Outcome {
    /// Asserts the exact events and returns the state after folding them in.
    #[track_caller]
    pub fn then(self, expected: Vec<EntityEvent>) -> EntityState {
        let events = match self.result {
            Ok(events) => events,
            Err(error) => {
                panic!("expected events {expected:#?}, the command was refused: {error:?}")
            }
        };
        assert_eq!(events, expected, "events decided");
        apply(self.before, &events).expect("a state after the events")
    }

    /// Asserts that the command changes nothing (decides no events).
    #[track_caller]
    pub fn then_nothing(self) -> EntityState {
        self.then(Vec::new())
    }

    /// The decided events, unchecked (for assertions on payloads).
    #[track_caller]
    pub fn events(self) -> Vec<EntityEvent> {
        self.result.expect("the command to be accepted")
    }

    /// Asserts the exact rejection.
    #[track_caller]
    pub fn then_rejected(self, expected: DomainError) {
        match self.result {
            Ok(events) => panic!("expected rejection {expected:?}, got events {events:#?}"),
            Err(error) => assert_eq!(error, expected),
        }
    }

    /// Asserts a validation rejection naming `field`; returns its message.
    #[track_caller]
    pub fn then_invalid(self, field: &str) -> String {
        match self.result {
            Err(DomainError::Validation {
                field: got,
                message,
            }) => {
                assert_eq!(got, field, "rejected field (message: {message})");
                assert!(
                    !message.is_empty(),
                    "a validation message says what was wrong"
                );
                message
            }
            other => panic!("expected a validation error for {field:?}, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------
// Event and value builders, so expected events read like the catalogue.
// ---------------------------------------------------------------------------------

pub fn hash(body: &str) -> ContentHash {
    ContentHash::of(body.as_bytes())
}

/// `entity.created` for an entity of `entity_type`, with `title` and optional markdown body.
pub fn created(entity_type: EntityType, title: &str, body: Option<&str>) -> EntityEvent {
    EntityEvent::Created(EntityCreated {
        entity_type,
        title: title.to_string(),
        content: body.map(|b| NewContent::markdown(b).content_ref()),
        tags: Vec::new(),
        task: (entity_type == EntityType::Task).then(TaskFields::default),
        metadata: Map::new(),
    })
}

/// `entity.created` for a note with a markdown body and an explicit title.
pub fn note(title: &str, body: &str) -> EntityEvent {
    created(EntityType::Note, title, Some(body))
}

/// `entity.created` for a task (default task fields) with a title and no content.
pub fn task(title: &str) -> EntityEvent {
    created(EntityType::Task, title, None)
}

/// `entity.created` with the given fields changed by `edit`.
pub fn created_with(base: EntityEvent, edit: impl FnOnce(&mut EntityCreated)) -> EntityEvent {
    match base {
        EntityEvent::Created(mut created) => {
            edit(&mut created);
            EntityEvent::Created(created)
        }
        other => panic!("not a created event: {other:?}"),
    }
}

pub fn title_changed(old: &str, new: &str) -> EntityEvent {
    EntityEvent::TitleChanged(FieldChange {
        old: old.to_string(),
        new: new.to_string(),
    })
}

/// `entity.content_changed` between two markdown bodies (`None`: no content).
pub fn content_changed(old: Option<&str>, new: Option<&str>) -> EntityEvent {
    EntityEvent::ContentChanged(ContentChanged {
        old_hash: old.map(hash),
        new_hash: new.map(hash),
        size: new.map_or(0, |b| b.len() as u64),
        media_type: None,
    })
}

pub fn type_changed(old: EntityType, new: EntityType) -> EntityEvent {
    EntityEvent::TypeChanged(FieldChange { old, new })
}

pub fn tags_added(tags: &[&str]) -> EntityEvent {
    EntityEvent::TagsAdded(TagsChanged {
        tags: strings(tags),
    })
}

pub fn tags_removed(tags: &[&str]) -> EntityEvent {
    EntityEvent::TagsRemoved(TagsChanged {
        tags: strings(tags),
    })
}

pub fn metadata_set(set: Value) -> EntityEvent {
    EntityEvent::MetadataChanged(MetadataChanged {
        set: object(set),
        unset: Vec::new(),
    })
}

pub fn metadata_unset(keys: &[&str]) -> EntityEvent {
    EntityEvent::MetadataChanged(MetadataChanged {
        set: Map::new(),
        unset: strings(keys),
    })
}

pub fn status_changed(old: TaskStatus, new: TaskStatus) -> EntityEvent {
    EntityEvent::TaskStatusChanged(FieldChange { old, new })
}

pub fn priority_changed(old: u8, new: u8) -> EntityEvent {
    EntityEvent::TaskPriorityChanged(FieldChange { old, new })
}

pub fn due_changed(old: Option<Timestamp>, new: Option<Timestamp>) -> EntityEvent {
    EntityEvent::TaskDueChanged(FieldChange { old, new })
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A JSON object literal as a metadata map.
pub fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// A timestamp from RFC 3339 text.
pub fn ts(text: &str) -> Timestamp {
    text.parse().expect("an RFC 3339 timestamp")
}
