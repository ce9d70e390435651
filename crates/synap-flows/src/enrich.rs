//! `capture.enrich`: a captured thought gets a title, tags, a type and (for tasks)
//! a due date and priority — as ordinary events with `source: automation`.
//!
//! Triggered by every capture (`POST /v1/capture`, the `capture.thought`
//! procedure, `synap capture`): the run is inserted in the capture's own
//! transaction ([`capture_enrich_run`]). Steps:
//!
//! 1. **`analyze`** — asks the configured [`Analyzer`]. A retryable failure (a
//!    timeout, 429, 5xx, malformed output) is retried by the engine with backoff,
//!    up to [`ANALYZE_ATTEMPTS`]; when the last attempt fails too, or the failure
//!    cannot be retried, the step falls back as the original Synap did — the first
//!    [`FALLBACK_TITLE_CHARS`] characters as the title, the tag [`FALLBACK_TAG`],
//!    type note — and records why in its output (`fallback`), which the run shows.
//! 2. **`apply`** — one command with the analysis, caused by the capture's event
//!    and carrying the run id and the model. A note the user has edited since the
//!    capture keeps the user's title and type: only the tags are added. The command
//!    id is derived from the run, so an `apply` that runs again after a crash
//!    replays instead of applying twice.
//!
//! 3. **`embed`** — indexes the note, as it is after `apply`, for semantic search
//!    with the configured embedding model ([`crate::index::Indexer`]), so the
//!    capture is found by meaning once its run is done. Without a model the step
//!    records `skipped`; the background indexer covers anything a failed `embed`
//!    left out.
//!
//! 4. **`notify`** — tells the user's webhook subscriptions to `capture.enriched`
//!    that the thought is done (its title, type, tags and due date), as one
//!    `webhook.deliver` run each, with ids derived from the run so a repeated step
//!    enqueues nothing twice. The events `apply` appended reach subscriptions to
//!    their own types like any other events.
//!
//! A note deleted before its run gets to it is left alone (the run succeeds with
//! `skipped`).

use crate::index::{IndexError, Indexer};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use synap_ai::{AiError, Analysis, AnalysisRequest, Analyzer};
use synap_domain::command::{Change, EntityCommand};
use synap_domain::entity::EntityType;
use synap_domain::event::{EventMetadata, Source};
use synap_domain::tags::tag_key;
use synap_domain::{DomainError, EntityId};
use synap_store::webhooks::delivery_run;
use synap_store::workflow::NewRun;
use synap_store::{Clock, CommandRequest, EntityView, Scope, Store, StoreError, Target};
use synap_workflow::{RetryPolicy, StepContext, StepError, Workflow};
use uuid::Uuid;

/// The workflow's name.
pub const CAPTURE_ENRICH: &str = "capture.enrich";
/// Executions of `analyze` before it falls back.
pub const ANALYZE_ATTEMPTS: u32 = 3;
/// The first wait before `analyze` runs again (it doubles, with jitter).
pub const ANALYZE_BACKOFF_INITIAL: Duration = Duration::from_millis(500);
/// The longest wait between two `analyze` attempts.
pub const ANALYZE_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Longest one analysis may take (a provider's own timeout is usually shorter).
pub const ANALYZE_TIMEOUT: Duration = Duration::from_secs(120);
/// Executions of `apply` (a store error, a concurrent edit) before the run fails.
pub const APPLY_ATTEMPTS: u32 = 5;
/// Attempts of `embed` (an embedding endpoint may be briefly down).
pub const EMBED_ATTEMPTS: u32 = 3;
/// The fallback title: this many characters of the text.
pub const FALLBACK_TITLE_CHARS: usize = 100;
/// The tag the fallback gives, so that unanalysed captures can be found.
pub const FALLBACK_TAG: &str = "unprocessed";
/// The metadata key under which an event-type entity keeps when it happens.
pub const EVENT_TIME_KEY: &str = "starts_at";
/// The metadata `model` of events that the fallback produced.
pub const FALLBACK_MODEL: &str = "fallback";

/// What a run is started with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrichInput {
    /// The captured note.
    pub entity_id: Uuid,
    /// The capture's command id (the id of its first event): the cause of the
    /// events `apply` appends.
    pub causation_id: Uuid,
}

/// The run a capture triggers; put it in the capture's `CommandRequest::triggers`.
pub fn capture_enrich_run(entity_id: EntityId, causation_id: Uuid) -> NewRun {
    let input = EnrichInput {
        entity_id: entity_id.0,
        causation_id,
    };
    NewRun {
        id: enrich_run_id(causation_id),
        ..NewRun::new(
            CAPTURE_ENRICH,
            serde_json::to_value(input).unwrap_or(Value::Null),
        )
    }
}

/// The id of the run a capture with command id `causation_id` triggers: derived,
/// so that a replayed capture (the same `Idempotency-Key`) answers the same run.
pub fn enrich_run_id(causation_id: Uuid) -> Uuid {
    Uuid::from_u128(causation_id.as_u128() ^ ENRICH_RUN_MIX)
}
const ENRICH_RUN_MIX: u128 = 0x0e71_c4a1_2f00_0000_0000_0000_0000_0003;

/// What `analyze` stores: the analysis, who made it, and why it fell back if it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalysisRecord {
    pub title: String,
    pub tags: Vec<String>,
    pub intent: EntityType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// `local`, `anthropic`, `openai`, or `fallback`.
    pub provider: String,
    pub model: String,
    /// Set when the analysis failed for good: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// What `enrich` steps need.
#[derive(Clone)]
pub struct EnrichContext {
    pub store: Arc<dyn Store>,
    pub analyzer: Arc<dyn Analyzer>,
    pub clock: Arc<dyn Clock>,
    /// Relative dates ("tomorrow at 3pm") resolve in this zone.
    pub time_zone: TimeZone,
    /// Indexes notes for semantic search; `None` without an embedding model.
    pub indexer: Option<Indexer>,
}

impl std::fmt::Debug for EnrichContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrichContext")
            .field("analyzer", &self.analyzer)
            .field("time_zone", &self.time_zone)
            .field("indexer", &self.indexer)
            .finish_non_exhaustive()
    }
}

/// The `capture.enrich` definition.
pub fn capture_enrich(context: Arc<EnrichContext>) -> Workflow {
    let analyze_context = context.clone();
    let apply_context = context.clone();
    let notify_context = context.clone();
    let analyze_policy = RetryPolicy::attempts(ANALYZE_ATTEMPTS)
        .with_backoff(ANALYZE_BACKOFF_INITIAL, ANALYZE_BACKOFF_MAX);
    Workflow::new(CAPTURE_ENRICH)
        .step_with("analyze", analyze_policy, ANALYZE_TIMEOUT, move |step| {
            let context = analyze_context.clone();
            async move { analyze(&context, &step).await }
        })
        .step_with(
            "apply",
            RetryPolicy::attempts(APPLY_ATTEMPTS),
            synap_workflow::definition::STEP_TIMEOUT_DEFAULT,
            move |step| {
                let context = apply_context.clone();
                async move { apply(&context, &step).await }
            },
        )
        .step_with(
            "embed",
            RetryPolicy::attempts(EMBED_ATTEMPTS)
                .with_backoff(ANALYZE_BACKOFF_INITIAL, ANALYZE_BACKOFF_MAX),
            ANALYZE_TIMEOUT,
            move |step| {
                let context = context.clone();
                async move { embed(&context, &step).await }
            },
        )
        .step("notify", move |step| {
            let context = notify_context.clone();
            async move { notify(&context, &step).await }
        })
}

fn input_of(step: &StepContext) -> Result<EnrichInput, StepError> {
    serde_json::from_value(step.input.clone())
        .map_err(|e| StepError::non_retryable(format!("the run's input is not usable: {e}")))
}

fn store_failure(error: StoreError) -> StepError {
    match error {
        // Refusals of the input cannot get better by waiting.
        StoreError::Domain(error) => StepError::non_retryable(error),
        StoreError::InvalidInput(error) => StepError::non_retryable(error),
        other => StepError::retryable(other),
    }
}

/// The note if it still exists and is not deleted.
async fn live_note(
    store: &dyn Store,
    scope: &Scope,
    id: Uuid,
) -> Result<Option<EntityView>, StepError> {
    let entity = store
        .entity(scope, EntityId(id))
        .await
        .map_err(store_failure)?;
    Ok(entity.filter(|e| e.deleted_at.is_none()))
}

fn skipped(reason: &str) -> Value {
    json!({ "skipped": reason })
}

async fn analyze(context: &EnrichContext, step: &StepContext) -> Result<Value, StepError> {
    let input = input_of(step)?;
    let Some(note) = live_note(context.store.as_ref(), &step.scope, input.entity_id).await? else {
        return Ok(skipped("the note was deleted before it was analysed"));
    };
    let text = text_of(context.store.as_ref(), &step.scope, &note).await?;
    let request = AnalysisRequest {
        text: text.clone(),
        now: context.clock.now(),
        time_zone: context.time_zone.clone(),
    };
    let record = match context.analyzer.analyze(&request).await {
        Ok(analysis) => record_of(analysis, context.analyzer.as_ref()),
        Err(error) if error.is_retryable() && step.attempt < ANALYZE_ATTEMPTS => {
            return Err(retry(error));
        }
        Err(error) => fallback(&text, &error, step.attempt),
    };
    serde_json::to_value(record).map_err(StepError::non_retryable)
}

/// The text to analyse: the body, or the title of a note without one.
async fn text_of(store: &dyn Store, scope: &Scope, note: &EntityView) -> Result<String, StepError> {
    let Some(content) = &note.content else {
        return Ok(note.title.clone());
    };
    let body = store
        .content(scope, content.hash)
        .await
        .map_err(store_failure)?
        .map(|c| c.body)
        .unwrap_or_default();
    Ok(if body.trim().is_empty() {
        note.title.clone()
    } else {
        body
    })
}

fn retry(error: AiError) -> StepError {
    match error.retry_after() {
        Some(after) => StepError::RetryAfter {
            error: error.to_string(),
            after,
        },
        None => StepError::retryable(error),
    }
}

fn record_of(analysis: Analysis, analyzer: &dyn Analyzer) -> AnalysisRecord {
    AnalysisRecord {
        title: analysis.title,
        tags: analysis.tags,
        intent: analysis.intent,
        due_at: analysis.due_at,
        priority: analysis.priority,
        provider: analyzer.provider().to_string(),
        model: analyzer.model().to_string(),
        fallback: None,
    }
}

/// The original's fallback: the first characters as the title (on one line),
/// the tag `unprocessed`, type note.
pub fn fallback(text: &str, error: &AiError, attempts: u32) -> AnalysisRecord {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = one_line.chars().take(FALLBACK_TITLE_CHARS).collect();
    let mut title = cut.trim_end().to_string();
    if title.is_empty() {
        title = "Untitled".into();
    }
    let why = if error.is_retryable() {
        format!("the analysis failed {attempts} times; the last error: {error}")
    } else {
        format!("the analysis failed and retrying cannot help: {error}")
    };
    AnalysisRecord {
        title,
        tags: vec![FALLBACK_TAG.to_string()],
        intent: EntityType::Note,
        due_at: None,
        priority: None,
        provider: FALLBACK_MODEL.to_string(),
        model: FALLBACK_MODEL.to_string(),
        fallback: Some(why),
    }
}

/// The command id of `apply` in one run: the same for every execution, so a
/// repeat replays the first outcome. (An odd-constant XOR of the run id: distinct
/// runs get distinct ids, and it never equals the run id itself.)
pub fn apply_command_id(run_id: Uuid) -> Uuid {
    Uuid::from_u128(run_id.as_u128() ^ APPLY_COMMAND_MIX)
}
const APPLY_COMMAND_MIX: u128 = 0x5eed_0fa9_917e_1100_0000_0000_0000_0001;

async fn apply(context: &EnrichContext, step: &StepContext) -> Result<Value, StepError> {
    let input = input_of(step)?;
    let analyzed = step.output("analyze").cloned().unwrap_or(Value::Null);
    if analyzed.get("skipped").is_some() {
        return Ok(skipped("nothing was analysed"));
    }
    let record: AnalysisRecord = serde_json::from_value(analyzed)
        .map_err(|e| StepError::non_retryable(format!("the stored analysis is unusable: {e}")))?;
    let Some(note) = live_note(context.store.as_ref(), &step.scope, input.entity_id).await? else {
        return Ok(skipped(
            "the note was deleted before the analysis was applied",
        ));
    };
    let untouched = note.version == 1;
    let changes = changes_for(&note, &record, untouched);
    if changes.is_empty() {
        return Ok(json!({ "version": note.version, "events": 0 }));
    }
    let metadata = EventMetadata {
        source: Source::Automation,
        causation_id: Some(input.causation_id),
        correlation_id: Some(input.causation_id),
        workflow_run_id: Some(step.run_id),
        model: Some(format!("{}/{}", record.provider, record.model)),
        ..EventMetadata::default()
    };
    let request = CommandRequest {
        scope: step.scope,
        command_id: apply_command_id(step.run_id),
        target: Target::Entity {
            id: note.id,
            command: EntityCommand::Change(changes),
        },
        // A user's edit between reading and writing is a conflict: the step runs
        // again and reads the edit.
        expected_version: Some(note.version),
        metadata,
        triggers: Vec::new(),
    };
    match context.store.execute(request).await {
        Ok(outcome) => Ok(json!({
            "version": outcome.version,
            "events": outcome.events.len(),
            "only_tags": !untouched,
        })),
        Err(StoreError::Conflict { .. }) => Err(StepError::retryable(
            "the note changed while the analysis was applied",
        )),
        Err(StoreError::Domain(DomainError::EntityNotFound(_))) => Ok(skipped(
            "the note was deleted before the analysis was applied",
        )),
        Err(error) => Err(store_failure(error)),
    }
}

async fn embed(context: &EnrichContext, step: &StepContext) -> Result<Value, StepError> {
    let Some(indexer) = &context.indexer else {
        return Ok(skipped("no embedding model is configured"));
    };
    let input = input_of(step)?;
    let Some(note) = live_note(context.store.as_ref(), &step.scope, input.entity_id).await? else {
        return Ok(skipped("the note was deleted before it was indexed"));
    };
    match indexer.index_entity(&step.scope, &note).await {
        Ok(chunks) => Ok(json!({ "model": indexer.model(), "chunks": chunks })),
        Err(IndexError::Store(error)) => Err(store_failure(error)),
        Err(IndexError::Embedding(error)) if error.is_retryable() => Err(retry(error)),
        Err(IndexError::Embedding(error)) => Err(StepError::non_retryable(error)),
    }
}

/// The notification type `notify` sends.
pub const CAPTURE_ENRICHED: &str = "capture.enriched";

async fn notify(context: &EnrichContext, step: &StepContext) -> Result<Value, StepError> {
    let store = context.store.as_ref();
    let hooks: Vec<_> = store
        .webhooks(&step.scope)
        .await
        .map_err(store_failure)?
        .into_iter()
        .filter(|w| w.disabled_at.is_none() && w.wants(CAPTURE_ENRICHED))
        .collect();
    if hooks.is_empty() {
        return Ok(skipped("no webhook subscribes to capture.enriched"));
    }
    let input = input_of(step)?;
    let Some(note) = live_note(store, &step.scope, input.entity_id).await? else {
        return Ok(skipped("the note was deleted before it was announced"));
    };
    let message = json!({
        "type": CAPTURE_ENRICHED,
        "timestamp": context.clock.now(),
        "data": {
            "entity_id": note.id,
            "run_id": step.run_id,
            "type": note.entity_type,
            "title": note.title,
            "tags": note.tags,
            "due_at": note.task.as_ref().and_then(|t| t.due_at),
        }
    });
    let mut enqueued = 0;
    for hook in hooks {
        let id = crate::derived_id(step.run_id, hook.id.as_bytes());
        if store
            .run_detail(&step.scope, id)
            .await
            .map_err(store_failure)?
            .is_some()
        {
            continue;
        }
        let run = NewRun {
            id,
            ..delivery_run(hook.id, message.clone())
        };
        store
            .enqueue_run(&step.scope, run)
            .await
            .map_err(store_failure)?;
        enqueued += 1;
    }
    Ok(json!({ "notified": enqueued }))
}

/// The changes that bring `note` to the analysis. A note the user already edited
/// (`untouched == false`) only gains tags.
pub fn changes_for(note: &EntityView, record: &AnalysisRecord, untouched: bool) -> Vec<Change> {
    let mut changes = Vec::new();
    if untouched {
        if note.title != record.title {
            changes.push(Change::Title(record.title.clone()));
        }
        if note.entity_type != record.intent {
            changes.push(Change::Type(record.intent));
        }
        if record.intent == EntityType::Event
            && let Some(at) = record.due_at
        {
            let mut when = serde_json::Map::new();
            when.insert(EVENT_TIME_KEY.to_string(), json!(at));
            changes.push(Change::SetMetadata(when));
        }
        if record.intent == EntityType::Task {
            if let Some(priority) = record.priority {
                changes.push(Change::TaskPriority(priority));
            }
            if record.due_at.is_some() {
                changes.push(Change::TaskDue(record.due_at));
            }
        }
    }
    let missing: Vec<String> = record
        .tags
        .iter()
        .filter(|tag| !note.tags.iter().any(|t| tag_key(t) == tag_key(tag)))
        .cloned()
        .collect();
    if !missing.is_empty() {
        changes.push(Change::AddTags(missing));
    }
    changes
}
