//! Relations, backlinks, wikilink `mentions`, the graph and its limits.

use super::TestApp;
use axum::http::StatusCode;
use serde_json::{Value, json};

fn ids(list: &Value, key: &str) -> Vec<String> {
    let mut ids: Vec<String> = list[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn links_are_created_listed_both_ways_and_deleted() {
    let t = TestApp::new().await;
    let alice = t.user("alice@example.com").await;
    let a = t.note(&alice, "# Alpha").await;
    let b = t.note(&alice, "# Beta").await;
    let reply = t
        .post(
            "/v1/relations",
            &alice,
            json!({"source_id": a, "target_id": b, "kind": "blocks"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let link = reply.json();
    assert_eq!(link["source_id"], a.as_str());
    assert_eq!(link["target_id"], b.as_str());
    assert_eq!(link["source_title"], "Alpha");
    assert_eq!(link["target_title"], "Beta");
    assert_eq!(link["kind"], "blocks");
    let link_id = link["id"].as_str().unwrap().to_string();
    let default_kind = t
        .post(
            "/v1/relations",
            &alice,
            json!({"source_id": b, "target_id": a}),
        )
        .await;
    assert_eq!(default_kind.json()["kind"], "relates_to");

    let out = t
        .get(&format!("/v1/entities/{a}/relations?direction=out"), &alice)
        .await
        .json();
    assert_eq!(out["items"].as_array().unwrap().len(), 1);
    assert_eq!(out["items"][0]["id"], link_id.as_str());
    let back = t
        .get(&format!("/v1/entities/{b}/relations?direction=in"), &alice)
        .await
        .json();
    assert_eq!(back["items"][0]["id"], link_id.as_str());
    let both = t
        .get(&format!("/v1/entities/{a}/relations"), &alice)
        .await
        .json();
    assert_eq!(both["items"].as_array().unwrap().len(), 2);
    t.get(
        &format!("/v1/entities/{a}/relations?direction=sideways"),
        &alice,
    )
    .await
    .problem(StatusCode::BAD_REQUEST, "invalid_query");

    let head = t.head().await;
    t.post(
        "/v1/relations",
        &alice,
        json!({"source_id": a, "target_id": b, "kind": "blocks"}),
    )
    .await
    .problem(StatusCode::CONFLICT, "duplicate_relation");
    let selfie = t
        .post(
            "/v1/relations",
            &alice,
            json!({"source_id": a, "target_id": a}),
        )
        .await;
    assert_eq!(
        selfie.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "target_id"
    );
    let kind = t
        .post(
            "/v1/relations",
            &alice,
            json!({"source_id": a, "target_id": b, "kind": "Not A Kind"}),
        )
        .await;
    assert_eq!(
        kind.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "kind"
    );
    let mentions = t
        .post(
            "/v1/relations",
            &alice,
            json!({"source_id": a, "target_id": b, "kind": "mentions"}),
        )
        .await;
    assert_eq!(
        mentions.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "kind"
    );
    let bad_id = t
        .post(
            "/v1/relations",
            &alice,
            json!({"source_id": "nope", "target_id": b}),
        )
        .await;
    assert_eq!(
        bad_id.problem(StatusCode::BAD_REQUEST, "invalid_id")["field"],
        "source_id"
    );
    let missing = uuid::Uuid::now_v7();
    t.post(
        "/v1/relations",
        &alice,
        json!({"source_id": a, "target_id": missing}),
    )
    .await
    .problem(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(t.head().await, head, "refused links store nothing");

    // A relation's id is no entity's: every entity route answers 404.
    for uri in [
        format!("/v1/entities/{link_id}"),
        format!("/v1/entities/{link_id}?version=1"),
        format!("/v1/entities/{link_id}/content?version=1"),
        format!("/v1/entities/{link_id}/history"),
        format!("/v1/entities/{link_id}/relations"),
    ] {
        t.get(&uri, &alice)
            .await
            .problem(StatusCode::NOT_FOUND, "not_found");
    }
    t.post(
        &format!("/v1/entities/{link_id}/revert"),
        &alice,
        json!({"version": 1}),
    )
    .await
    .problem(StatusCode::NOT_FOUND, "not_found");

    let deleted = t.delete(&format!("/v1/relations/{link_id}"), &alice).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(deleted.body.is_empty());
    t.delete(&format!("/v1/relations/{link_id}"), &alice)
        .await
        .problem(StatusCode::NOT_FOUND, "not_found");
    let out = t
        .get(&format!("/v1/entities/{a}/relations?direction=out"), &alice)
        .await
        .json();
    assert!(out["items"].as_array().unwrap().is_empty());

    // Links to a deleted entity are hidden; the deleted entity has no links to read.
    t.delete(&format!("/v1/entities/{b}"), &alice).await;
    let both = t
        .get(&format!("/v1/entities/{a}/relations"), &alice)
        .await
        .json();
    assert!(both["items"].as_array().unwrap().is_empty());
    t.get(&format!("/v1/entities/{b}/relations"), &alice)
        .await
        .problem(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn wikilinks_make_mentions_that_only_content_removes() {
    let t = TestApp::new().await;
    let alice = t.user("alice@example.com").await;
    let target = t.note(&alice, "# Target").await;
    let source = t.note(&alice, "see [[Target]]").await;
    let links = t
        .get(
            &format!("/v1/entities/{target}/relations?direction=in"),
            &alice,
        )
        .await
        .json();
    let items = links["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["kind"], "mentions");
    assert_eq!(items[0]["source_id"], source.as_str());
    let id = items[0]["id"].as_str().unwrap();
    let refused = t.delete(&format!("/v1/relations/{id}"), &alice).await;
    assert_eq!(
        refused.problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")["field"],
        "kind"
    );
    t.patch(
        &format!("/v1/entities/{source}"),
        &alice,
        json!({"content": "no link now"}),
    )
    .await;
    let links = t
        .get(&format!("/v1/entities/{target}/relations"), &alice)
        .await
        .json();
    assert!(links["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn the_graph_walks_to_a_depth_along_chosen_kinds() {
    let t = TestApp::new().await;
    let alice = t.user("alice@example.com").await;
    let a = t.note(&alice, "# A").await;
    let b = t.note(&alice, "# B").await;
    let c = t.note(&alice, "# C").await;
    let d = t.note(&alice, "# D").await;
    for (s, g, kind) in [
        (&a, &b, "contains"),
        (&b, &c, "contains"),
        (&a, &d, "blocks"),
    ] {
        let reply = t
            .post(
                "/v1/relations",
                &alice,
                json!({"source_id": s, "target_id": g, "kind": kind}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED);
    }
    let one = t.get(&format!("/v1/graph?root={a}"), &alice).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.text());
    let one = one.json();
    let mut expected = vec![a.clone(), b.clone(), d.clone()];
    expected.sort();
    assert_eq!(ids(&one, "nodes"), expected, "depth 1 by default");
    assert_eq!(one["edges"].as_array().unwrap().len(), 2);
    assert_eq!(one["truncated"], false);
    let root = one["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == a.as_str())
        .unwrap()
        .clone();
    assert_eq!(root["depth"], 0);
    assert_eq!(root["type"], "note");

    let two = t
        .get(
            &format!("/v1/graph?root={a}&depth=2&kinds=contains"),
            &alice,
        )
        .await
        .json();
    let mut expected = vec![a.clone(), b.clone(), c.clone()];
    expected.sort();
    assert_eq!(ids(&two, "nodes"), expected);
    let both_kinds = t
        .get(
            &format!("/v1/graph?root={a}&depth=2&kinds=contains&kinds=blocks"),
            &alice,
        )
        .await
        .json();
    assert_eq!(both_kinds["nodes"].as_array().unwrap().len(), 4);
    let comma = t
        .get(
            &format!("/v1/graph?root={a}&depth=2&kinds=contains,blocks"),
            &alice,
        )
        .await
        .json();
    assert_eq!(comma, both_kinds);
    let zero = t
        .get(&format!("/v1/graph?root={a}&depth=0"), &alice)
        .await
        .json();
    assert_eq!(zero["nodes"].as_array().unwrap().len(), 1);

    for (query, code) in [
        (format!("root={a}&depth=6"), "invalid_query"),
        (format!("root={a}&depth=-1"), "invalid_query"),
        (format!("root={a}&kinds=Bad%20Kind"), "invalid_query"),
        (format!("root={a}&root={b}"), "invalid_query"),
        (format!("root={a}&color=red"), "invalid_query"),
        ("depth=1".to_string(), "invalid_query"),
        ("root=not-an-id".to_string(), "invalid_id"),
    ] {
        t.get(&format!("/v1/graph?{query}"), &alice)
            .await
            .problem(StatusCode::BAD_REQUEST, code);
    }
    t.get(&format!("/v1/graph?root={}", uuid::Uuid::now_v7()), &alice)
        .await
        .problem(StatusCode::NOT_FOUND, "not_found");
}
