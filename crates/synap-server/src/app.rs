//! `app(state) -> Router`: every route and layer, in one place. `serve` and the
//! in-process tests both use it.
//!
//! Layers, outermost first: `trpc::problems_as_trpc_errors` (re-renders the
//! layers' problem+json failures in tRPC's error shape for requests under
//! `/trpc`); security headers and CORS, problem+json for bare errors, panics →
//! 500, body limit (`security::Outer`); then, inside the router, request metrics
//! (`metrics::track`), authentication (`auth::authenticate`) and rate limits
//! (`security::rate_limited_or`, per user when authenticated, per client IP
//! otherwise).
//!
//! How they are attached matters for speed: `Router::layer` wraps every route
//! separately, and a `from_fn` layer clones everything below it on each request,
//! so nine such layers cloned and dropped the whole stack many times per request.
//! The outer layers are therefore one service around the finished router
//! (`security::Outer`), and the three that need the matched route (the metrics'
//! `route` label) are one per-route middleware ([`per_route`]).

use crate::error::ApiError;
use crate::security::{Outer, SecurityState};
use crate::state::AppState;
use crate::{auth, metrics, openapi, routes, security, trpc};
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;

/// Every documented route, with its OpenAPI description.
pub fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .merge(routes::router())
        .merge(auth::routes::router())
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    let (documented, api) = documented_routes().split_for_parts();
    let routes = Router::new()
        .merge(documented)
        .merge(openapi::router(api))
        .nest("/trpc", trpc::router())
        .fallback(|| async { ApiError::not_found("no such route; see /docs for the API") })
        .layer(from_fn_with_state(state.clone(), per_route))
        .with_state(state.clone());
    let security = Arc::new(SecurityState::new(&state.config, state.clock.clone()));
    Outer::new(routes, security)
        .with_trpc_errors()
        .into_router()
}

/// Metrics, then authentication, then the rate limit, around the handler: one
/// middleware, so one clone of the route and the state per request.
pub async fn per_route(State(state): State<AppState>, request: Request, next: Next) -> Response {
    metrics::track(&state, request, |request| {
        auth::authenticate(&state, request, |request| {
            security::rate_limited_or(&state, request, |request| next.run(request))
        })
    })
    .await
}
