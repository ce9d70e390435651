//! The workflow tables on SQLite (`synap_store::workflow`): runs, memoised steps
//! and cron schedules.
//!
//! Every write goes through this process's writer thread (an exclusive job on the
//! write connection) inside `BEGIN IMMEDIATE`, so claims are serialised within the
//! process by the single writer and across processes by SQLite's write lock:
//! a second process (`synap worker` next to `synap serve`) on the same file waits
//! for the lock (the busy timeout), then reads the committed rows — two claims
//! can never both see a run as claimable. Runs a command triggers are inserted by
//! the writer inside the command's own transaction ([`insert_run`]).

use crate::codec::{
    is_unique_violation, micros, opt_timestamp, run_cached, sql_error, timestamp, uuid,
};
use crate::store::SqliteStore;
use async_trait::async_trait;
use jiff::Timestamp;
use rusqlite::{Connection, Row, params};
use std::time::Duration;
use synap_domain::ids::UserId;
use synap_store::workflow::{
    CLAIM_SCAN_FACTOR, ClaimRequest, ClaimedRun, Fenced, Lease, NewRun, QueueDepth, RetryOutcome,
    RunDetail, RunFilter, RunStatus, RunTransition, RunView, RunWrite, Schedule, ScheduleSpec,
    StepResult, StepStatus, StepView, WorkflowStore, check_purge_limit, check_schedule,
    decode_run_cursor, lease_end, run_cursor, scheduled_run_id,
};
use synap_store::{Page, PageRequest, Scope, StoreError, StoreResult};
use uuid::Uuid;

/// Migration 2 of `schema::MIGRATIONS`: the workflow tables.
pub const SCHEMA: &str = r#"
CREATE TABLE workflow_runs (
    id               BLOB PRIMARY KEY,
    user_id          BLOB NOT NULL,
    workflow         TEXT NOT NULL,
    input            TEXT NOT NULL,
    trigger_position INTEGER,
    status           TEXT NOT NULL,
    attempt          INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    next_attempt_at  INTEGER NOT NULL,
    concurrency_key  TEXT,
    error            TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER
) WITHOUT ROWID;
CREATE INDEX workflow_runs_ready ON workflow_runs(next_attempt_at) WHERE status IN ('queued', 'waiting');
CREATE INDEX workflow_runs_leased ON workflow_runs(lease_expires_at) WHERE status = 'running';
CREATE INDEX workflow_runs_by_key ON workflow_runs(concurrency_key, lease_expires_at) WHERE status = 'running';
CREATE INDEX workflow_runs_by_user ON workflow_runs(user_id, created_at DESC, id DESC);

CREATE TABLE workflow_steps (
    run_id            BLOB NOT NULL,
    name              TEXT NOT NULL,
    seq               INTEGER NOT NULL,
    status            TEXT NOT NULL,
    output            TEXT,
    attempts          INTEGER NOT NULL,
    last_error        TEXT,
    first_started_at  INTEGER NOT NULL,
    last_started_at   INTEGER NOT NULL,
    finished_at       INTEGER,
    last_duration_us  INTEGER NOT NULL,
    total_duration_us INTEGER NOT NULL,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;

CREATE TABLE workflow_schedules (
    id           BLOB PRIMARY KEY,
    user_id      BLOB NOT NULL,
    name         TEXT NOT NULL,
    workflow     TEXT NOT NULL,
    cron         TEXT NOT NULL,
    input        TEXT NOT NULL,
    next_fire_at INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (user_id, name)
) WITHOUT ROWID;
CREATE INDEX workflow_schedules_due ON workflow_schedules(next_fire_at);
"#;

/// Migration 8: finished runs by finishing time (the retention purge's order).
pub const RETENTION_INDEX: &str = "CREATE INDEX workflow_runs_finished ON workflow_runs (finished_at) \
     WHERE finished_at IS NOT NULL;";

const RUN_COLUMNS: &str = "id, user_id, workflow, input, trigger_position, status, attempt, \
    lease_owner, lease_expires_at, next_attempt_at, concurrency_key, error, created_at, \
    updated_at, started_at, finished_at";

const STEP_COLUMNS: &str = "name, status, output, attempts, last_error, first_started_at, \
    last_started_at, finished_at, last_duration_us, total_duration_us";

const SCHEDULE_COLUMNS: &str = "id, user_id, name, workflow, cron, input, next_fire_at";

fn json_text(value: &serde_json::Value) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(e.to_string()))
}

fn json_value(text: &str) -> StoreResult<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("stored JSON: {e}")))
}

fn run_from_row(row: &Row<'_>) -> StoreResult<RunView> {
    let get = |e: rusqlite::Error| sql_error(e);
    let status: String = row.get(5).map_err(get)?;
    Ok(RunView {
        id: uuid(&row.get::<_, Vec<u8>>(0).map_err(get)?)?,
        user_id: UserId(uuid(&row.get::<_, Vec<u8>>(1).map_err(get)?)?),
        workflow: row.get(2).map_err(get)?,
        input: json_value(&row.get::<_, String>(3).map_err(get)?)?,
        trigger_position: row.get::<_, Option<i64>>(4).map_err(get)?.map(|p| p as u64),
        status: RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("run status {status}")))?,
        attempt: row.get::<_, i64>(6).map_err(get)? as u32,
        lease_owner: row.get(7).map_err(get)?,
        lease_expires_at: opt_timestamp(row.get(8).map_err(get)?)?,
        next_attempt_at: timestamp(row.get(9).map_err(get)?)?,
        concurrency_key: row.get(10).map_err(get)?,
        error: row.get(11).map_err(get)?,
        created_at: timestamp(row.get(12).map_err(get)?)?,
        updated_at: timestamp(row.get(13).map_err(get)?)?,
        started_at: opt_timestamp(row.get(14).map_err(get)?)?,
        finished_at: opt_timestamp(row.get(15).map_err(get)?)?,
    })
}

fn step_from_row(row: &Row<'_>) -> StoreResult<StepView> {
    let get = |e: rusqlite::Error| sql_error(e);
    let status: String = row.get(1).map_err(get)?;
    Ok(StepView {
        name: row.get(0).map_err(get)?,
        status: StepStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("step status {status}")))?,
        output: row
            .get::<_, Option<String>>(2)
            .map_err(get)?
            .map(|t| json_value(&t))
            .transpose()?,
        attempts: row.get::<_, i64>(3).map_err(get)? as u32,
        last_error: row.get(4).map_err(get)?,
        first_started_at: timestamp(row.get(5).map_err(get)?)?,
        last_started_at: timestamp(row.get(6).map_err(get)?)?,
        finished_at: opt_timestamp(row.get(7).map_err(get)?)?,
        last_duration_us: row.get::<_, i64>(8).map_err(get)? as u64,
        total_duration_us: row.get::<_, i64>(9).map_err(get)? as u64,
    })
}

fn schedule_from_row(row: &Row<'_>) -> StoreResult<Schedule> {
    let get = |e: rusqlite::Error| sql_error(e);
    Ok(Schedule {
        id: uuid(&row.get::<_, Vec<u8>>(0).map_err(get)?)?,
        user_id: UserId(uuid(&row.get::<_, Vec<u8>>(1).map_err(get)?)?),
        name: row.get(2).map_err(get)?,
        workflow: row.get(3).map_err(get)?,
        cron: row.get(4).map_err(get)?,
        input: json_value(&row.get::<_, String>(5).map_err(get)?)?,
        next_fire_at: timestamp(row.get(6).map_err(get)?)?,
    })
}

/// Inserts a queued run (checked by the caller). Used by the command writer
/// inside the command's transaction, and by direct enqueues.
pub fn insert_run(
    conn: &Connection,
    user: &UserId,
    run: &NewRun,
    trigger_position: Option<u64>,
    now: Timestamp,
) -> StoreResult<()> {
    let next = run.not_before.unwrap_or(now).max(now);
    conn.prepare_cached(
        "INSERT INTO workflow_runs (id, user_id, workflow, input, trigger_position, status, attempt, \
         next_attempt_at, concurrency_key, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, 'queued', 0, ?6, ?7, ?8, ?8)",
    )
    .map_err(sql_error)?
    .execute(params![
        run.id.as_bytes(),
        user.as_bytes(),
        run.workflow,
        json_text(&run.input)?,
        trigger_position.map(|p| p as i64),
        micros(next),
        run.concurrency_key,
        micros(now),
    ])
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::InvalidInput(format!("run id {} was already used; send a new one", run.id))
        } else {
            sql_error(e)
        }
    })?;
    Ok(())
}

fn load_run(conn: &Connection, id: Uuid, user: Option<&UserId>) -> StoreResult<Option<RunView>> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM workflow_runs WHERE id = ?1");
    let mut statement = conn.prepare_cached(&sql).map_err(sql_error)?;
    let mut rows = statement.query([id.as_bytes()]).map_err(sql_error)?;
    let Some(row) = rows.next().map_err(sql_error)? else {
        return Ok(None);
    };
    let run = run_from_row(row)?;
    Ok(user.is_none_or(|u| *u == run.user_id).then_some(run))
}

fn steps_of(conn: &Connection, run_id: Uuid) -> StoreResult<Vec<StepView>> {
    let sql = format!("SELECT {STEP_COLUMNS} FROM workflow_steps WHERE run_id = ?1 ORDER BY seq");
    let mut statement = conn.prepare_cached(&sql).map_err(sql_error)?;
    let mut rows = statement.query([run_id.as_bytes()]).map_err(sql_error)?;
    let mut steps = Vec::new();
    while let Some(row) = rows.next().map_err(sql_error)? {
        steps.push(step_from_row(row)?);
    }
    Ok(steps)
}

/// Runs `work` in a `BEGIN IMMEDIATE` transaction: commit on `Ok`, roll back on `Err`.
pub(crate) fn write_tx<T>(
    conn: &mut Connection,
    work: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    run_cached(conn, "BEGIN IMMEDIATE").map_err(sql_error)?;
    match work(conn) {
        Ok(value) => match run_cached(conn, "COMMIT") {
            Ok(()) => Ok(value),
            Err(error) => {
                let _ = run_cached(conn, "ROLLBACK");
                Err(sql_error(error))
            }
        },
        Err(error) => {
            let _ = run_cached(conn, "ROLLBACK");
            Err(error)
        }
    }
}

/// [`write_tx`] for writes that can be done again: the engine's own bookkeeping
/// (claims, heartbeats, step results, schedule firings) and search vectors,
/// committed with `synchronous=NORMAL` even on a
/// durable store: the commit is not fsynced by itself but by the next durable
/// commit or checkpoint (the WAL is sequential), so a power cut can forget at
/// most the last few of these — the engine then runs those steps again, which
/// every step must tolerate anyway (at-least-once, idempotency keys), or the
/// indexer embeds those entities again — and never
/// a user's acknowledged write or a run's enqueueing, which stay durable. Saves
/// one fsync per step.
pub(crate) fn relaxed_write_tx<T>(
    conn: &mut Connection,
    work: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    let level: i64 = conn
        .prepare_cached("PRAGMA synchronous")
        .and_then(|mut statement| statement.query_row([], |r| r.get(0)))
        .map_err(sql_error)?;
    const NORMAL: i64 = 1;
    if level <= NORMAL {
        return write_tx(conn, work);
    }
    run_cached(conn, "PRAGMA synchronous = NORMAL").map_err(sql_error)?;
    let result = write_tx(conn, work);
    let restored = run_cached(conn, &format!("PRAGMA synchronous = {level}")).map_err(sql_error);
    let value = result?;
    restored?;
    Ok(value)
}

fn claim(
    conn: &Connection,
    request: &ClaimRequest,
    now: Timestamp,
) -> StoreResult<Vec<ClaimedRun>> {
    let names: Vec<&str> = request.workflows.iter().map(|w| w.name.as_str()).collect();
    let names = serde_json::to_string(&names).map_err(|e| StoreError::Backend(e.to_string()))?;
    let scan = request.limit.saturating_mul(CLAIM_SCAN_FACTOR);
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM workflow_runs \
         WHERE ((status IN ('queued', 'waiting') AND next_attempt_at <= ?1) \
                OR (status = 'running' AND lease_expires_at <= ?1)) \
           AND workflow IN (SELECT value FROM json_each(?2)) \
         ORDER BY next_attempt_at, id LIMIT ?3"
    );
    let mut candidates = Vec::new();
    {
        let mut statement = conn.prepare_cached(&sql).map_err(sql_error)?;
        let mut rows = statement
            .query(params![micros(now), names, scan])
            .map_err(sql_error)?;
        while let Some(row) = rows.next().map_err(sql_error)? {
            candidates.push(run_from_row(row)?);
        }
    }
    let expires = lease_end(now, request.lease)?;
    let mut claimed = Vec::new();
    for mut run in candidates {
        if claimed.len() as u32 >= request.limit {
            break;
        }
        if let (Some(key), Some(limit)) = (&run.concurrency_key, request.limit_of(&run.workflow)) {
            // Runs of this key that hold a live lease — including those claimed
            // earlier in this transaction.
            let holding: i64 = conn
                .prepare_cached(
                    "SELECT count(*) FROM workflow_runs WHERE concurrency_key = ?1 \
                     AND status = 'running' AND lease_expires_at > ?2 AND id <> ?3",
                )
                .map_err(sql_error)?
                .query_row(params![key, micros(now), run.id.as_bytes()], |r| r.get(0))
                .map_err(sql_error)?;
            if holding >= i64::from(limit) {
                continue;
            }
        }
        conn.prepare_cached(
            "UPDATE workflow_runs SET status = 'running', attempt = attempt + 1, lease_owner = ?2, \
             lease_expires_at = ?3, started_at = coalesce(started_at, ?4), updated_at = ?4 WHERE id = ?1",
        )
        .map_err(sql_error)?
        .execute(params![run.id.as_bytes(), request.owner, micros(expires), micros(now)])
        .map_err(sql_error)?;
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

/// Whether `lease` is still held at `now` (inside the write transaction).
fn holds(conn: &Connection, lease: &Lease, now: Timestamp) -> StoreResult<bool> {
    conn.prepare_cached(
        "SELECT 1 FROM workflow_runs WHERE id = ?1 AND attempt = ?2 AND lease_owner = ?3 \
         AND status = 'running' AND lease_expires_at > ?4",
    )
    .map_err(sql_error)?
    .exists(params![
        lease.run_id.as_bytes(),
        i64::from(lease.attempt),
        lease.owner,
        micros(now)
    ])
    .map_err(sql_error)
}

fn record_step(
    conn: &Connection,
    run_id: Uuid,
    step: &StepResult,
    now: Timestamp,
) -> StoreResult<()> {
    let record = step.record(now)?;
    let output = record.output.map(json_text).transpose()?;
    // A succeeded step keeps its first output: the conflict update skips it.
    conn.prepare_cached(
        "INSERT INTO workflow_steps (run_id, name, seq, status, output, attempts, last_error, \
           first_started_at, last_started_at, finished_at, last_duration_us, total_duration_us) \
         VALUES (?1, ?2, (SELECT count(*) + 1 FROM workflow_steps WHERE run_id = ?1), ?3, ?4, 1, ?5, \
           ?6, ?6, ?7, ?8, ?8) \
         ON CONFLICT (run_id, name) DO UPDATE SET status = excluded.status, \
           output = excluded.output, attempts = attempts + 1, \
           last_error = coalesce(excluded.last_error, last_error), \
           last_started_at = excluded.last_started_at, finished_at = excluded.finished_at, \
           last_duration_us = excluded.last_duration_us, \
           total_duration_us = total_duration_us + excluded.last_duration_us \
         WHERE workflow_steps.status <> 'succeeded'",
    )
    .map_err(sql_error)?
    .execute(params![
        run_id.as_bytes(),
        step.name,
        record.status.as_str(),
        output,
        record.error,
        micros(step.started_at),
        record.finished_at.map(micros),
        record.duration_us,
    ])
    .map_err(sql_error)?;
    Ok(())
}

fn transition(
    conn: &Connection,
    run_id: Uuid,
    transition: &RunTransition,
    now: Timestamp,
) -> StoreResult<()> {
    let id = run_id.as_bytes();
    let result = match transition.write(now) {
        RunWrite::Touch => conn
            .prepare_cached("UPDATE workflow_runs SET updated_at = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id, micros(now)])),
        RunWrite::Release => conn
            .prepare_cached(
                "UPDATE workflow_runs SET status = 'waiting', next_attempt_at = ?2, lease_owner = NULL, \
                 lease_expires_at = NULL, updated_at = ?2 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![id, micros(now)])),
        RunWrite::Settle {
            status,
            error,
            next_attempt_at,
            finished_at,
        } => conn
            .prepare_cached(
                "UPDATE workflow_runs SET status = ?2, error = ?3, next_attempt_at = ?4, \
                 lease_owner = NULL, lease_expires_at = NULL, finished_at = ?5, updated_at = ?6 \
                 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    status.as_str(),
                    error,
                    micros(next_attempt_at),
                    finished_at.map(micros),
                    micros(now)
                ])
            }),
    };
    result.map(|_| ()).map_err(sql_error)
}

#[async_trait]
impl WorkflowStore for SqliteStore {
    async fn enqueue_run(&self, scope: &Scope, run: NewRun) -> StoreResult<RunView> {
        run.check()?;
        let now = self.clock().now();
        let user = scope.user_id;
        self.exclusive(move |conn| {
            write_tx(conn, |conn| {
                insert_run(conn, &user, &run, None, now)?;
                load_run(conn, run.id, None)?
                    .ok_or_else(|| StoreError::Backend("the run vanished".into()))
            })
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
        self.exclusive(move |conn| relaxed_write_tx(conn, |conn| claim(conn, &request, now)))
            .await
    }

    async fn heartbeat(&self, lease: &Lease, extend: Duration) -> StoreResult<Fenced<Timestamp>> {
        let now = self.clock().now();
        let expires = lease_end(now, extend)?;
        let lease = lease.clone();
        self.exclusive(move |conn| {
            relaxed_write_tx(conn, |conn| {
                if !holds(conn, &lease, now)? {
                    return Ok(Fenced::LeaseLost);
                }
                conn.prepare_cached(
                    "UPDATE workflow_runs SET lease_expires_at = ?2, updated_at = ?3 WHERE id = ?1",
                )
                .map_err(sql_error)?
                .execute(params![
                    lease.run_id.as_bytes(),
                    micros(expires),
                    micros(now)
                ])
                .map_err(sql_error)?;
                Ok(Fenced::Done(expires))
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
        self.exclusive(move |conn| {
            relaxed_write_tx(conn, |conn| {
                if !holds(conn, &lease, now)? {
                    return Ok(Fenced::LeaseLost);
                }
                if let Some(step) = &step {
                    record_step(conn, lease.run_id, step, now)?;
                }
                transition(conn, lease.run_id, &run_transition, now)?;
                Ok(Fenced::Done(()))
            })
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
        self.read(move |conn| {
            let sql = format!(
                "SELECT {RUN_COLUMNS} FROM workflow_runs WHERE user_id = ?1 \
                 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR workflow = ?3) \
                 AND (?4 IS NULL OR created_at < ?4 OR (created_at = ?4 AND id < ?5)) \
                 ORDER BY created_at DESC, id DESC LIMIT ?6"
            );
            let mut statement = conn.prepare_cached(&sql).map_err(sql_error)?;
            let mut rows = statement
                .query(params![
                    user.as_bytes(),
                    filter.status.map(RunStatus::as_str),
                    filter.workflow,
                    after.map(|(at, _)| at),
                    after.map(|(_, id)| id.as_bytes().to_vec()),
                    i64::from(limit) + 1,
                ])
                .map_err(sql_error)?;
            let mut items = Vec::new();
            while let Some(row) = rows.next().map_err(sql_error)? {
                items.push(run_from_row(row)?);
            }
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
        self.read(move |conn| {
            let Some(run) = load_run(conn, id, Some(&user))? else {
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
        self.exclusive(move |conn| {
            write_tx(conn, |conn| {
                let Some(run) = load_run(conn, id, Some(&user))? else {
                    return Ok(RetryOutcome::NotFound);
                };
                if run.status != RunStatus::Failed {
                    return Ok(RetryOutcome::NotFailed(run.status));
                }
                conn.prepare_cached(
                    "UPDATE workflow_runs SET status = 'queued', next_attempt_at = ?2, error = NULL, \
                     finished_at = NULL, updated_at = ?2 WHERE id = ?1",
                )
                .map_err(sql_error)?
                .execute(params![id.as_bytes(), now])
                .map_err(sql_error)?;
                // The failed step runs again with a fresh attempt budget; its last
                // error stays visible until it runs.
                conn.prepare_cached(
                    "UPDATE workflow_steps SET status = 'pending', attempts = 0, finished_at = NULL \
                     WHERE run_id = ?1 AND status = 'failed'",
                )
                .map_err(sql_error)?
                .execute([id.as_bytes()])
                .map_err(sql_error)?;
                let run = load_run(conn, id, None)?
                    .ok_or_else(|| StoreError::Backend("the run vanished".into()))?;
                Ok(RetryOutcome::Requeued(Box::new(run)))
            })
        })
        .await
    }

    async fn cancel_run(&self, scope: &Scope, id: Uuid) -> StoreResult<Option<RunView>> {
        let now = micros(self.clock().now());
        let user = scope.user_id;
        self.exclusive(move |conn| {
            write_tx(conn, |conn| {
                conn.prepare_cached(
                    "UPDATE workflow_runs SET status = 'cancelled', lease_owner = NULL, \
                     lease_expires_at = NULL, finished_at = ?3, updated_at = ?3 \
                     WHERE id = ?1 AND user_id = ?2 AND status IN ('queued', 'running', 'waiting')",
                )
                .map_err(sql_error)?
                .execute(params![id.as_bytes(), user.as_bytes(), now])
                .map_err(sql_error)?;
                load_run(conn, id, Some(&user))
            })
        })
        .await
    }

    async fn ensure_schedules(&self, spec: &ScheduleSpec) -> StoreResult<u64> {
        check_schedule(spec)?;
        let now = micros(self.clock().now());
        let spec = spec.clone();
        self.exclusive(move |conn| {
            write_tx(conn, |conn| {
                let input = json_text(&spec.input)?;
                let users: Vec<Vec<u8>> = {
                    let mut statement = conn
                        .prepare_cached(
                            "SELECT u.id FROM users u WHERE u.disabled_at IS NULL AND NOT EXISTS \
                             (SELECT 1 FROM workflow_schedules s WHERE s.user_id = u.id AND s.name = ?1)",
                        )
                        .map_err(sql_error)?;
                    let rows = statement
                        .query_map(params![spec.name], |row| row.get(0))
                        .map_err(sql_error)?;
                    rows.collect::<Result<_, _>>().map_err(sql_error)?
                };
                for user in &users {
                    conn.prepare_cached(
                        "INSERT INTO workflow_schedules (id, user_id, name, workflow, cron, input, next_fire_at, created_at, updated_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                    )
                    .map_err(sql_error)?
                    .execute(params![
                        Uuid::now_v7().as_bytes(),
                        user,
                        spec.name,
                        spec.workflow,
                        spec.cron,
                        input,
                        micros(spec.next_fire_at),
                        now,
                    ])
                    .map_err(sql_error)?;
                }
                Ok(users.len() as u64)
            })
        })
        .await
    }

    async fn put_schedule(&self, scope: &Scope, spec: ScheduleSpec) -> StoreResult<Schedule> {
        check_schedule(&spec)?;
        let now = micros(self.clock().now());
        let user = scope.user_id;
        self.exclusive(move |conn| {
            write_tx(conn, |conn| {
                conn.prepare_cached(
                    "INSERT INTO workflow_schedules (id, user_id, name, workflow, cron, input, next_fire_at, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) \
                     ON CONFLICT (user_id, name) DO UPDATE SET workflow = excluded.workflow, \
                       input = excluded.input, cron = excluded.cron, updated_at = excluded.updated_at, \
                       next_fire_at = CASE WHEN cron = excluded.cron THEN next_fire_at ELSE excluded.next_fire_at END",
                )
                .map_err(sql_error)?
                .execute(params![
                    Uuid::now_v7().as_bytes(),
                    user.as_bytes(),
                    spec.name,
                    spec.workflow,
                    spec.cron,
                    json_text(&spec.input)?,
                    micros(spec.next_fire_at),
                    now,
                ])
                .map_err(sql_error)?;
                let sql = format!(
                    "SELECT {SCHEDULE_COLUMNS} FROM workflow_schedules WHERE user_id = ?1 AND name = ?2"
                );
                let mut statement = conn.prepare_cached(&sql).map_err(sql_error)?;
                let mut rows = statement
                    .query(params![user.as_bytes(), spec.name])
                    .map_err(sql_error)?;
                let row = rows
                    .next()
                    .map_err(sql_error)?
                    .ok_or_else(|| StoreError::Backend("the schedule vanished".into()))?;
                schedule_from_row(row)
            })
        })
        .await
    }

    async fn list_schedules(&self, scope: &Scope) -> StoreResult<Vec<Schedule>> {
        let user = scope.user_id;
        self.read(move |conn| {
            let sql = format!(
                "SELECT {SCHEDULE_COLUMNS} FROM workflow_schedules WHERE user_id = ?1 ORDER BY name"
            );
            let mut statement = conn.prepare_cached(&sql).map_err(sql_error)?;
            let mut rows = statement.query([user.as_bytes()]).map_err(sql_error)?;
            let mut schedules = Vec::new();
            while let Some(row) = rows.next().map_err(sql_error)? {
                schedules.push(schedule_from_row(row)?);
            }
            Ok(schedules)
        })
        .await
    }

    async fn due_schedules(&self, limit: u32) -> StoreResult<Vec<Schedule>> {
        let now = micros(self.clock().now());
        let limit = limit.min(synap_store::workflow::SCHEDULE_BATCH_MAX);
        self.read(move |conn| {
            let sql = format!(
                "SELECT {SCHEDULE_COLUMNS} FROM workflow_schedules WHERE next_fire_at <= ?1 \
                 ORDER BY next_fire_at LIMIT ?2"
            );
            let mut statement = conn.prepare_cached(&sql).map_err(sql_error)?;
            let mut rows = statement.query(params![now, limit]).map_err(sql_error)?;
            let mut schedules = Vec::new();
            while let Some(row) = rows.next().map_err(sql_error)? {
                schedules.push(schedule_from_row(row)?);
            }
            Ok(schedules)
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
        self.exclusive(move |conn| {
            relaxed_write_tx(conn, |conn| {
                let moved = conn
                    .prepare_cached(
                        "UPDATE workflow_schedules SET next_fire_at = ?3, updated_at = ?4 \
                         WHERE id = ?1 AND next_fire_at = ?2",
                    )
                    .map_err(sql_error)?
                    .execute(params![
                        schedule.id.as_bytes(),
                        micros(fired_at),
                        micros(next),
                        micros(now)
                    ])
                    .map_err(sql_error)?;
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
        })
        .await
    }

    async fn queue_depth(&self) -> StoreResult<Vec<QueueDepth>> {
        self.read(|conn| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT workflow, status, count(*) FROM workflow_runs \
                     WHERE status IN ('queued', 'running', 'waiting') GROUP BY workflow, status \
                     ORDER BY workflow, status",
                )
                .map_err(sql_error)?;
            let mut rows = statement.query([]).map_err(sql_error)?;
            let mut depths = Vec::new();
            while let Some(row) = rows.next().map_err(sql_error)? {
                let status: String = row.get(1).map_err(sql_error)?;
                depths.push(QueueDepth {
                    workflow: row.get(0).map_err(sql_error)?,
                    status: RunStatus::parse(&status)
                        .ok_or_else(|| StoreError::Corrupt(format!("run status {status}")))?,
                    count: row.get::<_, i64>(2).map_err(sql_error)? as u64,
                });
            }
            Ok(depths)
        })
        .await
    }

    async fn purge_finished_runs(
        &self,
        finished_before: Timestamp,
        limit: u32,
    ) -> StoreResult<u64> {
        check_purge_limit(limit)?;
        let before = micros(finished_before);
        self.exclusive(move |conn| {
            relaxed_write_tx(conn, |conn| {
                // The same oldest-first selection twice in one transaction: the
                // steps of the chosen runs, then the runs.
                let chosen = "SELECT id FROM workflow_runs WHERE finished_at < ?1 \
                     AND status IN ('succeeded', 'failed', 'cancelled') \
                     ORDER BY finished_at, id LIMIT ?2";
                conn.prepare_cached(&format!(
                    "DELETE FROM workflow_steps WHERE run_id IN ({chosen})"
                ))
                .and_then(|mut s| s.execute(params![before, limit]))
                .map_err(sql_error)?;
                let runs = conn
                    .prepare_cached(&format!("DELETE FROM workflow_runs WHERE id IN ({chosen})"))
                    .and_then(|mut s| s.execute(params![before, limit]))
                    .map_err(sql_error)?;
                Ok(runs as u64)
            })
        })
        .await
    }
}
