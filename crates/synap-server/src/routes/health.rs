//! `GET /health`, `GET /ready`, `GET /metrics`: public, unversioned, for people,
//! load balancers and Prometheus.
//!
//! - `/health` is liveness: 200 while the process answers, with the original
//!   Synap fields (`status`, `timestamp`, `version`, `mode`, `auth`) plus
//!   `database` (which backend, and whether it answered a query within the last
//!   [`HEALTH_PROBE_MAX_AGE`]). When the database does not answer, `status` is
//!   `degraded` (still 200: the process is alive; `/ready` is the gate). The
//!   probe's result is reused for that long ([`HealthProbe`]) so that a busy
//!   health checker does not cost a database round trip per call (it nearly
//!   halved `/health`'s rate).
//! - `/ready` is readiness: 200 once the store answers (migrations ran when the
//!   store opened), 503 problem+json when it does not or while shutting down.
//! - `/metrics` is the Prometheus text of [`crate::metrics`].
//!
//! `mode` describes how accounts come to exist: `multi-user` when open
//! registration is on (anyone may create an account), `single-user` otherwise
//! (the local owner, plus accounts the operator adds with `synap user add`).
//! Every request is authenticated and scoped to its user in both modes.

use crate::error::ApiError;
use crate::metrics;
use crate::routes::dto::Problem;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::Mutex;
use std::time::Duration;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// How long `/health` and `/ready` wait for the database's answer.
pub const DATABASE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long `/health` reuses a database probe's result.
pub const HEALTH_PROBE_MAX_AGE: Duration = Duration::from_secs(1);

/// `/health`'s last database probe: when (injected clock) and whether it answered.
#[derive(Debug, Default)]
pub struct HealthProbe(Mutex<Option<(jiff::Timestamp, bool)>>);

impl HealthProbe {
    /// The last result, if it is younger than [`HEALTH_PROBE_MAX_AGE`] (a clock
    /// that went backwards makes it stale).
    fn recent(&self, now: jiff::Timestamp) -> Option<bool> {
        let last = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        last.and_then(|(at, answers)| {
            let age = now.duration_since(at);
            (!age.is_negative() && age.unsigned_abs() < HEALTH_PROBE_MAX_AGE).then_some(answers)
        })
    }

    fn record(&self, at: jiff::Timestamp, answers: bool) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((at, answers));
    }
}

/// What `/health` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` when the database does not answer.
    #[schema(example = "ok")]
    pub status: &'static str,
    /// The server's time (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub timestamp: jiff::Timestamp,
    /// The server's version.
    pub version: &'static str,
    /// `multi-user` when open registration is on, `single-user` otherwise.
    #[schema(example = "single-user")]
    pub mode: &'static str,
    /// How callers authenticate: API tokens and session cookies.
    #[schema(example = "token+session")]
    pub auth: &'static str,
    pub database: DatabaseHealth,
}

/// The database behind the store.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseHealth {
    /// `sqlite` or `postgres`.
    #[schema(example = "sqlite")]
    pub backend: &'static str,
    /// `ok`, or `unavailable` when a query failed or timed out.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// What `/ready` answers when ready.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    #[schema(example = "ready")]
    pub status: &'static str,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics_text))
}

/// Whether the store answers a small indexed query within the probe timeout.
async fn database_answers(state: &AppState) -> bool {
    matches!(
        tokio::time::timeout(DATABASE_PROBE_TIMEOUT, state.store.local_owner()).await,
        Ok(Ok(_))
    )
}

/// Liveness and a summary of the server.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses((status = 200, description = "The server is alive", body = Health)),
    security(()),
)]
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    let now = state.clock.now();
    // Concurrent calls just after the result aged out may each probe once; that
    // is bounded by the number of callers at that instant and needs no lock held
    // across the probe.
    let answers = match state.health.recent(now) {
        Some(answers) => answers,
        None => {
            let answers = database_answers(&state).await;
            state.health.record(now, answers);
            answers
        }
    };
    Json(Health {
        status: if answers { "ok" } else { "degraded" },
        timestamp: state.clock.now(),
        version: env!("CARGO_PKG_VERSION"),
        mode: if state.config.allow_registration {
            "multi-user"
        } else {
            "single-user"
        },
        auth: "token+session",
        database: DatabaseHealth {
            backend: state.database,
            status: if answers { "ok" } else { "unavailable" },
        },
    })
}

/// Readiness: 200 once the database answers; 503 otherwise and while shutting down.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Ready),
        (status = 503, description = "Not ready: the database does not answer, or the server is shutting down (`not_ready`).", body = Problem, content_type = "application/problem+json"),
    ),
    security(()),
)]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    let unavailable = |detail: &str| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", detail)
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
    };
    if *state.shutdown.borrow() {
        return Err(unavailable("the server is shutting down"));
    }
    if !database_answers(&state).await {
        return Err(unavailable("the database does not answer yet"));
    }
    Ok(Json(Ready { status: "ready" }))
}

/// Request, command, stream, workflow and search-index figures in the Prometheus
/// text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4",
        body = String, content_type = "text/plain")),
    security(()),
)]
pub async fn metrics_text(State(state): State<AppState>) -> Response {
    let mut text = state.metrics.render();
    // Across every process on the database; left out while the database does not
    // answer (the scrape still shows this process's own figures).
    if let Ok(depth) = state.store.queue_depth().await {
        metrics::render_queue_depth(&mut text, &depth);
    }
    if let Some(embedder) = &state.embedder
        && let Ok(status) = state.store.index_status(embedder.model_id()).await
    {
        metrics::render_index_status(&mut text, embedder.model_id(), status);
    }
    (
        [
            (header::CONTENT_TYPE, metrics::CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response()
}
