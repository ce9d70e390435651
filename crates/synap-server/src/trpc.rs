//! (to be written) The original Synap procedures under `/trpc`.

use crate::state::AppState;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
}
