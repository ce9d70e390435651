//! Running workflows in this process: the product's workflows
//! (`synap_flows::registry`) on workers of `synap_workflow`, started by
//! `synap serve` (in the same process as the HTTP API) and by `synap worker` (a
//! process of its own). Both stop between steps on shutdown: a run in the middle
//! of a step finishes that step or, past the grace period, is left to its lease
//! and picked up by another worker.
//!
//! With an embedding model configured, the same processes also run the search
//! indexer (`synap_flows::Indexer`), which keeps vectors current in the background.

use crate::error::CliError;
use crate::settings::WorkflowSettings;
use std::sync::Arc;
use std::time::Duration;
use synap_ai::Embedder;
use synap_flows::Indexer;
use synap_store::{Clock, Store};
use synap_workflow::engine::owner_name;
use synap_workflow::testing::TEST_WORKFLOWS_ENV;
use synap_workflow::{Observer, Registry, TickReport, WorkerConfig, spawn_workers};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Longest the workers get to finish their current steps after shutdown began.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// How often the maintenance loop runs: the schedules every user has (the
/// insight job) are given to users who lack them — new users get theirs within
/// this time — and finished runs past their retention are deleted.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);
/// Most purge batches (of `PURGE_BATCH_MAX` runs) per maintenance pass, so a
/// first purge of a long history is spread over several passes.
pub const PURGE_BATCHES_PER_PASS: u32 = 10;

/// The configured embedding model, loaded (a local model's files are read here,
/// so a bad setting stops the start with one line); `None` when there is none.
pub fn embedder(settings: &WorkflowSettings) -> Result<Option<Arc<dyn Embedder>>, CliError> {
    synap_ai::build_embedder(&settings.embedding)
        .map_err(|e| CliError::usage(format!("{e}; see SYNAP_EMBEDDING_* in the README")))
}

/// What this process runs: the product's workflows (plus the test workflows when
/// [`TEST_WORKFLOWS_ENV`] names a directory, for process-level tests) and the
/// embedding model they, the indexer and search share.
pub struct Flows {
    pub registry: Registry,
    pub embedder: Option<Arc<dyn Embedder>>,
}

/// Builds [`Flows`] from the settings; a bad AI or embedding setting is one line.
pub fn flows(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings: &WorkflowSettings,
) -> Result<Flows, CliError> {
    let embedder = embedder(settings)?;
    let analyzer = synap_ai::build_analyzer(&settings.analyzer)
        .map_err(|e| CliError::usage(format!("{e}; see SYNAP_AI_* in the README")))?;
    let config = synap_flows::FlowsConfig {
        analyzer,
        time_zone: settings.time_zone.clone(),
        embedder: embedder.clone(),
        webhooks: settings.webhooks.clone(),
    };
    let mut registry = synap_flows::registry(store, clock, &config);
    if let Some(dir) = std::env::var_os(TEST_WORKFLOWS_ENV) {
        synap_workflow::testing::register(&mut registry, dir.into(), &owner_name(0));
    }
    Ok(Flows { registry, embedder })
}

/// Workers (and the search indexer, if any) running in this process.
#[derive(Debug)]
pub struct Workers {
    handles: Vec<JoinHandle<TickReport>>,
    indexer: Option<JoinHandle<()>>,
    maintenance: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl Workers {
    /// Starts `count` workers on `registry`, and the search indexer when an
    /// embedding model is given.
    pub fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        flows: Flows,
        settings: &WorkflowSettings,
        count: usize,
        observer: Arc<dyn Observer>,
    ) -> Workers {
        let Flows { registry, embedder } = flows;
        let (stop, stopped) = watch::channel(false);
        let indexer = embedder.map(|embedder| {
            tokio::spawn(Indexer::new(store.clone(), embedder).run(stopped.clone()))
        });
        let maintenance = tokio::spawn(maintain(
            store.clone(),
            clock.clone(),
            settings.retention,
            stopped.clone(),
        ));
        let base = WorkerConfig::new(owner_name(0)).with_lease(settings.lease);
        let handles = spawn_workers(
            store,
            Arc::new(registry),
            clock,
            &base,
            count,
            observer,
            stopped,
        );
        Workers {
            handles,
            indexer,
            maintenance,
            stop,
        }
    }

    pub fn count(&self) -> usize {
        self.handles.len()
    }

    /// Asks every worker to stop between steps and waits for them, at most
    /// [`STOP_GRACE`]; workers still inside a step then are abandoned (their runs
    /// come back when the lease expires). Answers what they did in total.
    pub async fn stop(self) -> TickReport {
        self.stop.send_replace(true);
        let mut total = TickReport::default();
        let waiting = async {
            for handle in self.handles {
                if let Ok(report) = handle.await {
                    total.add(&report);
                }
            }
            if let Some(indexer) = self.indexer {
                let _ = indexer.await;
            }
            let _ = self.maintenance.await;
        };
        let _ = tokio::time::timeout(STOP_GRACE, waiting).await;
        total
    }
}

/// The maintenance loop, now and every [`MAINTENANCE_INTERVAL`] until `stop`
/// turns true: gives every user the schedules every user has
/// (`synap_flows::insights`), and deletes the runs that finished more than
/// `retention` ago (`None`: never). Every process runs it; the store's writes
/// make doing it twice harmless.
async fn maintain(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    retention: Option<Duration>,
    mut stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        let spec = synap_flows::insights::insights_schedule(clock.now());
        if let Err(error) = store.ensure_schedules(&spec).await {
            eprintln!(
                "synap: cannot give users their {} schedule: {error}",
                spec.name
            );
        }
        if let Some(retention) = retention {
            purge_finished_runs(store.as_ref(), clock.now(), retention).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(MAINTENANCE_INTERVAL) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Deletes runs that finished more than `retention` before `now`, batch by
/// batch, at most [`PURGE_BATCHES_PER_PASS`] batches.
async fn purge_finished_runs(store: &dyn Store, now: jiff::Timestamp, retention: Duration) {
    let Some(cutoff) = jiff::SignedDuration::try_from(retention)
        .ok()
        .and_then(|keep| now.checked_sub(keep).ok())
    else {
        return; // A retention longer than history: nothing is old enough.
    };
    let batch = synap_store::workflow::PURGE_BATCH_MAX;
    for _ in 0..PURGE_BATCHES_PER_PASS {
        match store.purge_finished_runs(cutoff, batch).await {
            Ok(purged) if purged == u64::from(batch) => continue,
            Ok(_) => return,
            Err(error) => {
                eprintln!("synap: cannot delete old workflow runs: {error}");
                return;
            }
        }
    }
}
