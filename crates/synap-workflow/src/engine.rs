//! The worker: claims runs, executes their next steps outside any transaction,
//! and records each result with a fenced write.
//!
//! One pass ([`Worker::tick`]): fire due cron schedules; claim up to
//! `concurrency` runs with a lease; execute them side by side. For each run the
//! steps are walked in order; a step whose output is stored is skipped (its
//! output is handed on), the next one runs under its timeout while a heartbeat
//! keeps the lease alive. Its result is committed fenced by (run, attempt,
//! owner): a worker whose lease expired or was taken over writes nothing, and
//! drops the run. A failed step releases the run until its backoff has passed
//! (`waiting`), or fails the run when it is out of attempts or the error is
//! non-retryable. [`Worker::run`] repeats passes until shutdown, sleeping
//! `poll_interval` when there is nothing to do and looking at schedules at most
//! once per `poll_interval`; on shutdown a run between steps
//! is released at once for another worker. An idle worker also wakes when the
//! event log grows (runs triggered by a command arrive with its events).

use crate::cron::Cron;
use crate::definition::{Registry, StepContext, StepError, Workflow};
use jiff::{SignedDuration, Timestamp};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use synap_store::workflow::{
    ClaimRequest, ClaimedRun, Fenced, Lease, RunStatus, RunTransition, SCHEDULE_BATCH_MAX,
    Schedule, ScheduleSpec, StepOutcome, StepResult, StepStatus,
};
use synap_store::{Clock, Scope, Store, StoreError, StoreResult};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Default lease length: a worker that dies leaves its run for this long.
pub const LEASE_DEFAULT: Duration = Duration::from_secs(30);
/// Default runs one worker executes side by side (one claim's batch).
pub const CONCURRENCY_DEFAULT: u32 = 8;
/// Default wait between passes that found nothing to do.
pub const POLL_INTERVAL_DEFAULT: Duration = Duration::from_millis(200);
/// Wait after a pass failed on a store error (the database is down, …).
pub const ERROR_BACKOFF: Duration = Duration::from_secs(1);
/// Most workers one process may start.
pub const WORKERS_MAX: usize = 64;

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Unique lease owner name (host, process, worker number).
    pub owner: String,
    /// Runs claimed and executed side by side per pass (1..=`CLAIM_BATCH_MAX`).
    pub concurrency: u32,
    pub lease: Duration,
    /// Heartbeat period: a third of the lease by default.
    pub heartbeat: Duration,
    pub poll_interval: Duration,
    /// Whether this worker fires cron schedules.
    pub schedules: bool,
}

impl WorkerConfig {
    pub fn new(owner: impl Into<String>) -> Self {
        WorkerConfig {
            owner: owner.into(),
            concurrency: CONCURRENCY_DEFAULT,
            lease: LEASE_DEFAULT,
            heartbeat: LEASE_DEFAULT / 3,
            poll_interval: POLL_INTERVAL_DEFAULT,
            schedules: true,
        }
    }

    /// Sets the lease and a heartbeat of a third of it.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self.heartbeat = lease / 3;
        self
    }
}

/// A unique owner name for this process: `<host>:<pid>:<n>`.
pub fn owner_name(worker: usize) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
    format!(
        "{host}:{}:{worker}:{}",
        std::process::id(),
        uuid::Uuid::now_v7().simple()
    )
}

/// What the engine tells the outside (metrics).
pub trait Observer: Send + Sync + std::fmt::Debug {
    /// A step execution ended (`ok`: succeeded).
    fn step_finished(&self, _workflow: &str, _step: &str, _ok: bool, _duration: Duration) {}
    /// A run reached a final state; `duration` from its creation.
    fn run_finished(&self, _workflow: &str, _status: RunStatus, _duration: Duration) {}
    /// A fenced write was refused: this worker had lost the run.
    fn lease_lost(&self, _workflow: &str) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct NoObserver;
impl Observer for NoObserver {}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    pub schedules_fired: u32,
    pub claimed: u32,
    pub steps_succeeded: u32,
    pub steps_failed: u32,
    pub runs_succeeded: u32,
    pub runs_failed: u32,
    /// Runs released to wait for a retry.
    pub runs_waiting: u32,
    /// Runs this worker lost (expired lease, taken over, cancelled).
    pub lease_lost: u32,
    /// Runs given back on shutdown.
    pub released: u32,
}

impl TickReport {
    /// Adds `other` to this report.
    pub fn add(&mut self, other: &TickReport) {
        self.schedules_fired += other.schedules_fired;
        self.claimed += other.claimed;
        self.steps_succeeded += other.steps_succeeded;
        self.steps_failed += other.steps_failed;
        self.runs_succeeded += other.runs_succeeded;
        self.runs_failed += other.runs_failed;
        self.runs_waiting += other.runs_waiting;
        self.lease_lost += other.lease_lost;
        self.released += other.released;
    }
}

/// One worker on a store.
#[derive(Clone)]
pub struct Worker {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    config: WorkerConfig,
    observer: Arc<dyn Observer>,
    shutdown: watch::Receiver<bool>,
    passes: Arc<AtomicU64>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker; `clock` must be the store's clock (steps see it, schedules use it).
    pub fn new(
        store: Arc<dyn Store>,
        registry: Arc<Registry>,
        clock: Arc<dyn Clock>,
        config: WorkerConfig,
    ) -> Self {
        let (_, shutdown) = watch::channel(false);
        Worker {
            store,
            registry,
            clock,
            config,
            observer: Arc::new(NoObserver),
            shutdown,
            passes: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// Stops the worker (between steps) when `shutdown` becomes `true`.
    pub fn with_shutdown(mut self, shutdown: watch::Receiver<bool>) -> Self {
        self.shutdown = shutdown;
        self
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Runs passes until shutdown; answers the sum of every pass.
    pub async fn run(self) -> TickReport {
        let mut total = TickReport::default();
        let mut shutdown = self.shutdown.clone();
        // Schedules are looked at once per poll interval, not on every pass of a
        // busy worker: cron has minute granularity, and the look is a query.
        let mut schedules_checked: Option<Instant> = None;
        while !self.stopping() {
            let fire = self.config.schedules
                && schedules_checked.is_none_or(|at| at.elapsed() >= self.config.poll_interval);
            if fire {
                schedules_checked = Some(Instant::now());
            }
            // The log's head before the pass: an idle worker wakes as soon as it
            // moves, since most runs are enqueued by the command that appends
            // events (a capture), so new work is picked up at once, not a poll later.
            let head = self.store.head_position().await.ok();
            let pause = match self.pass(fire).await {
                Ok(report) => {
                    let idle = report.claimed == 0 && report.schedules_fired == 0;
                    total.add(&report);
                    if idle {
                        self.config.poll_interval
                    } else {
                        Duration::ZERO
                    }
                }
                Err(error) => {
                    eprintln!("synap: workflow worker {}: {error}", self.config.owner);
                    ERROR_BACKOFF
                }
            };
            if pause.is_zero() {
                continue;
            }
            let store = self.store.clone();
            let woken = async move {
                match head {
                    Some(head) if pause != ERROR_BACKOFF => {
                        // An error here only ends the wait early; the pass decides.
                        let _ = store.wait_for_events(head, pause).await;
                    }
                    _ => tokio::time::sleep(pause).await,
                }
            };
            tokio::select! {
                _ = shutdown.changed() => {}
                () = woken => {}
            }
        }
        total
    }

    /// One pass: fire due schedules, claim, execute the claimed runs.
    pub async fn tick(&self) -> StoreResult<TickReport> {
        self.pass(self.config.schedules).await
    }

    /// One pass, firing due schedules only if `fire_schedules`.
    async fn pass(&self, fire_schedules: bool) -> StoreResult<TickReport> {
        self.passes.fetch_add(1, Ordering::Relaxed);
        let mut report = TickReport::default();
        if fire_schedules {
            report.schedules_fired = self.fire_schedules().await?;
        }
        if self.registry.is_empty() || self.stopping() {
            return Ok(report);
        }
        let request = ClaimRequest {
            owner: self.config.owner.clone(),
            workflows: self.registry.claimable(),
            limit: self
                .config
                .concurrency
                .clamp(1, synap_store::workflow::CLAIM_BATCH_MAX),
            lease: self.config.lease,
        };
        let claimed = self.store.claim_runs(&request).await?;
        report.claimed = claimed.len() as u32;
        let mut running = JoinSet::new();
        for run in claimed {
            let worker = self.clone();
            running.spawn(async move { worker.execute(run).await });
        }
        while let Some(done) = running.join_next().await {
            match done {
                Ok(Ok(run_report)) => report.add(&run_report),
                Ok(Err(error)) => {
                    eprintln!("synap: workflow worker {}: {error}", self.config.owner)
                }
                Err(panic) => eprintln!(
                    "synap: workflow worker {}: a run panicked: {panic}",
                    self.config.owner
                ),
            }
        }
        Ok(report)
    }

    /// Enqueues the runs of due schedules, moving each to its next firing time.
    async fn fire_schedules(&self) -> StoreResult<u32> {
        let mut fired = 0;
        for schedule in self.store.due_schedules(SCHEDULE_BATCH_MAX).await? {
            let now = self.clock.now();
            let next = match Cron::parse(&schedule.cron)
                .ok()
                .and_then(|cron| cron.next_after(now))
            {
                Some(next) => next,
                // Never fires again: park it far ahead instead of firing each pass.
                None => Timestamp::MAX,
            };
            if self
                .store
                .fire_schedule(&schedule, schedule.next_fire_at, next)
                .await?
            {
                fired += 1;
            }
        }
        Ok(fired)
    }

    /// Executes the steps of one claimed run until it finishes, waits, or is lost.
    async fn execute(&self, claimed: ClaimedRun) -> StoreResult<TickReport> {
        let mut report = TickReport::default();
        let ClaimedRun {
            lease, run, steps, ..
        } = claimed;
        let Some(workflow) = self.registry.get(&run.workflow).cloned() else {
            // Only registered workflows are claimed; give it back if one vanished.
            let _ = self
                .store
                .commit_step(&lease, None, RunTransition::Release)
                .await?;
            report.released += 1;
            return Ok(report);
        };
        let memo: BTreeMap<String, _> = steps.into_iter().map(|s| (s.name.clone(), s)).collect();
        let mut outputs = BTreeMap::new();
        let (lost_tx, lost_rx) = watch::channel(false);
        let heartbeat = tokio::spawn(heartbeat(
            self.store.clone(),
            lease.clone(),
            self.config.lease,
            self.config.heartbeat,
            lost_tx,
        ));
        let result = self
            .walk(
                &workflow,
                &lease,
                &run,
                &memo,
                &mut outputs,
                lost_rx,
                &mut report,
            )
            .await;
        heartbeat.abort();
        result?;
        Ok(report)
    }

    #[allow(clippy::too_many_arguments)]
    async fn walk(
        &self,
        workflow: &Workflow,
        lease: &Lease,
        run: &synap_store::workflow::RunView,
        memo: &BTreeMap<String, synap_store::workflow::StepView>,
        outputs: &mut BTreeMap<String, serde_json::Value>,
        mut lost: watch::Receiver<bool>,
        report: &mut TickReport,
    ) -> StoreResult<()> {
        let total = workflow.steps.len();
        if total == 0 {
            return self
                .finish(workflow, lease, run, None, RunTransition::Succeeded, report)
                .await;
        }
        for (index, step) in workflow.steps.iter().enumerate() {
            let stored = memo.get(&step.name);
            if let Some(done) = stored.filter(|s| s.status == StepStatus::Succeeded) {
                outputs.insert(step.name.clone(), done.output.clone().unwrap_or_default());
                if index + 1 == total {
                    // Every step is stored (a crash after the last step's commit
                    // cannot happen — it commits with the run — but a definition
                    // may have lost steps): the run is done.
                    return self
                        .finish(workflow, lease, run, None, RunTransition::Succeeded, report)
                        .await;
                }
                continue;
            }
            if self.stopping() {
                return self
                    .finish(workflow, lease, run, None, RunTransition::Release, report)
                    .await;
            }
            let attempt = stored.map_or(0, |s| s.attempts) + 1;
            let started_at = self.clock.now();
            let context = StepContext {
                run_id: run.id,
                scope: Scope::user(run.user_id),
                workflow: workflow.name.clone(),
                step: step.name.clone(),
                input: run.input.clone(),
                outputs: outputs.clone(),
                attempt,
                started_at,
            };
            let began = Instant::now();
            let outcome = tokio::select! {
                outcome = tokio::time::timeout(step.timeout, step.call(context)) => outcome,
                _ = lost.wait_for(|lost| *lost) => {
                    // The heartbeat found the lease gone: stop at once.
                    report.lease_lost += 1;
                    self.observer.lease_lost(&workflow.name);
                    return Ok(());
                }
            };
            let duration = began.elapsed();
            let error = match outcome {
                Ok(Ok(output)) => {
                    self.observer
                        .step_finished(&workflow.name, &step.name, true, duration);
                    report.steps_succeeded += 1;
                    let last = index + 1 == total;
                    let result = StepResult {
                        name: step.name.clone(),
                        started_at,
                        duration,
                        outcome: StepOutcome::Succeeded(output.clone()),
                    };
                    let transition = if last {
                        RunTransition::Succeeded
                    } else {
                        RunTransition::Continue
                    };
                    if last {
                        return self
                            .finish(workflow, lease, run, Some(result), transition, report)
                            .await;
                    }
                    match self
                        .store
                        .commit_step(lease, Some(result), transition)
                        .await?
                    {
                        Fenced::Done(()) => {}
                        Fenced::LeaseLost => {
                            report.lease_lost += 1;
                            self.observer.lease_lost(&workflow.name);
                            return Ok(());
                        }
                    }
                    outputs.insert(step.name.clone(), output);
                    continue;
                }
                Ok(Err(error)) => error,
                Err(_) => {
                    StepError::Retryable(format!("the step timed out after {:?}", step.timeout))
                }
            };
            self.observer
                .step_finished(&workflow.name, &step.name, false, duration);
            report.steps_failed += 1;
            let out_of_attempts = attempt >= step.retry.max_attempts;
            let (final_failure, transition) = match &error {
                StepError::NonRetryable(text) => (
                    true,
                    RunTransition::Failed {
                        error: format!("step {} failed (not retryable): {text}", step.name),
                    },
                ),
                _ if out_of_attempts => (
                    true,
                    RunTransition::Failed {
                        error: format!(
                            "step {} failed after {attempt} attempts: {error}",
                            step.name
                        ),
                    },
                ),
                StepError::RetryAfter { after, .. } => {
                    let wait = (*after)
                        .max(step.retry.backoff(attempt, run.id, &step.name))
                        .min(crate::retry::BACKOFF_CAP);
                    (false, self.retry_at(&step.name, attempt, wait, &error))
                }
                StepError::Retryable(_) => {
                    let wait = step.retry.backoff(attempt, run.id, &step.name);
                    (false, self.retry_at(&step.name, attempt, wait, &error))
                }
            };
            let result = StepResult {
                name: step.name.clone(),
                started_at,
                duration,
                outcome: StepOutcome::Failed {
                    error: error.to_string(),
                    final_failure,
                },
            };
            return self
                .finish(workflow, lease, run, Some(result), transition, report)
                .await;
        }
        Ok(())
    }

    fn retry_at(
        &self,
        step: &str,
        attempt: u32,
        wait: Duration,
        error: &StepError,
    ) -> RunTransition {
        let now = self.clock.now();
        let at = SignedDuration::try_from(wait)
            .ok()
            .and_then(|wait| now.checked_add(wait).ok())
            .unwrap_or(now);
        RunTransition::RetryAt {
            at,
            error: format!("step {step} failed (attempt {attempt}): {error}"),
        }
    }

    /// Commits the run's last write of this claim and reports it.
    async fn finish(
        &self,
        workflow: &Workflow,
        lease: &Lease,
        run: &synap_store::workflow::RunView,
        step: Option<StepResult>,
        transition: RunTransition,
        report: &mut TickReport,
    ) -> StoreResult<()> {
        let status = match &transition {
            RunTransition::Succeeded => Some(RunStatus::Succeeded),
            RunTransition::Failed { .. } => Some(RunStatus::Failed),
            _ => None,
        };
        let waiting = matches!(transition, RunTransition::RetryAt { .. });
        let released = matches!(transition, RunTransition::Release);
        match self.store.commit_step(lease, step, transition).await? {
            Fenced::Done(()) => {
                match status {
                    Some(RunStatus::Succeeded) => report.runs_succeeded += 1,
                    Some(_) => report.runs_failed += 1,
                    None => {}
                }
                if let Some(status) = status {
                    let age = self
                        .clock
                        .now()
                        .duration_since(run.created_at)
                        .try_into()
                        .unwrap_or_default();
                    self.observer.run_finished(&workflow.name, status, age);
                }
                report.runs_waiting += u32::from(waiting);
                report.released += u32::from(released);
            }
            Fenced::LeaseLost => {
                report.lease_lost += 1;
                self.observer.lease_lost(&workflow.name);
            }
        }
        Ok(())
    }

    /// Creates or replaces a cron schedule of `scope`'s user, validating the
    /// expression and computing its first firing time.
    pub async fn put_schedule(
        store: &dyn Store,
        clock: &dyn Clock,
        scope: &Scope,
        name: &str,
        workflow: &str,
        cron: &str,
        input: serde_json::Value,
    ) -> StoreResult<Schedule> {
        let parsed = Cron::parse(cron).map_err(|e| StoreError::InvalidInput(e.to_string()))?;
        let next = parsed.next_after(clock.now()).ok_or_else(|| {
            StoreError::InvalidInput(format!("the cron expression {cron:?} never fires"))
        })?;
        store
            .put_schedule(
                scope,
                ScheduleSpec {
                    name: name.to_string(),
                    workflow: workflow.to_string(),
                    cron: cron.to_string(),
                    input,
                    next_fire_at: next,
                },
            )
            .await
    }
}

/// Extends the lease every `every` until aborted; flags `lost` when a heartbeat
/// is refused (the run was taken over, cancelled, or the lease ran out).
async fn heartbeat(
    store: Arc<dyn Store>,
    lease: Lease,
    length: Duration,
    every: Duration,
    lost: watch::Sender<bool>,
) {
    let every = every.max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(every).await;
        match store.heartbeat(&lease, length).await {
            Ok(Fenced::Done(_)) => {}
            Ok(Fenced::LeaseLost) => {
                lost.send_replace(true);
                return;
            }
            // A passing store error: the next beat tries again; the fenced
            // commit decides in the end.
            Err(_) => {}
        }
    }
}

/// Starts `count` workers (at most [`WORKERS_MAX`]) as tasks; each stops between
/// steps when `shutdown` flips. Join the handles to wait for them.
pub fn spawn_workers(
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    base: &WorkerConfig,
    count: usize,
    observer: Arc<dyn Observer>,
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<TickReport>> {
    (0..count.min(WORKERS_MAX))
        .map(|n| {
            let config = WorkerConfig {
                owner: format!("{}#{n}", base.owner),
                // One worker fires schedules; firing is idempotent anyway.
                schedules: base.schedules && n == 0,
                ..base.clone()
            };
            let worker = Worker::new(store.clone(), registry.clone(), clock.clone(), config)
                .with_observer(observer.clone())
                .with_shutdown(shutdown.clone());
            tokio::spawn(worker.run())
        })
        .collect()
}
