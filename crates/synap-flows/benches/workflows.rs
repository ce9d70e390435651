//! Benchmarks of the workflow engine and `capture.enrich` (issue 5, "Benchmark"):
//! printed figures, each next to a baseline measured in the same run on the same
//! store — not timed tests.
//!
//! ```text
//! cargo bench -p synap-flows --bench workflows
//! SYNAP_BENCH_SCALE=quick cargo bench -p synap-flows --bench workflows
//! SYNAP_BENCH_ONLY=throughput cargo bench -p synap-flows --bench workflows
//! ```
//!
//! Sections (`SYNAP_BENCH_ONLY`, comma-separated):
//! - `throughput`: no-op 3-step runs drained by 4 workers × 8 runs each, on SQLite
//!   and PostgreSQL: runs/s and wall time per step. Baseline: enqueueing the same
//!   runs (one write transaction each) — the store's plain write rate.
//! - `steady`: 100 runs/s enqueued for a while, one worker executing them: CPU
//!   of this whole process (the store's threads included) as a share of one core.
//!   Baseline: the same enqueueing with no worker running.
//! - `capture`: 50 captures/s through the store with the local analyzer and one
//!   worker: capture → enriched latency (the run's enqueueing to its end).
//!
//! PostgreSQL runs on the throwaway cluster of `synap_store_postgres::testing`
//! (skipped when the machine has no PostgreSQL).

use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use synap_domain::EntityId;
use synap_domain::command::{CreateEntity, EntityCommand};
use synap_domain::event::EventMetadata;
use synap_flows::{FlowsConfig, capture_enrich_run};
use synap_store::workflow::{NewRun, RunFilter, RunStatus};
use synap_store::{CommandRequest, PageRequest, Scope, Store, SystemClock, Target};
use synap_workflow::engine::NoObserver;
use synap_workflow::{Registry, StepError, WorkerConfig, Workflow, spawn_workers};
use tokio::sync::watch;
use uuid::Uuid;

const NOOP: &str = "bench.noop";
/// A workflow no worker runs: the baseline's runs.
const UNCLAIMED: &str = "bench.unclaimed";

struct Scale {
    name: &'static str,
    throughput_runs: usize,
    steady_window: Duration,
    capture_window: Duration,
}

impl Scale {
    fn from_env() -> Scale {
        match std::env::var("SYNAP_BENCH_SCALE").as_deref() {
            Ok("quick") => Scale {
                name: "quick",
                throughput_runs: 500,
                steady_window: Duration::from_secs(3),
                capture_window: Duration::from_secs(3),
            },
            _ => Scale {
                name: "full",
                throughput_runs: 5_000,
                steady_window: Duration::from_secs(10),
                capture_window: Duration::from_secs(10),
            },
        }
    }
}

fn wanted(section: &str) -> bool {
    match std::env::var("SYNAP_BENCH_ONLY") {
        Ok(list) if !list.trim().is_empty() => list.split(',').any(|s| s.trim() == section),
        _ => true,
    }
}

/// This process's CPU time (user + system), from `/proc/self/stat`.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let ticks = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            let fields: Vec<u64> = rest
                .split_whitespace()
                .skip(1)
                .map(|f| f.parse().unwrap_or(0))
                .collect();
            fields.get(10).copied().unwrap_or(0) + fields.get(11).copied().unwrap_or(0)
        })
        .unwrap_or(0);
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort();
    samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)]
}

fn noop_registry() -> Registry {
    let mut workflow = Workflow::new(NOOP);
    for step in ["one", "two", "three"] {
        workflow = workflow.step(step, |_| async { Ok::<_, StepError>(json!(null)) });
    }
    let mut registry = Registry::new();
    registry.register(workflow);
    registry
}

struct Backend {
    name: &'static str,
    store: Arc<dyn Store>,
    owner: Scope,
    _guard: Box<dyn std::any::Any>,
}

async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let store = synap_store_sqlite::SqliteStore::open(synap_store_sqlite::SqliteConfig::new(
        dir.path().join("synap.db"),
    ))
    .expect("SQLite opens");
    let store: Arc<dyn Store> = Arc::new(store);
    let owner = Scope::user(store.local_owner().await.unwrap().id);
    Backend {
        name: "SQLite",
        store,
        owner,
        _guard: Box::new(dir),
    }
}

async fn postgres() -> Option<Backend> {
    let cluster = synap_store_postgres::testing::TestCluster::shared()?;
    let store = synap_store_postgres::PostgresStore::open(
        synap_store_postgres::PostgresConfig::new(cluster.fresh_database()),
    )
    .await
    .expect("PostgreSQL opens");
    let store: Arc<dyn Store> = Arc::new(store);
    let owner = Scope::user(store.local_owner().await.unwrap().id);
    Some(Backend {
        name: "PostgreSQL",
        store,
        owner,
        _guard: Box::new(()),
    })
}

fn workers(
    backend: &Backend,
    registry: Registry,
    count: usize,
    concurrency: u32,
) -> (
    Vec<tokio::task::JoinHandle<synap_workflow::TickReport>>,
    watch::Sender<bool>,
) {
    let (stop, stopped) = watch::channel(false);
    let config = WorkerConfig {
        concurrency,
        poll_interval: Duration::from_millis(20),
        ..WorkerConfig::new(format!("bench-{}", Uuid::now_v7().simple()))
    };
    let handles = spawn_workers(
        backend.store.clone(),
        Arc::new(registry),
        Arc::new(SystemClock),
        &config,
        count,
        Arc::new(NoObserver),
        stopped,
    );
    (handles, stop)
}

async fn stop(
    handles: Vec<tokio::task::JoinHandle<synap_workflow::TickReport>>,
    stop: watch::Sender<bool>,
) {
    stop.send_replace(true);
    for handle in handles {
        let _ = handle.await;
    }
}

async fn count_runs(backend: &Backend, status: RunStatus, workflow: &str) -> usize {
    let mut total = 0;
    let mut cursor = None;
    loop {
        let page = backend
            .store
            .list_runs(
                &backend.owner,
                &RunFilter {
                    status: Some(status),
                    workflow: Some(workflow.into()),
                },
                &PageRequest {
                    limit: Some(500),
                    cursor,
                },
            )
            .await
            .unwrap();
        total += page.items.len();
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return total,
        }
    }
}

async fn throughput(backend: &Backend, runs: usize) {
    // Baseline: enqueueing, one write transaction per run, 8 writers.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let store = backend.store.clone();
        let owner = backend.owner;
        tasks.push(tokio::spawn(async move {
            for _ in (writer..runs).step_by(8) {
                store
                    .enqueue_run(&owner, NewRun::new(NOOP, json!({})))
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let enqueue_rate = runs as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let (handles, stopper) = workers(backend, noop_registry(), 4, 8);
    loop {
        if count_runs(backend, RunStatus::Succeeded, NOOP).await >= runs {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = started.elapsed();
    stop(handles, stopper).await;
    let rate = runs as f64 / wall.as_secs_f64();
    println!(
        "{:<11} no-op 3-step runs: {:>7.0} runs/s ({} runs in {:.2} s), {:>6.0} µs wall per step; baseline enqueue {:>7.0} writes/s (runs/s ÷ baseline {:.2})",
        backend.name,
        rate,
        runs,
        wall.as_secs_f64(),
        wall.as_secs_f64() * 1e6 / (runs as f64 * 3.0),
        enqueue_rate,
        rate / enqueue_rate,
    );
}

/// Enqueues `per_second` runs of `workflow` per second for `window`; answers the
/// runs sent and the CPU this process used meanwhile.
async fn paced_enqueue(
    backend: &Backend,
    workflow: &str,
    per_second: u32,
    window: Duration,
) -> (usize, Duration) {
    let cpu = process_cpu();
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / per_second);
    let mut sent = 0;
    while started.elapsed() < window {
        ticker.tick().await;
        backend
            .store
            .enqueue_run(&backend.owner, NewRun::new(workflow, json!({})))
            .await
            .unwrap();
        sent += 1;
    }
    (sent, process_cpu().saturating_sub(cpu))
}

async fn steady(backend: &Backend, window: Duration) {
    // Baseline: runs of a workflow no worker runs (they stay queued).
    let (_, idle_cpu) = paced_enqueue(backend, UNCLAIMED, 100, window).await;
    let (handles, stopper) = workers(backend, noop_registry(), 1, 8);
    let (sent, busy_cpu) = paced_enqueue(backend, NOOP, 100, window).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop(handles, stopper).await;
    let share = |cpu: Duration| cpu.as_secs_f64() / window.as_secs_f64() * 100.0;
    println!(
        "{:<11} steady 100 runs/s ({sent} runs): process CPU {:>5.1} % of one core with a worker executing them; baseline enqueueing alone {:>5.1} %; the engine's own share {:>5.1} %",
        backend.name,
        share(busy_cpu),
        share(idle_cpu),
        share(busy_cpu.saturating_sub(idle_cpu)),
    );
}

async fn capture(backend: &Backend, window: Duration) {
    let config = FlowsConfig {
        analyzer: Arc::new(synap_ai::LocalAnalyzer::new()),
        time_zone: jiff::tz::TimeZone::UTC,
        embedder: None,
        webhooks: Default::default(),
    };
    let registry = synap_flows::registry(backend.store.clone(), Arc::new(SystemClock), &config);
    let (handles, stopper) = workers(backend, registry, 1, 8);
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    let started = Instant::now();
    let mut ids = Vec::new();
    let mut n = 0;
    while started.elapsed() < window {
        ticker.tick().await;
        n += 1;
        let id = EntityId::new_v7();
        let command_id = Uuid::now_v7();
        let run = capture_enrich_run(id, command_id);
        ids.push(run.id);
        let text = format!("Call the plumber about the kitchen sink tomorrow at 9am #{n}");
        backend
            .store
            .execute(CommandRequest {
                scope: backend.owner,
                command_id,
                target: Target::Entity {
                    id,
                    command: EntityCommand::Create(CreateEntity::note(text)),
                },
                expected_version: None,
                metadata: EventMetadata::default(),
                triggers: vec![run],
            })
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop(handles, stopper).await;
    let mut latencies = Vec::new();
    let mut unfinished = 0;
    for id in ids {
        let detail = backend
            .store
            .run_detail(&backend.owner, id)
            .await
            .unwrap()
            .unwrap();
        match detail.run.finished_at {
            Some(end) if detail.run.status == RunStatus::Succeeded => latencies.push(
                end.duration_since(detail.run.created_at)
                    .try_into()
                    .unwrap_or_default(),
            ),
            _ => unfinished += 1,
        }
    }
    let count = latencies.len();
    println!(
        "{:<11} capture → enriched at 50/s (local analyzer, {count} captures, {unfinished} unfinished): p50 {:.1} ms, p99 {:.1} ms",
        backend.name,
        percentile(&mut latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&mut latencies, 0.99).as_secs_f64() * 1e3,
    );
}

#[tokio::main]
async fn main() {
    let scale = Scale::from_env();
    println!(
        "workflow benchmarks ({} scale), {} CPUs",
        scale.name,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut backends = vec![sqlite().await];
    match postgres().await {
        Some(backend) => backends.push(backend),
        None => println!("PostgreSQL: skipped (no PostgreSQL server binaries)"),
    }
    for backend in &backends {
        if wanted("throughput") {
            throughput(backend, scale.throughput_runs).await;
        }
        if wanted("steady") {
            steady(backend, scale.steady_window).await;
        }
        if wanted("capture") {
            capture(backend, scale.capture_window).await;
        }
    }
}
