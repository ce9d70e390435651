//! Writing a whole instance into an empty database for `synap admin migrate`
//! ([`synap_store::transfer::Import`]).
//!
//! - `begin_import` refuses a database that holds events or users (a copy is
//!   never merged into a live database) and creates the monthly partitions for
//!   the log's whole time range up front, outside any transaction.
//! - Each page is one transaction of multi-row statements (`unnest` of arrays),
//!   so a million events take two hundred round trips, not a million.
//! - Events get this database's positions the way `write::append_event` makes
//!   them: the transaction's id shifted by `POSITION_INDEX_BITS`, plus the
//!   event's index in its page. Pages are written one after another, so the
//!   positions keep the source's order; a page never splits a command
//!   (`Export::export_events`), so a command's events stay consecutive and
//!   `replayed_outcome` finds them from the first one's position and the count.
//! - Payloads are written in their current schema version (the source's
//!   upcasters already ran when the page was read).
//! - An idempotency record finds its first event's new position by the event's
//!   stream, version and time: the time names the one partition to look in.
//! - `streams` rows follow each page, so every committed page is a consistent log;
//!   `finish_import` then checks the whole log (versions 1..n without gaps or
//!   repeats, streams at the last version, every recorded first event found) and
//!   rebuilds the projections with `Maintenance::rebuild`.
//!
//! The work runs with no user set (row-level security lets system work see and
//! write every user's rows).

use crate::codec::{EVENTS_PER_TRANSACTION_MAX, POSITION_INDEX_BITS, corrupt, micros};
use crate::pool::Conn;
use crate::store::PostgresStore;
use crate::write::{EVENT_INSERT_COLUMNS, EventColumns, PendingEvent};
use async_trait::async_trait;
use std::sync::Arc;
use synap_domain::StoredEvent;
use synap_store::transfer::{AccountsRecord, ContentRecord, Import, Inventory, OutcomeRecord};
use synap_store::{Maintenance, Progress, RebuildReport, StoreError, StoreResult};
use uuid::Uuid;

/// Most faulty aggregates named when the imported log fails its check.
const FAULTS_SHOWN_MAX: i64 = 5;

fn json(value: &impl serde::Serialize) -> StoreResult<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| StoreError::Backend(e.to_string()))
}

fn refuse_unless_empty(conn: &mut Conn) -> StoreResult<()> {
    let row = conn.query_one(
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM users)",
        &[],
    )?;
    let events: i64 = row.try_get(0).map_err(corrupt)?;
    let users: i64 = row.try_get(1).map_err(corrupt)?;
    if events > 0 || users > 0 {
        return Err(StoreError::InvalidInput(format!(
            "the target database is not empty ({events} events, {users} users); \
             migrate into a new, empty database"
        )));
    }
    Ok(())
}

fn insert_accounts(conn: &mut Conn, accounts: &AccountsRecord) -> StoreResult<()> {
    for user in &accounts.users {
        conn.execute(
            "INSERT INTO users (id, email, email_key, password_hash, display_name, role, created_at, disabled_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &user.id.0,
                &user.email,
                &user.email_key,
                &user.password_hash,
                &user.display_name,
                &user.role,
                &micros(user.created_at),
                &user.disabled_at.map(micros),
            ],
        )?;
    }
    for token in &accounts.tokens {
        conn.execute(
            "INSERT INTO api_tokens (id, user_id, name, prefix, secret_hash, scopes, created_at, \
                 expires_at, last_used_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &token.id,
                &token.user_id.0,
                &token.name,
                &token.prefix,
                &token.secret_hash,
                &json(&token.scopes)?,
                &micros(token.created_at),
                &token.expires_at.map(micros),
                &token.last_used_at.map(micros),
                &token.revoked_at.map(micros),
            ],
        )?;
    }
    for session in &accounts.sessions {
        conn.execute(
            "INSERT INTO sessions (id_hash, user_id, created_at, expires_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &session.id_hash,
                &session.user_id.0,
                &micros(session.created_at),
                &micros(session.expires_at),
                &micros(session.last_seen_at),
            ],
        )?;
    }
    for webhook in &accounts.webhooks {
        crate::webhooks::insert_webhook(conn, webhook)?;
    }
    for suggestion in &accounts.suggestions {
        crate::suggestions::insert_suggestion(conn, suggestion)?;
    }
    Ok(())
}

fn insert_contents(conn: &mut Conn, batch: &[ContentRecord]) -> StoreResult<()> {
    let users: Vec<Uuid> = batch.iter().map(|c| c.user_id.0).collect();
    let hashes: Vec<&[u8]> = batch.iter().map(|c| c.hash.as_bytes().as_slice()).collect();
    let sizes: Vec<i64> = batch.iter().map(|c| c.size as i64).collect();
    let media_types: Vec<&str> = batch.iter().map(|c| c.media_type.as_str()).collect();
    let storages: Vec<&str> = batch.iter().map(|c| c.storage.as_str()).collect();
    let bodies: Vec<Option<&str>> = batch.iter().map(|c| c.body.as_deref()).collect();
    let created: Vec<i64> = batch.iter().map(|c| micros(c.created_at)).collect();
    let providers: Vec<Option<&str>> = batch.iter().map(|c| c.object_provider.as_deref()).collect();
    let keys: Vec<Option<&str>> = batch.iter().map(|c| c.object_key.as_deref()).collect();
    conn.execute(
        "INSERT INTO contents (user_id, hash, size, media_type, storage, body, created_at, \
                               object_provider, object_key) \
         SELECT * FROM unnest($1::uuid[], $2::bytea[], $3::bigint[], $4::text[], $5::text[], \
                              $6::text[], $7::bigint[], $8::text[], $9::text[])",
        &[
            &users,
            &hashes,
            &sizes,
            &media_types,
            &storages,
            &bodies,
            &created,
            &providers,
            &keys,
        ],
    )?;
    Ok(())
}

fn insert_events(conn: &mut Conn, batch: &[StoredEvent]) -> StoreResult<()> {
    // The index within the page is the low bits of the position.
    if batch.len() as u64 >= EVENTS_PER_TRANSACTION_MAX {
        return Err(StoreError::InvalidInput(format!(
            "an import page holds at most {} events",
            EVENTS_PER_TRANSACTION_MAX - 1
        )));
    }
    // Numbered here by their index in the page; the statement adds the
    // transaction's id, as a command's append does.
    let pending = batch
        .iter()
        .enumerate()
        .map(|(index, event)| PendingEvent::from_stored(event, index as i64))
        .collect::<StoreResult<Vec<_>>>()?;
    let columns = EventColumns::new(&pending);
    conn.execute(
        &format!(
            "INSERT INTO events ({EVENT_INSERT_COLUMNS}) \
             SELECT (pg_current_xact_id()::text::bigint << {POSITION_INDEX_BITS}) + e.position, \
                    e.recorded_at, e.id, e.aggregate_id, e.user_id, e.version, e.type_code, \
                    e.schema_version, e.data, e.metadata \
             FROM {}",
            EventColumns::unnest(1)
        ),
        &columns.params(),
    )?;
    let aggregates: Vec<Uuid> = batch.iter().map(|e| e.aggregate_id).collect();
    let versions: Vec<i64> = batch.iter().map(|e| e.version as i64).collect();
    conn.execute(
        "INSERT INTO streams (aggregate_id, version) \
         SELECT aggregate_id, max(version) FROM unnest($1::uuid[], $2::bigint[]) AS s(aggregate_id, version) \
         GROUP BY aggregate_id \
         ON CONFLICT (aggregate_id) DO UPDATE SET version = greatest(streams.version, excluded.version)",
        &[&aggregates, &versions],
    )?;
    Ok(())
}

fn insert_outcomes(conn: &mut Conn, batch: &[OutcomeRecord]) -> StoreResult<()> {
    let commands: Vec<Uuid> = batch.iter().map(|o| o.command_id).collect();
    let users: Vec<Uuid> = batch.iter().map(|o| o.user_id.0).collect();
    let aggregates: Vec<Uuid> = batch.iter().map(|o| o.aggregate_id).collect();
    let versions: Vec<i64> = batch.iter().map(|o| o.version as i64).collect();
    let counts: Vec<i32> = batch
        .iter()
        .map(|o| i32::try_from(o.event_count).unwrap_or(i32::MAX))
        .collect();
    let first_aggregates: Vec<Option<Uuid>> = batch
        .iter()
        .map(|o| o.first_event.map(|e| e.aggregate_id))
        .collect();
    let first_versions: Vec<Option<i64>> = batch
        .iter()
        .map(|o| o.first_event.map(|e| e.version as i64))
        .collect();
    let first_times: Vec<Option<i64>> = batch
        .iter()
        .map(|o| o.first_event.map(|e| micros(e.recorded_at)))
        .collect();
    // The batch's time range, known when the statement is planned: only the
    // partitions it covers are opened (a correlated time alone prunes only while
    // running, after every partition was opened).
    let earliest = first_times.iter().flatten().min().copied().unwrap_or(0);
    let latest = first_times.iter().flatten().max().copied().unwrap_or(0);
    conn.execute(
        "INSERT INTO command_outcomes (command_id, user_id, aggregate_id, version, first_position, event_count) \
         SELECT o.command_id, o.user_id, o.aggregate_id, o.version, \
                (SELECT e.position FROM events e \
                 WHERE e.aggregate_id = o.first_aggregate AND e.version = o.first_version \
                   AND e.recorded_at = o.first_recorded_at \
                   AND e.recorded_at BETWEEN $9 AND $10), \
                o.event_count \
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $5::integer[], \
                     $6::uuid[], $7::bigint[], $8::bigint[]) \
              AS o(command_id, user_id, aggregate_id, version, event_count, \
                   first_aggregate, first_version, first_recorded_at)",
        &[
            &commands,
            &users,
            &aggregates,
            &versions,
            &counts,
            &first_aggregates,
            &first_versions,
            &first_times,
            &earliest,
            &latest,
        ],
    )?;
    Ok(())
}

/// Checks the imported log as a whole: each aggregate's versions are exactly
/// 1..n, its stream stands at n, and every idempotency record with events found
/// its first one.
fn check_log(conn: &mut Conn) -> StoreResult<()> {
    let faulty = conn.query(
        "SELECT l.aggregate_id FROM ( \
             SELECT aggregate_id, count(*) AS n, count(DISTINCT version) AS distinct_versions, \
                    min(version) AS low, max(version) AS high \
             FROM events GROUP BY aggregate_id) l \
         LEFT JOIN streams s ON s.aggregate_id = l.aggregate_id \
         WHERE l.low <> 1 OR l.high <> l.n OR l.distinct_versions <> l.n \
            OR s.version IS DISTINCT FROM l.high \
         LIMIT $1",
        &[&FAULTS_SHOWN_MAX],
    )?;
    if !faulty.is_empty() {
        let ids = faulty
            .iter()
            .map(|r| r.try_get::<_, Uuid>(0).map(|id| id.to_string()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(corrupt)?;
        return Err(StoreError::Corrupt(format!(
            "the imported log has gaps or repeated versions in {}",
            ids.join(", ")
        )));
    }
    let orphans: i64 = conn
        .query_one(
            "SELECT count(*) FROM command_outcomes WHERE event_count > 0 AND first_position IS NULL",
            &[],
        )?
        .try_get(0)
        .map_err(corrupt)?;
    if orphans > 0 {
        return Err(StoreError::Corrupt(format!(
            "{orphans} idempotency records name events the imported log does not hold"
        )));
    }
    Ok(())
}

#[async_trait]
impl Import for PostgresStore {
    async fn begin_import(&self, inventory: &Inventory) -> StoreResult<()> {
        let partitions = Arc::clone(self.partitions());
        let range = inventory.first_recorded_at.zip(inventory.last_recorded_at);
        self.pool()
            .run(move |conn| {
                refuse_unless_empty(conn)?;
                if let Some((first, last)) = range {
                    partitions.ensure_range(conn, first, last)?;
                }
                Ok(())
            })
            .await
    }

    async fn import_accounts(&self, accounts: AccountsRecord) -> StoreResult<()> {
        self.pool()
            .run(move |conn| conn.transaction(None, |conn| insert_accounts(conn, &accounts)))
            .await
    }

    async fn import_contents(&self, batch: Vec<ContentRecord>) -> StoreResult<()> {
        self.pool()
            .run(move |conn| conn.transaction(None, |conn| insert_contents(conn, &batch)))
            .await
    }

    async fn import_events(&self, batch: Vec<StoredEvent>) -> StoreResult<()> {
        self.pool()
            .run(move |conn| conn.transaction(None, |conn| insert_events(conn, &batch)))
            .await
    }

    async fn import_outcomes(&self, batch: Vec<OutcomeRecord>) -> StoreResult<()> {
        self.pool()
            .run(move |conn| conn.transaction(None, |conn| insert_outcomes(conn, &batch)))
            .await
    }

    async fn finish_import(&self, progress: Progress<'_>) -> StoreResult<RebuildReport> {
        self.pool()
            .run(|conn| conn.transaction(None, check_log))
            .await?;
        self.rebuild(progress).await
    }
}
