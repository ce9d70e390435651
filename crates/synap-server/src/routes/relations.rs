//! Typed links between entities: `/v1/relations` (create, delete), an entity's
//! links (`/v1/entities/{id}/relations`, `in` = backlinks) and `/v1/graph`
//! (breadth-first from a root). Links only ever join two entities of one user:
//! another user's entity or relation id answers 404, like a missing one.

use super::dto::{
    BodyErrors, CanRead, CanWrite, CommonErrors, CreateRelation, Edge, Graph, IDEMPOTENT_REPLAYED,
    Node, Problem, QueryParams, Relation, RelationList, command_id, command_metadata,
    idempotency_key_reused, invalid_query, parse_id,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use synap_domain::limits::GRAPH_DEPTH_MAX;
use synap_domain::{EntityId, RelationId, RelationKind};
use synap_store::{CommandRequest, Direction, GraphRequest, StoreError, Target};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// Hops a graph traversal goes when `depth` is not given.
pub const GRAPH_DEPTH_DEFAULT: u32 = 1;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_relation))
        .routes(routes!(delete_relation))
        .routes(routes!(entity_relations))
        .routes(routes!(graph))
}

/// Link two entities.
///
/// A typed, directed link `source → target` (kind `relates_to` unless given).
/// `Idempotency-Key` makes the request safe to retry, as for entities.
#[utoipa::path(
    post,
    path = "/v1/relations",
    tag = "relations",
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: a repeated key returns the first result and writes nothing."),
        ("X-Request-Id" = Option<String>, Header, description = "Recorded as `request_id` in the events' metadata."),
    ),
    request_body = CreateRelation,
    responses(
        (status = 201, description = "The new link.", body = Relation,
            headers(("Idempotent-Replayed" = String, description = "`true` when this answers a retry."))),
        (status = 400, description = "An id that is not a UUID (`invalid_id`, with `field`) or malformed JSON (`malformed_json`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "An end does not exist, is deleted, or belongs to someone else (`not_found`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The same link exists (`duplicate_relation`), or the `Idempotency-Key` was used for another request (`idempotency_key_reused`).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad kind, `mentions`, or a link from an entity to itself (`validation_failed`, with `field`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
        BodyErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn create_relation(
    CanWrite(caller): CanWrite,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateRelation>,
) -> ApiResult<Response> {
    let scope = caller.scope();
    let source_id = EntityId(parse_id("source_id", &body.source_id)?);
    let target_id = EntityId(parse_id("target_id", &body.target_id)?);
    let kind = RelationKind::parse(body.kind.as_deref().unwrap_or(RelationKind::DEFAULT))
        .map_err(ApiError::from)?;
    let request = CommandRequest {
        scope,
        command_id: command_id(&caller, &headers, None)?,
        target: Target::Link {
            id: RelationId::new_v7(),
            source_id,
            target_id,
            kind,
        },
        expected_version: None,
        metadata: command_metadata(&caller, &headers),
        triggers: Vec::new(),
    };
    let outcome = state.execute(request).await?;
    let id = RelationId(outcome.aggregate_id);
    // The link's first end is the source it was created from (a replay may name
    // another request's link, which is then found among its source's links).
    let created = state
        .store
        .relations(&scope, source_id, Direction::Out)
        .await
        .ok()
        .and_then(|links| links.into_iter().find(|r| r.id == id));
    let relation = match created {
        Some(relation) => relation,
        None if outcome.replayed => return Err(idempotency_key_reused()),
        None => {
            return Err(
                StoreError::Corrupt(format!("relation {id} vanished after creation")).into(),
            );
        }
    };
    let mut response = (StatusCode::CREATED, Json(Relation::from(relation))).into_response();
    if outcome.replayed {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Delete a link.
///
/// `mentions` links follow `[[wikilinks]]` in content and are removed by removing
/// the wikilink instead.
#[utoipa::path(
    delete,
    path = "/v1/relations/{id}",
    tag = "relations",
    params(
        ("id" = Uuid, Path, description = "The relation's id."),
        ("X-Request-Id" = Option<String>, Header, description = "Recorded as `request_id` in the events' metadata."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "A malformed id (`invalid_id`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such live link, or it belongs to someone else (`not_found`).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A `mentions` link (`validation_failed`, field `kind`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn delete_relation(
    CanWrite(caller): CanWrite,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let request = CommandRequest::new(
        caller.scope(),
        Target::Unlink { id: RelationId(id) },
        command_metadata(&caller, &headers),
    );
    state.execute(request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which of an entity's links to read.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum LinkDirection {
    /// Links from the entity.
    Out,
    /// Links to the entity (backlinks).
    In,
    #[default]
    Both,
}

/// `?direction=` of `GET /v1/entities/{id}/relations`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct RelationsQuery {
    /// `out`: links from the entity; `in`: links to it (backlinks); `both` (default).
    #[serde(default)]
    #[param(inline)]
    direction: Option<LinkDirection>,
}

/// List an entity's links.
///
/// Its live links, from it (`out`), to it (`in`, backlinks) or both; links whose
/// other end is deleted are hidden.
#[utoipa::path(
    get,
    path = "/v1/entities/{id}/relations",
    tag = "relations",
    params(("id" = Uuid, Path, description = "The entity's id."), RelationsQuery),
    responses(
        (status = 200, description = "The links, oldest first.", body = RelationList),
        (status = 400, description = "A malformed id (`invalid_id`) or direction (`invalid_query`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such live entity, or it belongs to someone else (`not_found`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn entity_relations(
    CanRead(caller): CanRead,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<RelationsQuery>,
) -> ApiResult<Json<RelationList>> {
    let direction = match query.direction.unwrap_or_default() {
        LinkDirection::Out => Direction::Out,
        LinkDirection::In => Direction::In,
        LinkDirection::Both => Direction::Both,
    };
    let links = state
        .store
        .relations(&caller.scope(), EntityId(id), direction)
        .await?;
    Ok(Json(RelationList {
        items: links.into_iter().map(Relation::from).collect(),
    }))
}

/// Walk the graph around an entity.
///
/// Breadth-first from `root` along links in both directions, to `depth` hops;
/// answers the nodes reached and every link between them.
#[utoipa::path(
    get,
    path = "/v1/graph",
    tag = "relations",
    params(
        ("root" = Uuid, Query, description = "The entity to start from."),
        ("depth" = Option<u32>, Query, minimum = 0, maximum = 5, description = "Hops to follow, 0 to 5 (default 1)."),
        ("kinds" = Option<Vec<String>>, Query, style = Form, explode = true, description = "Only follow links of these kinds: repeat the parameter or separate with commas."),
    ),
    responses(
        (status = 200, description = "The nodes reached and the links between them.", body = Graph),
        (status = 400, description = "A missing or malformed `root` (`invalid_id`), or a bad `depth` or kind (`invalid_query`, with `parameter`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such live root, or it belongs to someone else (`not_found`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn graph(
    CanRead(caller): CanRead,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Graph>> {
    let query = QueryParams::parse(raw.as_deref(), &["root", "depth", "kinds"])?;
    let root = match query.single("root")? {
        Some(text) => EntityId(parse_id("root", text)?),
        None => {
            return Err(invalid_query(
                "root",
                "give root: the id of the entity to start from",
            ));
        }
    };
    let depth = query
        .parsed::<u32>("depth", "a number of hops")?
        .unwrap_or(GRAPH_DEPTH_DEFAULT);
    if depth > GRAPH_DEPTH_MAX {
        return Err(invalid_query(
            "depth",
            format!("depth {depth} is too deep; use 0 to {GRAPH_DEPTH_MAX}"),
        ));
    }
    let kinds = query
        .list("kinds")?
        .iter()
        .map(|kind| {
            RelationKind::parse(kind)
                .map(|k| k.as_str().to_string())
                .map_err(|error| invalid_query("kinds", error.to_string()))
        })
        .collect::<ApiResult<Vec<String>>>()?;
    let request = GraphRequest { root, depth, kinds };
    let graph = state.store.graph(&caller.scope(), &request).await?;
    Ok(Json(Graph {
        nodes: graph.nodes.into_iter().map(Node::from).collect(),
        edges: graph.edges.into_iter().map(Edge::from).collect(),
        truncated: graph.truncated,
    }))
}
