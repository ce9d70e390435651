//! The OpenAPI 3.1 document, generated from the handlers' annotations
//! (`utoipa`), served at `/openapi.json`, and the Swagger UI at `/docs`, whose
//! assets are compiled into the binary (`utoipa-swagger-ui`'s `vendored` feature:
//! nothing is fetched from a CDN, at build time or at run time).
//!
//! Operations name the security schemes declared here: [`BEARER`] (an API token,
//! `Authorization: Bearer syn_…`) and [`COOKIE`] (the session cookie set by login).
//! Public operations declare `security(())`.

use crate::auth::SESSION_COOKIE;
use crate::routes::dto::Problem;
use crate::state::AppState;
use axum::Router;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder, ServerBuilder};
use utoipa::{PartialSchema, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

/// The name of the API-token security scheme.
pub const BEARER: &str = "bearer";
/// The name of the session-cookie security scheme.
pub const COOKIE: &str = "cookie";
/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/openapi.json";
/// Where the browsable UI is served.
pub const UI_PATH: &str = "/docs";

/// The document's fixed parts (info, servers, security schemes, shared schemas,
/// tags); routes add their paths.
pub fn base() -> OpenApi {
    let components = ComponentsBuilder::new()
        .security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("syn_…")
                    .description(Some(
                        "An API token (`synap token create`, or `POST /v1/tokens`), with the scopes read, write and/or admin.",
                    ))
                    .build(),
            ),
        )
        .security_scheme(
            COOKIE,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The session cookie set by `POST /v1/auth/login` (scopes read and write).",
            ))),
        )
        .schema(Problem::name(), Problem::schema())
        .build();
    let tags = [
        (
            "entities",
            "Notes, tasks, projects, pages, ideas and events; their history, versions and tags.",
        ),
        (
            "attachments",
            "Files attached to entities: streamed upload, ranged download, removal.",
        ),
        (
            "relations",
            "Typed links between entities, backlinks and the graph.",
        ),
        ("search", "Search by words, by meaning, or both."),
        ("capture", "Quick capture of thoughts."),
        ("events", "The caller's event log and its live stream."),
        (
            "vault",
            "Markdown vaults in (a ZIP import) and out (a ZIP export).",
        ),
        (
            "workflows",
            "Durable multi-step runs (AI enrichment, webhooks): their steps, attempts and errors; retry and cancel.",
        ),
        (
            "suggestions",
            "What scheduled workflows propose (a project for a busy tag): accept or dismiss.",
        ),
        (
            "webhooks",
            "Signed (Standard Webhooks) deliveries of chosen event types to your URLs.",
        ),
        (
            "accounts",
            "Registration, login, sessions, the caller and API tokens.",
        ),
        ("operations", "Health, readiness and metrics."),
    ]
    .map(|(name, description)| {
        TagBuilder::new()
            .name(name)
            .description(Some(description))
            .build()
    });
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Synap")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "An event-sourced knowledge backend. Every error is `application/problem+json` with a stable `code`. Lists take `limit` (1 to 500, default 50) and answer `next_cursor` (pass it back as `cursor`). Another user's resource answers exactly like a missing one (404).",
                ))
                .build(),
        )
        .servers(Some([ServerBuilder::new()
            .url("/")
            .description(Some("This server"))
            .build()]))
        .components(Some(components))
        .tags(Some(tags))
        .build()
}

/// `GET /openapi.json` (the finished document) and `/docs` (Swagger UI).
pub fn router(api: OpenApi) -> Router<AppState> {
    Router::from(SwaggerUi::new(UI_PATH).url(DOCUMENT_PATH, api))
}
