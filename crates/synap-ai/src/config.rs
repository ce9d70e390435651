//! Configuration of the AI providers, shaped for the CLI's layered settings
//! (defaults → `synap.toml` → `SYNAP_*` variables): plain structs whose `Default` is
//! the only place a default is written, `FromStr` for the provider names, secrets in
//! [`ApiKey`] (redacted in `Debug`), and the constructors [`build_analyzer`] and
//! [`build_embedder`] that turn a configuration into providers or say, in one line,
//! what is wrong and how to fix it.

use crate::analysis::Analyzer;
use crate::anthropic::{AnthropicAnalyzer, AnthropicConfig};
use crate::embed::Embedder;
use crate::embed::openai::{OpenAiEmbedder, OpenAiEmbedderConfig};
use crate::error::AiError;
use crate::local::LocalAnalyzer;
use crate::openai::{OpenAiAnalyzer, OpenAiConfig};
use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Default timeout of one provider request, in milliseconds.
pub const TIMEOUT_MS_DEFAULT: u64 = crate::http::REQUEST_TIMEOUT_DEFAULT.as_millis() as u64;
/// Shortest and longest timeout a configuration may set, in milliseconds.
pub const TIMEOUT_MS_MIN: u64 = 100;
pub const TIMEOUT_MS_MAX: u64 = 600_000;

/// An API key. Its `Debug` never shows it; [`ApiKey::expose`] is the one way out.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Which analyzer turns a thought into a title, tags, intent and due date.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnalyzerProvider {
    /// Offline heuristics (the default).
    #[default]
    Local,
    /// Anthropic's Messages API.
    Anthropic,
    /// Any OpenAI-compatible chat completions endpoint (OpenAI, Ollama, vLLM).
    Openai,
}

impl FromStr for AnalyzerProvider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "local" => Ok(AnalyzerProvider::Local),
            "anthropic" => Ok(AnalyzerProvider::Anthropic),
            "openai" => Ok(AnalyzerProvider::Openai),
            other => Err(format!(
                "{other:?} is not an AI provider; use local, anthropic or openai"
            )),
        }
    }
}

/// Which embedder, if any, indexes content for semantic search.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingProvider {
    /// No embeddings: semantic search answers with a clear error (the default, since
    /// the local model's files must be installed first).
    #[default]
    None,
    /// all-MiniLM-L6-v2 (or another BERT sentence model) from a local directory.
    Local,
    /// Any OpenAI-compatible embeddings endpoint.
    Openai,
}

impl FromStr for EmbeddingProvider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "" => Ok(EmbeddingProvider::None),
            "local" => Ok(EmbeddingProvider::Local),
            "openai" => Ok(EmbeddingProvider::Openai),
            other => Err(format!(
                "{other:?} is not an embedding provider; use none, local or openai"
            )),
        }
    }
}

/// The analyzer's settings. `model` and `base_url` default per provider when unset.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyzerConfig {
    pub provider: AnalyzerProvider,
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub api_key: Option<ApiKey>,
    pub timeout_ms: u64,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        AnalyzerConfig {
            provider: AnalyzerProvider::Local,
            model: None,
            base_url: None,
            api_key: None,
            timeout_ms: TIMEOUT_MS_DEFAULT,
        }
    }
}

/// The embedder's settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddingConfig {
    pub provider: EmbeddingProvider,
    /// `local`: the directory holding `config.json`, `tokenizer.json` and
    /// `model.safetensors`.
    pub model_dir: Option<PathBuf>,
    /// `openai`: the model name.
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub api_key: Option<ApiKey>,
    /// `openai`: the vector length the model returns (checked on every answer).
    pub dimensions: Option<usize>,
    pub timeout_ms: u64,
}

impl Default for EmbeddingConfig {
    fn default() -> Self {
        EmbeddingConfig {
            provider: EmbeddingProvider::None,
            model_dir: None,
            model: None,
            base_url: None,
            api_key: None,
            dimensions: None,
            timeout_ms: TIMEOUT_MS_DEFAULT,
        }
    }
}

/// Both, as one settings section (`[ai.analysis]` and `[ai.embedding]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AiConfig {
    pub analysis: AnalyzerConfig,
    pub embedding: EmbeddingConfig,
}

fn timeout(ms: u64, what: &str) -> Result<Duration, AiError> {
    if !(TIMEOUT_MS_MIN..=TIMEOUT_MS_MAX).contains(&ms) {
        return Err(AiError::Config(format!(
            "{what} timeout {ms} ms is outside {TIMEOUT_MS_MIN}..={TIMEOUT_MS_MAX} ms"
        )));
    }
    Ok(Duration::from_millis(ms))
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// Builds the configured analyzer.
pub fn build_analyzer(config: &AnalyzerConfig) -> Result<Arc<dyn Analyzer>, AiError> {
    let timeout = timeout(config.timeout_ms, "AI")?;
    match config.provider {
        AnalyzerProvider::Local => Ok(Arc::new(LocalAnalyzer::new())),
        AnalyzerProvider::Anthropic => {
            let api_key = config
                .api_key
                .clone()
                .filter(|k| !k.0.trim().is_empty())
                .ok_or_else(|| {
                    AiError::Config(
                        "the anthropic provider needs an API key (SYNAP_AI_API_KEY)".into(),
                    )
                })?;
            let mut c = AnthropicConfig::new(api_key);
            if let Some(model) = non_empty(&config.model) {
                c.model = model;
            }
            if let Some(base_url) = non_empty(&config.base_url) {
                c.base_url = base_url;
            }
            c.timeout = timeout;
            Ok(Arc::new(AnthropicAnalyzer::new(c)?))
        }
        AnalyzerProvider::Openai => {
            let mut c = OpenAiConfig::default();
            if let Some(model) = non_empty(&config.model) {
                c.model = model;
            }
            if let Some(base_url) = non_empty(&config.base_url) {
                c.base_url = base_url;
            }
            c.api_key = config.api_key.clone().filter(|k| !k.0.trim().is_empty());
            c.timeout = timeout;
            Ok(Arc::new(OpenAiAnalyzer::new(c)?))
        }
    }
}

/// Builds the configured embedder; `Ok(None)` when embeddings are off.
pub fn build_embedder(config: &EmbeddingConfig) -> Result<Option<Arc<dyn Embedder>>, AiError> {
    let timeout = timeout(config.timeout_ms, "embedding")?;
    match config.provider {
        EmbeddingProvider::None => Ok(None),
        EmbeddingProvider::Local => {
            let dir = config.model_dir.clone().ok_or_else(|| {
                AiError::Config(format!(
                    "the local embedding provider needs a model directory \
                     (SYNAP_EMBEDDING_MODEL_DIR); {}",
                    crate::embed::MODEL_INSTALL_HINT
                ))
            })?;
            build_local_embedder(dir)
        }
        EmbeddingProvider::Openai => {
            let model = non_empty(&config.model).ok_or_else(|| {
                AiError::Config(
                    "the openai embedding provider needs a model name (SYNAP_EMBEDDING_MODEL)"
                        .into(),
                )
            })?;
            let dimensions = config.dimensions.filter(|d| *d > 0).ok_or_else(|| {
                AiError::Config(format!(
                    "the openai embedding provider needs the vector length of {model:?} \
                     (SYNAP_EMBEDDING_DIMENSIONS, e.g. 1536 for text-embedding-3-small)"
                ))
            })?;
            let mut c = OpenAiEmbedderConfig::new(model, dimensions);
            if let Some(base_url) = non_empty(&config.base_url) {
                c.base_url = base_url;
            }
            c.api_key = config.api_key.clone().filter(|k| !k.0.trim().is_empty());
            c.timeout = timeout;
            Ok(Some(Arc::new(OpenAiEmbedder::new(c)?)))
        }
    }
}

#[cfg(feature = "local-embeddings")]
fn build_local_embedder(dir: PathBuf) -> Result<Option<Arc<dyn Embedder>>, AiError> {
    Ok(Some(Arc::new(crate::embed::local::LocalEmbedder::load(
        &dir,
    )?)))
}

#[cfg(not(feature = "local-embeddings"))]
fn build_local_embedder(dir: PathBuf) -> Result<Option<Arc<dyn Embedder>>, AiError> {
    crate::embed::check_model_dir(&dir)?;
    Err(AiError::Config(
        "this build has no local embedding model support (synap-ai feature \
         `local-embeddings`); rebuild with it or use the openai embedding provider"
            .into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_are_redacted() {
        let config = AnalyzerConfig {
            api_key: Some(ApiKey::new("sk-very-secret")),
            ..AnalyzerConfig::default()
        };
        let debug = format!("{config:?}");
        assert!(!debug.contains("sk-very-secret"), "{debug}");
        assert!(debug.contains("<redacted>"));
    }

    #[test]
    fn provider_names() {
        assert_eq!("Anthropic".parse(), Ok(AnalyzerProvider::Anthropic));
        assert!(
            "gpt"
                .parse::<AnalyzerProvider>()
                .unwrap_err()
                .contains("local, anthropic or openai")
        );
        assert_eq!("none".parse(), Ok(EmbeddingProvider::None));
        assert!("bert".parse::<EmbeddingProvider>().is_err());
    }

    #[test]
    fn settings_file_section() {
        let config: AiConfig = toml_like(
            r#"{"analysis": {"provider": "openai", "model": "llama3.2", "base_url": "http://localhost:11434/v1"},
                "embedding": {"provider": "local", "model_dir": "/models/minilm"}}"#,
        );
        assert_eq!(config.analysis.provider, AnalyzerProvider::Openai);
        assert_eq!(config.analysis.timeout_ms, TIMEOUT_MS_DEFAULT);
        assert_eq!(config.embedding.provider, EmbeddingProvider::Local);
    }

    fn toml_like(json: &str) -> AiConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn clear_errors() {
        let err = build_analyzer(&AnalyzerConfig {
            provider: AnalyzerProvider::Anthropic,
            ..AnalyzerConfig::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("needs an API key"), "{err}");
        let err = build_analyzer(&AnalyzerConfig {
            timeout_ms: 5,
            ..AnalyzerConfig::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("timeout 5 ms"), "{err}");
        let err = build_embedder(&EmbeddingConfig {
            provider: EmbeddingProvider::Openai,
            model: Some("text-embedding-3-small".into()),
            ..EmbeddingConfig::default()
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("SYNAP_EMBEDDING_DIMENSIONS"),
            "{err}"
        );
        assert!(
            build_embedder(&EmbeddingConfig::default())
                .unwrap()
                .is_none()
        );
        let local = build_analyzer(&AnalyzerConfig::default()).unwrap();
        assert_eq!(local.provider(), "local");
    }
}
