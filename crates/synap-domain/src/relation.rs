//! The relation aggregate: a typed, directed link between two entities of one user.
//! `mentions` relations are owned by `[[wikilinks]]` in content and are created and
//! removed only by content changes.

use crate::error::DomainError;
use crate::event::{RelationCreated, RelationEvent};
use crate::ids::{EntityId, RelationId, UserId};
use crate::limits::RELATION_KIND_CHARS_MAX;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The kind of a relation: one of the built-in kinds or a user-defined lowercase word.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RelationKind(String);

impl RelationKind {
    pub const BUILT_IN: [&'static str; 6] = [
        "contains",
        "relates_to",
        "blocks",
        "duplicates",
        "mentions",
        "derived_from",
    ];
    pub const MENTIONS: &'static str = "mentions";
    pub const DEFAULT: &'static str = "relates_to";

    /// Checks a kind: a built-in kind or a lowercase word of `a-z`, `0-9` and `_`,
    /// starting with a letter, at most 32 characters.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let kind = raw.trim();
        let valid = !kind.is_empty()
            && kind.len() <= RELATION_KIND_CHARS_MAX
            && kind.starts_with(|c: char| c.is_ascii_lowercase())
            && kind
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(DomainError::invalid(
                "kind",
                format!(
                    "{kind:?} is not a relation kind: use one of {} or a lowercase word (a-z, 0-9, _) of at most {RELATION_KIND_CHARS_MAX} characters",
                    Self::BUILT_IN.join(", ")
                ),
            ));
        }
        Ok(Self(kind.to_string()))
    }
    pub fn mentions() -> Self {
        Self(Self::MENTIONS.to_string())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn is_mentions(&self) -> bool {
        self.0 == Self::MENTIONS
    }
}

/// The current state of a relation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelationState {
    pub id: RelationId,
    pub user_id: UserId,
    pub source_id: EntityId,
    pub target_id: EntityId,
    pub kind: RelationKind,
    pub version: u64,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<Timestamp>,
}

impl RelationState {
    /// Folds one event into the state (see `EntityState::evolve`).
    pub fn evolve(
        state: Option<RelationState>,
        id: RelationId,
        user_id: UserId,
        version: u64,
        recorded_at: Timestamp,
        event: &RelationEvent,
    ) -> Option<RelationState> {
        match event {
            RelationEvent::Created(created) => Some(RelationState {
                id,
                user_id,
                source_id: created.source_id,
                target_id: created.target_id,
                kind: RelationKind(created.kind.clone()),
                version,
                created_at: recorded_at,
                deleted_at: None,
            }),
            RelationEvent::Deleted => state.map(|mut state| {
                state.deleted_at = Some(recorded_at);
                state.version = version;
                state
            }),
        }
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }
}

/// What the store knows about the two ends and existing links when a relation is
/// created; the domain decides from it.
#[derive(Debug, Clone)]
pub struct LinkContext {
    /// Whether each end exists for this user and is not deleted.
    pub source_exists: bool,
    pub target_exists: bool,
    /// Whether a live relation with the same source, target and kind exists.
    pub duplicate: bool,
}

/// Decides `relation.created` for a link asked for by a user.
pub fn decide_create(
    source_id: EntityId,
    target_id: EntityId,
    kind: &RelationKind,
    context: &LinkContext,
) -> Result<RelationEvent, DomainError> {
    if kind.is_mentions() {
        return Err(DomainError::invalid(
            "kind",
            "mentions relations come from [[wikilinks]] in content; link with another kind such as relates_to",
        ));
    }
    decide_link(source_id, target_id, kind, context)
}

/// Decides `relation.created` for any kind, `mentions` included (wikilink sync).
pub fn decide_link(
    source_id: EntityId,
    target_id: EntityId,
    kind: &RelationKind,
    context: &LinkContext,
) -> Result<RelationEvent, DomainError> {
    if source_id == target_id {
        return Err(DomainError::invalid(
            "target_id",
            "an entity cannot be linked to itself",
        ));
    }
    if !context.source_exists {
        return Err(DomainError::EntityNotFound(source_id));
    }
    if !context.target_exists {
        return Err(DomainError::EntityNotFound(target_id));
    }
    if context.duplicate {
        return Err(DomainError::DuplicateRelation {
            kind: kind.as_str().to_string(),
        });
    }
    Ok(RelationEvent::Created(RelationCreated {
        source_id,
        target_id,
        kind: kind.as_str().to_string(),
    }))
}

/// Decides `relation.deleted` for a user's unlink. `mentions` relations follow the
/// content, so they are removed by removing the `[[link]]` instead.
pub fn decide_delete(state: Option<&RelationState>) -> Result<RelationEvent, DomainError> {
    match state {
        None => Err(DomainError::RelationNotFound),
        Some(state) if state.is_deleted() => Err(DomainError::RelationNotFound),
        Some(state) if state.kind.is_mentions() => Err(DomainError::invalid(
            "kind",
            "this mentions relation comes from a [[wikilink]]; remove the link from the content instead",
        )),
        Some(_) => Ok(RelationEvent::Deleted),
    }
}
