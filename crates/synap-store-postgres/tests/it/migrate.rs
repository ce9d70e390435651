//! Moving up: an embedded instance, populated through the normal store API over
//! several months, is copied into a fresh PostgreSQL database
//! (`synap_store::transfer::copy`, what `synap admin migrate` runs). Verify is
//! clean there, and the same queries give the same answers on both: entities,
//! listings, history, the feed, search, time travel, tags, relations, accounts
//! and idempotent replays.

use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;
use synap_domain::StoredEvent;
use synap_domain::command::{Change, CreateEntity, EntityCommand, TaskInput};
use synap_domain::entity::{EntityType, TaskStatus};
use synap_domain::event::{EventMetadata, Source};
use synap_domain::ids::{EntityId, UserId};
use synap_store::attachments;
use synap_store::conformance::Actor;
use synap_store::objects::{INLINE_BODY_BYTES_MAX_DEFAULT, ObjectStoreConfig, Objects};
use synap_store::suggestions::{Decision, NewSuggestion, PROJECT_FROM_TAG, SuggestionStore};
use synap_store::transfer::{Export, copy};
use synap_store::webhooks::{NewWebhook, WebhookStore};
use synap_store::{
    Accounts, AsOf, Clock, CommandRequest, Direction, EntityFilter, EventFilter, EventStore,
    GraphRequest, Maintenance, ManualClock, NewSession, NewToken, NewUser, Scope, SearchRequest,
    Store, StoreError, Target,
};
use synap_store_postgres::testing::TestCluster;
use synap_store_postgres::{PostgresConfig, PostgresStore};
use synap_store_sqlite::{SqliteConfig, SqliteStore};
use uuid::Uuid;

/// Edits of one note: more than a snapshot interval, so time travel on the
/// source starts from a snapshot while the target (whose rebuild drops the
/// snapshot cache) folds from the start.
const LONG_HISTORY_EDITS: usize = 70;
/// When the populated instance begins (its local owner included: the log's
/// time range decides how many partitions the target creates).
const START: &str = "2025-01-15T10:00:00Z";
/// A page size small enough that the populated log spans many pages.
const SMALL_PAGE: usize = 3;

/// What the test remembers of the populated instance.
struct Populated {
    users: Vec<Scope>,
    entities: Vec<(Scope, EntityId)>,
    /// A note with a long history, and moments between its edits.
    long: (Scope, EntityId, Vec<Timestamp>),
    /// A command whose outcome spans several events, to replay on the target.
    replayable: (CommandRequest, Vec<Uuid>),
    token_prefix: String,
    session_hash: String,
    password_user: UserId,
}

fn note(body: &str, tags: &[&str]) -> EntityCommand {
    EntityCommand::Create(CreateEntity {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..CreateEntity::note(body)
    })
}

fn request(scope: Scope, id: EntityId, command: EntityCommand) -> CommandRequest {
    CommandRequest::new(
        scope,
        Target::Entity { id, command },
        EventMetadata {
            source: Source::Api,
            ..Default::default()
        },
    )
}

async fn populate(store: &SqliteStore, clock: &ManualClock) -> Populated {
    let start: Timestamp = START.parse().expect("a time");
    clock.set(start);
    let tick = || clock.advance(SignedDuration::from_mins(7));
    let owner = Scope::user(store.local_owner().await.expect("the owner").id);
    let ana = store
        .create_user(NewUser {
            email: "Ana@Example.com".into(),
            role: "member".into(),
            password_hash: Some(
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".into(),
            ),
            display_name: Some("Ana".into()),
        })
        .await
        .expect("a second user");
    let ana_scope = Scope::user(ana.id);
    let users = vec![owner, ana_scope];
    let mut entities = Vec::new();

    for (month, scope) in users.iter().enumerate() {
        let me = Actor {
            store,
            scope: *scope,
        };
        // Every user's data spans several months: several partitions on the target.
        clock.set(start + SignedDuration::from_hours(24 * 31 * month as i64));
        let lisbon = EntityId::new_v7();
        me.command(
            lisbon,
            note("# Lisbon\nPastéis at the café near [[Alfama]]", &["Travel"]),
        )
        .await
        .expect("a note");
        tick();
        let alfama = me.note("# Alfama\nOld town, 菠萝包 and fado").await;
        tick();
        let task = me
            .create(CreateEntity {
                entity_type: EntityType::Task,
                title: Some("Book flights".into()),
                task: Some(TaskInput {
                    status: None,
                    priority: Some(2),
                    due_at: Some(start + SignedDuration::from_hours(24 * 90)),
                }),
                tags: vec!["travel".into(), "todo".into()],
                ..CreateEntity::note("before March")
            })
            .await;
        tick();
        me.must_change(lisbon, vec![Change::AddTags(vec!["lisbon".into()])])
            .await;
        tick();
        me.must_change(
            lisbon,
            vec![Change::Content(Some(
                synap_domain::command::NewContent::markdown(
                    "# Lisbon\nPastéis de nata near [[Alfama]] and [[Book flights]]",
                ),
            ))],
        )
        .await;
        tick();
        me.must_change(task, vec![Change::TaskStatus(TaskStatus::Done)])
            .await;
        tick();
        let link = me.link(task, alfama, "blocks").await.expect("a link");
        tick();
        let gone = me.note("a note to delete and bring back").await;
        me.command(gone, EntityCommand::Delete)
            .await
            .expect("delete");
        tick();
        me.command(gone, EntityCommand::Restore)
            .await
            .expect("restore");
        let deleted = me.note("deleted for good, mentions [[Lisbon]]").await;
        me.command(deleted, EntityCommand::Delete)
            .await
            .expect("delete");
        tick();
        me.must_change(alfama, vec![Change::Title("Alfama, Lisbon".into())])
            .await;
        me.command(alfama, EntityCommand::RevertTo { version: 1 })
            .await
            .expect("revert");
        me.unlink(link).await.expect("unlink");
        me.link(lisbon, task, "relates_to").await.expect("a link");
        tick();
        entities.extend([lisbon, alfama, task, gone, deleted].map(|id| (*scope, id)));
    }

    // A long history on the owner, with moments in between.
    let me = Actor {
        store,
        scope: owner,
    };
    let long = me.note("version 1").await;
    let mut moments = Vec::new();
    for edit in 0..LONG_HISTORY_EDITS {
        tick();
        if edit % 10 == 5 {
            moments.push(clock.now());
        }
        me.must_change(
            long,
            vec![Change::Content(Some(
                synap_domain::command::NewContent::markdown(format!("version {}", edit + 2)),
            ))],
        )
        .await;
    }
    entities.push((owner, long));

    // A command of several events (the note and the mentions of its wikilinks).
    tick();
    let replayed_note = EntityId::new_v7();
    let replayable = request(
        owner,
        replayed_note,
        note("links [[Lisbon]] and [[Alfama]]", &["links"]),
    );
    let outcome = store
        .execute(replayable.clone())
        .await
        .expect("a command with wikilinks");
    assert!(outcome.events.len() > 1, "{outcome:?}");
    entities.push((owner, replayed_note));

    let token = store
        .create_token(NewToken {
            id: Uuid::now_v7(),
            user_id: ana.id,
            name: "laptop".into(),
            prefix: "syn_migrate".into(),
            secret_hash: "ab".repeat(32),
            scopes: vec!["read".into(), "write".into()],
            expires_at: Some(start + SignedDuration::from_hours(24 * 365)),
        })
        .await
        .expect("a token");
    let revoked = store
        .create_token(NewToken {
            id: Uuid::now_v7(),
            user_id: owner.user_id,
            name: "old".into(),
            prefix: "syn_revoked".into(),
            secret_hash: "cd".repeat(32),
            scopes: vec!["admin".into()],
            expires_at: None,
        })
        .await
        .expect("a token");
    store
        .revoke_token(owner.user_id, revoked.id)
        .await
        .expect("revoke");
    store
        .touch_token(token.id, clock.now())
        .await
        .expect("touch");
    store
        .create_session(NewSession {
            id_hash: "ef".repeat(32),
            user_id: ana.id,
            expires_at: start + SignedDuration::from_hours(24 * 400),
        })
        .await
        .expect("a session");

    Populated {
        users,
        entities,
        long: (owner, long, moments),
        replayable: (replayable, outcome.events.iter().map(|e| e.id).collect()),
        token_prefix: token.prefix,
        session_hash: "ef".repeat(32),
        password_user: ana.id,
    }
}

/// Events with their positions cleared: positions are the target's own.
fn unpositioned(events: Vec<StoredEvent>) -> Vec<StoredEvent> {
    events
        .into_iter()
        .map(|event| StoredEvent {
            position: 0,
            ..event
        })
        .collect()
}

/// Asserts that `source` and `target` answer every query the same for `populated`.
async fn assert_same_answers(source: &dyn Store, target: &dyn Store, populated: &Populated) {
    assert_eq!(
        source.local_owner().await.expect("owner"),
        target.local_owner().await.expect("owner")
    );
    for scope in &populated.users {
        let (before, after) = (
            Actor {
                store: source,
                scope: *scope,
            },
            Actor {
                store: target,
                scope: *scope,
            },
        );
        assert_eq!(
            source.user(scope.user_id).await.expect("user"),
            target.user(scope.user_id).await.expect("user")
        );
        for deleted in [false, true] {
            let filter = EntityFilter {
                deleted,
                ..Default::default()
            };
            assert_eq!(
                before.list(filter.clone(), 4).await,
                after.list(filter, 4).await,
                "list_entities (deleted: {deleted})"
            );
        }
        let tasks = EntityFilter {
            entity_type: Some(EntityType::Task),
            status: Some(TaskStatus::Done),
            ..Default::default()
        };
        assert_eq!(
            before.list(tasks.clone(), 10).await,
            after.list(tasks, 10).await
        );
        let tagged = EntityFilter {
            tag: Some("travel".into()),
            ..Default::default()
        };
        assert_eq!(
            before.list(tagged.clone(), 10).await,
            after.list(tagged, 10).await
        );
        assert_eq!(before.tags().await, after.tags().await, "tags");
        assert_eq!(
            unpositioned(before.events(EventFilter::default()).await),
            unpositioned(after.events(EventFilter::default()).await),
            "the feed, in order"
        );
        for query in [
            "lisbon",
            "cafe",
            "菠萝包",
            "\"book flights\"",
            "fado",
            "nothing-like-this",
        ] {
            let request = SearchRequest {
                query: query.into(),
                ..Default::default()
            };
            let strip = |hits: Vec<synap_store::SearchHit>| {
                let mut hits: Vec<_> = hits
                    .into_iter()
                    .map(|h| (h.id, h.title, h.tags, h.snippet, h.updated_at))
                    .collect();
                hits.sort_by_key(|h| h.0);
                hits
            };
            assert_eq!(
                strip(before.search(request.clone()).await),
                strip(after.search(request).await),
                "search {query:?}"
            );
        }
    }
    for (scope, id) in &populated.entities {
        let (before, after) = (
            Actor {
                store: source,
                scope: *scope,
            },
            Actor {
                store: target,
                scope: *scope,
            },
        );
        let view = before.entity(*id).await;
        assert_eq!(view, after.entity(*id).await, "entity {id}");
        assert_eq!(
            unpositioned(before.history(*id).await),
            unpositioned(after.history(*id).await),
            "history of {id}"
        );
        if let Some(view) = &view {
            assert_eq!(
                before.body(view).await,
                after.body(view).await,
                "body of {id}"
            );
            for version in 1..=view.version {
                assert_eq!(
                    before.at(*id, AsOf::Version(version)).await,
                    after.at(*id, AsOf::Version(version)).await,
                    "{id} at version {version}"
                );
            }
            let graph = GraphRequest {
                root: *id,
                depth: 2,
                kinds: Vec::new(),
            };
            if view.deleted_at.is_none() {
                for direction in [Direction::Out, Direction::In, Direction::Both] {
                    assert_eq!(
                        source
                            .relations(scope, *id, direction)
                            .await
                            .expect("relations"),
                        target
                            .relations(scope, *id, direction)
                            .await
                            .expect("relations"),
                        "relations of {id} ({direction:?})"
                    );
                }
                assert_eq!(
                    source.graph(scope, &graph).await.expect("graph"),
                    target.graph(scope, &graph).await.expect("graph"),
                    "graph around {id}"
                );
            }
        }
    }
    let (scope, long, moments) = &populated.long;
    assert!(!moments.is_empty());
    for moment in moments {
        let (before, after) = (
            Actor {
                store: source,
                scope: *scope,
            },
            Actor {
                store: target,
                scope: *scope,
            },
        );
        let past = before.at(*long, AsOf::Time(*moment)).await;
        assert!(past.is_some(), "the note existed at {moment}");
        assert_eq!(
            past,
            after.at(*long, AsOf::Time(*moment)).await,
            "at {moment}"
        );
    }

    let credential = target
        .token_by_prefix(&populated.token_prefix)
        .await
        .expect("token lookup")
        .expect("the token was copied");
    assert_eq!(
        Some(credential),
        source
            .token_by_prefix(&populated.token_prefix)
            .await
            .expect("token lookup")
    );
    for scope in &populated.users {
        assert_eq!(
            source.list_tokens(scope.user_id).await.expect("tokens"),
            target.list_tokens(scope.user_id).await.expect("tokens")
        );
    }
    let hash = target
        .password_hash(populated.password_user)
        .await
        .expect("password hash");
    assert!(hash.is_some());
    assert_eq!(
        hash,
        source
            .password_hash(populated.password_user)
            .await
            .expect("password hash")
    );
    let session = target
        .session(&populated.session_hash)
        .await
        .expect("session");
    assert!(session.is_some());
    assert_eq!(
        session,
        source
            .session(&populated.session_hash)
            .await
            .expect("session")
    );
    let (source_stats, target_stats) = (
        source.stats().await.expect("stats"),
        target.stats().await.expect("stats"),
    );
    assert_eq!(
        (
            source_stats.events,
            source_stats.entities,
            source_stats.relations,
            source_stats.users,
            source_stats.content_versions,
            source_stats.content_bytes
        ),
        (
            target_stats.events,
            target_stats.entities,
            target_stats.relations,
            target_stats.users,
            target_stats.content_versions,
            target_stats.content_bytes
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_populated_embedded_instance_migrates_with_the_same_answers() {
    let Some(cluster) = TestCluster::shared() else {
        eprintln!("skipped: no PostgreSQL to migrate into");
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let clock = Arc::new(ManualClock::new(START.parse().expect("a time")));
    // Both stores use the data directory's object store, as `admin migrate` does.
    let objects_config = ObjectStoreConfig::Fs {
        root: dir.path().join("objects"),
    };
    let objects = Arc::new(
        tokio::task::spawn_blocking(move || {
            Objects::open(&objects_config, INLINE_BODY_BYTES_MAX_DEFAULT).expect("objects")
        })
        .await
        .expect("open the object store"),
    );
    let source = SqliteStore::open(SqliteConfig {
        clock: clock.clone(),
        objects: Some(objects.clone()),
        ..SqliteConfig::new(dir.path().join("synap.db"))
    })
    .expect("open the embedded store");
    let populated = populate(&source, &clock).await;
    // An attachment: its bytes are in the object store, its row names the object.
    let (owner, long, _) = &populated.long;
    let photo: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let (attached, _) = attachments::attach_bytes(
        &source,
        *owner,
        *long,
        attachments::Upload {
            filename: "photo.bin".into(),
            declared_media_type: None,
            limit_bytes: attachments::ATTACHMENT_BYTES_MAX_DEFAULT,
            metadata: EventMetadata::default(),
        },
        photo.clone(),
    )
    .await
    .expect("attach");

    // Configuration beside the log: a webhook subscription and a dismissed suggestion.
    let hook = source
        .create_webhook(
            owner,
            NewWebhook {
                id: Uuid::now_v7(),
                url: "https://hooks.example.com/x".into(),
                event_types: vec!["entity.created".into()],
                description: None,
                secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0".into(),
            },
        )
        .await
        .expect("a webhook");
    let suggestion = source
        .put_suggestion(
            owner,
            NewSuggestion {
                id: Uuid::now_v7(),
                kind: PROJECT_FROM_TAG.into(),
                tag: "Travel".into(),
                tag_key: "travel".into(),
                entity_ids: vec![*long],
            },
        )
        .await
        .expect("a suggestion")
        .expect("new");
    source
        .decide_suggestion(owner, suggestion.id, Decision::Dismissed)
        .await
        .expect("dismiss");

    let url = cluster.fresh_database();
    let target = PostgresStore::open(PostgresConfig {
        create_local_owner: false,
        objects: Some(objects.clone()),
        ..PostgresConfig::new(url.clone())
    })
    .await
    .expect("open the target");
    let report = copy(&source, &target, &|_, _, _| {})
        .await
        .expect("the copy");
    let inventory = source.counts().await.expect("counts");
    assert_eq!(report.events, inventory.events);
    assert_eq!(report.contents, inventory.contents);
    assert_eq!(report.users, 2);
    assert_eq!(report.tokens, 2);
    assert_eq!(report.sessions, 1);
    assert_eq!(report.outcomes, inventory.outcomes);
    assert_eq!(report.rebuild.events, inventory.events);

    let verify = target.verify(&|_, _| {}).await.expect("verify");
    assert!(verify.is_clean(), "{:#?}", verify.differences);
    assert_eq!(verify.events_checked, inventory.events);

    assert_same_answers(&source, &target, &populated).await;

    assert_eq!(
        target.webhooks(owner).await.expect("webhooks"),
        vec![hook],
        "the subscription moved, secret included"
    );
    assert_eq!(
        target.suggestions(owner, None).await.expect("suggestions"),
        source.suggestions(owner, None).await.expect("suggestions"),
        "a dismissed suggestion stays dismissed"
    );

    // The attachment reads back on the target, byte for byte.
    let mut stream = attachments::open(&target, *owner, &attached, None)
        .await
        .expect("the attachment opens on the target");
    let mut read = Vec::new();
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        read.extend_from_slice(&chunk.expect("a chunk"));
    }
    assert_eq!(read, photo);

    // A repeated command replays its recorded outcome, every event of it.
    let (request, event_ids) = &populated.replayable;
    let replay = target.execute(request.clone()).await.expect("a replay");
    assert!(replay.replayed);
    assert_eq!(
        &replay.events.iter().map(|e| e.id).collect::<Vec<_>>(),
        event_ids
    );

    // The target is a working store: writing goes on from the copied versions.
    let (owner, long, _) = &populated.long;
    let me = Actor {
        store: &target,
        scope: *owner,
    };
    let before = me.view(*long).await.version;
    me.must_change(*long, vec![Change::Title("after the move".into())])
        .await;
    assert_eq!(me.view(*long).await.version, before + 1);
    assert!(target.verify(&|_, _| {}).await.expect("verify").is_clean());

    // A second migration into the now populated database is refused.
    let again = PostgresStore::open(PostgresConfig {
        create_local_owner: false,
        ..PostgresConfig::new(url)
    })
    .await
    .expect("open the target again");
    match copy(&source, &again, &|_, _, _| {}).await {
        Err(StoreError::InvalidInput(message)) => {
            assert!(message.contains("not empty"), "{message}")
        }
        other => panic!("a populated target must be refused, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_pages_cover_the_log_and_never_split_a_command() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let clock = Arc::new(ManualClock::new(START.parse().expect("a time")));
    let source = SqliteStore::open(SqliteConfig {
        clock: clock.clone(),
        ..SqliteConfig::new(dir.path().join("synap.db"))
    })
    .expect("open the embedded store");
    populate(&source, &clock).await;
    let inventory = source.counts().await.expect("counts");
    let whole = source
        .export_events(0, inventory.head_position, inventory.events as usize + 1)
        .await
        .expect("the whole log");
    assert_eq!(whole.len() as u64, inventory.events);

    // Every command's first event (its id is the command id) and its event count.
    let mut commands = std::collections::HashMap::new();
    let mut after = None;
    loop {
        let page = source
            .export_outcomes(after, inventory.head_position, SMALL_PAGE)
            .await
            .expect("outcomes");
        let Some(last) = page.last() else { break };
        after = Some(last.command_id);
        for outcome in page {
            commands.insert(outcome.command_id, outcome.event_count);
        }
    }
    assert_eq!(commands.len() as u64, inventory.outcomes);

    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = source
            .export_events(after, inventory.head_position, SMALL_PAGE)
            .await
            .expect("a page");
        let Some(last) = page.last() else { break };
        assert!(page.len() <= SMALL_PAGE);
        after = last.position;
        // A page holds whole commands: each command starting in it ends in it.
        let mut index = 0;
        while index < page.len() {
            let count = commands.get(&page[index].id.0).copied().unwrap_or(1) as usize;
            assert!(
                index + count.max(1) <= page.len() || count > SMALL_PAGE,
                "a page ends inside the command {}",
                page[index].id
            );
            index += count.max(1);
        }
        paged.extend(page);
    }
    assert_eq!(paged, whole);

    // Nothing past `through` is exported.
    let early = whole[whole.len() / 2].position;
    let cut = source
        .export_events(0, early, inventory.events as usize)
        .await
        .expect("a cut");
    assert_eq!(cut.last().map(|e| e.position), Some(early));
}
