//! Search vectors on SQLite (the contract is `synap_store::vectors`): the
//! `vector_sources` and `vectors` tables, the backlog query, and the exact
//! nearest-neighbour query, run by sqlite-vec inside SQLite. Vectors are derived data: they are written with the
//! relaxed commit of [`relaxed_write_tx`] (a power cut may make the indexer embed
//! an entity again) and are not part of rebuild or verify.

use crate::codec::{hash, sql_error, uuid};
use crate::read::push_type_and_tag;
use crate::store::SqliteStore;
use crate::workflow::relaxed_write_tx;
use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params, params_from_iter};
use synap_domain::ids::{EntityId, UserId};
use synap_store::vectors::{
    EntityVectors, IndexStatus, IndexTask, NearestChunk, NearestRequest, VectorIndex, check_model,
    encode_vector, similarity_of_distance,
};
use synap_store::{Scope, StoreError, StoreResult};

/// Migration 5: the vector tables. Keyed by entity id (not the projection's
/// rowid), so a projection rebuild leaves them valid.
pub const SCHEMA: &str = r#"
CREATE TABLE vector_sources (
    entity_id    BLOB NOT NULL,
    model        TEXT NOT NULL,
    user_id      BLOB NOT NULL,
    title        TEXT NOT NULL,
    content_hash BLOB,
    PRIMARY KEY (entity_id, model)
) WITHOUT ROWID;
CREATE TABLE vectors (
    entity_id BLOB NOT NULL,
    model     TEXT NOT NULL,
    chunk     INTEGER NOT NULL,
    user_id   BLOB NOT NULL,
    start     INTEGER NOT NULL,
    end       INTEGER NOT NULL,
    vector    BLOB NOT NULL,
    PRIMARY KEY (entity_id, model, chunk)
) WITHOUT ROWID;
CREATE INDEX vectors_by_user ON vectors(user_id, model);
"#;

/// Live entities whose source row is missing or names another title or content.
const STALE: &str = "e.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM vector_sources s \
     WHERE s.entity_id = e.id AND s.model = ?1 AND s.title = e.title \
     AND s.content_hash IS e.content_hash)";

fn backlog(conn: &Connection, model: &str, limit: usize) -> StoreResult<Vec<IndexTask>> {
    let mut statement = conn
        .prepare_cached(&format!(
            "SELECT e.user_id, e.id, e.title, e.content_hash FROM entities e WHERE {STALE} \
             ORDER BY e.updated_at DESC LIMIT ?2"
        ))
        .map_err(sql_error)?;
    let mut rows = statement
        .query(params![model, limit.min(i64::MAX as usize) as i64])
        .map_err(sql_error)?;
    let mut tasks = Vec::new();
    let corrupt = |e: rusqlite::Error| StoreError::Corrupt(e.to_string());
    while let Some(row) = rows.next().map_err(sql_error)? {
        let user: Vec<u8> = row.get(0).map_err(corrupt)?;
        let id: Vec<u8> = row.get(1).map_err(corrupt)?;
        let content: Option<Vec<u8>> = row.get(3).map_err(corrupt)?;
        tasks.push(IndexTask {
            user_id: UserId(uuid(&user)?),
            entity_id: EntityId(uuid(&id)?),
            title: row.get(2).map_err(corrupt)?,
            content_hash: content.as_deref().map(hash).transpose()?,
        });
    }
    Ok(tasks)
}

fn put(conn: &Connection, vectors: &EntityVectors) -> StoreResult<()> {
    let task = &vectors.task;
    let entity = task.entity_id.as_bytes().as_slice();
    let user = task.user_id.as_bytes().as_slice();
    conn.execute(
        "DELETE FROM vectors WHERE entity_id = ?1 AND model = ?2",
        params![entity, vectors.model],
    )
    .map_err(sql_error)?;
    conn.execute(
        "INSERT INTO vector_sources (entity_id, model, user_id, title, content_hash) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (entity_id, model) DO UPDATE SET title = excluded.title, \
         content_hash = excluded.content_hash",
        params![
            entity,
            vectors.model,
            user,
            task.title,
            task.content_hash.as_ref().map(|h| h.as_bytes().as_slice())
        ],
    )
    .map_err(sql_error)?;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO vectors (entity_id, model, chunk, user_id, start, end, vector) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(sql_error)?;
    for chunk in &vectors.chunks {
        insert
            .execute(params![
                entity,
                vectors.model,
                chunk.chunk,
                user,
                chunk.start,
                chunk.end,
                encode_vector(&chunk.vector)
            ])
            .map_err(sql_error)?;
    }
    Ok(())
}

/// The caller's live entities nearest to the query, each by its best chunk,
/// ranked inside SQLite by sqlite-vec's `vec_distance_cosine` over the stored
/// little-endian `f32` blobs (an exact scan of the user's vectors for the model;
/// sqlite-vec 0.1 has no approximate index). SQLite's `min()` takes the bare
/// columns from the row holding the minimum, which picks the best chunk.
/// Vectors of another length and zero vectors (no distance) are skipped.
fn nearest(
    conn: &Connection,
    user: &UserId,
    request: &NearestRequest,
) -> StoreResult<Vec<NearestChunk>> {
    if !request.has_direction() {
        return Ok(Vec::new());
    }
    let query = encode_vector(&request.vector);
    let mut args: Vec<SqlValue> = vec![
        SqlValue::Blob(user.as_bytes().to_vec()),
        SqlValue::Text(request.model.clone()),
        SqlValue::Integer(query.len() as i64),
        SqlValue::Blob(query),
    ];
    let mut conditions = vec![
        "v.user_id = ?1".to_string(),
        "v.model = ?2".into(),
        "length(v.vector) = ?3".into(),
        "e.deleted_at IS NULL".into(),
    ];
    push_type_and_tag(
        request.entity_type,
        request.tag.as_deref(),
        "?1",
        &mut args,
        &mut conditions,
    );
    args.push(SqlValue::Integer(
        request.limit.min(i64::MAX as usize) as i64
    ));
    let sql = format!(
        "SELECT v.entity_id, v.chunk, v.start, v.end, min(vec_distance_cosine(v.vector, ?4)) AS distance \
         FROM vectors v JOIN entities e ON e.id = v.entity_id WHERE {} \
         GROUP BY v.entity_id HAVING distance IS NOT NULL \
         ORDER BY distance, v.entity_id LIMIT ?{}",
        conditions.join(" AND "),
        args.len()
    );
    let mut statement = conn.prepare_cached(&sql).map_err(sql_error)?;
    let mut rows = statement.query(params_from_iter(args)).map_err(sql_error)?;
    let corrupt = |e: rusqlite::Error| StoreError::Corrupt(e.to_string());
    let mut found = Vec::new();
    while let Some(row) = rows.next().map_err(sql_error)? {
        let id =
            row.get_ref(0).map_err(corrupt)?.as_blob().map_err(|e| {
                StoreError::Corrupt(format!("a vector's entity id is not a blob: {e}"))
            })?;
        let distance: f64 = row.get(4).map_err(corrupt)?;
        found.push(NearestChunk {
            entity_id: EntityId(uuid(id)?),
            chunk: row.get(1).map_err(corrupt)?,
            start: row.get(2).map_err(corrupt)?,
            end: row.get(3).map_err(corrupt)?,
            score: similarity_of_distance(distance),
        });
    }
    Ok(found)
}

fn status(conn: &Connection, model: &str) -> StoreResult<IndexStatus> {
    let live: i64 = conn
        .query_row(
            "SELECT count(*) FROM entities WHERE deleted_at IS NULL",
            [],
            |row| row.get(0),
        )
        .map_err(sql_error)?;
    let pending: i64 = conn
        .query_row(
            &format!("SELECT count(*) FROM entities e WHERE {STALE}"),
            params![model],
            |row| row.get(0),
        )
        .map_err(sql_error)?;
    let (live, pending) = (live.max(0) as u64, pending.max(0) as u64);
    Ok(IndexStatus {
        indexed: live.saturating_sub(pending),
        pending,
    })
}

#[async_trait]
impl VectorIndex for SqliteStore {
    async fn index_backlog(&self, model: &str, limit: usize) -> StoreResult<Vec<IndexTask>> {
        check_model(model)?;
        let model = model.to_string();
        self.read(move |conn| backlog(conn, &model, limit)).await
    }

    async fn put_vectors(&self, vectors: &EntityVectors) -> StoreResult<()> {
        vectors.validate()?;
        let vectors = vectors.clone();
        self.exclusive(move |conn| relaxed_write_tx(conn, |conn| put(conn, &vectors)))
            .await
    }

    async fn nearest(
        &self,
        scope: &Scope,
        request: &NearestRequest,
    ) -> StoreResult<Vec<NearestChunk>> {
        check_model(&request.model)?;
        let (user, request) = (scope.user_id, request.clone());
        self.read(move |conn| nearest(conn, &user, &request)).await
    }

    async fn index_status(&self, model: &str) -> StoreResult<IndexStatus> {
        check_model(model)?;
        let model = model.to_string();
        self.read(move |conn| status(conn, &model)).await
    }

    async fn drop_vectors_except(&self, model: &str) -> StoreResult<u64> {
        check_model(model)?;
        let model = model.to_string();
        self.exclusive(move |conn| {
            relaxed_write_tx(conn, |conn| {
                conn.execute("DELETE FROM vectors WHERE model <> ?1", params![model])
                    .map_err(sql_error)?;
                let dropped = conn
                    .execute(
                        "DELETE FROM vector_sources WHERE model <> ?1",
                        params![model],
                    )
                    .map_err(sql_error)?;
                Ok(dropped as u64)
            })
        })
        .await
    }
}
