//! Engine tests on SQLite and PostgreSQL: deterministic (a manual clock, named
//! failure points from `synap_workflow::testing`), with real stores.

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use synap_store::workflow::{NewRun, RunFilter, RunStatus, StepStatus};
use synap_store::{Clock, ManualClock, PageRequest, Scope, Store};
use synap_store_postgres::testing::TestCluster;
use synap_workflow::testing::{self, KEYED_WORKFLOW, STEPS_WORKFLOW, executions};
use synap_workflow::{Registry, Worker, WorkerConfig};
use uuid::Uuid;

const START: &str = "2026-03-01T12:00:00Z";

struct Fixture {
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    owner: Scope,
    dir: tempfile::TempDir,
    _guard: Box<dyn std::any::Any + Send>,
}

impl Fixture {
    async fn sqlite() -> Option<Fixture> {
        let clock = Arc::new(ManualClock::new(START.parse().unwrap()));
        let dir = tempfile::tempdir().unwrap();
        let config = synap_store_sqlite::SqliteConfig {
            clock: clock.clone(),
            ..synap_store_sqlite::SqliteConfig::new(dir.path().join("synap.db"))
        };
        let store = synap_store_sqlite::SqliteStore::open(config).unwrap();
        Some(Fixture::finish(Arc::new(store), clock, Box::new(())).await)
    }

    async fn postgres() -> Option<Fixture> {
        let cluster = TestCluster::shared()?;
        let clock = Arc::new(ManualClock::new(START.parse().unwrap()));
        let config = synap_store_postgres::PostgresConfig {
            clock: clock.clone(),
            ..synap_store_postgres::PostgresConfig::new(cluster.fresh_database())
        };
        let store = synap_store_postgres::PostgresStore::open(config)
            .await
            .unwrap();
        Some(Fixture::finish(Arc::new(store), clock, Box::new(())).await)
    }

    async fn finish(
        store: Arc<dyn Store>,
        clock: Arc<ManualClock>,
        guard: Box<dyn std::any::Any + Send>,
    ) -> Fixture {
        let owner = Scope::user(store.local_owner().await.unwrap().id);
        Fixture {
            store,
            clock,
            owner,
            dir: tempfile::tempdir().unwrap(),
            _guard: guard,
        }
    }

    fn worker(&self, name: &str) -> Worker {
        let mut registry = Registry::new();
        testing::register(&mut registry, self.dir.path().to_path_buf(), name);
        Worker::new(
            self.store.clone(),
            Arc::new(registry),
            self.clock.clone(),
            WorkerConfig::new(name),
        )
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn advance(&self, seconds: i64) {
        self.clock.advance(SignedDuration::from_secs(seconds));
    }

    async fn enqueue(&self, workflow: &str, input: serde_json::Value) -> Uuid {
        self.store
            .enqueue_run(&self.owner, NewRun::new(workflow, input))
            .await
            .unwrap()
            .id
    }

    async fn detail(&self, run: Uuid) -> synap_store::workflow::RunDetail {
        self.store
            .run_detail(&self.owner, run)
            .await
            .unwrap()
            .unwrap()
    }

    fn runs(&self, run: Uuid, step: &str) -> usize {
        executions(self.dir.path(), run, step)
    }
}

async fn a_step_fails_twice_then_succeeds(f: Fixture) {
    let worker = f.worker("w1");
    let run = f.enqueue(STEPS_WORKFLOW, json!({"fail": {"two": 2}})).await;
    let first = worker.tick().await.unwrap();
    assert_eq!(
        (first.claimed, first.steps_succeeded, first.steps_failed),
        (1, 1, 1)
    );
    let detail = f.detail(run).await;
    assert_eq!(detail.run.status, RunStatus::Waiting);
    // The test policy waits 10 s after the first failure, 20 s after the second.
    assert_eq!(
        detail.run.next_attempt_at,
        f.now() + SignedDuration::from_secs(10)
    );
    assert!(
        detail
            .run
            .error
            .as_deref()
            .unwrap()
            .contains("failure 1 of 2")
    );
    f.advance(9);
    assert_eq!(
        worker.tick().await.unwrap().claimed,
        0,
        "the backoff is respected"
    );
    f.advance(1);
    let second = worker.tick().await.unwrap();
    assert_eq!((second.claimed, second.steps_failed), (1, 1));
    assert_eq!(
        f.detail(run).await.run.next_attempt_at,
        f.now() + SignedDuration::from_secs(20)
    );
    f.advance(19);
    assert_eq!(worker.tick().await.unwrap().claimed, 0);
    f.advance(1);
    let third = worker.tick().await.unwrap();
    assert_eq!(
        (third.claimed, third.steps_succeeded, third.runs_succeeded),
        (1, 2, 1)
    );
    let detail = f.detail(run).await;
    assert_eq!(detail.run.status, RunStatus::Succeeded);
    assert_eq!(detail.run.attempt, 3);
    assert_eq!(detail.run.error, None);
    let attempts: Vec<_> = detail
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.attempts))
        .collect();
    assert_eq!(attempts, [("one", 1), ("two", 3), ("three", 1)]);
    assert_eq!(
        detail.steps[1].last_error.as_deref(),
        Some("two: failure 2 of 2")
    );
    // The completed step never ran again.
    assert_eq!(
        (f.runs(run, "one"), f.runs(run, "two"), f.runs(run, "three")),
        (1, 3, 1)
    );
    // Effects get a key derived from run and step.
    assert_eq!(
        detail.steps[2].output.as_ref().unwrap()["key"],
        json!(synap_workflow::idempotency_key(run, "three"))
    );
}

async fn a_non_retryable_error_stops_the_run_at_once(f: Fixture) {
    let worker = f.worker("w1");
    let run = f.enqueue(STEPS_WORKFLOW, json!({"fatal": "two"})).await;
    let report = worker.tick().await.unwrap();
    assert_eq!(report.runs_failed, 1);
    let detail = f.detail(run).await;
    assert_eq!(detail.run.status, RunStatus::Failed);
    assert!(
        detail
            .run
            .error
            .as_deref()
            .unwrap()
            .contains("not retryable")
    );
    assert_eq!(detail.steps[1].status, StepStatus::Failed);
    assert_eq!(detail.steps[1].attempts, 1);
    assert_eq!(f.runs(run, "three"), 0);
    f.advance(3_600);
    assert_eq!(
        worker.tick().await.unwrap().claimed,
        0,
        "a failed run is not retried by itself"
    );
}

async fn out_of_attempts_fails_and_a_retry_resumes_from_the_failed_step(f: Fixture) {
    let worker = f.worker("w1");
    let run = f.enqueue(STEPS_WORKFLOW, json!({"fail": {"two": 3}})).await;
    for _ in 0..3 {
        worker.tick().await.unwrap();
        f.advance(60);
    }
    let detail = f.detail(run).await;
    assert_eq!(detail.run.status, RunStatus::Failed);
    assert!(
        detail
            .run
            .error
            .as_deref()
            .unwrap()
            .contains("after 3 attempts"),
        "{:?}",
        detail.run.error
    );
    // Re-run from the failed step: `one` is memoised, `two` runs (its 4th execution succeeds).
    let retried = f.store.retry_run(&f.owner, run).await.unwrap();
    assert!(matches!(
        retried,
        synap_store::workflow::RetryOutcome::Requeued(_)
    ));
    let report = worker.tick().await.unwrap();
    assert_eq!(report.runs_succeeded, 1);
    assert_eq!(
        (f.runs(run, "one"), f.runs(run, "two"), f.runs(run, "three")),
        (1, 4, 1)
    );
}

async fn a_stalled_workers_late_write_is_rejected(f: Fixture) {
    let gate = f.dir.path().join("gate");
    std::fs::write(&gate, "").unwrap();
    let run = f
        .enqueue(
            STEPS_WORKFLOW,
            json!({"gate": {"two": gate.to_str().unwrap()}}),
        )
        .await;
    // Worker A's heartbeat never comes in time: its lease runs out while `two` stalls.
    let mut registry = Registry::new();
    testing::register(&mut registry, f.dir.path().to_path_buf(), "a");
    let mut config = WorkerConfig::new("a");
    config.heartbeat = Duration::from_secs(3_600);
    let a = Worker::new(f.store.clone(), Arc::new(registry), f.clock.clone(), config);
    let stalled = tokio::spawn(async move { a.tick().await });
    wait_until(|| f.runs(run, "two") == 1).await;
    f.advance(31);
    let b = f.worker("b").tick().await.unwrap();
    assert_eq!((b.claimed, b.runs_succeeded), (1, 1));
    std::fs::remove_file(&gate).unwrap();
    let a = stalled.await.unwrap().unwrap();
    assert_eq!(a.lease_lost, 1, "A's late write was rejected and reported");
    assert_eq!(a.runs_succeeded, 0);
    let detail = f.detail(run).await;
    assert_eq!(detail.run.status, RunStatus::Succeeded);
    assert_eq!(
        detail.steps[1].output.as_ref().unwrap()["worker"],
        json!("b")
    );
    assert_eq!(
        detail.steps[1].output.as_ref().unwrap()["execution"],
        json!(2)
    );
    assert_eq!((f.runs(run, "one"), f.runs(run, "three")), (1, 1));
}

async fn cron_fires_when_due(f: Fixture) {
    let worker = f.worker("w1");
    let schedule = Worker::put_schedule(
        f.store.as_ref(),
        f.clock.as_ref(),
        &f.owner,
        "every-five",
        STEPS_WORKFLOW,
        "*/5 * * * *",
        json!({}),
    )
    .await
    .unwrap();
    assert_eq!(
        schedule.next_fire_at,
        "2026-03-01T12:05:00Z".parse::<Timestamp>().unwrap()
    );
    f.advance(299);
    assert_eq!(worker.tick().await.unwrap().schedules_fired, 0);
    f.advance(1);
    let fired = worker.tick().await.unwrap();
    assert_eq!((fired.schedules_fired, fired.runs_succeeded), (1, 1));
    assert_eq!(
        worker.tick().await.unwrap().schedules_fired,
        0,
        "once per firing"
    );
    f.advance(600);
    assert_eq!(
        worker.tick().await.unwrap().schedules_fired,
        1,
        "missed firings collapse into one"
    );
    let runs = f
        .store
        .list_runs(&f.owner, &RunFilter::default(), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(runs.items.len(), 2);
    assert!(runs.items.iter().all(|r| r.status == RunStatus::Succeeded));
    let bad = Worker::put_schedule(
        f.store.as_ref(),
        f.clock.as_ref(),
        &f.owner,
        "bad",
        STEPS_WORKFLOW,
        "61 * * * *",
        json!({}),
    )
    .await;
    assert!(bad.is_err());
}

async fn the_concurrency_key_limit_holds_under_several_workers(f: Fixture) {
    let mut ids = Vec::new();
    for n in 0..5 {
        let run = NewRun::new(
            KEYED_WORKFLOW,
            json!({"n": n, "sleep_ms": {"one": 40, "two": 40}}),
        )
        .with_concurrency_key("user-key");
        ids.push(f.store.enqueue_run(&f.owner, run).await.unwrap().id);
    }
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let handles: Vec<_> = (0..3)
        .map(|n| {
            let mut config = WorkerConfig::new(format!("w{n}"));
            config.poll_interval = Duration::from_millis(5);
            let mut registry = Registry::new();
            testing::register(&mut registry, f.dir.path().to_path_buf(), &format!("w{n}"));
            tokio::spawn(
                Worker::new(f.store.clone(), Arc::new(registry), f.clock.clone(), config)
                    .with_shutdown(shutdown.clone())
                    .run(),
            )
        })
        .collect();
    let running = RunFilter {
        status: Some(RunStatus::Running),
        ..RunFilter::default()
    };
    let succeeded = RunFilter {
        status: Some(RunStatus::Succeeded),
        ..RunFilter::default()
    };
    let started = std::time::Instant::now();
    let mut most = 0;
    loop {
        let now = f
            .store
            .list_runs(&f.owner, &running, &PageRequest::default())
            .await
            .unwrap();
        most = most.max(now.items.len());
        let done = f
            .store
            .list_runs(&f.owner, &succeeded, &PageRequest::default())
            .await
            .unwrap();
        if done.items.len() == ids.len() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the runs did not finish"
        );
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    stop.send_replace(true);
    for handle in handles {
        handle.await.unwrap();
    }
    assert_eq!(most, 1, "one run of the key at a time");
    for id in ids {
        assert_eq!(f.runs(id, "one"), 1);
    }
}

async fn wait_until(mut condition: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "waited too long"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let fixture = super::Fixture::sqlite().await.unwrap();
                    super::$name(fixture).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(fixture) = super::Fixture::postgres().await else {
                        eprintln!("PostgreSQL is not available: skipped");
                        return;
                    };
                    super::$name(fixture).await;
                }
            )*
        }
    };
}

on_both_backends!(
    a_step_fails_twice_then_succeeds,
    a_non_retryable_error_stops_the_run_at_once,
    out_of_attempts_fails_and_a_retry_resumes_from_the_failed_step,
    a_stalled_workers_late_write_is_rejected,
    cron_fires_when_due,
    the_concurrency_key_limit_holds_under_several_workers,
);
