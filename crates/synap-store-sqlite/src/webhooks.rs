//! Webhook subscriptions on SQLite (the contract is `synap_store::webhooks`): the
//! `webhooks` table (migration 6), the subscription queries, and the lookup the
//! write path makes for every command that appends events (`live_webhooks`, one
//! indexed probe that finds nothing for users without subscriptions).

use crate::codec::{micros, opt_timestamp, sql_error, timestamp, uuid};
use crate::store::SqliteStore;
use crate::workflow::relaxed_write_tx;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};
use synap_domain::ids::UserId;
use synap_store::webhooks::{
    DeliveryAttempt, NewWebhook, WEBHOOKS_PER_USER_MAX, Webhook, WebhookStore, after_attempt,
    short_error,
};
use synap_store::{Scope, StoreError, StoreResult};
use uuid::Uuid;

/// Migration 6: webhook subscriptions. Configuration of a user, like API tokens;
/// `event_types` is a JSON array.
pub const SCHEMA: &str = r#"
CREATE TABLE webhooks (
    id                   BLOB PRIMARY KEY,
    user_id              BLOB NOT NULL,
    url                  TEXT NOT NULL,
    event_types          TEXT NOT NULL,
    description          TEXT,
    secret               TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    disabled_at          INTEGER,
    disabled_reason      TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_attempt_at      INTEGER,
    last_success_at      INTEGER,
    last_error           TEXT
) WITHOUT ROWID;
CREATE INDEX webhooks_by_user ON webhooks(user_id, created_at);
"#;

const COLUMNS: &str = "id, user_id, url, event_types, description, secret, created_at, \
     disabled_at, disabled_reason, consecutive_failures, last_attempt_at, last_success_at, last_error";

fn from_row(row: &Row<'_>) -> StoreResult<Webhook> {
    let corrupt = |e: rusqlite::Error| StoreError::Corrupt(e.to_string());
    let id: Vec<u8> = row.get(0).map_err(corrupt)?;
    let user: Vec<u8> = row.get(1).map_err(corrupt)?;
    let types: String = row.get(3).map_err(corrupt)?;
    Ok(Webhook {
        id: uuid(&id)?,
        user_id: UserId(uuid(&user)?),
        url: row.get(2).map_err(corrupt)?,
        event_types: serde_json::from_str(&types)
            .map_err(|e| StoreError::Corrupt(format!("webhook event types: {e}")))?,
        description: row.get(4).map_err(corrupt)?,
        secret: row.get(5).map_err(corrupt)?,
        created_at: timestamp(row.get(6).map_err(corrupt)?)?,
        disabled_at: opt_timestamp(row.get(7).map_err(corrupt)?)?,
        disabled_reason: row.get(8).map_err(corrupt)?,
        consecutive_failures: row.get(9).map_err(corrupt)?,
        last_attempt_at: opt_timestamp(row.get(10).map_err(corrupt)?)?,
        last_success_at: opt_timestamp(row.get(11).map_err(corrupt)?)?,
        last_error: row.get(12).map_err(corrupt)?,
    })
}

fn load(conn: &Connection, user: &UserId, id: Uuid) -> StoreResult<Option<Webhook>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM webhooks WHERE id = ?1 AND user_id = ?2"
    ))
    .map_err(sql_error)?
    .query_row(params![id.as_bytes(), user.as_bytes()], |row| {
        Ok(from_row(row))
    })
    .optional()
    .map_err(sql_error)?
    .transpose()
}

/// The subscriptions of `user`, or of every user (`admin migrate`), oldest first.
pub(crate) fn list(conn: &Connection, user: Option<&UserId>) -> StoreResult<Vec<Webhook>> {
    let mut statement = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM webhooks WHERE ?1 IS NULL OR user_id = ?1 ORDER BY created_at, id"
        ))
        .map_err(sql_error)?;
    let mut rows = statement
        .query(params![user.map(|u| u.as_bytes().as_slice())])
        .map_err(sql_error)?;
    let mut all = Vec::new();
    while let Some(row) = rows.next().map_err(sql_error)? {
        all.push(from_row(row)?);
    }
    Ok(all)
}

/// The user's live subscriptions (id, event types), for the write path.
pub fn live_webhooks(conn: &Connection, user: &UserId) -> StoreResult<Vec<(Uuid, Vec<String>)>> {
    let mut statement = conn
        .prepare_cached(
            "SELECT id, event_types FROM webhooks WHERE user_id = ?1 AND disabled_at IS NULL",
        )
        .map_err(sql_error)?;
    let mut rows = statement
        .query(params![user.as_bytes()])
        .map_err(sql_error)?;
    let mut live = Vec::new();
    while let Some(row) = rows.next().map_err(sql_error)? {
        let corrupt = |e: rusqlite::Error| StoreError::Corrupt(e.to_string());
        let id: Vec<u8> = row.get(0).map_err(corrupt)?;
        let types: String = row.get(1).map_err(corrupt)?;
        live.push((
            uuid(&id)?,
            serde_json::from_str(&types)
                .map_err(|e| StoreError::Corrupt(format!("webhook event types: {e}")))?,
        ));
    }
    Ok(live)
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn create_webhook(&self, scope: &Scope, webhook: NewWebhook) -> StoreResult<Webhook> {
        webhook.check()?;
        let (user, now) = (scope.user_id, self.clock().now());
        self.exclusive(move |conn| {
            crate::workflow::write_tx(conn, |conn| {
                let count: i64 = conn
                    .query_row(
                        "SELECT count(*) FROM webhooks WHERE user_id = ?1",
                        params![user.as_bytes()],
                        |row| row.get(0),
                    )
                    .map_err(sql_error)?;
                if count as usize >= WEBHOOKS_PER_USER_MAX {
                    return Err(StoreError::InvalidInput(format!(
                        "a user may hold {WEBHOOKS_PER_USER_MAX} webhook subscriptions; delete one first"
                    )));
                }
                let types = serde_json::to_string(&webhook.event_types)
                    .map_err(|e| StoreError::Backend(e.to_string()))?;
                conn.execute(
                    "INSERT INTO webhooks (id, user_id, url, event_types, description, secret, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        webhook.id.as_bytes(),
                        user.as_bytes(),
                        webhook.url.trim(),
                        types,
                        webhook.description,
                        webhook.secret,
                        micros(now)
                    ],
                )
                .map_err(|e| {
                    if crate::codec::is_unique_violation(&e) {
                        StoreError::InvalidInput("this webhook id is already used".into())
                    } else {
                        sql_error(e)
                    }
                })?;
                load(conn, &user, webhook.id)?
                    .ok_or_else(|| StoreError::Backend("the webhook vanished".into()))
            })
        })
        .await
    }

    async fn webhooks(&self, scope: &Scope) -> StoreResult<Vec<Webhook>> {
        let user = scope.user_id;
        self.read(move |conn| list(conn, Some(&user))).await
    }

    async fn webhook(&self, scope: &Scope, id: Uuid) -> StoreResult<Option<Webhook>> {
        let user = scope.user_id;
        self.read(move |conn| load(conn, &user, id)).await
    }

    async fn delete_webhook(&self, scope: &Scope, id: Uuid) -> StoreResult<bool> {
        let user = scope.user_id;
        self.exclusive(move |conn| {
            crate::workflow::write_tx(conn, |conn| {
                conn.execute(
                    "DELETE FROM webhooks WHERE id = ?1 AND user_id = ?2",
                    params![id.as_bytes(), user.as_bytes()],
                )
                .map(|n| n > 0)
                .map_err(sql_error)
            })
        })
        .await
    }

    async fn record_attempt(
        &self,
        scope: &Scope,
        id: Uuid,
        attempt: DeliveryAttempt,
        disable_after: u32,
    ) -> StoreResult<Option<Webhook>> {
        let user = scope.user_id;
        self.exclusive(move |conn| {
            relaxed_write_tx(conn, |conn| {
                let Some(before) = load(conn, &user, id)? else {
                    return Ok(None);
                };
                let (failures, disable) =
                    after_attempt(before.consecutive_failures, &attempt, disable_after);
                let at = micros(attempt.at);
                conn.execute(
                    "UPDATE webhooks SET consecutive_failures = ?3, last_attempt_at = ?4, \
                     last_success_at = CASE WHEN ?5 IS NULL THEN ?4 ELSE last_success_at END, \
                     last_error = coalesce(?5, last_error), \
                     disabled_at = CASE WHEN ?6 IS NOT NULL AND disabled_at IS NULL THEN ?4 ELSE disabled_at END, \
                     disabled_reason = CASE WHEN ?6 IS NOT NULL AND disabled_at IS NULL THEN ?6 ELSE disabled_reason END \
                     WHERE id = ?1 AND user_id = ?2",
                    params![
                        id.as_bytes(),
                        user.as_bytes(),
                        failures,
                        at,
                        attempt.error.as_deref().map(short_error),
                        disable
                    ],
                )
                .map_err(sql_error)?;
                load(conn, &user, id)
            })
        })
        .await
    }
}
