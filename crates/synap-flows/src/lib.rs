//! Synap's workflows (layer 3 of `ARCHITECTURE.md`): the multi-step work the
//! product runs on the engine of `synap-workflow`.
//!
//! - [`enrich`]: `capture.enrich` — analyse a captured thought (title, tags, type,
//!   due date and priority), apply the result as ordinary events, and index the
//!   note for semantic search.
//! - [`index`]: the search indexer — keeps every live entity's vectors current
//!   for the configured embedding model, in the background (not a workflow: one
//!   idempotent loop over derived data).
//! - [`insights`]: `insights.suggest` — the hourly insight job: a tag put on 3+
//!   entities within a day that no project carries becomes a suggestion; and
//!   accepting one (the project and its `contains` links).
//! - [`search`]: search in full-text, semantic and hybrid modes, for the HTTP API
//!   and the CLI.
//! - [`webhooks`]: `webhook.deliver` — one signed POST per event and subscription
//!   (enqueued by the command pipeline), with the SSRF check, retries and
//!   disabling after repeated failures.
//!
//! [`registry`] builds the set that `synap serve` and `synap worker` run, from the
//! configured AI providers.

pub mod enrich;
pub mod index;
pub mod insights;
pub mod search;
pub mod webhooks;

use jiff::tz::TimeZone;
use std::sync::Arc;
use synap_ai::{Analyzer, Embedder};
use synap_store::{Clock, Store};
use synap_workflow::Registry;

pub use enrich::{CAPTURE_ENRICH, capture_enrich_run};
pub use index::Indexer;
pub use search::{SearchError, SearchMode, search};

/// What the workflows need from the process that runs them.
#[derive(Debug, Clone)]
pub struct FlowsConfig {
    pub analyzer: Arc<dyn Analyzer>,
    /// Where relative dates in captured text resolve (`SYNAP_TIME_ZONE`).
    pub time_zone: TimeZone,
    /// The embedding model for semantic search, if one is configured.
    pub embedder: Option<Arc<dyn Embedder>>,
    /// How webhook deliveries behave.
    pub webhooks: webhooks::WebhookConfig,
}

/// Every workflow of the product, on `store`.
pub fn registry(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: &FlowsConfig) -> Registry {
    let mut registry = Registry::new();
    let indexer = config
        .embedder
        .clone()
        .map(|embedder| index::Indexer::new(store.clone(), embedder));
    registry.register(insights::insights_suggest(store.clone(), clock.clone()));
    registry.register(webhooks::webhook_deliver(Arc::new(
        webhooks::DeliveryContext {
            store: store.clone(),
            clock: clock.clone(),
            config: config.webhooks.clone(),
        },
    )));
    registry.register(enrich::capture_enrich(Arc::new(enrich::EnrichContext {
        store,
        indexer,
        analyzer: config.analyzer.clone(),
        clock,
        time_zone: config.time_zone.clone(),
    })));
    registry
}

/// An id derived from `base` and a purpose: the same every time, so a step or an
/// accept that runs again replays its commands (or finds its runs) instead of
/// making new ones. A version-8 (custom) UUID (RFC 9562) from SHA-256.
pub(crate) fn derived_id(base: uuid::Uuid, purpose: &[u8]) -> uuid::Uuid {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(base.as_bytes())
        .chain_update(purpose)
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(bytes)
}
