//! `/v1/webhooks`: the caller's webhook subscriptions — create (the signing secret
//! is shown once, in the answer), list, read (with how deliveries have gone and,
//! when disabled, why), delete. Deliveries themselves are workflow runs
//! (`webhook.deliver`, see `synap_flows::webhooks`), visible under
//! `/v1/workflows/runs?workflow=webhook.deliver`.

use super::dto::{BodyErrors, CanRead, CanWrite, CommonErrors, Problem};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use jiff::Timestamp;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use synap_flows::webhooks::{SECRET_BYTES, subscription};
use synap_store::webhooks::{NewWebhook, Webhook as StoredWebhook};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(get_webhook, delete_webhook))
}

/// A subscription to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where to POST: `http(s)://host/path`, at most 2,000 characters. Private,
    /// loopback and link-local targets are refused unless the operator allows them.
    pub url: String,
    /// Event types to deliver (`entity.created`, `entity.tags_changed`, …), or
    /// `["*"]` for all; 1 to 50.
    pub event_types: Vec<String>,
    /// A note for yourself, at most 200 characters.
    #[serde(default)]
    pub description: Option<String>,
}

/// A subscription and how its deliveries have gone.
#[derive(Debug, Serialize, ToSchema)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    pub event_types: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// `active`, or `disabled` after repeated failed deliveries (see
    /// `disabled_reason`); a disabled subscription receives nothing until it is
    /// made again.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub disabled_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Failed delivery attempts since the last success.
    pub consecutive_failures: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_attempt_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_success_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl From<StoredWebhook> for Webhook {
    fn from(w: StoredWebhook) -> Self {
        Webhook {
            id: w.id,
            url: w.url,
            event_types: w.event_types,
            description: w.description,
            created_at: w.created_at,
            status: if w.disabled_at.is_some() {
                "disabled"
            } else {
                "active"
            },
            disabled_at: w.disabled_at,
            disabled_reason: w.disabled_reason,
            consecutive_failures: w.consecutive_failures,
            last_attempt_at: w.last_attempt_at,
            last_success_at: w.last_success_at,
            last_error: w.last_error,
        }
    }
}

/// A new subscription with its signing secret — shown only here, so keep it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// The Standard Webhooks secret (`whsec_…`): verify `webhook-signature` with it.
    pub secret: String,
}

/// The caller's subscriptions, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub items: Vec<Webhook>,
}

/// Subscribe a URL to event types.
///
/// Each matching event is POSTed as JSON (`type`, `timestamp`, `data`: the event's
/// envelope and delta), signed per Standard Webhooks with the returned secret
/// (headers `webhook-id`, `webhook-timestamp`, `webhook-signature`). Failed
/// deliveries are retried with backoff; after repeated failures the subscription
/// is disabled, with the reason.
#[utoipa::path(
    post,
    path = "/v1/webhooks",
    tag = "webhooks",
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "The subscription, with its secret (shown once).", body = CreatedWebhook),
        (status = 400, description = "Malformed JSON (`malformed_json`), or the subscription limit is reached (`invalid_input`).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown field, a bad URL, a refused (private) target, or an unknown event type (`validation_failed`, with `field`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
        BodyErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn create_webhook(
    CanWrite(caller): CanWrite,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> ApiResult<(StatusCode, Json<CreatedWebhook>)> {
    let new = fresh_subscription(
        body.url,
        body.event_types,
        body.description,
        state.config.webhook_allow_private,
    )
    .map_err(|reason| ApiError::validation("url", reason))?;
    let made = state.store.create_webhook(&caller.scope(), new).await?;
    let secret = made.secret.clone();
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            webhook: made.into(),
            secret,
        }),
    ))
}

/// A subscription to create, with a signing secret from the operating system's
/// generator (see `synap_flows::webhooks::subscription`); `synap webhook add`
/// makes its subscriptions through this too. `Err`: the target is refused.
pub fn fresh_subscription(
    url: String,
    event_types: Vec<String>,
    description: Option<String>,
    allow_private: bool,
) -> Result<NewWebhook, String> {
    let mut random = [0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut random);
    subscription(url, event_types, description, allow_private, random)
}

/// List the caller's subscriptions.
#[utoipa::path(
    get,
    path = "/v1/webhooks",
    tag = "webhooks",
    responses(
        (status = 200, description = "Every subscription of the caller, oldest first.", body = WebhookList),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn list_webhooks(
    CanRead(caller): CanRead,
    State(state): State<AppState>,
) -> ApiResult<Json<WebhookList>> {
    let all = state.store.webhooks(&caller.scope()).await?;
    Ok(Json(WebhookList {
        items: all.into_iter().map(Into::into).collect(),
    }))
}

fn no_such_webhook() -> ApiError {
    ApiError::not_found("there is no such webhook subscription")
}

/// One subscription, with how its deliveries have gone.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "The subscription's id.")),
    responses(
        (status = 200, description = "The subscription.", body = Webhook),
        (status = 400, description = "A malformed id (`invalid_id`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription (or it belongs to someone else) (`not_found`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn get_webhook(
    CanRead(caller): CanRead,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Webhook>> {
    let found = state
        .store
        .webhook(&caller.scope(), id)
        .await?
        .ok_or_else(no_such_webhook)?;
    Ok(Json(found.into()))
}

/// Delete a subscription; deliveries still queued for it are skipped.
#[utoipa::path(
    delete,
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "The subscription's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "A malformed id (`invalid_id`).", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription (`not_found`).", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ),
    security(("bearer" = []), ("cookie" = [])),
)]
async fn delete_webhook(
    CanWrite(caller): CanWrite,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    if state.store.delete_webhook(&caller.scope(), id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_such_webhook())
    }
}
