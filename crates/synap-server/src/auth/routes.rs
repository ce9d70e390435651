//! (to be written) `/v1/auth/register`, `/v1/auth/login`, `/v1/auth/logout`,
//! `/v1/me`, `/v1/tokens`.

use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
