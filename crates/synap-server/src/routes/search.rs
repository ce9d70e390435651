//! `GET /v1/search`: search over titles and content of the caller's live
//! entities, best first, with snippets — by words (`fulltext`, with highlighted
//! matches), by meaning (`semantic`) or both merged (`hybrid`); the modes are
//! `synap_flows::search`. Semantic and hybrid need an embedding model; without one
//! they answer a clear 422 (`semantic_unavailable`) and full-text keeps working.

use super::dto::{CanRead, CommonErrors, EntityType, Problem, SearchHit, SearchResults};
use super::entities::page_limit;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use synap_domain::limits::SEARCH_QUERY_CHARS_MAX;
use synap_flows::{SearchError, SearchMode as FlowsMode};
use synap_store::SearchRequest;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search))
}

/// How to match.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    /// Words and phrases (the default).
    #[default]
    Fulltext,
    /// By meaning; needs an embedding model.
    Semantic,
    /// Both, merged; needs an embedding model.
    Hybrid,
}

/// `GET /v1/search` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SearchQuery {
    /// Words to find (case and accents do not matter; every word matches as a
    /// prefix; `"quoted phrases"` match exactly). At most 1,000 characters.
    q: String,
    /// `fulltext` (default), `semantic` or `hybrid`.
    #[serde(default)]
    #[param(inline)]
    mode: Option<SearchMode>,
    /// Only entities of this type.
    #[serde(default, rename = "type")]
    entity_type: Option<EntityType>,
    /// Only entities with this tag.
    #[serde(default)]
    tag: Option<String>,
    /// At most this many hits, 1 to 500 (default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// Search the caller's live entities.
#[utoipa::path(
    get,
    path = "/v1/search",
    tag = "search",
    params(SearchQuery),
    responses(
        (status = 200, description = "Hits, best first, with score and highlighted snippet.", body = SearchResults),
        (status = 400, description = "A missing or malformed parameter (`invalid_query`), or a query with nothing to search for (`invalid_input`).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`q` is blank or over 1,000 characters (`validation_failed`, field `q`), or `mode` is `semantic`/`hybrid` while no embedding model is configured (`semantic_unavailable`).", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The embedding model could not embed the query (`embedding_failed`); full-text search still works.", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn search(
    CanRead(caller): CanRead,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> ApiResult<Json<SearchResults>> {
    let mode = match query.mode.unwrap_or_default() {
        SearchMode::Fulltext => FlowsMode::Fulltext,
        SearchMode::Semantic => FlowsMode::Semantic,
        SearchMode::Hybrid => FlowsMode::Hybrid,
    };
    if query.q.trim().is_empty() {
        return Err(ApiError::validation("q", "give q: the words to search for"));
    }
    let chars = query.q.chars().count();
    if chars > SEARCH_QUERY_CHARS_MAX {
        return Err(ApiError::validation(
            "q",
            format!("the query has {chars} characters; the limit is {SEARCH_QUERY_CHARS_MAX}"),
        ));
    }
    let request = SearchRequest {
        query: query.q,
        entity_type: query.entity_type.map(Into::into),
        tag: query.tag,
        limit: page_limit(query.limit)?,
    };
    let hits = synap_flows::search(
        state.store.as_ref(),
        state.embedder.as_deref(),
        &caller.scope(),
        &request,
        mode,
    )
    .await
    .map_err(|error| match error {
        SearchError::Store(error) => ApiError::from(error),
        SearchError::Unavailable => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "semantic_unavailable",
            "semantic and hybrid search need an embedding model, and none is configured on this server; use mode=fulltext",
        ),
        SearchError::Embedding(error) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "embedding_failed",
            format!("{error}; mode=fulltext still works"),
        ),
    })?;
    Ok(Json(SearchResults {
        items: hits.into_iter().map(SearchHit::from).collect(),
    }))
}
