//! Synap's HTTP API (layer 4 of `ARCHITECTURE.md`): CRUD written directly to the
//! store and answered at once, every request acting in its caller's scope.
//!
//! - [`config`]: the server's typed settings (one `Default`, secrets redacted).
//! - [`state`]: what every handler can reach (`AppState`).
//! - [`error`]: the one API error type and its code table → `application/problem+json`;
//!   [`extract`]: body, query and path extractors that fail with it.
//! - [`metrics`]: request, commit and stream figures for `/metrics`.
//! - [`auth`]: who is calling (API token or session cookie), scopes, passwords.
//! - [`routes`]: the `/v1` routes, `/health`, `/ready`, `/metrics`.
//! - [`security`]: rate limits, security headers, CORS, body limit, client IP.
//! - [`trpc`]: the original Synap procedures in tRPC's wire format.
//! - [`openapi`]: the OpenAPI 3.1 document and the `/docs` UI.
//! - [`app`]: `app(state) -> Router`, used by `serve` and by in-process tests.
//! - [`serve`]: binding, graceful shutdown.

pub mod app;
pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod security;
pub mod serve;
pub mod state;
pub mod trpc;

pub use app::app;
pub use config::ServerConfig;
pub use serve::serve;
pub use state::AppState;
