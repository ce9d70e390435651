//! The OpenAI-compatible analyzer against a mock chat completions endpoint.

use crate::anthropic::{TEXT, good_analysis, request};
use crate::mock::{Mock, Reply};
use serde_json::{Value, json};
use std::time::Duration;
use synap_ai::openai::ANALYSIS_SCHEMA_NAME;
use synap_ai::{AiError, Analyzer, ApiKey, OpenAiAnalyzer, OpenAiConfig, analysis_json_schema};
use synap_domain::EntityType;

fn completion(content: &str) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-test",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": null},
            "finish_reason": "stop"
        }]
    })
}

fn analyzer(base_url: &str, api_key: Option<&str>, timeout: Duration) -> OpenAiAnalyzer {
    OpenAiAnalyzer::new(OpenAiConfig {
        base_url: base_url.into(),
        api_key: api_key.map(ApiKey::new),
        model: "gpt-test".into(),
        timeout,
    })
    .unwrap()
}

async fn run(reply: Reply) -> (Result<synap_ai::Analysis, AiError>, Mock) {
    let mock = Mock::start(reply).await;
    let result = analyzer(&mock.base_url, Some("sk-test"), Duration::from_secs(5))
        .analyze(&request())
        .await;
    (result, mock)
}

#[tokio::test]
async fn good_output_is_validated_and_the_request_has_the_documented_shape() {
    let (result, mock) = run(Reply::json(completion(&good_analysis().to_string()))).await;
    let analysis = result.unwrap();
    assert_eq!(analysis.title, "Buy milk");
    assert_eq!(analysis.intent, EntityType::Task);
    assert_eq!(
        analysis.due_at,
        Some("2026-11-29T14:00:00Z".parse().unwrap())
    );

    let sent = mock.only_request();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    let body = &sent.body;
    assert_eq!(body["model"], "gpt-test");
    assert_eq!(body["messages"][0]["role"], "system");
    assert!(
        body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("2026-11-28T10:00:00+01:00")
    );
    assert_eq!(
        body["messages"][1],
        json!({"role": "user", "content": TEXT})
    );
    assert_eq!(
        body["response_format"],
        json!({"type": "json_schema", "json_schema": {
            "name": ANALYSIS_SCHEMA_NAME, "strict": true, "schema": analysis_json_schema()}})
    );
}

#[tokio::test]
async fn a_server_without_key_gets_no_authorization_header() {
    // Ollama's OpenAI-compatible API, configured as `http://host:11434/v1`.
    let mock = Mock::start(Reply::json(completion(&good_analysis().to_string()))).await;
    analyzer(
        &format!("{}/v1", mock.base_url),
        None,
        Duration::from_secs(5),
    )
    .analyze(&request())
    .await
    .unwrap();
    let sent = mock.only_request();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.header("authorization"), None);
}

#[tokio::test]
async fn malformed_output_is_not_retryable() {
    let (result, _mock) = run(Reply::json(completion("Title: Buy milk, tags: milk"))).await;
    let err = result.unwrap_err();
    assert!(matches!(err, AiError::InvalidOutput { .. }));
    assert!(!err.is_retryable());
    assert!(
        err.to_string().contains("message content is not JSON"),
        "{err}"
    );

    let (result, _mock) = run(Reply::json(json!({"choices": []}))).await;
    assert!(result.unwrap_err().to_string().contains("no choices"));

    let refusal = json!({"choices": [{"message": {"role": "assistant", "content": null,
                          "refusal": "I can't help with that."}, "finish_reason": "stop"}]});
    let (result, _mock) = run(Reply::json(refusal)).await;
    let err = result.unwrap_err();
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("refused"), "{err}");
}

#[tokio::test]
async fn invalid_output_names_what_was_wrong() {
    let mut bad_intent = good_analysis();
    bad_intent["intent"] = json!("reminder");
    let (result, _mock) = run(Reply::json(completion(&bad_intent.to_string()))).await;
    let err = result.unwrap_err();
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("intent \"reminder\""), "{err}");

    let mut many_tags = good_analysis();
    many_tags["tags"] = json!(["a1", "b1", "c1", "d1", "e1", "f1"]);
    let (result, _mock) = run(Reply::json(completion(&many_tags.to_string()))).await;
    let err = result.unwrap_err();
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("6 tags"), "{err}");

    let mut bad_priority = good_analysis();
    bad_priority["priority"] = json!(7);
    let (result, _mock) = run(Reply::json(completion(&bad_priority.to_string()))).await;
    assert!(result.unwrap_err().to_string().contains("priority 7"));
}

#[tokio::test]
async fn a_timeout_is_retryable() {
    let mock = Mock::start(
        Reply::json(completion(&good_analysis().to_string())).delayed(Duration::from_secs(3)),
    )
    .await;
    let err = analyzer(&mock.base_url, None, Duration::from_millis(250))
        .analyze(&request())
        .await
        .unwrap_err();
    assert!(matches!(err, AiError::Timeout { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn status_codes_decide_retries() {
    let reply = Reply::status(
        429,
        r#"{"error":{"message":"Rate limit reached","type":"requests"}}"#,
    )
    .with_header("retry-after", "2");
    let (result, _mock) = run(reply).await;
    let err = result.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));

    let (result, _mock) = run(Reply::status(503, "upstream unavailable")).await;
    let err = result.unwrap_err();
    assert!(err.is_retryable());
    assert!(
        err.to_string().contains("HTTP 503: upstream unavailable"),
        "{err}"
    );

    let (result, _mock) = run(Reply::status(500, r#"{"error":{"message":"boom"}}"#)).await;
    assert!(result.unwrap_err().is_retryable());

    let (result, _mock) = run(Reply::status(
        401,
        r#"{"error":{"message":"Incorrect API key provided"}}"#,
    ))
    .await;
    let err = result.unwrap_err();
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("Incorrect API key"), "{err}");

    let (result, _mock) = run(Reply::status(
        404,
        r#"{"error":{"message":"model not found"}}"#,
    ))
    .await;
    assert!(!result.unwrap_err().is_retryable());
}
