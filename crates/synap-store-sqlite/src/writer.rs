//! The writer thread: the only place this process writes. Commands that arrive
//! together are run in one transaction (group commit): `BEGIN IMMEDIATE`, each
//! command in its own savepoint (a refused command rolls back alone), one `COMMIT`
//! — one fsync for the whole group — then every caller gets its answer.
//!
//! `SqliteWrite` implements the shared pipeline's `WriteTransaction` on the open
//! transaction.

use crate::checkpointer::CheckpointPoke;
use crate::codec::{is_unique_violation, micros, sql_error, uuid};
use crate::project;
use crate::read;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use synap_domain::entity::{ContentRef, EntityState};
use synap_domain::ids::{ContentHash, EntityId, RelationId};
use synap_domain::relation::{RelationKind, RelationState};
use synap_store::objects::Objects;
use synap_store::pipeline::{NewEvent, WriteTransaction, run_command};
use synap_store::{
    AppendedEvent, Clock, CommandOutcome, CommandRequest, Scope, StoreError, StoreResult,
};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

/// Most commands grouped into one transaction.
pub const GROUP_COMMIT_MAX: usize = 256;
/// A group stops gathering when no command arrived for this long...
pub const GROUP_GATHER_QUIET: Duration = Duration::from_micros(30);
/// ...or when it has gathered for this long (bounds the latency it adds).
pub const GROUP_GATHER_MAX: Duration = Duration::from_micros(600);
/// Most commands waiting for the writer; senders wait when it is full (backpressure).
pub const WRITE_QUEUE_MAX: usize = 4_096;

/// Work for the writer thread.
pub enum Job {
    Command {
        request: Box<CommandRequest>,
        reply: oneshot::Sender<StoreResult<CommandOutcome>>,
    },
    /// Runs alone on the write connection (rebuild, account changes).
    Exclusive(Box<dyn FnOnce(&mut Connection) + Send>),
}

/// Runs the writer loop until every sender is gone.
pub fn run(
    mut conn: Connection,
    mut jobs: mpsc::Receiver<Job>,
    head: watch::Sender<u64>,
    clock: Arc<dyn Clock>,
    objects: Option<Arc<Objects>>,
    checkpoints: CheckpointPoke,
) {
    let mut deferred: Option<Job> = None;
    loop {
        let Some(job) = deferred.take().or_else(|| jobs.blocking_recv()) else {
            break;
        };
        match job {
            Job::Exclusive(work) => work(&mut conn),
            Job::Command { request, reply } => {
                let mut batch = vec![(request, reply)];
                // Gather the group: keep taking commands while they keep arriving
                // (callers answered by the last commit are sending their next one),
                // until none came for `GROUP_GATHER_QUIET` or `GROUP_GATHER_MAX` passed.
                let started = Instant::now();
                let mut last_arrival = started;
                while batch.len() < GROUP_COMMIT_MAX {
                    match jobs.try_recv() {
                        Ok(Job::Command { request, reply }) => {
                            batch.push((request, reply));
                            last_arrival = Instant::now();
                        }
                        Ok(exclusive) => {
                            deferred = Some(exclusive);
                            break;
                        }
                        Err(mpsc::error::TryRecvError::Empty)
                            if last_arrival.elapsed() < GROUP_GATHER_QUIET
                                && started.elapsed() < GROUP_GATHER_MAX =>
                        {
                            std::thread::yield_now();
                        }
                        Err(_) => break,
                    }
                }
                let requests: Vec<&CommandRequest> =
                    batch.iter().map(|(r, _)| r.as_ref()).collect();
                let results =
                    commit_group(&mut conn, &requests, clock.as_ref(), objects.as_deref());
                for ((_, reply), result) in batch.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
        }
        checkpoints.poke();
        if let Ok(position) = read::head_position(&conn) {
            head.send_if_modified(|current| {
                let newer = position > *current;
                if newer {
                    *current = position;
                }
                newer
            });
        }
    }
}

/// Runs `requests` in one transaction and returns one result per request.
///
/// A command refused before it writes anything (a domain refusal, a stale version —
/// the pipeline reads and decides before its first write) leaves nothing to undo,
/// so the group goes on. Only a command that fails *after* writing forces the
/// group to roll back; then each command is retried in its own transaction, so one
/// failure never takes the others down. (Savepoints per command would do the same,
/// but every savepoint makes FTS5 flush its pending index segment, which made a
/// group cost as much as separate transactions.)
pub fn commit_group(
    conn: &mut Connection,
    requests: &[&CommandRequest],
    clock: &dyn Clock,
    objects: Option<&Objects>,
) -> Vec<StoreResult<CommandOutcome>> {
    match try_group(conn, requests, clock, objects) {
        Ok(results) => results,
        Err(GroupFailed::Whole(error)) => {
            requests.iter().map(|_| Err(copy_error(&error))).collect()
        }
        Err(GroupFailed::AfterWrites) => requests
            .iter()
            .map(
                |request| match try_group(conn, std::slice::from_ref(request), clock, objects) {
                    Ok(mut results) => results
                        .pop()
                        .unwrap_or(Err(StoreError::Backend("no result".into()))),
                    Err(GroupFailed::Whole(error)) => Err(error),
                    Err(GroupFailed::AfterWrites) => Err(StoreError::Backend(
                        "the command failed after writing".into(),
                    )),
                },
            )
            .collect(),
    }
}

enum GroupFailed {
    /// The transaction could not start or commit.
    Whole(StoreError),
    /// A command failed after writing; the transaction was rolled back.
    AfterWrites,
}

fn try_group(
    conn: &mut Connection,
    requests: &[&CommandRequest],
    clock: &dyn Clock,
    objects: Option<&Objects>,
) -> Result<Vec<StoreResult<CommandOutcome>>, GroupFailed> {
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| GroupFailed::Whole(sql_error(e)))?;
    let mut results = Vec::with_capacity(requests.len());
    for request in requests {
        let now = clock.now();
        let mut tx = SqliteWrite {
            conn,
            objects,
            now,
            wrote: false,
        };
        let result = run_command(&mut tx, request, now, &mut Uuid::now_v7);
        if result.is_err() && tx.wrote {
            let _ = conn.execute_batch("ROLLBACK");
            if requests.len() == 1 {
                return Ok(vec![result]);
            }
            return Err(GroupFailed::AfterWrites);
        }
        results.push(result);
    }
    if let Err(error) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(GroupFailed::Whole(sql_error(error)));
    }
    Ok(results)
}

fn copy_error(error: &StoreError) -> StoreError {
    match error {
        StoreError::Busy(message) => StoreError::Busy(message.clone()),
        other => StoreError::Backend(other.to_string()),
    }
}

/// The pipeline's view of the open write transaction.
pub struct SqliteWrite<'c> {
    pub conn: &'c Connection,
    /// Where bodies over the inline threshold go (none: everything inline).
    pub objects: Option<&'c Objects>,
    /// The command's time, for rows the pipeline does not time itself.
    pub now: jiff::Timestamp,
    /// Whether this command has written anything yet (see `commit_group`).
    pub wrote: bool,
}

impl WriteTransaction for SqliteWrite<'_> {
    fn replayed_outcome(
        &mut self,
        scope: &Scope,
        command_id: Uuid,
    ) -> StoreResult<Option<CommandOutcome>> {
        let record = self
            .conn
            .prepare_cached("SELECT aggregate_id, version, event_count FROM command_outcomes WHERE command_id = ?1 AND user_id = ?2")
            .map_err(sql_error)?
            .query_row(params![command_id.as_bytes(), scope.user_id.as_bytes()], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            })
            .optional()
            .map_err(sql_error)?;
        let Some((aggregate_id, version, event_count)) = record else {
            return Ok(None);
        };
        let mut events = Vec::new();
        if event_count > 0 {
            let mut statement = self
                .conn
                .prepare_cached(
                    "SELECT position, id, aggregate_id, version, type FROM events \
                     WHERE position >= (SELECT position FROM events WHERE id = ?1) ORDER BY position LIMIT ?2",
                )
                .map_err(sql_error)?;
            let rows = statement
                .query_map(params![command_id.as_bytes(), event_count], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                })
                .map_err(sql_error)?;
            for row in rows {
                let (position, id, aggregate, version, event_type) = row.map_err(sql_error)?;
                events.push(AppendedEvent {
                    position: position as u64,
                    id: uuid(&id)?,
                    aggregate_id: uuid(&aggregate)?,
                    version: version as u64,
                    event_type,
                });
            }
        }
        Ok(Some(CommandOutcome {
            aggregate_id: uuid(&aggregate_id)?,
            version: version as u64,
            events,
            replayed: true,
        }))
    }

    fn record_outcome(
        &mut self,
        scope: &Scope,
        command_id: Uuid,
        outcome: &CommandOutcome,
    ) -> StoreResult<()> {
        self.wrote = true;
        self.conn
            .prepare_cached(
                "INSERT INTO command_outcomes (command_id, user_id, aggregate_id, version, event_count) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(sql_error)?
            .execute(params![
                command_id.as_bytes(),
                scope.user_id.as_bytes(),
                outcome.aggregate_id.as_bytes(),
                outcome.version as i64,
                outcome.events.len() as i64
            ])
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::InvalidInput(format!("command id {command_id} was already used; send a new one"))
                } else {
                    sql_error(e)
                }
            })?;
        Ok(())
    }

    fn entity_state(&mut self, scope: &Scope, id: EntityId) -> StoreResult<Option<EntityState>> {
        Ok(project::load_entity(self.conn, &scope.user_id, id)?.map(|row| row.state))
    }

    fn entity_at_version(
        &mut self,
        scope: &Scope,
        id: EntityId,
        version: u64,
    ) -> StoreResult<Option<EntityState>> {
        read::state_at_version(self.conn, &scope.user_id, id, version)
    }

    fn relation_state(
        &mut self,
        scope: &Scope,
        id: RelationId,
    ) -> StoreResult<Option<RelationState>> {
        project::load_relation(self.conn, &scope.user_id, id)
    }

    fn stream_version(&mut self, aggregate_id: Uuid) -> StoreResult<u64> {
        stream_version(self.conn, aggregate_id)
    }

    fn register_tags(&mut self, scope: &Scope, names: &[String]) -> StoreResult<()> {
        self.wrote = true;
        for name in names {
            project::register_tag(self.conn, &scope.user_id, name)?;
        }
        Ok(())
    }

    fn content_body(&mut self, scope: &Scope, hash: ContentHash) -> StoreResult<Option<String>> {
        project::load_body(self.conn, self.objects, &scope.user_id, &hash)
    }

    fn tag_spellings(
        &mut self,
        scope: &Scope,
        keys: &[String],
    ) -> StoreResult<HashMap<String, String>> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT name FROM tags WHERE user_id = ?1 AND key = ?2")
            .map_err(sql_error)?;
        let mut spellings = HashMap::new();
        for key in keys {
            if let Some(name) = statement
                .query_row(params![scope.user_id.as_bytes(), key], |r| {
                    r.get::<_, String>(0)
                })
                .optional()
                .map_err(sql_error)?
            {
                spellings.insert(key.clone(), name);
            }
        }
        Ok(spellings)
    }

    fn live_entity_exists(&mut self, scope: &Scope, id: EntityId) -> StoreResult<bool> {
        read::live_entity_exists(self.conn, &scope.user_id, id)
    }

    fn entities_by_title(
        &mut self,
        scope: &Scope,
        title_keys: &[String],
    ) -> StoreResult<HashMap<String, EntityId>> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT id FROM entities WHERE user_id = ?1 AND title_key = ?2 AND deleted_at IS NULL \
                 ORDER BY created_at, id LIMIT 1",
            )
            .map_err(sql_error)?;
        let mut found = HashMap::new();
        for key in title_keys {
            if let Some(id) = statement
                .query_row(params![scope.user_id.as_bytes(), key], |r| {
                    r.get::<_, Vec<u8>>(0)
                })
                .optional()
                .map_err(sql_error)?
            {
                found.insert(key.clone(), EntityId(uuid(&id)?));
            }
        }
        Ok(found)
    }

    fn mentions_from(
        &mut self,
        scope: &Scope,
        source_id: EntityId,
    ) -> StoreResult<Vec<RelationState>> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT id, user_id, source_id, target_id, kind, version, created_at FROM relations \
                 WHERE user_id = ?1 AND source_id = ?2 AND kind = 'mentions' ORDER BY id",
            )
            .map_err(sql_error)?;
        let mut rows = statement
            .query(params![scope.user_id.as_bytes(), source_id.as_bytes()])
            .map_err(sql_error)?;
        let mut relations = Vec::new();
        while let Some(row) = rows.next().map_err(sql_error)? {
            relations.push(project::relation_from_row(row)?);
        }
        Ok(relations)
    }

    fn live_relation_exists(
        &mut self,
        scope: &Scope,
        source_id: EntityId,
        target_id: EntityId,
        kind: &RelationKind,
    ) -> StoreResult<bool> {
        self.conn
            .prepare_cached(
                "SELECT 1 FROM relations WHERE user_id = ?1 AND source_id = ?2 AND target_id = ?3 AND kind = ?4",
            )
            .map_err(sql_error)?
            .exists(params![scope.user_id.as_bytes(), source_id.as_bytes(), target_id.as_bytes(), kind.as_str()])
            .map_err(sql_error)
    }

    fn put_content(&mut self, scope: &Scope, content: &ContentRef, body: &str) -> StoreResult<()> {
        self.wrote = true;
        crate::attachments::put_content(self.conn, self.objects, scope, content, body, self.now)
    }

    fn put_object_ref(&mut self, scope: &Scope, content: &ContentRef) -> StoreResult<()> {
        self.wrote = true;
        crate::attachments::put_object_ref(self.conn, self.objects, scope, content, self.now)
    }

    fn append(&mut self, event: NewEvent<'_>) -> StoreResult<u64> {
        self.wrote = true;
        append_event(self.conn, &event)
    }

    fn project_entity(
        &mut self,
        before: Option<&EntityState>,
        after: &EntityState,
        body: Option<&str>,
    ) -> StoreResult<()> {
        self.wrote = true;
        project::project_entity(self.conn, self.objects, before, after, body)
    }

    fn project_relation(
        &mut self,
        before: Option<&RelationState>,
        after: &RelationState,
    ) -> StoreResult<()> {
        self.wrote = true;
        project::project_relation(self.conn, before, after)
    }

    fn enqueue_runs(
        &mut self,
        scope: &Scope,
        runs: &[synap_store::workflow::NewRun],
        trigger_position: u64,
        now: jiff::Timestamp,
    ) -> StoreResult<()> {
        self.wrote = true;
        for run in runs {
            crate::workflow::insert_run(
                self.conn,
                &scope.user_id,
                run,
                Some(trigger_position),
                now,
            )?;
        }
        Ok(())
    }

    fn live_webhooks(&mut self, scope: &Scope) -> StoreResult<Vec<(Uuid, Vec<String>)>> {
        crate::webhooks::live_webhooks(self.conn, &scope.user_id)
    }

    fn save_snapshot(&mut self, state: &EntityState) -> StoreResult<()> {
        self.wrote = true;
        let json = serde_json::to_string(state).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO snapshots (aggregate_id, version, schema_version, state) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(sql_error)?
            .execute(params![state.id.as_bytes(), state.version as i64, crate::schema::SNAPSHOT_SCHEMA_VERSION, json])
            .map_err(sql_error)?;
        Ok(())
    }
}

/// Appends one event; the unique indexes refuse a reused event id or a taken
/// `(aggregate_id, version)`.
pub fn append_event(conn: &Connection, event: &NewEvent<'_>) -> StoreResult<u64> {
    let data = serde_json::to_string(&event.payload.data())
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    let metadata =
        serde_json::to_string(event.metadata).map_err(|e| StoreError::Backend(e.to_string()))?;
    conn.prepare_cached(
        "INSERT INTO events (id, aggregate_type, aggregate_id, version, type, schema_version, user_id, data, metadata, recorded_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .map_err(sql_error)?
    .execute(params![
        event.id.as_bytes(),
        event.payload.aggregate_type().as_str(),
        event.aggregate_id.as_bytes(),
        event.version as i64,
        event.payload.event_type(),
        event.payload.schema_version(),
        event.user_id.as_bytes(),
        data,
        metadata,
        micros(event.recorded_at),
    ])
    .map_err(|e| {
        if is_unique_violation(&e) {
            if e.to_string().contains("events.id") {
                StoreError::InvalidInput(format!("event id {} was already used; send a new one", event.id))
            } else {
                match stream_version(conn, event.aggregate_id) {
                    Ok(current) => StoreError::Conflict {
                        aggregate_id: event.aggregate_id,
                        expected: event.version.saturating_sub(1),
                        current,
                    },
                    Err(error) => error,
                }
            }
        } else {
            sql_error(e)
        }
    })?;
    Ok(conn.last_insert_rowid() as u64)
}

/// The highest version of the stream `aggregate_id` (0 when it has no events).
fn stream_version(conn: &Connection, aggregate_id: Uuid) -> StoreResult<u64> {
    conn.prepare_cached("SELECT coalesce(max(version), 0) FROM events WHERE aggregate_id = ?1")
        .map_err(sql_error)?
        .query_row([aggregate_id.as_bytes()], |r| r.get::<_, i64>(0))
        .map(|v| v as u64)
        .map_err(sql_error)
}
