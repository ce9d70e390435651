//! The write path: one command in one transaction, through the shared pipeline
//! (`synap_store::pipeline::run_command`), with [`PgWrite`] supplying its SQL.
//!
//! Concurrency: a command first locks the stream rows of the aggregates it reads
//! (`SELECT … FOR UPDATE` on `streams`), so two commands to one aggregate run one
//! after the other even in different processes. Its events are numbered as they
//! are appended (the position needs only the transaction id, fetched with the
//! first lock) and written at the end in one statement that also moves each
//! stream from the version the command found to the one it reached (a
//! compare-and-set: a version is never taken twice) and records the outcome.
//!
//! Round trips: the first lock is taken together with the command's idempotency
//! lookup and the user's webhooks ([`PgWrite::prefetch`]), so a one-event
//! command costs four — begin, prefetch, write, commit — where plain SQL writing
//! the same rows needs five. Deadlocks and serialisation failures are retried
//! whole.

use crate::codec::{
    EVENTS_PER_TRANSACTION_MAX, POSITION_INDEX_BITS, corrupt, encode_data, encode_metadata, micros,
    stored_type, stored_version, unique_violation,
};
use crate::pool::Conn;
use crate::project;
use jiff::Timestamp;
use std::collections::HashMap;
use synap_domain::StoredEvent;
use synap_domain::entity::{ContentRef, EntityState};
use synap_domain::ids::{ContentHash, EntityId, RelationId};
use synap_domain::relation::{RelationKind, RelationState};
use synap_store::pipeline::{NewEvent, WriteTransaction, run_command};
use synap_store::{
    AppendedEvent, CommandOutcome, CommandRequest, Scope, StoreError, StoreResult, Target,
};
use uuid::Uuid;

/// How many times a command is retried after a deadlock, a serialisation failure
/// or a race on its command id, before the error is returned.
pub const COMMAND_RETRIES_MAX: u32 = 3;
/// The channel `NOTIFY` wakes feed readers on (it carries no data).
pub const FEED_CHANNEL: &str = "synap_events";

/// Runs one command in its own transaction on `conn` and commits it.
pub fn execute(
    conn: &mut Conn,
    request: &CommandRequest,
    now: Timestamp,
) -> StoreResult<CommandOutcome> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        conn.begin_as(&request.scope.user_id.0)?;
        let mut tx = PgWrite::new(conn, now);
        tx.prefetch(request)?;
        let result = run_command(&mut tx, request, now, &mut Uuid::now_v7);
        let command_id_race = tx.command_id_race;
        // Readers in other processes are woken after the commit (`feed::Notifier`).
        let result = result.and_then(|outcome| {
            conn.commit()?;
            Ok(outcome)
        });
        match result {
            Ok(outcome) => return Ok(outcome),
            Err(error) => {
                let _ = conn.rollback();
                // A concurrent duplicate of this command may have committed while
                // this one ran (it then found the aggregate taken, or the id
                // recorded): retrying replays that outcome.
                let duplicate_committed = command_id_race || recorded(conn, request)?;
                let retry = duplicate_committed || matches!(error, StoreError::Busy(_));
                if !retry || attempt > COMMAND_RETRIES_MAX {
                    return Err(error);
                }
            }
        }
    }
}

/// Whether this user's command id has an outcome recorded (outside any
/// transaction: sees every commit so far).
fn recorded(conn: &mut Conn, request: &CommandRequest) -> StoreResult<bool> {
    Ok(conn
        .query_opt(
            "SELECT 1 FROM command_outcomes WHERE command_id = $1 AND user_id = $2",
            &[&request.command_id, &request.scope.user_id.0],
        )?
        .is_some())
}

/// An open write transaction of one command.
pub struct PgWrite<'a> {
    conn: &'a mut Conn,
    /// The command's time (content rows record it).
    now: Timestamp,
    /// Events appended so far in this transaction: the low bits of the next
    /// position.
    appended: u64,
    /// This transaction's id (`xid8`), fetched with the first stream lock.
    xid: Option<i64>,
    /// Events appended but not yet written (see [`flush_and_record`]).
    pending: Vec<PendingEvent>,
    /// For each aggregate appended to: the version found and the version reached.
    moved: Vec<(Uuid, u64, u64)>,
    /// Stream rows this transaction has locked, with their version then.
    locked: HashMap<Uuid, u64>,
    /// Set when the command id was recorded by a concurrent transaction that
    /// committed first: retrying replays its outcome.
    command_id_race: bool,
    /// What [`PgWrite::prefetch`] read, with the command id and the user it was
    /// read for; each answers the pipeline's first question about them.
    prefetched_outcome: Option<(Uuid, Option<OutcomeRow>)>,
    prefetched_webhooks: Option<(Uuid, Vec<LiveWebhook>)>,
}

/// A live webhook subscription: its id and the event types it wants.
type LiveWebhook = (Uuid, Vec<String>);

/// A recorded outcome as stored: the aggregate, the version reached, and the
/// positions of its events.
#[derive(Debug, Clone, Copy)]
struct OutcomeRow {
    aggregate_id: Uuid,
    version: u64,
    first_position: Option<i64>,
    event_count: i64,
}

impl OutcomeRow {
    /// Reads `aggregate_id, version, first_position, event_count` from `row`,
    /// starting at column `first`.
    fn from_columns(row: &postgres::Row, first: usize) -> StoreResult<OutcomeRow> {
        Ok(OutcomeRow {
            aggregate_id: row.try_get(first).map_err(corrupt)?,
            version: row.try_get::<_, i64>(first + 1).map_err(corrupt)? as u64,
            first_position: row.try_get(first + 2).map_err(corrupt)?,
            event_count: i64::from(row.try_get::<_, i32>(first + 3).map_err(corrupt)?),
        })
    }
}

/// The stream a command locks first: the aggregate it targets (a logged event's
/// stream is its user's).
fn target_stream(request: &CommandRequest) -> Uuid {
    match &request.target {
        Target::Entity { id, .. } => id.0,
        Target::Link { id, .. } | Target::Unlink { id } => id.0,
        Target::LogEvent { .. } => request.scope.user_id.0,
    }
}

impl std::fmt::Debug for PgWrite<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgWrite")
            .field("appended", &self.appended)
            .finish_non_exhaustive()
    }
}

impl<'a> PgWrite<'a> {
    /// Wraps a connection that has just begun a transaction.
    pub fn new(conn: &'a mut Conn, now: Timestamp) -> Self {
        PgWrite {
            conn,
            now,
            appended: 0,
            xid: None,
            pending: Vec::new(),
            moved: Vec::new(),
            locked: HashMap::new(),
            command_id_race: false,
            prefetched_outcome: None,
            prefetched_webhooks: None,
        }
    }

    /// Reads, in one round trip, what every command asks first: the outcome
    /// recorded for its command id, the user's live webhooks, and its target's
    /// stream (locked, as the pipeline's first lock would) with the
    /// transaction id. A command then costs four round trips: begin, this, the
    /// write, commit. The target is the first stream every command locks, so
    /// the lock order is unchanged.
    fn prefetch(&mut self, request: &CommandRequest) -> StoreResult<()> {
        let stream = target_stream(request);
        let user = request.scope.user_id.0;
        let row = self.conn.query_one(
            "SELECT (SELECT version FROM streams WHERE aggregate_id = $3 FOR UPDATE), \
                    pg_current_xact_id()::text::bigint, \
                    (SELECT json_agg(json_build_array(id, event_types)) FROM webhooks \
                     WHERE user_id = $2 AND disabled_at IS NULL), \
                    o.aggregate_id, o.version, o.first_position, o.event_count \
             FROM (SELECT 1) AS one \
             LEFT JOIN command_outcomes o ON o.command_id = $1 AND o.user_id = $2",
            &[&request.command_id, &user, &stream],
        )?;
        let version = row
            .try_get::<_, Option<i64>>(0)
            .map_err(corrupt)?
            .unwrap_or(0) as u64;
        self.locked.insert(stream, version);
        self.xid = Some(row.try_get::<_, i64>(1).map_err(corrupt)?);
        let webhooks = match row
            .try_get::<_, Option<serde_json::Value>>(2)
            .map_err(corrupt)?
        {
            None => Vec::new(),
            Some(json) => serde_json::from_value(json)
                .map_err(|e| StoreError::Corrupt(format!("webhook subscriptions: {e}")))?,
        };
        self.prefetched_webhooks = Some((user, webhooks));
        let outcome = match row.try_get::<_, Option<Uuid>>(3).map_err(corrupt)? {
            None => None,
            Some(_) => Some(OutcomeRow::from_columns(&row, 3)?),
        };
        self.prefetched_outcome = Some((request.command_id, outcome));
        Ok(())
    }

    /// Locks a stream row (if it exists) and returns its version (0: none yet).
    /// The first lock also fetches the transaction id (it assigns one: the lock
    /// is a write).
    fn lock_stream(&mut self, aggregate_id: Uuid) -> StoreResult<u64> {
        if let Some(version) = self.locked.get(&aggregate_id) {
            return Ok(*version);
        }
        let row = self.conn.query_one(
            "SELECT (SELECT version FROM streams WHERE aggregate_id = $1 FOR UPDATE), \
                    pg_current_xact_id()::text::bigint",
            &[&aggregate_id],
        )?;
        let version = row
            .try_get::<_, Option<i64>>(0)
            .map_err(corrupt)?
            .unwrap_or(0) as u64;
        self.xid = Some(row.try_get::<_, i64>(1).map_err(corrupt)?);
        self.locked.insert(aggregate_id, version);
        Ok(version)
    }

    fn xid(&mut self) -> StoreResult<i64> {
        if let Some(xid) = self.xid {
            return Ok(xid);
        }
        let xid = self
            .conn
            .query_one("SELECT pg_current_xact_id()::text::bigint", &[])?
            .try_get::<_, i64>(0)
            .map_err(corrupt)?;
        self.xid = Some(xid);
        Ok(xid)
    }
}

impl WriteTransaction for PgWrite<'_> {
    fn replayed_outcome(
        &mut self,
        scope: &Scope,
        command_id: Uuid,
    ) -> StoreResult<Option<CommandOutcome>> {
        let prefetched = self.prefetched_outcome.take();
        let record = match prefetched.filter(|(id, _)| *id == command_id) {
            Some((_, record)) => record,
            None => self
                .conn
                .query_opt(
                    "SELECT aggregate_id, version, first_position, event_count FROM command_outcomes \
                     WHERE command_id = $1 AND user_id = $2",
                    &[&command_id, &scope.user_id.0],
                )?
                .map(|row| OutcomeRow::from_columns(&row, 0))
                .transpose()?,
        };
        let Some(OutcomeRow {
            aggregate_id,
            version,
            first_position: first,
            event_count: count,
        }) = record
        else {
            return Ok(None);
        };
        let mut events = Vec::new();
        if let Some(first) = first.filter(|_| count > 0) {
            for row in self.conn.query(
                "SELECT position, id, aggregate_id, version, type_code FROM events \
                 WHERE position BETWEEN $1 AND $2 ORDER BY position",
                &[&first, &(first + count - 1)],
            )? {
                events.push(AppendedEvent {
                    position: row.try_get::<_, i64>(0).map_err(corrupt)? as u64,
                    id: row.try_get(1).map_err(corrupt)?,
                    aggregate_id: row.try_get(2).map_err(corrupt)?,
                    version: row.try_get::<_, i32>(3).map_err(corrupt)? as u64,
                    event_type: stored_type(row.try_get(4).map_err(corrupt)?)?.into(),
                });
            }
        }
        Ok(Some(CommandOutcome {
            aggregate_id,
            version,
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
        let record = OutcomeRecord {
            command_id,
            user_id: scope.user_id.0,
            aggregate_id: outcome.aggregate_id,
            version: outcome.version as i64,
            first_position: outcome.events.first().map(|e| e.position as i64),
            event_count: outcome.events.len() as i32,
        };
        let pending = std::mem::take(&mut self.pending);
        let moved = std::mem::take(&mut self.moved);
        match flush_and_record(self.conn, &pending, &moved, &record) {
            Err(FlushError::CommandIdTaken) => {
                // Committed meanwhile by another transaction: by this user (a
                // retry replays it) or by someone else (the id is taken).
                self.command_id_race = true;
                Err(StoreError::InvalidInput(format!(
                    "command id {command_id} was already used; send a new one"
                )))
            }
            Err(FlushError::Store(error)) => Err(error),
            Ok(()) => Ok(()),
        }
    }

    fn entity_state(&mut self, scope: &Scope, id: EntityId) -> StoreResult<Option<EntityState>> {
        self.lock_stream(id.0)?;
        Ok(project::load_entity(self.conn, &scope.user_id, id)?.map(|row| row.state))
    }

    fn entity_at_version(
        &mut self,
        scope: &Scope,
        id: EntityId,
        version: u64,
    ) -> StoreResult<Option<EntityState>> {
        project::state_at_version(self.conn, &scope.user_id, id, version)
    }

    fn relation_state(
        &mut self,
        scope: &Scope,
        id: RelationId,
    ) -> StoreResult<Option<RelationState>> {
        self.lock_stream(id.0)?;
        project::load_relation(self.conn, &scope.user_id, id)
    }

    fn stream_version(&mut self, aggregate_id: Uuid) -> StoreResult<u64> {
        self.lock_stream(aggregate_id)
    }

    fn register_tags(&mut self, scope: &Scope, names: &[String]) -> StoreResult<()> {
        let mut names: Vec<&String> = names.iter().collect();
        names.sort();
        for name in names {
            project::register_tag(self.conn, &scope.user_id, name)?;
        }
        Ok(())
    }

    fn content_body(&mut self, scope: &Scope, hash: ContentHash) -> StoreResult<Option<String>> {
        project::load_body(self.conn, &scope.user_id, &hash)
    }

    fn tag_spellings(
        &mut self,
        scope: &Scope,
        keys: &[String],
    ) -> StoreResult<HashMap<String, String>> {
        let mut spellings = HashMap::new();
        for row in self.conn.query(
            "SELECT key, name FROM tags WHERE user_id = $1 AND key = ANY($2)",
            &[&scope.user_id.0, &keys],
        )? {
            spellings.insert(row.get::<_, String>(0), row.get::<_, String>(1));
        }
        Ok(spellings)
    }

    fn live_entity_exists(&mut self, scope: &Scope, id: EntityId) -> StoreResult<bool> {
        Ok(self
            .conn
            .query_opt(
                "SELECT 1 FROM entities WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL",
                &[&id.0, &scope.user_id.0],
            )?
            .is_some())
    }

    fn entities_by_title(
        &mut self,
        scope: &Scope,
        title_keys: &[String],
    ) -> StoreResult<HashMap<String, EntityId>> {
        let mut found = HashMap::new();
        for key in title_keys {
            if let Some(row) = self.conn.query_opt(
                "SELECT id FROM entities WHERE user_id = $1 AND title_key = $2 AND deleted_at IS NULL \
                 ORDER BY created_at, id LIMIT 1",
                &[&scope.user_id.0, key],
            )? {
                found.insert(key.clone(), EntityId(row.try_get(0).map_err(corrupt)?));
            }
        }
        Ok(found)
    }

    fn mentions_from(
        &mut self,
        scope: &Scope,
        source_id: EntityId,
    ) -> StoreResult<Vec<RelationState>> {
        self.conn
            .query(
                &format!(
                    "SELECT {} FROM relations WHERE user_id = $1 AND source_id = $2 AND kind = 'mentions' ORDER BY id",
                    project::RELATION_COLUMNS
                ),
                &[&scope.user_id.0, &source_id.0],
            )?
            .iter()
            .map(project::relation_from_row)
            .collect()
    }

    fn live_relation_exists(
        &mut self,
        scope: &Scope,
        source_id: EntityId,
        target_id: EntityId,
        kind: &RelationKind,
    ) -> StoreResult<bool> {
        Ok(self
            .conn
            .query_opt(
                "SELECT 1 FROM relations WHERE user_id = $1 AND source_id = $2 AND target_id = $3 AND kind = $4",
                &[&scope.user_id.0, &source_id.0, &target_id.0, &kind.as_str()],
            )?
            .is_some())
    }

    fn put_content(&mut self, scope: &Scope, content: &ContentRef, body: &str) -> StoreResult<()> {
        crate::attachments::put_content(self.conn, scope, content, body, self.now)
    }

    fn put_object_ref(&mut self, scope: &Scope, content: &ContentRef) -> StoreResult<()> {
        crate::attachments::put_object_ref(self.conn, scope, content, self.now)
    }

    fn append(&mut self, event: NewEvent<'_>) -> StoreResult<u64> {
        if self.appended >= EVENTS_PER_TRANSACTION_MAX {
            return Err(StoreError::InvalidInput(format!(
                "one transaction can append at most {EVENTS_PER_TRANSACTION_MAX} events"
            )));
        }
        let position = (self.xid()? << POSITION_INDEX_BITS) + self.appended as i64;
        self.pending.push(PendingEvent::new(&event, position)?);
        self.appended += 1;
        match self.moved.iter_mut().find(|m| m.0 == event.aggregate_id) {
            Some(moved) => moved.2 = event.version,
            None => self.moved.push((
                event.aggregate_id,
                event.version.saturating_sub(1),
                event.version,
            )),
        }
        self.locked.insert(event.aggregate_id, event.version);
        Ok(position as u64)
    }

    fn project_entity(
        &mut self,
        before: Option<&EntityState>,
        after: &EntityState,
        body: Option<&str>,
    ) -> StoreResult<()> {
        project::project_entity(self.conn, before, after, body)
    }

    fn project_relation(
        &mut self,
        before: Option<&RelationState>,
        after: &RelationState,
    ) -> StoreResult<()> {
        project::project_relation(self.conn, before, after)
    }

    fn enqueue_runs(
        &mut self,
        scope: &Scope,
        runs: &[synap_store::workflow::NewRun],
        trigger_position: u64,
        now: Timestamp,
    ) -> StoreResult<()> {
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
        let prefetched = self.prefetched_webhooks.take();
        if let Some((_, webhooks)) = prefetched.filter(|(user, _)| *user == scope.user_id.0) {
            return Ok(webhooks);
        }
        crate::webhooks::live_webhooks(self.conn, &scope.user_id)
    }

    fn save_snapshot(&mut self, state: &EntityState) -> StoreResult<()> {
        let json = serde_json::to_value(state).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.conn.execute(
            "INSERT INTO snapshots (aggregate_id, version, user_id, schema_version, state) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (aggregate_id, version) DO UPDATE SET \
             schema_version = excluded.schema_version, state = excluded.state",
            &[
                &state.id.0,
                &(state.version as i64),
                &state.user_id.0,
                &crate::schema::SNAPSHOT_SCHEMA_VERSION,
                &json,
            ],
        )?;
        Ok(())
    }
}

/// Appends one event in the open transaction: moves its stream from
/// `version - 1` to `version` and inserts the row, in one statement. `index` is the
/// event's number within the transaction (the low bits of its position).
pub fn append_event(conn: &mut Conn, event: &NewEvent<'_>, index: i64) -> StoreResult<u64> {
    // The position is numbered in the statement; `index` stands in for it here.
    let pending = PendingEvent::new(event, index)?;
    let sql = format!(
        "WITH moved AS ( \
            INSERT INTO streams (aggregate_id, version) VALUES ($1, $2) \
            ON CONFLICT (aggregate_id) DO UPDATE SET version = excluded.version \
            WHERE streams.version = excluded.version - 1 RETURNING 1) \
         INSERT INTO events ({EVENT_INSERT_COLUMNS}) \
         SELECT (pg_current_xact_id()::text::bigint << {POSITION_INDEX_BITS}) + $3, $4, $5, $1, $6, $7, $8, $9, $10, $11 \
         FROM moved RETURNING position"
    );
    let row = conn.query_opt(
        &sql,
        &[
            &pending.aggregate_id,
            &(event.version as i64),
            &index,
            &pending.recorded_at,
            &pending.id,
            &pending.user_id,
            &pending.version,
            &pending.type_code,
            &pending.schema_version,
            &pending.data,
            &pending.metadata,
        ],
    )?;
    match row {
        Some(row) => Ok(row.try_get::<_, i64>(0).map_err(corrupt)? as u64),
        None => {
            let current = conn
                .query_opt(
                    "SELECT version FROM streams WHERE aggregate_id = $1",
                    &[&event.aggregate_id],
                )?
                .map_or(0, |r| r.get::<_, i64>(0) as u64);
            Err(StoreError::Conflict {
                aggregate_id: event.aggregate_id,
                expected: event.version.saturating_sub(1),
                current,
            })
        }
    }
}

/// An event numbered and waiting to be written with the rest of its transaction:
/// its row, in the columns' stored forms (see `codec`).
#[derive(Debug)]
pub struct PendingEvent {
    position: i64,
    recorded_at: i64,
    id: Uuid,
    aggregate_id: Uuid,
    user_id: Uuid,
    version: i32,
    type_code: i16,
    schema_version: i16,
    data: Vec<u8>,
    metadata: Vec<u8>,
}

impl PendingEvent {
    /// An event a stored log already holds (an import, a format conversion), to
    /// be written at `position`.
    pub fn from_stored(event: &StoredEvent, position: i64) -> StoreResult<PendingEvent> {
        PendingEvent::new(
            &NewEvent {
                id: event.id.0,
                aggregate_id: event.aggregate_id,
                version: event.version,
                payload: &event.payload,
                user_id: event.user_id,
                metadata: &event.metadata,
                recorded_at: event.recorded_at,
            },
            position,
        )
    }

    pub fn new(event: &NewEvent<'_>, position: i64) -> StoreResult<PendingEvent> {
        Ok(PendingEvent {
            position,
            recorded_at: micros(event.recorded_at),
            id: event.id,
            aggregate_id: event.aggregate_id,
            user_id: event.user_id.0,
            version: stored_version(event.version)?,
            type_code: event.payload.type_code(),
            schema_version: event.payload.schema_version() as i16,
            data: encode_data(event.payload)?,
            metadata: encode_metadata(event.metadata)?,
        })
    }
}

/// The columns of an event row, in the order [`EventColumns`] binds them (a
/// macro, so `concat!` can build statements from it too).
macro_rules! event_insert_columns {
    () => {
        "position, recorded_at, id, aggregate_id, user_id, version, type_code, schema_version, data, metadata"
    };
}

/// The columns of an event row, in the order [`EventColumns`] binds them.
pub const EVENT_INSERT_COLUMNS: &str = event_insert_columns!();

/// Pending events as the ten column arrays an `INSERT … SELECT` from
/// [`EventColumns::unnest`] binds: one statement writes any number of rows.
#[derive(Debug)]
pub struct EventColumns<'a> {
    positions: Vec<i64>,
    recorded: Vec<i64>,
    ids: Vec<Uuid>,
    aggregates: Vec<Uuid>,
    users: Vec<Uuid>,
    versions: Vec<i32>,
    type_codes: Vec<i16>,
    schema_versions: Vec<i16>,
    data: Vec<&'a [u8]>,
    metadata: Vec<&'a [u8]>,
}

impl<'a> EventColumns<'a> {
    pub fn new(pending: &'a [PendingEvent]) -> Self {
        EventColumns {
            positions: pending.iter().map(|e| e.position).collect(),
            recorded: pending.iter().map(|e| e.recorded_at).collect(),
            ids: pending.iter().map(|e| e.id).collect(),
            aggregates: pending.iter().map(|e| e.aggregate_id).collect(),
            users: pending.iter().map(|e| e.user_id).collect(),
            versions: pending.iter().map(|e| e.version).collect(),
            type_codes: pending.iter().map(|e| e.type_code).collect(),
            schema_versions: pending.iter().map(|e| e.schema_version).collect(),
            data: pending.iter().map(|e| e.data.as_slice()).collect(),
            metadata: pending.iter().map(|e| e.metadata.as_slice()).collect(),
        }
    }

    /// `unnest(…)` of the arrays, bound from parameter `$first` on, with the
    /// columns named as in [`EVENT_INSERT_COLUMNS`].
    pub fn unnest(first: usize) -> String {
        let types = [
            "bigint", "bigint", "uuid", "uuid", "uuid", "integer", "smallint", "smallint", "bytea",
            "bytea",
        ];
        let arrays: Vec<String> = types
            .iter()
            .enumerate()
            .map(|(i, t)| format!("${}::{t}[]", first + i))
            .collect();
        format!("unnest({}) AS e({EVENT_INSERT_COLUMNS})", arrays.join(", "))
    }

    /// The arrays, in the order of [`EVENT_INSERT_COLUMNS`].
    pub fn params(&self) -> [&(dyn postgres::types::ToSql + Sync); 10] {
        [
            &self.positions,
            &self.recorded,
            &self.ids,
            &self.aggregates,
            &self.users,
            &self.versions,
            &self.type_codes,
            &self.schema_versions,
            &self.data,
            &self.metadata,
        ]
    }
}

/// The idempotency record of a command.
#[derive(Debug)]
struct OutcomeRecord {
    command_id: Uuid,
    user_id: Uuid,
    aggregate_id: Uuid,
    version: i64,
    first_position: Option<i64>,
    event_count: i32,
}

#[derive(Debug)]
enum FlushError {
    /// `command_outcomes` already holds this command id.
    CommandIdTaken,
    Store(StoreError),
}

impl From<StoreError> for FlushError {
    fn from(error: StoreError) -> Self {
        FlushError::Store(error)
    }
}

/// Writes a command's events, moves each stream it appended to from the version
/// it found to the one it reached (compare-and-set: an existing stream must
/// still be at that version, a new one must not exist yet), and records the
/// outcome — one statement. A stream that moved meanwhile is a `Conflict`.
fn flush_and_record(
    conn: &mut Conn,
    pending: &[PendingEvent],
    moved: &[(Uuid, u64, u64)],
    record: &OutcomeRecord,
) -> Result<(), FlushError> {
    flush(conn, pending, moved, Some(record))
}

/// Appends a batch of events in the open transaction through the same
/// statement commands use (numbering, stream compare-and-set, one insert); each
/// stream's events must be consecutive versions. Returns their positions. For
/// the benchmark and tests; commands go through [`PgWrite`].
#[cfg(feature = "testing")]
pub fn append_batch(conn: &mut Conn, events: &[NewEvent<'_>]) -> StoreResult<Vec<u64>> {
    if events.len() as u64 > EVENTS_PER_TRANSACTION_MAX {
        return Err(StoreError::InvalidInput(format!(
            "one transaction can append at most {EVENTS_PER_TRANSACTION_MAX} events"
        )));
    }
    let xid = conn
        .query_one("SELECT pg_current_xact_id()::text::bigint", &[])?
        .try_get::<_, i64>(0)
        .map_err(corrupt)?;
    let mut pending = Vec::with_capacity(events.len());
    let mut moved: Vec<(Uuid, u64, u64)> = Vec::new();
    for (index, event) in events.iter().enumerate() {
        pending.push(PendingEvent::new(
            event,
            (xid << POSITION_INDEX_BITS) + index as i64,
        )?);
        match moved.iter_mut().find(|m| m.0 == event.aggregate_id) {
            Some(m) => m.2 = event.version,
            None => moved.push((
                event.aggregate_id,
                event.version.saturating_sub(1),
                event.version,
            )),
        }
    }
    match flush(conn, &pending, &moved, None) {
        Ok(()) => Ok(pending.iter().map(|e| e.position as u64).collect()),
        Err(FlushError::Store(error)) => Err(error),
        Err(FlushError::CommandIdTaken) => {
            Err(StoreError::Backend("no command id was recorded".into()))
        }
    }
}

fn flush(
    conn: &mut Conn,
    pending: &[PendingEvent],
    moved: &[(Uuid, u64, u64)],
    record: Option<&OutcomeRecord>,
) -> Result<(), FlushError> {
    if let ([event], [stream], Some(record)) = (pending, moved, record) {
        return flush_one(conn, event, *stream, record);
    }
    let columns = EventColumns::new(pending);
    let streams: Vec<Uuid> = moved.iter().map(|m| m.0).collect();
    let found: Vec<i64> = moved.iter().map(|m| m.1 as i64).collect();
    let reached: Vec<i64> = moved.iter().map(|m| m.2 as i64).collect();
    let outcome_sql = if record.is_some() {
        "INSERT INTO command_outcomes (command_id, user_id, aggregate_id, version, first_position, event_count) \
         VALUES ($14, $15, $16, $17, $18, $19)"
    } else {
        "SELECT 1 WHERE false"
    };
    let sql = format!(
        "WITH want AS ( \
            SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) AS w(aggregate_id, found, reached)), \
         updated AS ( \
            UPDATE streams s SET version = w.reached FROM want w \
            WHERE s.aggregate_id = w.aggregate_id AND w.found > 0 AND s.version = w.found \
            RETURNING s.aggregate_id), \
         created AS ( \
            INSERT INTO streams (aggregate_id, version) \
            SELECT aggregate_id, reached FROM want WHERE found = 0 \
            ON CONFLICT (aggregate_id) DO NOTHING RETURNING aggregate_id), \
         events_written AS ( \
            INSERT INTO events ({EVENT_INSERT_COLUMNS}) SELECT * FROM {events}), \
         outcome AS ({outcome_sql}) \
         SELECT (SELECT count(*) FROM updated) + (SELECT count(*) FROM created)",
        events = EventColumns::unnest(4)
    );
    let (command_id, user_id, aggregate_id, version, first_position, event_count) = match record {
        Some(r) => (
            r.command_id,
            r.user_id,
            r.aggregate_id,
            r.version,
            r.first_position,
            r.event_count,
        ),
        None => (Uuid::nil(), Uuid::nil(), Uuid::nil(), 0, None, 0),
    };
    let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![&streams, &found, &reached];
    params.extend(columns.params());
    let outcome_params: [&(dyn postgres::types::ToSql + Sync); 6] = [
        &command_id,
        &user_id,
        &aggregate_id,
        &version,
        &first_position,
        &event_count,
    ];
    if record.is_some() {
        params.extend(outcome_params);
    }
    let result = conn.query_raw_one(&sql, &params);
    check_flushed(conn, result, moved)
}

/// [`flush_one`]'s statement around the SQL that moves the stream (`$1` from
/// version `$2` to `$3`, returning a row if it did).
macro_rules! flush_one_sql {
    ($moved:literal) => {
        concat!(
            "WITH moved AS (",
            $moved,
            "), \
             events_written AS ( \
                INSERT INTO events (",
            event_insert_columns!(),
            ") VALUES ($4, $5, $6, $7, $8, $9, $10, $11, $12, $13)), \
             outcome AS ( \
                INSERT INTO command_outcomes (command_id, user_id, aggregate_id, version, \
                    first_position, event_count) \
                VALUES ($14, $15, $16, $17, $18, $19)) \
             SELECT count(*) FROM moved"
        )
    };
}

const FLUSH_ONE_TO_EXISTING_STREAM: &str = flush_one_sql!(
    "UPDATE streams SET version = $3 WHERE aggregate_id = $1 AND version = $2 RETURNING 1"
);
// `$2` is 0 here; the statement still names it, so that both statements take the
// same parameters (PostgreSQL must be able to type every one).
const FLUSH_ONE_TO_NEW_STREAM: &str = flush_one_sql!(
    "INSERT INTO streams (aggregate_id, version) SELECT $1, $3 WHERE $2::bigint = 0 \
     ON CONFLICT (aggregate_id) DO NOTHING RETURNING 1"
);

/// [`flush`] for the most common command: one event, one stream, an outcome to
/// record. The same work with plain parameters instead of arrays, in one of two
/// statements — the stream exists and moves, or it is created — so PostgreSQL
/// binds, starts and runs no more than the case needs (about half the time of the
/// array form).
fn flush_one(
    conn: &mut Conn,
    event: &PendingEvent,
    stream: (Uuid, u64, u64),
    record: &OutcomeRecord,
) -> Result<(), FlushError> {
    let (aggregate_id, found, reached) = (stream.0, stream.1 as i64, stream.2 as i64);
    let sql = if found > 0 {
        FLUSH_ONE_TO_EXISTING_STREAM
    } else {
        FLUSH_ONE_TO_NEW_STREAM
    };
    let result = conn.query_raw_one(
        sql,
        &[
            &aggregate_id,
            &found,
            &reached,
            &event.position,
            &event.recorded_at,
            &event.id,
            &event.aggregate_id,
            &event.user_id,
            &event.version,
            &event.type_code,
            &event.schema_version,
            &event.data,
            &event.metadata,
            &record.command_id,
            &record.user_id,
            &record.aggregate_id,
            &record.version,
            &record.first_position,
            &record.event_count,
        ],
    );
    check_flushed(conn, result, &[stream])
}

/// Turns a flush statement's answer into the command's result: a taken command
/// id, or a stream that did not move (a `Conflict` naming its version now).
fn check_flushed(
    conn: &mut Conn,
    result: Result<postgres::Row, postgres::Error>,
    moved: &[(Uuid, u64, u64)],
) -> Result<(), FlushError> {
    let row = match result {
        Ok(row) => row,
        Err(error) => {
            return Err(match unique_violation(&error).as_deref() {
                Some("command_outcomes_pkey") => FlushError::CommandIdTaken,
                _ => FlushError::Store(crate::codec::sql_error(error)),
            });
        }
    };
    let streams_moved = row.try_get::<_, i64>(0).map_err(corrupt)?;
    if streams_moved as usize != moved.len() {
        // Find a stream that did not move, to name its current version.
        for (aggregate_id, found, _) in moved {
            let current = conn
                .query_opt(
                    "SELECT version FROM streams WHERE aggregate_id = $1",
                    &[aggregate_id],
                )?
                .map_or(0, |r| r.get::<_, i64>(0) as u64);
            if current != *found {
                return Err(FlushError::Store(StoreError::Conflict {
                    aggregate_id: *aggregate_id,
                    expected: *found,
                    current,
                }));
            }
        }
        return Err(FlushError::Store(StoreError::Busy(
            "a stream moved while this command ran; try again".into(),
        )));
    }
    Ok(())
}
