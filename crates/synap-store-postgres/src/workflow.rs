//! The workflow tables on PostgreSQL (`synap_store::workflow`): runs, memoised
//! steps and cron schedules, with forced row-level security like every other
//! user-owned table.
//!
//! Claiming: `SELECT … FOR UPDATE SKIP LOCKED` takes candidates no other claimer
//! holds; for runs with a concurrency key the claimer then takes a
//! transaction-level advisory lock per key (in key order, so two claimers never
//! deadlock) before counting the key's live leases, so concurrent claimers in
//! any number of processes never exceed a key's limit; without keys a claim is
//! one statement. A fenced write is one statement too: the run row's `UPDATE`
//! checks run id, attempt, owner, `running` and the lease expiry, and the step
//! row is written only from what it returned. The engine's statements relax
//! their commit (see [`relax_commit`]), so a step costs one round trip. Times
//! come from the store's clock, never from `now()`.

use crate::codec::{corrupt, micros, opt_timestamp, sql_error, timestamp, unique_violation};
use crate::pool::Conn;
use crate::store::PostgresStore;
use async_trait::async_trait;
use jiff::Timestamp;
use postgres::Row;
use std::collections::BTreeSet;
use std::time::Duration;
use synap_domain::ids::UserId;
use synap_store::workflow::{
    CLAIM_SCAN_FACTOR, ClaimRequest, ClaimedRun, Fenced, Lease, NewRun, QueueDepth, RetryOutcome,
    RunDetail, RunFilter, RunStatus, RunTransition, RunView, RunWrite, SCHEDULE_BATCH_MAX,
    Schedule, ScheduleSpec, StepResult, StepStatus, StepView, WorkflowStore, check_purge_limit,
    check_schedule, decode_run_cursor, lease_end, run_cursor, scheduled_run_id,
};
use synap_store::{Page, PageRequest, Scope, StoreError, StoreResult};
use uuid::Uuid;

/// The workflow tables (each has `user_id` and forced row-level security), for the
/// row-level security tests.
#[cfg(feature = "testing")]
pub const WORKFLOW_TABLES: &[&str] = &["workflow_runs", "workflow_steps", "workflow_schedules"];

/// Commits the engine's own bookkeeping (claims, step results) without waiting
/// for the WAL flush (`synchronous_commit = off` for this transaction only). A
/// crash can forget the last few of them — the engine then claims again and runs
/// those steps again, which every step must tolerate anyway (at-least-once,
/// idempotency keys) — but never a user's acknowledged write or a run's
/// enqueueing, which commit durably. Consistency is unaffected.
pub(crate) fn relax_commit(conn: &mut Conn) -> StoreResult<()> {
    conn.execute("SET LOCAL synchronous_commit = off", &[])?;
    Ok(())
}

/// The common table expression that relaxes the commit of the single statement
/// it opens (see [`relax_commit`]): `set_config(…, true)` lasts until the end of
/// the statement's own transaction. Statements name it in their `FROM` so it runs.
const RELAXED: &str = "relaxed AS (SELECT set_config('synchronous_commit', 'off', true))";

/// The migration that creates the workflow tables (appended to `schema::MIGRATIONS`).
pub const SCHEMA: &str = r#"
CREATE TABLE workflow_runs (
    id               uuid PRIMARY KEY,
    user_id          uuid NOT NULL,
    workflow         text NOT NULL,
    input            jsonb NOT NULL,
    trigger_position bigint,
    status           text NOT NULL,
    attempt          integer NOT NULL,
    lease_owner      text,
    lease_expires_at bigint,
    next_attempt_at  bigint NOT NULL,
    concurrency_key  text,
    error            text,
    created_at       bigint NOT NULL,
    updated_at       bigint NOT NULL,
    started_at       bigint,
    finished_at      bigint
);
CREATE INDEX workflow_runs_ready ON workflow_runs (next_attempt_at) WHERE status IN ('queued', 'waiting');
CREATE INDEX workflow_runs_leased ON workflow_runs (lease_expires_at) WHERE status = 'running';
CREATE INDEX workflow_runs_by_key ON workflow_runs (concurrency_key, lease_expires_at) WHERE status = 'running';
CREATE INDEX workflow_runs_by_user ON workflow_runs (user_id, created_at DESC, id DESC);

CREATE TABLE workflow_steps (
    run_id            uuid NOT NULL,
    name              text NOT NULL,
    user_id           uuid NOT NULL,
    seq               integer NOT NULL,
    status            text NOT NULL,
    output            jsonb,
    attempts          integer NOT NULL,
    last_error        text,
    first_started_at  bigint NOT NULL,
    last_started_at   bigint NOT NULL,
    finished_at       bigint,
    last_duration_us  bigint NOT NULL,
    total_duration_us bigint NOT NULL,
    PRIMARY KEY (run_id, name)
);

CREATE TABLE workflow_schedules (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL,
    name         text NOT NULL,
    workflow     text NOT NULL,
    cron         text NOT NULL,
    input        jsonb NOT NULL,
    next_fire_at bigint NOT NULL,
    created_at   bigint NOT NULL,
    updated_at   bigint NOT NULL,
    UNIQUE (user_id, name)
);
CREATE INDEX workflow_schedules_due ON workflow_schedules (next_fire_at);

ALTER TABLE workflow_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY workflow_runs_of_user ON workflow_runs
  USING (user_id = coalesce((SELECT nullif(current_setting('synap.user_id', true), '')::uuid), user_id))
  WITH CHECK (user_id = coalesce((SELECT nullif(current_setting('synap.user_id', true), '')::uuid), user_id));
ALTER TABLE workflow_steps ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_steps FORCE ROW LEVEL SECURITY;
CREATE POLICY workflow_steps_of_user ON workflow_steps
  USING (user_id = coalesce((SELECT nullif(current_setting('synap.user_id', true), '')::uuid), user_id))
  WITH CHECK (user_id = coalesce((SELECT nullif(current_setting('synap.user_id', true), '')::uuid), user_id));
ALTER TABLE workflow_schedules ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_schedules FORCE ROW LEVEL SECURITY;
CREATE POLICY workflow_schedules_of_user ON workflow_schedules
  USING (user_id = coalesce((SELECT nullif(current_setting('synap.user_id', true), '')::uuid), user_id))
  WITH CHECK (user_id = coalesce((SELECT nullif(current_setting('synap.user_id', true), '')::uuid), user_id));
"#;

/// Migration 7: finished runs by finishing time (the retention purge's order).
pub const RETENTION_INDEX: &str = "CREATE INDEX workflow_runs_finished ON workflow_runs (finished_at) \
     WHERE finished_at IS NOT NULL;";

const RUN_COLUMNS: &str = "id, user_id, workflow, input, trigger_position, status, attempt, \
    lease_owner, lease_expires_at, next_attempt_at, concurrency_key, error, created_at, \
    updated_at, started_at, finished_at";

const STEP_COLUMNS: &str = "name, status, output, attempts, last_error, first_started_at, \
    last_started_at, finished_at, last_duration_us, total_duration_us";

const SCHEDULE_COLUMNS: &str = "id, user_id, name, workflow, cron, input, next_fire_at";

fn run_from_row(row: &Row) -> StoreResult<RunView> {
    let status: String = row.try_get(5).map_err(corrupt)?;
    Ok(RunView {
        id: row.try_get(0).map_err(corrupt)?,
        user_id: UserId(row.try_get(1).map_err(corrupt)?),
        workflow: row.try_get(2).map_err(corrupt)?,
        input: row.try_get(3).map_err(corrupt)?,
        trigger_position: row
            .try_get::<_, Option<i64>>(4)
            .map_err(corrupt)?
            .map(|p| p as u64),
        status: RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("run status {status}")))?,
        attempt: row.try_get::<_, i32>(6).map_err(corrupt)? as u32,
        lease_owner: row.try_get(7).map_err(corrupt)?,
        lease_expires_at: opt_timestamp(row.try_get(8).map_err(corrupt)?)?,
        next_attempt_at: timestamp(row.try_get(9).map_err(corrupt)?)?,
        concurrency_key: row.try_get(10).map_err(corrupt)?,
        error: row.try_get(11).map_err(corrupt)?,
        created_at: timestamp(row.try_get(12).map_err(corrupt)?)?,
        updated_at: timestamp(row.try_get(13).map_err(corrupt)?)?,
        started_at: opt_timestamp(row.try_get(14).map_err(corrupt)?)?,
        finished_at: opt_timestamp(row.try_get(15).map_err(corrupt)?)?,
    })
}

fn step_from_row(row: &Row) -> StoreResult<StepView> {
    step_from_row_at(row, 0)
}

/// A step from `STEP_COLUMNS` starting at column `first`.
fn step_from_row_at(row: &Row, first: usize) -> StoreResult<StepView> {
    let column = |i: usize| first + i;
    let status: String = row.try_get(column(1)).map_err(corrupt)?;
    Ok(StepView {
        name: row.try_get(column(0)).map_err(corrupt)?,
        status: StepStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("step status {status}")))?,
        output: row.try_get(column(2)).map_err(corrupt)?,
        attempts: row.try_get::<_, i32>(column(3)).map_err(corrupt)? as u32,
        last_error: row.try_get(column(4)).map_err(corrupt)?,
        first_started_at: timestamp(row.try_get(column(5)).map_err(corrupt)?)?,
        last_started_at: timestamp(row.try_get(column(6)).map_err(corrupt)?)?,
        finished_at: opt_timestamp(row.try_get(column(7)).map_err(corrupt)?)?,
        last_duration_us: row.try_get::<_, i64>(column(8)).map_err(corrupt)? as u64,
        total_duration_us: row.try_get::<_, i64>(column(9)).map_err(corrupt)? as u64,
    })
}

fn schedule_from_row(row: &Row) -> StoreResult<Schedule> {
    Ok(Schedule {
        id: row.try_get(0).map_err(corrupt)?,
        user_id: UserId(row.try_get(1).map_err(corrupt)?),
        name: row.try_get(2).map_err(corrupt)?,
        workflow: row.try_get(3).map_err(corrupt)?,
        cron: row.try_get(4).map_err(corrupt)?,
        input: row.try_get(5).map_err(corrupt)?,
        next_fire_at: timestamp(row.try_get(6).map_err(corrupt)?)?,
    })
}

/// Inserts a queued run (checked by the caller), inside the caller's transaction
/// (the command's own, for runs a command triggers).
pub fn insert_run(
    conn: &mut Conn,
    user: &UserId,
    run: &NewRun,
    trigger_position: Option<u64>,
    now: Timestamp,
) -> StoreResult<()> {
    let next = run.not_before.unwrap_or(now).max(now);
    let statement = conn.statement(
        "INSERT INTO workflow_runs (id, user_id, workflow, input, trigger_position, status, attempt, \
         next_attempt_at, concurrency_key, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $7, $8, $8)",
    )?;
    conn.client
        .execute(
            &statement,
            &[
                &run.id,
                &user.0,
                &run.workflow,
                &run.input,
                &trigger_position.map(|p| p as i64),
                &micros(next),
                &run.concurrency_key,
                &micros(now),
            ],
        )
        .map_err(|e| {
            if unique_violation(&e).is_some() {
                StoreError::InvalidInput(format!(
                    "run id {} was already used; send a new one",
                    run.id
                ))
            } else {
                sql_error(e)
            }
        })?;
    Ok(())
}

fn load_run(conn: &mut Conn, id: Uuid, lock: bool) -> StoreResult<Option<RunView>> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM workflow_runs WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    conn.query_opt(&sql, &[&id])?
        .map(|row| run_from_row(&row))
        .transpose()
}

fn steps_of(conn: &mut Conn, run_id: Uuid) -> StoreResult<Vec<StepView>> {
    let sql = format!("SELECT {STEP_COLUMNS} FROM workflow_steps WHERE run_id = $1 ORDER BY seq");
    conn.query(&sql, &[&run_id])?
        .iter()
        .map(step_from_row)
        .collect()
}

/// Claims up to `request.limit` ready runs. Without concurrency keys to count, it
/// is one relaxed statement (candidates `FOR UPDATE SKIP LOCKED`, leased by the
/// same `UPDATE`), plus one read of stored steps when a claimed run was started
/// before; with them, [`claim_with_limits`].
fn claim(conn: &mut Conn, request: &ClaimRequest, now: Timestamp) -> StoreResult<Vec<ClaimedRun>> {
    if request
        .workflows
        .iter()
        .any(|w| w.concurrency_limit.is_some())
    {
        return conn.relaxed_transaction(|conn| claim_with_limits(conn, request, now));
    }
    let names: Vec<String> = request.workflows.iter().map(|w| w.name.clone()).collect();
    let expires = lease_end(now, request.lease)?;
    let returning = RUN_COLUMNS
        .split(',')
        .map(|column| format!("r.{}", column.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "WITH {RELAXED}, \
         candidates AS (SELECT id FROM workflow_runs \
           WHERE ((status IN ('queued', 'waiting') AND next_attempt_at <= $1) \
                  OR (status = 'running' AND lease_expires_at <= $1)) \
             AND workflow = ANY($2) \
           ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
         UPDATE workflow_runs r SET status = 'running', attempt = r.attempt + 1, lease_owner = $4, \
           lease_expires_at = $5, started_at = coalesce(r.started_at, $1), updated_at = $1 \
         FROM candidates c, relaxed WHERE r.id = c.id RETURNING {returning}"
    );
    let mut runs = conn
        .query(
            &sql,
            &[
                &micros(now),
                &names,
                &i64::from(request.limit),
                &request.owner,
                &micros(expires),
            ],
        )?
        .iter()
        .map(run_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    runs.sort_by_key(|run| (run.next_attempt_at, run.id));
    // Only a run leased before can have stored steps (every step write is fenced
    // by a lease, and each lease raises the attempt).
    let started_before: Vec<Uuid> = runs
        .iter()
        .filter(|run| run.attempt > 1)
        .map(|run| run.id)
        .collect();
    let mut stored: std::collections::HashMap<Uuid, Vec<StepView>> = Default::default();
    if !started_before.is_empty() {
        let sql = format!(
            "SELECT run_id, {STEP_COLUMNS} FROM workflow_steps WHERE run_id = ANY($1) \
             ORDER BY run_id, seq"
        );
        for row in conn.query(&sql, &[&started_before])? {
            let run_id: Uuid = row.try_get(0).map_err(corrupt)?;
            stored
                .entry(run_id)
                .or_default()
                .push(step_from_row_at(&row, 1)?);
        }
    }
    Ok(runs
        .into_iter()
        .map(|run| ClaimedRun {
            lease: Lease {
                run_id: run.id,
                attempt: run.attempt,
                owner: request.owner.clone(),
            },
            lease_expires_at: expires,
            steps: stored.remove(&run.id).unwrap_or_default(),
            run,
        })
        .collect())
}

/// Claims runs when some workflow limits runs per concurrency key: candidates
/// are locked, then each limited key (in key order, so claimers never deadlock)
/// with a transaction-level advisory lock before its live leases are counted.
fn claim_with_limits(
    conn: &mut Conn,
    request: &ClaimRequest,
    now: Timestamp,
) -> StoreResult<Vec<ClaimedRun>> {
    let names: Vec<String> = request.workflows.iter().map(|w| w.name.clone()).collect();
    let scan = i64::from(request.limit.saturating_mul(CLAIM_SCAN_FACTOR));
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM workflow_runs \
         WHERE ((status IN ('queued', 'waiting') AND next_attempt_at <= $1) \
                OR (status = 'running' AND lease_expires_at <= $1)) \
           AND workflow = ANY($2) \
         ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED"
    );
    let candidates = conn
        .query(&sql, &[&micros(now), &names, &scan])?
        .iter()
        .map(run_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    // Lock every limited key first, in key order (no deadlock between claimers).
    let keys: BTreeSet<&str> = candidates
        .iter()
        .filter(|run| request.limit_of(&run.workflow).is_some())
        .filter_map(|run| run.concurrency_key.as_deref())
        .collect();
    for key in &keys {
        conn.query_one(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))",
            &[key],
        )?;
    }
    let expires = lease_end(now, request.lease)?;
    let mut claimed = Vec::new();
    for mut run in candidates {
        if claimed.len() as u32 >= request.limit {
            break;
        }
        if let (Some(key), Some(limit)) = (&run.concurrency_key, request.limit_of(&run.workflow)) {
            let holding: i64 = conn
                .query_one(
                    "SELECT count(*) FROM workflow_runs WHERE concurrency_key = $1 \
                     AND status = 'running' AND lease_expires_at > $2 AND id <> $3",
                    &[key, &micros(now), &run.id],
                )?
                .try_get(0)
                .map_err(corrupt)?;
            if holding >= i64::from(limit) {
                continue;
            }
        }
        conn.execute(
            "UPDATE workflow_runs SET status = 'running', attempt = attempt + 1, lease_owner = $2, \
             lease_expires_at = $3, started_at = coalesce(started_at, $4), updated_at = $4 WHERE id = $1",
            &[&run.id, &request.owner, &micros(expires), &micros(now)],
        )?;
        run.status = RunStatus::Running;
        run.attempt += 1;
        run.lease_owner = Some(request.owner.clone());
        run.lease_expires_at = Some(expires);
        run.started_at = Some(run.started_at.unwrap_or(now));
        run.updated_at = now;
        let steps = steps_of(conn, run.id)?;
        claimed.push(ClaimedRun {
            lease: Lease {
                run_id: run.id,
                attempt: run.attempt,
                owner: request.owner.clone(),
            },
            lease_expires_at: expires,
            run,
            steps,
        });
    }
    Ok(claimed)
}

/// The fence every engine write checks: run id, attempt, owner, `running`, and a
/// lease that has not expired at `$4` (`$1`..`$4`: run, attempt, owner, now).
const FENCE: &str = "id = $1 AND attempt = $2 AND lease_owner = $3 AND status = 'running' \
                     AND lease_expires_at > $4";

/// Records a step's result (if any) and the run's transition in one statement,
/// only if `lease` still holds: the run row's `UPDATE` is the fence (it locks the
/// row and re-checks the lease against a concurrent heartbeat or takeover), and
/// the step row is written from what that `UPDATE` returned. The statement is its
/// own transaction, relaxed with `set_config` (see [`relax_commit`]): one round
/// trip per step instead of five. Answers whether the lease held.
fn commit_fenced(
    conn: &mut Conn,
    lease: &Lease,
    step: Option<&StepResult>,
    transition: &RunTransition,
    now: Timestamp,
) -> StoreResult<bool> {
    let record = step.map(|step| step.record(now)).transpose()?;
    let attempt = lease.attempt as i32;
    let now_us = micros(now);
    let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> =
        vec![&lease.run_id, &attempt, &lease.owner, &now_us];
    let write = transition.write(now);
    let settle;
    let sets = match &write {
        RunWrite::Touch => "updated_at = $4",
        RunWrite::Release => {
            "status = 'waiting', next_attempt_at = $4, lease_owner = NULL, \
             lease_expires_at = NULL, updated_at = $4"
        }
        RunWrite::Settle {
            status,
            error,
            next_attempt_at,
            finished_at,
        } => {
            settle = (
                status.as_str(),
                error,
                micros(*next_attempt_at),
                finished_at.map(micros),
            );
            params.extend([
                &settle.0 as &(dyn postgres::types::ToSql + Sync),
                settle.1,
                &settle.2,
                &settle.3,
            ]);
            "status = $5, error = $6, next_attempt_at = $7, lease_owner = NULL, \
             lease_expires_at = NULL, finished_at = $8, updated_at = $4"
        }
    };
    let mut sql = format!(
        "WITH {RELAXED}, \
         fenced AS (UPDATE workflow_runs SET {sets} WHERE {FENCE} RETURNING id, user_id)"
    );
    let step_values;
    if let (Some(step), Some(record)) = (step, &record) {
        step_values = (
            record.status.as_str(),
            micros(step.started_at),
            record.finished_at.map(micros),
        );
        let n = params.len();
        params.extend([
            &step.name as &(dyn postgres::types::ToSql + Sync),
            &step_values.0,
            &record.output,
            &record.error,
            &step_values.1,
            &step_values.2,
            &record.duration_us,
        ]);
        let [name, status, output, error, started, finished, duration] =
            std::array::from_fn(|i| format!("${}", n + 1 + i));
        // A succeeded step keeps its first output: the conflict update skips it.
        sql.push_str(&format!(
            ", step AS (INSERT INTO workflow_steps AS s (run_id, name, user_id, seq, status, output, \
               attempts, last_error, first_started_at, last_started_at, finished_at, \
               last_duration_us, total_duration_us) \
             SELECT f.id, {name}::text, f.user_id, \
               (SELECT count(*) + 1 FROM workflow_steps WHERE run_id = $1), {status}::text, \
               {output}::jsonb, 1, {error}::text, {started}::bigint, {started}::bigint, \
               {finished}::bigint, {duration}::bigint, {duration}::bigint FROM fenced f \
             ON CONFLICT (run_id, name) DO UPDATE SET status = excluded.status, \
               output = excluded.output, attempts = s.attempts + 1, \
               last_error = coalesce(excluded.last_error, s.last_error), \
               last_started_at = excluded.last_started_at, finished_at = excluded.finished_at, \
               last_duration_us = excluded.last_duration_us, \
               total_duration_us = s.total_duration_us + excluded.last_duration_us \
             WHERE s.status <> 'succeeded')"
        ));
    }
    sql.push_str(" SELECT (SELECT count(*) FROM fenced) FROM relaxed");
    let held: i64 = conn.query_one(&sql, &params)?.try_get(0).map_err(corrupt)?;
    Ok(held == 1)
}

#[async_trait]
impl WorkflowStore for PostgresStore {
    async fn enqueue_run(&self, scope: &Scope, run: NewRun) -> StoreResult<RunView> {
        run.check()?;
        let now = self.clock().now();
        let user = scope.user_id;
        self.scoped_work(user, move |conn| {
            insert_run(conn, &user, &run, None, now)?;
            load_run(conn, run.id, false)?
                .ok_or_else(|| StoreError::Backend("the run vanished".into()))
        })
        .await
    }

    async fn claim_runs(&self, request: &ClaimRequest) -> StoreResult<Vec<ClaimedRun>> {
        request.check()?;
        if request.workflows.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.clock().now();
        let request = request.clone();
        self.system_work(move |conn| claim(conn, &request, now))
            .await
    }

    async fn heartbeat(&self, lease: &Lease, extend: Duration) -> StoreResult<Fenced<Timestamp>> {
        let now = self.clock().now();
        let expires = lease_end(now, extend)?;
        let lease = lease.clone();
        self.system_work(move |conn| {
            let updated = conn.execute(
                &format!(
                    "UPDATE workflow_runs SET lease_expires_at = $5, updated_at = $4 WHERE {FENCE}"
                ),
                &[
                    &lease.run_id,
                    &(lease.attempt as i32),
                    &lease.owner,
                    &micros(now),
                    &micros(expires),
                ],
            )?;
            Ok(if updated == 1 {
                Fenced::Done(expires)
            } else {
                Fenced::LeaseLost
            })
        })
        .await
    }

    async fn commit_step(
        &self,
        lease: &Lease,
        step: Option<StepResult>,
        run_transition: RunTransition,
    ) -> StoreResult<Fenced<()>> {
        let now = self.clock().now();
        let lease = lease.clone();
        self.system_work(move |conn| {
            Ok(
                if commit_fenced(conn, &lease, step.as_ref(), &run_transition, now)? {
                    Fenced::Done(())
                } else {
                    Fenced::LeaseLost
                },
            )
        })
        .await
    }

    async fn list_runs(
        &self,
        scope: &Scope,
        filter: &RunFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<RunView>> {
        let limit = page.limit()?;
        let after = page.cursor.as_deref().map(decode_run_cursor).transpose()?;
        let (user, filter) = (scope.user_id, filter.clone());
        self.scoped_work(user, move |conn| {
            let sql = format!(
                "SELECT {RUN_COLUMNS} FROM workflow_runs WHERE user_id = $1 \
                 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR workflow = $3) \
                 AND ($4::bigint IS NULL OR (created_at, id) < ($4, $5)) \
                 ORDER BY created_at DESC, id DESC LIMIT $6"
            );
            let mut items = conn
                .query(
                    &sql,
                    &[
                        &user.0,
                        &filter.status.map(RunStatus::as_str),
                        &filter.workflow,
                        &after.map(|(at, _)| at),
                        &after.map(|(_, id)| id),
                        &(i64::from(limit) + 1),
                    ],
                )?
                .iter()
                .map(run_from_row)
                .collect::<StoreResult<Vec<_>>>()?;
            let next_cursor = if items.len() > limit as usize {
                items.truncate(limit as usize);
                items.last().map(run_cursor)
            } else {
                None
            };
            Ok(Page { items, next_cursor })
        })
        .await
    }

    async fn run_detail(&self, scope: &Scope, id: Uuid) -> StoreResult<Option<RunDetail>> {
        let user = scope.user_id;
        self.scoped_work(user, move |conn| {
            let Some(run) = load_run(conn, id, false)?.filter(|r| r.user_id == user) else {
                return Ok(None);
            };
            let steps = steps_of(conn, id)?;
            Ok(Some(RunDetail { run, steps }))
        })
        .await
    }

    async fn retry_run(&self, scope: &Scope, id: Uuid) -> StoreResult<RetryOutcome> {
        let now = micros(self.clock().now());
        let user = scope.user_id;
        self.scoped_work(user, move |conn| {
            let Some(run) = load_run(conn, id, true)?.filter(|r| r.user_id == user) else {
                return Ok(RetryOutcome::NotFound);
            };
            if run.status != RunStatus::Failed {
                return Ok(RetryOutcome::NotFailed(run.status));
            }
            conn.execute(
                "UPDATE workflow_runs SET status = 'queued', next_attempt_at = $2, error = NULL, \
                 finished_at = NULL, updated_at = $2 WHERE id = $1",
                &[&id, &now],
            )?;
            // The failed step runs again with a fresh attempt budget; its last
            // error stays visible until it runs.
            conn.execute(
                "UPDATE workflow_steps SET status = 'pending', attempts = 0, finished_at = NULL \
                 WHERE run_id = $1 AND status = 'failed'",
                &[&id],
            )?;
            let run = load_run(conn, id, false)?
                .ok_or_else(|| StoreError::Backend("the run vanished".into()))?;
            Ok(RetryOutcome::Requeued(Box::new(run)))
        })
        .await
    }

    async fn cancel_run(&self, scope: &Scope, id: Uuid) -> StoreResult<Option<RunView>> {
        let now = micros(self.clock().now());
        let user = scope.user_id;
        self.scoped_work(user, move |conn| {
            conn.execute(
                "UPDATE workflow_runs SET status = 'cancelled', lease_owner = NULL, \
                 lease_expires_at = NULL, finished_at = $3, updated_at = $3 \
                 WHERE id = $1 AND user_id = $2 AND status IN ('queued', 'running', 'waiting')",
                &[&id, &user.0, &now],
            )?;
            Ok(load_run(conn, id, false)?.filter(|r| r.user_id == user))
        })
        .await
    }

    async fn ensure_schedules(&self, spec: &ScheduleSpec) -> StoreResult<u64> {
        check_schedule(spec)?;
        let now = micros(self.clock().now());
        let spec = spec.clone();
        self.system_work(move |conn| {
            conn.transaction(None, |conn| {
                let users: Vec<uuid::Uuid> = conn
                    .query(
                        "SELECT u.id FROM users u WHERE u.disabled_at IS NULL AND NOT EXISTS \
                         (SELECT 1 FROM workflow_schedules s WHERE s.user_id = u.id AND s.name = $1)",
                        &[&spec.name],
                    )?
                    .iter()
                    .map(|row| row.try_get(0).map_err(crate::codec::corrupt))
                    .collect::<StoreResult<_>>()?;
                let mut made = 0;
                for user in users {
                    // Another process may ensure the same schedule at once.
                    made += conn.execute(
                        "INSERT INTO workflow_schedules (id, user_id, name, workflow, cron, input, next_fire_at, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT (user_id, name) DO NOTHING",
                        &[
                            &Uuid::now_v7(),
                            &user,
                            &spec.name,
                            &spec.workflow,
                            &spec.cron,
                            &spec.input,
                            &micros(spec.next_fire_at),
                            &now,
                        ],
                    )?;
                }
                Ok(made)
            })
        })
        .await
    }

    async fn put_schedule(&self, scope: &Scope, spec: ScheduleSpec) -> StoreResult<Schedule> {
        check_schedule(&spec)?;
        let now = micros(self.clock().now());
        let user = scope.user_id;
        self.scoped_work(user, move |conn| {
            let sql = format!(
                "INSERT INTO workflow_schedules AS s (id, user_id, name, workflow, cron, input, next_fire_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
                 ON CONFLICT (user_id, name) DO UPDATE SET workflow = excluded.workflow, \
                   input = excluded.input, cron = excluded.cron, updated_at = excluded.updated_at, \
                   next_fire_at = CASE WHEN s.cron = excluded.cron THEN s.next_fire_at ELSE excluded.next_fire_at END \
                 RETURNING {SCHEDULE_COLUMNS}"
            );
            let row = conn.query_one(
                &sql,
                &[
                    &Uuid::now_v7(),
                    &user.0,
                    &spec.name,
                    &spec.workflow,
                    &spec.cron,
                    &spec.input,
                    &micros(spec.next_fire_at),
                    &now,
                ],
            )?;
            schedule_from_row(&row)
        })
        .await
    }

    async fn list_schedules(&self, scope: &Scope) -> StoreResult<Vec<Schedule>> {
        let user = scope.user_id;
        self.scoped_work(user, move |conn| {
            let sql = format!(
                "SELECT {SCHEDULE_COLUMNS} FROM workflow_schedules WHERE user_id = $1 ORDER BY name"
            );
            conn.query(&sql, &[&user.0])?
                .iter()
                .map(schedule_from_row)
                .collect()
        })
        .await
    }

    async fn due_schedules(&self, limit: u32) -> StoreResult<Vec<Schedule>> {
        let now = micros(self.clock().now());
        let limit = i64::from(limit.min(SCHEDULE_BATCH_MAX));
        self.system_work(move |conn| {
            let sql = format!(
                "SELECT {SCHEDULE_COLUMNS} FROM workflow_schedules WHERE next_fire_at <= $1 \
                 ORDER BY next_fire_at LIMIT $2"
            );
            conn.query(&sql, &[&now, &limit])?
                .iter()
                .map(schedule_from_row)
                .collect()
        })
        .await
    }

    async fn purge_finished_runs(
        &self,
        finished_before: Timestamp,
        limit: u32,
    ) -> StoreResult<u64> {
        check_purge_limit(limit)?;
        let (before, limit) = (micros(finished_before), i64::from(limit));
        self.system_work(move |conn| {
            let purged = conn.execute(
                &format!(
                    "WITH {RELAXED}, \
                     chosen AS (SELECT id FROM workflow_runs WHERE finished_at < $1 \
                       AND status IN ('succeeded', 'failed', 'cancelled') \
                       ORDER BY finished_at, id LIMIT $2 FOR UPDATE SKIP LOCKED), \
                     steps AS (DELETE FROM workflow_steps WHERE run_id IN (SELECT id FROM chosen)) \
                     DELETE FROM workflow_runs r USING chosen c, relaxed WHERE r.id = c.id"
                ),
                &[&before, &limit],
            )?;
            Ok(purged)
        })
        .await
    }

    async fn fire_schedule(
        &self,
        schedule: &Schedule,
        fired_at: Timestamp,
        next: Timestamp,
    ) -> StoreResult<bool> {
        let now = self.clock().now();
        let schedule = schedule.clone();
        self.scoped_work(schedule.user_id, move |conn| {
            let moved = conn.execute(
                "UPDATE workflow_schedules SET next_fire_at = $3, updated_at = $4 \
                 WHERE id = $1 AND next_fire_at = $2",
                &[&schedule.id, &micros(fired_at), &micros(next), &micros(now)],
            )?;
            if moved == 0 {
                return Ok(false);
            }
            let run = NewRun {
                id: scheduled_run_id(schedule.id, fired_at),
                workflow: schedule.workflow.clone(),
                input: schedule.input.clone(),
                concurrency_key: None,
                not_before: None,
            };
            insert_run(conn, &schedule.user_id, &run, None, now)?;
            Ok(true)
        })
        .await
    }

    async fn queue_depth(&self) -> StoreResult<Vec<QueueDepth>> {
        self.system_work(|conn| {
            conn.query(
                "SELECT workflow, status, count(*) FROM workflow_runs \
                 WHERE status IN ('queued', 'running', 'waiting') GROUP BY workflow, status \
                 ORDER BY workflow, status",
                &[],
            )?
            .iter()
            .map(|row| {
                let status: String = row.try_get(1).map_err(corrupt)?;
                Ok(QueueDepth {
                    workflow: row.try_get(0).map_err(corrupt)?,
                    status: RunStatus::parse(&status)
                        .ok_or_else(|| StoreError::Corrupt(format!("run status {status}")))?,
                    count: row.try_get::<_, i64>(2).map_err(corrupt)? as u64,
                })
            })
            .collect()
        })
        .await
    }
}
