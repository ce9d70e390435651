//! The `openai` analyzer: any OpenAI-compatible chat completions endpoint
//! (`POST {base}/v1/chat/completions`) — OpenAI itself, Ollama, vLLM, llama.cpp's
//! server. Structured output is asked for with `response_format` of type
//! `json_schema` in strict mode, with [`analysis_json_schema`]; servers that honour it
//! only loosely are covered by validating the answer here ([`parse_analysis_json`]).
//!
//! The API key is optional: local servers such as Ollama need none, and then no
//! `Authorization` header is sent.

use crate::analysis::{
    Analysis, AnalysisRequest, Analyzer, analysis_json_schema, parse_analysis_json, system_prompt,
};
use crate::anthropic::REMOTE_INPUT_CHARS_MAX;
use crate::config::ApiKey;
use crate::error::AiError;
use crate::http::{JsonClient, REQUEST_TIMEOUT_DEFAULT, endpoint};
use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use std::time::Duration;

/// The provider name in event metadata and errors.
pub const OPENAI_PROVIDER: &str = "openai";
pub const OPENAI_BASE_URL_DEFAULT: &str = "https://api.openai.com";
pub const OPENAI_MODEL_DEFAULT: &str = "gpt-4o-mini";
/// The name of the response schema (`response_format.json_schema.name`).
pub const ANALYSIS_SCHEMA_NAME: &str = "thought_analysis";

/// Settings of the OpenAI-compatible analyzer.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    pub base_url: String,
    pub api_key: Option<ApiKey>,
    pub model: String,
    pub timeout: Duration,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        OpenAiConfig {
            base_url: OPENAI_BASE_URL_DEFAULT.into(),
            api_key: None,
            model: OPENAI_MODEL_DEFAULT.into(),
            timeout: REQUEST_TIMEOUT_DEFAULT,
        }
    }
}

/// `Authorization: Bearer <key>` when a key is configured.
pub(crate) fn auth_headers(api_key: Option<&ApiKey>) -> Result<HeaderMap, AiError> {
    let mut headers = HeaderMap::new();
    if let Some(key) = api_key {
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", key.expose())).map_err(|_| {
                AiError::Config("the API key contains characters a header cannot carry".into())
            })?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    Ok(headers)
}

/// Analyzes thoughts with an OpenAI-compatible chat model.
#[derive(Debug)]
pub struct OpenAiAnalyzer {
    config: OpenAiConfig,
    url: String,
    client: JsonClient,
}

impl OpenAiAnalyzer {
    pub fn new(config: OpenAiConfig) -> Result<Self, AiError> {
        Ok(OpenAiAnalyzer {
            url: endpoint(&config.base_url, "chat/completions"),
            client: JsonClient::new(OPENAI_PROVIDER, config.timeout)?,
            config,
        })
    }

    /// The request body (public for tests and for documentation of the wire shape).
    pub fn request_body(&self, request: &AnalysisRequest) -> Value {
        let text: String = request.text.chars().take(REMOTE_INPUT_CHARS_MAX).collect();
        json!({
            "model": self.config.model,
            "messages": [
                { "role": "system", "content": system_prompt(request) },
                { "role": "user", "content": text },
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": ANALYSIS_SCHEMA_NAME,
                    "strict": true,
                    "schema": analysis_json_schema(),
                },
            },
            // Analysis is classification, not writing: the most likely answer is best.
            "temperature": 0,
        })
    }
}

#[async_trait]
impl Analyzer for OpenAiAnalyzer {
    fn provider(&self) -> &'static str {
        OPENAI_PROVIDER
    }
    fn model(&self) -> &str {
        &self.config.model
    }
    async fn analyze(&self, request: &AnalysisRequest) -> Result<Analysis, AiError> {
        let headers = auth_headers(self.config.api_key.as_ref())?;
        let answer = self
            .client
            .post(&self.url, headers, &self.request_body(request))
            .await?;
        let content = message_content(&answer)?;
        let value: Value = serde_json::from_str(content).map_err(|e| {
            AiError::invalid(
                OPENAI_PROVIDER,
                format!("the message content is not JSON ({e})"),
            )
        })?;
        parse_analysis_json(OPENAI_PROVIDER, &value, &request.time_zone)
    }
}

/// `choices[0].message.content`, after ruling out a refusal or a cut-off answer.
fn message_content(answer: &Value) -> Result<&str, AiError> {
    let invalid = |reason: String| AiError::invalid(OPENAI_PROVIDER, reason);
    let choice = answer
        .pointer("/choices/0")
        .ok_or_else(|| invalid("the answer has no choices".into()))?;
    if choice.get("finish_reason").and_then(Value::as_str) == Some("length") {
        return Err(invalid("the answer was cut off at the token limit".into()));
    }
    let message = choice
        .get("message")
        .ok_or_else(|| invalid("the first choice has no message".into()))?;
    if let Some(refusal) = message.get("refusal").and_then(Value::as_str) {
        return Err(invalid(format!("the model refused: {refusal}")));
    }
    message
        .get("content")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("the message has no text content".into()))
}
