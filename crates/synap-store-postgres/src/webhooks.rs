//! Webhook subscriptions on PostgreSQL (the contract is `synap_store::webhooks`):
//! the `webhooks` table under row-level security, the subscription queries, and
//! the lookup the write path makes for every command that appends events.

use crate::codec::{corrupt, micros, opt_timestamp, timestamp};
use crate::pool::Conn;
use crate::store::PostgresStore;
use crate::workflow::relax_commit;
use async_trait::async_trait;
use postgres::Row;
use synap_domain::ids::UserId;
use synap_store::webhooks::{
    DeliveryAttempt, NewWebhook, WEBHOOKS_PER_USER_MAX, Webhook, WebhookStore, after_attempt,
    short_error,
};
use synap_store::{Scope, StoreError, StoreResult};
use uuid::Uuid;

/// The migration that creates the table.
pub const SCHEMA: &str = r#"
CREATE TABLE webhooks (
    id                   uuid PRIMARY KEY,
    user_id              uuid NOT NULL,
    url                  text NOT NULL,
    event_types          jsonb NOT NULL,
    description          text,
    secret               text NOT NULL,
    created_at           bigint NOT NULL,
    disabled_at          bigint,
    disabled_reason      text,
    consecutive_failures integer NOT NULL DEFAULT 0,
    last_attempt_at      bigint,
    last_success_at      bigint,
    last_error           text
);
CREATE INDEX webhooks_by_user ON webhooks (user_id, created_at);
ALTER TABLE webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhooks FORCE ROW LEVEL SECURITY;
CREATE POLICY webhooks_of_user ON webhooks
  USING (user_id = coalesce((SELECT nullif(current_setting('synap.user_id', true), '')::uuid), user_id))
  WITH CHECK (user_id = coalesce((SELECT nullif(current_setting('synap.user_id', true), '')::uuid), user_id));
"#;

const COLUMNS: &str = "id, user_id, url, event_types, description, secret, created_at, \
     disabled_at, disabled_reason, consecutive_failures, last_attempt_at, last_success_at, last_error";

fn event_types(value: serde_json::Value) -> StoreResult<Vec<String>> {
    serde_json::from_value(value)
        .map_err(|e| StoreError::Corrupt(format!("webhook event types: {e}")))
}

fn from_row(row: &Row) -> StoreResult<Webhook> {
    let failures: i32 = row.try_get(9).map_err(corrupt)?;
    Ok(Webhook {
        id: row.try_get(0).map_err(corrupt)?,
        user_id: UserId(row.try_get(1).map_err(corrupt)?),
        url: row.try_get(2).map_err(corrupt)?,
        event_types: event_types(row.try_get(3).map_err(corrupt)?)?,
        description: row.try_get(4).map_err(corrupt)?,
        secret: row.try_get(5).map_err(corrupt)?,
        created_at: timestamp(row.try_get(6).map_err(corrupt)?)?,
        disabled_at: opt_timestamp(row.try_get(7).map_err(corrupt)?)?,
        disabled_reason: row.try_get(8).map_err(corrupt)?,
        consecutive_failures: failures.max(0) as u32,
        last_attempt_at: opt_timestamp(row.try_get(10).map_err(corrupt)?)?,
        last_success_at: opt_timestamp(row.try_get(11).map_err(corrupt)?)?,
        last_error: row.try_get(12).map_err(corrupt)?,
    })
}

fn load(conn: &mut Conn, user: &UserId, id: Uuid) -> StoreResult<Option<Webhook>> {
    conn.query_opt(
        &format!("SELECT {COLUMNS} FROM webhooks WHERE id = $1 AND user_id = $2"),
        &[&id, &user.0],
    )?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// Inserts a subscription as it is (`admin migrate`).
pub(crate) fn insert_webhook(conn: &mut Conn, webhook: &Webhook) -> StoreResult<()> {
    let types = serde_json::to_value(&webhook.event_types)
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    let failures = i32::try_from(webhook.consecutive_failures).unwrap_or(i32::MAX);
    conn.execute(
        &format!(
            "INSERT INTO webhooks ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ),
        &[
            &webhook.id,
            &webhook.user_id.0,
            &webhook.url,
            &types,
            &webhook.description,
            &webhook.secret,
            &micros(webhook.created_at),
            &webhook.disabled_at.map(micros),
            &webhook.disabled_reason,
            &failures,
            &webhook.last_attempt_at.map(micros),
            &webhook.last_success_at.map(micros),
            &webhook.last_error,
        ],
    )?;
    Ok(())
}

/// The user's live subscriptions (id, event types), for the write path.
pub fn live_webhooks(conn: &mut Conn, user: &UserId) -> StoreResult<Vec<(Uuid, Vec<String>)>> {
    conn.query(
        "SELECT id, event_types FROM webhooks WHERE user_id = $1 AND disabled_at IS NULL",
        &[&user.0],
    )?
    .iter()
    .map(|row| {
        Ok((
            row.try_get(0).map_err(corrupt)?,
            event_types(row.try_get(1).map_err(corrupt)?)?,
        ))
    })
    .collect()
}

#[async_trait]
impl WebhookStore for PostgresStore {
    async fn create_webhook(&self, scope: &Scope, webhook: NewWebhook) -> StoreResult<Webhook> {
        webhook.check()?;
        let (user, now) = (scope.user_id, self.clock().now());
        self.scoped_work(user, move |conn| {
            // Two creates at once must not both pass the count.
            conn.query_one(
                "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))",
                &[&format!("webhooks:{}", user.0)],
            )?;
            let count: i64 = conn
                .query_one("SELECT count(*) FROM webhooks WHERE user_id = $1", &[&user.0])?
                .try_get(0)
                .map_err(corrupt)?;
            if count as usize >= WEBHOOKS_PER_USER_MAX {
                return Err(StoreError::InvalidInput(format!(
                    "a user may hold {WEBHOOKS_PER_USER_MAX} webhook subscriptions; delete one first"
                )));
            }
            let types = serde_json::to_value(&webhook.event_types)
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            conn.execute_raw(
                "INSERT INTO webhooks (id, user_id, url, event_types, description, secret, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &webhook.id,
                    &user.0,
                    &webhook.url.trim(),
                    &types,
                    &webhook.description,
                    &webhook.secret,
                    &micros(now),
                ],
            )
            .map_err(|e| match crate::codec::unique_violation(&e) {
                Some(_) => StoreError::InvalidInput("this webhook id is already used".into()),
                None => crate::codec::sql_error(e),
            })?;
            load(conn, &user, webhook.id)?
                .ok_or_else(|| StoreError::Backend("the webhook vanished".into()))
        })
        .await
    }

    async fn webhooks(&self, scope: &Scope) -> StoreResult<Vec<Webhook>> {
        let user = scope.user_id;
        self.scoped_work(user, move |conn| {
            conn.query(
                &format!(
                    "SELECT {COLUMNS} FROM webhooks WHERE user_id = $1 ORDER BY created_at, id"
                ),
                &[&user.0],
            )?
            .iter()
            .map(from_row)
            .collect()
        })
        .await
    }

    async fn webhook(&self, scope: &Scope, id: Uuid) -> StoreResult<Option<Webhook>> {
        let user = scope.user_id;
        self.scoped_work(user, move |conn| load(conn, &user, id))
            .await
    }

    async fn delete_webhook(&self, scope: &Scope, id: Uuid) -> StoreResult<bool> {
        let user = scope.user_id;
        self.scoped_work(user, move |conn| {
            Ok(conn.execute(
                "DELETE FROM webhooks WHERE id = $1 AND user_id = $2",
                &[&id, &user.0],
            )? > 0)
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
        self.scoped_work(user, move |conn| {
            relax_commit(conn)?;
            let Some(row) = conn.query_opt(
                "SELECT consecutive_failures FROM webhooks WHERE id = $1 AND user_id = $2 FOR UPDATE",
                &[&id, &user.0],
            )?
            else {
                return Ok(None);
            };
            let before: i32 = row.try_get(0).map_err(corrupt)?;
            let (failures, disable) =
                after_attempt(before.max(0) as u32, &attempt, disable_after);
            let failures = i32::try_from(failures).unwrap_or(i32::MAX);
            let error = attempt.error.as_deref().map(short_error);
            conn.execute(
                "UPDATE webhooks SET consecutive_failures = $3, last_attempt_at = $4, \
                 last_success_at = CASE WHEN $5::text IS NULL THEN $4 ELSE last_success_at END, \
                 last_error = coalesce($5::text, last_error), \
                 disabled_at = CASE WHEN $6::text IS NOT NULL AND disabled_at IS NULL THEN $4 ELSE disabled_at END, \
                 disabled_reason = CASE WHEN $6::text IS NOT NULL AND disabled_at IS NULL THEN $6::text ELSE disabled_reason END \
                 WHERE id = $1 AND user_id = $2",
                &[&id, &user.0, &failures, &micros(attempt.at), &error, &disable],
            )?;
            load(conn, &user, id)
        })
        .await
    }
}
