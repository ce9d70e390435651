//! Property tests: random command sequences through `decide` + `evolve`, simulating
//! what the store supplies (current body, the user's tag spellings, revert targets).

use crate::support::{ID, USER, at};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use synap_domain::limits::{TAG_CHARS_MAX, TITLE_CHARS_MAX};
use synap_domain::relation::RelationKind;
use synap_domain::revert::events_to_restore;
use synap_domain::tags::{normalize_tag, tag_key};
use synap_domain::{
    Change, ContentHash, CreateEntity, DecideContext, DomainError, EntityCommand, EntityEvent,
    EntityState, EntityType, NewContent, TaskInput, TaskStatus, Timestamp, decide,
};

// ---------------------------------------------------------------------------------
// Strategies: small vocabularies, so that random commands collide and change things.
// ---------------------------------------------------------------------------------

fn title() -> impl Strategy<Value = String> {
    prop_oneof![
        20 => select(vec!["", "  ", "Alpha", "Beta", " Gamma ", "Untitled"]).prop_map(String::from),
        1 => Just("two\nlines".to_string()),
        1 => Just("t".repeat(TITLE_CHARS_MAX + 1)),
    ]
}

fn body() -> impl Strategy<Value = String> {
    select(vec![
        "",
        "# Alpha\none",
        "# Beta\ntwo",
        "Gamma",
        "Gamma\nmore",
        "  \n",
        "# Alpha\nthree",
        "[[Beta]] link",
    ])
    .prop_map(String::from)
}

fn content() -> impl Strategy<Value = Option<NewContent>> {
    option::weighted(
        0.9,
        (
            body(),
            option::of(select(vec![
                "text/plain",
                "text/markdown",
                "text/plain",
                "bad type",
            ])),
        )
            .prop_map(|(body, media)| NewContent {
                body,
                media_type: media.map(String::from),
            }),
    )
}

fn tags() -> impl Strategy<Value = Vec<String>> {
    let tag = prop_oneof![
        30 => select(vec!["Rust", "rust", "#RUST", "Go", "go", " web dev ", "Web Dev", "ideas"]),
        1 => select(vec!["", "a,b"]),
    ];
    vec(tag, 0..4).prop_map(|tags| tags.into_iter().map(String::from).collect())
}

fn metadata() -> impl Strategy<Value = Map<String, Value>> {
    btree_map(
        prop_oneof![30 => select(vec!["a", "b", "c"]), 1 => Just("")],
        0..3i64,
        0..3,
    )
    .prop_map(|map| {
        map.into_iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect()
    })
}

fn keys() -> impl Strategy<Value = Vec<String>> {
    vec(select(vec!["a", "b", "c", "z"]), 0..3)
        .prop_map(|keys| keys.into_iter().map(String::from).collect())
}

fn due() -> impl Strategy<Value = Option<Timestamp>> {
    option::of(
        select(vec!["2025-03-07T17:00:00Z", "2025-04-01T09:00:00Z"])
            .prop_map(|t| t.parse().unwrap()),
    )
}

/// Any type, task more often than the others (task fields need it).
fn entity_type() -> impl Strategy<Value = EntityType> {
    prop_oneof![Just(EntityType::Task), select(EntityType::ALL.to_vec())]
}

fn status() -> impl Strategy<Value = TaskStatus> {
    select(TaskStatus::ALL.to_vec())
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        title().prop_map(Change::Title),
        content().prop_map(Change::Content),
        entity_type().prop_map(Change::Type),
        tags().prop_map(Change::AddTags),
        tags().prop_map(Change::RemoveTags),
        metadata().prop_map(Change::SetMetadata),
        keys().prop_map(Change::UnsetMetadata),
        status().prop_map(Change::TaskStatus),
        prop_oneof![20 => 0u8..=3, 1 => Just(4u8)].prop_map(Change::TaskPriority),
        due().prop_map(Change::TaskDue),
    ]
}

fn create() -> impl Strategy<Value = CreateEntity> {
    (
        entity_type(),
        option::of(title()),
        content(),
        tags(),
        option::of((option::of(status()), option::of(0u8..=3), due())),
        metadata(),
    )
        .prop_map(
            |(entity_type, title, content, tags, task, metadata)| CreateEntity {
                entity_type,
                title,
                content,
                tags,
                task: task.filter(|_| entity_type == EntityType::Task).map(
                    |(status, priority, due_at)| TaskInput {
                        status,
                        priority,
                        due_at,
                    },
                ),
                metadata,
            },
        )
}

/// One step of a scenario. `Revert(n)` reverts to version `1 + n % current`.
#[derive(Debug, Clone)]
enum Step {
    Change(Vec<Change>),
    Delete,
    Restore,
    Revert(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => vec(change(), 1..4).prop_map(Step::Change),
        1 => Just(Step::Delete),
        2 => Just(Step::Restore),
        1 => any::<usize>().prop_map(Step::Revert),
    ]
}

// ---------------------------------------------------------------------------------
// A simulated store: the event stream, every state, bodies by hash, tag spellings.
// ---------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Store {
    /// `states[v - 1]` is the state at version `v`.
    states: Vec<EntityState>,
    bodies: HashMap<ContentHash, String>,
    spellings: HashMap<String, String>,
}

impl Store {
    fn current(&self) -> Option<&EntityState> {
        self.states.last()
    }

    fn version(&self) -> u64 {
        self.states.len() as u64
    }

    /// Decides `command` the way the store would, and appends the events.
    /// Returns the decided events (or the rejection, after which nothing changed).
    fn run(&mut self, command: &EntityCommand) -> Result<Vec<EntityEvent>, DomainError> {
        for content in contents_of(command) {
            self.bodies
                .insert(content.content_ref().hash, content.body.clone());
        }
        let current_body = match (command.needs_current_body(), self.current()) {
            (true, Some(state)) => state
                .content
                .as_ref()
                .map(|c| self.bodies[&c.hash].as_str()),
            _ => None,
        };
        let tag_spellings = command
            .tag_keys()
            .into_iter()
            .filter_map(|key| self.spellings.get(&key).map(|s| (key, s.clone())))
            .collect();
        let revert_target = match command {
            EntityCommand::RevertTo { version } if *version >= 1 && *version <= self.version() => {
                Some(&self.states[*version as usize - 1])
            }
            _ => None,
        };
        let context = DecideContext {
            current_body,
            tag_spellings,
            revert_target,
        };
        let events = decide(ID, self.current(), command, &context)?;
        for event in &events {
            self.append(event);
        }
        Ok(events)
    }

    /// Folds one event in, checking the envelope rules of the fold.
    fn append(&mut self, event: &EntityEvent) {
        let before = self.current().cloned();
        let version = self.version() + 1;
        let after = EntityState::evolve(before.clone(), ID, USER, version, at(version), event)
            .unwrap_or_else(|| panic!("evolve refused {event:?}"));
        // (a) every event moves the version by exactly one.
        assert_eq!(after.version, before.as_ref().map_or(0, |b| b.version) + 1);
        assert_eq!(after.updated_at, at(version));
        if let Some(before) = &before {
            assert_eq!(
                after.created_at, before.created_at,
                "created_at never moves"
            );
        }
        let added = match event {
            EntityEvent::Created(created) => created.tags.clone(),
            EntityEvent::TagsAdded(added) => added.tags.clone(),
            _ => Vec::new(),
        };
        for tag in added {
            self.spellings.entry(tag_key(&tag)).or_insert(tag);
        }
        self.states.push(after);
    }
}

fn contents_of(command: &EntityCommand) -> Vec<&NewContent> {
    match command {
        EntityCommand::Create(create) => create.content.iter().collect(),
        EntityCommand::Change(changes) => changes
            .iter()
            .filter_map(|change| match change {
                Change::Content(Some(content)) => Some(content),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Builds a store from a create and a sequence of steps. Rejected steps change nothing.
fn simulate(create: CreateEntity, steps: &[Step]) -> Store {
    let mut store = Store::default();
    if store.run(&EntityCommand::Create(create)).is_err() {
        store
            .run(&EntityCommand::Create(CreateEntity::note("# Start")))
            .expect("a plain note is valid");
    }
    for step in steps {
        let command = match step {
            Step::Change(changes) => EntityCommand::Change(changes.clone()),
            Step::Delete => EntityCommand::Delete,
            Step::Restore => EntityCommand::Restore,
            Step::Revert(n) => EntityCommand::RevertTo {
                version: 1 + (*n as u64) % store.version(),
            },
        };
        let version = store.version();
        if store.run(&command).is_err() {
            assert_eq!(
                store.version(),
                version,
                "a refused command appends nothing"
            );
        }
    }
    store
}

/// What a revert restores, with the time stamps reduced to whether they are set.
fn restorable(state: &EntityState) -> impl PartialEq + std::fmt::Debug {
    (
        state.entity_type,
        state.title.clone(),
        state.content.clone(),
        state.tags.to_vec(),
        state.metadata.clone(),
        state.deleted_at.is_some(),
        state
            .visible_task()
            .map(|t| (t.status, t.priority, t.due_at, t.completed_at.is_some())),
    )
}

/// The whole task part, shown or hidden.
fn task_part(state: &EntityState) -> impl PartialEq + std::fmt::Debug {
    state
        .task
        .as_ref()
        .map(|t| (t.status, t.priority, t.due_at, t.completed_at.is_some()))
}

/// Reverts a copy of `store` to `version`: (target state, the reverted copy, the events).
fn revert(store: &Store, version: u64) -> (EntityState, Store, Vec<EntityEvent>) {
    let mut copy = Store {
        states: store.states.clone(),
        bodies: store.bodies.clone(),
        spellings: store.spellings.clone(),
    };
    let target = store.states[version as usize - 1].clone();
    let events = copy
        .run(&EntityCommand::RevertTo { version })
        .expect("reverting to an existing version");
    (target, copy, events)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// (a) Versions start at 1 and move by exactly one per event (checked in `append`),
    /// so the version is the number of events in the stream.
    #[test]
    fn versions_increase_by_exactly_one_per_event(create in create(), steps in vec(step(), 0..40)) {
        let store = simulate(create, &steps);
        for (index, state) in store.states.iter().enumerate() {
            prop_assert_eq!(state.version, index as u64 + 1);
            prop_assert_eq!(state.created_at, at(1));
            prop_assert_eq!(state.id, ID);
            prop_assert_eq!(state.user_id, USER);
        }
    }

    /// (b) Reverting to any earlier version gives that version's state back, except
    /// version and time stamps (a re-done task is completed at the revert, a re-deleted
    /// entity deleted at the revert). Hidden task fields are checked when the target
    /// had task fields; see the ignored property below for when it had none.
    #[test]
    fn reverting_to_any_version_restores_its_state(create in create(), steps in vec(step(), 0..40)) {
        let store = simulate(create, &steps);
        let current = store.current().unwrap().clone();
        for version in 1..=store.version() {
            let (target, mut reverted, events) = revert(&store, version);
            let after = reverted.current().unwrap().clone();
            prop_assert_eq!(&events, &events_to_restore(&current, &target));
            prop_assert_eq!(restorable(&after), restorable(&target), "revert to {}", version);
            if target.task.is_some() {
                prop_assert_eq!(task_part(&after), task_part(&target), "task fields, revert to {}", version);
            }
            prop_assert_eq!(after.version, current.version + events.len() as u64);
            // Reverting again to the same version has nothing left to do.
            let repeat = reverted.run(&EntityCommand::RevertTo { version }).unwrap();
            prop_assert!(repeat.is_empty(), "second revert to {} decided {:?}", version, repeat);
        }
    }

    /// (c) decide never panics on arbitrary text, and what it accepts obeys the limits.
    #[test]
    fn decide_never_panics_on_arbitrary_text(
        title in any::<String>(),
        tag in any::<String>(),
        key in any::<String>(),
        body in any::<String>(),
        media_type in option::of(any::<String>()),
        kind in any::<String>(),
    ) {
        let content = Some(NewContent { body: body.clone(), media_type: media_type.clone() });
        let mut metadata = Map::new();
        metadata.insert(key.clone(), json!(1));
        let command = EntityCommand::Create(CreateEntity {
            entity_type: EntityType::Task,
            title: Some(title.clone()),
            content: content.clone(),
            tags: vec![tag.clone(), format!("#{tag}"), tag.to_uppercase()],
            task: None,
            metadata: metadata.clone(),
        });
        let mut store = Store::default();
        if let Ok(events) = store.run(&command) {
            check_limits(&events);
        } else {
            store.run(&EntityCommand::Create(CreateEntity::note("# Start\nbody"))).unwrap();
            store.run(&EntityCommand::Change(vec![Change::Type(EntityType::Task)])).unwrap();
        }
        let changes = vec![
            Change::Title(title.clone()),
            Change::Title(String::new()),
            Change::Content(content),
            Change::Title(String::new()),
            Change::AddTags(vec![tag.clone()]),
            Change::RemoveTags(vec![tag.clone()]),
            Change::SetMetadata(metadata),
            Change::UnsetMetadata(vec![key.clone()]),
        ];
        for change in changes {
            if let Ok(events) = store.run(&EntityCommand::Change(vec![change])) {
                check_limits(&events);
            }
        }
        let _ = store.run(&EntityCommand::RevertTo { version: 1 });
        let _ = normalize_tag(&tag);
        let _ = RelationKind::parse(&kind);
        let _ = synap_domain::text::derive_title(&body);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// (b, strict) The same with every field of the state, hidden task fields included.
    #[test]
    fn reverting_to_any_version_restores_every_field(create in create(), steps in vec(step(), 0..40)) {
        let store = simulate(create, &steps);
        for version in 1..=store.version() {
            let (target, reverted, _) = revert(&store, version);
            let after = reverted.current().unwrap();
            prop_assert_eq!(restorable(after), restorable(&target), "revert to {}", version);
            prop_assert_eq!(task_part(after), task_part(&target), "task fields, revert to {}", version);
        }
    }
}

/// What any accepted event must respect, whatever the input was.
fn check_limits(events: &[EntityEvent]) {
    let check_tags = |tags: &[String]| {
        for tag in tags {
            let chars = tag.chars().count();
            assert!((1..=TAG_CHARS_MAX).contains(&chars), "tag {tag:?}");
            assert_eq!(tag.trim(), tag, "tags are trimmed");
            assert!(!tag.contains(','), "tag {tag:?}");
        }
        let mut keys: Vec<String> = tags.iter().map(|t| tag_key(t)).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), tags.len(), "tags unique by key: {tags:?}");
    };
    for event in events {
        match event {
            EntityEvent::Created(created) => {
                assert!(created.title.chars().count() <= TITLE_CHARS_MAX);
                assert!(!created.title.is_empty());
                check_tags(&created.tags);
            }
            EntityEvent::TitleChanged(change) => {
                assert!(change.new.chars().count() <= TITLE_CHARS_MAX);
                assert!(!change.new.is_empty());
            }
            EntityEvent::TagsAdded(added) => check_tags(&added.tags),
            _ => {}
        }
    }
}
