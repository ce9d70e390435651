//! Embeddings from any OpenAI-compatible endpoint (`POST {base}/v1/embeddings`):
//! OpenAI, Ollama, vLLM, text-embeddings-inference. Inputs are sent in batches of
//! [`EMBED_BATCH_MAX`]; every answer is checked for count, order and length, and the
//! vectors are normalised here (not every server does).

use super::{Embedder, normalize};
use crate::config::ApiKey;
use crate::error::AiError;
use crate::http::{JsonClient, REQUEST_TIMEOUT_DEFAULT, endpoint};
use crate::openai::{OPENAI_BASE_URL_DEFAULT, auth_headers};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::time::Duration;

/// The provider name in errors.
pub const OPENAI_EMBEDDINGS_PROVIDER: &str = "openai embeddings";
/// Most texts in one request.
pub const EMBED_BATCH_MAX: usize = 64;
/// Longest vector accepted from a configuration.
pub const EMBEDDING_DIMENSIONS_MAX: usize = 8_192;

/// Settings of the OpenAI-compatible embedder.
#[derive(Debug, Clone)]
pub struct OpenAiEmbedderConfig {
    pub base_url: String,
    pub api_key: Option<ApiKey>,
    pub model: String,
    pub dimensions: usize,
    pub timeout: Duration,
}

impl OpenAiEmbedderConfig {
    pub fn new(model: impl Into<String>, dimensions: usize) -> Self {
        OpenAiEmbedderConfig {
            base_url: OPENAI_BASE_URL_DEFAULT.into(),
            api_key: None,
            model: model.into(),
            dimensions,
            timeout: REQUEST_TIMEOUT_DEFAULT,
        }
    }
}

#[derive(Debug)]
pub struct OpenAiEmbedder {
    config: OpenAiEmbedderConfig,
    url: String,
    model_id: String,
    client: JsonClient,
}

impl OpenAiEmbedder {
    pub fn new(config: OpenAiEmbedderConfig) -> Result<Self, AiError> {
        if config.dimensions == 0 || config.dimensions > EMBEDDING_DIMENSIONS_MAX {
            return Err(AiError::Config(format!(
                "embedding dimensions {} are outside 1..={EMBEDDING_DIMENSIONS_MAX}",
                config.dimensions
            )));
        }
        Ok(OpenAiEmbedder {
            url: endpoint(&config.base_url, "embeddings"),
            model_id: format!("openai:{}", config.model),
            client: JsonClient::new(OPENAI_EMBEDDINGS_PROVIDER, config.timeout)?,
            config,
        })
    }

    async fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, AiError> {
        let body = json!({ "model": self.config.model, "input": texts });
        let headers = auth_headers(self.config.api_key.as_ref())?;
        let answer = self.client.post(&self.url, headers, &body).await?;
        let invalid = |reason: String| AiError::invalid(OPENAI_EMBEDDINGS_PROVIDER, reason);
        let data = answer
            .get("data")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("the answer has no data array".into()))?;
        if data.len() != texts.len() {
            return Err(invalid(format!(
                "{} vectors for {} texts",
                data.len(),
                texts.len()
            )));
        }
        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; texts.len()];
        for (position, item) in data.iter().enumerate() {
            let index = match item.get("index") {
                None => position,
                Some(v) => v
                    .as_u64()
                    .and_then(|i| usize::try_from(i).ok())
                    .filter(|i| *i < texts.len())
                    .ok_or_else(|| {
                        invalid(format!("data[{position}].index {v} is out of range"))
                    })?,
            };
            let numbers = item
                .get("embedding")
                .and_then(Value::as_array)
                .ok_or_else(|| invalid(format!("data[{position}] has no embedding array")))?;
            if numbers.len() != self.config.dimensions {
                return Err(invalid(format!(
                    "the model returned {}-dimensional vectors; the configuration says {}",
                    numbers.len(),
                    self.config.dimensions
                )));
            }
            let mut vector = numbers
                .iter()
                .map(|n| n.as_f64().map(|f| f as f32).filter(|f| f.is_finite()))
                .collect::<Option<Vec<f32>>>()
                .ok_or_else(|| invalid(format!("data[{position}] holds a non-number")))?;
            normalize(&mut vector);
            if vectors[index].replace(vector).is_some() {
                return Err(invalid(format!("index {index} appears twice")));
            }
        }
        // Every slot is filled: as many distinct in-range indexes as texts.
        Ok(vectors.into_iter().flatten().collect())
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }
    fn dimensions(&self) -> usize {
        self.config.dimensions
    }
    async fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, AiError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(EMBED_BATCH_MAX) {
            out.extend(self.embed_batch(batch).await?);
        }
        Ok(out)
    }
}
