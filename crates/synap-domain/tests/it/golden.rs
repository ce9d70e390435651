//! Golden files pin the stored `data` of every event type at every schema version:
//! `tests/data/events/<type>/v<N>.json`, written by hand, and next to it `v<N>.hex`,
//! the same payload in the binary encoding the PostgreSQL log stores (hex of its
//! bytes). A change to a payload's shape — in the binary encoding, also a change
//! of its fields' order — fails here until a new schema version, an upcaster in
//! `event::decode` and new golden files are added deliberately.

use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use synap_domain::binary::{from_binary, to_binary};
use synap_domain::event::{
    AttachmentAdded, AttachmentRemoved, Binary, CATALOGUE, ContentChanged, EntityCreated,
    EventLogged, FieldChange, MetadataChanged, RelationCreated, TagsChanged, TokenCreated,
    TokenRevoked, UserCreated, decode, type_code, type_name,
};
use synap_domain::{
    AggregateType, EntityEvent, EntityType, EventMetadata, EventPayload, RelationEvent, Source,
    TaskStatus, UserEvent,
};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/events")
}

fn golden_path(event_type: &str, version: u32) -> PathBuf {
    golden_dir()
        .join(event_type)
        .join(format!("v{version}.json"))
}

fn binary_golden_path(event_type: &str, version: u32) -> PathBuf {
    golden_dir()
        .join(event_type)
        .join(format!("v{version}.hex"))
}

fn read_binary_golden(path: &Path) -> Result<Vec<u8>, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    hex::decode(text.trim()).map_err(|e| format!("{}: not hex: {e}", path.display()))
}

fn read_golden(path: &Path) -> (String, Value) {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
    (text, value)
}

fn aggregate_of(event_type: &str) -> AggregateType {
    match event_type.split_once('.').map(|(prefix, _)| prefix) {
        Some("entity" | "task") => AggregateType::Entity,
        Some("relation") => AggregateType::Relation,
        Some("user") => AggregateType::User,
        _ => panic!("{event_type} is not {{aggregate}}.{{change}}"),
    }
}

#[test]
fn every_catalogued_event_type_decodes_and_re_encodes_its_golden_file_exactly() {
    let mut failures = Vec::new();
    for &(event_type, version) in CATALOGUE {
        let path = golden_path(event_type, version);
        if !path.exists() {
            failures.push(format!("missing golden file {}", path.display()));
            continue;
        }
        let (text, stored) = read_golden(&path);
        let payload = match decode(event_type, version, stored.clone()) {
            Ok(payload) => payload,
            Err(error) => {
                failures.push(format!("{}: {error}", path.display()));
                continue;
            }
        };
        let encoded = payload.data();
        if encoded != stored {
            failures.push(format!("{}: re-encoded as {encoded}", path.display()));
        }
        // Same keys, same order, same formatting: the file is exactly what data() writes.
        let pretty = serde_json::to_string_pretty(&encoded).unwrap();
        if pretty != text.trim_end() {
            failures.push(format!(
                "{}: re-encoded differently:\n{pretty}",
                path.display()
            ));
        }
        if payload.event_type() != event_type {
            failures.push(format!(
                "{}: decoded as {}",
                path.display(),
                payload.event_type()
            ));
        }
        if payload.schema_version() != version {
            failures.push(format!(
                "{}: written at v{}",
                path.display(),
                payload.schema_version()
            ));
        }
        if payload.aggregate_type() != aggregate_of(event_type) {
            failures.push(format!(
                "{}: aggregate {:?}",
                path.display(),
                payload.aggregate_type()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "golden files:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_catalogued_event_type_has_pinned_binary_bytes_that_decode_to_its_golden_payload() {
    let mut failures = Vec::new();
    for &(event_type, version) in CATALOGUE {
        let (_, stored) = read_golden(&golden_path(event_type, version));
        let Ok(payload) = decode(event_type, version, stored) else {
            continue; // reported by the JSON golden test
        };
        let bytes = payload.binary_data().unwrap();
        let path = binary_golden_path(event_type, version);
        let pinned = match read_binary_golden(&path) {
            Ok(pinned) => pinned,
            Err(error) => {
                failures.push(format!(
                    "{error} (this build writes {})",
                    hex::encode(&bytes)
                ));
                continue;
            }
        };
        if pinned != bytes {
            failures.push(format!(
                "{}: this build writes {} instead",
                path.display(),
                hex::encode(&bytes)
            ));
        }
        match decode(event_type, version, Binary(&pinned)) {
            Ok(decoded) if decoded == payload => {}
            Ok(decoded) => failures.push(format!("{}: decodes as {decoded:?}", path.display())),
            Err(error) => failures.push(format!("{}: {error}", path.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "binary golden files:\n{}",
        failures.join("\n")
    );
}

#[test]
fn type_codes_are_pinned_and_map_back_to_their_names() {
    let codes: Vec<(&str, Option<i16>)> = CATALOGUE
        .iter()
        .map(|(name, _)| (*name, type_code(name)))
        .collect();
    let pinned = [
        "entity.created",
        "entity.title_changed",
        "entity.content_changed",
        "entity.type_changed",
        "entity.tags_added",
        "entity.tags_removed",
        "entity.metadata_changed",
        "entity.attachment_added",
        "entity.attachment_removed",
        "entity.deleted",
        "entity.restored",
        "task.status_changed",
        "task.priority_changed",
        "task.due_changed",
        "relation.created",
        "relation.deleted",
        "user.created",
        "user.token_created",
        "user.token_revoked",
        "user.event_logged",
    ];
    let expected: Vec<(&str, Option<i16>)> = pinned
        .iter()
        .zip(1..)
        .map(|(name, code)| (*name, Some(code)))
        .collect();
    assert_eq!(codes, expected, "a stored type code moved");
    for (name, code) in expected {
        assert_eq!(type_name(code.unwrap()), Some(name));
    }
    assert_eq!(type_name(0), None);
    assert_eq!(type_name(pinned.len() as i16 + 1), None);
    assert_eq!(type_name(-1), None);
    assert_eq!(type_code("entity.renamed"), None);
}

#[test]
fn envelope_metadata_round_trips_in_binary_and_the_usual_one_is_a_few_bytes() {
    let usual = EventMetadata::default();
    let bytes = to_binary(&usual).unwrap();
    // {0: "api"}: a map of one, the field's index, the source's name.
    assert_eq!(bytes, [0x81, 0x00, 0xa3, b'a', b'p', b'i']);
    assert_eq!(from_binary::<EventMetadata>(&bytes).unwrap(), usual);
    let full = EventMetadata {
        source: Source::Automation,
        actor: Some("token:1".into()),
        correlation_id: Some(uuid::Uuid::from_u128(1)),
        causation_id: Some(uuid::Uuid::from_u128(2)),
        request_id: Some("req-1".into()),
        workflow_run_id: Some(uuid::Uuid::from_u128(3)),
        model: Some("mock".into()),
    };
    assert_eq!(
        from_binary::<EventMetadata>(&to_binary(&full).unwrap()).unwrap(),
        full
    );
    // A request id alone keeps its own index (5), past the skipped ones.
    let sparse = EventMetadata {
        request_id: Some("r".into()),
        ..EventMetadata::default()
    };
    let bytes = to_binary(&sparse).unwrap();
    assert_eq!(&bytes[..2], &[0x82, 0x00]);
    assert_eq!(&bytes[6..], &[0x04, 0xa1, b'r']);
    assert_eq!(from_binary::<EventMetadata>(&bytes).unwrap(), sparse);
}

#[test]
fn every_golden_file_belongs_to_a_catalogued_type_and_version() {
    let mut failures = Vec::new();
    let mut seen = 0;
    for dir in fs::read_dir(golden_dir()).unwrap() {
        let dir = dir.unwrap().path();
        let event_type = dir.file_name().unwrap().to_string_lossy().into_owned();
        let Some(&(_, current)) = CATALOGUE.iter().find(|(name, _)| *name == event_type) else {
            failures.push(format!(
                "{}: {event_type} is not in the catalogue",
                dir.display()
            ));
            continue;
        };
        if !dir.is_dir() {
            failures.push(format!(
                "{}: expected a directory per event type",
                dir.display()
            ));
            continue;
        }
        for file in fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let stem = name.strip_prefix('v');
            let json = stem.and_then(|n| n.strip_suffix(".json"));
            let binary = stem.and_then(|n| n.strip_suffix(".hex"));
            let version = json.or(binary).and_then(|n| n.parse::<u32>().ok());
            match version {
                Some(version) if (1..=current).contains(&version) => {
                    seen += 1;
                    // Older versions must stay readable (upcast) for as long as they are stored.
                    let decoded = if json.is_some() {
                        let (_, stored) = read_golden(&path);
                        decode(&event_type, version, stored).map_err(|e| e.to_string())
                    } else {
                        read_binary_golden(&path).and_then(|bytes| {
                            decode(&event_type, version, Binary(&bytes)).map_err(|e| e.to_string())
                        })
                    };
                    if let Err(error) = decoded {
                        failures.push(format!("{}: {error}", path.display()));
                    }
                }
                _ => failures.push(format!(
                    "{}: {event_type} has versions 1..={current}; golden files are named v<N>.json and v<N>.hex",
                    path.display()
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "golden files:\n{}",
        failures.join("\n")
    );
    assert!(seen >= 2 * CATALOGUE.len());
}

/// One payload of every variant. The exhaustive match in `event_type_of` fails to
/// compile when a variant is added, so a new event type cannot skip the catalogue.
fn one_of_each() -> Vec<EventPayload> {
    let entity = |event| EventPayload::Entity(event);
    let id: synap_domain::EntityId = "0192f0c1-5a2e-7c3d-8f10-3b7e2a9d4c01".parse().unwrap();
    vec![
        entity(EntityEvent::Created(EntityCreated {
            entity_type: EntityType::Note,
            title: "Untitled".into(),
            content: None,
            tags: vec![],
            task: None,
            metadata: Map::new(),
        })),
        entity(EntityEvent::TitleChanged(FieldChange {
            old: "a".into(),
            new: "b".into(),
        })),
        entity(EntityEvent::ContentChanged(ContentChanged {
            old_hash: None,
            new_hash: None,
            size: 0,
            media_type: None,
        })),
        entity(EntityEvent::TypeChanged(FieldChange {
            old: EntityType::Note,
            new: EntityType::Page,
        })),
        entity(EntityEvent::TagsAdded(TagsChanged {
            tags: vec!["a".into()],
        })),
        entity(EntityEvent::TagsRemoved(TagsChanged {
            tags: vec!["a".into()],
        })),
        entity(EntityEvent::MetadataChanged(MetadataChanged {
            set: Map::new(),
            unset: vec!["a".into()],
        })),
        entity(EntityEvent::AttachmentAdded(AttachmentAdded {
            attachment_id: id.0.into(),
            filename: "a.png".into(),
            hash: synap_domain::ContentHash::of(b"a"),
            size: 1,
            media_type: "image/png".into(),
        })),
        entity(EntityEvent::AttachmentRemoved(AttachmentRemoved {
            attachment_id: id.0.into(),
            filename: "a.png".into(),
            hash: synap_domain::ContentHash::of(b"a"),
        })),
        entity(EntityEvent::Deleted),
        entity(EntityEvent::Restored),
        entity(EntityEvent::TaskStatusChanged(FieldChange {
            old: TaskStatus::Todo,
            new: TaskStatus::Cancelled,
        })),
        entity(EntityEvent::TaskPriorityChanged(FieldChange {
            old: 1,
            new: 2,
        })),
        entity(EntityEvent::TaskDueChanged(FieldChange {
            old: None,
            new: None,
        })),
        EventPayload::Relation(RelationEvent::Created(RelationCreated {
            source_id: id,
            target_id: id,
            kind: "contains".into(),
        })),
        EventPayload::Relation(RelationEvent::Deleted),
        EventPayload::User(UserEvent::Created(UserCreated {
            email: "a@example.com".into(),
            role: "member".into(),
            display_name: None,
        })),
        EventPayload::User(UserEvent::TokenCreated(TokenCreated {
            token_id: id.0,
            name: "cli".into(),
            scopes: vec!["read".into(), "write".into()],
            expires_at: None,
        })),
        EventPayload::User(UserEvent::TokenRevoked(TokenRevoked { token_id: id.0 })),
        EventPayload::User(UserEvent::EventLogged(EventLogged {
            event_type: "opened".into(),
            data: serde_json::json!({}),
        })),
    ]
}

fn event_type_of(payload: &EventPayload) -> &'static str {
    // Deliberately exhaustive, without a wildcard arm.
    match payload {
        EventPayload::Entity(event) => match event {
            EntityEvent::Created(_)
            | EntityEvent::TitleChanged(_)
            | EntityEvent::ContentChanged(_)
            | EntityEvent::TypeChanged(_)
            | EntityEvent::TagsAdded(_)
            | EntityEvent::TagsRemoved(_)
            | EntityEvent::MetadataChanged(_)
            | EntityEvent::AttachmentAdded(_)
            | EntityEvent::AttachmentRemoved(_)
            | EntityEvent::Deleted
            | EntityEvent::Restored
            | EntityEvent::TaskStatusChanged(_)
            | EntityEvent::TaskPriorityChanged(_)
            | EntityEvent::TaskDueChanged(_) => payload.event_type(),
        },
        EventPayload::Relation(RelationEvent::Created(_) | RelationEvent::Deleted) => {
            payload.event_type()
        }
        EventPayload::User(
            UserEvent::Created(_)
            | UserEvent::TokenCreated(_)
            | UserEvent::TokenRevoked(_)
            | UserEvent::EventLogged(_),
        ) => payload.event_type(),
    }
}

#[test]
fn the_catalogue_lists_every_event_type_once_and_each_round_trips() {
    let catalogued: BTreeSet<&str> = CATALOGUE.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        catalogued.len(),
        CATALOGUE.len(),
        "a type is catalogued twice"
    );
    let payloads = one_of_each();
    let produced: BTreeSet<&str> = payloads.iter().map(event_type_of).collect();
    assert_eq!(produced, catalogued);
    for payload in payloads {
        let decoded = decode(
            payload.event_type(),
            payload.schema_version(),
            payload.data(),
        )
        .unwrap();
        assert_eq!(decoded, payload);
        let bytes = payload.binary_data().unwrap();
        let decoded = decode(
            payload.event_type(),
            payload.schema_version(),
            Binary(&bytes),
        )
        .unwrap();
        assert_eq!(decoded, payload);
    }
}

#[test]
fn absent_optional_fields_are_left_out_of_the_stored_data() {
    let payloads = one_of_each();
    let data_of = |event_type: &str| {
        payloads
            .iter()
            .find(|p| event_type_of(p) == event_type)
            .unwrap_or_else(|| panic!("one_of_each has no {event_type}"))
            .data()
    };
    assert_eq!(
        data_of("entity.created"),
        json!({"type": "note", "title": "Untitled"})
    );
    assert_eq!(
        data_of("entity.content_changed"),
        json!({"old_hash": null, "new_hash": null, "size": 0})
    );
    assert_eq!(data_of("entity.metadata_changed"), json!({"unset": ["a"]}));
    assert_eq!(
        data_of("task.due_changed"),
        json!({"old": null, "new": null})
    );
    assert_eq!(
        data_of("user.created"),
        json!({"email": "a@example.com", "role": "member"})
    );
    assert_eq!(
        data_of("user.token_created"),
        json!({
            "token_id": "0192f0c1-5a2e-7c3d-8f10-3b7e2a9d4c01",
            "name": "cli",
            "scopes": ["read", "write"]
        })
    );
}

#[test]
fn token_events_never_carry_a_secret() {
    for event_type in ["user.token_created", "user.token_revoked"] {
        let (text, _) = read_golden(&golden_path(event_type, 1));
        for word in ["secret", "hash", "prefix", "syn_"] {
            assert!(!text.contains(word), "{event_type} mentions {word}");
        }
    }
    // Unknown fields (a secret sent by mistake) are not kept on re-encoding.
    let payload = decode(
        "user.token_created",
        1,
        json!({
            "token_id": "0192f0c1-5a2e-7c3d-8f10-3b7e2a9d4c01",
            "name": "cli",
            "scopes": ["read"],
            "secret_hash": "ab12"
        }),
    )
    .unwrap();
    assert!(!payload.data().to_string().contains("secret"));
}

#[test]
fn task_completion_time_is_never_stored_in_a_payload() {
    let created = EventPayload::Entity(EntityEvent::Created(EntityCreated {
        entity_type: EntityType::Task,
        title: "Done".into(),
        content: None,
        tags: vec![],
        task: Some(synap_domain::TaskFields {
            status: TaskStatus::Done,
            priority: 0,
            due_at: None,
            completed_at: None,
        }),
        metadata: Map::new(),
    }));
    assert_eq!(
        created.data()["task"],
        json!({"status": "done", "priority": 0})
    );
}

#[test]
fn decode_refuses_unknown_types_and_versions() {
    let current = |name: &str| CATALOGUE.iter().find(|(n, _)| *n == name).unwrap().1;
    let error = decode("entity.renamed", 1, json!({})).unwrap_err();
    assert_eq!(
        (error.event_type.as_str(), error.schema_version),
        ("entity.renamed", 1)
    );
    let title = golden_path("entity.title_changed", current("entity.title_changed"));
    let (_, data) = read_golden(&title);
    assert!(decode("entity.title_changed", 0, data.clone()).is_err());
    assert!(
        decode(
            "entity.title_changed",
            current("entity.title_changed") + 1,
            data
        )
        .is_err()
    );
}

#[test]
fn decode_refuses_malformed_data() {
    let error = decode("entity.title_changed", 1, json!({"old": "a"})).unwrap_err();
    assert!(
        error.to_string().contains("entity.title_changed"),
        "{error}"
    );
    assert!(
        decode(
            "entity.content_changed",
            1,
            json!({"old_hash": "zz", "new_hash": null, "size": 1})
        )
        .is_err()
    );
    assert!(
        decode(
            "entity.type_changed",
            1,
            json!({"old": "note", "new": "diary"})
        )
        .is_err()
    );
    assert!(
        decode(
            "task.status_changed",
            1,
            json!({"old": "todo", "new": "Done"})
        )
        .is_err()
    );
    assert!(
        decode(
            "relation.created",
            1,
            json!({"source_id": "x", "target_id": "y", "kind": "k"})
        )
        .is_err()
    );
}
