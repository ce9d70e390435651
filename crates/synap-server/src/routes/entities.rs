//! `/v1/entities` and `/v1/tags`: create, list, read (now, or at a past version or
//! time), change, delete and restore, history, revert, the raw content body, and
//! the caller's tags.
//!
//! Every write is one command to the store (one transaction); the answer is the
//! entity as the command left it, with its version as `ETag`. Versions are also
//! preconditions: `If-Match: "<version>"` answers 412 when stale, an
//! `expected_version` in a PATCH body answers 409. Another user's entity id
//! answers exactly like an id that does not exist: 404.

use super::dto::{
    BodyErrors, CanRead, CanWrite, CommonErrors, CreateEntity, Entity, EntityPage, EntityType,
    EventPage, IDEMPOTENT_REPLAYED, IfMatch, Problem, RevertEntity, Tag, TagList, TaskStatus,
    UpdateEntity, command_id, command_metadata, etag, idempotency_key_reused, if_match,
    invalid_query, parse_id, parse_time, precondition_failed,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use synap_domain::limits::{PAGE_LIMIT_MAX, TAGS_PER_ENTITY_MAX, TASK_PRIORITY_MAX};
use synap_domain::{Change, DomainError, EntityCommand, EntityId, NewContent, TaskInput};
use synap_store::{
    AsOf, CommandRequest, EntityFilter, EntityView, PageRequest, Scope, StoreError, Target,
};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_entity, list_entities))
        .routes(routes!(get_entity, update_entity, delete_entity))
        .routes(routes!(restore_entity))
        .routes(routes!(revert_entity))
        .routes(routes!(entity_history))
        .routes(routes!(entity_content))
        .routes(routes!(list_tags))
}

// ---------------------------------------------------------------------------------
// Create and list
// ---------------------------------------------------------------------------------

/// Create an entity.
///
/// Answers 201 with the entity, its version as `ETag` and its address as
/// `Location`. A request is safe to retry when it carries an `Idempotency-Key`
/// header (or a client-chosen `id`): the retry writes nothing and answers with the
/// entity as the first request created it, marked `Idempotent-Replayed: true`.
#[utoipa::path(
    post,
    path = "/v1/entities",
    tag = "entities",
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: 1 to 255 visible ASCII characters (a UUID is a good choice). A repeated key returns the first result and writes nothing. Keys are per user."),
        ("X-Request-Id" = Option<String>, Header, description = "Recorded as `request_id` in the metadata of the events written."),
    ),
    request_body = CreateEntity,
    responses(
        (status = 201, description = "Created, or the first result of a retried request.", body = Entity,
            headers(
                ("ETag" = String, description = "The entity's version: `\"<version>\"`."),
                ("Location" = String, description = "`/v1/entities/{id}`."),
                ("Idempotent-Replayed" = String, description = "`true` when this answers a retry."),
            )),
        (status = 400, description = "Malformed JSON (`malformed_json`), an `id` that is not a UUID (`invalid_id`), or an unusable `Idempotency-Key` (`invalid_idempotency_key`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The `Idempotency-Key` was first used for another request (`idempotency_key_reused`).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule or has the wrong type (`validation_failed`, with `field` when known): a title over 300 characters, a bad tag, task fields on a non-task, a used `id`, …", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
        BodyErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn create_entity(
    CanWrite(caller): CanWrite,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateEntity>,
) -> ApiResult<Response> {
    let scope = caller.scope();
    let client_id = body.id.as_deref().map(client_entity_id).transpose()?;
    let id = client_id.unwrap_or_else(EntityId::new_v7);
    let command_id = command_id(
        &caller,
        &headers,
        client_id.as_ref().map(|id| id.as_bytes().as_slice()),
    )?;
    let request = CommandRequest {
        scope,
        command_id,
        target: Target::Entity {
            id,
            command: EntityCommand::Create(create_command(body)?),
        },
        expected_version: None,
        metadata: command_metadata(&caller, &headers),
        triggers: Vec::new(),
    };
    let outcome = state.execute(request).await.map_err(|error| match error {
        // Ids are global: one's own and another user's taken id answer alike.
        StoreError::Domain(DomainError::AlreadyExists(id)) => id_in_use(id),
        other => other.into(),
    })?;
    let view = if outcome.replayed {
        let first = EntityId(outcome.aggregate_id);
        // The key must have created an entity of this user (not, say, a link).
        if client_id.is_some_and(|id| id != first)
            || state.store.entity(&scope, first).await?.is_none()
        {
            return Err(idempotency_key_reused());
        }
        state
            .store
            .entity_at(&scope, first, AsOf::Version(outcome.version))
            .await?
            .ok_or_else(idempotency_key_reused)?
    } else {
        current(&state, &scope, id).await?
    };
    let created = view.id;
    let mut response = entity_response(StatusCode::CREATED, view);
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, location(created));
    if outcome.replayed {
        headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// A client-chosen entity id: a UUIDv7.
fn client_entity_id(text: &str) -> ApiResult<EntityId> {
    let id = parse_id("id", text)?;
    if id.get_version_num() != 7 {
        return Err(ApiError::validation(
            "id",
            format!("id {id} is not a UUIDv7; entity ids are time-ordered UUIDv7s"),
        ));
    }
    Ok(EntityId(id))
}

/// The store's answer for a taken id, whoever took it.
fn id_in_use(id: EntityId) -> ApiError {
    DomainError::Validation {
        field: "id",
        message: format!("id {id} is already used; send a new id"),
    }
    .into()
}

fn location(id: EntityId) -> HeaderValue {
    HeaderValue::from_str(&format!("/v1/entities/{id}"))
        .unwrap_or(HeaderValue::from_static("/v1/entities"))
}

/// Refuses tag lists longer than an entity can hold before the domain sees them
/// (its duplicate checks are quadratic in the list's length).
fn check_tag_list(tags: &[String]) -> ApiResult<()> {
    if tags.len() > TAGS_PER_ENTITY_MAX {
        return Err(ApiError::validation(
            "tags",
            format!(
                "{} tags in one request; an entity has at most {TAGS_PER_ENTITY_MAX}",
                tags.len()
            ),
        ));
    }
    Ok(())
}

fn create_command(body: CreateEntity) -> ApiResult<synap_domain::CreateEntity> {
    check_tag_list(&body.tags)?;
    let content = match (body.content, body.media_type) {
        (Some(text), media_type) => Some(NewContent {
            body: text,
            media_type,
        }),
        (None, Some(_)) => return Err(media_type_without_content()),
        (None, None) => None,
    };
    let task = match body.task {
        Some(task) => Some(TaskInput {
            status: task.status.map(Into::into),
            priority: task.priority.map(priority).transpose()?,
            due_at: task.due_at,
        }),
        None => None,
    };
    Ok(synap_domain::CreateEntity {
        entity_type: body.entity_type.into(),
        title: body.title,
        content,
        tags: body.tags,
        task,
        metadata: body.metadata.unwrap_or_default(),
    })
}

fn priority(value: u64) -> ApiResult<u8> {
    u8::try_from(value)
        .ok()
        .filter(|p| *p <= TASK_PRIORITY_MAX)
        .ok_or_else(|| {
            ApiError::validation(
                "priority",
                format!("priority {value} is out of range; use 0 to {TASK_PRIORITY_MAX}"),
            )
        })
}

fn media_type_without_content() -> ApiError {
    ApiError::validation(
        "media_type",
        "media_type describes content; send it together with content",
    )
}

/// Filters and paging of `GET /v1/entities`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListEntitiesQuery {
    /// Only entities of this type.
    #[serde(default, rename = "type")]
    entity_type: Option<EntityType>,
    /// Only entities with this tag (case-insensitive; a leading `#` is ignored).
    #[serde(default)]
    tag: Option<String>,
    /// Only tasks with this status.
    #[serde(default)]
    status: Option<TaskStatus>,
    /// `true`: only deleted entities; `false` (default): only live ones.
    #[serde(default)]
    deleted: Option<bool>,
    /// Only entities updated at or after this RFC 3339 time.
    #[serde(default)]
    #[param(format = DateTime)]
    updated_since: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
}

/// List entities, most recently updated first.
#[utoipa::path(
    get,
    path = "/v1/entities",
    tag = "entities",
    params(ListEntitiesQuery),
    responses(
        (status = 200, description = "One page of entities.", body = EntityPage),
        (status = 400, description = "A malformed or unknown query parameter (`invalid_query`, with `parameter`) or a cursor this server did not issue (`invalid_input`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn list_entities(
    CanRead(caller): CanRead,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListEntitiesQuery>,
) -> ApiResult<Json<EntityPage>> {
    let filter = EntityFilter {
        entity_type: query.entity_type.map(Into::into),
        tag: query.tag,
        status: query.status.map(Into::into),
        deleted: query.deleted.unwrap_or(false),
        updated_since: query
            .updated_since
            .as_deref()
            .map(|t| parse_time("updated_since", t))
            .transpose()?,
    };
    let page = PageRequest {
        limit: page_limit(query.limit)?,
        cursor: query.cursor,
    };
    let page = state
        .store
        .list_entities(&caller.scope(), &filter, &page)
        .await?;
    Ok(Json(EntityPage {
        items: page.items.into_iter().map(Entity::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// A page size from a query: 1 to 500, or 400 `invalid_query`.
pub(crate) fn page_limit(limit: Option<u32>) -> ApiResult<Option<u32>> {
    match limit {
        Some(limit) if !(1..=PAGE_LIMIT_MAX).contains(&limit) => Err(invalid_query(
            "limit",
            format!("limit {limit} is out of range; use 1 to {PAGE_LIMIT_MAX}"),
        )),
        other => Ok(other),
    }
}

// ---------------------------------------------------------------------------------
// Read one, now or in the past
// ---------------------------------------------------------------------------------

/// `?at=` or `?version=`: which state to read.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AsOfQuery {
    /// The state as it was at this RFC 3339 time. Not together with `version`.
    #[serde(default)]
    #[param(format = DateTime)]
    at: Option<String>,
    /// The state right after this version (1 or more). Not together with `at`.
    #[serde(default)]
    #[param(value_type = Option<u64>, minimum = 1)]
    version: Option<String>,
}

impl AsOfQuery {
    fn as_of(&self) -> ApiResult<Option<AsOf>> {
        match (&self.at, &self.version) {
            (Some(_), Some(_)) => Err(invalid_query("at", "give either at or version, not both")),
            (Some(at), None) => Ok(Some(AsOf::Time(parse_time("at", at)?))),
            (None, Some(version)) => match version.trim().parse::<u64>() {
                Ok(version) if version >= 1 => Ok(Some(AsOf::Version(version))),
                _ => Err(invalid_query(
                    "version",
                    format!(
                        "version: {version:?} is not a version; versions are whole numbers from 1"
                    ),
                )),
            },
            (None, None) => Ok(None),
        }
    }
}

/// Read an entity, now or in the past.
///
/// The current state, or with `?at=` or `?version=` the state it had then (a fold
/// of its events). Deleted entities are returned with `deleted_at`.
#[utoipa::path(
    get,
    path = "/v1/entities/{id}",
    tag = "entities",
    params(("id" = Uuid, Path, description = "The entity's id."), AsOfQuery),
    responses(
        (status = 200, description = "The entity.", body = Entity,
            headers(("ETag" = String, description = "The version shown: `\"<version>\"`."))),
        (status = 400, description = "A malformed id (`invalid_id`); a malformed `at` or `version`, or both given (`invalid_query`, with `parameter`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entity (or it belongs to someone else), no such version, or the entity did not exist yet at `at` (`not_found`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn get_entity(
    CanRead(caller): CanRead,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<AsOfQuery>,
) -> ApiResult<Response> {
    let as_of = query.as_of()?;
    let view = read(&state, &caller.scope(), EntityId(id), as_of).await?;
    Ok(entity_response(StatusCode::OK, view))
}

/// 404 for an entity id, the same whether the id is missing or someone else's.
pub(crate) fn not_found(id: EntityId) -> ApiError {
    DomainError::EntityNotFound(id).into()
}

/// The current state, or 404.
pub(crate) async fn current(
    state: &AppState,
    scope: &Scope,
    id: EntityId,
) -> ApiResult<EntityView> {
    state
        .store
        .entity(scope, id)
        .await?
        .ok_or_else(|| not_found(id))
}

/// The current or a past state, or 404 saying what does exist.
async fn read(
    state: &AppState,
    scope: &Scope,
    id: EntityId,
    as_of: Option<AsOf>,
) -> ApiResult<EntityView> {
    // The entity first: only an entity's id may reach the log fold (a relation's
    // id, say, must be a plain 404).
    let now = current(state, scope, id).await?;
    let Some(as_of) = as_of else {
        return Ok(now);
    };
    if let Some(view) = state.store.entity_at(scope, id, as_of).await? {
        return Ok(view);
    }
    Err(match as_of {
        AsOf::Version(version) => ApiError::not_found(format!(
            "entity {id} has no version {version}; its current version is {}",
            now.version
        ))
        .with("current_version", now.version),
        AsOf::Time(at) => ApiError::not_found(format!(
            "entity {id} did not exist yet at {at}; it was created at {}",
            now.created_at
        )),
    })
}

fn entity_response(status: StatusCode, view: EntityView) -> Response {
    let tag = etag(view.version);
    let mut response = (status, Json(Entity::from(view))).into_response();
    response.headers_mut().insert(header::ETAG, tag);
    response
}

// ---------------------------------------------------------------------------------
// Change, delete, restore, revert
// ---------------------------------------------------------------------------------

/// Change an entity.
///
/// Every field given is changed in one command (one transaction, consecutive
/// versions). With `If-Match: "<version>"` the change is refused with 412 unless
/// the entity is at that version; with `expected_version` in the body, with 409.
/// A body with no changes changes nothing and answers the current entity.
#[utoipa::path(
    patch,
    path = "/v1/entities/{id}",
    tag = "entities",
    params(
        ("id" = Uuid, Path, description = "The entity's id."),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"` (or a list, or `*`): change only if the entity is at that version, else 412."),
        ("X-Request-Id" = Option<String>, Header, description = "Recorded as `request_id` in the events' metadata."),
    ),
    request_body = UpdateEntity,
    responses(
        (status = 200, description = "The entity after the change.", body = Entity,
            headers(("ETag" = String, description = "The new version: `\"<version>\"`."))),
        (status = 400, description = "A malformed id (`invalid_id`) or malformed JSON (`malformed_json`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entity, or it belongs to someone else (`not_found`).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`expected_version` is stale (`conflict`, with `current_version`), or the entity is deleted (`entity_deleted`).", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` does not match the current version (`precondition_failed`, with `current_version` and the current `ETag`).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field breaks a rule or has the wrong type (`validation_failed`, with `field` when known); task fields on a non-task (`not_a_task`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
        BodyErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn update_entity(
    CanWrite(caller): CanWrite,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<UpdateEntity>,
) -> ApiResult<Response> {
    let expected_version = body.expected_version;
    let changes = changes(body)?;
    let command = EntityCommand::Change(changes);
    execute(
        &state,
        &caller,
        &headers,
        EntityId(id),
        command,
        expected_version,
    )
    .await
}

fn changes(body: UpdateEntity) -> ApiResult<Vec<Change>> {
    check_tag_list(&body.add_tags)?;
    check_tag_list(&body.remove_tags)?;
    let mut changes = Vec::new();
    if let Some(entity_type) = body.entity_type {
        changes.push(Change::Type(entity_type.into()));
    }
    match (body.content, body.media_type) {
        (Some(Some(text)), media_type) => changes.push(Change::Content(Some(NewContent {
            body: text,
            media_type,
        }))),
        (Some(None), None) => changes.push(Change::Content(None)),
        (Some(None), Some(_)) | (None, Some(_)) => return Err(media_type_without_content()),
        (None, None) => {}
    }
    if let Some(title) = body.title {
        changes.push(Change::Title(title));
    }
    if !body.add_tags.is_empty() {
        changes.push(Change::AddTags(body.add_tags));
    }
    if !body.remove_tags.is_empty() {
        changes.push(Change::RemoveTags(body.remove_tags));
    }
    if let Some(set) = body.metadata_set.filter(|m| !m.is_empty()) {
        changes.push(Change::SetMetadata(set));
    }
    if !body.metadata_unset.is_empty() {
        changes.push(Change::UnsetMetadata(body.metadata_unset));
    }
    if let Some(status) = body.status {
        changes.push(Change::TaskStatus(status.into()));
    }
    if let Some(value) = body.priority {
        changes.push(Change::TaskPriority(priority(value)?));
    }
    if let Some(due_at) = body.due_at {
        changes.push(Change::TaskDue(due_at));
    }
    Ok(changes)
}

/// Delete an entity (softly).
///
/// The entity keeps its history and can be restored. Answers 200 with the
/// entity, whose `deleted_at` is set; deleting a deleted entity changes nothing
/// and answers the same way.
#[utoipa::path(
    delete,
    path = "/v1/entities/{id}",
    tag = "entities",
    params(
        ("id" = Uuid, Path, description = "The entity's id."),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"`: delete only if the entity is at that version, else 412."),
        ("X-Request-Id" = Option<String>, Header, description = "Recorded as `request_id` in the events' metadata."),
    ),
    responses(
        (status = 200, description = "The deleted entity.", body = Entity,
            headers(("ETag" = String, description = "The new version: `\"<version>\"`."))),
        (status = 400, description = "A malformed id (`invalid_id`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entity, or it belongs to someone else (`not_found`).", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` does not match the current version (`precondition_failed`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn delete_entity(
    CanWrite(caller): CanWrite,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    execute(
        &state,
        &caller,
        &headers,
        EntityId(id),
        EntityCommand::Delete,
        None,
    )
    .await
}

/// Restore a deleted entity.
///
/// Restoring a live entity changes nothing.
#[utoipa::path(
    post,
    path = "/v1/entities/{id}/restore",
    tag = "entities",
    params(
        ("id" = Uuid, Path, description = "The entity's id."),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"`: restore only if the entity is at that version, else 412."),
        ("X-Request-Id" = Option<String>, Header, description = "Recorded as `request_id` in the events' metadata."),
    ),
    responses(
        (status = 200, description = "The restored entity.", body = Entity,
            headers(("ETag" = String, description = "The new version: `\"<version>\"`."))),
        (status = 400, description = "A malformed id (`invalid_id`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entity, or it belongs to someone else (`not_found`).", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` does not match the current version (`precondition_failed`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn restore_entity(
    CanWrite(caller): CanWrite,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    execute(
        &state,
        &caller,
        &headers,
        EntityId(id),
        EntityCommand::Restore,
        None,
    )
    .await
}

/// Revert an entity to an earlier version.
///
/// History is kept: the revert appends events that restore the state of that
/// version (and can itself be reverted).
#[utoipa::path(
    post,
    path = "/v1/entities/{id}/revert",
    tag = "entities",
    params(
        ("id" = Uuid, Path, description = "The entity's id."),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"`: revert only if the entity is at that version, else 412."),
        ("X-Request-Id" = Option<String>, Header, description = "Recorded as `request_id` in the events' metadata."),
    ),
    request_body = RevertEntity,
    responses(
        (status = 200, description = "The entity after the revert.", body = Entity,
            headers(("ETag" = String, description = "The new version: `\"<version>\"`."))),
        (status = 400, description = "A malformed id (`invalid_id`) or malformed JSON (`malformed_json`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entity, or it belongs to someone else (`not_found`).", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` does not match the current version (`precondition_failed`).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The entity never had that version (`invalid_version`, with `current_version`), or the body has the wrong shape (`validation_failed`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
        BodyErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn revert_entity(
    CanWrite(caller): CanWrite,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RevertEntity>,
) -> ApiResult<Response> {
    let command = EntityCommand::RevertTo {
        version: body.version,
    };
    execute(&state, &caller, &headers, EntityId(id), command, None).await
}

/// Runs a command on an existing entity under the request's preconditions and
/// answers 200 with the entity as the command left it.
async fn execute(
    state: &AppState,
    caller: &crate::auth::Caller,
    headers: &HeaderMap,
    id: EntityId,
    command: EntityCommand,
    body_expected: Option<u64>,
) -> ApiResult<Response> {
    let scope = caller.scope();
    let condition = if_match(headers);
    let expected_version = match &condition {
        None => body_expected,
        Some(condition) => {
            // Checked here so a stale If-Match answers 412 (and a missing entity 404)
            // before anything else; the store re-checks the version atomically.
            let now = current(state, &scope, id).await?.version;
            if !condition.matches(now) {
                return Err(precondition_failed(now));
            }
            if let Some(expected) = body_expected.filter(|v| *v != now) {
                return Err(StoreError::Conflict {
                    aggregate_id: id.0,
                    expected,
                    current: now,
                }
                .into());
            }
            match condition {
                IfMatch::Any => body_expected,
                IfMatch::Versions(_) => Some(now),
            }
        }
    };
    let request = CommandRequest {
        scope,
        command_id: Uuid::now_v7(),
        target: Target::Entity { id, command },
        expected_version,
        metadata: command_metadata(caller, headers),
        triggers: Vec::new(),
    };
    match state.execute(request).await {
        Ok(_) => {}
        // Version 0 is "does not exist": a stale expectation on a missing entity
        // (or another user's) is a 404 like every other miss.
        Err(StoreError::Conflict { current: 0, .. }) => return Err(not_found(id)),
        Err(StoreError::Conflict { current, .. }) if condition.is_some() => {
            return Err(precondition_failed(current));
        }
        Err(error) => return Err(error.into()),
    }
    let view = current(state, &scope, id).await?;
    Ok(entity_response(StatusCode::OK, view))
}

// ---------------------------------------------------------------------------------
// History and content
// ---------------------------------------------------------------------------------

/// Paging of `GET /v1/entities/{id}/history`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct HistoryQuery {
    /// Page size, 1 to 500 (default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
}

/// Read an entity's history.
///
/// Its events, oldest first: every version, as deltas.
#[utoipa::path(
    get,
    path = "/v1/entities/{id}/history",
    tag = "entities",
    params(("id" = Uuid, Path, description = "The entity's id."), HistoryQuery),
    responses(
        (status = 200, description = "One page of the entity's events.", body = EventPage),
        (status = 400, description = "A malformed id (`invalid_id`), a malformed query (`invalid_query`) or cursor (`invalid_input`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entity, or it belongs to someone else (`not_found`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn entity_history(
    CanRead(caller): CanRead,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<EventPage>> {
    let scope = caller.scope();
    let id = EntityId(id);
    let page = PageRequest {
        limit: page_limit(query.limit)?,
        cursor: query.cursor,
    };
    // An empty history and a missing entity must not look alike.
    current(&state, &scope, id).await?;
    let page = state.store.history(&scope, id, &page).await?;
    Ok(Json(EventPage {
        items: page.items.iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Read an entity's content body.
///
/// The body, raw, with its media type; `?at=`/`?version=` read a past body. 204
/// when the entity has no body.
#[utoipa::path(
    get,
    path = "/v1/entities/{id}/content",
    tag = "entities",
    params(("id" = Uuid, Path, description = "The entity's id."), AsOfQuery),
    responses(
        (status = 200, description = "The body, with the entity's media type (`text/markdown` unless another was given).",
            content((String = "text/markdown"), (String = "text/plain")),
            headers(("ETag" = String, description = "The body's SHA-256: `\"<hex>\"`."))),
        (status = 204, description = "The entity (at that point) has no body."),
        (status = 400, description = "A malformed id (`invalid_id`); a malformed `at` or `version`, or both given (`invalid_query`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such entity (or it belongs to someone else), no such version, or not yet created at `at` (`not_found`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn entity_content(
    CanRead(caller): CanRead,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<AsOfQuery>,
) -> ApiResult<Response> {
    let scope = caller.scope();
    let as_of = query.as_of()?;
    let view = read(&state, &scope, EntityId(id), as_of).await?;
    let Some(content) = view.content else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let Some(stored) = state.store.content(&scope, content.hash).await? else {
        return Err(StoreError::Corrupt(format!(
            "the body {} of entity {id} is missing",
            content.hash
        ))
        .into());
    };
    let media_type = if content.media_type.starts_with("text/") && !content.media_type.contains(';')
    {
        format!("{}; charset=utf-8", content.media_type)
    } else {
        content.media_type.clone()
    };
    let content_type = HeaderValue::from_str(&media_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let tag = HeaderValue::from_str(&format!("\"{}\"", content.hash))
        .unwrap_or(HeaderValue::from_static("\"\""));
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::ETAG, tag),
            // A body is the user's data, never a page of this origin: scripts in an
            // HTML body must not run here.
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox; default-src 'none'"),
            ),
        ],
        stored.body,
    )
        .into_response())
}

// ---------------------------------------------------------------------------------
// Tags
// ---------------------------------------------------------------------------------

/// List the caller's tags.
///
/// Each tag with the number of live entities carrying it, most used first.
#[utoipa::path(
    get,
    path = "/v1/tags",
    tag = "entities",
    responses(
        (status = 200, description = "Every tag in use.", body = TagList),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn list_tags(
    CanRead(caller): CanRead,
    State(state): State<AppState>,
) -> ApiResult<Json<TagList>> {
    let tags = state.store.tags(&caller.scope()).await?;
    Ok(Json(TagList {
        items: tags
            .into_iter()
            .map(|t| Tag {
                name: t.name,
                count: t.count,
            })
            .collect(),
    }))
}
