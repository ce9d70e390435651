//! Search vectors on PostgreSQL (the contract is `synap_store::vectors`): the
//! `vector_sources` and `vectors` tables under row-level security, the backlog
//! query, and the exact nearest-neighbour search, in one of two ways:
//!
//! - **pgvector, where the server has it** ([`enable_pgvector`] at open): chunks
//!   are stored in the column `embedding vector` and ranked inside PostgreSQL by
//!   cosine distance (`<=>`), best chunk per entity, so no vector leaves the
//!   server. The search is exact: an HNSW index needs one dimension per index
//!   and loses recall under the per-user filter, and an exact scan suits up to
//!   about 10^5 chunks per user (as sqlite-vec does on SQLite).
//! - **Otherwise** (Debian's PostgreSQL 15 has no pgvector package): chunks are
//!   `bytea` of little-endian `f32`s, as on SQLite, streamed row by row and
//!   compared here, so a large index never sits in memory whole.
//!
//! Derived data: written with a relaxed commit, not part of rebuild or verify,
//! not copied by `admin migrate` (the indexer re-makes them).

use crate::codec::corrupt;
use crate::pool::Conn;
use crate::read::{Param, param_refs};
use crate::schema::MIGRATION_LOCK;
use crate::store::PostgresStore;
use crate::workflow::relax_commit;
use async_trait::async_trait;
use postgres::fallible_iterator::FallibleIterator;
use synap_domain::ids::{ContentHash, EntityId, UserId};
use synap_domain::tags::tag_key;
use synap_store::vectors::{
    EntityVectors, IndexStatus, IndexTask, Nearest, NearestChunk, NearestRequest, VectorIndex,
    check_model, encode_vector, similarity_of_distance,
};
use synap_store::{Scope, StoreError, StoreResult};

/// The migration that creates the vector tables.
pub const SCHEMA: &str = r#"
CREATE TABLE vector_sources (
    entity_id    uuid NOT NULL,
    model        text NOT NULL,
    user_id      uuid NOT NULL,
    title        text NOT NULL,
    content_hash bytea,
    PRIMARY KEY (entity_id, model)
);
CREATE TABLE vectors (
    entity_id uuid NOT NULL,
    model     text NOT NULL,
    chunk     integer NOT NULL,
    user_id   uuid NOT NULL,
    start_at  integer NOT NULL,
    end_at    integer NOT NULL,
    vector    bytea NOT NULL,
    PRIMARY KEY (entity_id, model, chunk)
);
CREATE INDEX vectors_by_user ON vectors (user_id, model);
ALTER TABLE vector_sources ENABLE ROW LEVEL SECURITY;
ALTER TABLE vector_sources FORCE ROW LEVEL SECURITY;
CREATE POLICY vector_sources_of_user ON vector_sources
  USING (user_id = coalesce((SELECT nullif(current_setting('synap.user_id', true), '')::uuid), user_id))
  WITH CHECK (user_id = coalesce((SELECT nullif(current_setting('synap.user_id', true), '')::uuid), user_id));
ALTER TABLE vectors ENABLE ROW LEVEL SECURITY;
ALTER TABLE vectors FORCE ROW LEVEL SECURITY;
CREATE POLICY vectors_of_user ON vectors
  USING (user_id = coalesce((SELECT nullif(current_setting('synap.user_id', true), '')::uuid), user_id))
  WITH CHECK (user_id = coalesce((SELECT nullif(current_setting('synap.user_id', true), '')::uuid), user_id));
"#;

/// Turns on pgvector for the vector tables when the server offers it, and
/// answers whether it is on. The extension is created if it is available but not
/// yet in the database (a role that may not create it leaves the exact scan on,
/// with a notice). The first time, the column `embedding vector` is added and
/// the chunks stored as `bytea` are dropped with their source rows, so the
/// background indexer embeds those entities again into the new column. Runs at
/// open under the migration lock; every process on one database must be
/// restarted after pgvector is installed, so none keeps writing `bytea` chunks.
pub(crate) fn enable_pgvector(conn: &mut Conn) -> StoreResult<bool> {
    let row = conn.query_one(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector'), \
                EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector')",
        &[],
    )?;
    let (installed, available): (bool, bool) = (
        row.try_get(0).map_err(corrupt)?,
        row.try_get(1).map_err(corrupt)?,
    );
    if !installed {
        if !available {
            return Ok(false);
        }
        if let Err(error) = conn.transaction(None, |conn| {
            conn.query_one("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector", &[])
        }) {
            eprintln!(
                "synap: pgvector is available but cannot be enabled ({error}); \
                 semantic search compares vectors in Synap instead. \
                 A superuser can run CREATE EXTENSION vector in this database."
            );
            return Ok(false);
        }
    }
    conn.transaction(None, |conn| {
        conn.query_one("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        let has_column = conn
            .query_opt(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() \
                 AND table_name = 'vectors' AND column_name = 'embedding'",
                &[],
            )?
            .is_some();
        if !has_column {
            conn.client
                .batch_execute(
                    "ALTER TABLE vectors ADD COLUMN embedding vector; \
                     ALTER TABLE vectors ALTER COLUMN vector DROP NOT NULL; \
                     DELETE FROM vector_sources s WHERE EXISTS (SELECT 1 FROM vectors v \
                       WHERE v.entity_id = s.entity_id AND v.model = s.model); \
                     DELETE FROM vectors;",
                )
                .map_err(crate::codec::sql_error)?;
        }
        Ok(true)
    })
}

/// Live entities whose source row is missing or names another title or content.
const STALE: &str = "e.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM vector_sources s \
     WHERE s.entity_id = e.id AND s.model = $1 AND s.title = e.title \
     AND s.content_hash IS NOT DISTINCT FROM e.content_hash)";

fn backlog(conn: &mut Conn, model: &str, limit: usize) -> StoreResult<Vec<IndexTask>> {
    let limit = limit.min(i64::MAX as usize) as i64;
    let rows = conn.query(
        &format!(
            "SELECT e.user_id, e.id, e.title, e.content_hash FROM entities e WHERE {STALE} \
             ORDER BY e.updated_at DESC LIMIT $2"
        ),
        &[&model, &limit],
    )?;
    rows.iter()
        .map(|row| {
            let content: Option<Vec<u8>> = row.try_get(3).map_err(corrupt)?;
            Ok(IndexTask {
                user_id: UserId(row.try_get(0).map_err(corrupt)?),
                entity_id: EntityId(row.try_get(1).map_err(corrupt)?),
                title: row.try_get(2).map_err(corrupt)?,
                content_hash: content
                    .as_deref()
                    .map(ContentHash::try_from)
                    .transpose()
                    .map_err(StoreError::Corrupt)?,
            })
        })
        .collect()
}

fn put(conn: &mut Conn, vectors: &EntityVectors, pgvector: bool) -> StoreResult<()> {
    relax_commit(conn)?;
    let task = &vectors.task;
    let (entity, user) = (task.entity_id.0, task.user_id.0);
    conn.execute(
        "DELETE FROM vectors WHERE entity_id = $1 AND model = $2",
        &[&entity, &vectors.model],
    )?;
    let content = task.content_hash.as_ref().map(|h| h.as_bytes().to_vec());
    conn.execute(
        "INSERT INTO vector_sources (entity_id, model, user_id, title, content_hash) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (entity_id, model) DO UPDATE SET title = excluded.title, \
         content_hash = excluded.content_hash",
        &[&entity, &vectors.model, &user, &task.title, &content],
    )?;
    for chunk in &vectors.chunks {
        let (index, start, end) = (
            i32::try_from(chunk.chunk),
            i32::try_from(chunk.start),
            i32::try_from(chunk.end),
        );
        let (Ok(index), Ok(start), Ok(end)) = (index, start, end) else {
            return Err(StoreError::InvalidInput(
                "a chunk's number or range is too large".into(),
            ));
        };
        let (encoded, sql);
        let vector: &(dyn postgres::types::ToSql + Sync) = if pgvector {
            sql = "INSERT INTO vectors (entity_id, model, chunk, user_id, start_at, end_at, embedding) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7::real[]::vector)";
            &chunk.vector
        } else {
            sql = "INSERT INTO vectors (entity_id, model, chunk, user_id, start_at, end_at, vector) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7)";
            encoded = encode_vector(&chunk.vector);
            &encoded
        };
        conn.execute(
            sql,
            &[&entity, &vectors.model, &index, &user, &start, &end, vector],
        )?;
    }
    Ok(())
}

/// The `WHERE` conditions (and their parameters, after `$1` user and `$2`
/// model) shared by both ways of searching.
fn nearest_conditions(user: &UserId, request: &NearestRequest) -> (Vec<Param>, Vec<String>) {
    let mut params: Vec<Param> = vec![Box::new(user.0), Box::new(request.model.clone())];
    let mut conditions = vec![
        "v.user_id = $1".to_string(),
        "v.model = $2".into(),
        "e.user_id = $1".into(),
        "e.deleted_at IS NULL".into(),
    ];
    if let Some(entity_type) = request.entity_type {
        params.push(Box::new(entity_type.as_str().to_string()));
        conditions.push(format!("e.type = ${}", params.len()));
    }
    if let Some(tag) = &request.tag {
        params.push(Box::new(tag_key(tag.trim().trim_start_matches('#'))));
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM entity_tags et WHERE et.entity_id = e.id \
             AND et.user_id = $1 AND et.tag_key = ${})",
            params.len()
        ));
    }
    (params, conditions)
}

/// The nearest entities by pgvector's cosine distance, computed in PostgreSQL:
/// each entity's closest chunk (`DISTINCT ON`), then the closest entities.
/// Chunks of another dimension and zero vectors (a `NaN` distance) are skipped.
fn nearest_pgvector(
    conn: &mut Conn,
    user: &UserId,
    request: &NearestRequest,
) -> StoreResult<Vec<NearestChunk>> {
    if !request.has_direction() {
        return Ok(Vec::new());
    }
    let (mut params, mut conditions) = nearest_conditions(user, request);
    params.push(Box::new(request.vector.clone()));
    let query = format!("${}::real[]::vector", params.len());
    params.push(Box::new(request.vector.len() as i32));
    conditions.push(format!(
        "v.embedding IS NOT NULL AND vector_dims(v.embedding) = ${}",
        params.len()
    ));
    params.push(Box::new(request.limit.min(i64::MAX as usize) as i64));
    let sql = format!(
        "SELECT entity_id, chunk, start_at, end_at, distance FROM ( \
           SELECT DISTINCT ON (v.entity_id) v.entity_id, v.chunk, v.start_at, v.end_at, \
             v.embedding <=> {query} AS distance \
           FROM vectors v JOIN entities e ON e.id = v.entity_id WHERE {} \
           ORDER BY v.entity_id, distance) best \
         WHERE distance <> 'NaN' ORDER BY distance, entity_id LIMIT ${}",
        conditions.join(" AND "),
        params.len()
    );
    conn.query(&sql, &param_refs(&params))?
        .iter()
        .map(|row| {
            let chunk: i32 = row.try_get(1).map_err(corrupt)?;
            let start: i32 = row.try_get(2).map_err(corrupt)?;
            let end: i32 = row.try_get(3).map_err(corrupt)?;
            let distance: f64 = row.try_get(4).map_err(corrupt)?;
            Ok(NearestChunk {
                entity_id: EntityId(row.try_get(0).map_err(corrupt)?),
                chunk: chunk.max(0) as u32,
                start: start.max(0) as u32,
                end: end.max(0) as u32,
                score: similarity_of_distance(distance),
            })
        })
        .collect()
}

/// The nearest entities without pgvector: the caller's chunks are streamed and
/// compared here ([`Nearest`]).
fn nearest_streamed(
    conn: &mut Conn,
    user: &UserId,
    request: &NearestRequest,
) -> StoreResult<Vec<NearestChunk>> {
    let (params, conditions) = nearest_conditions(user, request);
    let sql = format!(
        "SELECT v.entity_id, v.chunk, v.start_at, v.end_at, v.vector FROM vectors v \
         JOIN entities e ON e.id = v.entity_id WHERE v.vector IS NOT NULL AND {}",
        conditions.join(" AND ")
    );
    let statement = conn.statement(&sql)?;
    let mut rows = conn
        .client
        .query_raw(&statement, param_refs(&params))
        .map_err(crate::codec::sql_error)?;
    let mut best = Nearest::new();
    while let Some(row) = rows.next().map_err(crate::codec::sql_error)? {
        let entity = EntityId(row.try_get(0).map_err(corrupt)?);
        let chunk: i32 = row.try_get(1).map_err(corrupt)?;
        let start: i32 = row.try_get(2).map_err(corrupt)?;
        let end: i32 = row.try_get(3).map_err(corrupt)?;
        let vector: &[u8] = row.try_get(4).map_err(corrupt)?;
        best.offer(
            &request.vector,
            entity,
            chunk.max(0) as u32,
            (start.max(0) as u32, end.max(0) as u32),
            vector,
        );
    }
    Ok(best.finish(request.limit))
}

fn status(conn: &mut Conn, model: &str) -> StoreResult<IndexStatus> {
    let live: i64 = conn
        .query_one(
            "SELECT count(*) FROM entities WHERE deleted_at IS NULL",
            &[],
        )?
        .try_get(0)
        .map_err(corrupt)?;
    let pending: i64 = conn
        .query_one(
            &format!("SELECT count(*) FROM entities e WHERE {STALE}"),
            &[&model],
        )?
        .try_get(0)
        .map_err(corrupt)?;
    let (live, pending) = (live.max(0) as u64, pending.max(0) as u64);
    Ok(IndexStatus {
        indexed: live.saturating_sub(pending),
        pending,
    })
}

#[async_trait]
impl VectorIndex for PostgresStore {
    async fn index_backlog(&self, model: &str, limit: usize) -> StoreResult<Vec<IndexTask>> {
        check_model(model)?;
        let model = model.to_string();
        self.system_work(move |conn| conn.transaction(None, |conn| backlog(conn, &model, limit)))
            .await
    }

    async fn put_vectors(&self, vectors: &EntityVectors) -> StoreResult<()> {
        vectors.validate()?;
        let vectors = vectors.clone();
        let user = vectors.task.user_id;
        let pgvector = self.pgvector();
        self.scoped_work(user, move |conn| put(conn, &vectors, pgvector))
            .await
    }

    async fn nearest(
        &self,
        scope: &Scope,
        request: &NearestRequest,
    ) -> StoreResult<Vec<NearestChunk>> {
        check_model(&request.model)?;
        let (user, request) = (scope.user_id, request.clone());
        if self.pgvector() {
            self.scoped_work(user, move |conn| nearest_pgvector(conn, &user, &request))
                .await
        } else {
            self.scoped_work(user, move |conn| nearest_streamed(conn, &user, &request))
                .await
        }
    }

    async fn index_status(&self, model: &str) -> StoreResult<IndexStatus> {
        check_model(model)?;
        let model = model.to_string();
        self.system_work(move |conn| conn.transaction(None, |conn| status(conn, &model)))
            .await
    }

    async fn drop_vectors_except(&self, model: &str) -> StoreResult<u64> {
        check_model(model)?;
        let model = model.to_string();
        self.system_work(move |conn| {
            conn.transaction(None, |conn| {
                relax_commit(conn)?;
                conn.execute("DELETE FROM vectors WHERE model <> $1", &[&model])?;
                conn.execute("DELETE FROM vector_sources WHERE model <> $1", &[&model])
            })
        })
        .await
    }
}
