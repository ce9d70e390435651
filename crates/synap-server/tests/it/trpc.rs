//! The original procedures under `/trpc`: tRPC's wire format in process (GET input,
//! POST body, batches, error shapes and statuses, authentication, validation,
//! isolation), and the official `@trpc/client` from npm, run by Node.js, against
//! the real server on a loopback port.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use synap_domain::UserId;
use synap_server::auth::tokens::{hash_secret, mint_session_id, mint_token};
use synap_server::{AppState, ServerConfig};
use synap_store::{Accounts, NewSession, NewToken, NewUser, ReadModel, Store, SystemClock};
use synap_store_sqlite::{SqliteConfig, SqliteStore};
use tempfile::TempDir;
use tower::ServiceExt;
use uuid::Uuid;

/// A server over a fresh store, with the local owner's token and a second user's.
struct Harness {
    _dir: TempDir,
    shutdown: tokio::sync::watch::Sender<bool>,
    state: AppState,
    app: Router,
    store: Arc<SqliteStore>,
    owner: UserId,
    token: String,
    other_token: String,
}

async fn mint(store: &SqliteStore, user_id: UserId, scopes: &[&str]) -> String {
    let (token, prefix) = mint_token();
    store
        .create_token(NewToken {
            id: Uuid::now_v7(),
            user_id,
            name: "trpc test".into(),
            prefix,
            secret_hash: hash_secret(&token),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            expires_at: None,
        })
        .await
        .expect("create token");
    token
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut sqlite = SqliteConfig::new(dir.path().join("synap.db"));
    sqlite.durable = false;
    let store = Arc::new(SqliteStore::open(sqlite).expect("open store"));
    let config = ServerConfig {
        rate_limit_anonymous: None,
        rate_limit_user: None,
        ..ServerConfig::default()
    };
    let dyn_store: Arc<dyn Store> = store.clone();
    let (state, shutdown) = AppState::new(dyn_store, config, Arc::new(SystemClock), "sqlite", None);
    let owner = store.local_owner().await.expect("local owner").id;
    let other = store
        .create_user(NewUser {
            email: "other@example.com".into(),
            role: "member".into(),
            ..NewUser::default()
        })
        .await
        .expect("second user")
        .id;
    let token = mint(&store, owner, &["read", "write"]).await;
    let other_token = mint(&store, other, &["read", "write"]).await;
    Harness {
        app: synap_server::app(state.clone()),
        _dir: dir,
        shutdown,
        state,
        store,
        owner,
        token,
        other_token,
    }
}

/// `encodeURIComponent`, as the client encodes `?input=`.
fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'!'
            | b'~'
            | b'*'
            | b'\''
            | b'('
            | b')' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Harness {
    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.app.clone().oneshot(request).await.expect("response");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    /// `GET /trpc/<path>[?input=…]` (plus extra query parameters).
    async fn get(&self, path: &str, input: Option<&Value>, token: Option<&str>) -> Answer {
        self.get_query(path, "", input, token).await
    }

    async fn get_query(
        &self,
        path: &str,
        extra: &str,
        input: Option<&Value>,
        token: Option<&str>,
    ) -> Answer {
        let mut query: Vec<String> = Vec::new();
        if !extra.is_empty() {
            query.push(extra.to_string());
        }
        if let Some(input) = input {
            query.push(format!("input={}", encode(&input.to_string())));
        }
        let mut uri = format!("/trpc/{path}");
        if !query.is_empty() {
            uri = format!("{uri}?{}", query.join("&"));
        }
        let mut request = Request::builder().method(Method::GET).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.send(request.body(Body::empty()).expect("request"))
            .await
    }

    /// `POST /trpc/<uri>` with a JSON body.
    async fn post(&self, uri: &str, body: &str, token: Option<&str>) -> Answer {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(format!("/trpc/{uri}"))
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.send(request.body(Body::from(body.to_string())).expect("request"))
            .await
    }

    async fn mutate(&self, path: &str, input: Value) -> Value {
        let answer = self.post(path, &input.to_string(), Some(&self.token)).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.body);
        answer.body["result"]["data"].clone()
    }

    async fn query(&self, path: &str, input: Value, token: &str) -> Value {
        let answer = self.get(path, Some(&input), Some(token)).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.body);
        answer.body["result"]["data"].clone()
    }
}

/// Asserts `body` is tRPC's error shape for `key` (and `path`, when given).
fn assert_error(body: &Value, key: &str, json_rpc: i64, http: u16, path: Option<&str>) {
    let error = &body["error"];
    assert!(error["message"].is_string(), "{body}");
    assert_eq!(error["code"], json!(json_rpc), "{body}");
    assert_eq!(error["data"]["code"], json!(key), "{body}");
    assert_eq!(error["data"]["httpStatus"], json!(http), "{body}");
    match path {
        Some(path) => assert_eq!(error["data"]["path"], json!(path), "{body}"),
        None => assert!(error["data"].get("path").is_none(), "{body}"),
    }
}

#[tokio::test]
async fn mutations_take_a_post_body_and_queries_a_get_input() {
    let h = harness().await;
    let captured = h
        .mutate(
            "capture.thought",
            json!({"content": "Call the plumber about the leak", "context": {"from": "phone"}}),
        )
        .await;
    assert_eq!(captured["success"], json!(true));
    assert!(captured["message"].is_string());
    let capture_id = captured["entityId"].as_str().expect("entityId").to_string();

    let created = h
        .mutate(
            "notes.create",
            json!({"content": "# Plumbing\nThe kitchen sink leaks.", "tags": ["home", "Repairs"],
                   "autoEnrich": true, "useRAG": false, "inputType": "text", "unknownField": 1}),
        )
        .await;
    assert_eq!(created["success"], json!(true));
    let note = &created["note"];
    assert_eq!(note["id"], created["entityId"]);
    assert_eq!(note["title"], json!("Plumbing"));
    assert_eq!(
        note["content"],
        json!("# Plumbing\nThe kitchen sink leaks.")
    );
    assert_eq!(note["tags"], json!(["home", "Repairs"]));
    assert!(note["createdAt"].is_string() && note["updatedAt"].is_string());
    assert!(note["metadata"].is_object());

    // The capture's context is kept on the note.
    let scope = synap_store::Scope::user(h.owner);
    let id: synap_domain::EntityId = serde_json::from_value(json!(capture_id)).expect("entity id");
    let view = h.store.entity(&scope, id).await.unwrap().expect("captured");
    assert_eq!(
        view.metadata[synap_server::routes::capture::CONTEXT_KEY],
        json!({"from": "phone"})
    );
    assert_eq!(view.title, "Call the plumber about the leak");

    let hits = h
        .query("notes.search", json!({"query": "leak"}), &h.token)
        .await;
    let hits = hits.as_array().expect("array");
    assert_eq!(hits.len(), 2, "{hits:?}");
    for hit in hits {
        assert!(hit["score"].is_number());
        assert!(hit["snippet"].as_str().unwrap().contains("<mark>"), "{hit}");
        assert!(hit["note"]["content"].as_str().unwrap().contains("leak"));
    }
    let limited = h
        .query(
            "notes.search",
            json!({"query": "leak", "limit": 1}),
            &h.token,
        )
        .await;
    assert_eq!(limited.as_array().unwrap().len(), 1);

    let events = h.query("events.list", json!({}), &h.token).await;
    let events = events.as_array().expect("array");
    let created_events: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == json!("entity.created"))
        .collect();
    assert_eq!(created_events.len(), 2);
    // Newest first: the note comes before the capture.
    assert_eq!(created_events[0]["aggregateId"], created["entityId"]);
    assert_eq!(created_events[1]["aggregateId"], json!(capture_id));
    let positions: Vec<u64> = events
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] > w[1]), "{positions:?}");
    for event in events {
        assert_eq!(event["userId"], json!(h.owner));
        for field in ["id", "timestamp", "type", "data", "source", "correlationId"] {
            assert!(event.get(field).is_some(), "{field} missing: {event}");
        }
    }
    assert_eq!(created_events[0]["source"], json!("api"));
}

#[tokio::test]
async fn a_query_without_input_and_an_input_absent_from_a_batch() {
    let h = harness().await;
    // `client.events.list.query()` sends no `input` at all.
    let answer = h.get("events.list", None, Some(&h.token)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(answer.body["result"]["data"].is_array());
    // In a batch, an undefined input is a missing key.
    let answer = h
        .get_query(
            "events.list,events.list",
            "batch=1",
            Some(&json!({"1": {"limit": 1}})),
            Some(&h.token),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body.as_array().unwrap().len(), 2);
    // A mutation needs its input.
    let answer = h.post("notes.create", "", Some(&h.token)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_error(
        &answer.body,
        "BAD_REQUEST",
        -32600,
        400,
        Some("notes.create"),
    );
}

#[tokio::test]
async fn batches_answer_an_array_in_order_with_207_when_mixed() {
    let h = harness().await;
    let answer = h
        .post(
            "notes.create,capture.thought?batch=1",
            &json!({"0": {"content": "first"}, "1": {"content": "second"}}).to_string(),
            Some(&h.token),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let items = answer.body.as_array().expect("array");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["result"]["data"]["note"]["title"], json!("first"));
    assert_eq!(items[1]["result"]["data"]["success"], json!(true));

    let answer = h
        .get_query(
            "notes.search,events.list,notes.search",
            "batch=1",
            Some(&json!({"0": {"query": "first"}, "1": {"limit": 1}, "2": {"query": ""}})),
            Some(&h.token),
        )
        .await;
    assert_eq!(answer.status, StatusCode::MULTI_STATUS, "{}", answer.body);
    let items = answer.body.as_array().expect("array");
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["result"]["data"].as_array().unwrap().len(), 1);
    assert_eq!(items[1]["result"]["data"].as_array().unwrap().len(), 1);
    assert_error(&items[2], "BAD_REQUEST", -32600, 400, Some("notes.search"));

    // Every call failing the same way: that status, still an array.
    let answer = h
        .get_query(
            "notes.search,notes.search",
            "batch=1",
            Some(&json!({"0": {"query": ""}, "1": {"limit": 0, "query": "x"}})),
            Some(&h.token),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.body.as_array().unwrap().len(), 2);

    // A batch input that is not an object fails each call.
    let answer = h
        .get_query(
            "events.list",
            "batch=1",
            Some(&json!([{"limit": 1}])),
            Some(&h.token),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_error(
        &answer.body[0],
        "BAD_REQUEST",
        -32600,
        400,
        Some("events.list"),
    );

    // Queries and mutations cannot share a batch: one error for the request.
    let answer = h
        .post(
            "notes.create,events.list?batch=1",
            &json!({"0": {"content": "x"}}).to_string(),
            Some(&h.token),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_error(&answer.body, "BAD_REQUEST", -32600, 400, None);

    // More than the batch limit.
    let paths = vec!["events.list"; synap_server::trpc::BATCH_CALLS_MAX + 1].join(",");
    let answer = h.get_query(&paths, "batch=1", None, Some(&h.token)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_error(&answer.body, "BAD_REQUEST", -32600, 400, None);
}

#[tokio::test]
async fn errors_have_trpc_shape_codes_and_statuses() {
    let h = harness().await;
    let t = Some(h.token.as_str());

    let answer = h.get("notes.nope", None, t).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_error(&answer.body, "NOT_FOUND", -32004, 404, Some("notes.nope"));
    assert_eq!(
        answer.headers[header::CONTENT_TYPE],
        "application/json",
        "tRPC errors are JSON, not problem+json"
    );

    let answer = h
        .get("notes.create", Some(&json!({"content": "x"})), t)
        .await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(
        &answer.body,
        "METHOD_NOT_SUPPORTED",
        -32005,
        405,
        Some("notes.create"),
    );
    assert_eq!(answer.headers[header::ALLOW], "POST");

    let answer = h.post("events.list", "{}", t).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(
        &answer.body,
        "METHOD_NOT_SUPPORTED",
        -32005,
        405,
        Some("events.list"),
    );
    assert_eq!(answer.headers[header::ALLOW], "GET");

    let answer = h
        .send(
            Request::delete("/trpc/notes.create")
                .header(header::AUTHORIZATION, format!("Bearer {}", h.token))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(
        &answer.body,
        "METHOD_NOT_SUPPORTED",
        -32005,
        405,
        Some("notes.create"),
    );

    for input in [
        json!({"limit": 0}),
        json!({"limit": 101}),
        json!({"limit": 2.5}),
        json!({"limit": "10"}),
        json!({"type": 5}),
        json!([]),
        json!(null),
    ] {
        let answer = h.get("events.list", Some(&input), t).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{input}: {}",
            answer.body
        );
        assert_error(
            &answer.body,
            "BAD_REQUEST",
            -32600,
            400,
            Some("events.list"),
        );
    }
    for (path, input) in [
        ("notes.search", json!({})),
        ("notes.search", json!({"query": ""})),
        ("notes.search", json!({"query": "x", "limit": 1000})),
        ("notes.search", json!({"query": "x", "useRAG": "yes"})),
        ("notes.search", json!({"query": "x".repeat(1001)})),
    ] {
        let answer = h.get(path, Some(&input), t).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{input}: {}",
            answer.body
        );
        assert_error(&answer.body, "BAD_REQUEST", -32600, 400, Some(path));
    }
    for (path, input) in [
        ("capture.thought", json!({})),
        ("capture.thought", json!({"content": ""})),
        (
            "capture.thought",
            json!({"content": "x", "context": "not an object"}),
        ),
        ("notes.create", json!({"content": 5})),
        ("notes.create", json!({"content": "x", "tags": "one"})),
        ("notes.create", json!({"content": "x", "tags": [1]})),
        (
            "notes.create",
            json!({"content": "x", "tags": ["t".repeat(65)]}),
        ),
        ("notes.create", json!({"content": "x", "tags": ["  "]})),
        (
            "notes.create",
            json!({"content": "x", "inputType": "video"}),
        ),
        (
            "notes.create",
            json!({"content": "x", "inputType": "audio"}),
        ),
        ("notes.create", json!({"content": "x", "autoEnrich": "no"})),
        ("events.log", json!({"data": {}})),
        ("events.log", json!({"type": "", "data": {}})),
        ("events.log", json!({"type": "a.b", "data": []})),
        (
            "events.log",
            json!({"type": "a.b", "data": {}, "source": "web"}),
        ),
        (
            "events.log",
            json!({"type": "a.b", "data": {}, "correlationId": "nope"}),
        ),
    ] {
        let answer = h.post(path, &input.to_string(), t).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{path} {input}: {}",
            answer.body
        );
        assert_error(&answer.body, "BAD_REQUEST", -32600, 400, Some(path));
    }

    // Malformed JSON, in the query string and in a body.
    let answer = h
        .send(
            Request::get("/trpc/events.list?input=%7Bnope")
                .header(header::AUTHORIZATION, format!("Bearer {}", h.token))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_error(
        &answer.body,
        "BAD_REQUEST",
        -32600,
        400,
        Some("events.list"),
    );
    let answer = h.post("notes.create", "{\"content\":", t).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_error(
        &answer.body,
        "BAD_REQUEST",
        -32600,
        400,
        Some("notes.create"),
    );

    // A POST that is not JSON: the request fails as a whole.
    let answer = h
        .send(
            Request::post("/trpc/notes.create")
                .header(header::AUTHORIZATION, format!("Bearer {}", h.token))
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("{\"content\":\"x\"}"))
                .unwrap(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_error(&answer.body, "UNSUPPORTED_MEDIA_TYPE", -32015, 415, None);

    // Semantic search is refused, not silently answered with full-text results.
    let answer = h
        .get(
            "notes.search",
            Some(&json!({"query": "x", "useRAG": true})),
            t,
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("embedding model")
    );

    // Nothing was stored by any of the refused mutations.
    let events = h.query("events.list", json!({}), &h.token).await;
    assert_eq!(
        events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["aggregateType"] == json!("entity"))
            .count(),
        0
    );

    // HEAD is answered without a body, as tRPC does.
    let answer = h
        .send(
            Request::head("/trpc/events.list")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn no_credential_is_unauthorized_and_sessions_and_scopes_count() {
    let h = harness().await;
    let answer = h.get("events.list", Some(&json!({})), None).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_error(
        &answer.body,
        "UNAUTHORIZED",
        -32001,
        401,
        Some("events.list"),
    );

    // Authentication comes before the input, as with protectedProcedure.
    let answer = h.post("notes.create", "{not json", None).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_error(
        &answer.body,
        "UNAUTHORIZED",
        -32001,
        401,
        Some("notes.create"),
    );

    let answer = h
        .get_query("events.list,notes.search", "batch=1", None, None)
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.body.as_array().unwrap().len(), 2);
    assert_error(
        &answer.body[1],
        "UNAUTHORIZED",
        -32001,
        401,
        Some("notes.search"),
    );

    // A session cookie works like a token.
    let session_id = mint_session_id();
    let now = h.state.clock.now();
    h.store
        .create_session(NewSession {
            id_hash: hash_secret(&session_id),
            user_id: h.owner,
            expires_at: now
                .checked_add(jiff::SignedDuration::from_hours(24))
                .unwrap(),
        })
        .await
        .unwrap();
    let answer = h
        .send(
            Request::post("/trpc/capture.thought")
                .header(header::COOKIE, format!("synap_session={session_id}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"content":"from the browser"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["result"]["data"]["success"], json!(true));

    // A read-only token reads but cannot write.
    let read_only = mint(&h.store, h.owner, &["read"]).await;
    let answer = h
        .get(
            "notes.search",
            Some(&json!({"query": "browser"})),
            Some(&read_only),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["result"]["data"].as_array().unwrap().len(), 1);
    let answer = h
        .post("notes.create", r#"{"content":"x"}"#, Some(&read_only))
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_error(&answer.body, "FORBIDDEN", -32003, 403, Some("notes.create"));
}

#[tokio::test]
async fn every_procedure_stays_in_the_callers_scope() {
    let h = harness().await;
    h.mutate("notes.create", json!({"content": "owner's secret plan"}))
        .await;
    h.mutate(
        "capture.thought",
        json!({"content": "owner's secret thought"}),
    )
    .await;

    // The other user sees none of it: not by search, not in the log, not with a
    // `type` filter (the original's filter dropped the user filter).
    let hits = h
        .query("notes.search", json!({"query": "secret"}), &h.other_token)
        .await;
    assert_eq!(hits, json!([]));
    for input in [
        json!({}),
        json!({"type": "entity.created"}),
        json!({"type": "entity.created", "limit": 100}),
    ] {
        let events = h.query("events.list", input.clone(), &h.other_token).await;
        let events = events.as_array().unwrap();
        assert!(
            events.iter().all(|e| e["userId"] != json!(h.owner)),
            "{input}: {events:?}"
        );
        assert!(
            events.iter().all(|e| e["type"] != json!("entity.created")),
            "{input}: {events:?}"
        );
    }
    // The owner sees theirs, filtered by type.
    let events = h
        .query("events.list", json!({"type": "entity.created"}), &h.token)
        .await;
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e["type"] == json!("entity.created")));
    // An empty type is no filter, as in the original.
    let all = h.query("events.list", json!({"type": ""}), &h.token).await;
    assert!(all.as_array().unwrap().len() >= 2);
    let one = h.query("events.list", json!({"limit": 1}), &h.token).await;
    assert_eq!(one.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn events_log_appends_to_the_callers_stream_and_lists_by_its_type() {
    let h = harness().await;
    let correlation = Uuid::now_v7();
    let logged = h
        .mutate(
            "events.log",
            json!({"type": "client.opened", "data": {"screen": "home"}, "source": "sync",
                   "correlationId": correlation}),
        )
        .await;
    assert_eq!(logged["type"], json!("client.opened"));
    assert_eq!(logged["data"], json!({"screen": "home"}));
    assert_eq!(logged["source"], json!("sync"));
    assert_eq!(logged["correlationId"], json!(correlation));
    assert_eq!(logged["userId"], json!(h.owner));
    assert_eq!(logged["aggregateType"], json!("user"));
    assert!(logged["timestamp"].is_string() && logged["id"].is_string());

    // Without `source`, the source is `api`; a client may log a type that looks
    // like one of Synap's own.
    let second = h
        .mutate(
            "events.log",
            json!({"type": "entity.created", "data": {"entityId": "x"}}),
        )
        .await;
    assert_eq!(second["source"], json!("api"));
    assert_eq!(second["correlationId"], Value::Null);
    h.mutate("notes.create", json!({"content": "a real note"}))
        .await;

    let by_type = h
        .query("events.list", json!({"type": "client.opened"}), &h.token)
        .await;
    assert_eq!(by_type, json!([logged]));
    let created = h
        .query("events.list", json!({"type": "entity.created"}), &h.token)
        .await;
    let created = created.as_array().unwrap();
    assert_eq!(created.len(), 2, "{created:?}");
    assert_eq!(created[0]["aggregateType"], json!("entity"));
    assert_eq!(created[1], second);
    let newest = h.query("events.list", json!({"limit": 1}), &h.token).await;
    assert_eq!(newest[0]["type"], json!("entity.created"));
    assert_eq!(newest[0]["aggregateType"], json!("entity"));

    // Another user's log shows none of it.
    let other = h
        .query(
            "events.list",
            json!({"type": "client.opened"}),
            &h.other_token,
        )
        .await;
    assert_eq!(other, json!([]));

    // The store's limits are BAD_REQUEST too.
    for input in [
        json!({"type": "t".repeat(101), "data": {}}),
        json!({"type": "a\u{1}b", "data": {}}),
        json!({"type": "big", "data": {"x": "y".repeat(17 * 1024)}}),
    ] {
        let answer = h
            .post("events.log", &input.to_string(), Some(&h.token))
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
        assert_error(&answer.body, "BAD_REQUEST", -32600, 400, Some("events.log"));
    }
}

/// What the layers before `/trpc` (authentication, rate limit, body limit) can use
/// to answer in tRPC's shape instead of problem+json.
#[tokio::test]
async fn api_errors_render_in_trpc_shape() {
    use synap_server::error::ApiError;
    for (error, key, json_rpc, http) in [
        (
            ApiError::unauthorized("revoked"),
            "UNAUTHORIZED",
            -32001,
            401,
        ),
        (
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "slow down")
                .with_header(header::RETRY_AFTER, "7".parse().unwrap()),
            "TOO_MANY_REQUESTS",
            -32029,
            429,
        ),
        (
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "too big",
            ),
            "PAYLOAD_TOO_LARGE",
            -32013,
            413,
        ),
        (ApiError::internal(), "INTERNAL_SERVER_ERROR", -32603, 500),
    ] {
        let response = synap_server::trpc::error_response(error);
        assert_eq!(response.status().as_u16(), http);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        if http == 429 {
            assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        }
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_error(&body, key, json_rpc, http, None);
    }
}

// ---------------------------------------------------------------------------------
// The official client
// ---------------------------------------------------------------------------------

fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/trpc-client")
}

/// Fails with a one-line hint when `program` cannot be run: this test must never
/// pass silently on a machine without Node.js.
fn require_tool(program: &str) {
    let found = std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "the @trpc/client test needs `{program}`: install Node.js with npm (Debian: apt-get install nodejs npm)"
    );
}

/// `npm ci` in the client folder when its dependencies are not installed yet.
async fn install_client(dir: &Path) {
    if dir.join("node_modules/@trpc/client/package.json").exists() {
        return;
    }
    require_tool("npm");
    let output = tokio::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run npm ci");
    assert!(
        output.status.success(),
        "npm ci in {} failed:\n{}\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_trpc_client_drives_the_real_server() {
    require_tool("node");
    let dir = client_dir();
    install_client(&dir).await;

    let Harness {
        _dir,
        shutdown,
        state,
        token,
        other_token,
        ..
    } = harness().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(synap_server::serve(listener, state, shutdown, async move {
        let _ = stop_rx.await;
    }));

    let run = tokio::process::Command::new("node")
        .arg("client.mjs")
        .current_dir(&dir)
        .env("SYNAP_TRPC_URL", format!("http://{address}/trpc"))
        .env("SYNAP_TOKEN", &token)
        .env("SYNAP_OTHER_TOKEN", &other_token)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the client script finished within 120 s")
        .expect("run node");
    let _ = stop_tx.send(());
    let served = server.await.expect("server task");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the @trpc/client script failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    assert!(stdout.contains("\"ok\":true"), "{stdout}");
    served.expect("the server shut down cleanly");
    // Shown with --nocapture: what the client sent and got.
    println!("{stdout}");
}

/// Failures answered before the procedures run (here: a revoked-looking, unknown
/// token) still reach the official client in tRPC's shape, with the layers'
/// headers kept.
#[tokio::test]
async fn a_bad_token_is_a_trpc_unauthorized_error_too() {
    let h = harness().await;
    let unknown = format!("syn_{}", "A".repeat(44));
    let answer = h.get("events.list", Some(&json!({})), Some(&unknown)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.body["error"]["data"]["code"], "UNAUTHORIZED",
        "{}",
        answer.body
    );
    assert_eq!(answer.body["error"]["code"], -32001);
    assert!(
        answer.body.get("type").is_none(),
        "not a problem+json body: {}",
        answer.body
    );
}
