//! `Change::AddTags` and `Change::RemoveTags`.

use crate::support::*;
use synap_domain::limits::{TAG_CHARS_MAX, TAGS_PER_ENTITY_MAX};
use synap_domain::{Change, DomainError, EntityCommand, EntityEvent, EntityType};

fn add(tags: &[&str]) -> EntityCommand {
    EntityCommand::Change(vec![Change::AddTags(strings(tags))])
}

fn remove(tags: &[&str]) -> EntityCommand {
    EntityCommand::Change(vec![Change::RemoveTags(strings(tags))])
}

fn tagged(tags: &[&str]) -> EntityEvent {
    created_with(created(EntityType::Note, "Tagged", None), |e| {
        e.tags = strings(tags)
    })
}

fn names(state: &synap_domain::EntityState) -> Vec<String> {
    state.tags.to_vec()
}

#[test]
fn add_tags_records_the_new_tags() {
    let state = given([tagged(&[])])
        .when(add(&["rust", "Ideas"]))
        .then(vec![tags_added(&["rust", "Ideas"])]);
    assert_eq!(
        names(&state),
        strings(&["Ideas", "rust"]),
        "tags are kept in key order"
    );
}

#[test]
fn add_tags_strips_a_leading_hash_and_whitespace() {
    given([tagged(&[])])
        .when(add(&["#rust", "  # web dev  ", "##double"]))
        .then(vec![tags_added(&["rust", "web dev", "#double"])]);
}

#[test]
fn add_tags_skips_tags_the_entity_has_in_any_case() {
    given([tagged(&["Rust"])])
        .when(add(&["rust", "RUST", "#Rust"]))
        .then_nothing();
    given([tagged(&["Rust"])])
        .when(add(&["rust", "go"]))
        .then(vec![tags_added(&["go"])]);
}

#[test]
fn add_tags_drops_case_duplicates_within_the_command_keeping_the_first() {
    given([tagged(&[])])
        .when(add(&["Go", "go", "GO"]))
        .then(vec![tags_added(&["Go"])]);
}

#[test]
fn add_tags_uses_the_users_canonical_spelling() {
    let state = given([tagged(&[])])
        .with_user_tag("PostgreSQL")
        .when(add(&["postgresql", "#POSTGRESQL"]))
        .then(vec![tags_added(&["PostgreSQL"])]);
    assert!(state.tags.contains("postgresql"));
    assert_eq!(names(&state), strings(&["PostgreSQL"]));
}

#[test]
fn a_tag_re_added_later_in_the_same_command_keeps_the_spelling_it_was_first_added_with() {
    let state = given([tagged(&[])])
        .when(EntityCommand::Change(vec![
            Change::AddTags(strings(&["Web Dev"])),
            Change::RemoveTags(strings(&[" web dev "])),
            Change::AddTags(strings(&[" web dev "])),
        ]))
        .then(vec![
            tags_added(&["Web Dev"]),
            tags_removed(&["Web Dev"]),
            tags_added(&["Web Dev"]),
        ]);
    assert_eq!(names(&state), strings(&["Web Dev"]));
}

#[test]
fn add_tags_accepts_64_chars_and_64_tags() {
    let long = "ü".repeat(TAG_CHARS_MAX);
    given([tagged(&[])])
        .when(add(&[&long]))
        .then(vec![tags_added(&[&long])]);

    let existing: Vec<String> = (1..TAGS_PER_ENTITY_MAX).map(|i| format!("t{i}")).collect();
    let existing: Vec<&str> = existing.iter().map(String::as_str).collect();
    let state = given([tagged(&existing)])
        .when(add(&["last"]))
        .then(vec![tags_added(&["last"])]);
    assert_eq!(state.tags.len(), TAGS_PER_ENTITY_MAX);
}

#[test]
fn add_tags_that_the_entity_has_do_not_count_against_the_limit() {
    let existing: Vec<String> = (0..TAGS_PER_ENTITY_MAX).map(|i| format!("t{i}")).collect();
    let existing: Vec<&str> = existing.iter().map(String::as_str).collect();
    given([tagged(&existing)])
        .when(add(&["T0", "t1"]))
        .then_nothing();
}

#[test]
fn remove_tags_records_the_stored_spelling_case_insensitively() {
    let state = given([tagged(&["Rust", "Ideas", "web"])])
        .when(remove(&["rust", "#IDEAS", "IDEAS", "absent"]))
        .then(vec![tags_removed(&["Rust", "Ideas"])]);
    assert_eq!(names(&state), strings(&["web"]));
}

#[test]
fn remove_tags_the_entity_lacks_changes_nothing() {
    given([tagged(&["Rust"])])
        .when(remove(&["go"]))
        .then_nothing();
}

// --- rejections -----------------------------------------------------------------

#[test]
fn add_an_empty_tag_is_refused() {
    for tag in ["", " ", "#", "#  "] {
        given([tagged(&[])])
            .when(add(&["fine", tag]))
            .then_invalid("tags");
    }
}

#[test]
fn add_a_tag_over_64_chars_is_refused() {
    let message = given([tagged(&[])])
        .when(add(&[&"a".repeat(TAG_CHARS_MAX + 1)]))
        .then_invalid("tags");
    assert!(message.contains("64"), "{message}");
}

#[test]
fn add_a_tag_with_a_comma_or_control_character_is_refused() {
    given([tagged(&[])])
        .when(add(&["one,two"]))
        .then_invalid("tags");
    given([tagged(&[])])
        .when(add(&["tab\tinside"]))
        .then_invalid("tags");
}

#[test]
fn add_a_65th_tag_is_refused() {
    let existing: Vec<String> = (0..TAGS_PER_ENTITY_MAX).map(|i| format!("t{i}")).collect();
    let existing: Vec<&str> = existing.iter().map(String::as_str).collect();
    let message = given([tagged(&existing)])
        .when(add(&["one more"]))
        .then_invalid("tags");
    assert!(message.contains("65"), "{message}");
}

#[test]
fn remove_an_invalid_tag_is_refused() {
    given([tagged(&["Rust"])])
        .when(remove(&[""]))
        .then_invalid("tags");
}

#[test]
fn tag_changes_of_a_deleted_entity_are_refused() {
    given([tagged(&["Rust"]), EntityEvent::Deleted])
        .when(add(&["go"]))
        .then_rejected(DomainError::EntityDeleted(ID));
    given([tagged(&["Rust"]), EntityEvent::Deleted])
        .when(remove(&["Rust"]))
        .then_rejected(DomainError::EntityDeleted(ID));
}

#[test]
fn tag_changes_of_a_missing_entity_are_refused() {
    nothing()
        .when(add(&["go"]))
        .then_rejected(DomainError::EntityNotFound(ID));
    nothing()
        .when(remove(&["go"]))
        .then_rejected(DomainError::EntityNotFound(ID));
}

#[test]
fn tag_keys_name_the_tags_a_command_adds_for_spelling_lookup() {
    let command = EntityCommand::Change(vec![
        Change::AddTags(strings(&["#Rust", "", "Web Dev"])),
        Change::RemoveTags(strings(&["Old"])),
    ]);
    assert_eq!(command.tag_keys(), strings(&["rust", "web dev"]));
    let create = EntityCommand::Create(synap_domain::CreateEntity {
        tags: strings(&["Ideas"]),
        ..synap_domain::CreateEntity::note("x")
    });
    assert_eq!(create.tag_keys(), strings(&["ideas"]));
    assert!(EntityCommand::Delete.tag_keys().is_empty());
}
