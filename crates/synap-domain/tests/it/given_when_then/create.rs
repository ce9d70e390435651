//! `EntityCommand::Create`.

use crate::support::*;
use serde_json::{Map, json};
use synap_domain::event::EntityCreated;
use synap_domain::limits::{
    CONTENT_BYTES_MAX, METADATA_BYTES_MAX, METADATA_KEY_CHARS_MAX, TAG_CHARS_MAX,
    TAGS_PER_ENTITY_MAX, TITLE_CHARS_MAX,
};
use synap_domain::{
    ContentRef, CreateEntity, DomainError, EntityCommand, EntityEvent, EntityType, NewContent,
    TaskFields, TaskInput, TaskStatus,
};

fn create(edit: impl FnOnce(&mut CreateEntity)) -> EntityCommand {
    let mut command = CreateEntity {
        entity_type: EntityType::Note,
        title: None,
        content: None,
        tags: Vec::new(),
        task: None,
        metadata: Map::new(),
    };
    edit(&mut command);
    EntityCommand::Create(command)
}

fn markdown(body: &str) -> Option<NewContent> {
    Some(NewContent::markdown(body))
}

#[test]
fn create_note_derives_the_title_from_the_first_content_line() {
    let state = nothing()
        .when(EntityCommand::Create(CreateEntity::note(
            "# Meeting notes\n\nAgenda: budget",
        )))
        .then(vec![note(
            "Meeting notes",
            "# Meeting notes\n\nAgenda: budget",
        )]);

    assert_eq!(state.id, ID);
    assert_eq!(state.user_id, USER);
    assert_eq!(state.version, 1);
    assert_eq!(state.entity_type, EntityType::Note);
    assert_eq!(state.title, "Meeting notes");
    assert_eq!(state.created_at, at(1));
    assert_eq!(state.updated_at, at(1));
    assert_eq!(state.deleted_at, None);
    assert!(state.tags.is_empty());
    assert_eq!(state.task, None);
}

#[test]
fn create_refers_to_content_by_sha256_size_and_default_media_type() {
    let events = nothing()
        .when(EntityCommand::Create(CreateEntity::note("hello")))
        .events();
    let EntityEvent::Created(EntityCreated {
        content: Some(content),
        ..
    }) = &events[0]
    else {
        panic!("expected entity.created with content, got {events:?}");
    };
    assert_eq!(
        content,
        &ContentRef {
            hash: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
                .parse()
                .unwrap(),
            size: 5,
            media_type: "text/markdown".into(),
        }
    );
}

#[test]
fn create_keeps_an_explicit_title_trimmed() {
    nothing()
        .when(create(|c| {
            c.title = Some("  Quarterly plan  ".into());
            c.content = markdown("# Something else");
        }))
        .then(vec![note("Quarterly plan", "# Something else")]);
}

#[test]
fn create_with_a_blank_title_derives_it_from_the_content() {
    nothing()
        .when(create(|c| {
            c.title = Some("   ".into());
            c.content = markdown("\n\n## Shopping list  \n- milk");
        }))
        .then(vec![note(
            "Shopping list",
            "\n\n## Shopping list  \n- milk",
        )]);
}

#[test]
fn create_with_a_long_first_line_truncates_the_derived_title() {
    let body = format!("{}\nmore", "word ".repeat(30));
    let expected = format!("{}…", "word ".repeat(10).trim_end());
    nothing()
        .when(EntityCommand::Create(CreateEntity::note(body.clone())))
        .then(vec![note(&expected, &body)]);
}

#[test]
fn create_without_content_is_untitled_and_has_no_content() {
    let state =
        nothing()
            .when(create(|_| {}))
            .then(vec![created(EntityType::Note, "Untitled", None)]);
    assert_eq!(state.content, None);
}

#[test]
fn create_with_an_empty_body_stores_no_content() {
    nothing()
        .when(create(|c| c.content = markdown("")))
        .then(vec![created(EntityType::Note, "Untitled", None)]);
}

#[test]
fn create_keeps_a_given_media_type() {
    let body = "plain words";
    let state = nothing()
        .when(create(|c| {
            c.content = Some(NewContent {
                body: body.into(),
                media_type: Some("text/plain".into()),
            })
        }))
        .then(vec![created_with(note("plain words", body), |e| {
            e.content.as_mut().unwrap().media_type = "text/plain".into();
        })]);
    assert_eq!(state.content.unwrap().media_type, "text/plain");
}

#[test]
fn create_each_entity_type() {
    for entity_type in EntityType::ALL {
        nothing()
            .when(create(|c| {
                c.entity_type = entity_type;
                c.title = Some("Thing".into());
            }))
            .then(vec![created(entity_type, "Thing", None)]);
    }
}

#[test]
fn create_task_gets_default_task_fields() {
    let state = nothing()
        .when(create(|c| {
            c.entity_type = EntityType::Task;
            c.title = Some("Call the plumber".into());
        }))
        .then(vec![task("Call the plumber")]);
    assert_eq!(
        state.visible_task(),
        Some(&TaskFields {
            status: TaskStatus::Todo,
            priority: 0,
            due_at: None,
            completed_at: None
        })
    );
}

#[test]
fn create_task_with_given_status_priority_and_due_date() {
    let due = ts("2025-03-01T17:00:00Z");
    nothing()
        .when(create(|c| {
            c.entity_type = EntityType::Task;
            c.title = Some("File taxes".into());
            c.task = Some(TaskInput {
                status: Some(TaskStatus::InProgress),
                priority: Some(3),
                due_at: Some(due),
            });
        }))
        .then(vec![created_with(task("File taxes"), |e| {
            e.task = Some(TaskFields {
                status: TaskStatus::InProgress,
                priority: 3,
                due_at: Some(due),
                completed_at: None,
            });
        })]);
}

#[test]
fn create_task_already_done_is_completed_when_recorded() {
    let state = nothing()
        .when(create(|c| {
            c.entity_type = EntityType::Task;
            c.title = Some("Done already".into());
            c.task = Some(TaskInput {
                status: Some(TaskStatus::Done),
                ..TaskInput::default()
            });
        }))
        .then(vec![created_with(task("Done already"), |e| {
            e.task.as_mut().unwrap().status = TaskStatus::Done;
        })]);
    // The payload carries no completion time; the fold takes it from recorded_at.
    assert_eq!(state.task.unwrap().completed_at, Some(at(1)));
}

#[test]
fn create_normalises_tags_drops_case_duplicates_and_uses_the_users_spelling() {
    nothing()
        .with_user_tag("Ideas")
        .when(create(|c| {
            c.title = Some("Tagged".into());
            c.tags = strings(&["#Rust", "rust", "  ideas ", "# spaced out ", "RUST"]);
        }))
        .then(vec![created_with(
            created(EntityType::Note, "Tagged", None),
            |e| {
                e.tags = strings(&["Rust", "Ideas", "spaced out"]);
            },
        )]);
}

#[test]
fn create_with_metadata() {
    let metadata =
        object(json!({"source_url": "https://example.com", "rating": 4, "nested": {"a": [1, 2]}}));
    let state = nothing()
        .when(create(|c| {
            c.title = Some("Bookmark".into());
            c.metadata = metadata.clone();
        }))
        .then(vec![created_with(
            created(EntityType::Note, "Bookmark", None),
            |e| e.metadata = metadata.clone(),
        )]);
    assert_eq!(state.metadata, metadata);
}

#[test]
fn create_at_every_limit_is_accepted() {
    let title = "t".repeat(TITLE_CHARS_MAX);
    let tags: Vec<String> = (0..TAGS_PER_ENTITY_MAX)
        .map(|i| format!("{i:0>width$}", width = TAG_CHARS_MAX))
        .collect();
    let key = "k".repeat(METADATA_KEY_CHARS_MAX);
    // {"<key>":"<value>"} is key + value + 7 bytes of JSON.
    let value = "v".repeat(METADATA_BYTES_MAX - METADATA_KEY_CHARS_MAX - 7);
    let metadata = object(json!({ key: value }));
    assert_eq!(
        serde_json::to_vec(&metadata).unwrap().len(),
        METADATA_BYTES_MAX
    );
    let events = nothing()
        .when(create(|c| {
            c.title = Some(title.clone());
            c.content = markdown(&"x".repeat(CONTENT_BYTES_MAX));
            c.tags = tags.clone();
            c.metadata = metadata.clone();
        }))
        .events();
    let EntityEvent::Created(created) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(created.title, title);
    assert_eq!(
        created.content.as_ref().unwrap().size,
        CONTENT_BYTES_MAX as u64
    );
    assert_eq!(created.tags, tags);
    assert_eq!(created.metadata, metadata);
}

// --- rejections -----------------------------------------------------------------

#[test]
fn create_for_an_existing_id_is_refused() {
    given([note("Old", "old")])
        .when(EntityCommand::Create(CreateEntity::note("new")))
        .then_rejected(DomainError::AlreadyExists(ID));
}

#[test]
fn create_for_a_deleted_id_is_refused_too() {
    given([note("Old", "old"), EntityEvent::Deleted])
        .when(EntityCommand::Create(CreateEntity::note("new")))
        .then_rejected(DomainError::AlreadyExists(ID));
}

#[test]
fn create_with_a_title_over_300_chars_is_refused() {
    let message = nothing()
        .when(create(|c| c.title = Some("é".repeat(TITLE_CHARS_MAX + 1))))
        .then_invalid("title");
    assert!(message.contains("301"), "{message}");
}

#[test]
fn create_with_a_multi_line_title_is_refused() {
    nothing()
        .when(create(|c| c.title = Some("two\nlines".into())))
        .then_invalid("title");
    nothing()
        .when(create(|c| c.title = Some("tab\there".into())))
        .then_invalid("title");
}

#[test]
fn create_with_content_over_10_mib_is_refused() {
    nothing()
        .when(create(|c| {
            c.content = markdown(&"x".repeat(CONTENT_BYTES_MAX + 1))
        }))
        .then_invalid("content");
}

#[test]
fn create_with_an_invalid_media_type_is_refused() {
    for media_type in [
        "markdown",
        "text/",
        "/plain",
        "text/plain; charset=utf-8",
        "tëxt/plain",
    ] {
        nothing()
            .when(create(|c| {
                c.content = Some(NewContent {
                    body: "body".into(),
                    media_type: Some(media_type.into()),
                })
            }))
            .then_invalid("media_type");
    }
}

#[test]
fn create_with_an_empty_tag_is_refused() {
    for tag in ["", "   ", "#", " # "] {
        nothing()
            .when(create(|c| c.tags = strings(&[tag])))
            .then_invalid("tags");
    }
}

#[test]
fn create_with_a_tag_over_64_chars_is_refused() {
    nothing()
        .when(create(|c| c.tags = vec!["a".repeat(TAG_CHARS_MAX + 1)]))
        .then_invalid("tags");
}

#[test]
fn create_with_a_tag_holding_a_comma_or_control_character_is_refused() {
    nothing()
        .when(create(|c| c.tags = strings(&["a,b"])))
        .then_invalid("tags");
    nothing()
        .when(create(|c| c.tags = strings(&["a\u{7}b"])))
        .then_invalid("tags");
}

#[test]
fn create_with_more_than_64_tags_is_refused() {
    let tags: Vec<String> = (0..=TAGS_PER_ENTITY_MAX)
        .map(|i| format!("tag{i}"))
        .collect();
    nothing()
        .when(create(|c| c.tags = tags))
        .then_invalid("tags");
}

#[test]
fn create_with_metadata_over_16_kib_is_refused() {
    let value = "v".repeat(METADATA_BYTES_MAX);
    nothing()
        .when(create(|c| c.metadata = object(json!({ "k": value }))))
        .then_invalid("metadata");
}

#[test]
fn create_with_an_invalid_metadata_key_is_refused() {
    for key in [
        String::new(),
        "k".repeat(METADATA_KEY_CHARS_MAX + 1),
        "new\nline".into(),
    ] {
        nothing()
            .when(create(|c| c.metadata = object(json!({ key: 1 }))))
            .then_invalid("metadata");
    }
}

#[test]
fn create_task_with_priority_over_3_is_refused() {
    nothing()
        .when(create(|c| {
            c.entity_type = EntityType::Task;
            c.task = Some(TaskInput {
                priority: Some(4),
                ..TaskInput::default()
            });
        }))
        .then_invalid("priority");
}

#[test]
fn create_with_task_fields_on_a_non_task_is_refused() {
    nothing()
        .when(create(|c| {
            c.entity_type = EntityType::Note;
            c.task = Some(TaskInput::default());
        }))
        .then_invalid("task");
}
