//! (to be written) The security layer of `API.md`.

use crate::state::AppState;
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// Wraps the finished router: security headers, CORS, problem+json for bare
/// errors, panics → 500, body limit.
pub fn outer(router: Router, state: &AppState) -> Router {
    let _ = state;
    router
}

/// Rate limits: per user for authenticated requests (except `/v1/auth/*`), per
/// client IP otherwise.
pub async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let _ = state;
    next.run(request).await
}
