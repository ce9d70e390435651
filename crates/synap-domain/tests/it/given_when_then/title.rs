//! `Change::Title`.

use crate::support::*;
use synap_domain::limits::TITLE_CHARS_MAX;
use synap_domain::{Change, DomainError, EntityCommand, EntityEvent, EntityType};

fn set_title(title: &str) -> EntityCommand {
    EntityCommand::Change(vec![Change::Title(title.to_string())])
}

#[test]
fn title_change_records_old_and_new() {
    let state = given([note("Draft", "# Draft\nbody")])
        .when(set_title("Final"))
        .then(vec![title_changed("Draft", "Final")]);
    assert_eq!(state.title, "Final");
    assert_eq!(state.version, 2);
    assert_eq!(state.updated_at, at(2));
    assert_eq!(state.created_at, at(1));
}

#[test]
fn title_change_trims_the_title() {
    given([note("Draft", "body")])
        .when(set_title("  Final \t"))
        .then(vec![title_changed("Draft", "Final")]);
}

#[test]
fn title_change_to_the_same_title_changes_nothing() {
    given([note("Draft", "body")])
        .when(set_title("Draft"))
        .then_nothing();
    given([note("Draft", "body")])
        .when(set_title(" Draft "))
        .then_nothing();
}

#[test]
fn title_change_accepts_exactly_300_chars() {
    let long = "é".repeat(TITLE_CHARS_MAX);
    given([note("Draft", "body")])
        .when(set_title(&long))
        .then(vec![title_changed("Draft", &long)]);
}

#[test]
fn blank_title_re_derives_the_title_from_the_content() {
    let body = "# Release checklist\n- tag\n- publish";
    given([note("My own title", body)])
        .with_body(body)
        .when(set_title("   "))
        .then(vec![title_changed("My own title", "Release checklist")]);
}

#[test]
fn blank_title_without_content_becomes_untitled() {
    given([created(EntityType::Idea, "Named", None)])
        .when(set_title(""))
        .then(vec![title_changed("Named", "Untitled")]);
}

#[test]
fn blank_title_when_the_title_is_already_derived_changes_nothing() {
    let body = "Groceries\n- milk";
    given([note("Groceries", body)])
        .with_body(body)
        .when(set_title(""))
        .then_nothing();
}

#[test]
fn blank_title_then_content_follows_again() {
    // An explicit title is dropped for the derived one; the next content edit moves it.
    let body = "First line\nrest";
    let state = given([note("Explicit", body)])
        .with_body(body)
        .when(set_title(""))
        .then(vec![title_changed("Explicit", "First line")]);
    let next = "Second line\nrest";
    given([
        note("Explicit", body),
        title_changed("Explicit", "First line"),
    ])
    .with_body(body)
    .when(EntityCommand::Change(vec![Change::Content(Some(
        synap_domain::NewContent::markdown(next),
    ))]))
    .then(vec![
        content_changed(Some(body), Some(next)),
        title_changed("First line", "Second line"),
    ]);
    assert_eq!(state.title, "First line");
}

// --- rejections -----------------------------------------------------------------

#[test]
fn title_over_300_chars_is_refused() {
    let message = given([note("Draft", "body")])
        .when(set_title(&"x".repeat(TITLE_CHARS_MAX + 1)))
        .then_invalid("title");
    assert!(message.contains("300"), "{message}");
}

#[test]
fn title_with_a_line_break_or_control_character_is_refused() {
    given([note("Draft", "body")])
        .when(set_title("one\ntwo"))
        .then_invalid("title");
    given([note("Draft", "body")])
        .when(set_title("bell\u{7}"))
        .then_invalid("title");
}

#[test]
fn title_change_of_a_missing_entity_is_refused() {
    nothing()
        .when(set_title("Anything"))
        .then_rejected(DomainError::EntityNotFound(ID));
}

#[test]
fn title_change_of_a_deleted_entity_is_refused() {
    given([note("Draft", "body"), EntityEvent::Deleted])
        .when(set_title("Anything"))
        .then_rejected(DomainError::EntityDeleted(ID));
}

/// An explicit title must be one line without control characters, but a derived title
/// is the first line of the content as it is, so it can hold a tab, a lone carriage
/// return or other control characters. A client that sends such a title back
/// unchanged is refused. See the report: `text::derive_title` keeps them.
#[test]
fn a_derived_title_is_always_a_valid_explicit_title() {
    for body in [
        "Name\tValue",
        "carriage\rreturn",
        "bell\u{7}here",
        "next\u{85}line",
    ] {
        let events = nothing()
            .when(EntityCommand::Create(synap_domain::CreateEntity::note(
                body,
            )))
            .events();
        let EntityEvent::Created(created) = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(
            synap_domain::command::validate_title(&created.title),
            Ok(created.title.clone()),
            "derived from {body:?}"
        );
    }
}
