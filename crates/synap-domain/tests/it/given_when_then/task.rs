//! `Change::TaskStatus`, `Change::TaskPriority` and `Change::TaskDue`.

use crate::support::*;
use synap_domain::{Change, DomainError, EntityCommand, EntityEvent, EntityType, TaskStatus};

fn change(change: Change) -> EntityCommand {
    EntityCommand::Change(vec![change])
}

#[test]
fn status_change_records_old_and_new() {
    let state = given([task("Chore")])
        .when(change(Change::TaskStatus(TaskStatus::InProgress)))
        .then(vec![status_changed(
            TaskStatus::Todo,
            TaskStatus::InProgress,
        )]);
    let task = state.visible_task().unwrap();
    assert_eq!(task.status, TaskStatus::InProgress);
    assert_eq!(task.completed_at, None);
}

#[test]
fn status_change_to_done_sets_completed_at_when_recorded() {
    let state = given([
        task("Chore"),
        status_changed(TaskStatus::Todo, TaskStatus::InProgress),
    ])
    .when(change(Change::TaskStatus(TaskStatus::Done)))
    .then(vec![status_changed(
        TaskStatus::InProgress,
        TaskStatus::Done,
    )]);
    assert_eq!(state.visible_task().unwrap().completed_at, Some(at(3)));
}

#[test]
fn status_change_away_from_done_clears_completed_at() {
    for next in [
        TaskStatus::Todo,
        TaskStatus::InProgress,
        TaskStatus::Cancelled,
    ] {
        let state = given([
            task("Chore"),
            status_changed(TaskStatus::Todo, TaskStatus::Done),
        ])
        .when(change(Change::TaskStatus(next)))
        .then(vec![status_changed(TaskStatus::Done, next)]);
        assert_eq!(
            state.visible_task().unwrap().completed_at,
            None,
            "leaving done for {next}"
        );
    }
}

#[test]
fn status_change_to_the_same_status_changes_nothing() {
    let state = given([
        task("Chore"),
        status_changed(TaskStatus::Todo, TaskStatus::Done),
    ])
    .when(change(Change::TaskStatus(TaskStatus::Done)))
    .then_nothing();
    assert_eq!(
        state.visible_task().unwrap().completed_at,
        Some(at(2)),
        "completion time kept"
    );
}

#[test]
fn priority_change_records_old_and_new_for_every_valid_priority() {
    for priority in 1..=3u8 {
        let state = given([task("Chore")])
            .when(change(Change::TaskPriority(priority)))
            .then(vec![priority_changed(0, priority)]);
        assert_eq!(state.visible_task().unwrap().priority, priority);
    }
    given([task("Chore"), priority_changed(0, 3)])
        .when(change(Change::TaskPriority(0)))
        .then(vec![priority_changed(3, 0)]);
}

#[test]
fn priority_change_to_the_same_priority_changes_nothing() {
    given([task("Chore")])
        .when(change(Change::TaskPriority(0)))
        .then_nothing();
}

#[test]
fn due_change_sets_moves_and_clears_the_due_date() {
    let friday = ts("2025-03-07T17:00:00Z");
    let monday = ts("2025-03-10T09:00:00Z");
    let state = given([task("Chore")])
        .when(change(Change::TaskDue(Some(friday))))
        .then(vec![due_changed(None, Some(friday))]);
    assert_eq!(state.visible_task().unwrap().due_at, Some(friday));

    given([task("Chore"), due_changed(None, Some(friday))])
        .when(change(Change::TaskDue(Some(monday))))
        .then(vec![due_changed(Some(friday), Some(monday))]);

    let state = given([task("Chore"), due_changed(None, Some(friday))])
        .when(change(Change::TaskDue(None)))
        .then(vec![due_changed(Some(friday), None)]);
    assert_eq!(state.visible_task().unwrap().due_at, None);
}

#[test]
fn due_change_to_the_same_date_changes_nothing() {
    given([task("Chore")])
        .when(change(Change::TaskDue(None)))
        .then_nothing();
}

#[test]
fn type_change_to_task_and_task_fields_in_one_command() {
    let state = given([note("Plan", "body")])
        .when(EntityCommand::Change(vec![
            Change::Type(EntityType::Task),
            Change::TaskPriority(2),
            Change::TaskStatus(TaskStatus::Done),
        ]))
        .then(vec![
            type_changed(EntityType::Note, EntityType::Task),
            priority_changed(0, 2),
            status_changed(TaskStatus::Todo, TaskStatus::Done),
        ]);
    let task = state.visible_task().unwrap();
    assert_eq!(
        (task.priority, task.status, task.completed_at),
        (2, TaskStatus::Done, Some(at(4)))
    );
}

// --- rejections -----------------------------------------------------------------

#[test]
fn priority_over_3_is_refused() {
    let message = given([task("Chore")])
        .when(change(Change::TaskPriority(4)))
        .then_invalid("priority");
    assert!(message.contains('4'), "{message}");
    given([task("Chore")])
        .when(change(Change::TaskPriority(u8::MAX)))
        .then_invalid("priority");
}

#[test]
fn task_changes_of_a_non_task_are_refused() {
    for command in [
        Change::TaskStatus(TaskStatus::Done),
        Change::TaskPriority(1),
        Change::TaskDue(Some(ts("2025-01-01T00:00:00Z"))),
        Change::TaskDue(None),
    ] {
        given([note("Plan", "body")])
            .when(change(command))
            .then_rejected(DomainError::NotATask(ID));
    }
}

#[test]
fn task_changes_after_the_type_moved_away_from_task_are_refused() {
    given([
        task("Chore"),
        type_changed(EntityType::Task, EntityType::Note),
    ])
    .when(change(Change::TaskStatus(TaskStatus::Done)))
    .then_rejected(DomainError::NotATask(ID));
    given([task("Chore")])
        .when(EntityCommand::Change(vec![
            Change::Type(EntityType::Note),
            Change::TaskPriority(1),
        ]))
        .then_rejected(DomainError::NotATask(ID));
}

#[test]
fn task_changes_of_a_deleted_task_are_refused() {
    given([task("Chore"), EntityEvent::Deleted])
        .when(change(Change::TaskStatus(TaskStatus::Done)))
        .then_rejected(DomainError::EntityDeleted(ID));
}

#[test]
fn task_changes_of_a_missing_entity_are_refused() {
    nothing()
        .when(change(Change::TaskPriority(1)))
        .then_rejected(DomainError::EntityNotFound(ID));
}
