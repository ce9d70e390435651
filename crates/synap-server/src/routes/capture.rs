//! `POST /v1/capture`: a thought becomes a note at once (202 with its id);
//! enrichment (title, tags, type by the configured model) follows in the
//! `capture.enrich` workflow, whose run is inserted in the capture's own
//! transaction and answered as `run_id`. [`capture_note`] is the one way to
//! capture, shared with the tRPC procedure `capture.thought`.

use super::dto::{
    BodyErrors, CanWrite, Capture, Captured, CommonErrors, IDEMPOTENT_REPLAYED, Problem,
    command_id, command_metadata, idempotency_key_reused,
};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use synap_domain::{CreateEntity, DomainError, EntityCommand, EntityId};
use synap_flows::enrich::{capture_enrich_run, enrich_run_id};
use synap_store::{CommandRequest, StoreError, Target};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The metadata key under which a capture's `context` is kept on the note.
pub const CONTEXT_KEY: &str = "capture_context";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(capture))
}

/// Capture a thought.
///
/// The note exists when this answers (202); enrichment follows in a workflow.
#[utoipa::path(
    post,
    path = "/v1/capture",
    tag = "capture",
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: a repeated key returns the first result and writes nothing."),
        ("X-Request-Id" = Option<String>, Header, description = "Recorded as `request_id` in the events' metadata."),
    ),
    request_body = Capture,
    responses(
        (status = 202, description = "The note is stored; enrichment follows.", body = Captured,
            headers(
                ("Location" = String, description = "`/v1/entities/{entity_id}`."),
                ("Idempotent-Replayed" = String, description = "`true` when this answers a retry."),
            )),
        (status = 400, description = "Malformed JSON (`malformed_json`) or an unusable `Idempotency-Key`.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The `Idempotency-Key` was used for another request (`idempotency_key_reused`).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Blank text, a context over 16 KiB, or the wrong shape (`validation_failed`, with `field`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
        BodyErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn capture(
    CanWrite(caller): CanWrite,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Capture>,
) -> ApiResult<Response> {
    let command_id = command_id(&caller, &headers, None)?;
    let (entity_id, run_id, replayed) = capture_note(
        &state,
        &caller,
        &headers,
        command_id,
        body.text,
        body.context.unwrap_or_default(),
    )
    .await?;
    let mut response = (
        StatusCode::ACCEPTED,
        Json(Captured {
            entity_id: entity_id.0,
            run_id,
        }),
    )
        .into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/entities/{entity_id}")) {
        headers.insert(header::LOCATION, location);
    }
    if replayed {
        headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Stores `text` as a new note with `context` kept under [`CONTEXT_KEY`], as
/// command `command_id`, with its `capture.enrich` run; returns the note's id, the
/// run's id and whether this was a replay of an earlier command with that id.
pub async fn capture_note(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    command_id: Uuid,
    text: String,
    context: Map<String, Value>,
) -> ApiResult<(EntityId, Uuid, bool)> {
    if text.trim().is_empty() {
        return Err(ApiError::validation("text", "there is nothing to capture"));
    }
    let mut create = CreateEntity::note(text);
    if !context.is_empty() {
        create
            .metadata
            .insert(CONTEXT_KEY.to_string(), Value::Object(context));
    }
    let id = EntityId::new_v7();
    let request = CommandRequest {
        scope: caller.scope(),
        command_id,
        target: Target::Entity {
            id,
            command: EntityCommand::Create(create),
        },
        expected_version: None,
        metadata: command_metadata(caller, headers),
        triggers: vec![capture_enrich_run(id, command_id)],
    };
    let outcome = state.execute(request).await.map_err(|error| match error {
        // The context is the only metadata a capture has.
        StoreError::Domain(DomainError::Validation {
            field: "metadata",
            message,
        }) => ApiError::validation("context", format!("context: {message}")),
        other => other.into(),
    })?;
    if !outcome.replayed {
        return Ok((id, enrich_run_id(command_id), false));
    }
    // A replay: the key must have created an entity of this user.
    let first = EntityId(outcome.aggregate_id);
    match state.store.entity(&caller.scope(), first).await? {
        Some(_) => Ok((first, enrich_run_id(command_id), true)),
        None => Err(idempotency_key_reused()),
    }
}
