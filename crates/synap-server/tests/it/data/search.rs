//! Full-text search; semantic and hybrid modes answer a clear problem.

use super::TestApp;
use axum::http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn fulltext_finds_ranks_filters_and_highlights() {
    let t = TestApp::new().await;
    let alice = t.user("alice@example.com").await;
    let pasta = t
        .create(&alice, json!({"type": "note", "content": "# Recipes\n\nFresh pasta needs eggs and flour.", "tags": ["food"]}))
        .await;
    let task = t
        .create(&alice, json!({"type": "task", "title": "Buy eggs"}))
        .await;
    t.note(&alice, "nothing relevant").await;

    let hits = t.get("/v1/search?q=eggs", &alice).await;
    assert_eq!(hits.status, StatusCode::OK, "{}", hits.text());
    let hits = hits.json();
    let items = hits["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for hit in items {
        assert!(hit["score"].as_f64().unwrap() > 0.0);
        assert!(hit["snippet"].as_str().unwrap().contains("<mark>"), "{hit}");
    }
    let typed = t
        .get("/v1/search?q=eggs&type=task&mode=fulltext", &alice)
        .await
        .json();
    assert_eq!(typed["items"].as_array().unwrap().len(), 1);
    assert_eq!(typed["items"][0]["id"], task["id"]);
    let tagged = t
        .get("/v1/search?q=egg&tag=food&limit=5", &alice)
        .await
        .json();
    assert_eq!(tagged["items"].as_array().unwrap().len(), 1);
    assert_eq!(tagged["items"][0]["id"], pasta["id"]);
    assert_eq!(tagged["items"][0]["tags"], json!(["food"]));

    t.delete(
        &format!("/v1/entities/{}", task["id"].as_str().unwrap()),
        &alice,
    )
    .await;
    let after = t.get("/v1/search?q=eggs", &alice).await.json();
    assert_eq!(
        after["items"].as_array().unwrap().len(),
        1,
        "deleted entities are not found"
    );
}

#[tokio::test]
async fn semantic_modes_say_no_model_is_configured() {
    let t = TestApp::new().await;
    let alice = t.user("alice@example.com").await;
    t.note(&alice, "hello world").await;
    for mode in ["semantic", "hybrid"] {
        let problem = t
            .get(&format!("/v1/search?q=hello&mode={mode}"), &alice)
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY, "semantic_unavailable");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("embedding model")
        );
    }
    // Full-text keeps working.
    let hits = t.get("/v1/search?q=hello", &alice).await.json();
    assert_eq!(hits["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_search_queries_are_refused() {
    let t = TestApp::new().await;
    let alice = t.user("alice@example.com").await;
    t.get("/v1/search", &alice)
        .await
        .problem(StatusCode::BAD_REQUEST, "invalid_query");
    t.get("/v1/search?q=a&mode=psychic", &alice)
        .await
        .problem(StatusCode::BAD_REQUEST, "invalid_query");
    t.get("/v1/search?q=a&limit=0", &alice)
        .await
        .problem(StatusCode::BAD_REQUEST, "invalid_query");
    t.get("/v1/search?q=a&sort=new", &alice)
        .await
        .problem(StatusCode::BAD_REQUEST, "invalid_query");
    let blank = t.get("/v1/search?q=%20%20", &alice).await;
    assert_eq!(
        blank.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "q"
    );
    let long = "a".repeat(1001);
    let long = t.get(&format!("/v1/search?q={long}"), &alice).await;
    assert_eq!(
        long.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "q"
    );
    t.get("/v1/search?q=%2B%2B%2B", &alice)
        .await
        .problem(StatusCode::BAD_REQUEST, "invalid_input");
}
