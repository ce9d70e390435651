//! `Delete`, `Restore`, and what holds for every `Change` command.

use crate::support::*;
use serde_json::json;
use synap_domain::limits::CHANGES_PER_COMMAND_MAX;
use synap_domain::{
    Change, DomainError, EntityCommand, EntityEvent, EntityType, NewContent, TaskStatus,
};

#[test]
fn delete_records_deleted_and_the_fold_sets_deleted_at() {
    let state = given([note("Plan", "body")])
        .when(EntityCommand::Delete)
        .then(vec![EntityEvent::Deleted]);
    assert!(state.is_deleted());
    assert_eq!(state.deleted_at, Some(at(2)));
    assert_eq!(state.title, "Plan", "a soft delete keeps every field");
}

#[test]
fn delete_of_a_deleted_entity_changes_nothing() {
    given([note("Plan", "body"), EntityEvent::Deleted])
        .when(EntityCommand::Delete)
        .then_nothing();
}

#[test]
fn delete_of_a_missing_entity_is_refused() {
    nothing()
        .when(EntityCommand::Delete)
        .then_rejected(DomainError::EntityNotFound(ID));
}

#[test]
fn restore_records_restored_and_the_fold_clears_deleted_at() {
    let state = given([note("Plan", "body"), EntityEvent::Deleted])
        .when(EntityCommand::Restore)
        .then(vec![EntityEvent::Restored]);
    assert!(!state.is_deleted());
    assert_eq!(state.deleted_at, None);
}

#[test]
fn restore_of_a_live_entity_changes_nothing() {
    given([note("Plan", "body")])
        .when(EntityCommand::Restore)
        .then_nothing();
    given([
        note("Plan", "body"),
        EntityEvent::Deleted,
        EntityEvent::Restored,
    ])
    .when(EntityCommand::Restore)
    .then_nothing();
}

#[test]
fn restore_of_a_missing_entity_is_refused() {
    nothing()
        .when(EntityCommand::Restore)
        .then_rejected(DomainError::EntityNotFound(ID));
}

#[test]
fn a_restored_entity_can_be_changed_again() {
    given([
        note("Plan", "body"),
        EntityEvent::Deleted,
        EntityEvent::Restored,
    ])
    .when(EntityCommand::Change(vec![Change::Title("Plan B".into())]))
    .then(vec![title_changed("Plan", "Plan B")]);
}

#[test]
fn a_change_command_with_several_changes_yields_their_events_in_order() {
    let old = "# Inbox\nstuff";
    let new = "# Weekly review\nmore stuff";
    let state = given([note("Inbox", old)])
        .with_body(old)
        .when(EntityCommand::Change(vec![
            Change::Content(Some(NewContent::markdown(new))),
            Change::AddTags(strings(&["review"])),
            Change::Type(EntityType::Task),
            Change::TaskStatus(TaskStatus::InProgress),
            Change::SetMetadata(object(json!({"week": 12}))),
        ]))
        .then(vec![
            content_changed(Some(old), Some(new)),
            title_changed("Inbox", "Weekly review"),
            tags_added(&["review"]),
            type_changed(EntityType::Note, EntityType::Task),
            status_changed(TaskStatus::Todo, TaskStatus::InProgress),
            metadata_set(json!({"week": 12})),
        ]);
    assert_eq!(state.version, 7, "one version per event");
}

#[test]
fn a_later_change_in_a_command_sees_the_earlier_ones() {
    // The second title is compared with the first, not with the stored title.
    given([note("A", "body")])
        .when(EntityCommand::Change(vec![
            Change::Title("B".into()),
            Change::Title("A".into()),
        ]))
        .then(vec![title_changed("A", "B"), title_changed("B", "A")]);
    // A blank title after a content change derives from the new content.
    given([note("Explicit", "old first line")])
        .with_body("old first line")
        .when(EntityCommand::Change(vec![
            Change::Content(Some(NewContent::markdown("new first line"))),
            Change::Title(String::new()),
        ]))
        .then(vec![
            content_changed(Some("old first line"), Some("new first line")),
            title_changed("Explicit", "new first line"),
        ]);
    // A title set before a content change is explicit, so the content does not move it.
    given([note("old first line", "old first line")])
        .with_body("old first line")
        .when(EntityCommand::Change(vec![
            Change::Title("Chosen".into()),
            Change::Content(Some(NewContent::markdown("new first line"))),
        ]))
        .then(vec![
            title_changed("old first line", "Chosen"),
            content_changed(Some("old first line"), Some("new first line")),
        ]);
}

#[test]
fn a_command_with_one_invalid_change_is_refused_as_a_whole() {
    given([note("Plan", "body")])
        .when(EntityCommand::Change(vec![
            Change::Title("Valid".into()),
            Change::AddTags(strings(&["ok"])),
            Change::TaskPriority(1),
        ]))
        .then_rejected(DomainError::NotATask(ID));
}

#[test]
fn an_empty_change_command_changes_nothing() {
    given([note("Plan", "body")])
        .when(EntityCommand::Change(Vec::new()))
        .then_nothing();
}

#[test]
fn a_change_command_accepts_256_changes_and_refuses_257() {
    let changes = |n: usize| {
        (0..n)
            .map(|i| Change::Title(format!("title {i}")))
            .collect::<Vec<_>>()
    };
    let events = given([note("Plan", "body")])
        .when(EntityCommand::Change(changes(CHANGES_PER_COMMAND_MAX)))
        .events();
    assert_eq!(events.len(), CHANGES_PER_COMMAND_MAX);
    given([note("Plan", "body")])
        .when(EntityCommand::Change(changes(CHANGES_PER_COMMAND_MAX + 1)))
        .then_invalid("changes");
}

#[test]
fn the_store_is_asked_for_the_body_only_when_a_title_may_be_derived() {
    let needs = |changes: Vec<Change>| EntityCommand::Change(changes).needs_current_body();
    assert!(needs(vec![Change::Content(None)]));
    assert!(needs(vec![Change::Title("  ".into())]));
    assert!(needs(vec![
        Change::AddTags(vec![]),
        Change::Content(Some(NewContent::markdown("x")))
    ]));
    assert!(!needs(vec![Change::Title("Named".into())]));
    assert!(!needs(vec![
        Change::AddTags(strings(&["x"])),
        Change::TaskPriority(1)
    ]));
    assert!(!EntityCommand::Delete.needs_current_body());
    assert!(!EntityCommand::RevertTo { version: 1 }.needs_current_body());
}

#[test]
fn evolve_refuses_a_stream_that_does_not_start_with_created() {
    let state =
        synap_domain::EntityState::evolve(None, ID, USER, 1, at(1), &title_changed("a", "b"));
    assert_eq!(state, None);
}
