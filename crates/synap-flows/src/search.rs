//! Search in its three modes, the same for the HTTP API and the CLI:
//!
//! - `fulltext` — the store's word search (`ReadModel::search`);
//! - `semantic` — the query embedded by the configured model, then the caller's
//!   entities nearest to it (`synap_store::vectors::semantic_search`);
//! - `hybrid` — both lists merged by reciprocal rank fusion
//!   (`synap_store::vectors::fuse_reciprocal_rank`).
//!
//! Semantic and hybrid need an embedding model; without one they answer
//! [`SearchError::Unavailable`] and full-text keeps working. Entities the indexer
//! has not reached yet are found by full-text only.

use synap_ai::{AiError, Embedder};
use synap_domain::limits::SEARCH_QUERY_CHARS_MAX;
use synap_store::vectors::{NearestRequest, fuse_reciprocal_rank, semantic_search};
use synap_store::{PageRequest, Scope, SearchHit, SearchRequest, Store, StoreError};

/// How to match.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SearchMode {
    #[default]
    Fulltext,
    Semantic,
    Hybrid,
}

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Semantic or hybrid search without an embedding model.
    #[error(
        "semantic and hybrid search need an embedding model, and none is configured; \
         set SYNAP_EMBEDDING_PROVIDER (see the README) or search in fulltext mode"
    )]
    Unavailable,
    /// The model could not embed the query.
    #[error("the embedding model could not embed the query: {0}")]
    Embedding(#[from] AiError),
}

/// Searches the caller's live entities in `mode`, best first.
pub async fn search(
    store: &dyn Store,
    embedder: Option<&dyn Embedder>,
    scope: &Scope,
    request: &SearchRequest,
    mode: SearchMode,
) -> Result<Vec<SearchHit>, SearchError> {
    if mode == SearchMode::Fulltext {
        return Ok(store.search(scope, request).await?);
    }
    let embedder = embedder.ok_or(SearchError::Unavailable)?;
    let limit = PageRequest {
        limit: request.limit,
        cursor: None,
    }
    .limit()? as usize;
    let query = request.query.trim();
    if query.is_empty() {
        return Err(StoreError::InvalidInput("the query has no words to search for".into()).into());
    }
    if query.chars().count() > SEARCH_QUERY_CHARS_MAX {
        return Err(StoreError::InvalidInput(format!(
            "the query is longer than {SEARCH_QUERY_CHARS_MAX} characters"
        ))
        .into());
    }
    let vector = embedder
        .embed(&[query])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| AiError::InvalidOutput {
            provider: "embedder",
            reason: "no vector for the query".into(),
        })?;
    let nearest = NearestRequest {
        model: embedder.model_id().to_string(),
        vector,
        entity_type: request.entity_type,
        tag: request.tag.clone(),
        limit,
    };
    let semantic = semantic_search(store, scope, &nearest).await?;
    if mode == SearchMode::Semantic {
        return Ok(semantic);
    }
    let fulltext = match store.search(scope, request).await {
        Ok(hits) => hits,
        // Words full-text cannot use (only punctuation, say) still have a meaning.
        Err(StoreError::InvalidInput(_)) => Vec::new(),
        Err(other) => return Err(other.into()),
    };
    Ok(fuse_reciprocal_rank(fulltext, semantic, limit))
}
