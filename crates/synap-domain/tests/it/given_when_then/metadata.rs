//! `Change::SetMetadata` and `Change::UnsetMetadata`.

use crate::support::*;
use serde_json::{Value, json};
use synap_domain::limits::{METADATA_BYTES_MAX, METADATA_KEY_CHARS_MAX};
use synap_domain::{Change, DomainError, EntityCommand, EntityEvent, EntityType};

fn set(value: Value) -> EntityCommand {
    EntityCommand::Change(vec![Change::SetMetadata(object(value))])
}

fn unset(keys: &[&str]) -> EntityCommand {
    EntityCommand::Change(vec![Change::UnsetMetadata(strings(keys))])
}

fn with_metadata(value: Value) -> EntityEvent {
    created_with(created(EntityType::Note, "Meta", None), |e| {
        e.metadata = object(value)
    })
}

#[test]
fn set_metadata_records_only_the_changed_keys() {
    let state = given([with_metadata(json!({"lang": "en", "stars": 3}))])
        .when(set(
            json!({"lang": "en", "stars": 4, "url": "https://example.com"}),
        ))
        .then(vec![metadata_set(
            json!({"stars": 4, "url": "https://example.com"}),
        )]);
    assert_eq!(
        state.metadata,
        object(json!({"lang": "en", "stars": 4, "url": "https://example.com"}))
    );
}

#[test]
fn set_metadata_to_the_same_values_changes_nothing() {
    given([with_metadata(
        json!({"lang": "en", "nested": {"a": [1, 2]}}),
    )])
    .when(set(json!({"nested": {"a": [1, 2]}, "lang": "en"})))
    .then_nothing();
}

#[test]
fn set_metadata_may_store_null_as_a_value() {
    let state = given([with_metadata(json!({"lang": "en"}))])
        .when(set(json!({"lang": null})))
        .then(vec![metadata_set(json!({"lang": null}))]);
    assert_eq!(state.metadata.get("lang"), Some(&Value::Null));
}

#[test]
fn set_metadata_up_to_exactly_16_kib_is_accepted() {
    // Existing {"a":1} plus "b":"…" must come to exactly the limit: {"a":1,"b":"<v>"}.
    let value = "v".repeat(METADATA_BYTES_MAX - r#"{"a":1,"b":""}"#.len());
    let state = given([with_metadata(json!({"a": 1}))])
        .when(set(json!({ "b": value.clone() })))
        .then(vec![metadata_set(json!({ "b": value }))]);
    assert_eq!(
        serde_json::to_vec(&state.metadata).unwrap().len(),
        METADATA_BYTES_MAX
    );
}

#[test]
fn set_metadata_accepts_a_128_char_key() {
    let key = "ключ".repeat(METADATA_KEY_CHARS_MAX / 4);
    given([with_metadata(json!({}))])
        .when(set(json!({ key.clone(): true })))
        .then(vec![metadata_set(json!({ key: true }))]);
}

#[test]
fn unset_metadata_records_the_keys_present_once_each() {
    let state = given([with_metadata(json!({"a": 1, "b": 2, "c": 3}))])
        .when(unset(&["b", "missing", "a", "b"]))
        .then(vec![metadata_unset(&["b", "a"])]);
    assert_eq!(state.metadata, object(json!({"c": 3})));
}

#[test]
fn unset_metadata_of_absent_keys_changes_nothing() {
    given([with_metadata(json!({"a": 1}))])
        .when(unset(&["z", ""]))
        .then_nothing();
}

#[test]
fn set_then_unset_in_one_command_gives_two_events() {
    given([with_metadata(json!({"a": 1}))])
        .when(EntityCommand::Change(vec![
            Change::SetMetadata(object(json!({"b": 2}))),
            Change::UnsetMetadata(strings(&["a", "b"])),
        ]))
        .then(vec![
            metadata_set(json!({"b": 2})),
            metadata_unset(&["a", "b"]),
        ]);
}

// --- rejections -----------------------------------------------------------------

#[test]
fn set_metadata_over_16_kib_in_total_is_refused() {
    let half = "v".repeat(METADATA_BYTES_MAX / 2);
    let message = given([with_metadata(json!({ "a": half.clone() }))])
        .when(set(json!({ "b": half })))
        .then_invalid("metadata");
    assert!(message.contains("16 KiB"), "{message}");
}

#[test]
fn set_metadata_with_an_empty_key_is_refused() {
    given([with_metadata(json!({}))])
        .when(set(json!({"": 1})))
        .then_invalid("metadata");
}

#[test]
fn set_metadata_with_a_key_over_128_chars_is_refused() {
    let key = "k".repeat(METADATA_KEY_CHARS_MAX + 1);
    given([with_metadata(json!({}))])
        .when(set(json!({ key: 1 })))
        .then_invalid("metadata");
}

#[test]
fn set_metadata_with_a_control_character_in_a_key_is_refused() {
    given([with_metadata(json!({}))])
        .when(set(json!({"line\nbreak": 1})))
        .then_invalid("metadata");
}

#[test]
fn metadata_changes_of_a_deleted_entity_are_refused() {
    given([with_metadata(json!({"a": 1})), EntityEvent::Deleted])
        .when(set(json!({"a": 2})))
        .then_rejected(DomainError::EntityDeleted(ID));
    given([with_metadata(json!({"a": 1})), EntityEvent::Deleted])
        .when(unset(&["a"]))
        .then_rejected(DomainError::EntityDeleted(ID));
}

#[test]
fn metadata_changes_of_a_missing_entity_are_refused() {
    nothing()
        .when(set(json!({"a": 2})))
        .then_rejected(DomainError::EntityNotFound(ID));
    nothing()
        .when(unset(&["a"]))
        .then_rejected(DomainError::EntityNotFound(ID));
}
