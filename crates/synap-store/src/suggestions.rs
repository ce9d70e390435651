//! Suggestions: what scheduled workflows propose to a user, who accepts or
//! dismisses each. One kind so far, [`PROJECT_FROM_TAG`]: a tag used on 3 or more
//! entities within a day that no project carries yet (the original Synap's
//! insight job; the workflow is `synap_flows::insights`).
//!
//! A suggestion is made once per user, kind and tag: one that was dismissed is
//! not proposed again. Suggestions are configuration-like records, not events;
//! accepting one writes ordinary events (the project and its links).

use crate::api::{Scope, StoreError, StoreResult};
use async_trait::async_trait;
use jiff::Timestamp;
use serde::Serialize;
use synap_domain::ids::{EntityId, UserId};
use uuid::Uuid;

/// The kind: make a project for a tag that groups recent entities.
pub const PROJECT_FROM_TAG: &str = "project_from_tag";
/// Most entities one suggestion names.
pub const SUGGESTION_ENTITIES_MAX: usize = 500;

/// Where a suggestion stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SuggestionStatus {
    Pending,
    Accepted,
    Dismissed,
}

impl SuggestionStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            SuggestionStatus::Pending => "pending",
            SuggestionStatus::Accepted => "accepted",
            SuggestionStatus::Dismissed => "dismissed",
        }
    }

    pub fn parse(text: &str) -> StoreResult<Self> {
        match text {
            "pending" => Ok(SuggestionStatus::Pending),
            "accepted" => Ok(SuggestionStatus::Accepted),
            "dismissed" => Ok(SuggestionStatus::Dismissed),
            other => Err(StoreError::Corrupt(format!(
                "unknown suggestion status {other:?}"
            ))),
        }
    }
}

/// A suggestion to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSuggestion {
    pub id: Uuid,
    pub kind: String,
    /// The tag as the user spells it, and its key (case-folded).
    pub tag: String,
    pub tag_key: String,
    pub entity_ids: Vec<EntityId>,
}

/// A stored suggestion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suggestion {
    pub id: Uuid,
    pub user_id: UserId,
    pub kind: String,
    pub tag: String,
    pub tag_key: String,
    pub entity_ids: Vec<EntityId>,
    pub status: SuggestionStatus,
    pub created_at: Timestamp,
    pub decided_at: Option<Timestamp>,
    /// The project made when the suggestion was accepted.
    pub project_id: Option<EntityId>,
}

/// What the user decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Accepted { project_id: EntityId },
    Dismissed,
}

/// How a decision went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    Done(Suggestion),
    /// The suggestion was decided before (its current status).
    NotPending(SuggestionStatus),
    NotFound,
}

impl NewSuggestion {
    pub fn check(&self) -> StoreResult<()> {
        if self.kind != PROJECT_FROM_TAG {
            return Err(StoreError::InvalidInput(format!(
                "unknown suggestion kind {:?}",
                self.kind
            )));
        }
        if self.entity_ids.is_empty() || self.entity_ids.len() > SUGGESTION_ENTITIES_MAX {
            return Err(StoreError::InvalidInput(format!(
                "a suggestion names 1 to {SUGGESTION_ENTITIES_MAX} entities"
            )));
        }
        Ok(())
    }
}

/// What a backend stores for suggestions. Contract: scoped to the caller like
/// every user-owned record; `put_suggestion` stores nothing (and answers `None`)
/// when the user already has a suggestion of that kind and tag key, whatever its
/// status; `decide` changes only a pending suggestion.
#[async_trait]
pub trait SuggestionStore: Send + Sync {
    async fn put_suggestion(
        &self,
        scope: &Scope,
        suggestion: NewSuggestion,
    ) -> StoreResult<Option<Suggestion>>;
    /// The user's suggestions, newest first, optionally of one status.
    async fn suggestions(
        &self,
        scope: &Scope,
        status: Option<SuggestionStatus>,
    ) -> StoreResult<Vec<Suggestion>>;
    async fn suggestion(&self, scope: &Scope, id: Uuid) -> StoreResult<Option<Suggestion>>;
    async fn decide_suggestion(
        &self,
        scope: &Scope,
        id: Uuid,
        decision: Decision,
    ) -> StoreResult<Decided>;
}

/// The status and project a decision leaves.
pub fn decided(decision: Decision) -> (SuggestionStatus, Option<EntityId>) {
    match decision {
        Decision::Accepted { project_id } => (SuggestionStatus::Accepted, Some(project_id)),
        Decision::Dismissed => (SuggestionStatus::Dismissed, None),
    }
}
