//! `insights.suggest`: the original Synap's insight job, on a schedule. A tag put
//! on [`TAG_USES_MIN`] or more entities within [`INSIGHT_WINDOW`] that no project
//! carries yet becomes a suggestion (`synap_store::suggestions`) the user can
//! accept — which makes the project and links it to the entities
//! ([`accept_suggestion`]) — or dismiss.
//!
//! Every user has the schedule [`INSIGHTS_SCHEDULE`] (hourly): the worker
//! processes ensure it for users who lack it ([`insights_schedule`]). The job reads
//! the user's own log of the last day (`entity.created` and `entity.tags_added`),
//! so it sees what happened, not only what is left.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use synap_domain::command::{CreateEntity, EntityCommand};
use synap_domain::entity::EntityType;
use synap_domain::event::{EntityEvent, EventMetadata, EventPayload};
use synap_domain::ids::{EntityId, RelationId};
use synap_domain::relation::RelationKind;
use synap_domain::tags::tag_key;
use synap_store::suggestions::{
    Decided, Decision, NewSuggestion, PROJECT_FROM_TAG, SUGGESTION_ENTITIES_MAX,
};
use synap_store::workflow::ScheduleSpec;
use synap_store::{
    Clock, CommandRequest, EntityFilter, EventFilter, PageRequest, Scope, Store, StoreError,
    StoreResult, Target,
};
use synap_workflow::{StepContext, StepError, Workflow};
use uuid::Uuid;

/// The workflow's name.
pub const INSIGHTS_SUGGEST: &str = "insights.suggest";
/// The schedule every user has.
pub const INSIGHTS_SCHEDULE: &str = "insights";
/// When it runs: at the top of every hour (UTC).
pub const INSIGHTS_CRON: &str = "0 * * * *";
/// How far back the job looks.
pub const INSIGHT_WINDOW: SignedDuration = SignedDuration::from_hours(24);
/// Entities a tag must be put on within the window.
pub const TAG_USES_MIN: usize = 3;
/// Events read per page of the log.
const LOG_PAGE: u32 = 500;

/// The schedule the worker processes give every user (first run at once).
pub fn insights_schedule(now: Timestamp) -> ScheduleSpec {
    ScheduleSpec {
        name: INSIGHTS_SCHEDULE.into(),
        workflow: INSIGHTS_SUGGEST.into(),
        cron: INSIGHTS_CRON.into(),
        input: json!({}),
        next_fire_at: now,
    }
}

/// The `insights.suggest` definition.
pub fn insights_suggest(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Workflow {
    Workflow::new(INSIGHTS_SUGGEST).step("suggest", move |step| {
        let (store, clock) = (store.clone(), clock.clone());
        async move { suggest(store.as_ref(), clock.as_ref(), &step).await }
    })
}

async fn suggest(
    store: &dyn Store,
    clock: &dyn Clock,
    step: &StepContext,
) -> Result<Value, StepError> {
    let made = find_suggestions(store, &step.scope, clock.now())
        .await
        .map_err(StepError::retryable)?;
    let mut stored = Vec::new();
    for suggestion in made {
        let tag = suggestion.tag.clone();
        if store
            .put_suggestion(&step.scope, suggestion)
            .await
            .map_err(StepError::retryable)?
            .is_some()
        {
            stored.push(tag);
        }
    }
    Ok(json!({ "suggested": stored }))
}

/// The suggestions the user's last day calls for (before the store drops those
/// already made): tags put on [`TAG_USES_MIN`]+ live entities that still carry
/// them, and that no live project carries.
pub async fn find_suggestions(
    store: &dyn Store,
    scope: &Scope,
    now: Timestamp,
) -> StoreResult<Vec<NewSuggestion>> {
    // Tag key → (spelling, entities it was put on).
    let mut uses: BTreeMap<String, (String, BTreeSet<EntityId>)> = BTreeMap::new();
    let mut filter = EventFilter {
        types: vec!["entity.created".into(), "entity.tags_added".into()],
        since: Some(now.saturating_sub(INSIGHT_WINDOW).unwrap_or(now)),
        limit: Some(LOG_PAGE),
        ..EventFilter::default()
    };
    loop {
        let events = store.read_events(scope, &filter).await?;
        let Some(last) = events.last() else { break };
        filter.after = last.position;
        for event in &events {
            let tags = match &event.payload {
                EventPayload::Entity(EntityEvent::Created(created)) => &created.tags,
                EventPayload::Entity(EntityEvent::TagsAdded(added)) => &added.tags,
                _ => continue,
            };
            for tag in tags {
                uses.entry(tag_key(tag))
                    .or_insert_with(|| (tag.clone(), BTreeSet::new()))
                    .1
                    .insert(EntityId(event.aggregate_id));
            }
        }
    }
    let mut suggestions = Vec::new();
    for (key, (tag, entities)) in uses {
        if entities.len() < TAG_USES_MIN {
            continue;
        }
        let carrying = entities_with_tag(store, scope, &tag, None).await?;
        let still: Vec<EntityId> = entities
            .into_iter()
            .filter(|id| carrying.contains(id))
            .take(SUGGESTION_ENTITIES_MAX)
            .collect();
        if still.len() < TAG_USES_MIN
            || !entities_with_tag(store, scope, &tag, Some(EntityType::Project))
                .await?
                .is_empty()
        {
            continue;
        }
        suggestions.push(NewSuggestion {
            id: Uuid::now_v7(),
            kind: PROJECT_FROM_TAG.into(),
            tag,
            tag_key: key,
            entity_ids: still,
        });
    }
    Ok(suggestions)
}

/// Live entities carrying `tag` (of one type, if given).
async fn entities_with_tag(
    store: &dyn Store,
    scope: &Scope,
    tag: &str,
    entity_type: Option<EntityType>,
) -> StoreResult<BTreeSet<EntityId>> {
    let filter = EntityFilter {
        tag: Some(tag.to_string()),
        entity_type,
        ..EntityFilter::default()
    };
    let mut page = PageRequest {
        limit: Some(LOG_PAGE),
        cursor: None,
    };
    let mut found = BTreeSet::new();
    loop {
        let answer = store.list_entities(scope, &filter, &page).await?;
        found.extend(answer.items.iter().map(|e| e.id));
        match answer.next_cursor {
            Some(cursor) => page.cursor = Some(cursor),
            None => return Ok(found),
        }
    }
}

/// Accepts a pending suggestion: creates the project (titled and tagged with the
/// tag) and links it to each of the entities that still exists (`contains`),
/// then marks the suggestion accepted. Every command has an id derived from the
/// suggestion, so an accept that failed half-way can simply be repeated.
pub async fn accept_suggestion(
    store: &dyn Store,
    scope: &Scope,
    id: Uuid,
    metadata: EventMetadata,
) -> StoreResult<Decided> {
    let Some(suggestion) = store.suggestion(scope, id).await? else {
        return Ok(Decided::NotFound);
    };
    if suggestion.status != synap_store::suggestions::SuggestionStatus::Pending {
        return Ok(Decided::NotPending(suggestion.status));
    }
    let project = EntityId(crate::derived_id(id, b"project"));
    let create = CommandRequest {
        command_id: project.0,
        ..CommandRequest::new(
            *scope,
            Target::Entity {
                id: project,
                command: EntityCommand::Create(CreateEntity {
                    entity_type: EntityType::Project,
                    title: Some(suggestion.tag.clone()),
                    tags: vec![suggestion.tag.clone()],
                    ..CreateEntity::note("")
                }),
            },
            metadata.clone(),
        )
    };
    store.execute(create).await?;
    for entity in &suggestion.entity_ids {
        let relation = RelationId(crate::derived_id(id, entity.0.as_bytes()));
        let link = CommandRequest {
            command_id: relation.0,
            ..CommandRequest::new(
                *scope,
                Target::Link {
                    id: relation,
                    source_id: project,
                    target_id: *entity,
                    kind: RelationKind::parse("contains").map_err(StoreError::Domain)?,
                },
                metadata.clone(),
            )
        };
        match store.execute(link).await {
            Ok(_) => {}
            // An entity deleted since the suggestion was made is left out.
            Err(StoreError::Domain(synap_domain::DomainError::EntityNotFound(_))) => {}
            Err(StoreError::Domain(synap_domain::DomainError::EntityDeleted(_))) => {}
            Err(other) => return Err(other),
        }
    }
    store
        .decide_suggestion(
            scope,
            id,
            Decision::Accepted {
                project_id: project,
            },
        )
        .await
}
