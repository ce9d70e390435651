//! `insights.suggest` on SQLite and PostgreSQL, on a manual clock: every user is
//! given the hourly schedule; a tag put on 3 entities within a day that no
//! project carries becomes one suggestion (not two when the job runs again);
//! older uses, fewer uses and tags a project carries do not count; accepting makes
//! the project and links it to the entities, once.

use super::Fixture;
use synap_domain::EntityId;
use synap_domain::command::{CreateEntity, EntityCommand};
use synap_domain::entity::EntityType;
use synap_domain::event::EventMetadata;
use synap_flows::insights::{accept_suggestion, insights_schedule};
use synap_flows::webhooks::WebhookConfig;
use synap_store::suggestions::Decided;
use synap_store::suggestions::SuggestionStatus;
use synap_store::{Clock, CommandRequest, Direction, Target};
use uuid::Uuid;

async fn tagged(f: &Fixture, text: &str, tag: &str, entity_type: EntityType) -> EntityId {
    let id = EntityId::new_v7();
    let request = CommandRequest::new(
        f.owner,
        Target::Entity {
            id,
            command: EntityCommand::Create(CreateEntity {
                entity_type,
                tags: vec![tag.to_string()],
                ..CreateEntity::note(text)
            }),
        },
        EventMetadata::default(),
    );
    f.store.execute(request).await.unwrap();
    id
}

pub async fn a_busy_tag_becomes_one_suggestion_and_accepting_makes_the_project(f: Fixture) {
    // Two days ago: an old use of the tag, which does not count.
    tagged(&f, "Old bed", "Garden", EntityType::Note).await;
    f.advance(2 * 24 * 3600);
    let mut garden = Vec::new();
    for text in ["Tomatoes", "Compost", "Seeds to order"] {
        garden.push(tagged(&f, text, "Garden", EntityType::Note).await);
        f.advance(600);
    }
    // A tag a project already carries, and one used only twice.
    for text in ["Pasta", "Bread", "Soup"] {
        tagged(&f, text, "cooking", EntityType::Note).await;
    }
    tagged(&f, "Kitchen", "Cooking", EntityType::Project).await;
    for text in ["A", "B"] {
        tagged(&f, text, "misc", EntityType::Note).await;
    }

    let schedule = insights_schedule(f.clock.now());
    assert_eq!(f.store.ensure_schedules(&schedule).await.unwrap(), 1);
    assert_eq!(
        f.store.ensure_schedules(&schedule).await.unwrap(),
        0,
        "a user has the schedule once"
    );
    let worker = f.worker_with(WebhookConfig::default());
    let report = worker.tick().await.unwrap();
    assert_eq!(report.runs_succeeded, 1, "{report:?}");

    let suggestions = f.store.suggestions(&f.owner, None).await.unwrap();
    assert_eq!(suggestions.len(), 1, "{suggestions:?}");
    let suggestion = &suggestions[0];
    assert_eq!(suggestion.tag, "Garden");
    assert_eq!(suggestion.status, SuggestionStatus::Pending);
    let mut named = suggestion.entity_ids.clone();
    named.sort();
    garden.sort();
    assert_eq!(named, garden, "only the last day's uses");

    // The next hour's run proposes nothing new.
    f.advance(3600);
    let report = worker.tick().await.unwrap();
    assert_eq!(report.runs_succeeded, 1, "{report:?}");
    assert_eq!(f.store.suggestions(&f.owner, None).await.unwrap().len(), 1);

    let metadata = EventMetadata::default();
    let accepted = accept_suggestion(f.store.as_ref(), &f.owner, suggestion.id, metadata.clone())
        .await
        .unwrap();
    let Decided::Done(accepted) = accepted else {
        panic!("not accepted: {accepted:?}");
    };
    assert_eq!(accepted.status, SuggestionStatus::Accepted);
    let project = accepted.project_id.unwrap();
    let view = f.entity(project).await;
    assert_eq!(view.entity_type, EntityType::Project);
    assert_eq!(view.title, "Garden");
    assert_eq!(view.tags, vec!["Garden".to_string()]);
    let links = f
        .store
        .relations(&f.owner, project, Direction::Out)
        .await
        .unwrap();
    let mut linked: Vec<EntityId> = links
        .iter()
        .filter(|r| r.kind == "contains")
        .map(|r| r.target_id)
        .collect();
    linked.sort();
    assert_eq!(linked, garden);

    // Deciding again changes nothing.
    let again = accept_suggestion(f.store.as_ref(), &f.owner, suggestion.id, metadata.clone())
        .await
        .unwrap();
    assert!(
        matches!(again, Decided::NotPending(SuggestionStatus::Accepted)),
        "{again:?}"
    );
    let missing = accept_suggestion(f.store.as_ref(), &f.owner, Uuid::now_v7(), metadata)
        .await
        .unwrap();
    assert!(matches!(missing, Decided::NotFound));
    // The project now carries the tag: a later run suggests nothing.
    f.advance(3600);
    worker.tick().await.unwrap();
    assert_eq!(f.store.suggestions(&f.owner, None).await.unwrap().len(), 1);
}
