//! `app(state) -> Router`: every route and layer, in one place. `serve` and the
//! in-process tests both use it.
//!
//! Layers, outermost first: security headers and CORS, problem+json for bare
//! errors, panics → 500, body limit (`security::outer`); request metrics
//! (`metrics::track`); authentication (`auth::authenticate`); rate limits
//! (`security::rate_limit`, per user when authenticated, per client IP otherwise).
//! Outside them all, `trpc::problems_as_trpc_errors` re-renders those layers'
//! problem+json failures in tRPC's error shape for requests under `/trpc`.

use crate::error::ApiError;
use crate::state::AppState;
use crate::{auth, metrics, openapi, routes, security, trpc};
use axum::Router;
use axum::middleware::from_fn_with_state;
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
        .layer(from_fn_with_state(state.clone(), security::rate_limit))
        .layer(from_fn_with_state(state.clone(), auth::authenticate))
        .layer(from_fn_with_state(state.clone(), metrics::track))
        .with_state(state.clone());
    security::outer(routes, &state).layer(axum::middleware::from_fn(trpc::problems_as_trpc_errors))
}
