//! `GET /v1/events`: the caller's events in log order, after a position, filtered
//! by type, aggregate and time. Poll with `after=<next_after>` (or follow
//! `/v1/events/stream` for a live feed).

use super::dto::{
    CanRead, CommonErrors, Event, EventFeed, Problem, QueryParams, parse_id, parse_time,
};
use super::entities::page_limit;
use crate::error::ApiResult;
use crate::state::AppState;
use axum::Json;
use axum::extract::{RawQuery, State};
use synap_store::EventFilter;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
}

/// Read the caller's events.
///
/// Events after a position, oldest first, filtered by type, aggregate and time.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "events",
    params(
        ("after" = Option<u64>, Query, description = "Only events after this position (default 0: from the start)."),
        ("type" = Option<Vec<String>>, Query, style = Form, explode = true, description = "Only events of these types (`entity.created`, …): repeat the parameter or separate with commas."),
        ("aggregate_id" = Option<Uuid>, Query, description = "Only events of this entity or relation."),
        ("since" = Option<String>, Query, format = DateTime, description = "Only events recorded at or after this RFC 3339 time."),
        ("until" = Option<String>, Query, format = DateTime, description = "Only events recorded before this RFC 3339 time."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "At most this many events, 1 to 500 (default 50)."),
    ),
    responses(
        (status = 200, description = "Events, oldest first, and the position to read on from.", body = EventFeed),
        (status = 400, description = "A malformed or unknown parameter (`invalid_query`, with `parameter`), a malformed `aggregate_id` (`invalid_id`), or an unknown event type (`invalid_input`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn list_events(
    CanRead(caller): CanRead,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<EventFeed>> {
    let query = QueryParams::parse(
        raw.as_deref(),
        &["after", "type", "aggregate_id", "since", "until", "limit"],
    )?;
    let after = query
        .parsed::<u64>("after", "a position (a whole number)")?
        .unwrap_or(0);
    let filter = EventFilter {
        after,
        types: query.list("type")?,
        aggregate_id: query
            .single("aggregate_id")?
            .map(|text| parse_id("aggregate_id", text))
            .transpose()?,
        since: query
            .single("since")?
            .map(|text| parse_time("since", text))
            .transpose()?,
        until: query
            .single("until")?
            .map(|text| parse_time("until", text))
            .transpose()?,
        limit: page_limit(query.parsed::<u32>("limit", "a number from 1 to 500")?)?,
    };
    let events = state.store.read_events(&caller.scope(), &filter).await?;
    let next_after = events.last().map_or(after, |e| e.position);
    Ok(Json(EventFeed {
        items: events.iter().map(Event::from).collect(),
        next_after,
    }))
}
