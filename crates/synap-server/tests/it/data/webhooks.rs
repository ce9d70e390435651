//! `/v1/webhooks`: subscriptions are made with a secret shown once, listed and
//! read with their delivery state, deleted; bad URLs, private targets, unknown
//! event types and unknown fields are refused with a clear problem, and nothing
//! is stored then.

use super::TestApp;
use axum::http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_subscription_is_made_listed_read_and_deleted() {
    let t = TestApp::new().await;
    let ana = t.user("ana@example.com").await;
    let made = t
        .post(
            "/v1/webhooks",
            &ana,
            json!({
                "url": "https://hooks.example.com/synap",
                "event_types": ["entity.created", "entity.deleted"],
                "description": "my automation"
            }),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text());
    let made = made.json();
    let id = made["id"].as_str().unwrap().to_string();
    let secret = made["secret"].as_str().unwrap();
    assert!(
        secret.starts_with("whsec_") && secret.len() > 40,
        "{secret}"
    );
    assert_eq!(made["status"], "active");
    assert_eq!(made["consecutive_failures"], 0);
    assert_eq!(
        made["event_types"],
        json!(["entity.created", "entity.deleted"])
    );

    let read = t.get(&format!("/v1/webhooks/{id}"), &ana).await;
    assert_eq!(read.status, StatusCode::OK);
    let read = read.json();
    assert_eq!(read["url"], "https://hooks.example.com/synap");
    assert_eq!(read["description"], "my automation");
    assert!(
        read.get("secret").is_none(),
        "the secret is shown only once: {read}"
    );
    let list = t.get("/v1/webhooks", &ana).await.json();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(list["items"][0].get("secret").is_none());

    // A note now starts a delivery run for the subscription.
    t.note(&ana, "delivered").await;
    let runs = t
        .get("/v1/workflows/runs?workflow=webhook.deliver", &ana)
        .await
        .json();
    assert_eq!(runs["items"].as_array().unwrap().len(), 1, "{runs}");

    let gone = t.delete(&format!("/v1/webhooks/{id}"), &ana).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    t.get(&format!("/v1/webhooks/{id}"), &ana)
        .await
        .problem(StatusCode::NOT_FOUND, "not_found");
    t.delete(&format!("/v1/webhooks/{id}"), &ana)
        .await
        .problem(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn bad_subscriptions_are_refused_and_nothing_is_stored() {
    let t = TestApp::new().await;
    let ana = t.user("ana@example.com").await;
    for (body, field) in [
        (
            json!({"url": "ftp://example.com/x", "event_types": ["*"]}),
            "url",
        ),
        (json!({"url": "not a url", "event_types": ["*"]}), "url"),
        (
            json!({"url": "http://127.0.0.1:8080/x", "event_types": ["*"]}),
            "url",
        ),
        (
            json!({"url": "http://169.254.169.254/latest", "event_types": ["*"]}),
            "url",
        ),
        (
            json!({"url": "http://localhost/x", "event_types": ["*"]}),
            "url",
        ),
        (
            json!({"url": "https://example.com", "event_types": []}),
            "event_types",
        ),
        (
            json!({"url": "https://example.com", "event_types": ["entity.exploded"]}),
            "event_types",
        ),
    ] {
        let problem = t
            .post("/v1/webhooks", &ana, body.clone())
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }
    let private = t
        .post(
            "/v1/webhooks",
            &ana,
            json!({"url": "http://10.0.0.5/x", "event_types": ["*"]}),
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(
        private["detail"]
            .as_str()
            .unwrap()
            .contains("SYNAP_WEBHOOK_ALLOW_PRIVATE"),
        "{private}"
    );
    t.post(
        "/v1/webhooks",
        &ana,
        json!({"url": "https://example.com", "event_types": ["*"], "secret": "mine"}),
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(
        t.get("/v1/webhooks", &ana).await.json()["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}
