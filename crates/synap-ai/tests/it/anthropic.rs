//! The Anthropic analyzer against a mock Messages API.

use crate::mock::{Mock, Reply, closed_port_url};
use jiff::tz::TimeZone;
use serde_json::{Value, json};
use std::time::Duration;
use synap_ai::anthropic::{ANALYSIS_TOOL, ANTHROPIC_VERSION};
use synap_ai::{
    AiError, AnalysisRequest, Analyzer, AnthropicAnalyzer, AnthropicConfig, ApiKey,
    analysis_json_schema,
};
use synap_domain::EntityType;

pub const TEXT: &str = "Buy milk tomorrow at 3pm";

pub fn request() -> AnalysisRequest {
    AnalysisRequest {
        text: TEXT.into(),
        now: "2026-11-28T09:00:00Z".parse().unwrap(),
        time_zone: TimeZone::get("Europe/Berlin").unwrap(),
    }
}

pub fn good_analysis() -> Value {
    json!({
        "title": "Buy milk",
        "tags": ["Groceries", "milk", "errands"],
        "intent": "task",
        "due_at": "2026-11-29T15:00:00+01:00",
        "priority": null
    })
}

fn tool_answer(input: Value) -> Value {
    json!({
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": [
            {"type": "text", "text": "Recording the analysis."},
            {"type": "tool_use", "id": "toolu_01", "name": ANALYSIS_TOOL, "input": input}
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 100, "output_tokens": 50}
    })
}

fn analyzer(base_url: &str, timeout: Duration) -> AnthropicAnalyzer {
    let mut config = AnthropicConfig::new(ApiKey::new("test-key"));
    config.base_url = base_url.into();
    config.model = "claude-test".into();
    config.timeout = timeout;
    AnthropicAnalyzer::new(config).unwrap()
}

async fn run(reply: Reply) -> (Result<synap_ai::Analysis, AiError>, Mock) {
    let mock = Mock::start(reply).await;
    let result = analyzer(&mock.base_url, Duration::from_secs(5))
        .analyze(&request())
        .await;
    (result, mock)
}

#[tokio::test]
async fn good_output_is_validated_and_the_request_has_the_documented_shape() {
    let (result, mock) = run(Reply::json(tool_answer(good_analysis()))).await;
    let analysis = result.unwrap();
    assert_eq!(analysis.title, "Buy milk");
    assert_eq!(analysis.tags, ["groceries", "milk", "errands"]);
    assert_eq!(analysis.intent, EntityType::Task);
    assert_eq!(
        analysis.due_at,
        Some("2026-11-29T14:00:00Z".parse().unwrap())
    );

    let sent = mock.only_request();
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some("test-key"));
    assert_eq!(sent.header("anthropic-version"), Some(ANTHROPIC_VERSION));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("authorization"), None);
    let body = &sent.body;
    assert_eq!(body["model"], "claude-test");
    assert!(body["max_tokens"].as_u64().unwrap() > 0);
    assert_eq!(body["messages"], json!([{"role": "user", "content": TEXT}]));
    assert_eq!(body["tools"].as_array().unwrap().len(), 1);
    assert_eq!(body["tools"][0]["name"], ANALYSIS_TOOL);
    assert_eq!(body["tools"][0]["input_schema"], analysis_json_schema());
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": ANALYSIS_TOOL})
    );
    let system = body["system"].as_str().unwrap();
    assert!(system.contains("2026-11-28T10:00:00+01:00"), "{system}");
    assert!(system.contains("Europe/Berlin"), "{system}");
}

#[tokio::test]
async fn malformed_output_is_not_retryable() {
    // No tool call at all.
    let answer = json!({"content": [{"type": "text", "text": "Sure! Title: Buy milk"}],
                        "stop_reason": "end_turn"});
    let (result, _mock) = run(Reply::json(answer)).await;
    let err = result.unwrap_err();
    assert!(!err.is_retryable());
    assert!(
        err.to_string()
            .contains("does not call the record_analysis tool"),
        "{err}"
    );

    // Not JSON at all.
    let (result, _mock) = run(Reply::status(200, "<html>gateway</html>")).await;
    let err = result.unwrap_err();
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("not JSON"), "{err}");

    // Cut off.
    let (result, _mock) = run(Reply::json(
        json!({"content": [], "stop_reason": "max_tokens"}),
    ))
    .await;
    assert!(result.unwrap_err().to_string().contains("token limit"));
}

#[tokio::test]
async fn invalid_output_names_what_was_wrong() {
    let mut bad_intent = good_analysis();
    bad_intent["intent"] = json!("project");
    let (result, _mock) = run(Reply::json(tool_answer(bad_intent))).await;
    let err = result.unwrap_err();
    assert!(matches!(err, AiError::InvalidOutput { .. }));
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("intent \"project\""), "{err}");

    let mut many_tags = good_analysis();
    many_tags["tags"] = json!(["a1", "b1", "c1", "d1", "e1", "f1", "g1"]);
    let (result, _mock) = run(Reply::json(tool_answer(many_tags))).await;
    let err = result.unwrap_err();
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("7 tags"), "{err}");
}

#[tokio::test]
async fn a_timeout_is_retryable() {
    let mock =
        Mock::start(Reply::json(tool_answer(good_analysis())).delayed(Duration::from_secs(3)))
            .await;
    let started = std::time::Instant::now();
    let err = analyzer(&mock.base_url, Duration::from_millis(300))
        .analyze(&request())
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the timeout was not applied"
    );
    assert!(matches!(err, AiError::Timeout { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("300 ms"), "{err}");
}

#[tokio::test]
async fn rate_limiting_is_retryable_after_the_given_time() {
    let reply = Reply::status(
        429,
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
    )
    .with_header("retry-after", "17");
    let (result, _mock) = run(reply).await;
    let err = result.unwrap_err();
    assert!(matches!(err, AiError::RateLimited { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(17)));
}

#[tokio::test]
async fn server_errors_are_retryable_and_auth_errors_are_not() {
    let (result, _mock) = run(Reply::status(
        500,
        r#"{"type":"error","error":{"type":"api_error","message":"internal"}}"#,
    ))
    .await;
    let err = result.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("HTTP 500: internal"), "{err}");

    let (result, _mock) = run(Reply::status(
        529,
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    ))
    .await;
    assert!(result.unwrap_err().is_retryable());

    let (result, _mock) = run(Reply::status(
        401,
        r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
    ))
    .await;
    let err = result.unwrap_err();
    assert!(!err.is_retryable(), "{err:?}");
    assert!(
        err.to_string().contains("HTTP 401: invalid x-api-key"),
        "{err}"
    );

    let (result, _mock) = run(Reply::status(
        400,
        r#"{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}"#,
    ))
    .await;
    assert!(!result.unwrap_err().is_retryable());
}

#[tokio::test]
async fn an_unreachable_server_is_retryable() {
    let err = analyzer(&closed_port_url().await, Duration::from_secs(5))
        .analyze(&request())
        .await
        .unwrap_err();
    assert!(matches!(err, AiError::Connection { .. }), "{err:?}");
    assert!(err.is_retryable());
}
