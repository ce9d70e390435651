//! `/v1/suggestions`: what scheduled workflows propose to the caller — today a
//! project for a tag put on 3 or more entities within a day that no project
//! carries (`synap_flows::insights`) — listed, accepted (the project is made and
//! linked to the entities) or dismissed (never proposed again).

use super::dto::{CanRead, CanWrite, CommonErrors, Problem, command_metadata};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use synap_flows::insights::accept_suggestion;
use synap_store::suggestions::{
    Decided, Decision, Suggestion as StoredSuggestion, SuggestionStatus,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_suggestions))
        .routes(routes!(accept))
        .routes(routes!(dismiss))
}

/// Where a suggestion stands.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SuggestionState {
    Pending,
    Accepted,
    Dismissed,
}

impl From<SuggestionStatus> for SuggestionState {
    fn from(status: SuggestionStatus) -> Self {
        match status {
            SuggestionStatus::Pending => SuggestionState::Pending,
            SuggestionStatus::Accepted => SuggestionState::Accepted,
            SuggestionStatus::Dismissed => SuggestionState::Dismissed,
        }
    }
}

impl From<SuggestionState> for SuggestionStatus {
    fn from(state: SuggestionState) -> Self {
        match state {
            SuggestionState::Pending => SuggestionStatus::Pending,
            SuggestionState::Accepted => SuggestionStatus::Accepted,
            SuggestionState::Dismissed => SuggestionStatus::Dismissed,
        }
    }
}

/// A proposal.
#[derive(Debug, Serialize, ToSchema)]
pub struct Suggestion {
    pub id: Uuid,
    /// `project_from_tag`: make a project for `tag`, holding `entity_ids`.
    pub kind: String,
    pub tag: String,
    pub entity_ids: Vec<Uuid>,
    pub status: SuggestionState,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub decided_at: Option<Timestamp>,
    /// The project made by accepting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<Uuid>,
}

impl From<StoredSuggestion> for Suggestion {
    fn from(s: StoredSuggestion) -> Self {
        Suggestion {
            id: s.id,
            kind: s.kind,
            tag: s.tag,
            entity_ids: s.entity_ids.into_iter().map(|e| e.0).collect(),
            status: s.status.into(),
            created_at: s.created_at,
            decided_at: s.decided_at,
            project_id: s.project_id.map(|p| p.0),
        }
    }
}

/// The caller's suggestions, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuggestionList {
    pub items: Vec<Suggestion>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only suggestions in this state (e.g. `pending`).
    #[serde(default)]
    status: Option<SuggestionState>,
}

/// List the caller's suggestions.
#[utoipa::path(
    get,
    path = "/v1/suggestions",
    tag = "suggestions",
    params(ListQuery),
    responses(
        (status = 200, description = "The suggestions, newest first.", body = SuggestionList),
        (status = 400, description = "A malformed or unknown query parameter (`invalid_query`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn list_suggestions(
    CanRead(caller): CanRead,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<SuggestionList>> {
    let all = state
        .store
        .suggestions(&caller.scope(), query.status.map(Into::into))
        .await?;
    Ok(Json(SuggestionList {
        items: all.into_iter().map(Into::into).collect(),
    }))
}

fn no_such_suggestion() -> ApiError {
    ApiError::not_found("there is no such suggestion")
}

fn not_pending(status: SuggestionStatus) -> ApiError {
    ApiError::conflict(
        "suggestion_decided",
        format!(
            "the suggestion was already {}; only a pending one can be accepted or dismissed",
            status.as_str()
        ),
    )
    .with("current_status", status.as_str())
}

/// Accept a suggestion: the project is made (titled and tagged with the tag) and
/// linked to each entity (`contains`).
#[utoipa::path(
    post,
    path = "/v1/suggestions/{id}/accept",
    tag = "suggestions",
    params(("id" = Uuid, Path, description = "The suggestion's id.")),
    responses(
        (status = 200, description = "Accepted; `project_id` names the new project.", body = Suggestion),
        (status = 400, description = "A malformed id (`invalid_id`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such suggestion (or it belongs to someone else) (`not_found`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already accepted or dismissed (`suggestion_decided`, with `current_status`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn accept(
    CanWrite(caller): CanWrite,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Suggestion>> {
    let metadata = command_metadata(&caller, &headers);
    decided(accept_suggestion(state.store.as_ref(), &caller.scope(), id, metadata).await?)
}

/// The answer to a decision: the suggestion, 409 when it was decided before, 404.
fn decided(decided: Decided) -> ApiResult<Json<Suggestion>> {
    match decided {
        Decided::Done(suggestion) => Ok(Json(suggestion.into())),
        Decided::NotPending(status) => Err(not_pending(status)),
        Decided::NotFound => Err(no_such_suggestion()),
    }
}

/// Dismiss a suggestion; it is not proposed again.
#[utoipa::path(
    post,
    path = "/v1/suggestions/{id}/dismiss",
    tag = "suggestions",
    params(("id" = Uuid, Path, description = "The suggestion's id.")),
    responses(
        (status = 200, description = "Dismissed.", body = Suggestion),
        (status = 400, description = "A malformed id (`invalid_id`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such suggestion (`not_found`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already accepted or dismissed (`suggestion_decided`, with `current_status`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn dismiss(
    CanWrite(caller): CanWrite,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Suggestion>> {
    decided(
        state
            .store
            .decide_suggestion(&caller.scope(), id, Decision::Dismissed)
            .await?,
    )
}
