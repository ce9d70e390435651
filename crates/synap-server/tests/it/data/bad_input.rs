//! The bad-input matrix: malformed JSON, wrong types, unknown fields, oversize
//! strings, invalid ids, missing credentials and scopes. Each answer is the right
//! 4xx as problem+json with a stable code (and `field` where one is at fault),
//! never a 5xx, and nothing is stored.

use super::{TestApp, User};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

struct Case {
    method: Method,
    uri: String,
    body: Option<Vec<u8>>,
    content_type: Option<&'static str>,
    status: StatusCode,
    code: &'static str,
    field: Option<&'static str>,
}

fn case(method: Method, uri: &str, body: Value, status: StatusCode, code: &'static str) -> Case {
    Case {
        method,
        uri: uri.to_string(),
        body: Some(serde_json::to_vec(&body).unwrap()),
        content_type: Some("application/json"),
        status,
        code,
        field: None,
    }
}

fn raw(method: Method, uri: &str, body: &str, status: StatusCode, code: &'static str) -> Case {
    Case {
        method,
        uri: uri.to_string(),
        body: Some(body.as_bytes().to_vec()),
        content_type: Some("application/json"),
        status,
        code,
        field: None,
    }
}

fn invalid(method: Method, uri: &str, body: Value, field: &'static str) -> Case {
    Case {
        field: Some(field),
        ..case(
            method,
            uri,
            body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
    }
}

async fn run(t: &TestApp, user: &User, cases: Vec<Case>) {
    for case in cases {
        let head = t.head().await;
        let reply = t
            .send_raw(
                case.method.clone(),
                &case.uri,
                Some(user),
                case.body.clone(),
                case.content_type,
                &[],
            )
            .await;
        let what = format!(
            "{} {} {}",
            case.method,
            case.uri,
            case.body
                .as_ref()
                .map(|b| String::from_utf8_lossy(&b[..b.len().min(120)]).into_owned())
                .unwrap_or_default()
        );
        assert!(!reply.status.is_server_error(), "{what}: {}", reply.text());
        assert_eq!(reply.status, case.status, "{what}: {}", reply.text());
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json"),
            "{what}"
        );
        let problem = reply.json();
        assert_eq!(problem["code"], case.code, "{what}: {problem}");
        assert_eq!(problem["status"], case.status.as_u16(), "{what}");
        assert!(
            problem["title"].is_string()
                && problem["detail"].is_string()
                && problem["type"].is_string()
        );
        if let Some(field) = case.field {
            assert_eq!(problem["field"], field, "{what}: {problem}");
        }
        assert_eq!(t.head().await, head, "{what}: nothing is stored");
    }
}

#[tokio::test]
async fn bad_bodies_and_ids_are_refused_and_store_nothing() {
    let t = TestApp::new().await;
    let alice = t.user("alice@example.com").await;
    let note = t.note(&alice, "a note").await;
    let e = format!("/v1/entities/{note}");
    let long_title = "t".repeat(301);
    let long_tag = "g".repeat(65);
    let many_tags: Vec<String> = (0..65).map(|i| format!("t{i}")).collect();
    let big_metadata = json!({"blob": "m".repeat(17 * 1024)});
    use Method as M;
    use StatusCode as S;
    let cases = vec![
        // POST /v1/entities
        raw(
            M::POST,
            "/v1/entities",
            "{",
            S::BAD_REQUEST,
            "malformed_json",
        ),
        raw(
            M::POST,
            "/v1/entities",
            "",
            S::BAD_REQUEST,
            "malformed_json",
        ),
        raw(
            M::POST,
            "/v1/entities",
            "{\"type\": \"note\",}",
            S::BAD_REQUEST,
            "malformed_json",
        ),
        raw(
            M::POST,
            "/v1/entities",
            "null",
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        raw(
            M::POST,
            "/v1/entities",
            "[]",
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        Case {
            content_type: None,
            ..raw(
                M::POST,
                "/v1/entities",
                "{\"type\":\"note\"}",
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            )
        },
        Case {
            content_type: Some("text/plain"),
            ..raw(
                M::POST,
                "/v1/entities",
                "{\"type\":\"note\"}",
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            )
        },
        case(
            M::POST,
            "/v1/entities",
            json!({}),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            M::POST,
            "/v1/entities",
            json!({"type": 5}),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            M::POST,
            "/v1/entities",
            json!({"type": "recipe"}),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            M::POST,
            "/v1/entities",
            json!({"type": "note", "colour": "red"}),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            M::POST,
            "/v1/entities",
            json!({"type": "note", "tags": "a"}),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            M::POST,
            "/v1/entities",
            json!({"type": "note", "metadata": [1]}),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            M::POST,
            "/v1/entities",
            json!({"type": "task", "task": {"due_at": "tomorrow"}}),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            M::POST,
            "/v1/entities",
            json!({"type": "task", "task": {"priority": -1}}),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            M::POST,
            "/v1/entities",
            json!({"type": "task", "task": {"urgent": true}}),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        invalid(
            M::POST,
            "/v1/entities",
            json!({"type": "note", "title": long_title}),
            "title",
        ),
        invalid(
            M::POST,
            "/v1/entities",
            json!({"type": "note", "title": "two\nlines"}),
            "title",
        ),
        invalid(
            M::POST,
            "/v1/entities",
            json!({"type": "note", "tags": [long_tag]}),
            "tags",
        ),
        invalid(
            M::POST,
            "/v1/entities",
            json!({"type": "note", "tags": [""]}),
            "tags",
        ),
        invalid(
            M::POST,
            "/v1/entities",
            json!({"type": "note", "tags": many_tags}),
            "tags",
        ),
        invalid(
            M::POST,
            "/v1/entities",
            json!({"type": "note", "metadata": big_metadata}),
            "metadata",
        ),
        invalid(
            M::POST,
            "/v1/entities",
            json!({"type": "note", "task": {"status": "todo"}}),
            "task",
        ),
        invalid(
            M::POST,
            "/v1/entities",
            json!({"type": "task", "task": {"priority": 4}}),
            "priority",
        ),
        invalid(
            M::POST,
            "/v1/entities",
            json!({"type": "task", "task": {"priority": 300}}),
            "priority",
        ),
        invalid(
            M::POST,
            "/v1/entities",
            json!({"type": "note", "content": "x", "media_type": "nope"}),
            "media_type",
        ),
        invalid(
            M::POST,
            "/v1/entities",
            json!({"type": "note", "media_type": "text/plain"}),
            "media_type",
        ),
        Case {
            field: Some("id"),
            ..case(
                M::POST,
                "/v1/entities",
                json!({"type": "note", "id": "abc"}),
                S::BAD_REQUEST,
                "invalid_id",
            )
        },
        // PATCH /v1/entities/{id}
        raw(
            M::PATCH,
            &e,
            "{\"title\": ",
            S::BAD_REQUEST,
            "malformed_json",
        ),
        case(
            M::PATCH,
            &e,
            json!({"title": 5}),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            M::PATCH,
            &e,
            json!({"tittle": "x"}),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            M::PATCH,
            &e,
            json!({"expected_version": "one"}),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            M::PATCH,
            &e,
            json!({"add_tags": "x"}),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            M::PATCH,
            &e,
            json!({"due_at": "soon"}),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            M::PATCH,
            &e,
            json!({"status": "done"}),
            S::UNPROCESSABLE_ENTITY,
            "not_a_task",
        ),
        invalid(M::PATCH, &e, json!({"title": "t".repeat(301)}), "title"),
        invalid(M::PATCH, &e, json!({"add_tags": ["a,b"]}), "tags"),
        invalid(
            M::PATCH,
            &e,
            json!({"add_tags": (0..100_000).map(|i| format!("t{i}")).collect::<Vec<_>>()}),
            "tags",
        ),
        invalid(
            M::PATCH,
            &e,
            json!({"remove_tags": (0..65).map(|i| format!("t{i}")).collect::<Vec<_>>()}),
            "tags",
        ),
        invalid(M::PATCH, &e, json!({"metadata_set": {"": 1}}), "metadata"),
        invalid(M::PATCH, &e, json!({"priority": 9}), "priority"),
        invalid(
            M::PATCH,
            &e,
            json!({"type": "task", "priority": 9}),
            "priority",
        ),
        invalid(
            M::PATCH,
            &e,
            json!({"content": null, "media_type": "text/plain"}),
            "media_type",
        ),
        Case {
            field: None,
            ..case(
                M::PATCH,
                "/v1/entities/not-a-uuid",
                json!({"title": "x"}),
                S::BAD_REQUEST,
                "invalid_id",
            )
        },
        // Revert, relations, capture
        case(
            M::POST,
            &format!("{e}/revert"),
            json!({}),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            M::POST,
            &format!("{e}/revert"),
            json!({"version": "1"}),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            M::POST,
            &format!("{e}/revert"),
            json!({"version": -1}),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            M::POST,
            "/v1/entities/123/revert",
            json!({"version": 1}),
            S::BAD_REQUEST,
            "invalid_id",
        ),
        case(
            M::POST,
            "/v1/relations",
            json!({"source_id": 1, "target_id": note}),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            M::POST,
            "/v1/relations",
            json!({"source_id": note}),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        Case {
            field: Some("target_id"),
            ..case(
                M::POST,
                "/v1/relations",
                json!({"source_id": note, "target_id": "x"}),
                S::BAD_REQUEST,
                "invalid_id",
            )
        },
        case(
            M::POST,
            "/v1/capture",
            json!({"text": 5}),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            M::POST,
            "/v1/capture",
            json!({"text": "a", "extra": 1}),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        case(
            M::POST,
            "/v1/capture",
            json!({"text": "a", "context": "phone"}),
            S::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        // Ids in paths
        Case {
            body: None,
            content_type: None,
            ..case(
                M::GET,
                "/v1/entities/123",
                json!(null),
                S::BAD_REQUEST,
                "invalid_id",
            )
        },
        Case {
            body: None,
            content_type: None,
            ..case(
                M::DELETE,
                "/v1/entities/xyz",
                json!(null),
                S::BAD_REQUEST,
                "invalid_id",
            )
        },
        Case {
            body: None,
            content_type: None,
            ..case(
                M::POST,
                "/v1/entities/xyz/restore",
                json!(null),
                S::BAD_REQUEST,
                "invalid_id",
            )
        },
        Case {
            body: None,
            content_type: None,
            ..case(
                M::GET,
                "/v1/entities/xyz/history",
                json!(null),
                S::BAD_REQUEST,
                "invalid_id",
            )
        },
        Case {
            body: None,
            content_type: None,
            ..case(
                M::GET,
                "/v1/entities/xyz/content",
                json!(null),
                S::BAD_REQUEST,
                "invalid_id",
            )
        },
        Case {
            body: None,
            content_type: None,
            ..case(
                M::GET,
                "/v1/entities/xyz/relations",
                json!(null),
                S::BAD_REQUEST,
                "invalid_id",
            )
        },
        Case {
            body: None,
            content_type: None,
            ..case(
                M::DELETE,
                "/v1/relations/zzz",
                json!(null),
                S::BAD_REQUEST,
                "invalid_id",
            )
        },
        Case {
            body: None,
            content_type: None,
            ..case(
                M::GET,
                &format!("{e}/history?limit=x"),
                json!(null),
                S::BAD_REQUEST,
                "invalid_query",
            )
        },
        Case {
            body: None,
            content_type: None,
            ..case(
                M::GET,
                &format!("{e}/history?page=2"),
                json!(null),
                S::BAD_REQUEST,
                "invalid_query",
            )
        },
    ];
    run(&t, &alice, cases).await;
}

#[tokio::test]
async fn a_body_over_the_size_limit_is_413() {
    let t = TestApp::new().await;
    let alice = t.user("alice@example.com").await;
    let huge = "x".repeat(10 * 1024 * 1024 + 1);
    run(
        &t,
        &alice,
        vec![case(
            Method::POST,
            "/v1/entities",
            json!({"type": "note", "content": huge}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        )],
    )
    .await;
}

#[tokio::test]
async fn credentials_and_scopes_are_checked_before_the_body() {
    let t = TestApp::new().await;
    let owner = t.user("alice@example.com").await;
    let note = t.note(&owner, "mine").await;
    let reader = t.user_with("alice@example.com", &["read"]).await;
    let writer = t.user_with("alice@example.com", &["write"]).await;
    let head = t.head().await;

    let writes: Vec<(Method, String)> = vec![
        (Method::POST, "/v1/entities".into()),
        (Method::PATCH, format!("/v1/entities/{note}")),
        (Method::DELETE, format!("/v1/entities/{note}")),
        (Method::POST, format!("/v1/entities/{note}/restore")),
        (Method::POST, format!("/v1/entities/{note}/revert")),
        (Method::POST, "/v1/relations".into()),
        (Method::DELETE, format!("/v1/relations/{note}")),
        (Method::POST, "/v1/capture".into()),
    ];
    let reads: Vec<(Method, String)> = vec![
        (Method::GET, "/v1/entities".into()),
        (Method::GET, format!("/v1/entities/{note}")),
        (Method::GET, format!("/v1/entities/{note}/history")),
        (Method::GET, format!("/v1/entities/{note}/content")),
        (Method::GET, format!("/v1/entities/{note}/relations")),
        (Method::GET, format!("/v1/graph?root={note}")),
        (Method::GET, "/v1/tags".into()),
        (Method::GET, "/v1/search?q=mine".into()),
        (Method::GET, "/v1/events".into()),
    ];
    for (method, uri) in writes.iter().chain(reads.iter()) {
        // A malformed body must not get past the missing credential.
        let anonymous = t
            .send_raw(
                method.clone(),
                uri,
                None,
                Some(b"{".to_vec()),
                Some("application/json"),
                &[],
            )
            .await;
        anonymous.problem(StatusCode::UNAUTHORIZED, "unauthorized");
        assert!(anonymous.header("www-authenticate").is_some());
    }
    for (method, uri) in &writes {
        t.send_raw(
            method.clone(),
            uri,
            Some(&reader),
            Some(b"{".to_vec()),
            Some("application/json"),
            &[],
        )
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
    }
    for (method, uri) in &reads {
        t.send(method.clone(), uri, Some(&writer), None)
            .await
            .problem(StatusCode::FORBIDDEN, "forbidden");
        let ok = t.send(method.clone(), uri, Some(&reader), None).await;
        assert_eq!(ok.status, StatusCode::OK, "{method} {uri}: {}", ok.text());
    }
    assert_eq!(t.head().await, head, "nothing was stored");
}
