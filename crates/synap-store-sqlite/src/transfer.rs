//! Reading a whole embedded instance out for `synap admin migrate`
//! ([`synap_store::transfer::Export`]). Every page is one read transaction on
//! the read pool, so it sees one consistent snapshot while the writer goes on.
//!
//! A page of events never ends inside a command: one command's events share a
//! transaction on every backend, and PostgreSQL replays a repeated command from
//! its first position and event count, which only holds if they stay consecutive.
//! A command starts at an event whose id has an idempotency record (the first
//! event takes the command id); the events that follow it with the same user and
//! time belong to it.

use crate::codec::{
    EVENT_COLUMNS, event_from_row, hash, opt_timestamp, sql_error, timestamp, uuid,
};
use crate::store::SqliteStore;
use async_trait::async_trait;
use rusqlite::{Connection, params};
use synap_domain::StoredEvent;
use synap_domain::ids::{ContentHash, UserId};
use synap_store::transfer::{
    AccountsRecord, CONTENT_BATCH_BYTES_MAX, ContentRecord, EventKey, Export, Inventory,
    OutcomeRecord, SessionRow, TokenRecord, UserRecord,
};
use synap_store::{StoreError, StoreResult};
use uuid::Uuid;

/// Turns a column that does not decode into a corruption error.
fn bad(error: rusqlite::Error) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

fn clamp(position: u64) -> i64 {
    position.min(i64::MAX as u64) as i64
}

fn counts(conn: &Connection) -> StoreResult<Inventory> {
    conn.query_row(
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM contents), \
                (SELECT count(*) FROM users), (SELECT count(*) FROM api_tokens), \
                (SELECT count(*) FROM sessions), (SELECT count(*) FROM command_outcomes), \
                (SELECT coalesce(max(position), 0) FROM events), \
                (SELECT min(recorded_at) FROM events), (SELECT max(recorded_at) FROM events)",
        [],
        |row| {
            Ok((
                [
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, i64>(5)?,
                    row.get::<_, i64>(6)?,
                ],
                row.get::<_, Option<i64>>(7)?,
                row.get::<_, Option<i64>>(8)?,
            ))
        },
    )
    .map_err(sql_error)
    .and_then(|(n, first, last)| {
        Ok(Inventory {
            events: n[0] as u64,
            contents: n[1] as u64,
            users: n[2] as u64,
            tokens: n[3] as u64,
            sessions: n[4] as u64,
            outcomes: n[5] as u64,
            head_position: n[6] as u64,
            first_recorded_at: opt_timestamp(first)?,
            last_recorded_at: opt_timestamp(last)?,
        })
    })
}

fn events(
    conn: &Connection,
    after: u64,
    through: u64,
    limit: usize,
) -> StoreResult<Vec<StoredEvent>> {
    // One event more than the page, to see whether the page would end inside a command.
    let mut statement = conn
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS}, \
                    EXISTS (SELECT 1 FROM command_outcomes o WHERE o.command_id = events.id) \
             FROM events WHERE position > ?1 AND position <= ?2 ORDER BY position LIMIT ?3"
        ))
        .map_err(sql_error)?;
    let mut rows = statement
        .query(params![clamp(after), clamp(through), limit as i64 + 1])
        .map_err(sql_error)?;
    let mut page: Vec<(StoredEvent, bool)> = Vec::with_capacity(limit + 1);
    while let Some(row) = rows.next().map_err(sql_error)? {
        page.push((event_from_row(row)?, row.get::<_, bool>(10).map_err(bad)?));
    }
    if page.len() > limit {
        let continues = |i: usize| {
            let ((previous, _), (event, starts)) = (&page[i - 1], &page[i]);
            !starts
                && event.user_id == previous.user_id
                && event.recorded_at == previous.recorded_at
        };
        let mut end = limit;
        while end > 1 && continues(end) {
            end -= 1;
        }
        // One command longer than a page: split it rather than stall.
        if end == 1 && continues(1) {
            end = limit;
        }
        page.truncate(end);
    }
    Ok(page.into_iter().map(|(event, _)| event).collect())
}

fn contents(
    conn: &Connection,
    after: Option<(UserId, ContentHash)>,
    limit: usize,
) -> StoreResult<Vec<ContentRecord>> {
    const COLUMNS: &str =
        "user_id, hash, size, media_type, storage, body, created_at, object_provider, object_key";
    let (sql, args) = match after {
        None => (
            format!("SELECT {COLUMNS} FROM contents ORDER BY user_id, hash LIMIT ?1"),
            vec![rusqlite::types::Value::Integer(limit as i64)],
        ),
        Some((user, after_hash)) => (
            format!(
                "SELECT {COLUMNS} FROM contents WHERE (user_id, hash) > (?2, ?3) \
                 ORDER BY user_id, hash LIMIT ?1"
            ),
            vec![
                rusqlite::types::Value::Integer(limit as i64),
                rusqlite::types::Value::Blob(user.as_bytes().to_vec()),
                rusqlite::types::Value::Blob(after_hash.as_bytes().to_vec()),
            ],
        ),
    };
    let mut statement = conn.prepare_cached(&sql).map_err(sql_error)?;
    let mut rows = statement
        .query(rusqlite::params_from_iter(args))
        .map_err(sql_error)?;
    let mut page = Vec::new();
    let mut bytes = 0;
    while let Some(row) = rows.next().map_err(sql_error)? {
        let body: Option<String> = row.get(5).map_err(bad)?;
        bytes += body.as_ref().map_or(0, String::len);
        page.push(ContentRecord {
            user_id: UserId(uuid(&row.get::<_, Vec<u8>>(0).map_err(bad)?)?),
            hash: hash(&row.get::<_, Vec<u8>>(1).map_err(bad)?)?,
            size: row.get::<_, i64>(2).map_err(bad)? as u64,
            media_type: row.get(3).map_err(bad)?,
            storage: row.get(4).map_err(bad)?,
            body,
            created_at: timestamp(row.get(6).map_err(bad)?)?,
            object_provider: row.get(7).map_err(bad)?,
            object_key: row.get(8).map_err(bad)?,
        });
        if bytes >= CONTENT_BATCH_BYTES_MAX {
            break;
        }
    }
    Ok(page)
}

fn accounts(conn: &Connection) -> StoreResult<AccountsRecord> {
    let mut accounts = AccountsRecord::default();
    let mut statement = conn
        .prepare_cached(
            "SELECT id, email, email_key, password_hash, display_name, role, created_at, disabled_at \
             FROM users ORDER BY created_at, id",
        )
        .map_err(sql_error)?;
    let mut rows = statement.query([]).map_err(sql_error)?;
    while let Some(row) = rows.next().map_err(sql_error)? {
        accounts.users.push(UserRecord {
            id: UserId(uuid(&row.get::<_, Vec<u8>>(0).map_err(bad)?)?),
            email: row.get(1).map_err(bad)?,
            email_key: row.get(2).map_err(bad)?,
            password_hash: row.get(3).map_err(bad)?,
            display_name: row.get(4).map_err(bad)?,
            role: row.get(5).map_err(bad)?,
            created_at: timestamp(row.get(6).map_err(bad)?)?,
            disabled_at: opt_timestamp(row.get(7).map_err(bad)?)?,
        });
    }
    let mut statement = conn
        .prepare_cached(
            "SELECT id, user_id, name, prefix, secret_hash, scopes, created_at, expires_at, \
                    last_used_at, revoked_at \
             FROM api_tokens ORDER BY created_at, id",
        )
        .map_err(sql_error)?;
    let mut rows = statement.query([]).map_err(sql_error)?;
    while let Some(row) = rows.next().map_err(sql_error)? {
        let scopes: String = row.get(5).map_err(bad)?;
        accounts.tokens.push(TokenRecord {
            id: uuid(&row.get::<_, Vec<u8>>(0).map_err(bad)?)?,
            user_id: UserId(uuid(&row.get::<_, Vec<u8>>(1).map_err(bad)?)?),
            name: row.get(2).map_err(bad)?,
            prefix: row.get(3).map_err(bad)?,
            secret_hash: row.get(4).map_err(bad)?,
            scopes: serde_json::from_str(&scopes)
                .map_err(|e| StoreError::Corrupt(format!("token scopes: {e}")))?,
            created_at: timestamp(row.get(6).map_err(bad)?)?,
            expires_at: opt_timestamp(row.get(7).map_err(bad)?)?,
            last_used_at: opt_timestamp(row.get(8).map_err(bad)?)?,
            revoked_at: opt_timestamp(row.get(9).map_err(bad)?)?,
        });
    }
    let mut statement = conn
        .prepare_cached(
            "SELECT id_hash, user_id, created_at, expires_at, last_seen_at FROM sessions ORDER BY id_hash",
        )
        .map_err(sql_error)?;
    let mut rows = statement.query([]).map_err(sql_error)?;
    while let Some(row) = rows.next().map_err(sql_error)? {
        accounts.sessions.push(SessionRow {
            id_hash: row.get(0).map_err(bad)?,
            user_id: UserId(uuid(&row.get::<_, Vec<u8>>(1).map_err(bad)?)?),
            created_at: timestamp(row.get(2).map_err(bad)?)?,
            expires_at: timestamp(row.get(3).map_err(bad)?)?,
            last_seen_at: timestamp(row.get(4).map_err(bad)?)?,
        });
    }
    accounts.webhooks = crate::webhooks::list(conn, None)?;
    accounts.suggestions = crate::suggestions::list(conn, None, None)?;
    Ok(accounts)
}

fn outcomes(
    conn: &Connection,
    after: Option<Uuid>,
    through: u64,
    limit: usize,
) -> StoreResult<Vec<OutcomeRecord>> {
    // The first event of a command carries the command id.
    let select = "SELECT o.command_id, o.user_id, o.aggregate_id, o.version, o.event_count, \
                         e.aggregate_id, e.version, e.recorded_at \
                  FROM command_outcomes o LEFT JOIN events e ON e.id = o.command_id \
                  WHERE (e.position IS NULL OR e.position <= ?1)";
    let (sql, args) = match after {
        None => (
            format!("{select} ORDER BY o.command_id LIMIT ?2"),
            vec![
                rusqlite::types::Value::Integer(clamp(through)),
                rusqlite::types::Value::Integer(limit as i64),
            ],
        ),
        Some(after) => (
            format!("{select} AND o.command_id > ?3 ORDER BY o.command_id LIMIT ?2"),
            vec![
                rusqlite::types::Value::Integer(clamp(through)),
                rusqlite::types::Value::Integer(limit as i64),
                rusqlite::types::Value::Blob(after.as_bytes().to_vec()),
            ],
        ),
    };
    let mut statement = conn.prepare_cached(&sql).map_err(sql_error)?;
    let mut rows = statement
        .query(rusqlite::params_from_iter(args))
        .map_err(sql_error)?;
    let mut page = Vec::new();
    while let Some(row) = rows.next().map_err(sql_error)? {
        let first_aggregate: Option<Vec<u8>> = row.get(5).map_err(bad)?;
        let first_version: Option<i64> = row.get(6).map_err(bad)?;
        let first_recorded: Option<i64> = row.get(7).map_err(bad)?;
        let first_event = match (first_aggregate, first_version, first_recorded) {
            (Some(aggregate), Some(version), Some(recorded_at)) => Some(EventKey {
                aggregate_id: uuid(&aggregate)?,
                version: version as u64,
                recorded_at: timestamp(recorded_at)?,
            }),
            _ => None,
        };
        page.push(OutcomeRecord {
            command_id: uuid(&row.get::<_, Vec<u8>>(0).map_err(bad)?)?,
            user_id: UserId(uuid(&row.get::<_, Vec<u8>>(1).map_err(bad)?)?),
            aggregate_id: uuid(&row.get::<_, Vec<u8>>(2).map_err(bad)?)?,
            version: row.get::<_, i64>(3).map_err(bad)? as u64,
            event_count: u32::try_from(row.get::<_, i64>(4).map_err(bad)?)
                .map_err(|e| StoreError::Corrupt(format!("event count: {e}")))?,
            first_event,
        });
    }
    Ok(page)
}

#[async_trait]
impl Export for SqliteStore {
    async fn counts(&self) -> StoreResult<Inventory> {
        self.read(counts).await
    }

    async fn export_events(
        &self,
        after: u64,
        through: u64,
        limit: usize,
    ) -> StoreResult<Vec<StoredEvent>> {
        self.read(move |conn| events(conn, after, through, limit.max(1)))
            .await
    }

    async fn export_contents(
        &self,
        after: Option<(UserId, ContentHash)>,
        limit: usize,
    ) -> StoreResult<Vec<ContentRecord>> {
        self.read(move |conn| contents(conn, after, limit)).await
    }

    async fn export_accounts(&self) -> StoreResult<AccountsRecord> {
        self.read(accounts).await
    }

    async fn export_outcomes(
        &self,
        after: Option<Uuid>,
        through: u64,
        limit: usize,
    ) -> StoreResult<Vec<OutcomeRecord>> {
        self.read(move |conn| outcomes(conn, after, through, limit))
            .await
    }
}
