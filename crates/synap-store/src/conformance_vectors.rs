//! The conformance suite's vector tests (feature `conformance`): the backlog
//! follows edits, deletes and model changes; nearest-neighbour search sees only
//! the caller's live entities, honours the filters and never compares another
//! model's vectors. Expanded by `conformance_suite!` with the rest.

use crate::api::{Scope, Store};
use crate::conformance::{Harness, StoreFactory};
use crate::vectors::{ChunkVector, EntityVectors, IndexTask, NearestRequest, semantic_search};
use synap_domain::command::{Change, CreateEntity, EntityCommand, NewContent};
use synap_domain::entity::EntityType;
use synap_domain::ids::EntityId;

const MODEL: &str = "test:axes";
const OTHER_MODEL: &str = "test:other";

/// A unit vector along `axis` of four.
fn axis(axis: usize) -> Vec<f32> {
    let mut v = vec![0.0; 4];
    v[axis] = 1.0;
    v
}

/// Indexes `task` with one vector per given chunk range.
async fn index(
    store: &dyn Store,
    task: &IndexTask,
    model: &str,
    chunks: &[((u32, u32), Vec<f32>)],
) {
    store
        .put_vectors(&EntityVectors {
            task: task.clone(),
            model: model.into(),
            chunks: chunks
                .iter()
                .enumerate()
                .map(|(i, ((start, end), vector))| ChunkVector {
                    chunk: i as u32,
                    start: *start,
                    end: *end,
                    vector: vector.clone(),
                })
                .collect(),
        })
        .await
        .expect("put vectors");
}

async fn backlog_ids(store: &dyn Store, model: &str) -> Vec<EntityId> {
    let mut ids: Vec<EntityId> = store
        .index_backlog(model, 100)
        .await
        .expect("backlog")
        .into_iter()
        .map(|t| t.entity_id)
        .collect();
    ids.sort();
    ids
}

fn task_of(tasks: &[IndexTask], id: EntityId) -> IndexTask {
    tasks
        .iter()
        .find(|t| t.entity_id == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} is not in the backlog"))
}

/// The backlog holds live entities without current vectors; an edit of the title
/// or body puts one back, a tag change does not, a delete takes it out, and a new
/// model wants everything again until the old model's vectors are dropped.
pub async fn vector_backlog_follows_edits_deletes_and_models<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let me = h.me();
    let store = h.store.as_ref();
    let with_body = me.note("A small cat sleeps on the sofa.").await;
    let title_only = me
        .create(CreateEntity {
            title: Some("Kitten photos".into()),
            ..CreateEntity::note("")
        })
        .await;
    let mut expected = vec![with_body, title_only];
    expected.sort();
    assert_eq!(backlog_ids(store, MODEL).await, expected);
    let tasks = store.index_backlog(MODEL, 100).await.expect("backlog");
    let body_task = task_of(&tasks, with_body);
    assert!(body_task.content_hash.is_some(), "{body_task:?}");
    assert_eq!(body_task.user_id, h.owner.user_id);
    assert_eq!(task_of(&tasks, title_only).title, "Kitten photos");
    assert_eq!(
        store.index_backlog(MODEL, 1).await.expect("backlog").len(),
        1,
        "the limit holds"
    );

    index(store, &body_task, MODEL, &[((0, 10), axis(0))]).await;
    // Nothing to embed still counts as indexed.
    index(store, &task_of(&tasks, title_only), MODEL, &[]).await;
    assert!(backlog_ids(store, MODEL).await.is_empty());
    let status = store.index_status(MODEL).await.expect("status");
    assert_eq!((status.indexed, status.pending), (2, 0));

    me.must_change(with_body, vec![Change::AddTags(vec!["pets".into()])])
        .await;
    assert!(
        backlog_ids(store, MODEL).await.is_empty(),
        "a tag change keeps the vectors"
    );
    me.must_change(
        with_body,
        vec![Change::Content(Some(NewContent::markdown("A big dog.")))],
    )
    .await;
    me.must_change(title_only, vec![Change::Title("Kitten albums".into())])
        .await;
    assert_eq!(backlog_ids(store, MODEL).await, expected);
    assert_eq!(store.index_status(MODEL).await.expect("status").pending, 2);

    me.command(title_only, EntityCommand::Delete)
        .await
        .expect("delete");
    assert_eq!(backlog_ids(store, MODEL).await, vec![with_body]);

    // A new model: everything live is pending for it; dropping the others
    // empties the old model's index.
    assert_eq!(backlog_ids(store, OTHER_MODEL).await, vec![with_body]);
    let dropped = store
        .drop_vectors_except(OTHER_MODEL)
        .await
        .expect("drop other models");
    assert_eq!(dropped, 2);
    assert_eq!(backlog_ids(store, MODEL).await, vec![with_body]);
    assert!(
        store.index_backlog("   ", 10).await.is_err(),
        "a blank model is refused"
    );
}

/// Nearest-neighbour search ranks the caller's live entities by their best
/// chunk, applies type and tag filters, skips deleted entities, other users and
/// vectors of another length, and gives snippets from the matching chunk.
pub async fn nearest_sees_only_the_callers_live_entities_by_best_chunk<F: StoreFactory>() {
    let h = Harness::new::<F>().await;
    let me = h.me();
    let store = h.store.as_ref();
    let body = "Intro about the garden.\n\nA small cat sleeps on the sofa.";
    let cat = me
        .create(CreateEntity {
            tags: vec!["Pets".into()],
            ..CreateEntity::note(body)
        })
        .await;
    let car = me.note("Engine oil and tyres.").await;
    let task = me
        .create(CreateEntity {
            entity_type: EntityType::Task,
            title: Some("Feed the kitten".into()),
            ..CreateEntity::note("")
        })
        .await;
    let gone = me.note("Deleted cat notes.").await;
    let other_user = h.second_user("b@example.com").await;
    let theirs = h.actor(other_user).note("Their own small cat.").await;

    let tasks = store.index_backlog(MODEL, 100).await.expect("backlog");
    assert_eq!(tasks.len(), 5, "every user's entities are in the backlog");
    let second = body.find("A small").expect("in the body") as u32;
    index(
        store,
        &task_of(&tasks, cat),
        MODEL,
        &[
            ((0, second), axis(1)),
            ((second, body.len() as u32), axis(0)),
        ],
    )
    .await;
    index(store, &task_of(&tasks, car), MODEL, &[((0, 10), axis(3))]).await;
    let near: Vec<f32> = vec![0.8, 0.0, 0.6, 0.0];
    index(store, &task_of(&tasks, task), MODEL, &[((0, 0), near)]).await;
    index(store, &task_of(&tasks, gone), MODEL, &[((0, 5), axis(0))]).await;
    index(store, &task_of(&tasks, theirs), MODEL, &[((0, 5), axis(0))]).await;
    me.command(gone, EntityCommand::Delete)
        .await
        .expect("delete");
    // The same entity under another model, with vectors of another length.
    index(
        store,
        &task_of(&tasks, car),
        OTHER_MODEL,
        &[((0, 10), vec![1.0, 0.0])],
    )
    .await;

    let request = |entity_type, tag: Option<&str>| NearestRequest {
        model: MODEL.into(),
        vector: axis(0),
        entity_type,
        tag: tag.map(Into::into),
        limit: 10,
    };
    let found = store
        .nearest(&h.owner, &request(None, None))
        .await
        .expect("nearest");
    let ids: Vec<EntityId> = found.iter().map(|n| n.entity_id).collect();
    assert_eq!(ids, vec![cat, task, car], "{found:?}");
    assert_eq!(found[0].chunk, 1, "the best chunk speaks for the entity");
    assert!((found[0].score - 1.0).abs() < 1e-6);
    assert!((found[1].score - 0.8).abs() < 1e-6);
    assert!(found[2].score.abs() < 1e-6);

    let only = |scope: Scope, r: NearestRequest| async move {
        store
            .nearest(&scope, &r)
            .await
            .expect("nearest")
            .into_iter()
            .map(|n| n.entity_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        only(h.owner, request(Some(EntityType::Task), None)).await,
        vec![task]
    );
    assert_eq!(only(h.owner, request(None, Some("#pets"))).await, vec![cat]);
    assert_eq!(
        only(
            h.owner,
            NearestRequest {
                limit: 1,
                ..request(None, None)
            }
        )
        .await,
        vec![cat]
    );
    assert_eq!(only(other_user, request(None, None)).await, vec![theirs]);
    let other_model = NearestRequest {
        model: OTHER_MODEL.into(),
        ..request(None, None)
    };
    assert!(
        only(h.owner, other_model).await.is_empty(),
        "a query vector of another length is never compared"
    );

    let hits = semantic_search(store, &h.owner, &request(None, None))
        .await
        .expect("semantic search");
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0].id, cat);
    assert_eq!(hits[0].snippet, "A small cat sleeps on the sofa.");
    assert_eq!(hits[0].tags, vec!["Pets".to_string()]);
    assert_eq!(
        hits[1].snippet, "Feed the kitten",
        "a title-only entity shows its title"
    );
}
