//! `Change::Type`.

use crate::support::*;
use synap_domain::{
    Change, DomainError, EntityCommand, EntityEvent, EntityType, TaskFields, TaskStatus,
};

fn set_type(entity_type: EntityType) -> EntityCommand {
    EntityCommand::Change(vec![Change::Type(entity_type)])
}

#[test]
fn type_change_records_old_and_new() {
    let state = given([note("Plan", "body")])
        .when(set_type(EntityType::Project))
        .then(vec![type_changed(EntityType::Note, EntityType::Project)]);
    assert_eq!(state.entity_type, EntityType::Project);
}

#[test]
fn type_change_to_the_same_type_changes_nothing() {
    given([note("Plan", "body")])
        .when(set_type(EntityType::Note))
        .then_nothing();
}

#[test]
fn type_change_to_task_gives_default_task_fields() {
    let state = given([note("Plan", "body")])
        .when(set_type(EntityType::Task))
        .then(vec![type_changed(EntityType::Note, EntityType::Task)]);
    assert_eq!(state.visible_task(), Some(&TaskFields::default()));
    assert_eq!(
        TaskFields::default(),
        TaskFields {
            status: TaskStatus::Todo,
            priority: 0,
            due_at: None,
            completed_at: None
        }
    );
}

#[test]
fn type_change_away_from_task_drops_the_task_fields_and_back_starts_from_defaults() {
    let history = vec![
        task("Chore"),
        priority_changed(0, 2),
        status_changed(TaskStatus::Todo, TaskStatus::InProgress),
    ];
    let state = given(history.clone())
        .when(set_type(EntityType::Note))
        .then(vec![type_changed(EntityType::Task, EntityType::Note)]);
    assert_eq!(state.visible_task(), None);
    assert_eq!(state.task, None, "a note carries no task fields");

    let mut history = history;
    history.push(type_changed(EntityType::Task, EntityType::Note));
    let state = given(history)
        .when(set_type(EntityType::Task))
        .then(vec![type_changed(EntityType::Note, EntityType::Task)]);
    assert_eq!(
        state.visible_task(),
        Some(&TaskFields {
            status: TaskStatus::Todo,
            priority: 0,
            due_at: None,
            completed_at: None
        })
    );
}

#[test]
fn type_change_of_a_missing_entity_is_refused() {
    nothing()
        .when(set_type(EntityType::Task))
        .then_rejected(DomainError::EntityNotFound(ID));
}

#[test]
fn type_change_of_a_deleted_entity_is_refused() {
    given([note("Plan", "body"), EntityEvent::Deleted])
        .when(set_type(EntityType::Task))
        .then_rejected(DomainError::EntityDeleted(ID));
}
