//! Entities: create, read, list with filters and cursors, change (one command,
//! several changes), If-Match and expected_version, delete/restore, time travel,
//! history, revert, content, tags, idempotent creation.

use super::TestApp;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

#[tokio::test]
async fn create_answers_201_with_etag_location_and_the_entity() {
    let t = TestApp::new().await;
    let alice = t.user("alice@example.com").await;
    let reply = t
        .post(
            "/v1/entities",
            &alice,
            json!({"type": "note", "content": "# Groceries\n\nmilk, eggs", "tags": ["#home", "Shopping"], "metadata": {"color": "blue"}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let entity = reply.json();
    let id = entity["id"].as_str().unwrap();
    assert_eq!(reply.header("etag"), Some("\"1\""));
    assert_eq!(
        reply.header("location"),
        Some(format!("/v1/entities/{id}").as_str())
    );
    assert_eq!(entity["type"], "note");
    assert_eq!(entity["title"], "Groceries");
    assert_eq!(entity["version"], 1);
    assert_eq!(entity["tags"], json!(["home", "Shopping"]));
    assert_eq!(entity["metadata"], json!({"color": "blue"}));
    assert_eq!(entity["content"]["media_type"], "text/markdown");
    assert_eq!(entity["content"]["size"], 23);
    assert!(entity.get("deleted_at").is_none());
    assert!(entity.get("task").is_none());
    assert_eq!(
        Uuid::parse_str(id).unwrap().get_version_num(),
        7,
        "server ids are UUIDv7"
    );

    let read = t.get(&format!("/v1/entities/{id}"), &alice).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.header("etag"), Some("\"1\""));
    assert_eq!(read.json(), entity);

    let content = t.get(&format!("/v1/entities/{id}/content"), &alice).await;
    assert_eq!(content.status, StatusCode::OK);
    assert_eq!(
        content.header("content-type"),
        Some("text/markdown; charset=utf-8")
    );
    assert_eq!(content.text(), "# Groceries\n\nmilk, eggs");
    assert_eq!(
        content.header("etag").map(str::to_string),
        Some(format!(
            "\"{}\"",
            entity["content"]["hash"].as_str().unwrap()
        ))
    );
}

#[tokio::test]
async fn tasks_carry_task_fields_and_other_media_types_are_served_as_given() {
    let t = TestApp::new().await;
    let alice = t.user("alice@example.com").await;
    let task = t
        .create(
            &alice,
            json!({"type": "task", "title": "File taxes", "task": {"status": "in_progress", "priority": 2, "due_at": "2025-04-15T00:00:00Z"}}),
        )
        .await;
    assert_eq!(task["task"]["status"], "in_progress");
    assert_eq!(task["task"]["priority"], 2);
    assert_eq!(task["task"]["due_at"], "2025-04-15T00:00:00Z");
    assert!(task.get("content").is_none());
    let content = t
        .get(
            &format!("/v1/entities/{}/content", task["id"].as_str().unwrap()),
            &alice,
        )
        .await;
    assert_eq!(content.status, StatusCode::NO_CONTENT);

    let plain = t
        .create(
            &alice,
            json!({"type": "page", "content": "{\"a\": 1}", "media_type": "application/json"}),
        )
        .await;
    let content = t
        .get(
            &format!("/v1/entities/{}/content", plain["id"].as_str().unwrap()),
            &alice,
        )
        .await;
    assert_eq!(content.header("content-type"), Some("application/json"));
    assert_eq!(content.text(), "{\"a\": 1}");
}

#[tokio::test]
async fn lists_filter_and_page_with_cursors() {
    let t = TestApp::new().await;
    let alice = t.user("alice@example.com").await;
    let mut notes = Vec::new();
    for i in 0..5 {
        t.tick(1);
        notes.push(t.note(&alice, &format!("note {i}")).await);
    }
    t.tick(1);
    let since = t.now();
    t.tick(1);
    let task = t
        .create(&alice, json!({"type": "task", "title": "a task", "tags": ["work"], "task": {"status": "done"}}))
        .await;
    let task_id = task["id"].as_str().unwrap().to_string();

    let all = t.get("/v1/entities", &alice).await.json();
    assert_eq!(all["items"].as_array().unwrap().len(), 6);
    assert_eq!(
        all["items"][0]["id"],
        task_id.as_str(),
        "most recently updated first"
    );
    assert!(all.get("next_cursor").is_none());

    // Pages of 2, following the cursor, visit every entity once.
    let mut seen = Vec::new();
    let mut uri = "/v1/entities?limit=2".to_string();
    loop {
        let page = t.get(&uri, &alice).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        let page = page.json();
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => uri = format!("/v1/entities?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 6);

    let ids = |v: Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(t.get("/v1/entities?type=task", &alice).await.json()),
        vec![task_id.clone()]
    );
    assert_eq!(
        ids(t.get("/v1/entities?status=done", &alice).await.json()),
        vec![task_id.clone()]
    );
    assert_eq!(
        ids(t.get("/v1/entities?tag=WORK", &alice).await.json()),
        vec![task_id.clone()]
    );
    assert!(ids(t.get("/v1/entities?status=todo", &alice).await.json()).is_empty());
    let since = t
        .get(&format!("/v1/entities?updated_since={since}"), &alice)
        .await;
    assert_eq!(ids(since.json()), vec![task_id.clone()]);

    // Deleted entities leave the default list and appear with deleted=true.
    let reply = t
        .delete(&format!("/v1/entities/{}", notes[0]), &alice)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        t.get("/v1/entities", &alice).await.json()["items"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        ids(t.get("/v1/entities?deleted=true", &alice).await.json()),
        vec![notes[0].clone()]
    );

    t.get("/v1/entities?limit=0", &alice)
        .await
        .problem(StatusCode::BAD_REQUEST, "invalid_query");
    t.get("/v1/entities?limit=501", &alice)
        .await
        .problem(StatusCode::BAD_REQUEST, "invalid_query");
    t.get("/v1/entities?cursor=bogus", &alice)
        .await
        .problem(StatusCode::BAD_REQUEST, "invalid_input");
    t.get("/v1/entities?type=recipe", &alice)
        .await
        .problem(StatusCode::BAD_REQUEST, "invalid_query");
    t.get("/v1/entities?updated_since=yesterday", &alice)
        .await
        .problem(StatusCode::BAD_REQUEST, "invalid_query");
}

#[tokio::test]
async fn patch_applies_several_changes_in_one_command_with_provenance() {
    let t = TestApp::new().await;
    let alice = t.user("alice@example.com").await;
    let id = t.note(&alice, "first draft").await;
    let reply = t
        .send_with(
            Method::PATCH,
            &format!("/v1/entities/{id}"),
            Some(&alice),
            Some(json!({
                "type": "task",
                "title": "Ship it",
                "content": "second draft",
                "add_tags": ["release"],
                "metadata_set": {"k": 1},
                "status": "in_progress",
                "priority": 3,
                "due_at": "2025-02-01T00:00:00Z"
            })),
            &[("x-request-id", "req-42")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let entity = reply.json();
    let version = entity["version"].as_u64().unwrap();
    assert_eq!(
        reply.header("etag"),
        Some(format!("\"{version}\"").as_str())
    );
    assert_eq!(entity["type"], "task");
    assert_eq!(entity["title"], "Ship it");
    assert_eq!(entity["tags"], json!(["release"]));
    assert_eq!(entity["metadata"], json!({"k": 1}));
    assert_eq!(entity["task"]["status"], "in_progress");
    assert_eq!(entity["task"]["priority"], 3);
    assert_eq!(entity["task"]["due_at"], "2025-02-01T00:00:00Z");
    assert!(version >= 8, "one event per change: {version}");

    // One command: every event of it carries the same provenance, and history
    // shows them as consecutive versions.
    let history = t
        .get(&format!("/v1/entities/{id}/history"), &alice)
        .await
        .json();
    let items = history["items"].as_array().unwrap();
    assert_eq!(items.len() as u64, version);
    for (i, event) in items.iter().enumerate() {
        assert_eq!(event["version"], i as u64 + 1);
        assert_eq!(event["aggregate_id"], id.as_str());
        assert_eq!(event["metadata"]["source"], "api");
        assert!(
            event["metadata"]["actor"]
                .as_str()
                .unwrap()
                .starts_with("token:")
        );
    }
    assert_eq!(items[0]["type"], "entity.created");
    assert!(items[0]["metadata"].get("request_id").is_none());
    for event in &items[1..] {
        assert_eq!(event["metadata"]["request_id"], "req-42");
    }

    // Null removes content and clears the due date; an empty body changes nothing.
    let cleared = t
        .patch(&format!("/v1/entities/{id}"), &alice, json!({"content": null, "due_at": null, "remove_tags": ["RELEASE"], "metadata_unset": ["k"]}))
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.text());
    let cleared = cleared.json();
    assert!(cleared.get("content").is_none());
    assert!(cleared["task"].get("due_at").is_none());
    assert_eq!(cleared["tags"], json!([]));
    assert_eq!(cleared["metadata"], json!({}));
    let before = t.head().await;
    let same = t
        .patch(&format!("/v1/entities/{id}"), &alice, json!({}))
        .await;
    assert_eq!(same.status, StatusCode::OK);
    assert_eq!(same.json()["version"], cleared["version"]);
    assert_eq!(t.head().await, before);
}

#[tokio::test]
async fn if_match_and_expected_version_guard_changes() {
    let t = TestApp::new().await;
    let alice = t.user("alice@example.com").await;
    let id = t.note(&alice, "v1").await;
    let uri = format!("/v1/entities/{id}");
    let before = t.head().await;

    let stale = t
        .send_with(
            Method::PATCH,
            &uri,
            Some(&alice),
            Some(json!({"title": "x"})),
            &[("if-match", "\"7\"")],
        )
        .await;
    let problem = stale.problem(StatusCode::PRECONDITION_FAILED, "precondition_failed");
    assert_eq!(problem["current_version"], 1);
    assert_eq!(stale.header("etag"), Some("\"1\""));
    let garbage = t
        .send_with(
            Method::PATCH,
            &uri,
            Some(&alice),
            Some(json!({"title": "x"})),
            &[("if-match", "nonsense")],
        )
        .await;
    garbage.problem(StatusCode::PRECONDITION_FAILED, "precondition_failed");
    let stale_body = t
        .patch(&uri, &alice, json!({"title": "x", "expected_version": 5}))
        .await;
    assert_eq!(
        stale_body.problem(StatusCode::CONFLICT, "conflict")["current_version"],
        1
    );
    // Both stale: the header's precondition is decided first.
    t.send_with(
        Method::PATCH,
        &uri,
        Some(&alice),
        Some(json!({"title": "x", "expected_version": 5})),
        &[("if-match", "\"9\"")],
    )
    .await
    .problem(StatusCode::PRECONDITION_FAILED, "precondition_failed");
    let stale_delete = t
        .send_with(
            Method::DELETE,
            &uri,
            Some(&alice),
            None,
            &[("if-match", "\"2\"")],
        )
        .await;
    stale_delete.problem(StatusCode::PRECONDITION_FAILED, "precondition_failed");
    assert_eq!(t.head().await, before, "refused changes store nothing");

    let fresh = t
        .send_with(
            Method::PATCH,
            &uri,
            Some(&alice),
            Some(json!({"title": "x"})),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text());
    assert_eq!(fresh.header("etag"), Some("\"2\""));
    let weak_list = t
        .send_with(
            Method::PATCH,
            &uri,
            Some(&alice),
            Some(json!({"title": "y"})),
            &[("if-match", "W/\"1\", \"2\"")],
        )
        .await;
    assert_eq!(weak_list.status, StatusCode::OK);
    let any = t
        .send_with(
            Method::PATCH,
            &uri,
            Some(&alice),
            Some(json!({"title": "z", "expected_version": 3})),
            &[("if-match", "*")],
        )
        .await;
    assert_eq!(any.status, StatusCode::OK, "{}", any.text());
    assert_eq!(any.json()["version"], 4);
}

#[tokio::test]
async fn time_travel_reads_past_versions_and_moments() {
    let t = TestApp::new().await;
    let alice = t.user("alice@example.com").await;
    let created_at = t.now();
    let id = t.note(&alice, "# Old title\n\nold body").await;
    t.tick(60);
    let between = t.now();
    t.tick(60);
    t.patch(
        &format!("/v1/entities/{id}"),
        &alice,
        json!({"content": "# New title\n\nnew body"}),
    )
    .await;
    let uri = format!("/v1/entities/{id}");

    let v1 = t.get(&format!("{uri}?version=1"), &alice).await;
    assert_eq!(v1.status, StatusCode::OK, "{}", v1.text());
    assert_eq!(v1.header("etag"), Some("\"1\""));
    assert_eq!(v1.json()["title"], "Old title");
    let then = t.get(&format!("{uri}?at={between}"), &alice).await.json();
    assert_eq!(then["title"], "Old title");
    assert_eq!(then["version"], 1);
    let now = t.get(&uri, &alice).await.json();
    assert_eq!(now["title"], "New title");
    assert_eq!(
        now["version"], 3,
        "content and the derived title: two events"
    );

    let body = t.get(&format!("{uri}/content?version=1"), &alice).await;
    assert_eq!(body.text(), "# Old title\n\nold body");
    let body = t.get(&format!("{uri}/content?at={between}"), &alice).await;
    assert_eq!(body.text(), "# Old title\n\nold body");
    let body = t.get(&format!("{uri}/content"), &alice).await;
    assert_eq!(body.text(), "# New title\n\nnew body");

    let missing = t.get(&format!("{uri}?version=99"), &alice).await;
    assert_eq!(
        missing.problem(StatusCode::NOT_FOUND, "not_found")["current_version"],
        3
    );
    let before = created_at - jiff::SignedDuration::from_secs(1);
    t.get(&format!("{uri}?at={before}"), &alice)
        .await
        .problem(StatusCode::NOT_FOUND, "not_found");
    for query in [
        format!("at={between}&version=1"),
        "version=0".into(),
        "version=abc".into(),
        "version=-1".into(),
        "at=2025-13-01T00:00:00Z".into(),
        "at=yesterday".into(),
        "at=2025-01-01".into(),
        "when=now".into(),
    ] {
        t.get(&format!("{uri}?{query}"), &alice)
            .await
            .problem(StatusCode::BAD_REQUEST, "invalid_query");
        t.get(&format!("{uri}/content?{query}"), &alice)
            .await
            .problem(StatusCode::BAD_REQUEST, "invalid_query");
    }
}

#[tokio::test]
async fn revert_restores_an_earlier_state_and_keeps_history() {
    let t = TestApp::new().await;
    let alice = t.user("alice@example.com").await;
    let id = t
        .create(
            &alice,
            json!({"type": "note", "title": "One", "tags": ["a"]}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let uri = format!("/v1/entities/{id}");
    t.patch(&uri, &alice, json!({"title": "Two", "add_tags": ["b"]}))
        .await;
    let reverted = t
        .post(&format!("{uri}/revert"), &alice, json!({"version": 1}))
        .await;
    assert_eq!(reverted.status, StatusCode::OK, "{}", reverted.text());
    let reverted = reverted.json();
    assert_eq!(reverted["title"], "One");
    assert_eq!(reverted["tags"], json!(["a"]));
    assert_eq!(reverted["version"], 5);
    let history = t
        .get(&format!("{uri}/history?limit=2"), &alice)
        .await
        .json();
    assert_eq!(history["items"].as_array().unwrap().len(), 2);
    let next = history["next_cursor"].as_str().unwrap();
    let rest = t
        .get(&format!("{uri}/history?limit=10&cursor={next}"), &alice)
        .await
        .json();
    assert_eq!(rest["items"].as_array().unwrap().len(), 3);
    assert!(rest.get("next_cursor").is_none());

    let bad = t
        .post(&format!("{uri}/revert"), &alice, json!({"version": 9}))
        .await;
    assert_eq!(
        bad.problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_version")["current_version"],
        5
    );
    t.post(&format!("{uri}/revert"), &alice, json!({"version": 0}))
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_version");
}

#[tokio::test]
async fn delete_and_restore_are_soft() {
    let t = TestApp::new().await;
    let alice = t.user("alice@example.com").await;
    let id = t.note(&alice, "to be deleted").await;
    let uri = format!("/v1/entities/{id}");
    let deleted = t.delete(&uri, &alice).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.header("etag"), Some("\"2\""));
    let deleted = deleted.json();
    assert!(deleted["deleted_at"].is_string());
    // Deleting again changes nothing; reading shows the deleted entity.
    assert_eq!(t.delete(&uri, &alice).await.json()["version"], 2);
    assert!(t.get(&uri, &alice).await.json()["deleted_at"].is_string());
    t.patch(&uri, &alice, json!({"title": "x"}))
        .await
        .problem(StatusCode::CONFLICT, "entity_deleted");
    let restored = t.post(&format!("{uri}/restore"), &alice, json!({})).await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.text());
    let restored = restored.json();
    assert!(restored.get("deleted_at").is_none());
    assert_eq!(restored["version"], 3);
    let restore_without_body = t
        .send(Method::POST, &format!("{uri}/restore"), Some(&alice), None)
        .await;
    assert_eq!(restore_without_body.status, StatusCode::OK);
    assert_eq!(restore_without_body.json()["version"], 3);
}

#[tokio::test]
async fn idempotency_key_and_client_ids_make_creation_retry_safe() {
    let t = TestApp::new().await;
    let alice = t.user("alice@example.com").await;
    let bob = t.user("bob@example.com").await;
    let key = Uuid::now_v7().to_string();
    let body = json!({"type": "note", "content": "once"});
    let first = t
        .send_with(
            Method::POST,
            "/v1/entities",
            Some(&alice),
            Some(body.clone()),
            &[("idempotency-key", &key)],
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert!(first.header("idempotent-replayed").is_none());
    let head = t.head().await;
    let retry = t
        .send_with(
            Method::POST,
            "/v1/entities",
            Some(&alice),
            Some(body.clone()),
            &[("idempotency-key", &key)],
        )
        .await;
    assert_eq!(retry.status, StatusCode::CREATED);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.json(), first.json(), "the first result");
    assert_eq!(retry.header("location"), first.header("location"));
    assert_eq!(t.head().await, head, "a retry writes nothing");

    // Keys are per user: bob's same key creates bob's own note.
    let bobs = t
        .send_with(
            Method::POST,
            "/v1/entities",
            Some(&bob),
            Some(body.clone()),
            &[("idempotency-key", &key)],
        )
        .await;
    assert_eq!(bobs.status, StatusCode::CREATED);
    assert!(bobs.header("idempotent-replayed").is_none());
    assert_ne!(bobs.json()["id"], first.json()["id"]);

    // A key first used for a link cannot replay as an entity.
    let a = t.note(&alice, "a").await;
    let b = t.note(&alice, "b").await;
    let link_key = "link-1";
    let linked = t
        .send_with(
            Method::POST,
            "/v1/relations",
            Some(&alice),
            Some(json!({"source_id": a, "target_id": b})),
            &[("idempotency-key", link_key)],
        )
        .await;
    assert_eq!(linked.status, StatusCode::CREATED);
    t.send_with(
        Method::POST,
        "/v1/entities",
        Some(&alice),
        Some(body.clone()),
        &[("idempotency-key", link_key)],
    )
    .await
    .problem(StatusCode::CONFLICT, "idempotency_key_reused");
    t.send_with(
        Method::POST,
        "/v1/entities",
        Some(&alice),
        Some(body.clone()),
        &[("idempotency-key", "has space")],
    )
    .await
    .problem(StatusCode::BAD_REQUEST, "invalid_idempotency_key");

    // A client-chosen UUIDv7 id is kept; sending it again replays.
    let client_id = Uuid::now_v7().to_string();
    let offline = t
        .post(
            "/v1/entities",
            &alice,
            json!({"type": "idea", "title": "offline", "id": client_id}),
        )
        .await;
    assert_eq!(offline.status, StatusCode::CREATED, "{}", offline.text());
    assert_eq!(offline.json()["id"], client_id.as_str());
    let head = t.head().await;
    let again = t
        .post(
            "/v1/entities",
            &alice,
            json!({"type": "idea", "title": "offline", "id": client_id}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(t.head().await, head);
    // The id is taken: with another key, by alice or by bob, the answer is the same.
    let taken_by_owner = t
        .send_with(
            Method::POST,
            "/v1/entities",
            Some(&alice),
            Some(json!({"type": "idea", "id": client_id})),
            &[("idempotency-key", "other")],
        )
        .await;
    let taken_by_other = t
        .post(
            "/v1/entities",
            &bob,
            json!({"type": "idea", "id": client_id}),
        )
        .await;
    let owner = taken_by_owner.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let other = taken_by_other.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(owner, other);
    assert_eq!(owner["field"], "id");
    let v4 = "0f8fad5b-d9cb-469f-a165-70867728950e".to_string();
    let not_v7 = t
        .post("/v1/entities", &alice, json!({"type": "idea", "id": v4}))
        .await;
    assert_eq!(
        not_v7.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "id"
    );
    let not_uuid = t
        .post("/v1/entities", &alice, json!({"type": "idea", "id": "abc"}))
        .await;
    assert_eq!(
        not_uuid.problem(StatusCode::BAD_REQUEST, "invalid_id")["field"],
        "id"
    );
}

#[tokio::test]
async fn tags_are_counted_over_live_entities() {
    let t = TestApp::new().await;
    let alice = t.user("alice@example.com").await;
    t.create(
        &alice,
        json!({"type": "note", "title": "a", "tags": ["Rust", "db"]}),
    )
    .await;
    t.create(
        &alice,
        json!({"type": "note", "title": "b", "tags": ["rust"]}),
    )
    .await;
    let gone = t
        .create(
            &alice,
            json!({"type": "note", "title": "c", "tags": ["db", "old"]}),
        )
        .await;
    t.delete(
        &format!("/v1/entities/{}", gone["id"].as_str().unwrap()),
        &alice,
    )
    .await;
    let tags = t.get("/v1/tags", &alice).await;
    assert_eq!(tags.status, StatusCode::OK);
    assert_eq!(
        tags.json(),
        json!({"items": [{"name": "Rust", "count": 2}, {"name": "db", "count": 1}]})
    );
}

#[tokio::test]
async fn bodies_over_axums_default_but_under_the_limit_are_accepted() {
    let t = TestApp::new().await;
    let alice = t.user("alice@example.com").await;
    let body = "word ".repeat(600 * 1024); // 3 MB: over axum's 2 MB default
    let entity = t
        .create(&alice, json!({"type": "page", "content": body}))
        .await;
    assert_eq!(entity["content"]["size"], body.len());
    let content = t
        .get(
            &format!("/v1/entities/{}/content", entity["id"].as_str().unwrap()),
            &alice,
        )
        .await;
    assert_eq!(content.body.len(), body.len());
}
