//! Synap's workflows (layer 3 of `ARCHITECTURE.md`): the multi-step work the
//! product runs on the engine of `synap-workflow`.
//!
//! - [`enrich`]: `capture.enrich` — analyse a captured thought (title, tags, type,
//!   due date and priority) and apply the result as ordinary events.
//!
//! [`registry`] builds the set that `synap serve` and `synap worker` run, from the
//! configured AI providers.

pub mod enrich;

use jiff::tz::TimeZone;
use std::sync::Arc;
use synap_ai::Analyzer;
use synap_store::{Clock, Store};
use synap_workflow::Registry;

pub use enrich::{CAPTURE_ENRICH, capture_enrich_run};

/// What the workflows need from the process that runs them.
#[derive(Debug, Clone)]
pub struct FlowsConfig {
    pub analyzer: Arc<dyn Analyzer>,
    /// Where relative dates in captured text resolve (`SYNAP_TIME_ZONE`).
    pub time_zone: TimeZone,
}

/// Every workflow of the product, on `store`.
pub fn registry(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: &FlowsConfig) -> Registry {
    let mut registry = Registry::new();
    registry.register(enrich::capture_enrich(Arc::new(enrich::EnrichContext {
        store,
        analyzer: config.analyzer.clone(),
        clock,
        time_zone: config.time_zone.clone(),
    })));
    registry
}
