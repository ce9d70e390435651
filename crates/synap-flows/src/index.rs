//! The search indexer: keeps every live entity's vectors current for the
//! configured embedding model, in the background.
//!
//! What to embed is read from the store's backlog
//! (`synap_store::vectors::VectorIndex::index_backlog`): entities that are new,
//! whose title or body changed, or that have no vectors of the current model yet
//! — so a model change re-indexes everything without anyone asking, and the old
//! model's vectors are dropped once the backlog is empty. A body is cut into
//! overlapping chunks ([`synap_ai::chunk_text`]); the title is embedded with the
//! first chunk, so a title-only note is found too.
//!
//! This is not a workflow: it is one idempotent loop over derived data, like a
//! projection catching up, and runs in `synap serve` and `synap worker`
//! ([`Indexer::run`]). Two processes may embed the same entity at once; the second
//! write replaces the first. `capture.enrich` calls [`Indexer::index_entity`] in its
//! `embed` step so a capture is searchable as soon as its run finishes.

use std::sync::Arc;
use std::time::Duration;
use synap_ai::{AiError, CHUNK_CHARS_DEFAULT, CHUNK_OVERLAP_CHARS_DEFAULT, Embedder, chunk_text};
use synap_store::vectors::{ChunkVector, EntityVectors, IndexTask};
use synap_store::{EntityView, Scope, Store, StoreError};
use tokio::sync::watch;

/// Entities embedded per sweep (one embedding call for all their chunks, up to
/// the embedder's own batch size).
pub const INDEX_BATCH: usize = 16;
/// Shortest pause between two sweeps that found nothing more to do, so a busy
/// writer does not make the indexer scan the backlog after every commit.
pub const SWEEP_PAUSE: Duration = Duration::from_millis(500);
/// Longest wait for new events before looking at the backlog again anyway (writes
/// by another process wake this one only through the store's poll).
pub const INDEX_POLL: Duration = Duration::from_secs(30);
/// First and longest pause after a failed sweep (an embedding endpoint down, the
/// database busy); doubles in between.
pub const FAILURE_PAUSE_INITIAL: Duration = Duration::from_secs(1);
pub const FAILURE_PAUSE_MAX: Duration = Duration::from_secs(60);

/// Why indexing failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("embedding failed: {0}")]
    Embedding(#[from] AiError),
}

/// One piece of an entity to embed: its byte range in the body and the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

/// The pieces of an entity: the body's chunks, the title joined to the first;
/// a title alone when there is no body; nothing when both are blank.
pub fn pieces(title: &str, body: &str) -> Vec<Piece> {
    let mut pieces: Vec<Piece> = chunk_text(body, CHUNK_CHARS_DEFAULT, CHUNK_OVERLAP_CHARS_DEFAULT)
        .into_iter()
        .map(|c| Piece {
            start: c.start,
            end: c.end,
            text: c.text,
        })
        .collect();
    let title = title.trim();
    if title.is_empty() {
        return pieces;
    }
    match pieces.first_mut() {
        Some(first) => first.text = format!("{title}\n\n{}", first.text),
        None => pieces.push(Piece {
            start: 0,
            end: 0,
            text: title.to_string(),
        }),
    }
    pieces
}

/// Embeds entities with one model and stores their vectors.
#[derive(Clone)]
pub struct Indexer {
    store: Arc<dyn Store>,
    embedder: Arc<dyn Embedder>,
}

impl std::fmt::Debug for Indexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Indexer")
            .field("model", &self.embedder.model_id())
            .finish_non_exhaustive()
    }
}

impl Indexer {
    pub fn new(store: Arc<dyn Store>, embedder: Arc<dyn Embedder>) -> Self {
        Indexer { store, embedder }
    }

    /// The model whose vectors this indexer makes.
    pub fn model(&self) -> &str {
        self.embedder.model_id()
    }

    /// Embeds and stores the given entities' current title and body (one
    /// embedding call for all of them). Answers how many chunks were stored.
    pub async fn index(&self, tasks: &[IndexTask]) -> Result<usize, IndexError> {
        let mut all_pieces = Vec::with_capacity(tasks.len());
        for task in tasks {
            let body = match task.content_hash {
                Some(hash) => self
                    .store
                    .content(&Scope::user(task.user_id), hash)
                    .await?
                    .map(|c| c.body)
                    .unwrap_or_default(),
                None => String::new(),
            };
            all_pieces.push(pieces(&task.title, &body));
        }
        let texts: Vec<&str> = all_pieces
            .iter()
            .flatten()
            .map(|p| p.text.as_str())
            .collect();
        let mut vectors = self.embedder.embed(&texts).await?.into_iter();
        let mut stored = 0;
        for (task, pieces) in tasks.iter().zip(&all_pieces) {
            let mut chunks = Vec::with_capacity(pieces.len());
            for (index, piece) in pieces.iter().enumerate() {
                let vector = vectors.next().ok_or_else(|| AiError::InvalidOutput {
                    provider: "embedder",
                    reason: "fewer vectors than texts".into(),
                })?;
                chunks.push(ChunkVector {
                    chunk: index as u32,
                    start: u32::try_from(piece.start).unwrap_or(u32::MAX),
                    end: u32::try_from(piece.end).unwrap_or(u32::MAX),
                    vector,
                });
            }
            stored += chunks.len();
            self.store
                .put_vectors(&EntityVectors {
                    task: task.clone(),
                    model: self.model().to_string(),
                    chunks,
                })
                .await?;
        }
        Ok(stored)
    }

    /// Indexes one entity as it is now (the `embed` step of `capture.enrich`).
    pub async fn index_entity(
        &self,
        scope: &Scope,
        entity: &EntityView,
    ) -> Result<usize, IndexError> {
        self.index(&[IndexTask {
            user_id: scope.user_id,
            entity_id: entity.id,
            title: entity.title.clone(),
            content_hash: entity.content.as_ref().map(|c| c.hash),
        }])
        .await
    }

    /// Indexes one batch of the backlog; answers how many entities it took.
    pub async fn sweep(&self) -> Result<usize, IndexError> {
        let tasks = self.store.index_backlog(self.model(), INDEX_BATCH).await?;
        if !tasks.is_empty() {
            self.index(&tasks).await?;
        }
        Ok(tasks.len())
    }

    /// Sweeps until `stop` turns true: whole batches back to back, then waits for
    /// new events (or [`INDEX_POLL`]). When the backlog is first found empty, the
    /// vectors of other models are dropped. Failures are reported on stderr and
    /// retried after a growing pause.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut failure_pause = FAILURE_PAUSE_INITIAL;
        let mut pruned = false;
        while !*stop.borrow() {
            let head = match self.store.head_position().await {
                Ok(head) => head,
                Err(error) => {
                    eprintln!("synap: search indexer: {error}");
                    pause(&mut stop, failure_pause).await;
                    continue;
                }
            };
            match self.sweep().await {
                Ok(taken) if taken == INDEX_BATCH => {
                    failure_pause = FAILURE_PAUSE_INITIAL;
                    continue;
                }
                Ok(_) => {
                    failure_pause = FAILURE_PAUSE_INITIAL;
                    if !pruned {
                        match self.store.drop_vectors_except(self.model()).await {
                            Ok(_) => pruned = true,
                            Err(error) => eprintln!("synap: search indexer: {error}"),
                        }
                    }
                }
                Err(error) => {
                    eprintln!(
                        "synap: search indexer ({}): {error}; trying again in {} s",
                        self.model(),
                        failure_pause.as_secs()
                    );
                    pause(&mut stop, failure_pause).await;
                    failure_pause = (failure_pause * 2).min(FAILURE_PAUSE_MAX);
                    continue;
                }
            }
            tokio::select! {
                _ = self.store.wait_for_events(head, INDEX_POLL) => {}
                _ = stop.changed() => break,
            }
            pause(&mut stop, SWEEP_PAUSE).await;
        }
    }
}

/// Sleeps for `duration` unless told to stop first.
async fn pause(stop: &mut watch::Receiver<bool>, duration: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = stop.changed() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_joins_the_first_chunk_or_stands_alone() {
        let with_body = pieces("Cats", "A small cat.");
        assert_eq!(with_body.len(), 1);
        assert_eq!(with_body[0].text, "Cats\n\nA small cat.");
        assert_eq!((with_body[0].start, with_body[0].end), (0, 12));
        let title_only = pieces("Kitten photos", "  ");
        assert_eq!(title_only[0].text, "Kitten photos");
        assert_eq!((title_only[0].start, title_only[0].end), (0, 0));
        assert!(pieces(" ", "").is_empty());
        let long = pieces("T", &"word ".repeat(1000));
        assert!(long.len() > 1);
        assert!(!long[1].text.starts_with('T'));
    }
}
