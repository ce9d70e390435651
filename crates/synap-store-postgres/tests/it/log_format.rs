//! Migration 8: a database written by an older build, whose log stores types as
//! text and payloads as JSON text, is converted to the compact log when a newer
//! build opens it. Every event reads back exactly as it was written (position,
//! id, version, payload, metadata, time), the partitions keep their names, the old
//! table is gone, and writing continues from the streams' versions.

use jiff::Timestamp;
use postgres::{Client, NoTls};
use serde_json::{Map, json};
use synap_domain::StoredEvent;
use synap_domain::entity::{ContentRef, EntityType, TaskFields, TaskStatus};
use synap_domain::event::{
    ContentChanged, EntityCreated, EntityEvent, EventLogged, EventMetadata, EventPayload,
    FieldChange, RelationCreated, RelationEvent, Source, TagsChanged, UserEvent,
};
use synap_domain::ids::{ContentHash, EntityId, EventId, UserId};
use synap_store::{CommandRequest, EventFilter, EventStore, PageRequest, ReadModel, Scope, Target};
use synap_store_postgres::raw::migrate_up_to;
use synap_store_postgres::testing::TestCluster;
use synap_store_postgres::{PostgresConfig, PostgresStore};
use uuid::Uuid;

/// The last migration before the log was compacted.
const LAST_JSON_MIGRATION: usize = 7;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// One user's log as an older build wrote it: every kind of value a payload or
/// an envelope holds (hashes, ids, times, nested JSON, absent fields).
fn old_log(user: UserId, note: EntityId, other: EntityId) -> Vec<StoredEvent> {
    let actor = EventMetadata {
        source: Source::Api,
        actor: Some("token:0192f0c2-7b1d-7e4a-9c3f-5d8e1a2b3c4d".into()),
        request_id: Some("req-17".into()),
        ..EventMetadata::default()
    };
    let automation = EventMetadata {
        source: Source::Automation,
        causation_id: Some(Uuid::from_u128(7)),
        correlation_id: Some(Uuid::from_u128(8)),
        workflow_run_id: Some(Uuid::from_u128(9)),
        model: Some("mock-model".into()),
        ..EventMetadata::default()
    };
    let event = |aggregate_id: Uuid, version, payload, metadata, recorded_at: &str| StoredEvent {
        position: 0,
        id: EventId(Uuid::now_v7()),
        aggregate_id,
        version,
        payload,
        schema_version: 1,
        user_id: user,
        metadata,
        recorded_at: at(recorded_at),
    };
    let entity = EventPayload::Entity;
    let mut metadata = Map::new();
    metadata.insert("rating".into(), json!(4.5));
    vec![
        event(
            note.0,
            1,
            entity(EntityEvent::Created(EntityCreated {
                entity_type: EntityType::Task,
                title: "Book flights".into(),
                content: Some(ContentRef {
                    hash: ContentHash::of(b"flights"),
                    size: 7,
                    media_type: "text/markdown".into(),
                }),
                tags: vec!["travel".into(), "Lisbon".into()],
                task: Some(TaskFields {
                    status: TaskStatus::Todo,
                    priority: 2,
                    due_at: None,
                    completed_at: None,
                }),
                metadata,
            })),
            actor.clone(),
            "2025-01-15T10:00:00Z",
        ),
        event(
            note.0,
            2,
            entity(EntityEvent::ContentChanged(ContentChanged {
                old_hash: Some(ContentHash::of(b"flights")),
                new_hash: Some(ContentHash::of(b"flights, hotel")),
                size: 14,
                media_type: None,
            })),
            EventMetadata::default(),
            "2025-01-15T10:01:00Z",
        ),
        event(
            note.0,
            3,
            entity(EntityEvent::TagsAdded(TagsChanged {
                tags: vec!["urgent".into()],
            })),
            automation.clone(),
            "2025-01-15T10:02:00Z",
        ),
        event(
            note.0,
            4,
            entity(EntityEvent::TaskDueChanged(FieldChange {
                old: None,
                new: Some(at("2025-03-07T17:00:00Z")),
            })),
            actor,
            "2025-01-16T08:00:00Z",
        ),
        event(
            Uuid::from_u128(0x5e1a),
            1,
            EventPayload::Relation(RelationEvent::Created(RelationCreated {
                source_id: note,
                target_id: other,
                kind: "blocks".into(),
            })),
            automation,
            "2025-01-16T08:01:00Z",
        ),
        event(
            user.0,
            1,
            EventPayload::User(UserEvent::EventLogged(EventLogged {
                event_type: "reading_session".into(),
                data: json!({"minutes": 25, "delta": -3, "ratio": 0.25, "book": {"pages": [1, 2]}}),
            })),
            EventMetadata {
                source: Source::Cli,
                ..EventMetadata::default()
            },
            // The next month: a second partition.
            "2025-02-01T00:00:00Z",
        ),
    ]
}

/// Writes `events` the way migrations 1–7 stored them, in one transaction, with
/// the streams at their last versions; returns the events with their positions.
fn write_old_log(url: &str, mut events: Vec<StoredEvent>) -> Vec<StoredEvent> {
    migrate_up_to(url, LAST_JSON_MIGRATION).expect("migrate to the JSON log");
    let mut client = Client::connect(url, NoTls).expect("connect");
    let month = |text: &str| at(text).as_microsecond();
    let (january, february, march) = (
        month("2025-01-01T00:00:00Z"),
        month("2025-02-01T00:00:00Z"),
        month("2025-03-01T00:00:00Z"),
    );
    client
        .batch_execute(&format!(
            "CREATE TABLE events_2025_01 PARTITION OF events FOR VALUES FROM ({january}) TO ({february}); \
             CREATE TABLE events_2025_02 PARTITION OF events FOR VALUES FROM ({february}) TO ({march});"
        ))
        .expect("partitions");
    let mut tx = client.transaction().expect("begin");
    for (index, event) in events.iter_mut().enumerate() {
        let row = tx
            .query_one(
                "INSERT INTO events (position, recorded_at, id, aggregate_id, user_id, version, \
                     schema_version, aggregate_type, type, data, metadata) \
                 VALUES ((pg_current_xact_id()::text::bigint << 20) + $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 RETURNING position",
                &[
                    &(index as i64),
                    &event.recorded_at.as_microsecond(),
                    &event.id.0,
                    &event.aggregate_id,
                    &event.user_id.0,
                    &(event.version as i64),
                    &(event.schema_version as i16),
                    &event.payload.aggregate_type().as_str(),
                    &event.payload.event_type(),
                    &event.payload.data().to_string(),
                    &serde_json::to_string(&event.metadata).unwrap(),
                ],
            )
            .expect("old event");
        event.position = row.get::<_, i64>(0) as u64;
        tx.execute(
            "INSERT INTO streams (aggregate_id, version) VALUES ($1, $2) \
             ON CONFLICT (aggregate_id) DO UPDATE SET version = excluded.version",
            &[&event.aggregate_id, &(event.version as i64)],
        )
        .expect("stream");
    }
    tx.commit().expect("commit");
    events
}

#[tokio::test(flavor = "multi_thread")]
async fn an_old_json_log_is_converted_at_open_and_reads_back_exactly() {
    let Some(cluster) = TestCluster::shared() else {
        return;
    };
    let url = cluster.fresh_database();
    let user = UserId(Uuid::now_v7());
    let (note, other) = (EntityId(Uuid::now_v7()), EntityId(Uuid::now_v7()));
    let written = tokio::task::spawn_blocking({
        let url = url.clone();
        move || write_old_log(&url, old_log(user, note, other))
    })
    .await
    .unwrap();

    let store = PostgresStore::open(PostgresConfig::new(url.clone()))
        .await
        .expect("open converts the log");
    let scope = Scope::user(user);
    let read = store
        .read_events(&scope, &EventFilter::default())
        .await
        .expect("read the converted log");
    assert_eq!(
        read, written,
        "the converted log differs from what was written"
    );

    // Queries by type and by stream run on the new columns.
    let edits = store
        .read_events(
            &scope,
            &EventFilter {
                types: vec!["entity.content_changed".into(), "entity.tags_added".into()],
                ..EventFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(edits, written[1..3]);
    let history = store
        .history(&scope, note, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(history.items, written[..4]);

    // The layout is the compact one, the partition kept its name, the old table
    // is gone.
    let (columns, old_table, in_partition) = tokio::task::spawn_blocking(move || {
        let mut client = Client::connect(&url, NoTls).unwrap();
        let columns: Vec<String> = client
            .query(
                "SELECT attname::text FROM pg_attribute WHERE attrelid = 'events'::regclass \
                 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let old_table: bool = client
            .query_one("SELECT to_regclass('events_json') IS NOT NULL", &[])
            .unwrap()
            .get(0);
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM events_2025_01), (SELECT count(*) FROM events_2025_02)",
                &[],
            )
            .unwrap();
        let in_partition: (i64, i64) = (row.get(0), row.get(1));
        (columns, old_table, in_partition)
    })
    .await
    .unwrap();
    assert_eq!(
        columns,
        [
            "position",
            "recorded_at",
            "id",
            "aggregate_id",
            "user_id",
            "version",
            "type_code",
            "schema_version",
            "data",
            "metadata"
        ]
    );
    assert!(!old_table, "the JSON log was left behind");
    // Each month's events are in that month's partition, under its old name.
    assert_eq!(in_partition, (written.len() as i64 - 1, 1));

    // Writing continues where the converted stream stood.
    let outcome = store
        .execute(CommandRequest::new(
            scope,
            Target::LogEvent {
                event_type: "reading_session".into(),
                data: json!({"minutes": 5}),
            },
            EventMetadata::default(),
        ))
        .await
        .expect("append after the conversion");
    assert_eq!(outcome.version, 2);
    let last = store
        .read_events(
            &scope,
            &EventFilter {
                after: written.last().unwrap().position,
                ..EventFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].version, 2);
}
