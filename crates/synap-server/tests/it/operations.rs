//! `/health`, `/ready` and `/metrics`, in process.

use crate::server_harness::{Auth, Harness, request, test_config};
use axum::http::{Method, StatusCode};
use std::time::Duration;
use synap_server::ServerConfig;
use synap_store::Accounts;

#[tokio::test]
async fn health_reports_the_original_fields_and_the_database() {
    let h = Harness::manual(test_config()).await;
    let answer = h
        .call(request(Method::GET, "/health", Auth::None, None))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["mode"], "single-user");
    assert_eq!(body["auth"], "token+session");
    assert_eq!(body["database"]["backend"], "sqlite");
    assert_eq!(body["database"]["status"], "ok");
    let timestamp: jiff::Timestamp = body["timestamp"]
        .as_str()
        .expect("a timestamp")
        .parse()
        .expect("RFC 3339");
    assert_eq!(timestamp, h.state.clock.now());

    let open = Harness::manual(ServerConfig {
        allow_registration: true,
        ..test_config()
    })
    .await;
    let answer = open
        .call(request(Method::GET, "/health", Auth::None, None))
        .await;
    assert_eq!(answer.json()["mode"], "multi-user");
}

#[tokio::test]
async fn health_ignores_credentials_it_does_not_need() {
    let h = Harness::manual(test_config()).await;
    let owner = h.store.local_owner().await.expect("owner");
    let token = h.token(owner.id, &["read"]).await;
    let answer = h
        .call(request(Method::GET, "/health", Auth::Bearer(&token), None))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn ready_answers_until_shutdown_begins() {
    let h = Harness::manual(test_config()).await;
    let answer = h
        .call(request(Method::GET, "/ready", Auth::None, None))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["status"], "ready");

    h.begin_shutdown();
    let answer = h
        .call(request(Method::GET, "/ready", Auth::None, None))
        .await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(answer.json()["code"], "not_ready");
    assert_eq!(answer.header("retry-after"), Some("1"));
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern_commands_and_streams() {
    let h = Harness::manual(test_config()).await;
    let owner = h.store.local_owner().await.expect("owner");
    let token = h.token(owner.id, &["read", "write"]).await;
    for _ in 0..3 {
        h.call(request(Method::GET, "/health", Auth::None, None))
            .await;
    }
    // Two different ids: one series, labelled with the pattern.
    for id in [uuid::Uuid::now_v7(), uuid::Uuid::now_v7()] {
        let answer = h
            .call(request(
                Method::DELETE,
                &format!("/v1/tokens/{id}"),
                Auth::Bearer(&token),
                None,
            ))
            .await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
    }
    h.call(request(Method::GET, "/no/such/route", Auth::None, None))
        .await;

    // A command run through the metrics' `execute`.
    let request_ = synap_store::CommandRequest::new(
        synap_store::Scope::user(owner.id),
        synap_store::Target::Entity {
            id: synap_domain::EntityId::new_v7(),
            command: synap_domain::EntityCommand::Create(synap_domain::CreateEntity::note(
                "counted",
            )),
        },
        synap_domain::EventMetadata::default(),
    );
    let outcome = h
        .state
        .metrics
        .execute(h.state.store.as_ref(), request_)
        .await
        .expect("execute");
    let appended = outcome.events.len();
    assert!(appended >= 1);

    let answer = h
        .call(request(Method::GET, "/metrics", Auth::None, None))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = answer.text();
    assert!(
        text.contains(
            "synap_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 3"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "synap_http_requests_total{method=\"DELETE\",route=\"/v1/tokens/{id}\",status=\"404\"} 2"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "synap_http_requests_total{method=\"GET\",route=\"(unmatched)\",status=\"404\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "synap_http_request_duration_seconds_count{method=\"GET\",route=\"/health\"} 3"
        )
    );
    assert!(text.contains("# TYPE synap_http_request_duration_seconds histogram"));
    assert!(text.contains(&format!("synap_events_appended_total {appended}\n")));
    assert!(text.contains("synap_command_duration_seconds_count 1\n"));
    assert!(text.contains("synap_sse_streams_open 0\n"));
    // No raw id reaches a label.
    assert!(!text.contains("/v1/tokens/0"));
    // Every sample line is `name{labels} value` or `name value`.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().expect("a value");
        assert!(value.parse::<f64>().is_ok(), "bad sample: {line}");
    }
}

#[tokio::test]
async fn the_metrics_see_an_open_stream() {
    let h = Harness::manual(ServerConfig {
        sse_keep_alive: Duration::from_millis(50),
        ..test_config()
    })
    .await;
    let owner = h.store.local_owner().await.expect("owner");
    let token = h.token(owner.id, &["read"]).await;
    let response = tower::ServiceExt::oneshot(
        synap_server::app(h.state.clone()),
        request(Method::GET, "/v1/events/stream", Auth::Bearer(&token), None),
    )
    .await
    .expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(h.state.metrics.streams_open(), 1);
    drop(response);
    crate::server_harness::eventually(Duration::from_secs(5), "the stream to close", || async {
        h.state.metrics.streams_open() == 0
    })
    .await;
}
