//! `POST /v1/capture`: the note exists at once.

use super::TestApp;
use axum::http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn capture_stores_the_note_at_once() {
    let t = TestApp::new().await;
    let alice = t.user("alice@example.com").await;
    let reply = t
        .post(
            "/v1/capture",
            &alice,
            json!({"text": "call mom about the trip", "context": {"app": "phone"}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
    let captured = reply.json();
    let id = captured["entity_id"].as_str().unwrap();
    // The enrichment run was queued with the note (no worker runs in this test).
    let run_id = captured["run_id"].as_str().expect("a run id");
    let run = t
        .get(&format!("/v1/workflows/runs/{run_id}"), &alice)
        .await
        .json();
    assert_eq!(run["workflow"], "capture.enrich", "{run}");
    assert_eq!(run["status"], "queued");
    assert_eq!(run["input"]["entity_id"], id);
    assert_eq!(
        reply.header("location"),
        Some(format!("/v1/entities/{id}").as_str())
    );
    let note = t.get(&format!("/v1/entities/{id}"), &alice).await.json();
    assert_eq!(note["type"], "note");
    assert_eq!(note["title"], "call mom about the trip");
    assert_eq!(
        note["metadata"],
        json!({"capture_context": {"app": "phone"}})
    );
    let body = t.get(&format!("/v1/entities/{id}/content"), &alice).await;
    assert_eq!(body.text(), "call mom about the trip");

    let plain = t
        .post("/v1/capture", &alice, json!({"text": "no context"}))
        .await;
    assert_eq!(plain.status, StatusCode::ACCEPTED);
    let id = plain.json()["entity_id"].as_str().unwrap().to_string();
    assert_eq!(
        t.get(&format!("/v1/entities/{id}"), &alice).await.json()["metadata"],
        json!({})
    );
}

#[tokio::test]
async fn capture_refuses_blank_text_and_large_context_and_replays_retries() {
    let t = TestApp::new().await;
    let alice = t.user("alice@example.com").await;
    let head = t.head().await;
    let blank = t.post("/v1/capture", &alice, json!({"text": "   "})).await;
    assert_eq!(
        blank.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "text"
    );
    let big = t
        .post(
            "/v1/capture",
            &alice,
            json!({"text": "x", "context": {"blob": "y".repeat(20_000)}}),
        )
        .await;
    assert_eq!(
        big.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "context"
    );
    t.post("/v1/capture", &alice, json!({"content": "old field name"}))
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(t.head().await, head);

    let first = t
        .send_with(
            Method::POST,
            "/v1/capture",
            Some(&alice),
            Some(json!({"text": "once"})),
            &[("idempotency-key", "cap-1")],
        )
        .await;
    let head = t.head().await;
    let again = t
        .send_with(
            Method::POST,
            "/v1/capture",
            Some(&alice),
            Some(json!({"text": "once"})),
            &[("idempotency-key", "cap-1")],
        )
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json(), first.json());
    assert_eq!(t.head().await, head);
}
