//! `capture.thought`, `notes.create` and `notes.search`: notes written at once
//! through the store's command path, and full-text search, in the original's
//! input and output shapes.

use super::Call;
use super::error::{RpcCode, RpcError};
use super::input::Fields;
use crate::routes::capture::capture_note;
use crate::routes::dto::command_metadata;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value, json};
use synap_domain::limits::SEARCH_QUERY_CHARS_MAX;
use synap_domain::{CreateEntity, EntityCommand, EntityId, EntityType, limits};
use synap_flows::{SearchError, SearchMode};
use synap_store::{CommandRequest, EntityView, SearchRequest, Target};
use uuid::Uuid;

/// The longest content accepted before the domain's byte limit applies (the
/// domain counts bytes; this only keeps the character count sane).
const CONTENT_CHARS_MAX: usize = limits::CONTENT_BYTES_MAX;
/// Default and largest `limit` of `notes.search` (the original's zod schema).
const SEARCH_LIMIT_DEFAULT: u32 = 10;
const SEARCH_LIMIT_MAX: u32 = 100;

/// A note in the original's shape (`notes.create`'s `note`, `notes.search`'s `note`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Note {
    id: EntityId,
    title: String,
    content: String,
    tags: Vec<String>,
    created_at: Timestamp,
    updated_at: Timestamp,
    metadata: Map<String, Value>,
}

impl Note {
    fn new(view: EntityView, content: String) -> Note {
        Note {
            id: view.id,
            title: view.title,
            content,
            tags: view.tags,
            created_at: view.created_at,
            updated_at: view.updated_at,
            metadata: view.metadata,
        }
    }
}

/// `capture.thought` (mutation) `{content, context?}` → `{success, message, entityId,
/// runId}`.
///
/// The original only queued the thought for AI analysis; here the note exists when
/// the call returns, made exactly as `POST /v1/capture` makes it (title derived
/// from the content, `context` kept in the note's metadata under
/// [`crate::routes::capture::CONTEXT_KEY`]), and the `capture.enrich` run `runId`
/// analyses it. Every call is a new command: a batch
/// may hold several captures, so `Idempotency-Key` is not applied here.
pub(super) async fn capture_thought(
    call: &Call<'_>,
    input: Option<Value>,
) -> Result<Value, RpcError> {
    let input = Fields::of(input, false)?;
    let content = input.string("content", 1, CONTENT_CHARS_MAX)?;
    let context = input.opt_object("context")?.unwrap_or_default();
    let (id, run_id, _replayed) = capture_note(
        call.state,
        call.caller,
        call.headers,
        Uuid::now_v7(),
        content,
        context,
    )
    .await?;
    Ok(json!({
        "success": true,
        "message": "Thought captured",
        "entityId": id,
        "runId": run_id,
    }))
}

/// `notes.create` (mutation) `{content, inputType?, audioUrl?, autoEnrich?, tags?,
/// useRAG?}` → `{success, note, entityId}`.
///
/// `inputType: "audio"` is refused (the original silently treated audio as text);
/// `autoEnrich` and `useRAG` are accepted and change nothing yet (no AI provider or
/// embedding index: the title is derived from the content, the note is in the
/// full-text index at once).
pub(super) async fn create_note(call: &Call<'_>, input: Option<Value>) -> Result<Value, RpcError> {
    let input = Fields::of(input, false)?;
    let content = input.string("content", 1, CONTENT_CHARS_MAX)?;
    let input_type = input.opt_choice("inputType", &["text", "audio"])?;
    input.opt_string("audioUrl", 0, usize::MAX)?;
    input.opt_bool("autoEnrich")?;
    let tags = input.opt_strings("tags")?.unwrap_or_default();
    input.opt_bool("useRAG")?;
    if input_type == Some("audio") {
        return Err(RpcError::bad_request(
            "invalid input: inputType: audio is not supported (this server has no \
             transcription); send the text with inputType \"text\"",
        ));
    }
    let mut note = CreateEntity::note(content.clone());
    note.tags = tags;
    let id = EntityId::new_v7();
    let request = CommandRequest::new(
        call.caller.scope(),
        Target::Entity {
            id,
            command: EntityCommand::Create(note),
        },
        command_metadata(call.caller, call.headers),
    );
    call.state.store.execute(request).await?;
    let view = call
        .state
        .store
        .entity(&call.caller.scope(), id)
        .await?
        .ok_or_else(|| {
            eprintln!("synap: notes.create: entity {id} missing right after its creation");
            RpcError::internal()
        })?;
    Ok(json!({
        "success": true,
        "note": Note::new(view, content),
        "entityId": id,
    }))
}

/// `notes.search` (query) `{query, limit? 1..=100 (10), useRAG? (false)}` →
/// `[{note, score, snippet}]`, best first.
///
/// Search over the caller's notes (entities of type `note`, as the original
/// searched its notes only): full-text, or by meaning with `useRAG: true` (the
/// original's retrieval search; `synap_flows::search` in semantic mode). `score`
/// is higher for better matches; full-text snippets have the matches in `<mark>`.
/// `useRAG: true` on a server without an embedding model is a `BAD_REQUEST`:
/// answering full-text results to a semantic question would hide that.
pub(super) async fn search_notes(call: &Call<'_>, input: Option<Value>) -> Result<Value, RpcError> {
    let input = Fields::of(input, false)?;
    let query = input.string("query", 1, SEARCH_QUERY_CHARS_MAX)?;
    let use_rag = input.opt_bool("useRAG")?.unwrap_or(false);
    let limit = input
        .opt_int("limit", 1, SEARCH_LIMIT_MAX)?
        .unwrap_or(SEARCH_LIMIT_DEFAULT);
    let (state, scope) = (call.state, call.caller.scope());
    let mode = if use_rag {
        SearchMode::Semantic
    } else {
        SearchMode::Fulltext
    };
    let request = SearchRequest {
        query,
        entity_type: Some(EntityType::Note),
        tag: None,
        limit: Some(limit),
    };
    let hits = synap_flows::search(
        state.store.as_ref(),
        state.embedder.as_deref(),
        &scope,
        &request,
        mode,
    )
    .await
    .map_err(|error| match error {
        SearchError::Store(error) => RpcError::from(error),
        SearchError::Unavailable => RpcError::bad_request(
            "semantic search needs an embedding model, which this server does not have \
             configured; search with useRAG: false for full-text results",
        ),
        SearchError::Embedding(error) => RpcError::new(
            RpcCode::ServiceUnavailable,
            format!("{error}; search with useRAG: false for full-text results"),
        ),
    })?;
    let mut results = Vec::with_capacity(hits.len());
    for hit in hits {
        // A note deleted between the search and this read is left out.
        let Some(view) = state.store.entity(&scope, hit.id).await? else {
            continue;
        };
        let content = match &view.content {
            Some(content) => state
                .store
                .content(&scope, content.hash)
                .await?
                .map(|c| c.body)
                .unwrap_or_default(),
            None => String::new(),
        };
        results.push(json!({
            "note": Note::new(view, content),
            "score": hit.score,
            "snippet": hit.snippet,
        }));
    }
    Ok(Value::Array(results))
}
