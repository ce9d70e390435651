//! Suggestions on SQLite (the contract is `synap_store::suggestions`): the
//! `suggestions` table (migration 7), one row per user, kind and tag key.

use crate::codec::{micros, opt_timestamp, sql_error, timestamp, uuid};
use crate::store::SqliteStore;
use crate::workflow::write_tx;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};
use synap_domain::ids::{EntityId, UserId};
use synap_store::suggestions::{
    Decided, Decision, NewSuggestion, Suggestion, SuggestionStatus, SuggestionStore, decided,
};
use synap_store::{Scope, StoreError, StoreResult};
use uuid::Uuid;

/// Migration 7: suggestions. `entity_ids` is a JSON array of ids.
pub const SCHEMA: &str = r#"
CREATE TABLE suggestions (
    id          BLOB PRIMARY KEY,
    user_id     BLOB NOT NULL,
    kind        TEXT NOT NULL,
    tag         TEXT NOT NULL,
    tag_key     TEXT NOT NULL,
    entity_ids  TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    decided_at  INTEGER,
    project_id  BLOB,
    UNIQUE (user_id, kind, tag_key)
) WITHOUT ROWID;
CREATE INDEX suggestions_by_user ON suggestions(user_id, created_at DESC);
"#;

const COLUMNS: &str =
    "id, user_id, kind, tag, tag_key, entity_ids, status, created_at, decided_at, project_id";

fn from_row(row: &Row<'_>) -> StoreResult<Suggestion> {
    let corrupt = |e: rusqlite::Error| StoreError::Corrupt(e.to_string());
    let id: Vec<u8> = row.get(0).map_err(corrupt)?;
    let user: Vec<u8> = row.get(1).map_err(corrupt)?;
    let entities: String = row.get(5).map_err(corrupt)?;
    let status: String = row.get(6).map_err(corrupt)?;
    let project: Option<Vec<u8>> = row.get(9).map_err(corrupt)?;
    Ok(Suggestion {
        id: uuid(&id)?,
        user_id: UserId(uuid(&user)?),
        kind: row.get(2).map_err(corrupt)?,
        tag: row.get(3).map_err(corrupt)?,
        tag_key: row.get(4).map_err(corrupt)?,
        entity_ids: serde_json::from_str(&entities)
            .map_err(|e| StoreError::Corrupt(format!("suggestion entities: {e}")))?,
        status: SuggestionStatus::parse(&status)?,
        created_at: timestamp(row.get(7).map_err(corrupt)?)?,
        decided_at: opt_timestamp(row.get(8).map_err(corrupt)?)?,
        project_id: project.as_deref().map(uuid).transpose()?.map(EntityId),
    })
}

fn load(conn: &Connection, user: &UserId, id: Uuid) -> StoreResult<Option<Suggestion>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM suggestions WHERE id = ?1 AND user_id = ?2"
    ))
    .map_err(sql_error)?
    .query_row(params![id.as_bytes(), user.as_bytes()], |row| {
        Ok(from_row(row))
    })
    .optional()
    .map_err(sql_error)?
    .transpose()
}

/// The suggestions of `user` (of one status), or of every user (`admin
/// migrate`), newest first.
pub(crate) fn list(
    conn: &Connection,
    user: Option<&UserId>,
    status: Option<SuggestionStatus>,
) -> StoreResult<Vec<Suggestion>> {
    let mut statement = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM suggestions WHERE (?1 IS NULL OR user_id = ?1) \
             AND (?2 IS NULL OR status = ?2) ORDER BY created_at DESC, id DESC"
        ))
        .map_err(sql_error)?;
    let mut rows = statement
        .query(params![
            user.map(|u| u.as_bytes().as_slice()),
            status.map(|s| s.as_str())
        ])
        .map_err(sql_error)?;
    let mut all = Vec::new();
    while let Some(row) = rows.next().map_err(sql_error)? {
        all.push(from_row(row)?);
    }
    Ok(all)
}

#[async_trait]
impl SuggestionStore for SqliteStore {
    async fn put_suggestion(
        &self,
        scope: &Scope,
        suggestion: NewSuggestion,
    ) -> StoreResult<Option<Suggestion>> {
        suggestion.check()?;
        let (user, now) = (scope.user_id, self.clock().now());
        self.exclusive(move |conn| {
            write_tx(conn, |conn| {
                let entities = serde_json::to_string(&suggestion.entity_ids)
                    .map_err(|e| StoreError::Backend(e.to_string()))?;
                let inserted = conn
                    .execute(
                        "INSERT INTO suggestions (id, user_id, kind, tag, tag_key, entity_ids, status, created_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7) \
                         ON CONFLICT (user_id, kind, tag_key) DO NOTHING",
                        params![
                            suggestion.id.as_bytes(),
                            user.as_bytes(),
                            suggestion.kind,
                            suggestion.tag,
                            suggestion.tag_key,
                            entities,
                            micros(now)
                        ],
                    )
                    .map_err(sql_error)?;
                if inserted == 0 {
                    return Ok(None);
                }
                load(conn, &user, suggestion.id)
            })
        })
        .await
    }

    async fn suggestions(
        &self,
        scope: &Scope,
        status: Option<SuggestionStatus>,
    ) -> StoreResult<Vec<Suggestion>> {
        let user = scope.user_id;
        self.read(move |conn| list(conn, Some(&user), status)).await
    }

    async fn suggestion(&self, scope: &Scope, id: Uuid) -> StoreResult<Option<Suggestion>> {
        let user = scope.user_id;
        self.read(move |conn| load(conn, &user, id)).await
    }

    async fn decide_suggestion(
        &self,
        scope: &Scope,
        id: Uuid,
        decision: Decision,
    ) -> StoreResult<Decided> {
        let (user, now) = (scope.user_id, self.clock().now());
        self.exclusive(move |conn| {
            write_tx(conn, |conn| {
                let Some(current) = load(conn, &user, id)? else {
                    return Ok(Decided::NotFound);
                };
                if current.status != SuggestionStatus::Pending {
                    return Ok(Decided::NotPending(current.status));
                }
                let (status, project) = decided(decision);
                conn.execute(
                    "UPDATE suggestions SET status = ?3, decided_at = ?4, project_id = ?5 \
                     WHERE id = ?1 AND user_id = ?2",
                    params![
                        id.as_bytes(),
                        user.as_bytes(),
                        status.as_str(),
                        micros(now),
                        project.map(|p| p.0.as_bytes().to_vec())
                    ],
                )
                .map_err(sql_error)?;
                load(conn, &user, id)?
                    .map(Decided::Done)
                    .ok_or_else(|| StoreError::Backend("the suggestion vanished".into()))
            })
        })
        .await
    }
}
