//! Vectors for semantic search: what a backend stores ([`VectorIndex`]) and the
//! search built on it, the same for every backend ([`semantic_search`],
//! [`fuse_reciprocal_rank`]).
//!
//! Vectors are derived data, like the projections: each live entity's current
//! title and content version is cut into chunks, each chunk embedded by the
//! configured model, and the vectors stored per entity, model and chunk. A
//! *source* row records which title and content version an entity's vectors were
//! made from, so an edit (or a new model) puts the entity back in the
//! [backlog](VectorIndex::index_backlog) and an indexer re-embeds it in the
//! background. Nothing here is in the log; dropping every vector loses nothing
//! but time. Vectors of another model are never compared with a query: a model
//! change re-indexes, and the old model's vectors are dropped once the new
//! index is complete ([`VectorIndex::drop_vectors_except`]).
//!
//! Search is exact: every chunk vector of the caller (of the model, after the
//! type and tag filters) is compared with the query vector inside the backend's
//! read, keeping only the best chunk per entity ([`Nearest`]). That is a few
//! milliseconds per ten thousand chunks, and it is what both sqlite-vec's `vec0`
//! and pgvector without an index do too.

use crate::api::{ReadModel, Scope, SearchHit, StoreError, StoreResult};
use async_trait::async_trait;
use std::collections::HashMap;
use synap_domain::entity::EntityType;
use synap_domain::ids::{ContentHash, EntityId, UserId};

/// Longest vector a store accepts (OpenAI's largest model returns 3,072).
pub const VECTOR_DIMENSIONS_MAX: usize = 4096;
/// Most chunks stored for one entity (the chunker's own cap is lower).
pub const CHUNKS_PER_ENTITY_MAX: usize = 1024;
/// Longest model identity (`local:all-MiniLM-L6-v2`, `openai:text-embedding-3-small`).
pub const MODEL_ID_CHARS_MAX: usize = 200;
/// Reciprocal rank fusion's constant: a hit at rank r scores 1 / (K + r). 60 is
/// the value of the paper that introduced it (Cormack et al., 2009) and what most
/// engines use; it keeps one list's top hit from drowning the other list.
pub const RRF_K: f64 = 60.0;

/// One entity whose vectors are missing or stale for a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexTask {
    pub user_id: UserId,
    pub entity_id: EntityId,
    /// The title to embed (with the body's first chunk).
    pub title: String,
    /// The content version to embed, if the entity has a body.
    pub content_hash: Option<ContentHash>,
}

/// One embedded chunk: its place in the body (byte range; `0..0` for a title-only
/// entity) and its L2-normalised vector.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkVector {
    pub chunk: u32,
    pub start: u32,
    pub end: u32,
    pub vector: Vec<f32>,
}

/// The vectors of one entity for one model, made from `task`'s title and content.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityVectors {
    pub task: IndexTask,
    pub model: String,
    /// May be empty (nothing to embed): the source row still records that the
    /// entity is indexed.
    pub chunks: Vec<ChunkVector>,
}

impl EntityVectors {
    /// Checks the limits; backends call it before writing.
    pub fn validate(&self) -> StoreResult<()> {
        check_model(&self.model)?;
        if self.chunks.len() > CHUNKS_PER_ENTITY_MAX {
            return Err(StoreError::InvalidInput(format!(
                "{} chunks for one entity; the limit is {CHUNKS_PER_ENTITY_MAX}",
                self.chunks.len()
            )));
        }
        let dimensions = self.chunks.first().map_or(0, |c| c.vector.len());
        for chunk in &self.chunks {
            if chunk.vector.is_empty() || chunk.vector.len() > VECTOR_DIMENSIONS_MAX {
                return Err(StoreError::InvalidInput(format!(
                    "a vector of {} dimensions; give 1 to {VECTOR_DIMENSIONS_MAX}",
                    chunk.vector.len()
                )));
            }
            if chunk.vector.len() != dimensions {
                return Err(StoreError::InvalidInput(
                    "the vectors of one entity differ in length".into(),
                ));
            }
            if chunk.start > chunk.end {
                return Err(StoreError::InvalidInput(format!(
                    "chunk {} ends before it starts",
                    chunk.chunk
                )));
            }
        }
        Ok(())
    }
}

/// A nearest-neighbour query: the caller's live entities closest to `vector`.
#[derive(Debug, Clone, PartialEq)]
pub struct NearestRequest {
    pub model: String,
    pub vector: Vec<f32>,
    pub entity_type: Option<EntityType>,
    pub tag: Option<String>,
    pub limit: usize,
}

impl NearestRequest {
    /// Whether the query vector points anywhere: an empty or all-zero vector has
    /// no cosine similarity with anything, so it has no neighbours.
    pub fn has_direction(&self) -> bool {
        self.vector.iter().any(|x| *x != 0.0)
    }
}

/// The similarity a backend's cosine *distance* (sqlite-vec's
/// `vec_distance_cosine`, pgvector's `<=>`: 1 − similarity) stands for.
pub fn similarity_of_distance(distance: f64) -> f32 {
    (1.0 - distance) as f32
}

/// An entity's best chunk for a query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NearestChunk {
    pub entity_id: EntityId,
    pub chunk: u32,
    pub start: u32,
    pub end: u32,
    /// Cosine similarity, −1 to 1 (higher is closer).
    pub score: f32,
}

/// How far an index is for a model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStatus {
    /// Live entities whose vectors match their current title and content.
    pub indexed: u64,
    /// Live entities waiting for (new) vectors.
    pub pending: u64,
}

/// What a backend stores for semantic search. Contract:
/// - the backlog holds every live entity with no source row for the model, or
///   whose source row names another title or content version than the entity has
///   now; deleted entities are never in it;
/// - `put_vectors` replaces the entity's vectors and source row for the model in
///   one transaction;
/// - `nearest` sees only the caller's live entities, applies the type and tag
///   filters like full-text search, and compares only vectors of the request's
///   model and length; stale vectors (of an earlier version still waiting in the
///   backlog) take part, so an edited entity does not vanish from results while
///   it waits.
#[async_trait]
pub trait VectorIndex: Send + Sync {
    /// At most `limit` entities whose vectors for `model` are missing or stale,
    /// across all users (system work: the indexer).
    async fn index_backlog(&self, model: &str, limit: usize) -> StoreResult<Vec<IndexTask>>;
    async fn put_vectors(&self, vectors: &EntityVectors) -> StoreResult<()>;
    async fn nearest(
        &self,
        scope: &Scope,
        request: &NearestRequest,
    ) -> StoreResult<Vec<NearestChunk>>;
    async fn index_status(&self, model: &str) -> StoreResult<IndexStatus>;
    /// Drops the vectors and source rows of every other model; returns how many
    /// entities' vectors were dropped.
    async fn drop_vectors_except(&self, model: &str) -> StoreResult<u64>;
}

/// Refuses a model identity that is blank or too long.
pub fn check_model(model: &str) -> StoreResult<()> {
    if model.trim().is_empty() || model.chars().count() > MODEL_ID_CHARS_MAX {
        return Err(StoreError::InvalidInput(format!(
            "the model identity must be 1 to {MODEL_ID_CHARS_MAX} characters"
        )));
    }
    Ok(())
}

/// A vector as stored: little-endian `f32`s.
pub fn encode_vector(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The cosine similarity of a query with a stored vector, without decoding it
/// first; `None` when the lengths differ (a vector of another shape is never
/// compared) or either vector is all zeros (it has no direction).
pub fn cosine_encoded(query: &[f32], stored: &[u8]) -> Option<f32> {
    if stored.len() != query.len() * 4 {
        return None;
    }
    let (mut dot, mut stored_norm, mut query_norm) = (0.0f32, 0.0f32, 0.0f32);
    for (bytes, q) in stored.chunks_exact(4).zip(query) {
        let x = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        dot += x * q;
        stored_norm += x * x;
        query_norm += q * q;
    }
    let norms = (stored_norm * query_norm).sqrt();
    (norms > 0.0).then(|| dot / norms)
}

/// Keeps the best chunk per entity while a backend streams candidate rows, then
/// gives the `limit` best entities, closest first (ties by entity id, so results
/// are stable).
#[derive(Debug, Default)]
pub struct Nearest {
    best: HashMap<EntityId, NearestChunk>,
}

impl Nearest {
    pub fn new() -> Self {
        Nearest::default()
    }

    /// Scores one stored chunk against `query`; a vector of another length is
    /// skipped.
    pub fn offer(
        &mut self,
        query: &[f32],
        entity_id: EntityId,
        chunk: u32,
        range: (u32, u32),
        stored: &[u8],
    ) {
        let Some(score) = cosine_encoded(query, stored) else {
            return;
        };
        if !score.is_finite() {
            return;
        }
        let candidate = NearestChunk {
            entity_id,
            chunk,
            start: range.0,
            end: range.1,
            score,
        };
        self.best
            .entry(entity_id)
            .and_modify(|best| {
                if score > best.score {
                    *best = candidate;
                }
            })
            .or_insert(candidate);
    }

    pub fn finish(self, limit: usize) -> Vec<NearestChunk> {
        let mut all: Vec<NearestChunk> = self.best.into_values().collect();
        all.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.entity_id.0.cmp(&b.entity_id.0))
        });
        all.truncate(limit);
        all
    }
}

/// The caller's live entities nearest to `request.vector`, as search hits: score
/// = cosine similarity, snippet = the start of the best chunk (HTML-escaped, no
/// marks: nothing matched word for word).
pub async fn semantic_search<S: VectorIndex + ReadModel + ?Sized>(
    store: &S,
    scope: &Scope,
    request: &NearestRequest,
) -> StoreResult<Vec<SearchHit>> {
    let nearest = store.nearest(scope, request).await?;
    let mut hits = Vec::with_capacity(nearest.len());
    for chunk in nearest {
        // The entity may have been deleted since the read: skip it.
        let Some(entity) = store.entity(scope, chunk.entity_id).await? else {
            continue;
        };
        if entity.deleted_at.is_some() {
            continue;
        }
        let body = match &entity.content {
            Some(content) => store
                .content(scope, content.hash)
                .await?
                .map(|c| c.body)
                .unwrap_or_default(),
            None => String::new(),
        };
        let (start, end) = (chunk.start as usize, chunk.end as usize);
        // A stale range (the body changed since) falls back to the body's start.
        let text = match body.get(start..end) {
            Some(piece) if end > start => piece,
            _ if body.is_empty() => entity.title.as_str(),
            _ => body.as_str(),
        };
        hits.push(SearchHit {
            id: entity.id,
            entity_type: entity.entity_type,
            title: entity.title.clone(),
            tags: entity.tags.clone(),
            score: f64::from(chunk.score),
            snippet: synap_domain::text::snippet(text, &[]),
            updated_at: entity.updated_at,
        });
    }
    Ok(hits)
}

/// Merges a full-text and a semantic result list by reciprocal rank fusion: each
/// entity scores the sum of 1 / ([`RRF_K`] + rank) over the lists it is in. The
/// full-text hit's snippet (with its marks) wins over the semantic one. Best
/// first, at most `limit`.
pub fn fuse_reciprocal_rank(
    fulltext: Vec<SearchHit>,
    semantic: Vec<SearchHit>,
    limit: usize,
) -> Vec<SearchHit> {
    let mut fused: Vec<SearchHit> = Vec::new();
    let mut index: HashMap<EntityId, usize> = HashMap::new();
    for list in [fulltext, semantic] {
        for (rank, mut hit) in list.into_iter().enumerate() {
            let score = 1.0 / (RRF_K + rank as f64 + 1.0);
            match index.get(&hit.id) {
                Some(&at) => fused[at].score += score,
                None => {
                    hit.score = score;
                    index.insert(hit.id, fused.len());
                    fused.push(hit);
                }
            }
        }
    }
    fused.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.id.0.cmp(&b.id.0))
    });
    fused.truncate(limit);
    fused
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn hit(id: EntityId, snippet: &str) -> SearchHit {
        SearchHit {
            id,
            entity_type: EntityType::Note,
            title: String::new(),
            tags: Vec::new(),
            score: 0.0,
            snippet: snippet.into(),
            updated_at: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn vectors_round_trip_through_their_encoding() {
        let v = [0.6f32, -0.8, 0.0];
        let stored = encode_vector(&v);
        assert_eq!(stored.len(), 12);
        assert!((cosine_encoded(&v, &stored).unwrap() - 1.0).abs() < 1e-6);
        assert_eq!(cosine_encoded(&[1.0, 0.0], &stored), None);
    }

    #[test]
    fn cosine_ignores_length_and_skips_zero_vectors() {
        let stored = encode_vector(&[3.0, 4.0]);
        assert!((cosine_encoded(&[0.6, 0.8], &stored).unwrap() - 1.0).abs() < 1e-6);
        assert!(cosine_encoded(&[0.8, -0.6], &stored).unwrap().abs() < 1e-6);
        assert_eq!(cosine_encoded(&[0.0, 0.0], &stored), None);
        assert_eq!(
            cosine_encoded(&[1.0, 0.0], &encode_vector(&[0.0, 0.0])),
            None
        );
    }

    #[test]
    fn nearest_keeps_the_best_chunk_per_entity() {
        let (a, b) = (EntityId::new_v7(), EntityId::new_v7());
        let query = [1.0f32, 0.0];
        let mut nearest = Nearest::new();
        nearest.offer(&query, a, 0, (0, 10), &encode_vector(&[0.5, 0.5]));
        nearest.offer(&query, a, 1, (10, 20), &encode_vector(&[0.9, 0.1]));
        nearest.offer(&query, b, 0, (0, 5), &encode_vector(&[0.7, 0.3]));
        nearest.offer(&query, b, 1, (0, 5), &encode_vector(&[1.0, 0.0, 0.0]));
        let found = nearest.finish(10);
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].entity_id, found[0].chunk), (a, 1));
        assert_eq!((found[1].entity_id, found[1].chunk), (b, 0));
    }

    #[test]
    fn fusion_rewards_entities_found_both_ways() {
        let (a, b, c) = (EntityId::new_v7(), EntityId::new_v7(), EntityId::new_v7());
        let fused = fuse_reciprocal_rank(
            vec![hit(a, "<mark>cat</mark>"), hit(b, "b")],
            vec![hit(c, "c"), hit(b, "b semantic"), hit(a, "a semantic")],
            10,
        );
        let ids: Vec<EntityId> = fused.iter().map(|h| h.id).collect();
        // a: 1/61 + 1/63 ≈ 0.03227; b: 1/62 + 1/62 ≈ 0.03226; c: 1/61 only.
        assert_eq!(ids, vec![a, b, c]);
        assert_eq!(
            fused[0].snippet, "<mark>cat</mark>",
            "the full-text snippet wins"
        );
        assert_eq!(
            fuse_reciprocal_rank(vec![hit(a, "")], vec![hit(b, "")], 1).len(),
            1
        );
    }
}
