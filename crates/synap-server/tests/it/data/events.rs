//! `GET /v1/events`: the caller's log after a position, with filters.

use super::TestApp;
use axum::http::StatusCode;
use serde_json::{Value, json};

fn types(feed: &Value) -> Vec<String> {
    feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn events_read_on_from_a_position_with_filters() {
    let t = TestApp::new().await;
    let alice = t.user("alice@example.com").await;
    let start = t.now();
    let a = t.note(&alice, "# A").await;
    t.tick(10);
    let middle = t.now();
    let b = t.note(&alice, "# B").await;
    t.patch(
        &format!("/v1/entities/{a}"),
        &alice,
        json!({"add_tags": ["x"]}),
    )
    .await;
    t.post(
        "/v1/relations",
        &alice,
        json!({"source_id": a, "target_id": b}),
    )
    .await;

    let all = t.get("/v1/events", &alice).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text());
    let all = all.json();
    let items = all["items"].as_array().unwrap();
    // The user's own account events may come first; the data events follow in order.
    let data: Vec<&Value> = items
        .iter()
        .filter(|e| e["aggregate_type"] != "user")
        .collect();
    let data_types: Vec<&str> = data.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        data_types,
        [
            "entity.created",
            "entity.created",
            "entity.tags_added",
            "relation.created"
        ]
    );
    let positions: Vec<u64> = items
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(all["next_after"], *positions.last().unwrap());
    assert_eq!(data[0]["metadata"]["source"], "api");
    assert_eq!(data[0]["user_id"], alice.id.to_string());
    assert_eq!(data[0]["data"]["title"], "A");

    // Paging with after/next_after visits each event once.
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let page = t
            .get(&format!("/v1/events?after={after}&limit=2"), &alice)
            .await
            .json();
        let n = page["items"].as_array().unwrap().len();
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["position"].as_u64().unwrap()),
        );
        after = page["next_after"].as_u64().unwrap();
        if n < 2 {
            break;
        }
    }
    assert_eq!(seen, positions);
    let empty = t
        .get(&format!("/v1/events?after={after}"), &alice)
        .await
        .json();
    assert_eq!(empty, json!({"items": [], "next_after": after}));

    let created = t.get("/v1/events?type=entity.created", &alice).await.json();
    assert_eq!(types(&created), ["entity.created", "entity.created"]);
    let repeated = t
        .get(
            "/v1/events?type=entity.created&type=relation.created",
            &alice,
        )
        .await
        .json();
    assert_eq!(
        types(&repeated),
        ["entity.created", "entity.created", "relation.created"]
    );
    let comma = t
        .get("/v1/events?type=entity.created,relation.created", &alice)
        .await
        .json();
    assert_eq!(comma, repeated);
    let of_a = t
        .get(&format!("/v1/events?aggregate_id={a}"), &alice)
        .await
        .json();
    assert_eq!(types(&of_a), ["entity.created", "entity.tags_added"]);
    let early = t
        .get(
            &format!("/v1/events?since={start}&until={middle}&type=entity.created"),
            &alice,
        )
        .await
        .json();
    assert_eq!(early["items"].as_array().unwrap().len(), 1);
    assert_eq!(early["items"][0]["aggregate_id"], a.as_str());
    let late = t
        .get(
            &format!("/v1/events?since={middle}&type=entity.created"),
            &alice,
        )
        .await
        .json();
    assert_eq!(late["items"][0]["aggregate_id"], b.as_str());

    let many_types: String = (0..65)
        .map(|i| format!("type=t{i}"))
        .collect::<Vec<_>>()
        .join("&");
    for (query, code) in [
        ("after=-1", "invalid_query"),
        ("after=abc", "invalid_query"),
        ("after=1&after=2", "invalid_query"),
        ("limit=0", "invalid_query"),
        ("limit=501", "invalid_query"),
        ("since=today", "invalid_query"),
        ("until=2025-01-01", "invalid_query"),
        ("kind=x", "invalid_query"),
        ("aggregate_id=nope", "invalid_id"),
        ("type=entity.exploded", "invalid_input"),
        (many_types.as_str(), "invalid_query"),
    ] {
        t.get(&format!("/v1/events?{query}"), &alice)
            .await
            .problem(StatusCode::BAD_REQUEST, code);
    }
}
