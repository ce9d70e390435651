//! THE ISOLATION MATRIX. Alice's entity and relation ids × every route, called by
//! Bob: each answers exactly like a random id that does not exist (404, the same
//! problem body once the id is blanked out), nothing of Alice's changes, and
//! nothing of Alice's appears in any of Bob's lists, searches, tags, events or
//! graphs.

use super::{Reply, TestApp, User};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// One route called with an id: method, URI and body templates where `{id}` is
/// the id under test and `{own}` is an entity of the caller's.
struct Probe {
    method: Method,
    uri: &'static str,
    body: Option<&'static str>,
    headers: &'static [(&'static str, &'static str)],
}

const fn probe(method: Method, uri: &'static str, body: Option<&'static str>) -> Probe {
    Probe {
        method,
        uri,
        body,
        headers: &[],
    }
}

/// Every route that takes an entity id.
fn entity_probes() -> Vec<Probe> {
    vec![
        probe(Method::GET, "/v1/entities/{id}", None),
        probe(Method::GET, "/v1/entities/{id}?version=1", None),
        probe(
            Method::GET,
            "/v1/entities/{id}?at=2030-01-01T00:00:00Z",
            None,
        ),
        probe(
            Method::PATCH,
            "/v1/entities/{id}",
            Some(r#"{"title": "pwned"}"#),
        ),
        probe(
            Method::PATCH,
            "/v1/entities/{id}",
            Some(r#"{"title": "pwned", "expected_version": 1}"#),
        ),
        Probe {
            headers: &[("if-match", "\"1\"")],
            ..probe(
                Method::PATCH,
                "/v1/entities/{id}",
                Some(r#"{"add_tags": ["pwned"]}"#),
            )
        },
        Probe {
            headers: &[("if-match", "\"99\"")],
            ..probe(
                Method::PATCH,
                "/v1/entities/{id}",
                Some(r#"{"content": null}"#),
            )
        },
        probe(Method::DELETE, "/v1/entities/{id}", None),
        Probe {
            headers: &[("if-match", "*")],
            ..probe(Method::DELETE, "/v1/entities/{id}", None)
        },
        probe(Method::POST, "/v1/entities/{id}/restore", None),
        probe(
            Method::POST,
            "/v1/entities/{id}/revert",
            Some(r#"{"version": 1}"#),
        ),
        probe(Method::GET, "/v1/entities/{id}/history", None),
        probe(Method::GET, "/v1/entities/{id}/content", None),
        probe(Method::GET, "/v1/entities/{id}/content?version=1", None),
        probe(Method::GET, "/v1/entities/{id}/relations", None),
        probe(
            Method::GET,
            "/v1/entities/{id}/relations?direction=in",
            None,
        ),
        probe(Method::GET, "/v1/graph?root={id}&depth=2", None),
        probe(
            Method::POST,
            "/v1/relations",
            Some(r#"{"source_id": "{own}", "target_id": "{id}"}"#),
        ),
        probe(
            Method::POST,
            "/v1/relations",
            Some(r#"{"source_id": "{id}", "target_id": "{own}", "kind": "blocks"}"#),
        ),
    ]
}

/// Every route that takes a relation id.
fn relation_probes() -> Vec<Probe> {
    vec![probe(Method::DELETE, "/v1/relations/{id}", None)]
}

/// Every route that takes a webhook subscription id.
fn webhook_probes() -> Vec<Probe> {
    vec![
        probe(Method::GET, "/v1/webhooks/{id}", None),
        probe(Method::DELETE, "/v1/webhooks/{id}", None),
    ]
}

/// Every route that takes a suggestion id.
fn suggestion_probes() -> Vec<Probe> {
    vec![
        probe(Method::POST, "/v1/suggestions/{id}/accept", None),
        probe(Method::POST, "/v1/suggestions/{id}/dismiss", None),
    ]
}

/// Every route that takes a workflow run id.
fn run_probes() -> Vec<Probe> {
    vec![
        probe(Method::GET, "/v1/workflows/runs/{id}", None),
        probe(Method::POST, "/v1/workflows/runs/{id}/retry", None),
        probe(Method::POST, "/v1/workflows/runs/{id}/cancel", None),
    ]
}

async fn call(t: &TestApp, user: &User, probe: &Probe, id: &str, own: &str) -> Reply {
    let fill = |s: &str| s.replace("{id}", id).replace("{own}", own);
    let body = probe.body.map(|b| fill(b).into_bytes());
    t.send_raw(
        probe.method.clone(),
        &fill(probe.uri),
        Some(user),
        body,
        Some("application/json"),
        probe.headers,
    )
    .await
}

/// The problem body with the probed id blanked out.
fn normalized(reply: &Reply, id: &str) -> Value {
    serde_json::from_str(&reply.text().replace(id, "<id>"))
        .unwrap_or_else(|_| panic!("not JSON: {}", reply.text()))
}

#[tokio::test]
async fn another_users_ids_answer_like_missing_ids_on_every_route() {
    let t = TestApp::new().await;
    let alice = t.user("alice@example.com").await;
    let bob = t.user("bob@example.com").await;

    // Alice's world: two linked notes with tags and content, a task, a past version.
    let secret = t
        .create(&alice, json!({"type": "note", "content": "# Secret plan\n\nzanzibar treasure", "tags": ["classified"]}))
        .await;
    let secret_id = secret["id"].as_str().unwrap().to_string();
    let other = t.note(&alice, "# Other\n\nsee [[Secret plan]]").await;
    t.patch(
        &format!("/v1/entities/{secret_id}"),
        &alice,
        json!({"title": "Secret plan v2"}),
    )
    .await;
    let link = t
        .post(
            "/v1/relations",
            &alice,
            json!({"source_id": secret_id, "target_id": other, "kind": "blocks"}),
        )
        .await
        .json();
    let link_id = link["id"].as_str().unwrap().to_string();
    // A capture, with its enrichment run.
    let captured = t
        .post(
            "/v1/capture",
            &alice,
            json!({"text": "zanzibar treasure map"}),
        )
        .await
        .json();
    let run_id = captured["run_id"].as_str().unwrap().to_string();
    // A webhook subscription.
    let hook = t
        .post(
            "/v1/webhooks",
            &alice,
            json!({"url": "https://example.com/alice-hook", "event_types": ["*"]}),
        )
        .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.text());
    let hook_id = hook.json()["id"].as_str().unwrap().to_string();
    // A suggestion of the insight job.
    let suggestion_id =
        super::suggestions::suggest(&t, &alice, "Treasure", &[secret_id.clone(), other.clone()])
            .await;

    let alice_before = t
        .get(&format!("/v1/entities/{secret_id}"), &alice)
        .await
        .json();
    let alice_events_before = t.get("/v1/events?limit=500", &alice).await.json();

    // Bob's world: one note of his own to link from.
    let own = t.note(&bob, "# Bob's note").await;

    let mut checked = 0;
    for (probes, foreign) in [
        (entity_probes(), vec![secret_id.clone(), other.clone()]),
        (relation_probes(), vec![link_id.clone()]),
        (run_probes(), vec![run_id.clone()]),
        (webhook_probes(), vec![hook_id.clone()]),
        (suggestion_probes(), vec![suggestion_id.clone()]),
    ] {
        for probe in &probes {
            for foreign_id in &foreign {
                let missing_id = Uuid::now_v7().to_string();
                let missing = call(&t, &bob, probe, &missing_id, &own).await;
                let stolen = call(&t, &bob, probe, foreign_id, &own).await;
                let what = format!("{} {} {:?}", probe.method, probe.uri, probe.headers);
                assert_eq!(
                    missing.status,
                    StatusCode::NOT_FOUND,
                    "{what}: {}",
                    missing.text()
                );
                assert_eq!(
                    stolen.status,
                    StatusCode::NOT_FOUND,
                    "{what}: {}",
                    stolen.text()
                );
                assert_eq!(
                    stolen.header("content-type"),
                    missing.header("content-type"),
                    "{what}"
                );
                assert_eq!(
                    normalized(&stolen, foreign_id),
                    normalized(&missing, &missing_id),
                    "{what}: another user's id must look exactly like a missing one"
                );
                assert!(stolen.header("etag").is_none(), "{what}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 20);

    // Nothing of Alice's changed.
    assert_eq!(
        t.get(&format!("/v1/entities/{secret_id}"), &alice)
            .await
            .json(),
        alice_before
    );
    assert_eq!(
        t.get("/v1/events?limit=500", &alice).await.json(),
        alice_events_before
    );
    let links = t
        .get(&format!("/v1/entities/{secret_id}/relations"), &alice)
        .await
        .json();
    assert_eq!(
        links["items"].as_array().unwrap().len(),
        2,
        "the link and the mention remain"
    );

    // Nothing of Alice's shows in Bob's views.
    let text_of = |v: &Value| v.to_string();
    let forbidden = [
        secret_id.as_str(),
        other.as_str(),
        link_id.as_str(),
        run_id.as_str(),
        hook_id.as_str(),
        "alice-hook",
        suggestion_id.as_str(),
        "Treasure",
        "zanzibar",
        "Secret",
        "classified",
    ];
    let alice_id = alice.id.to_string();
    for uri in [
        "/v1/entities".to_string(),
        "/v1/entities?deleted=true".into(),
        "/v1/entities?tag=classified".into(),
        "/v1/search?q=zanzibar".into(),
        "/v1/search?q=secret".into(),
        "/v1/search?q=treasure&tag=classified".into(),
        "/v1/tags".into(),
        "/v1/events?limit=500".into(),
        format!("/v1/events?aggregate_id={secret_id}"),
        format!("/v1/events?aggregate_id={link_id}"),
        "/v1/events?type=relation.created".into(),
        format!("/v1/graph?root={own}&depth=5"),
        format!("/v1/entities/{own}/relations"),
        format!("/v1/entities/{own}/history"),
        "/v1/workflows/runs".into(),
        "/v1/workflows/runs?workflow=capture.enrich".into(),
        "/v1/workflows/runs?workflow=webhook.deliver".into(),
        "/v1/webhooks".into(),
        "/v1/suggestions".into(),
    ] {
        let reply = t.get(&uri, &bob).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.text());
        let body = reply.json();
        let text = text_of(&body);
        for needle in forbidden.iter().chain([&alice_id.as_str()]) {
            assert!(
                !text.contains(needle),
                "{uri} shows {needle:?} to bob: {text}"
            );
        }
    }
    let bobs = t.get("/v1/entities", &bob).await.json();
    assert_eq!(bobs["items"].as_array().unwrap().len(), 1);
    let bob_events = t.get("/v1/events?limit=500", &bob).await.json();
    for event in bob_events["items"].as_array().unwrap() {
        assert_eq!(event["user_id"], bob.id.to_string());
    }
}
