//! The HTTP routes, one module per resource. Each returns an `OpenApiRouter` so its
//! handlers' OpenAPI descriptions travel with them.

pub mod attachments;
pub mod capture;
pub mod dto;
pub mod entities;
pub mod events;
pub mod health;
pub mod relations;
pub mod search;
pub mod stream;
pub mod suggestions;
pub mod vault;
pub mod webhooks;
pub mod workflows;

use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(health::router())
        .merge(entities::router())
        .merge(attachments::router())
        .merge(relations::router())
        .merge(search::router())
        .merge(capture::router())
        .merge(events::router())
        .merge(stream::router())
        .merge(vault::router())
        .merge(workflows::router())
        .merge(webhooks::router())
        .merge(suggestions::router())
}
