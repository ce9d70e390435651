//! Durable workflow state: the storage contract of the workflow engine
//! (`synap-workflow`). Runs, their memoised steps and cron schedules live in the
//! project's own tables on both backends.
//!
//! - A run is enqueued in the same transaction as the event that triggers it: a
//!   [`crate::CommandRequest`] carries the [`NewRun`]s it triggers and the command
//!   pipeline inserts them with its events (a refused command enqueues nothing; a
//!   replayed command enqueues nothing again).
//! - A worker claims runs with a lease (owner, expiry) and a fresh attempt number
//!   (one writer on SQLite; `FOR UPDATE SKIP LOCKED` on PostgreSQL). Every later
//!   write — a step result, a run transition, a heartbeat — is fenced by
//!   [`Lease`]: run id, attempt and owner must still match, the run must still be
//!   `running` and the lease unexpired, or nothing is written and the caller gets
//!   [`Fenced::LeaseLost`].
//! - A step's successful output is stored once: a succeeded step is never
//!   overwritten, and a retried or resumed run skips it.
//! - Runs belong to a user; listing and reading are confined to the caller's
//!   scope. Claiming, heartbeats and schedules are system work of the engine.

use crate::api::{Page, PageRequest, Scope, StoreError, StoreResult};
use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use synap_domain::DomainError;
use synap_domain::ids::UserId;
use uuid::Uuid;

/// Longest workflow name (`capture.enrich`, …).
pub const WORKFLOW_NAME_CHARS_MAX: usize = 100;
/// Longest concurrency key.
pub const CONCURRENCY_KEY_CHARS_MAX: usize = 200;
/// Largest run input, as JSON.
pub const RUN_INPUT_BYTES_MAX: usize = 64 * 1024;
/// Largest stored step output, as JSON.
pub const STEP_OUTPUT_BYTES_MAX: usize = 256 * 1024;
/// Longest recorded error text (longer errors are cut, never refused).
pub const ERROR_CHARS_MAX: usize = 2_000;
/// Most runs one command may trigger.
pub const RUNS_PER_COMMAND_MAX: usize = 16;
/// Most runs one claim may take.
pub const CLAIM_BATCH_MAX: u32 = 64;
/// Candidates a claim looks at per run it may take (runs held back by their
/// concurrency key are skipped, so it looks further than it takes).
pub const CLAIM_SCAN_FACTOR: u32 = 4;
/// Most due schedules handled in one pass.
pub const SCHEDULE_BATCH_MAX: u32 = 100;
/// Most finished runs one [`WorkflowStore::purge_finished_runs`] call deletes
/// (one transaction; callers repeat while a batch comes back full).
pub const PURGE_BATCH_MAX: u32 = 1_000;
/// Longest schedule name.
pub const SCHEDULE_NAME_CHARS_MAX: usize = 100;
/// Longest lease a claim may ask for.
pub const LEASE_MAX: Duration = Duration::from_secs(3_600);

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Ready to start (new, or re-queued by a retry request).
    Queued,
    /// Held by a worker's lease.
    Running,
    /// Between attempts: becomes claimable at `next_attempt_at` (backoff).
    Waiting,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Waiting,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Succeeded, failed and cancelled runs never change again (except a retry
    /// request, which re-queues a failed run).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

/// Where a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Tried and failed, with attempts left (or re-opened by a retry request).
    Pending,
    /// Its output is stored; it never runs again in this run.
    Succeeded,
    /// Out of attempts, or failed with a non-retryable error.
    Failed,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<StepStatus> {
        [
            StepStatus::Pending,
            StepStatus::Succeeded,
            StepStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A run to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub id: Uuid,
    pub workflow: String,
    pub input: serde_json::Value,
    /// Runs sharing a key share the concurrency limit of the workflow that claims them.
    pub concurrency_key: Option<String>,
    /// Not claimable before this time (default: at once).
    pub not_before: Option<Timestamp>,
}

impl NewRun {
    pub fn new(workflow: impl Into<String>, input: serde_json::Value) -> Self {
        NewRun {
            id: Uuid::now_v7(),
            workflow: workflow.into(),
            input,
            concurrency_key: None,
            not_before: None,
        }
    }

    pub fn with_concurrency_key(mut self, key: impl Into<String>) -> Self {
        self.concurrency_key = Some(key.into());
        self
    }

    /// Checks the limits; every backend calls this before inserting.
    pub fn check(&self) -> StoreResult<()> {
        let name = self.workflow.chars().count();
        if name == 0
            || name > WORKFLOW_NAME_CHARS_MAX
            || self.workflow.chars().any(char::is_control)
        {
            return Err(invalid(
                "workflow",
                format!(
                    "a workflow name has 1 to {WORKFLOW_NAME_CHARS_MAX} characters and no control characters"
                ),
            ));
        }
        if let Some(key) = &self.concurrency_key
            && (key.is_empty() || key.chars().count() > CONCURRENCY_KEY_CHARS_MAX)
        {
            return Err(invalid(
                "concurrency_key",
                format!("a concurrency key has 1 to {CONCURRENCY_KEY_CHARS_MAX} characters"),
            ));
        }
        let bytes = serde_json::to_vec(&self.input).map_or(usize::MAX, |v| v.len());
        if bytes > RUN_INPUT_BYTES_MAX {
            return Err(invalid(
                "input",
                format!(
                    "a run input is at most {RUN_INPUT_BYTES_MAX} bytes as JSON; this one is {bytes}"
                ),
            ));
        }
        Ok(())
    }
}

fn invalid(field: &'static str, message: String) -> StoreError {
    DomainError::Validation { field, message }.into()
}

/// Cuts an error text to [`ERROR_CHARS_MAX`] characters.
pub fn clip_error(error: &str) -> String {
    if error.chars().count() <= ERROR_CHARS_MAX {
        return error.to_string();
    }
    let mut clipped: String = error.chars().take(ERROR_CHARS_MAX - 1).collect();
    clipped.push('…');
    clipped
}

/// The end of a lease of `lease` starting `now`.
pub fn lease_end(now: Timestamp, lease: Duration) -> StoreResult<Timestamp> {
    let lease = jiff::SignedDuration::try_from(lease)
        .map_err(|e| StoreError::InvalidInput(format!("lease: {e}")))?;
    now.checked_add(lease)
        .map_err(|e| StoreError::InvalidInput(format!("lease: {e}")))
}

/// A step execution as every backend stores it (the step row's new values).
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord<'a> {
    pub status: StepStatus,
    /// The output of a succeeded execution (checked against the limits).
    pub output: Option<&'a serde_json::Value>,
    /// The clipped error of a failed one.
    pub error: Option<String>,
    /// Set when the step is done for good (succeeded, or failed finally).
    pub finished_at: Option<Timestamp>,
    pub duration_us: i64,
}

impl StepResult {
    /// What a backend writes for this execution at `now`.
    pub fn record(&self, now: Timestamp) -> StoreResult<StepRecord<'_>> {
        let duration_us = self.duration.as_micros().min(i64::MAX as u128) as i64;
        Ok(match &self.outcome {
            StepOutcome::Succeeded(output) => {
                check_output(&self.name, output)?;
                StepRecord {
                    status: StepStatus::Succeeded,
                    output: Some(output),
                    error: None,
                    finished_at: Some(now),
                    duration_us,
                }
            }
            StepOutcome::Failed {
                error,
                final_failure,
            } => StepRecord {
                status: if *final_failure {
                    StepStatus::Failed
                } else {
                    StepStatus::Pending
                },
                output: None,
                error: Some(clip_error(error)),
                finished_at: final_failure.then_some(now),
                duration_us,
            },
        })
    }
}

/// How a backend writes a [`RunTransition`] to the run row.
#[derive(Debug, Clone, PartialEq)]
pub enum RunWrite {
    /// Only `updated_at` moves (the lease is kept).
    Touch,
    /// The lease ends and the run becomes claimable again at once, without
    /// counting a failure.
    Release,
    /// The lease ends and the run takes these values.
    Settle {
        status: RunStatus,
        error: Option<String>,
        next_attempt_at: Timestamp,
        finished_at: Option<Timestamp>,
    },
}

impl RunTransition {
    /// The row write this transition means at `now`.
    pub fn write(&self, now: Timestamp) -> RunWrite {
        match self {
            RunTransition::Continue => RunWrite::Touch,
            RunTransition::Release => RunWrite::Release,
            RunTransition::Succeeded => RunWrite::Settle {
                status: RunStatus::Succeeded,
                error: None,
                next_attempt_at: now,
                finished_at: Some(now),
            },
            RunTransition::Failed { error } => RunWrite::Settle {
                status: RunStatus::Failed,
                error: Some(clip_error(error)),
                next_attempt_at: now,
                finished_at: Some(now),
            },
            RunTransition::RetryAt { at, error } => RunWrite::Settle {
                status: RunStatus::Waiting,
                error: Some(clip_error(error)),
                next_attempt_at: *at,
                finished_at: None,
            },
        }
    }
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunView {
    pub id: Uuid,
    pub user_id: UserId,
    pub workflow: String,
    pub input: serde_json::Value,
    /// Position of the event that triggered the run (none for scheduled or
    /// directly enqueued runs).
    pub trigger_position: Option<u64>,
    pub status: RunStatus,
    /// Claims so far; the fencing token of the current lease.
    pub attempt: u32,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<Timestamp>,
    /// When a queued or waiting run becomes claimable.
    pub next_attempt_at: Timestamp,
    pub concurrency_key: Option<String>,
    pub error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// First claim.
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

/// A step of a run as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepView {
    pub name: String,
    pub status: StepStatus,
    /// The memoised result of a succeeded step.
    pub output: Option<serde_json::Value>,
    /// Executions so far (failed ones included).
    pub attempts: u32,
    pub last_error: Option<String>,
    pub first_started_at: Timestamp,
    pub last_started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// The last execution's duration, in microseconds.
    pub last_duration_us: u64,
    /// All executions' durations, in microseconds.
    pub total_duration_us: u64,
}

/// A run with its steps, in the order they first started.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunDetail {
    pub run: RunView,
    pub steps: Vec<StepView>,
}

/// Filters for listing runs (newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    pub workflow: Option<String>,
}

/// A workflow a worker can run, with its per-key concurrency limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimableWorkflow {
    pub name: String,
    /// At most this many runs with one concurrency key hold a live lease at once
    /// (runs without a key are not limited).
    pub concurrency_limit: Option<u32>,
}

/// A worker asking for work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    /// Who will hold the leases (unique per worker).
    pub owner: String,
    pub workflows: Vec<ClaimableWorkflow>,
    /// Most runs to take (1..=[`CLAIM_BATCH_MAX`]).
    pub limit: u32,
    /// Lease length (≤ [`LEASE_MAX`]).
    pub lease: Duration,
}

impl ClaimRequest {
    pub fn check(&self) -> StoreResult<()> {
        if !(1..=CLAIM_BATCH_MAX).contains(&self.limit) {
            return Err(StoreError::InvalidInput(format!(
                "a claim takes 1 to {CLAIM_BATCH_MAX} runs"
            )));
        }
        if self.lease.is_zero() || self.lease > LEASE_MAX {
            return Err(StoreError::InvalidInput(format!(
                "a lease lasts more than 0 and at most {LEASE_MAX:?}"
            )));
        }
        if self.owner.is_empty() {
            return Err(StoreError::InvalidInput(
                "a claim needs an owner name".into(),
            ));
        }
        Ok(())
    }

    pub fn limit_of(&self, workflow: &str) -> Option<u32> {
        self.workflows
            .iter()
            .find(|w| w.name == workflow)
            .and_then(|w| w.concurrency_limit)
    }
}

/// The fencing token of a claim: every write checks all three.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Lease {
    pub run_id: Uuid,
    pub attempt: u32,
    pub owner: String,
}

/// A claimed run: its lease, the run, and the steps recorded so far (the memo).
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedRun {
    pub lease: Lease,
    pub lease_expires_at: Timestamp,
    pub run: RunView,
    pub steps: Vec<StepView>,
}

/// The answer to a fenced write.
#[must_use]
#[derive(Debug, Clone, PartialEq)]
pub enum Fenced<T> {
    /// The lease was still held; the write committed.
    Done(T),
    /// The lease expired, was taken over, or the run was cancelled: nothing was
    /// written.
    LeaseLost,
}

/// One execution of a step, to record.
#[derive(Debug, Clone, PartialEq)]
pub struct StepResult {
    pub name: String,
    pub started_at: Timestamp,
    pub duration: Duration,
    pub outcome: StepOutcome,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// Stores the output (once: a step that already succeeded keeps its output).
    Succeeded(serde_json::Value),
    /// A failed execution; `final_failure` marks the step failed for good
    /// (non-retryable, or out of attempts), otherwise it stays pending.
    Failed { error: String, final_failure: bool },
}

/// What happens to a claimed run after a commit.
#[derive(Debug, Clone, PartialEq)]
pub enum RunTransition {
    /// Keep the lease (more steps follow).
    Continue,
    Succeeded,
    Failed {
        error: String,
    },
    /// Release the lease; claimable again at `at` (a step's backoff).
    RetryAt {
        at: Timestamp,
        error: String,
    },
    /// Release the lease without counting a failure (a worker shutting down).
    Release,
}

/// The answer to a retry request.
#[derive(Debug, Clone, PartialEq)]
pub enum RetryOutcome {
    /// No such run of the caller.
    NotFound,
    /// Only failed runs can be retried.
    NotFailed(RunStatus),
    /// Re-queued: completed steps stay memoised; the failed step runs again with
    /// a fresh attempt budget.
    Requeued(Box<RunView>),
}

/// A cron schedule that enqueues a run of `workflow` for its user when due.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schedule {
    pub id: Uuid,
    pub user_id: UserId,
    pub name: String,
    pub workflow: String,
    pub cron: String,
    pub input: serde_json::Value,
    pub next_fire_at: Timestamp,
}

/// A schedule to create or replace (by user and name).
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleSpec {
    pub name: String,
    pub workflow: String,
    /// Checked by the engine, which computes `next_fire_at` from it.
    pub cron: String,
    pub input: serde_json::Value,
    /// Used when the schedule is new or its cron expression changed.
    pub next_fire_at: Timestamp,
}

/// Runs in one state of one workflow (queue depth for metrics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    pub workflow: String,
    pub status: RunStatus,
    pub count: u64,
}

/// The run id a schedule's firing at `fire_at` gets: the same firing never
/// enqueues two runs, whichever process fires it.
pub fn scheduled_run_id(schedule_id: Uuid, fire_at: Timestamp) -> Uuid {
    // A bijective mix of the firing time (an odd multiplier) folded into the
    // schedule id: distinct firings of one schedule always get distinct ids.
    let fired = (fire_at.as_microsecond() as u128).wrapping_mul(FIRING_MIX);
    Uuid::from_u128(schedule_id.as_u128() ^ fired)
}

/// An odd 128-bit constant (multiplication by it is a bijection).
const FIRING_MIX: u128 = 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835;

/// The workflow tables of a backend.
///
/// Contract (checked by the workflow conformance suite):
/// - `claim` takes queued or waiting runs whose `next_attempt_at` has come, and
///   running runs whose lease has expired, of the workflows named, oldest
///   `next_attempt_at` first; it never gives one run to two live leases, never
///   lets more runs of one concurrency key than the workflow's limit hold live
///   leases, sets `running`, a new lease and `attempt + 1`.
/// - `commit`, `heartbeat` write only while the lease is held (see [`Fenced`]).
/// - Time is the store's clock.
#[async_trait]
pub trait WorkflowStore: Send + Sync {
    /// Enqueues a run outside a command (scheduled runs, tests, tools). Runs that
    /// an event triggers travel with the command instead
    /// ([`crate::CommandRequest::triggers`]).
    async fn enqueue_run(&self, scope: &Scope, run: NewRun) -> StoreResult<RunView>;
    async fn claim_runs(&self, request: &ClaimRequest) -> StoreResult<Vec<ClaimedRun>>;
    /// Extends a held lease to now + `lease`; answers the new expiry.
    async fn heartbeat(&self, lease: &Lease, extend: Duration) -> StoreResult<Fenced<Timestamp>>;
    /// Records a step execution (if any) and moves the run (one transaction).
    async fn commit_step(
        &self,
        lease: &Lease,
        step: Option<StepResult>,
        transition: RunTransition,
    ) -> StoreResult<Fenced<()>>;
    /// The caller's runs, newest first.
    async fn list_runs(
        &self,
        scope: &Scope,
        filter: &RunFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<RunView>>;
    /// One of the caller's runs with its steps.
    async fn run_detail(&self, scope: &Scope, id: Uuid) -> StoreResult<Option<RunDetail>>;
    /// Re-queues a failed run from its failed step.
    async fn retry_run(&self, scope: &Scope, id: Uuid) -> StoreResult<RetryOutcome>;
    /// Cancels a run that has not finished (a worker holding it loses its lease
    /// at its next write). `None`: no such run of the caller. A finished run is
    /// returned unchanged.
    async fn cancel_run(&self, scope: &Scope, id: Uuid) -> StoreResult<Option<RunView>>;
    /// Creates or replaces the caller's schedule `spec.name`.
    async fn put_schedule(&self, scope: &Scope, spec: ScheduleSpec) -> StoreResult<Schedule>;
    async fn list_schedules(&self, scope: &Scope) -> StoreResult<Vec<Schedule>>;
    /// Schedules of every user whose `next_fire_at` has come (at most `limit`).
    async fn due_schedules(&self, limit: u32) -> StoreResult<Vec<Schedule>>;
    /// Gives every user who is not disabled and has no schedule named
    /// `spec.name` that schedule (system work: schedules every user has, such as
    /// the insight job). Existing schedules are left as they are. Answers how
    /// many were made.
    async fn ensure_schedules(&self, spec: &ScheduleSpec) -> StoreResult<u64>;
    /// Fires a due schedule: moves `next_fire_at` from `fired_at` to `next` and
    /// enqueues its run (id [`scheduled_run_id`]) in one transaction. `false` when
    /// another worker fired it first (nothing written).
    async fn fire_schedule(
        &self,
        schedule: &Schedule,
        fired_at: Timestamp,
        next: Timestamp,
    ) -> StoreResult<bool>;
    /// Runs per workflow and unfinished state, for metrics. Not scoped.
    async fn queue_depth(&self) -> StoreResult<Vec<QueueDepth>>;
    /// Deletes, with their steps, up to `limit` (≤ [`PURGE_BATCH_MAX`]) runs that
    /// finished — succeeded, failed or cancelled — before `finished_before`,
    /// oldest first: the retention of run history. Unfinished runs are never
    /// touched. Not scoped. Answers how many runs were deleted.
    async fn purge_finished_runs(&self, finished_before: Timestamp, limit: u32)
    -> StoreResult<u64>;
}

/// Checks the batch size of [`WorkflowStore::purge_finished_runs`].
pub fn check_purge_limit(limit: u32) -> StoreResult<()> {
    if (1..=PURGE_BATCH_MAX).contains(&limit) {
        Ok(())
    } else {
        Err(StoreError::InvalidInput(format!(
            "a purge deletes 1 to {PURGE_BATCH_MAX} runs"
        )))
    }
}

/// Checks a schedule spec's name and workflow (the cron text is the engine's).
pub fn check_schedule(spec: &ScheduleSpec) -> StoreResult<()> {
    let name = spec.name.chars().count();
    if name == 0 || name > SCHEDULE_NAME_CHARS_MAX {
        return Err(invalid(
            "name",
            format!("a schedule name has 1 to {SCHEDULE_NAME_CHARS_MAX} characters"),
        ));
    }
    NewRun::new(spec.workflow.clone(), spec.input.clone()).check()
}

/// The cursor of run listings: `(created_at µs, id)` of the last item.
pub fn run_cursor(run: &RunView) -> String {
    crate::api::cursor::encode(&(run.created_at.as_microsecond(), run.id))
}

/// Decodes a run listing cursor.
pub fn decode_run_cursor(cursor: &str) -> StoreResult<(i64, Uuid)> {
    crate::api::cursor::decode(cursor)
}

/// Checks a step output's size before storing it.
pub fn check_output(name: &str, output: &serde_json::Value) -> StoreResult<()> {
    let bytes = serde_json::to_vec(output).map_or(usize::MAX, |v| v.len());
    if bytes > STEP_OUTPUT_BYTES_MAX {
        return Err(StoreError::InvalidInput(format!(
            "step {name} returned {bytes} bytes of JSON; the limit is {STEP_OUTPUT_BYTES_MAX}"
        )));
    }
    Ok(())
}
