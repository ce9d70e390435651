//! `/v1/suggestions`: a user's suggestions are listed (by status), accepted — the
//! project is made and linked — or dismissed, each once; a decided suggestion
//! answers 409 with its status.

use super::{TestApp, User};
use axum::http::StatusCode;
use synap_domain::ids::{EntityId, UserId};
use synap_store::Scope;
use synap_store::suggestions::{NewSuggestion, PROJECT_FROM_TAG};
use uuid::Uuid;

/// Stores a suggestion for `user` as the insight job would.
pub async fn suggest(t: &TestApp, user: &User, tag: &str, entities: &[String]) -> String {
    let made = t
        .store
        .put_suggestion(
            &Scope::user(UserId(user.id)),
            NewSuggestion {
                id: Uuid::now_v7(),
                kind: PROJECT_FROM_TAG.into(),
                tag: tag.into(),
                tag_key: tag.to_lowercase(),
                entity_ids: entities
                    .iter()
                    .map(|id| EntityId(id.parse().unwrap()))
                    .collect(),
            },
        )
        .await
        .unwrap()
        .expect("a new suggestion");
    made.id.to_string()
}

#[tokio::test]
async fn suggestions_are_listed_accepted_and_dismissed_once() {
    let t = TestApp::new().await;
    let ana = t.user("ana@example.com").await;
    let mut notes = Vec::new();
    for text in ["Tomatoes", "Compost", "Seeds"] {
        notes.push(t.note(&ana, text).await);
    }
    let garden = suggest(&t, &ana, "Garden", &notes).await;
    let later = suggest(&t, &ana, "Later", &notes[..1]).await;

    let pending = t.get("/v1/suggestions?status=pending", &ana).await.json();
    assert_eq!(pending["items"].as_array().unwrap().len(), 2, "{pending}");

    let accepted = t
        .post(
            &format!("/v1/suggestions/{garden}/accept"),
            &ana,
            serde_json::json!({}),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text());
    let accepted = accepted.json();
    assert_eq!(accepted["status"], "accepted");
    let project = accepted["project_id"].as_str().unwrap().to_string();
    let view = t.get(&format!("/v1/entities/{project}"), &ana).await.json();
    assert_eq!(view["type"], "project");
    assert_eq!(view["title"], "Garden");
    let links = t
        .get(
            &format!("/v1/entities/{project}/relations?direction=out"),
            &ana,
        )
        .await
        .json();
    assert_eq!(links["items"].as_array().unwrap().len(), 3, "{links}");

    let again = t
        .post(
            &format!("/v1/suggestions/{garden}/accept"),
            &ana,
            serde_json::json!({}),
        )
        .await
        .problem(StatusCode::CONFLICT, "suggestion_decided");
    assert_eq!(again["current_status"], "accepted");

    let dismissed = t
        .post(
            &format!("/v1/suggestions/{later}/dismiss"),
            &ana,
            serde_json::json!({}),
        )
        .await;
    assert_eq!(dismissed.status, StatusCode::OK);
    assert_eq!(dismissed.json()["status"], "dismissed");
    t.post(
        &format!("/v1/suggestions/{later}/accept"),
        &ana,
        serde_json::json!({}),
    )
    .await
    .problem(StatusCode::CONFLICT, "suggestion_decided");
    let pending = t.get("/v1/suggestions?status=pending", &ana).await.json();
    assert!(pending["items"].as_array().unwrap().is_empty());
    assert_eq!(
        t.get("/v1/suggestions", &ana).await.json()["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    t.post(
        &format!("/v1/suggestions/{}/dismiss", Uuid::now_v7()),
        &ana,
        serde_json::json!({}),
    )
    .await
    .problem(StatusCode::NOT_FOUND, "not_found");
}
