//! `AppState`: what every handler can reach. Cheap to clone: one `Arc`.
//!
//! Axum clones the state into every request (each handler and each middleware
//! gets its own), so everything lives behind a single `Arc` ([`Shared`]) and a
//! clone is one reference-count increment rather than one per field. Fields are
//! reached through `Deref` (`state.store`, `state.config`, …).

use crate::auth::cache::TokenCache;
use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::routes::health::HealthProbe;
use std::ops::Deref;
use std::sync::Arc;
use synap_ai::Embedder;
use synap_store::{Clock, Store};
use tokio::sync::watch;

#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The contents of [`AppState`].
pub struct Shared {
    pub store: Arc<dyn Store>,
    pub config: Arc<ServerConfig>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    /// Becomes `true` when the server starts shutting down (streams end).
    pub shutdown: watch::Receiver<bool>,
    /// Which database backs the store, for `/health` (`sqlite`, `postgres`).
    pub database: &'static str,
    /// Verified API tokens by prefix, for a few seconds (see `auth::cache`).
    pub tokens: TokenCache,
    /// `/health`'s last database probe (see `routes::health`).
    pub health: HealthProbe,
    /// The embedding model of semantic and hybrid search; `None` when none is
    /// configured (those modes then answer 422 `semantic_unavailable`).
    pub embedder: Option<Arc<dyn Embedder>>,
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// Runs a command on the store, recording its latency and events in the
    /// metrics: the one call write handlers make.
    pub async fn execute(
        &self,
        request: synap_store::CommandRequest,
    ) -> synap_store::StoreResult<synap_store::CommandOutcome> {
        self.metrics.execute(self.store.as_ref(), request).await
    }

    /// State for a store; returns the sender that starts a shutdown.
    pub fn new(
        store: Arc<dyn Store>,
        config: ServerConfig,
        clock: Arc<dyn Clock>,
        database: &'static str,
        embedder: Option<Arc<dyn Embedder>>,
    ) -> (AppState, watch::Sender<bool>) {
        let (shutdown_tx, shutdown) = watch::channel(false);
        let state = AppState(Arc::new(Shared {
            store,
            config: Arc::new(config),
            clock,
            metrics: Arc::new(Metrics::default()),
            shutdown,
            database,
            tokens: TokenCache::default(),
            health: HealthProbe::default(),
            embedder,
        }));
        (state, shutdown_tx)
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}
