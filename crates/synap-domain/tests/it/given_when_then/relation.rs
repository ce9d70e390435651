//! The relation aggregate: `relation::decide_create`, `decide_link`, `decide_delete`.

use crate::support::{USER, at};
use synap_domain::event::RelationCreated;
use synap_domain::limits::RELATION_KIND_CHARS_MAX;
use synap_domain::relation::{LinkContext, decide_create, decide_delete, decide_link};
use synap_domain::{DomainError, EntityId, RelationEvent, RelationId, RelationKind, RelationState};
use uuid::Uuid;

const SOURCE: EntityId = EntityId(Uuid::from_u128(0x0192_f0c1_0000_7000_8000_0000_0000_00a1));
const TARGET: EntityId = EntityId(Uuid::from_u128(0x0192_f0c1_0000_7000_8000_0000_0000_00b2));
const RELATION: RelationId = RelationId(Uuid::from_u128(0x0192_f0c1_0000_7000_8000_0000_0000_00c3));

fn both_exist() -> LinkContext {
    LinkContext {
        source_exists: true,
        target_exists: true,
        duplicate: false,
    }
}

fn kind(raw: &str) -> RelationKind {
    RelationKind::parse(raw).expect("a valid kind")
}

fn created(kind: &str) -> RelationEvent {
    RelationEvent::Created(RelationCreated {
        source_id: SOURCE,
        target_id: TARGET,
        kind: kind.to_string(),
    })
}

/// The state of a relation whose stream holds `events`.
fn given(events: &[RelationEvent]) -> Option<RelationState> {
    let mut state = None;
    for (index, event) in events.iter().enumerate() {
        let version = index as u64 + 1;
        state = RelationState::evolve(state, RELATION, USER, version, at(version), event);
    }
    state
}

fn invalid_field(result: Result<RelationEvent, DomainError>) -> &'static str {
    match result {
        Err(DomainError::Validation { field, .. }) => field,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn link_with_every_built_in_kind_but_mentions() {
    for name in RelationKind::BUILT_IN
        .into_iter()
        .filter(|k| *k != "mentions")
    {
        let event = decide_create(SOURCE, TARGET, &kind(name), &both_exist()).unwrap();
        assert_eq!(event, created(name));
    }
}

#[test]
fn link_with_a_user_defined_lowercase_kind() {
    let event = decide_create(SOURCE, TARGET, &kind("  inspired_by2 "), &both_exist()).unwrap();
    assert_eq!(event, created("inspired_by2"));
}

#[test]
fn a_created_relation_folds_into_its_state() {
    let state = given(&[created("blocks")]).unwrap();
    assert_eq!(
        state,
        RelationState {
            id: RELATION,
            user_id: USER,
            source_id: SOURCE,
            target_id: TARGET,
            kind: kind("blocks"),
            version: 1,
            created_at: at(1),
            deleted_at: None,
        }
    );
}

#[test]
fn wikilink_sync_may_link_with_mentions() {
    let event = decide_link(SOURCE, TARGET, &RelationKind::mentions(), &both_exist()).unwrap();
    assert_eq!(event, created("mentions"));
}

#[test]
fn unlink_records_deleted_and_the_fold_sets_deleted_at() {
    let state = given(&[created("relates_to")]).unwrap();
    assert_eq!(decide_delete(Some(&state)), Ok(RelationEvent::Deleted));
    let state = given(&[created("relates_to"), RelationEvent::Deleted]).unwrap();
    assert!(state.is_deleted());
    assert_eq!((state.version, state.deleted_at), (2, Some(at(2))));
}

// --- rejections -----------------------------------------------------------------

#[test]
fn link_with_mentions_is_refused_for_users() {
    let result = decide_create(SOURCE, TARGET, &RelationKind::mentions(), &both_exist());
    assert_eq!(invalid_field(result), "kind");
}

#[test]
fn link_to_itself_is_refused() {
    assert_eq!(
        invalid_field(decide_create(
            SOURCE,
            SOURCE,
            &kind("relates_to"),
            &both_exist()
        )),
        "target_id"
    );
    assert_eq!(
        invalid_field(decide_link(
            SOURCE,
            SOURCE,
            &RelationKind::mentions(),
            &both_exist()
        )),
        "target_id"
    );
}

#[test]
fn link_from_a_missing_source_is_refused() {
    let context = LinkContext {
        source_exists: false,
        ..both_exist()
    };
    assert_eq!(
        decide_create(SOURCE, TARGET, &kind("blocks"), &context),
        Err(DomainError::EntityNotFound(SOURCE))
    );
}

#[test]
fn link_to_a_missing_target_is_refused() {
    let context = LinkContext {
        target_exists: false,
        ..both_exist()
    };
    assert_eq!(
        decide_create(SOURCE, TARGET, &kind("blocks"), &context),
        Err(DomainError::EntityNotFound(TARGET))
    );
    assert_eq!(
        decide_link(SOURCE, TARGET, &RelationKind::mentions(), &context),
        Err(DomainError::EntityNotFound(TARGET))
    );
}

#[test]
fn link_that_already_exists_is_refused() {
    let context = LinkContext {
        duplicate: true,
        ..both_exist()
    };
    assert_eq!(
        decide_create(SOURCE, TARGET, &kind("blocks"), &context),
        Err(DomainError::DuplicateRelation {
            kind: "blocks".into()
        })
    );
}

#[test]
fn unlink_of_a_missing_relation_is_refused() {
    assert_eq!(decide_delete(None), Err(DomainError::RelationNotFound));
}

#[test]
fn unlink_of_a_deleted_relation_is_refused() {
    let state = given(&[created("relates_to"), RelationEvent::Deleted]).unwrap();
    assert_eq!(
        decide_delete(Some(&state)),
        Err(DomainError::RelationNotFound)
    );
}

#[test]
fn unlink_of_a_mentions_relation_is_refused() {
    let state = given(&[created("mentions")]).unwrap();
    assert_eq!(invalid_field(decide_delete(Some(&state))), "kind");
}

#[test]
fn kinds_that_are_not_lowercase_words_are_refused() {
    let too_long = "k".repeat(RELATION_KIND_CHARS_MAX + 1);
    for raw in [
        "",
        "  ",
        "Relates_To",
        "1st",
        "_private",
        "two words",
        "dash-ed",
        "émoi",
        too_long.as_str(),
    ] {
        match RelationKind::parse(raw) {
            Err(DomainError::Validation { field: "kind", .. }) => {}
            other => panic!("{raw:?} should be refused, got {other:?}"),
        }
    }
    assert_eq!(
        kind(&"k".repeat(RELATION_KIND_CHARS_MAX)).as_str().len(),
        RELATION_KIND_CHARS_MAX
    );
}
