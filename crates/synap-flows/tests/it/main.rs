//! The product's workflows on SQLite and PostgreSQL, driven by a real worker on a
//! manual clock: `capture.enrich` with the local analyzer end to end and the
//! fallback when the (mocked) model provider keeps failing; `webhook.deliver`
//! (`webhooks.rs`).

use async_trait::async_trait;
use jiff::SignedDuration;
use jiff::tz::TimeZone;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use synap_ai::local::{LOCAL_MODEL, LOCAL_PROVIDER};
use synap_ai::{AiError, Analysis, AnalysisRequest, Analyzer, LocalAnalyzer};
use synap_domain::EntityId;
use synap_domain::command::{Change, CreateEntity, EntityCommand};
use synap_domain::entity::EntityType;
use synap_domain::event::{EventMetadata, Source};
use synap_flows::enrich::{FALLBACK_TAG, FALLBACK_TITLE_CHARS};
use synap_flows::webhooks::WebhookConfig;
use synap_flows::{FlowsConfig, capture_enrich_run, registry};
use synap_store::workflow::{RunStatus, StepStatus};
use synap_store::{CommandRequest, ManualClock, PageRequest, Scope, Store, Target};
use synap_store_postgres::testing::TestCluster;
use synap_workflow::{Worker, WorkerConfig};
use uuid::Uuid;

mod insights;
mod webhooks;
use insights::a_busy_tag_becomes_one_suggestion_and_accepting_makes_the_project;
use webhooks::{
    a_capture_is_announced_to_capture_enriched_subscribers,
    a_failing_receiver_is_retried_then_disabled_with_the_reason,
    a_loopback_target_is_refused_unless_allowed,
    events_reach_the_receiver_signed_per_standard_webhooks,
};

const START: &str = "2026-03-02T08:00:00Z";

struct Fixture {
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    owner: Scope,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn sqlite() -> Option<Fixture> {
        let clock = Arc::new(ManualClock::new(START.parse().unwrap()));
        let dir = tempfile::tempdir().unwrap();
        let config = synap_store_sqlite::SqliteConfig {
            clock: clock.clone(),
            ..synap_store_sqlite::SqliteConfig::new(dir.path().join("synap.db"))
        };
        let store = synap_store_sqlite::SqliteStore::open(config).unwrap();
        Some(Fixture::finish(Arc::new(store), clock, dir).await)
    }

    async fn postgres() -> Option<Fixture> {
        let cluster = TestCluster::shared()?;
        let clock = Arc::new(ManualClock::new(START.parse().unwrap()));
        let config = synap_store_postgres::PostgresConfig {
            clock: clock.clone(),
            ..synap_store_postgres::PostgresConfig::new(cluster.fresh_database())
        };
        let store = synap_store_postgres::PostgresStore::open(config)
            .await
            .unwrap();
        Some(Fixture::finish(Arc::new(store), clock, tempfile::tempdir().unwrap()).await)
    }

    async fn finish(
        store: Arc<dyn Store>,
        clock: Arc<ManualClock>,
        dir: tempfile::TempDir,
    ) -> Fixture {
        let owner = Scope::user(store.local_owner().await.unwrap().id);
        Fixture {
            store,
            clock,
            owner,
            _dir: dir,
        }
    }

    fn worker(&self, analyzer: Arc<dyn Analyzer>) -> Worker {
        self.worker_of(FlowsConfig {
            analyzer,
            time_zone: TimeZone::get("Europe/Berlin").unwrap(),
            embedder: None,
            webhooks: Default::default(),
        })
    }

    /// A worker whose webhook deliveries behave as `webhooks` says.
    fn worker_with(&self, webhooks: WebhookConfig) -> Worker {
        self.worker_of(FlowsConfig {
            analyzer: Arc::new(LocalAnalyzer::new()),
            time_zone: TimeZone::UTC,
            embedder: None,
            webhooks,
        })
    }

    fn worker_of(&self, config: FlowsConfig) -> Worker {
        let registry = registry(self.store.clone(), self.clock.clone(), &config);
        Worker::new(
            self.store.clone(),
            Arc::new(registry),
            self.clock.clone(),
            WorkerConfig::new("test"),
        )
    }

    /// Captures `text` as the HTTP route does: the note and its run in one command.
    async fn capture(&self, text: &str) -> (EntityId, Uuid, Uuid) {
        let id = EntityId::new_v7();
        let command_id = Uuid::now_v7();
        let run = capture_enrich_run(id, command_id);
        let run_id = run.id;
        let request = CommandRequest {
            scope: self.owner,
            command_id,
            target: Target::Entity {
                id,
                command: EntityCommand::Create(CreateEntity::note(text)),
            },
            expected_version: None,
            metadata: EventMetadata::default(),
            triggers: vec![run],
        };
        self.store.execute(request).await.unwrap();
        (id, command_id, run_id)
    }

    async fn entity(&self, id: EntityId) -> synap_store::EntityView {
        self.store.entity(&self.owner, id).await.unwrap().unwrap()
    }

    async fn run(&self, id: Uuid) -> synap_store::workflow::RunDetail {
        self.store
            .run_detail(&self.owner, id)
            .await
            .unwrap()
            .unwrap()
    }

    fn advance(&self, seconds: i64) {
        self.clock.advance(SignedDuration::from_secs(seconds));
    }
}

/// Creates a note directly (no capture, so no enrichment run).
async fn note(f: &Fixture, text: &str) -> EntityId {
    let id = EntityId::new_v7();
    let request = CommandRequest {
        scope: f.owner,
        command_id: Uuid::now_v7(),
        target: Target::Entity {
            id,
            command: EntityCommand::Create(CreateEntity::note(text)),
        },
        expected_version: None,
        metadata: EventMetadata::default(),
        triggers: Vec::new(),
    };
    f.store.execute(request).await.unwrap();
    id
}

/// A change of one of the owner's entities.
fn change(f: &Fixture, id: EntityId, changes: Vec<Change>) -> CommandRequest {
    CommandRequest {
        scope: f.owner,
        command_id: Uuid::now_v7(),
        target: Target::Entity {
            id,
            command: EntityCommand::Change(changes),
        },
        expected_version: None,
        metadata: EventMetadata::default(),
        triggers: Vec::new(),
    }
}

/// A model provider that is down (HTTP 503) or answers nonsense, counting calls.
#[derive(Debug)]
struct FailingProvider {
    retryable: bool,
    calls: AtomicU32,
}

#[async_trait]
impl Analyzer for FailingProvider {
    fn provider(&self) -> &'static str {
        "openai"
    }
    fn model(&self) -> &str {
        "mock"
    }
    async fn analyze(&self, _request: &AnalysisRequest) -> Result<Analysis, AiError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(if self.retryable {
            AiError::Status {
                provider: "openai",
                status: 503,
                message: "overloaded".into(),
                retry_after: None,
            }
        } else {
            AiError::InvalidOutput {
                provider: "openai",
                reason: "the answer is not JSON".into(),
            }
        })
    }
}

async fn a_captured_task_gets_its_title_tags_type_and_due_date(f: Fixture) {
    let (id, command_id, run_id) = f.capture("Buy milk tomorrow at 3pm").await;
    let report = f
        .worker(Arc::new(LocalAnalyzer::new()))
        .tick()
        .await
        .unwrap();
    assert_eq!(report.runs_succeeded, 1, "{report:?}");

    let note = f.entity(id).await;
    assert_eq!(note.entity_type, EntityType::Task);
    let due = note
        .task
        .as_ref()
        .and_then(|t| t.due_at)
        .expect("a due date");
    // Captured 09:00 in Berlin on 2 March: due 3 March, 15:00 Berlin (14:00 UTC).
    assert_eq!(due, "2026-03-03T14:00:00Z".parse().unwrap());
    assert!((3..=5).contains(&note.tags.len()), "{:?}", note.tags);
    assert!(note.tags.iter().any(|t| t == "milk"), "{:?}", note.tags);
    assert!(!note.title.is_empty() && note.title.len() <= 100);

    let history = f
        .store
        .history(&f.owner, id, &PageRequest::default())
        .await
        .unwrap();
    let applied: Vec<_> = history.items.iter().filter(|e| e.version > 1).collect();
    assert!(!applied.is_empty());
    for event in applied {
        assert_eq!(event.metadata.source, Source::Automation);
        assert_eq!(event.metadata.causation_id, Some(command_id));
        assert_eq!(event.metadata.workflow_run_id, Some(run_id));
        let expected = format!("{LOCAL_PROVIDER}/{LOCAL_MODEL}");
        assert_eq!(event.metadata.model.as_deref(), Some(expected.as_str()));
    }
    let run = f.run(run_id).await;
    assert_eq!(run.run.status, RunStatus::Succeeded);
    assert_eq!(run.run.trigger_position, Some(history.items[0].position));
    let names: Vec<_> = run.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["analyze", "apply", "embed", "notify"]);
    assert_eq!(
        run.steps[2].output,
        Some(serde_json::json!({ "skipped": "no embedding model is configured" }))
    );
    assert_eq!(
        run.steps[3].output,
        Some(serde_json::json!({ "skipped": "no webhook subscribes to capture.enriched" }))
    );
}

async fn the_analysis_falls_back_after_its_retries(f: Fixture) {
    let text = format!("{} and then some more words", "word ".repeat(40));
    let (id, _, run_id) = f.capture(&text).await;
    let provider = Arc::new(FailingProvider {
        retryable: true,
        calls: AtomicU32::new(0),
    });
    let worker = f.worker(provider.clone());
    worker.tick().await.unwrap();
    assert_eq!(f.run(run_id).await.run.status, RunStatus::Waiting);
    for _ in 0..2 {
        f.advance(60);
        worker.tick().await.unwrap();
    }
    assert_eq!(provider.calls.load(Ordering::SeqCst), 3);

    let run = f.run(run_id).await;
    assert_eq!(run.run.status, RunStatus::Succeeded);
    let analyze = &run.steps[0];
    assert_eq!(
        (analyze.status, analyze.attempts),
        (StepStatus::Succeeded, 3)
    );
    let why = analyze.output.as_ref().unwrap()["fallback"]
        .as_str()
        .unwrap();
    assert!(
        why.contains("failed 3 times") && why.contains("503"),
        "{why}"
    );

    let note = f.entity(id).await;
    assert_eq!(note.entity_type, EntityType::Note);
    assert_eq!(note.tags, [FALLBACK_TAG]);
    let expected: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(FALLBACK_TITLE_CHARS)
        .collect();
    assert_eq!(note.title, expected.trim_end());
}

async fn output_that_cannot_get_better_falls_back_at_once(f: Fixture) {
    let (id, _, run_id) = f.capture("Call the plumber").await;
    let provider = Arc::new(FailingProvider {
        retryable: false,
        calls: AtomicU32::new(0),
    });
    f.worker(provider.clone()).tick().await.unwrap();
    assert_eq!(provider.calls.load(Ordering::SeqCst), 1);
    let run = f.run(run_id).await;
    assert_eq!(run.run.status, RunStatus::Succeeded);
    let why = run.steps[0].output.as_ref().unwrap()["fallback"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(why.contains("retrying cannot help"), "{why}");
    assert_eq!(f.entity(id).await.tags, [FALLBACK_TAG]);
}

async fn a_note_edited_since_its_capture_keeps_the_users_title_and_type(f: Fixture) {
    let (id, _, run_id) = f.capture("Buy milk tomorrow at 3pm").await;
    let edit = CommandRequest::new(
        f.owner,
        Target::Entity {
            id,
            command: EntityCommand::Change(vec![Change::Title("Groceries".into())]),
        },
        EventMetadata::default(),
    );
    f.store.execute(edit).await.unwrap();
    f.worker(Arc::new(LocalAnalyzer::new()))
        .tick()
        .await
        .unwrap();
    let note = f.entity(id).await;
    assert_eq!(note.title, "Groceries");
    assert_eq!(note.entity_type, EntityType::Note);
    assert!(note.tags.iter().any(|t| t == "milk"), "{:?}", note.tags);
    let apply = &f.run(run_id).await.steps[1];
    assert_eq!(apply.output.as_ref().unwrap()["only_tags"], true);
}

async fn a_note_deleted_before_its_run_is_left_alone(f: Fixture) {
    let (id, _, run_id) = f.capture("Buy milk tomorrow at 3pm").await;
    let delete = CommandRequest::new(
        f.owner,
        Target::Entity {
            id,
            command: EntityCommand::Delete,
        },
        EventMetadata::default(),
    );
    f.store.execute(delete).await.unwrap();
    f.worker(Arc::new(LocalAnalyzer::new()))
        .tick()
        .await
        .unwrap();
    let run = f.run(run_id).await;
    assert_eq!(run.run.status, RunStatus::Succeeded);
    assert!(run.steps[0].output.as_ref().unwrap()["skipped"].is_string());
    assert_eq!(f.entity(id).await.version, 2);
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(f) = super::Fixture::sqlite().await {
                        super::$name(f).await;
                    }
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(f) = super::Fixture::postgres().await {
                        super::$name(f).await;
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    a_captured_task_gets_its_title_tags_type_and_due_date,
    the_analysis_falls_back_after_its_retries,
    output_that_cannot_get_better_falls_back_at_once,
    a_note_edited_since_its_capture_keeps_the_users_title_and_type,
    a_note_deleted_before_its_run_is_left_alone,
    events_reach_the_receiver_signed_per_standard_webhooks,
    a_failing_receiver_is_retried_then_disabled_with_the_reason,
    a_loopback_target_is_refused_unless_allowed,
    a_busy_tag_becomes_one_suggestion_and_accepting_makes_the_project,
    a_capture_is_announced_to_capture_enriched_subscribers,
);
