//! `Change::Content`, and the rule that no payload ever carries a body.

use crate::support::*;
use synap_domain::event::ContentChanged;
use synap_domain::limits::CONTENT_BYTES_MAX;
use synap_domain::{
    Change, ContentRef, CreateEntity, DomainError, EntityCommand, EntityEvent, EntityType,
    EventPayload, NewContent,
};

fn set_content(body: &str) -> EntityCommand {
    EntityCommand::Change(vec![Change::Content(Some(NewContent::markdown(body)))])
}

fn set_content_typed(body: &str, media_type: &str) -> EntityCommand {
    EntityCommand::Change(vec![Change::Content(Some(NewContent {
        body: body.into(),
        media_type: Some(media_type.into()),
    }))])
}

const OLD: &str = "# Trip to Lisbon\nBook flights";
const NEW: &str = "# Trip to Porto\nBook trains";

#[test]
fn content_change_records_old_and_new_hash_and_size() {
    let state = given([note("Holiday", OLD)])
        .with_body(OLD)
        .when(set_content(NEW))
        .then(vec![EntityEvent::ContentChanged(ContentChanged {
            old_hash: Some(hash(OLD)),
            new_hash: Some(hash(NEW)),
            size: NEW.len() as u64,
            media_type: None,
        })]);
    assert_eq!(
        state.content,
        Some(ContentRef {
            hash: hash(NEW),
            size: NEW.len() as u64,
            media_type: "text/markdown".into()
        })
    );
}

#[test]
fn content_change_moves_a_derived_title() {
    let state = given([note("Trip to Lisbon", OLD)])
        .with_body(OLD)
        .when(set_content(NEW))
        .then(vec![
            content_changed(Some(OLD), Some(NEW)),
            title_changed("Trip to Lisbon", "Trip to Porto"),
        ]);
    assert_eq!(state.title, "Trip to Porto");
    assert_eq!(state.version, 3);
}

#[test]
fn content_change_keeps_an_explicit_title() {
    given([note("Holiday", OLD)])
        .with_body(OLD)
        .when(set_content(NEW))
        .then(vec![content_changed(Some(OLD), Some(NEW))]);
}

#[test]
fn content_change_with_the_same_first_line_keeps_the_derived_title() {
    let new = "# Trip to Lisbon\nBook flights and a hotel";
    given([note("Trip to Lisbon", OLD)])
        .with_body(OLD)
        .when(set_content(new))
        .then(vec![content_changed(Some(OLD), Some(new))]);
}

#[test]
fn content_added_to_an_untitled_entity_gives_it_a_title() {
    given([created(EntityType::Note, "Untitled", None)])
        .when(set_content(NEW))
        .then(vec![
            content_changed(None, Some(NEW)),
            title_changed("Untitled", "Trip to Porto"),
        ]);
}

#[test]
fn content_removed_with_none_clears_the_reference_and_a_derived_title() {
    let state = given([note("Trip to Lisbon", OLD)])
        .with_body(OLD)
        .when(EntityCommand::Change(vec![Change::Content(None)]))
        .then(vec![
            content_changed(Some(OLD), None),
            title_changed("Trip to Lisbon", "Untitled"),
        ]);
    assert_eq!(state.content, None);
}

#[test]
fn content_removed_with_an_empty_body_is_the_same_as_none() {
    given([note("Holiday", OLD)])
        .with_body(OLD)
        .when(set_content(""))
        .then(vec![content_changed(Some(OLD), None)]);
}

#[test]
fn content_removal_without_content_changes_nothing() {
    given([created(EntityType::Note, "Empty", None)])
        .when(EntityCommand::Change(vec![Change::Content(None)]))
        .then_nothing();
}

#[test]
fn content_change_to_the_same_body_changes_nothing() {
    given([note("Holiday", OLD)])
        .with_body(OLD)
        .when(set_content(OLD))
        .then_nothing();
}

#[test]
fn content_change_back_to_an_earlier_body_refers_to_the_same_hash() {
    let events = given([note("Holiday", OLD), content_changed(Some(OLD), Some(NEW))])
        .with_body(NEW)
        .when(set_content(OLD))
        .events();
    assert_eq!(events, vec![content_changed(Some(NEW), Some(OLD))]);
}

#[test]
fn content_change_of_media_type_records_it_and_the_fold_keeps_it() {
    let state = given([note("Holiday", OLD)])
        .with_body(OLD)
        .when(set_content_typed(OLD, "text/plain"))
        .then(vec![EntityEvent::ContentChanged(ContentChanged {
            old_hash: Some(hash(OLD)),
            new_hash: Some(hash(OLD)),
            size: OLD.len() as u64,
            media_type: Some("text/plain".into()),
        })]);
    assert_eq!(state.content.as_ref().unwrap().media_type, "text/plain");

    // A later edit with the same media type does not repeat it, and the fold keeps it.
    let history = [
        note("Holiday", OLD),
        EntityEvent::ContentChanged(ContentChanged {
            old_hash: Some(hash(OLD)),
            new_hash: Some(hash(OLD)),
            size: OLD.len() as u64,
            media_type: Some("text/plain".into()),
        }),
    ];
    let state = given(history)
        .with_body(OLD)
        .when(set_content_typed(NEW, "text/plain"))
        .then(vec![content_changed(Some(OLD), Some(NEW))]);
    assert_eq!(state.content.unwrap().media_type, "text/plain");
}

#[test]
fn content_change_back_to_markdown_records_the_default_media_type() {
    let history = [created_with(note("Holiday", OLD), |e| {
        e.content.as_mut().unwrap().media_type = "text/plain".into()
    })];
    let state = given(history)
        .with_body(OLD)
        .when(set_content(NEW))
        .then(vec![EntityEvent::ContentChanged(ContentChanged {
            old_hash: Some(hash(OLD)),
            new_hash: Some(hash(NEW)),
            size: NEW.len() as u64,
            media_type: Some("text/markdown".into()),
        })]);
    assert_eq!(state.content.unwrap().media_type, "text/markdown");
}

#[test]
fn content_of_exactly_10_mib_is_accepted() {
    let body = "x".repeat(CONTENT_BYTES_MAX);
    let events = given([note("Big", "small")])
        .with_body("small")
        .when(set_content(&body))
        .events();
    assert_eq!(events, vec![content_changed(Some("small"), Some(&body))]);
}

// --- rejections -----------------------------------------------------------------

#[test]
fn content_over_10_mib_is_refused() {
    let message = given([note("Big", "small")])
        .with_body("small")
        .when(set_content(&"x".repeat(CONTENT_BYTES_MAX + 1)))
        .then_invalid("content");
    assert!(message.contains("10 MiB"), "{message}");
}

#[test]
fn content_with_an_invalid_media_type_is_refused() {
    given([note("Holiday", OLD)])
        .with_body(OLD)
        .when(set_content_typed(NEW, "not a type"))
        .then_invalid("media_type");
    let long = format!("text/{}", "x".repeat(123));
    given([note("Holiday", OLD)])
        .with_body(OLD)
        .when(set_content_typed(NEW, &long))
        .then_invalid("media_type");
}

#[test]
fn content_change_of_a_missing_entity_is_refused() {
    nothing()
        .when(set_content(NEW))
        .then_rejected(DomainError::EntityNotFound(ID));
}

#[test]
fn content_change_of_a_deleted_entity_is_refused() {
    given([note("Holiday", OLD), EntityEvent::Deleted])
        .with_body(OLD)
        .when(set_content(NEW))
        .then_rejected(DomainError::EntityDeleted(ID));
}

// --- no body in any payload -------------------------------------------------------

const SECRET_BODY: &str = "# Diary\nThe vault code is 4711-SECRET-9932.\nDo not share.";
const SECRET: &str = "4711-SECRET-9932";

fn assert_no_body_in(events: &[EntityEvent], body: &str) {
    assert!(!events.is_empty());
    for event in events {
        let data = EventPayload::Entity(event.clone()).data().to_string();
        assert!(!data.contains(body), "{data} holds the body");
        assert!(!data.contains(SECRET), "{data} holds part of the body");
        assert!(
            !data.contains("Do not share"),
            "{data} holds part of the body"
        );
    }
}

#[test]
fn no_payload_of_a_content_command_contains_the_body() {
    let on_create = nothing()
        .when(EntityCommand::Create(CreateEntity::note(SECRET_BODY)))
        .events();
    assert_no_body_in(&on_create, SECRET_BODY);

    let changed = given([created(EntityType::Note, "Untitled", None)])
        .when(set_content(SECRET_BODY))
        .events();
    assert_no_body_in(&changed, SECRET_BODY);

    let typed = given([note("Diary", SECRET_BODY)])
        .with_body(SECRET_BODY)
        .when(set_content_typed(SECRET_BODY, "text/plain"))
        .events();
    assert_no_body_in(&typed, SECRET_BODY);

    let removed = given([note("Diary", SECRET_BODY)])
        .with_body(SECRET_BODY)
        .when(EntityCommand::Change(vec![Change::Content(None)]))
        .events();
    assert_no_body_in(&removed, SECRET_BODY);
}
