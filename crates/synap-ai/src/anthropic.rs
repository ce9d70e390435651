//! The `anthropic` analyzer: Anthropic's Messages API (`POST {base}/v1/messages`).
//!
//! Structured output is forced with a single tool, [`ANALYSIS_TOOL`], whose
//! `input_schema` is [`analysis_json_schema`], and `tool_choice` naming it: the model
//! must answer by "calling" the tool, and the call's `input` is the analysis. That
//! input is then validated here like any other provider's output
//! ([`parse_analysis_json`]); the API's own schema checking is not relied upon.

use crate::analysis::{
    Analysis, AnalysisRequest, Analyzer, analysis_json_schema, parse_analysis_json, system_prompt,
};
use crate::config::ApiKey;
use crate::error::AiError;
use crate::http::{JsonClient, REQUEST_TIMEOUT_DEFAULT, endpoint};
use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use std::time::Duration;

/// The provider name in event metadata and errors.
pub const ANTHROPIC_PROVIDER: &str = "anthropic";
pub const ANTHROPIC_BASE_URL_DEFAULT: &str = "https://api.anthropic.com";
/// A small, fast model is plenty for titling and tagging a thought.
pub const ANTHROPIC_MODEL_DEFAULT: &str = "claude-haiku-4-5";
/// The API version this client speaks (the `anthropic-version` header).
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// Output token budget: an analysis is well under 300 tokens.
pub const ANTHROPIC_MAX_TOKENS: u32 = 1_024;
/// The name of the one tool the model must call.
pub const ANALYSIS_TOOL: &str = "record_analysis";
/// Characters of a thought sent to a remote model.
pub const REMOTE_INPUT_CHARS_MAX: usize = 20_000;

/// Settings of the Anthropic analyzer.
#[derive(Debug, Clone)]
pub struct AnthropicConfig {
    pub base_url: String,
    pub api_key: ApiKey,
    pub model: String,
    pub timeout: Duration,
}

impl AnthropicConfig {
    /// The defaults, with the one setting that has none.
    pub fn new(api_key: ApiKey) -> Self {
        AnthropicConfig {
            base_url: ANTHROPIC_BASE_URL_DEFAULT.into(),
            api_key,
            model: ANTHROPIC_MODEL_DEFAULT.into(),
            timeout: REQUEST_TIMEOUT_DEFAULT,
        }
    }
}

/// Analyzes thoughts with Claude.
#[derive(Debug)]
pub struct AnthropicAnalyzer {
    config: AnthropicConfig,
    url: String,
    client: JsonClient,
}

impl AnthropicAnalyzer {
    pub fn new(config: AnthropicConfig) -> Result<Self, AiError> {
        Ok(AnthropicAnalyzer {
            url: endpoint(&config.base_url, "messages"),
            client: JsonClient::new(ANTHROPIC_PROVIDER, config.timeout)?,
            config,
        })
    }

    /// The request body (public for tests and for documentation of the wire shape).
    pub fn request_body(&self, request: &AnalysisRequest) -> Value {
        let text: String = request.text.chars().take(REMOTE_INPUT_CHARS_MAX).collect();
        json!({
            "model": self.config.model,
            "max_tokens": ANTHROPIC_MAX_TOKENS,
            "system": system_prompt(request),
            "messages": [{ "role": "user", "content": text }],
            "tools": [{
                "name": ANALYSIS_TOOL,
                "description": "Record the analysis of the user's thought.",
                "input_schema": analysis_json_schema(),
            }],
            "tool_choice": { "type": "tool", "name": ANALYSIS_TOOL },
        })
    }
}

#[async_trait]
impl Analyzer for AnthropicAnalyzer {
    fn provider(&self) -> &'static str {
        ANTHROPIC_PROVIDER
    }
    fn model(&self) -> &str {
        &self.config.model
    }
    async fn analyze(&self, request: &AnalysisRequest) -> Result<Analysis, AiError> {
        let mut headers = HeaderMap::new();
        let key = HeaderValue::from_str(self.config.api_key.expose()).map_err(|_| {
            AiError::Config(
                "the Anthropic API key contains characters a header cannot carry".into(),
            )
        })?;
        headers.insert("x-api-key", key);
        headers.insert(
            "anthropic-version",
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        let answer = self
            .client
            .post(&self.url, headers, &self.request_body(request))
            .await?;
        let input = tool_input(&answer)?;
        parse_analysis_json(ANTHROPIC_PROVIDER, input, &request.time_zone)
    }
}

/// The `input` of the `tool_use` block calling [`ANALYSIS_TOOL`].
fn tool_input(answer: &Value) -> Result<&Value, AiError> {
    let invalid = |reason: &str| AiError::invalid(ANTHROPIC_PROVIDER, reason);
    if answer.get("stop_reason").and_then(Value::as_str) == Some("max_tokens") {
        return Err(invalid("the answer was cut off at the token limit"));
    }
    let content = answer
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("the answer has no content array"))?;
    content
        .iter()
        .find(|block| {
            block.get("type").and_then(Value::as_str) == Some("tool_use")
                && block.get("name").and_then(Value::as_str) == Some(ANALYSIS_TOOL)
        })
        .and_then(|block| block.get("input"))
        .ok_or_else(|| invalid("the answer does not call the record_analysis tool"))
}
