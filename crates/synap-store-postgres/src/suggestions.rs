//! Suggestions on PostgreSQL (the contract is `synap_store::suggestions`): the
//! `suggestions` table under row-level security.

use crate::codec::{corrupt, micros, opt_timestamp, timestamp};
use crate::pool::Conn;
use crate::store::PostgresStore;
use async_trait::async_trait;
use postgres::Row;
use synap_domain::ids::{EntityId, UserId};
use synap_store::suggestions::{
    Decided, Decision, NewSuggestion, Suggestion, SuggestionStatus, SuggestionStore, decided,
};
use synap_store::{Scope, StoreError, StoreResult};
use uuid::Uuid;

/// The migration that creates the table.
pub const SCHEMA: &str = r#"
CREATE TABLE suggestions (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL,
    kind        text NOT NULL,
    tag         text NOT NULL,
    tag_key     text NOT NULL,
    entity_ids  jsonb NOT NULL,
    status      text NOT NULL,
    created_at  bigint NOT NULL,
    decided_at  bigint,
    project_id  uuid,
    UNIQUE (user_id, kind, tag_key)
);
CREATE INDEX suggestions_by_user ON suggestions (user_id, created_at DESC);
ALTER TABLE suggestions ENABLE ROW LEVEL SECURITY;
ALTER TABLE suggestions FORCE ROW LEVEL SECURITY;
CREATE POLICY suggestions_of_user ON suggestions
  USING (user_id = coalesce((SELECT nullif(current_setting('synap.user_id', true), '')::uuid), user_id))
  WITH CHECK (user_id = coalesce((SELECT nullif(current_setting('synap.user_id', true), '')::uuid), user_id));
"#;

const COLUMNS: &str =
    "id, user_id, kind, tag, tag_key, entity_ids, status, created_at, decided_at, project_id";

fn from_row(row: &Row) -> StoreResult<Suggestion> {
    let entities: serde_json::Value = row.try_get(5).map_err(corrupt)?;
    let status: String = row.try_get(6).map_err(corrupt)?;
    let project: Option<Uuid> = row.try_get(9).map_err(corrupt)?;
    Ok(Suggestion {
        id: row.try_get(0).map_err(corrupt)?,
        user_id: UserId(row.try_get(1).map_err(corrupt)?),
        kind: row.try_get(2).map_err(corrupt)?,
        tag: row.try_get(3).map_err(corrupt)?,
        tag_key: row.try_get(4).map_err(corrupt)?,
        entity_ids: serde_json::from_value(entities)
            .map_err(|e| StoreError::Corrupt(format!("suggestion entities: {e}")))?,
        status: SuggestionStatus::parse(&status)?,
        created_at: timestamp(row.try_get(7).map_err(corrupt)?)?,
        decided_at: opt_timestamp(row.try_get(8).map_err(corrupt)?)?,
        project_id: project.map(EntityId),
    })
}

fn load(conn: &mut Conn, user: &UserId, id: Uuid) -> StoreResult<Option<Suggestion>> {
    conn.query_opt(
        &format!("SELECT {COLUMNS} FROM suggestions WHERE id = $1 AND user_id = $2"),
        &[&id, &user.0],
    )?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// Inserts a suggestion as it is (`admin migrate`).
pub(crate) fn insert_suggestion(conn: &mut Conn, suggestion: &Suggestion) -> StoreResult<()> {
    let entities = serde_json::to_value(&suggestion.entity_ids)
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    conn.execute(
        &format!(
            "INSERT INTO suggestions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ),
        &[
            &suggestion.id,
            &suggestion.user_id.0,
            &suggestion.kind,
            &suggestion.tag,
            &suggestion.tag_key,
            &entities,
            &suggestion.status.as_str(),
            &micros(suggestion.created_at),
            &suggestion.decided_at.map(micros),
            &suggestion.project_id.map(|p| p.0),
        ],
    )?;
    Ok(())
}

#[async_trait]
impl SuggestionStore for PostgresStore {
    async fn put_suggestion(
        &self,
        scope: &Scope,
        suggestion: NewSuggestion,
    ) -> StoreResult<Option<Suggestion>> {
        suggestion.check()?;
        let (user, now) = (scope.user_id, self.clock().now());
        self.scoped_work(user, move |conn| {
            let entities = serde_json::to_value(&suggestion.entity_ids)
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            let inserted = conn.execute(
                "INSERT INTO suggestions (id, user_id, kind, tag, tag_key, entity_ids, status, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7) \
                 ON CONFLICT (user_id, kind, tag_key) DO NOTHING",
                &[
                    &suggestion.id,
                    &user.0,
                    &suggestion.kind,
                    &suggestion.tag,
                    &suggestion.tag_key,
                    &entities,
                    &micros(now),
                ],
            )?;
            if inserted == 0 {
                return Ok(None);
            }
            load(conn, &user, suggestion.id)
        })
        .await
    }

    async fn suggestions(
        &self,
        scope: &Scope,
        status: Option<SuggestionStatus>,
    ) -> StoreResult<Vec<Suggestion>> {
        let user = scope.user_id;
        self.scoped_work(user, move |conn| {
            let status = status.map(|s| s.as_str().to_string());
            conn.query(
                &format!(
                    "SELECT {COLUMNS} FROM suggestions WHERE user_id = $1 \
                     AND ($2::text IS NULL OR status = $2::text) ORDER BY created_at DESC, id DESC"
                ),
                &[&user.0, &status],
            )?
            .iter()
            .map(from_row)
            .collect()
        })
        .await
    }

    async fn suggestion(&self, scope: &Scope, id: Uuid) -> StoreResult<Option<Suggestion>> {
        let user = scope.user_id;
        self.scoped_work(user, move |conn| load(conn, &user, id))
            .await
    }

    async fn decide_suggestion(
        &self,
        scope: &Scope,
        id: Uuid,
        decision: Decision,
    ) -> StoreResult<Decided> {
        let (user, now) = (scope.user_id, self.clock().now());
        self.scoped_work(user, move |conn| {
            let Some(row) = conn.query_opt(
                "SELECT status FROM suggestions WHERE id = $1 AND user_id = $2 FOR UPDATE",
                &[&id, &user.0],
            )?
            else {
                return Ok(Decided::NotFound);
            };
            let status: String = row.try_get(0).map_err(corrupt)?;
            let current = SuggestionStatus::parse(&status)?;
            if current != SuggestionStatus::Pending {
                return Ok(Decided::NotPending(current));
            }
            let (status, project) = decided(decision);
            conn.execute(
                "UPDATE suggestions SET status = $3, decided_at = $4, project_id = $5 \
                 WHERE id = $1 AND user_id = $2",
                &[
                    &id,
                    &user.0,
                    &status.as_str(),
                    &micros(now),
                    &project.map(|p| p.0),
                ],
            )?;
            load(conn, &user, id)?
                .map(Decided::Done)
                .ok_or_else(|| StoreError::Backend("the suggestion vanished".into()))
        })
        .await
    }
}
