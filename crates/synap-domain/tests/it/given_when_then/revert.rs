//! `EntityCommand::RevertTo`: compensating events computed by
//! `revert::events_to_restore(current, state of the target version)`.

use crate::support::*;
use serde_json::json;
use synap_domain::event::{ContentChanged, MetadataChanged};
use synap_domain::revert::events_to_restore;
use synap_domain::{
    DomainError, EntityCommand, EntityEvent, EntityState, EntityType, TaskFields, TaskStatus,
};

const OLD: &str = "# Trip\nLisbon";
const NEW: &str = "# Trip\nPorto";

fn revert_to(version: u64) -> EntityCommand {
    EntityCommand::RevertTo { version }
}

/// Every field a revert restores (not version, timestamps or the completion time).
fn restorable(state: &EntityState) -> impl PartialEq + std::fmt::Debug {
    (
        state.entity_type,
        state.title.clone(),
        state.content.clone(),
        state.tags.to_vec(),
        state
            .visible_task()
            .map(|t| (t.status, t.priority, t.due_at)),
        state.metadata.clone(),
        state.deleted_at.is_some(),
    )
}

fn history() -> Vec<EntityEvent> {
    vec![
        created_with(note("Trip", OLD), |e| {
            e.tags = strings(&["travel"]);
            e.metadata = object(json!({"a": 1}));
        }),
        title_changed("Trip", "Trip to Porto"),
        content_changed(Some(OLD), Some(NEW)),
        tags_added(&["Porto"]),
        tags_removed(&["travel"]),
        metadata_set(json!({"a": 2, "b": 3})),
        type_changed(EntityType::Note, EntityType::Idea),
    ]
}

#[test]
fn revert_appends_one_compensating_delta_per_changed_field() {
    let scenario = given(history()).with_state_of_version(1);
    let target = fold(&history()[..1]).unwrap();
    let state = scenario.when(revert_to(1)).then(vec![
        type_changed(EntityType::Idea, EntityType::Note),
        title_changed("Trip to Porto", "Trip"),
        content_changed(Some(NEW), Some(OLD)),
        tags_removed(&["Porto"]),
        tags_added(&["travel"]),
        EntityEvent::MetadataChanged(MetadataChanged {
            set: object(json!({"a": 1})),
            unset: strings(&["b"]),
        }),
    ]);
    assert_eq!(restorable(&state), restorable(&target));
    assert_eq!(state.version, 7 + 6, "history is kept: the revert appends");
    assert_eq!(state.created_at, at(1));
}

#[test]
fn revert_to_a_middle_version_restores_only_what_differs() {
    given(history())
        .with_state_of_version(4)
        .when(revert_to(4))
        .then(vec![
            type_changed(EntityType::Idea, EntityType::Note),
            tags_added(&["travel"]),
            EntityEvent::MetadataChanged(MetadataChanged {
                set: object(json!({"a": 1})),
                unset: strings(&["b"]),
            }),
        ]);
}

#[test]
fn revert_to_the_current_version_changes_nothing() {
    given(history())
        .with_state_of_version(7)
        .when(revert_to(7))
        .then_nothing();
}

#[test]
fn revert_can_itself_be_reverted() {
    let mut events = history();
    let reverted = given(events.clone())
        .with_state_of_version(1)
        .when(revert_to(1))
        .events();
    events.extend(reverted);
    let before_revert = fold(&history()).unwrap();
    let state = given(events.clone())
        .with_state_of_version(7)
        .when(revert_to(7))
        .events();
    let after = apply(fold(&events), &state).unwrap();
    assert_eq!(restorable(&after), restorable(&before_revert));
}

#[test]
fn revert_restores_removed_content_with_its_media_type() {
    given([note("Trip", OLD), content_changed(Some(OLD), None)])
        .with_state_of_version(1)
        .when(revert_to(1))
        .then(vec![EntityEvent::ContentChanged(ContentChanged {
            old_hash: None,
            new_hash: Some(hash(OLD)),
            size: OLD.len() as u64,
            media_type: Some("text/markdown".into()),
        })]);
}

#[test]
fn revert_to_a_version_without_content_removes_it() {
    given([
        created(EntityType::Note, "Trip", None),
        content_changed(None, Some(NEW)),
    ])
    .with_state_of_version(1)
    .when(revert_to(1))
    .then(vec![content_changed(Some(NEW), None)]);
}

#[test]
fn revert_of_a_deleted_entity_to_a_live_version_restores_it_first() {
    let state = given([
        note("Trip", OLD),
        title_changed("Trip", "Gone"),
        EntityEvent::Deleted,
    ])
    .with_state_of_version(1)
    .when(revert_to(1))
    .then(vec![EntityEvent::Restored, title_changed("Gone", "Trip")]);
    assert!(!state.is_deleted());
}

#[test]
fn revert_to_a_deleted_version_deletes_last() {
    let state = given([
        note("Trip", OLD),
        EntityEvent::Deleted,
        EntityEvent::Restored,
        title_changed("Trip", "Back"),
    ])
    .with_state_of_version(2)
    .when(revert_to(2))
    .then(vec![title_changed("Back", "Trip"), EntityEvent::Deleted]);
    assert!(state.is_deleted());
}

#[test]
fn revert_restores_task_status_priority_and_due_date() {
    let due = ts("2025-06-01T12:00:00Z");
    let state = given([
        task("Chore"),
        status_changed(TaskStatus::Todo, TaskStatus::Done),
        priority_changed(0, 2),
        due_changed(None, Some(due)),
    ])
    .with_state_of_version(1)
    .when(revert_to(1))
    .then(vec![
        status_changed(TaskStatus::Done, TaskStatus::Todo),
        priority_changed(2, 0),
        due_changed(Some(due), None),
    ]);
    assert_eq!(
        state.visible_task(),
        Some(&TaskFields::default()),
        "completed_at cleared too"
    );
}

#[test]
fn revert_to_a_done_version_completes_the_task_again_at_the_revert() {
    let state = given([
        task("Chore"),
        status_changed(TaskStatus::Todo, TaskStatus::Done),
        status_changed(TaskStatus::Done, TaskStatus::Todo),
    ])
    .with_state_of_version(2)
    .when(revert_to(2))
    .then(vec![status_changed(TaskStatus::Todo, TaskStatus::Done)]);
    assert_eq!(state.visible_task().unwrap().completed_at, Some(at(4)));
}

#[test]
fn revert_to_a_task_version_restores_the_type_and_the_task_fields() {
    let state = given([
        task("Chore"),
        priority_changed(0, 3),
        type_changed(EntityType::Task, EntityType::Note),
        // Hidden task fields change while it is a note (a revert of an older revert could do this).
        priority_changed(3, 1),
    ])
    .with_state_of_version(2)
    .when(revert_to(2))
    .then(vec![
        type_changed(EntityType::Note, EntityType::Task),
        priority_changed(1, 3),
    ]);
    assert_eq!(state.visible_task().unwrap().priority, 3);
}

#[test]
fn revert_to_a_version_before_the_entity_became_a_task_hides_the_task_fields() {
    let history = [
        note("Plan", "body"),
        type_changed(EntityType::Note, EntityType::Task),
        priority_changed(0, 2),
    ];
    let target = fold(&history[..1]).unwrap();
    let state = given(history)
        .with_state_of_version(1)
        .when(revert_to(1))
        .then(vec![type_changed(EntityType::Task, EntityType::Note)]);
    assert_eq!(restorable(&state), restorable(&target));
    assert_eq!(state.visible_task(), None);
}

/// The state of version 1 had no task fields at all; after the revert no hidden task
/// fields of version 3 linger, so changing the type to task again shows the defaults
/// version 1 would have given, not priority 2.
#[test]
fn revert_to_a_version_before_the_entity_became_a_task_equals_that_version() {
    let history = [
        note("Plan", "body"),
        type_changed(EntityType::Note, EntityType::Task),
        priority_changed(0, 2),
    ];
    let target = fold(&history[..1]).unwrap();
    let events = given(history.clone())
        .with_state_of_version(1)
        .when(revert_to(1))
        .events();
    let mut state = apply(fold(&history), &events).unwrap();
    assert_eq!(state.task, target.task, "task fields after the revert");
    state = apply(
        Some(state),
        &[type_changed(EntityType::Note, EntityType::Task)],
    )
    .unwrap();
    assert_eq!(state.visible_task(), Some(&TaskFields::default()));
}

#[test]
fn revert_decides_exactly_what_events_to_restore_computes() {
    let current = fold(&history()).unwrap();
    for version in 1..=7 {
        let target = fold(&history()[..version]).unwrap();
        let events = given(history())
            .with_state_of_version(version)
            .when(revert_to(version as u64))
            .events();
        assert_eq!(
            events,
            events_to_restore(&current, &target),
            "revert to {version}"
        );
    }
}

// --- rejections -----------------------------------------------------------------

#[test]
fn revert_to_version_zero_is_refused() {
    given(history())
        .with_state_of_version(1)
        .when(revert_to(0))
        .then_rejected(DomainError::NoSuchVersion {
            id: ID,
            version: 0,
            current: 7,
        });
}

#[test]
fn revert_to_a_future_version_is_refused() {
    let target = fold(&history()).unwrap();
    let mut future = target.clone();
    future.version = 8;
    given(history())
        .with_revert_target(future)
        .when(revert_to(8))
        .then_rejected(DomainError::NoSuchVersion {
            id: ID,
            version: 8,
            current: 7,
        });
}

#[test]
fn revert_without_the_target_state_is_refused() {
    given(history())
        .when(revert_to(3))
        .then_rejected(DomainError::NoSuchVersion {
            id: ID,
            version: 3,
            current: 7,
        });
}

#[test]
fn revert_with_a_target_state_of_another_version_is_refused() {
    given(history())
        .with_state_of_version(2)
        .when(revert_to(3))
        .then_rejected(DomainError::NoSuchVersion {
            id: ID,
            version: 3,
            current: 7,
        });
}

#[test]
fn revert_of_a_missing_entity_is_refused() {
    nothing()
        .when(revert_to(1))
        .then_rejected(DomainError::EntityNotFound(ID));
}
